// Platform actions on Google end to end against the emulator: events once per key (lost answers, Meet links),
// patch and delete; follow-up tasks once per key and the sparse check; Gmail sends; scopes and error policy.
import { DateTime } from 'luxon';
import { expect, test } from 'vitest';
import { Forbidden, MissingScope, NotFound, RetryAfter } from '../connectors/errors.js';
import { GoogleRefused } from '../connectors/google/call.js';
import { googleEventId, GoogleCalendarConnector } from '../connectors/google/calendar.js';
import { GmailConnector } from '../connectors/google/gmail.js';
import { oauthClient } from '../connectors/google/oauth.js';
import { GoogleTaskConnector } from '../connectors/google/tasks.js';
import { taskMarker, type CalendarConnector, type MailConnector, type NewEvent, type TaskConnector } from '../connectors/port.js';
import { forEachBackend } from './helpers/db.js';
import { REDIRECT, withGoogle } from './helpers/google.js';

const TZ = 'America/New_York';
const S = (s: string) => `https://www.googleapis.com/auth/${s}`;
const at = (local: string) => DateTime.fromISO(local, { zone: TZ }).toJSDate();
const caught = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

forEachBackend('Google actions', (t) => {
  const g = withGoogle(t);
  type Me = { connectionId: string; therapistId: string };
  const row = (me: Me) => ({ id: me.connectionId, therapist_id: me.therapistId, provider: 'google' as const });
  const calendarOf = (me: Me): Promise<CalendarConnector> => g.connectors.calendarConnector(row(me));
  const tasksOf = (me: Me): Promise<TaskConnector> => g.connectors.taskConnector(row(me));
  const mailOf = (me: Me): Promise<MailConnector> => g.connectors.mailConnector(row(me));
  const calls = (re: RegExp, method?: string) => g.emu.requests.filter((r) => re.test(r.path) && (method === undefined || r.method === method));

  /** Connectors built by hand, with a grant of these scopes (and retries as given). */
  async function direct(sub: string, scopes: string[], opts: { retries?: number } = {}) {
    const auth = oauthClient({ clientId: g.emu.clientId, clientSecret: g.emu.clientSecret, redirectUri: REDIRECT, endpoints: { oauth2TokenUrl: g.emu.tokenUrl, oauth2RevokeUrl: g.emu.revokeUrl } });
    auth.setCredentials((await auth.getToken(g.emu.authorize(sub, scopes, REDIRECT))).tokens);
    const marked: string[] = [];
    const o = {
      auth,
      credentials: { load: async () => JSON.stringify(auth.credentials), save: async () => undefined, markNeedsReauth: async (r: string) => void marked.push(r) },
      rootUrl: g.emu.url,
      sleep: async () => undefined,
      ...opts,
    };
    return { cal: new GoogleCalendarConnector(o), tasks: new GoogleTaskConnector(o), mail: new GmailConnector(o), marked };
  }

  const session = (key: string, extra: Partial<NewEvent> = {}): NewEvent => ({
    key,
    summary: 'Session',
    start: at('2026-03-10T17:00'),
    end: at('2026-03-10T17:50'),
    timeZone: TZ,
    attendees: [{ email: 'client@else.example', name: 'A. Client' }],
    onlineMeeting: false,
    notifyAttendees: true,
    ...extra,
  });

  // -------------------------------------------------------------------------------------------
  // Calendar

  test('createEvent after a lost answer: retried, exactly one event with one Meet link; the same key again makes nothing', async () => {
    const me = await g.connect({ sub: 'a-create', email: 'create@brightpath.example', calendars: [{ id: 'create@brightpath.example' }] });
    const cal = await calendarOf(me);
    const key = 'booking:create:1';
    const id = googleEventId(key);
    expect(id).toMatch(/^[a-v0-9]{52}$/);
    const inserts = () => calls(/\/calendars\/create[^/]*\/events$/, 'POST');

    g.emu.faults.add({ match: { method: 'POST', path: /\/events$/ }, fault: { dropAfter: true } });
    const made = await cal.createEvent(
      'create@brightpath.example',
      session(key, { onlineMeeting: true, reminderMinutes: [10, 60], tags: { 'sk.booking': 'b1' }, description: 'Booked online', location: 'Office' }),
      { mayExist: false },
    );
    // The insert took effect and its answer was lost; the retry is refused as a duplicate; the event is read.
    expect(inserts().map((r) => [r.status, r.dropped ?? null, r.query['sendUpdates'], r.query['conferenceDataVersion']])).toEqual([
      [0, 'after', 'all', '1'],
      [409, null, 'all', '1'],
    ]);
    expect(made).toEqual({ eventId: id, meetingUrl: expect.stringMatching(/^https:\/\/meet\.google\.com\/[a-z]{3}-[a-z]{4}-[a-z]{3}$/), created: false });

    const stored = g.emu.getEvent('create@brightpath.example', id)!;
    expect(stored).toMatchObject({
      id,
      summary: 'Session',
      description: 'Booked online',
      location: 'Office',
      start: { dateTime: '2026-03-10T17:00:00-04:00', timeZone: TZ },
      end: { dateTime: '2026-03-10T17:50:00-04:00', timeZone: TZ },
      attendees: [{ email: 'client@else.example', displayName: 'A. Client', responseStatus: 'needsAction' }],
      reminders: { useDefault: false, overrides: [{ method: 'popup', minutes: 10 }, { method: 'popup', minutes: 60 }] },
      extendedProperties: { private: { 'sk.booking': 'b1' } },
      hangoutLink: made.meetingUrl,
    });
    expect((stored['conferenceData'] as { createRequest: { requestId: string } }).createRequest.requestId).toMatch(/^sk-/);

    // The same key again (mayExist or not): no second event, the same link, created false, no extra request.
    const before = g.emu.requests.length;
    expect(await cal.createEvent('create@brightpath.example', session(key, { onlineMeeting: true }), { mayExist: true })).toEqual({ ...made, created: false });
    expect(g.emu.requests.length - before).toBe(2); // the refused insert and the read
    const page = await cal.syncPage('create@brightpath.example', { cursor: null, pageToken: null });
    expect(page.items.map((i) => i.eventId)).toEqual([id]);

    // A new key: created, with sendUpdates none when attendees are not to be told, and no Meet without asking.
    const other = await cal.createEvent('create@brightpath.example', session('booking:create:2', { notifyAttendees: false, start: at('2026-03-11T09:00'), end: at('2026-03-11T09:50') }), { mayExist: true });
    expect(other).toEqual({ eventId: googleEventId('booking:create:2'), meetingUrl: null, created: true });
    expect(inserts().at(-1)).toMatchObject({ status: 200, sendUpdates: 'none', notifiedGuests: [] });
    expect(inserts().at(-1)?.query['conferenceDataVersion']).toBeUndefined();
  });

  test('createEvent: a 503 is retried (the id makes it safe); a validation 400 is not retried', async () => {
    const me = await g.connect({ sub: 'a-retry', email: 'retry@brightpath.example', calendars: [{ id: 'retry@brightpath.example' }] });
    const cal = await calendarOf(me);
    const inserts = () => calls(/\/calendars\/retry[^/]*\/events$/, 'POST');
    g.emu.faults.add({ match: { method: 'POST', path: /\/events$/ }, fault: { status: 503 } });
    g.emu.faults.add({ match: { method: 'POST', path: /\/events$/ }, fault: { status: 429, retryAfter: 1 } });
    const made = await cal.createEvent('retry@brightpath.example', session('booking:retry:1'), { mayExist: false });
    expect(made.created).toBe(true);
    expect(inserts().map((r) => r.status)).toEqual([503, 429, 200]);

    // Six reminders: Google refuses the request as invalid; one request, no retry, a clear error.
    const err = await caught(cal.createEvent('retry@brightpath.example', session('booking:retry:2', { reminderMinutes: [5, 10, 15, 20, 25, 30] }), { mayExist: false }));
    expect(err).toBeInstanceOf(GoogleRefused);
    expect(err).not.toBeInstanceOf(RetryAfter);
    expect((err as Error).message).toContain('400 eventRemindersCountExceedsLimit');
    expect(inserts().map((r) => r.status)).toEqual([503, 429, 200, 400]);
  });

  test('patchEvent writes only the fields given; deleteEvent deletes once and is fine when it is gone', async () => {
    const me = await g.connect({ sub: 'a-patch', email: 'patch@brightpath.example', calendars: [{ id: 'patch@brightpath.example' }] });
    const cal = await calendarOf(me);
    const { eventId } = await cal.createEvent('patch@brightpath.example', session('booking:patch:1', { description: 'Note', location: 'Room 1', reminderMinutes: [15] }), { mayExist: false });
    const patchesOf = () => calls(new RegExp(`/events/${eventId}$`), 'PATCH');

    await cal.patchEvent('patch@brightpath.example', eventId, { summary: 'Session (moved)', start: at('2026-03-12T18:00'), end: at('2026-03-12T18:50'), timeZone: TZ }, { notifyAttendees: true });
    expect(patchesOf().at(-1)).toMatchObject({ status: 200, sendUpdates: 'all', notifiedGuests: ['client@else.example'] });
    let e = g.emu.getEvent('patch@brightpath.example', eventId)!;
    expect(e).toMatchObject({ summary: 'Session (moved)', description: 'Note', location: 'Room 1', start: { dateTime: '2026-03-12T18:00:00-04:00', timeZone: TZ }, reminders: { useDefault: false, overrides: [{ method: 'popup', minutes: 15 }] } });

    await cal.patchEvent('patch@brightpath.example', eventId, { description: null, location: null, reminderMinutes: [] }, { notifyAttendees: false });
    expect(patchesOf().at(-1)).toMatchObject({ status: 200, sendUpdates: 'none', notifiedGuests: [] });
    e = g.emu.getEvent('patch@brightpath.example', eventId)!;
    expect(e['description']).toBeUndefined();
    expect(e['location']).toBeUndefined();
    expect(e['summary']).toBe('Session (moved)');
    expect(e['reminders']).toEqual({ useDefault: false, overrides: [] });
    expect(await caught(cal.patchEvent('patch@brightpath.example', eventId, { start: at('2026-03-12T18:00') }, { notifyAttendees: false }))).toBeInstanceOf(Error);

    // A lost answer on a patch: retried (the same values again), the write is there.
    g.emu.faults.add({ match: { method: 'PATCH' }, fault: { dropAfter: true } });
    await cal.patchEvent('patch@brightpath.example', eventId, { summary: 'Session (again)' }, { notifyAttendees: false });
    expect(patchesOf().slice(-2).map((r) => r.status)).toEqual([0, 200]);

    await cal.deleteEvent('patch@brightpath.example', eventId, { notifyAttendees: true });
    const deletes = () => calls(new RegExp(`/events/${eventId}$`), 'DELETE');
    expect(deletes().map((r) => [r.status, r.sendUpdates])).toEqual([[204, 'all']]);
    // Again: Google answers 410 "deleted"; for us it is done. An unknown event (404) too.
    await cal.deleteEvent('patch@brightpath.example', eventId, { notifyAttendees: true });
    expect(deletes().map((r) => r.status)).toEqual([204, 410]);
    await cal.deleteEvent('patch@brightpath.example', 'nosuchevent00', { notifyAttendees: false });
    // A deleted event cannot be patched.
    expect(await caught(cal.patchEvent('patch@brightpath.example', eventId, { summary: 'x' }, { notifyAttendees: false }))).toBeInstanceOf(NotFound);
    // A lost answer on a delete: the retry hears 410 and is content.
    const { eventId: second } = await cal.createEvent('patch@brightpath.example', session('booking:patch:2'), { mayExist: false });
    g.emu.faults.add({ match: { method: 'DELETE' }, fault: { dropAfter: true } });
    await cal.deleteEvent('patch@brightpath.example', second, { notifyAttendees: false });
    expect(calls(new RegExp(`/events/${second}$`), 'DELETE').map((r) => r.status)).toEqual([0, 410]);
  });

  // -------------------------------------------------------------------------------------------
  // Tasks

  test('ensureList finds the list by name or makes it once, also after a lost answer', async () => {
    const me = await g.connect({ sub: 'a-list', email: 'list@brightpath.example', calendars: [{ id: 'list@brightpath.example' }] });
    const tasks = await tasksOf(me);
    g.emu.faults.add({ match: { method: 'POST', path: /\/users\/@me\/lists$/ }, fault: { dropAfter: true } });
    const id = await tasks.ensureList('Client follow-ups');
    expect(await tasks.ensureList('Client follow-ups')).toBe(id);
    expect(g.emu.taskLists('a-list').map((l) => l['title'])).toEqual(['My Tasks', 'Client follow-ups']);
  });

  test('createTask: the marker in the notes; after a lost insert answer the task is found again, never made twice', async () => {
    const me = await g.connect({ sub: 'a-task', email: 'task@brightpath.example', calendars: [{ id: 'task@brightpath.example' }] });
    const tasks = await tasksOf(me);
    const list = await tasks.ensureList('Follow-ups');
    const draft = { key: 'fact:no-show:1', title: 'Call A. about Monday', notes: 'Missed the session on Monday.', due: '2026-03-04', link: { url: 'https://app.example/f/1', label: 'Open in SessionKeeper' } };

    // Inside one call: the answer is lost, the list is searched, the task is there.
    g.emu.faults.add({ match: { method: 'POST', path: /\/tasks$/ }, fault: { dropAfter: true } });
    const made = await tasks.createTask(list, draft, { mayExist: false });
    expect(made.created).toBe(true);
    const all = g.emu.tasks('a-task', list);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({
      id: made.taskId,
      title: 'Call A. about Monday',
      notes: `Missed the session on Monday.\n\n— Open in SessionKeeper: https://app.example/f/1\n— SessionKeeper ref ${taskMarker(draft.key)}`,
      due: '2026-03-04T00:00:00.000Z',
      status: 'needsAction',
    });
    const inserts = () => calls(new RegExp(`/lists/${list}/tasks$`), 'POST');
    const lists = () => calls(new RegExp(`/lists/${list}/tasks$`), 'GET');
    expect(inserts().map((r) => r.status)).toEqual([0]);
    expect(lists().at(-1)?.query).toMatchObject({ showCompleted: 'true', showHidden: 'true', showDeleted: 'true', maxResults: '100' });

    // A crash after the insert (a connector that gives up at once), then the action again with mayExist.
    const once = await direct('a-task', [S('tasks')], { retries: 0 });
    const draft2 = { ...draft, key: 'fact:no-show:2', link: undefined };
    g.emu.faults.add({ match: { method: 'POST', path: /\/tasks$/ }, fault: { dropAfter: true } });
    expect(await caught(once.tasks.createTask(list, draft2, { mayExist: false }))).toBeInstanceOf(RetryAfter);
    const again = await tasks.createTask(list, draft2, { mayExist: true });
    expect(again.created).toBe(false);
    expect(g.emu.tasks('a-task', list).filter((x) => String(x['notes']).includes(taskMarker(draft2.key)))).toEqual([expect.objectContaining({ id: again.taskId })]);
    expect(inserts()).toHaveLength(2);
    // Found even when the therapist completed it in Google's app meanwhile (hidden at once).
    g.emu.completeTask('a-task', list, again.taskId);
    expect(await tasks.createTask(list, draft2, { mayExist: true })).toEqual({ taskId: again.taskId, created: false });
    // A 503 on an insert is not repeated blindly: the list is looked at, nothing is there, the insert is tried again.
    g.emu.faults.add({ match: { method: 'POST', path: /\/tasks$/ }, fault: { status: 503 } });
    const third = await tasks.createTask(list, { ...draft2, key: 'fact:no-show:3' }, { mayExist: false });
    expect(third.created).toBe(true);
    expect(inserts().slice(-2).map((r) => r.status)).toEqual([503, 200]);
    expect(g.emu.tasks('a-task', list)).toHaveLength(3);
  });

  test('updateTask keeps our marker and link; completeTask and deleteTask are idempotent; gone is null or fine', async () => {
    const me = await g.connect({ sub: 'a-upd', email: 'upd@brightpath.example', calendars: [{ id: 'upd@brightpath.example' }] });
    const tasks = await tasksOf(me);
    const list = await tasks.ensureList('Follow-ups');
    const key = 'fact:late-cancel:1';
    const { taskId } = await tasks.createTask(list, { key, title: 'Call B.', notes: 'Cancelled late.', due: null, link: { url: 'https://app.example/f/2', label: 'Open' } }, { mayExist: false });

    const updated = await tasks.updateTask(list, taskId, { notes: 'Cancelled late; booked again for 3 March.', due: '2026-03-05', title: 'Call B. (booked)' });
    expect(updated).toEqual({ taskId, marker: taskMarker(key), status: 'open', updated: expect.any(Date) });
    expect(g.emu.tasks('a-upd', list)[0]).toMatchObject({
      title: 'Call B. (booked)',
      notes: `Cancelled late; booked again for 3 March.\n\n— Open: https://app.example/f/2\n— SessionKeeper ref ${taskMarker(key)}`,
      due: '2026-03-05T00:00:00.000Z',
    });
    expect((await tasks.updateTask(list, taskId, { due: null }))?.status).toBe('open');
    expect(g.emu.tasks('a-upd', list)[0]?.['due']).toBeUndefined();

    // The therapist completed it meanwhile: the update says so.
    g.emu.completeTask('a-upd', list, taskId);
    expect((await tasks.updateTask(list, taskId, { title: 'Call B.!' }))?.status).toBe('completed');

    const { taskId: other } = await tasks.createTask(list, { key: 'fact:late-cancel:2', title: 'Call C.', notes: '', due: null }, { mayExist: false });
    g.emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 500 } });
    await tasks.completeTask(list, other);
    await tasks.completeTask(list, other);
    expect(g.emu.tasks('a-upd', list).find((x) => x['id'] === other)).toMatchObject({ status: 'completed', completed: expect.any(String) });
    await tasks.deleteTask(list, other);
    await tasks.deleteTask(list, other);
    expect(g.emu.tasks('a-upd', list).find((x) => x['id'] === other)).toMatchObject({ deleted: true });
    expect((await tasks.updateTask(list, other, { title: 'x' }))?.status).toBe('deleted');

    expect(await tasks.updateTask(list, 'nosuchtask', { notes: 'x' })).toBeNull();
    expect(await tasks.updateTask(list, 'nosuchtask', { title: 'x' })).toBeNull();
    await tasks.completeTask(list, 'nosuchtask');
    await tasks.deleteTask(list, 'nosuchtask');
  });

  test('changedTasks sees what the therapist did at Google (completed: hidden at once; deleted), one request per page', async () => {
    const me = await g.connect({ sub: 'a-check', email: 'check@brightpath.example', calendars: [{ id: 'check@brightpath.example' }] });
    const tasks = await tasksOf(me);
    const list = await tasks.ensureList('Follow-ups');
    const ours = await tasks.createTask(list, { key: 'fact:check:1', title: 'Call D.', notes: 'n', due: null }, { mayExist: false });
    const gone = await tasks.createTask(list, { key: 'fact:check:2', title: 'Call E.', notes: 'n', due: null }, { mayExist: false });
    g.emu.insertTask('a-check', list, { title: 'Their own task' });
    const start = t.clock.now().minus({ minutes: 1 }).toJSDate();

    const listed = () => calls(new RegExp(`/lists/${list}/tasks$`), 'GET');
    const n0 = listed().length;
    const first = await tasks.changedTasks(list, null, start);
    expect(first.tasks.map((x) => [x.marker, x.status]).sort()).toEqual([[null, 'open'], [taskMarker('fact:check:1'), 'open'], [taskMarker('fact:check:2'), 'open']].sort());
    expect(listed().length - n0).toBe(1);
    expect(listed().at(-1)?.query).toMatchObject({ updatedMin: start.toISOString(), showCompleted: 'true', showHidden: 'true', showDeleted: 'true', maxResults: '100' });

    t.clock.advance({ minutes: 10 });
    g.emu.completeTask('a-check', list, ours.taskId);
    g.emu.deleteTask('a-check', list, gone.taskId);
    const r0 = tasks.requests;
    const second = await tasks.changedTasks(list, first.cursor, start);
    expect(tasks.requests - r0).toBe(1);
    const status = (list2: { taskId: string; status: string }[]) => Object.fromEntries(list2.map((x) => [x.taskId, x.status]));
    expect(status(second.tasks)).toMatchObject({ [ours.taskId]: 'completed', [gone.taskId]: 'deleted' });
    expect(Date.parse(second.cursor)).toBeGreaterThan(Date.parse(first.cursor));
    // The next look asks from a few seconds before the cursor: what changed then may come again (harmless),
    // nothing older does.
    expect(listed().at(-1)?.query['updatedMin']).toBe(new Date(Date.parse(first.cursor) - 5000).toISOString());
    t.clock.advance({ minutes: 10 });
    const third = await tasks.changedTasks(list, second.cursor, start);
    expect(third.tasks.map((x) => x.taskId).sort()).toEqual([ours.taskId, gone.taskId].sort());
    expect(third.cursor).toBe(second.cursor);

    // 150 changed tasks: two pages, two requests.
    for (let i = 0; i < 150; i++) g.emu.insertTask('a-check', list, { title: `bulk ${i}` });
    const r1 = tasks.requests;
    const bulk = await tasks.changedTasks(list, third.cursor, start);
    // The 150 new ones and, again, the two changed at the cursor.
    expect(bulk.tasks).toHaveLength(152);
    expect(tasks.requests - r1).toBe(2);
  });

  // -------------------------------------------------------------------------------------------
  // Gmail

  test('send: the message a recipient gets has the right From, To, Subject (UTF-8), text, HTML and the .ics', async () => {
    const me = await g.connect({ sub: 'a-mail', email: 'mail@brightpath.example', calendars: [{ id: 'mail@brightpath.example' }] });
    const mail = await mailOf(me);
    const ics = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'METHOD:REQUEST', 'BEGIN:VEVENT', 'UID:sk-1@brightpath.example', 'SUMMARY:Termin', 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');
    const res = await mail.send({
      from: { email: 'mail@brightpath.example', name: 'Dr. Müller' },
      to: [{ email: 'client@else.example', name: 'Jürgen Groß' }],
      replyTo: { email: 'mail@brightpath.example', name: 'Praxis' },
      subject: 'Rückfrage – Ihr Termin',
      text: 'Guten Tag,\nbitte bestätigen Sie Ihren Termin.',
      html: '<p>Guten Tag,</p><p>bitte <b>bestätigen</b> Sie Ihren Termin.</p>',
      attachments: [{ filename: 'termin.ics', contentType: 'text/calendar; method=REQUEST', content: ics }],
    });
    const sent = g.emu.sentMessages().at(-1)!;
    expect(res).toEqual({ messageId: sent.id });
    expect(sent).toMatchObject({
      account: 'mail@brightpath.example',
      from: [{ name: 'Dr. Müller', address: 'mail@brightpath.example' }],
      to: [{ name: 'Jürgen Groß', address: 'client@else.example' }],
      replyTo: [{ name: 'Praxis', address: 'mail@brightpath.example' }],
      subject: 'Rückfrage – Ihr Termin',
      text: 'Guten Tag,\nbitte bestätigen Sie Ihren Termin.',
      html: '<p>Guten Tag,</p><p>bitte <b>bestätigen</b> Sie Ihren Termin.</p>',
    });
    expect(sent.attachments).toHaveLength(1);
    expect(sent.attachments[0]).toMatchObject({ filename: 'termin.ics', contentType: 'text/calendar' });
    expect(sent.attachments[0]!.contentTypeHeader).toMatch(/method=REQUEST/);
    expect(sent.attachments[0]!.content.toString('utf8')).toBe(ics);
    expect(sent.headerLines.map((h) => h.key)).toEqual(['from', 'to', 'reply-to', 'subject', 'date', 'message-id', 'mime-version', 'content-type']);
    expect(calls(/\/gmail\/v1\/users\/me\/messages\/send$/).at(-1)).toMatchObject({ status: 200, api: 'gmail' });
  });

  test('send is at most once: a 5xx or a lost answer fails with RetryAfter after one request; a 429 is retried', async () => {
    const me = await g.connect({ sub: 'a-once', email: 'once@brightpath.example', calendars: [{ id: 'once@brightpath.example' }] });
    const mail = await mailOf(me);
    const msg = { to: [{ email: 'client@else.example' }], subject: 'Reminder', text: 'See you', html: '<p>See you</p>' };
    const sends = () => calls(/\/messages\/send$/);
    const n0 = sends().length;
    const sent0 = g.emu.sentMessages().length;

    g.emu.faults.add({ match: { path: /\/messages\/send$/ }, fault: { status: 503 } });
    const e503 = await caught(mail.send(msg));
    expect(e503).toBeInstanceOf(RetryAfter);
    expect((e503 as RetryAfter).refused).toBe(false);
    expect(sends().length - n0).toBe(1);
    expect(g.emu.sentMessages().length).toBe(sent0);

    g.emu.faults.add({ match: { path: /\/messages\/send$/ }, fault: { dropAfter: true } });
    expect(await caught(mail.send(msg))).toBeInstanceOf(RetryAfter);
    expect(sends().length - n0).toBe(2);
    expect(g.emu.sentMessages().length).toBe(sent0 + 1);

    g.emu.faults.add({ match: { path: /\/messages\/send$/ }, fault: { status: 429, retryAfter: 1 } });
    g.emu.faults.add({ match: { path: /\/messages\/send$/ }, fault: { status: 403, reason: 'userRateLimitExceeded' } });
    expect((await mail.send(msg)).messageId).toMatch(/^[0-9a-f]{16}$/);
    expect(sends().slice(-3).map((r) => r.status)).toEqual([429, 403, 200]);
    // A refusal with a wait too long to sit out here goes back to the caller, marked as refused (nothing was sent).
    g.emu.faults.add({ match: { path: /\/messages\/send$/ }, fault: { status: 429, retryAfter: 30 } });
    const e429 = await caught(mail.send(msg));
    expect(e429).toBeInstanceOf(RetryAfter);
    expect(e429).toMatchObject({ seconds: 30, refused: true });
    expect(g.emu.sentMessages().length).toBe(sent0 + 2);

    // A message we cannot write safely never leaves.
    expect(await caught(mail.send({ ...msg, to: [{ email: 'client@else.example\r\nBcc: spy@evil.example' }] }))).toBeInstanceOf(Error);
    expect(sends().length - n0).toBe(6);
  });

  // -------------------------------------------------------------------------------------------
  // Scopes

  test('a grant without the scope gives MissingScope naming it, for tasks, mail and calendar writes; the connection is marked for consent', async () => {
    g.emu.addAccount({ sub: 'a-scope', email: 'scope@brightpath.example' });
    g.emu.addCalendar('a-scope', { id: 'scope@brightpath.example', summary: 'scope', timeZone: TZ, primary: true });
    const narrow = await direct('a-scope', ['openid', S('calendar.events.readonly')]);
    const tasksErr = await caught(narrow.tasks.ensureList('Follow-ups'));
    expect(tasksErr).toBeInstanceOf(MissingScope);
    expect((tasksErr as Error).message).toContain('insufficientPermissions');
    expect((tasksErr as Error).message).toContain('https://www.googleapis.com/auth/tasks');
    const mailErr = await caught(narrow.mail.send({ to: [{ email: 'client@else.example' }], subject: 's', text: 't', html: '<p>t</p>' }));
    expect(mailErr).toBeInstanceOf(MissingScope);
    expect((mailErr as Error).message).toContain('https://www.googleapis.com/auth/gmail.send');
    const calErr = await caught(narrow.cal.createEvent('scope@brightpath.example', session('booking:scope:1'), { mayExist: false }));
    expect(calErr).toBeInstanceOf(MissingScope);
    expect((calErr as Error).message).toContain('https://www.googleapis.com/auth/calendar.events');
    expect(narrow.marked.length).toBeGreaterThan(0);
    expect(narrow.marked.every((r) => r.includes('connect again'))).toBe(true);
    expect(g.emu.sentMessages().filter((m) => m.account === 'scope@brightpath.example')).toEqual([]);
  });
});
