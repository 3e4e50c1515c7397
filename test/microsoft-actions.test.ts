// Platform actions on Microsoft 365 through the product's connectors (MSAL, the Graph client) against the emulator:
// events created exactly once (found again by our key after a lost answer) with a Teams link, patched and deleted;
// To Do follow-ups created once, and the therapist's completions and deletions seen by the sparse check; mail sent at
// most once, with its .ics attachment; permissions and throttling as typed errors.
import { expect, test } from 'vitest';
import { Forbidden, MissingScope, NotFound, RetryAfter } from '../connectors/errors.js';
import { KEY_TAG, tagPropertyId } from '../connectors/microsoft/calendar.js';
import { taskMarker, type CalendarConnector, type MailConnector, type NewEvent, type OutgoingMail, type TaskConnector } from '../connectors/port.js';
import { platformConnectors } from '../src/engine/platforms.js';
import { forEachBackend } from './helpers/db.js';
import { withMicrosoft } from './helpers/microsoft.js';

const ICS = ['BEGIN:VCALENDAR', 'METHOD:REQUEST', 'BEGIN:VEVENT', 'UID:sk-1@sessionkeeper', 'SUMMARY:Session', 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');

forEachBackend('Microsoft actions', (t) => {
  const m = withMicrosoft(t);

  async function therapist(oid: string, maxRetries?: number) {
    const me = await m.connect({ oid, upn: `${oid}@contoso.example` });
    const factory = maxRetries === undefined ? m.connectors : platformConnectors(m.config, t.store, { microsoft: { ...m.platform.microsoft, maxRetries } });
    const row = { id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' as const };
    const calendar: CalendarConnector = await factory.calendarConnector(row);
    const tasks: TaskConnector = await factory.taskConnector(row);
    const mail: MailConnector = await factory.mailConnector(row);
    const calendarId = (await calendar.listCalendars()).find((c) => c.primary)!.id;
    return { calendar, tasks, mail, calendarId };
  }

  const booking = (key: string, over: Partial<NewEvent> = {}): NewEvent => ({
    key,
    summary: 'Session',
    description: '<p>Your session. Reply to this invite if you cannot come.</p>',
    location: 'Telehealth',
    start: new Date('2026-03-10T23:00:00Z'),
    end: new Date('2026-03-10T23:50:00Z'),
    timeZone: 'America/New_York',
    attendees: [{ email: 'jane@example.com', name: 'Jane' }],
    onlineMeeting: true,
    reminderMinutes: [30, 10],
    tags: { 'sk.session': 'yes' },
    notifyAttendees: false,
    ...over,
  });
  const eventPosts = () => m.emu.requests.filter((r) => r.method === 'POST' && /\/events$/.test(r.path));

  // ---- calendar writes ------------------------------------------------------------------------------------------

  test('createEvent: a lost answer, then a retry with mayExist finds the event by our key: one event, one invitation, a Teams link', async () => {
    const { calendar, calendarId } = await therapist('ma-1');
    m.emu.faults.add({ match: { method: 'POST', path: /\/events$/ }, fault: { dropAfter: true } });
    const lost = await calendar.createEvent(calendarId, booking('booking-1'), { mayExist: false }).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(RetryAfter);
    const again = await calendar.createEvent(calendarId, booking('booking-1'), { mayExist: true });
    expect(again.created).toBe(false);
    expect(again.meetingUrl).toMatch(/^https:\/\/teams\.microsoft\.com\/l\/meetup-join\//);
    expect(eventPosts().map((r) => r.status)).toEqual([0]);
    const ev = m.emu.getEvent('ma-1', again.eventId)!;
    expect(ev).toMatchObject({
      subject: 'Session',
      body: { contentType: 'html', content: '<p>Your session. Reply to this invite if you cannot come.</p>' },
      location: { displayName: 'Telehealth' },
      originalStartTimeZone: 'America/New_York',
      start: { dateTime: '2026-03-10T23:00:00.0000000', timeZone: 'UTC' },
      isOnlineMeeting: true,
      onlineMeetingProvider: 'teamsForBusiness',
      isReminderOn: true,
      reminderMinutesBeforeStart: 30,
      attendees: [{ type: 'required', emailAddress: { address: 'jane@example.com', name: 'Jane' } }],
    });
    expect(ev['singleValueExtendedProperties']).toEqual(
      expect.arrayContaining([
        { id: tagPropertyId(KEY_TAG), value: taskMarker('booking-1') },
        { id: tagPropertyId('sk.session'), value: 'yes' },
      ]),
    );
    expect(await calendar.getTag(calendarId, again.eventId, 'sk.session')).toBe('yes');
    // Graph invites the attendees whatever notifyAttendees says (writesNotifyAttendees): once.
    expect(m.emu.attendeeUpdates('invitation').filter((u) => u.eventId === again.eventId)).toHaveLength(1);
    // A second retry finds it again; a new key makes a new event, without Teams when not asked for.
    expect(await calendar.createEvent(calendarId, booking('booking-1'), { mayExist: true })).toEqual(again);
    const hold = await calendar.createEvent(calendarId, booking('hold-1', { onlineMeeting: false, attendees: [], reminderMinutes: [] }), { mayExist: true });
    expect(hold).toMatchObject({ created: true, meetingUrl: null });
    expect(m.emu.getEvent('ma-1', hold.eventId)).toMatchObject({ isOnlineMeeting: false, onlineMeeting: null, isReminderOn: false });
    expect(eventPosts()).toHaveLength(2);
  });

  test('createEvent: without mayExist a retry soon after a lost answer is still one event (transactionId)', async () => {
    const { calendar, calendarId } = await therapist('ma-2');
    m.emu.faults.add({ match: { method: 'POST', path: /\/events$/ }, fault: { dropAfter: true } });
    await expect(calendar.createEvent(calendarId, booking('booking-2'), { mayExist: false })).rejects.toBeInstanceOf(RetryAfter);
    const second = await calendar.createEvent(calendarId, booking('booking-2'), { mayExist: false });
    const found = await calendar.createEvent(calendarId, booking('booking-2'), { mayExist: true });
    // The second POST answered with the event the lost one made: the search by key finds that same one, invited once.
    expect(found).toEqual({ ...second, created: false });
    expect(eventPosts().slice(-2).map((r) => r.status)).toEqual([0, 201]);
    expect(m.emu.attendeeUpdates('invitation').filter((u) => u.eventId === second.eventId)).toHaveLength(1);
  });

  test('patchEvent writes only the fields given; an empty reminder list turns the reminder off; deleteEvent twice is fine', async () => {
    const { calendar, calendarId } = await therapist('ma-3');
    const made = await calendar.createEvent(calendarId, booking('booking-3'), { mayExist: false });
    await calendar.patchEvent(calendarId, made.eventId, { reminderMinutes: [] }, { notifyAttendees: false });
    expect(m.emu.getEvent('ma-3', made.eventId)).toMatchObject({ isReminderOn: false, subject: 'Session', location: { displayName: 'Telehealth' } });
    await calendar.patchEvent(
      calendarId,
      made.eventId,
      { summary: 'Session (moved)', start: new Date('2026-03-11T22:00:00Z'), end: new Date('2026-03-11T22:50:00Z'), timeZone: 'America/New_York', reminderMinutes: [60], location: null, description: 'Moved by phone' },
      { notifyAttendees: true },
    );
    expect(m.emu.getEvent('ma-3', made.eventId)).toMatchObject({
      subject: 'Session (moved)',
      start: { dateTime: '2026-03-11T22:00:00.0000000' },
      isReminderOn: true,
      reminderMinutesBeforeStart: 60,
      location: { displayName: '' },
      body: { contentType: 'text', content: 'Moved by phone' },
    });
    const before = m.emu.requests.length;
    await calendar.patchEvent(calendarId, made.eventId, {}, { notifyAttendees: false });
    expect(m.emu.requests.length).toBe(before);
    await expect(calendar.patchEvent(calendarId, made.eventId, { start: new Date() }, { notifyAttendees: false })).rejects.toBeInstanceOf(RangeError);
    await calendar.deleteEvent(calendarId, made.eventId, { notifyAttendees: false });
    await calendar.deleteEvent(calendarId, made.eventId, { notifyAttendees: false });
    expect(m.emu.getEvent('ma-3', made.eventId)).toBeUndefined();
    await expect(calendar.patchEvent(calendarId, made.eventId, { summary: 'x' }, { notifyAttendees: false })).rejects.toBeInstanceOf(NotFound);
    // What Jane received: the invitation, two updates, one cancellation (Graph notifies an organizer's attendees always).
    expect(m.emu.attendeeUpdates().filter((u) => u.eventId === made.eventId).map((u) => u.kind)).toEqual(['invitation', 'update', 'update', 'cancellation']);
  });

  // ---- To Do ---------------------------------------------------------------------------------------------------

  const draft = (key: string) => ({ key, title: 'Follow up: no rebooking', notes: 'Suggest an evening slot.', due: '2026-03-05', link: { url: 'https://sk.example/f/1', label: 'Open in SessionKeeper' } });
  const taskPosts = () => m.emu.requests.filter((r) => r.method === 'POST' && /\/tasks$/.test(r.path));

  test('ensureList finds or makes our list; createTask after a lost answer finds the task by its marker: not duplicated', async () => {
    const { tasks } = await therapist('ma-4');
    const listId = await tasks.ensureList('SessionKeeper follow-ups');
    expect(await tasks.ensureList('SessionKeeper follow-ups')).toBe(listId);
    expect(m.emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/todo/lists'))).toHaveLength(1);
    m.emu.faults.add({ match: { method: 'POST', path: /\/tasks$/ }, fault: { dropAfter: true } });
    await expect(tasks.createTask(listId, draft('fact-1'), { mayExist: false })).rejects.toBeInstanceOf(RetryAfter);
    const found = await tasks.createTask(listId, draft('fact-1'), { mayExist: true });
    expect(found.created).toBe(false);
    expect(taskPosts().map((r) => r.status)).toEqual([0]);
    const all = m.emu.todo.tasks('ma-4', listId);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({
      id: found.taskId,
      title: 'Follow up: no rebooking',
      body: { content: 'Suggest an evening slot.', contentType: 'text' },
      dueDateTime: { dateTime: '2026-03-05T00:00:00.0000000', timeZone: 'UTC' },
      linkedResources: [{ applicationName: 'SessionKeeper', displayName: 'Open in SessionKeeper', webUrl: 'https://sk.example/f/1', externalId: taskMarker('fact-1') }],
    });
    const other = await tasks.createTask(listId, draft('fact-2'), { mayExist: true });
    expect(other.created).toBe(true);
    expect(await tasks.updateTask(listId, other.taskId, { title: 'Follow up: call back', due: null })).toMatchObject({ taskId: other.taskId, marker: taskMarker('fact-2'), status: 'open' });
    expect(m.emu.todo.tasks('ma-4', listId)[1]).not.toHaveProperty('dueDateTime');
    await tasks.completeTask(listId, other.taskId);
    await tasks.deleteTask(listId, other.taskId);
    await tasks.deleteTask(listId, other.taskId);
    await tasks.completeTask(listId, other.taskId);
    expect(await tasks.updateTask(listId, other.taskId, { title: 'gone' })).toBeNull();
  });

  test('changedTasks: what the therapist completes or deletes in To Do is seen, one request per page of changes', async () => {
    const { tasks } = await therapist('ma-5');
    const listId = await tasks.ensureList('SessionKeeper');
    const a = await tasks.createTask(listId, draft('fact-a'), { mayExist: false });
    const b = await tasks.createTask(listId, draft('fact-b'), { mayExist: false });
    const c = await tasks.createTask(listId, draft('fact-c'), { mayExist: false });
    // Not ours: a task the therapist typed in the same list.
    m.emu.todo.createTask('ma-5', listId, { title: 'Buy printer paper' });
    let before = tasks.requests;
    const first = await tasks.changedTasks(listId, null, new Date(t.clock.now().toMillis() - 60_000));
    expect(tasks.requests - before).toBe(1);
    expect(first.tasks.map((x) => [x.marker, x.status])).toEqual([
      [taskMarker('fact-a'), 'open'],
      [taskMarker('fact-b'), 'open'],
      [taskMarker('fact-c'), 'open'],
      [null, 'open'],
    ]);

    t.clock.advance({ minutes: 10 });
    m.emu.todo.completeTask('ma-5', listId, a.taskId);
    m.emu.todo.deleteTask('ma-5', listId, b.taskId);
    before = tasks.requests;
    const second = await tasks.changedTasks(listId, first.cursor, new Date(0));
    expect(tasks.requests - before).toBe(1);
    expect(second.tasks.map((x) => [x.taskId, x.marker, x.status])).toEqual(
      expect.arrayContaining([
        [a.taskId, taskMarker('fact-a'), 'completed'],
        [b.taskId, taskMarker('fact-b'), 'deleted'],
      ]),
    );
    expect(second.tasks).toHaveLength(2);
    // Nothing changed: one request, nothing.
    before = tasks.requests;
    const third = await tasks.changedTasks(listId, second.cursor, new Date(0));
    expect([tasks.requests - before, third.tasks]).toEqual([1, []]);

    // Graph dropped the delta state: a fresh round is a complete picture, and our open task that is gone is deleted.
    m.emu.todo.deleteTask('ma-5', listId, c.taskId);
    m.emu.todo.expireDelta('ma-5');
    const fourth = await tasks.changedTasks(listId, third.cursor, new Date(0));
    expect(fourth.tasks.filter((x) => x.status === 'deleted').map((x) => [x.taskId, x.marker])).toEqual([[c.taskId, taskMarker('fact-c')]]);
    const after = await tasks.changedTasks(listId, fourth.cursor, new Date(0));
    expect(after.tasks).toEqual([]);
  });

  test('changedTasks pages: 150 tasks are two requests of 100 on the first round', async () => {
    const { tasks } = await therapist('ma-6');
    const listId = await tasks.ensureList('SessionKeeper');
    for (let i = 0; i < 150; i++) m.emu.todo.createTask('ma-6', listId, { title: `T${i}`, linkedResources: [{ applicationName: 'SessionKeeper', displayName: 'SK', externalId: taskMarker(`k${i}`) }] });
    const before = tasks.requests;
    const round = await tasks.changedTasks(listId, null, new Date(0));
    expect(round.tasks).toHaveLength(150);
    expect(tasks.requests - before).toBe(2);
    expect(new Set(round.tasks.map((x) => x.marker)).size).toBe(150);
  });

  test('a withdrawn permission names it: MissingScope for To Do and mail (consent fixes it), Forbidden on a calendar (it may be read-only); a 429 without retries is RetryAfter with its seconds', async () => {
    const { tasks, mail, calendar, calendarId } = await therapist('ma-7');
    m.emu.faults.add({ match: { path: /\/todo\/lists$/ }, fault: { status: 403 } });
    const denied = await tasks.ensureList('SessionKeeper').catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(MissingScope);
    expect((denied as Error).message).toMatch(/Tasks\.ReadWrite/);
    m.emu.faults.add({ match: { path: /\/sendMail$/ }, fault: { status: 403 } });
    const noMail = await mail.send(reminderMail()).catch((e: unknown) => e);
    expect(noMail).toBeInstanceOf(MissingScope);
    expect((noMail as Error).message).toMatch(/Mail\.Send/);
    m.emu.faults.add({ match: { method: 'POST', path: /\/events$/ }, fault: { status: 403 } });
    const noCal = await calendar.createEvent(calendarId, booking('booking-7'), { mayExist: false }).catch((e: unknown) => e);
    expect(noCal).toBeInstanceOf(Forbidden);
    expect((noCal as Error).message).toMatch(/Calendars\.ReadWrite/);
    m.emu.faults.add({ match: { path: /\/tasks\/delta$/ }, fault: { status: 429, retryAfter: 20 } });
    const listId = await tasks.ensureList('SessionKeeper');
    const throttled = await tasks.changedTasks(listId, null, new Date(0)).catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(RetryAfter);
    expect((throttled as RetryAfter).seconds).toBe(20);
  });

  // ---- mail ---------------------------------------------------------------------------------------------------

  const reminderMail = (): OutgoingMail => ({
    to: [{ email: 'jane@example.com', name: 'Jane' }],
    replyTo: { email: 'ma-8@contoso.example', name: 'Dr Ames' },
    subject: 'Your session tomorrow at 6 pm',
    text: 'See you tomorrow at 6 pm.',
    html: '<p>See you tomorrow at <b>6 pm</b>.</p>',
    attachments: [{ filename: 'session.ics', contentType: 'text/calendar; method=REQUEST', content: ICS }],
  });
  const mailPosts = (from = 0) => m.emu.requests.slice(from).filter((r) => r.path.endsWith('/sendMail'));

  test('send: the message is stored with its subject, recipients, HTML body and the .ics attachment decoded', async () => {
    const { mail } = await therapist('ma-8');
    expect(await mail.send(reminderMail())).toEqual({ messageId: null });
    const sent = m.emu.sentMail('ma-8');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      subject: 'Your session tomorrow at 6 pm',
      body: { contentType: 'html', content: '<p>See you tomorrow at <b>6 pm</b>.</p>' },
      toRecipients: [{ name: 'Jane', address: 'jane@example.com' }],
      replyTo: [{ name: 'Dr Ames', address: 'ma-8@contoso.example' }],
      from: { address: 'ma-8@contoso.example' },
      saveToSentItems: true,
    });
    expect(sent[0]!.attachments.map((a) => [a.name, a.contentType, a.content.toString('utf8')])).toEqual([['session.ics', 'text/calendar; method=REQUEST', ICS]]);
  });

  test('send is at most once: a 503 is one request and RetryAfter even with retries on; a lost answer is not resent; a 429 is retried', async () => {
    const { mail } = await therapist('ma-9', 3);
    const from = m.emu.requests.length;
    m.emu.faults.add({ match: { path: /\/sendMail$/ }, fault: { status: 503 } });
    await expect(mail.send(reminderMail())).rejects.toBeInstanceOf(RetryAfter);
    expect(mailPosts(from).map((r) => r.status)).toEqual([503]);
    m.emu.faults.add({ match: { path: /\/sendMail$/ }, fault: { dropAfter: true } });
    const lost = await mail.send(reminderMail()).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(RetryAfter);
    expect(mailPosts(from).map((r) => r.status)).toEqual([503, 0]);
    expect(m.emu.sentMail('ma-9')).toHaveLength(1);
    // Refused with 429: nothing was sent, the RetryHandler waits Retry-After and sends it.
    m.emu.faults.add({ match: { path: /\/sendMail$/ }, fault: { status: 429, retryAfter: 1 } });
    await mail.send(reminderMail());
    expect(mailPosts(from).map((r) => r.status)).toEqual([503, 0, 429, 202]);
    expect(m.emu.sentMail('ma-9')).toHaveLength(2);
  });
});

