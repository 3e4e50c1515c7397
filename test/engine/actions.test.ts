// The platform actions through the engine, against each platform's emulator and the real store, on
// both databases: an event with the client invited (and a video link) made exactly once whatever is
// redelivered or lost; a follow-up task made once, the therapist's completing or deleting it seen by
// the sparse check and never undone; an email with its .ics sent at most once; a grant without a
// permission parking only that connection.
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { MAIL_SEND, type MailPayload } from '../../src/engine/mail.js';
import { submitAction, type PlannedAction } from '../../src/engine/outbox.js';
import { TASK_CLOSE, TASK_OPEN, TASK_UPDATE } from '../../src/engine/tasks.js';
import { tick } from '../../src/engine/worker.js';
import { getPracticeSettings, updatePracticeSettings } from '../../src/store/practices.js';
import { EVENT_CREATE, EVENT_DELETE, EVENT_PATCH, SESSION_REMINDERS } from '../../src/engine/writes.js';
import type { GoogleEmulator } from '../emulators/google/server.js';
import type { GraphEmulator } from '../emulators/microsoft/server.js';
import { testBackends, testStores } from '../helpers/db.js';
import { meOf, viewOf, type Me, type PlatformView } from './platform-view.js';
import { drain, googleWorld, graphWorld, type World } from './world.js';
import { rng } from './practice-life.js';

const FROM = '2026-03-02T09:00:00-05:00';
const ZONE = 'America/New_York';
const CLIENT = { email: 'jo.client@example.com', name: 'Jo Client' };

const ICS = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//SessionKeeper//EN', 'METHOD:REQUEST', 'BEGIN:VEVENT', 'UID:sk-test-1@sessionkeeper', 'DTSTART:20260304T230000Z', 'DTEND:20260304T235000Z', 'SUMMARY:Appointment', 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');

for (const [provider, make] of [['google', googleWorld], ['microsoft', graphWorld]] as const) {
  for (const backend of testBackends()) {
    describe(`platform actions on ${provider} [${backend}]`, { timeout: 120_000 }, () => {
      let world: World;
      let view: PlatformView;
      let me: Me;
      const random = rng(7);
      beforeAll(async () => {
        world = await make({ stores: testStores, backend, clock: new ManualClock(FROM), therapists: 0 });
        view = viewOf(world);
        me = await meOf(world, await world.connect(0));
        await drain(world, world.clock.now().toMillis(), random);
      }, 120_000);
      afterAll(async () => world?.close());

      const submit = (who: Me, p: Omit<PlannedAction, 'connectionId' | 'factKey'> & { factKey?: string | null }) =>
        submitAction(world.store, who.therapistId, { factKey: null, connectionId: who.connectionId, ...p });
      // Runs what is due now and the retries that follow within two minutes (not the half-hourly task check).
      const settle = () => drain(world, world.clock.now().toMillis() + 120_000, random);
      const action = (key: string) => world.store.db.selectFrom('actions').selectAll().where('idempotency_key', '=', key).executeTakeFirstOrThrow();
      const listId = async (who: Me) => (await world.store.db.selectFrom('task_lists').select('provider_list_id').where('connection_id', '=', who.connectionId).executeTakeFirstOrThrow()).provider_list_id;
      const taskRow = (who: Me, key: string) => world.store.db.selectFrom('tasks').selectAll().where('therapist_id', '=', who.therapistId).where('key', '=', key).executeTakeFirstOrThrow();
      const eventAt = (day: number, hour: number) => {
        const start = world.clock.now().setZone(ZONE).plus({ days: day }).set({ hour, minute: 0, second: 0, millisecond: 0 });
        return { start: start.toISO()!, end: start.plus({ minutes: 50 }).toISO()!, timeZone: ZONE };
      };

      test('an event with the client invited and a video link: once, whatever is redelivered, lost or retried', async () => {
        const created0 = view.createdEvents(me);
        const mail0 = view.clientMail();
        const booking = { kind: EVENT_CREATE, key: 'booking:1', payload: { calendarId: me.calendarId, ...eventAt(2, 18), onlineMeeting: true, notifyAttendees: true, reminderMinutes: [15] }, secret: { summary: 'Appointment', attendees: [CLIENT] } };
        expect((await submit(me, booking)).created).toBe(true);
        // The same action again (a redelivered request) is the same action.
        expect((await submit(me, booking)).created).toBe(false);
        await settle();
        const done = await action('booking:1');
        expect(done).toMatchObject({ status: 'done', outcome: { created: true, onlineMeeting: true } });
        const event = view.event(me, done.external_ref!)!;
        expect(event.attendees).toContain(CLIENT.email);
        expect(event.meetingUrl).toMatch(/^https:\/\/(meet\.google\.com|teams\.microsoft\.com)\//);
        expect(event.reminders).toEqual([15]);
        expect(view.createdEvents(me) - created0).toBe(1);
        expect(view.clientMail() - mail0).toBe(1);
        // Nothing personal in the stored action but its sealed part.
        expect(JSON.stringify(done.payload)).not.toContain(CLIENT.email);

        // The platform makes it, and its answer is lost: the retry finds it, the client is invited once.
        world.emu.faults.add({ match: { method: 'POST', path: view.paths.eventInsert }, fault: { dropAfter: true } });
        await submit(me, { ...booking, key: 'booking:2', payload: { ...booking.payload, ...eventAt(3, 19) } });
        await settle();
        const second = await action('booking:2');
        expect(second.status).toBe('done');
        expect(view.event(me, second.external_ref!)?.meetingUrl).toBeTruthy();
        expect(view.createdEvents(me) - created0).toBe(2);
        expect(view.clientMail() - mail0).toBe(2);

        // The operator puts a done action back in line: it finds its event and makes nothing new.
        await world.store.db.updateTable('actions').set({ status: 'pending', next_attempt_at: world.clock.now().toJSDate(), last_error: 'retried by the operator' }).where('idempotency_key', '=', 'booking:1').execute();
        await settle();
        expect(await action('booking:1')).toMatchObject({ status: 'done', external_ref: done.external_ref, outcome: { created: false } });
        expect(view.createdEvents(me) - created0).toBe(2);
      });

      test('changing and deleting our event; the therapist\'s popup reminder on a session', async () => {
        await submit(me, { kind: EVENT_CREATE, key: 'hold:1', payload: { calendarId: me.calendarId, ...eventAt(4, 18), onlineMeeting: false, notifyAttendees: false }, secret: { summary: 'Hold', attendees: [] } });
        await settle();
        const eventId = (await action('hold:1')).external_ref!;
        await submit(me, { kind: EVENT_PATCH, key: 'hold:1:patch', payload: { calendarId: me.calendarId, eventId, reminderMinutes: [30, 10] }, secret: { summary: 'Hold (evening)' } });
        await settle();
        const patched = view.event(me, eventId)!;
        expect(patched.summary).toBe('Hold (evening)');
        // Graph keeps one reminder: the first.
        expect(patched.reminders).toEqual(provider === 'google' ? [30, 10] : [30]);
        await submit(me, { kind: EVENT_DELETE, key: 'hold:1:delete', payload: { calendarId: me.calendarId, eventId, notifyAttendees: false } });
        await settle();
        expect(await action('hold:1:delete')).toMatchObject({ status: 'done' });
        expect(view.event(me, eventId)).toBeUndefined();
        // Deleting it again: already gone is done.
        await submit(me, { kind: EVENT_DELETE, key: 'hold:1:delete-again', payload: { calendarId: me.calendarId, eventId, notifyAttendees: false } });
        await settle();
        expect(await action('hold:1:delete-again')).toMatchObject({ status: 'done' });

        // A zone the platforms send under its current name (not in Intl's canonical list on every runtime).
        await submit(me, { kind: EVENT_CREATE, key: 'hold:kolkata', payload: { calendarId: me.calendarId, ...eventAt(6, 9), timeZone: 'Asia/Kolkata', onlineMeeting: false, notifyAttendees: false }, secret: { summary: 'Hold', attendees: [] } });
        await settle();
        expect(await action('hold:kolkata')).toMatchObject({ status: 'done' });

        // A session the therapist keeps without inviting anyone: our popup reminder goes on it.
        const at = eventAt(5, 17);
        const own = await submit(me, { kind: EVENT_CREATE, key: 'own:1', payload: { calendarId: me.calendarId, ...at, onlineMeeting: false, notifyAttendees: false }, secret: { summary: 'Therapy session - J.D.', attendees: [] } });
        expect(own.created).toBe(true);
        await settle();
        const ownId = (await action('own:1')).external_ref!;
        const appt = await world.store.db.selectFrom('appointments').select(['id', 'state']).where('event_id', '=', ownId).executeTakeFirstOrThrow();
        expect(appt.state).toBe('scheduled');
        await submit(me, { kind: SESSION_REMINDERS, key: `reminders:${appt.id}`, payload: { appointmentId: appt.id, calendarId: me.calendarId, eventId: ownId, minutes: [20] } });
        await settle();
        expect(await action(`reminders:${appt.id}`)).toMatchObject({ status: 'done' });
        expect(view.event(me, ownId)!.reminders).toEqual([20]);
      });

      test('a follow-up task: once after a lost answer; the therapist completing it is seen and it is never reopened', async () => {
        const open = (key: string, title: string) => ({ kind: TASK_OPEN, key: `task.open:${key}`, factKey: key, payload: { key, due: '2026-03-05' }, secret: { title, notes: 'Jo cancelled Tuesday 18:00 late. Offer an evening slot.' } });
        world.emu.faults.add({ match: { method: 'POST', path: view.paths.taskInsert }, fault: { dropAfter: true } });
        await submit(me, open('fact:cancel:1', 'Follow up with Jo (cancelled)'));
        await settle();
        const list = await listId(me);
        expect((await action('task.open:fact:cancel:1')).status).toBe('done');
        const mine = view.tasks(me, list).filter((t) => t.title === 'Follow up with Jo (cancelled)');
        expect(mine).toHaveLength(1);
        expect(mine[0]!.status).toBe('open');
        expect(await taskRow(me, 'fact:cancel:1')).toMatchObject({ status: 'open', provider_task_id: mine[0]!.id });

        // More happens about the same fact: the task is updated, not duplicated.
        await submit(me, { kind: TASK_UPDATE, key: 'task.update:fact:cancel:1:1', payload: { key: 'fact:cancel:1' }, secret: { notes: 'Jo cancelled Tuesday and Thursday.' } });
        await settle();
        expect(view.tasks(me, list).filter((t) => t.id === mine[0]!.id)[0]!.notes).toContain('Jo cancelled Tuesday and Thursday.');
        expect(view.tasks(me, list).filter((t) => t.title === 'Follow up with Jo (cancelled)')).toHaveLength(1);

        // The therapist ticks it off; the sparse check sees it within its half hour.
        view.completeTask(me, list, mine[0]!.id);
        world.clock.advance({ minutes: 31 });
        const reports = await drain(world, world.clock.now().toMillis(), random);
        expect(reports.reduce((n, r) => n + r.tasks.closedByTherapist, 0)).toBe(1);
        expect(await taskRow(me, 'fact:cancel:1')).toMatchObject({ status: 'completed', closed_by: 'therapist' });
        // Later news of the same fact neither reopens nor touches it; a second opening is refused.
        await submit(me, { kind: TASK_UPDATE, key: 'task.update:fact:cancel:1:2', payload: { key: 'fact:cancel:1' }, secret: { notes: 'Jo also missed Friday.' } });
        await submit(me, { ...open('fact:cancel:1', 'Follow up with Jo (cancelled)'), key: 'task.open:fact:cancel:1:again' });
        await settle();
        expect(await action('task.update:fact:cancel:1:2')).toMatchObject({ status: 'cancelled', last_error: expect.stringContaining('not reopened') });
        expect((await action('task.open:fact:cancel:1:again')).status).toBe('cancelled');
        const after = view.tasks(me, list).filter((t) => t.id === mine[0]!.id)[0]!;
        expect(after.status).toBe('completed');
        expect(after.notes).not.toContain('Friday');

        // Deleted by the therapist (after a check had seen it: a task made and deleted between two
        // looks may never be reported by Graph's delta; our next write to it finds it gone): seen as theirs.
        await submit(me, open('fact:noshow:2', 'Check in with Sam (no-show)'));
        await settle();
        const sam = await taskRow(me, 'fact:noshow:2');
        world.clock.advance({ minutes: 31 });
        await drain(world, world.clock.now().toMillis(), random);
        view.deleteTask(me, list, sam.provider_task_id);
        world.clock.advance({ minutes: 31 });
        await drain(world, world.clock.now().toMillis(), random);
        expect(await taskRow(me, 'fact:noshow:2')).toMatchObject({ status: 'deleted', closed_by: 'therapist' });

        // A close that comes before its opening was carried out (the opening refused once, 429) waits for it.
        world.emu.faults.add({ match: { method: 'POST', path: view.paths.taskInsert }, fault: { status: 429, retryAfter: 20 } });
        await submit(me, open('fact:cancel:4', 'Follow up with Kim (cancelled)'));
        await submit(me, { kind: TASK_CLOSE, key: 'task.close:fact:cancel:4', payload: { key: 'fact:cancel:4' }, secret: { notes: 'Kim booked again.' } });
        await settle();
        await settle();
        expect(await taskRow(me, 'fact:cancel:4')).toMatchObject({ status: 'completed', closed_by: 'sessionkeeper' });
        expect(await action('task.close:fact:cancel:4')).toMatchObject({ status: 'done' });

        // The client booked again: the task says so and closes by itself.
        await submit(me, open('fact:cancel:3', 'Follow up with Alex (cancelled)'));
        await settle();
        await submit(me, { kind: TASK_CLOSE, key: 'task.close:fact:cancel:3', payload: { key: 'fact:cancel:3' }, secret: { notes: 'Alex booked again for Thursday 18:00: nothing to do.' } });
        await settle();
        const alex = await taskRow(me, 'fact:cancel:3');
        expect(alex).toMatchObject({ status: 'completed', closed_by: 'sessionkeeper' });
        const alexTask = view.tasks(me, list).find((t) => t.id === alex.provider_task_id)!;
        expect(alexTask.status).toBe('completed');
        expect(alexTask.notes).toContain('booked again');
      });

      test('the sparse check: a list with 10 open tasks costs at most two requests an hour; none without open tasks', async () => {
        for (let i = 0; i < 10; i++) await submit(me, { kind: TASK_OPEN, key: `task.open:sparse:${i}`, factKey: `sparse:${i}`, payload: { key: `sparse:${i}` }, secret: { title: `Sparse ${i}`, notes: '' } });
        await settle();
        const hour = async () => {
          for (let m = 0; m < 60; m++) {
            world.clock.advance({ minutes: 1 });
            await tick(world.engines[0]!, 'sparse', { upkeep: false });
          }
        };
        // Requests to the task API, but not those answered 401: the emulator's tokens expire on the test's
        // clock, MSAL's cache on the real one, so a token MSAL still trusts is refused once an emulated
        // hour has passed (in production both clocks agree and MSAL refreshes it before).
        const taskCalls = () => world.emu.requests.filter((r) => view.paths.tasks.test(r.path) && r.status !== 401).length;
        // The first look after our own writes reads them (Graph's delta: one more page); then the steady state.
        await hour();
        const before = taskCalls();
        await hour();
        expect(taskCalls() - before).toBeLessThanOrEqual(2);
        expect(taskCalls() - before).toBeGreaterThanOrEqual(1);
        // All closed in our record: the list is no longer looked at.
        await world.store.db.updateTable('tasks').set({ status: 'completed', closed_by: 'sessionkeeper' }).where('therapist_id', '=', me.therapistId).where('status', '=', 'open').execute();
        const quiet = taskCalls();
        for (let m = 0; m < 60; m++) {
          world.clock.advance({ minutes: 1 });
          await tick(world.engines[0]!, 'sparse', { upkeep: false });
        }
        expect(taskCalls()).toBe(quiet);
      });

      test('an email from the therapist\'s mailbox with an .ics: sent once; a 5xx makes it unknown, never resent; a 429 waits', async () => {
        const mail = (subject: string): MailPayload => ({
          to: [CLIENT],
          subject,
          text: 'Your appointment is on Wednesday at 18:00.\nCan\'t make it? Choose another time: https://sk.example/b/abc',
          html: '<p>Your appointment is on Wednesday at 18:00.</p><p><a href="https://sk.example/b/abc">Can’t make it? Choose another time</a></p>',
          attachments: [{ filename: 'appointment.ics', contentType: 'text/calendar; method=REQUEST; charset=UTF-8', content: ICS }],
        });
        const sent0 = view.sent().length;
        await submit(me, { kind: MAIL_SEND, key: 'mail:1', payload: {}, secret: mail('Erinnerung: Ihr Termin – Mittwoch 18:00') as unknown as Record<string, unknown> });
        await settle();
        expect(await action('mail:1')).toMatchObject({ status: 'done' });
        const m = view.sent().slice(sent0);
        expect(m).toHaveLength(1);
        expect(m[0]!.subject).toBe('Erinnerung: Ihr Termin – Mittwoch 18:00');
        expect(m[0]!.to).toEqual([CLIENT.email]);
        expect(m[0]!.html).toContain('Choose another time');
        expect(m[0]!.attachments).toHaveLength(1);
        expect(m[0]!.attachments[0]!.filename).toBe('appointment.ics');
        expect(m[0]!.attachments[0]!.contentType).toMatch(/^text\/calendar/);
        expect(m[0]!.attachments[0]!.content).toContain('UID:sk-test-1@sessionkeeper');
        if (provider === 'google') {
          // The raw message as the client's mail program parses it: plain and HTML alternatives, the .ics.
          const raw = (world.emu as unknown as GoogleEmulator).sentMessages().at(-1)!.raw;
          const parsed = await simpleParser(raw);
          expect(parsed.subject).toBe('Erinnerung: Ihr Termin – Mittwoch 18:00');
          expect(parsed.text).toContain('Choose another time: https://sk.example/b/abc');
          expect(parsed.html).toContain('<a href="https://sk.example/b/abc">');
          expect(parsed.headers.get('content-type')).toMatchObject({ value: 'multipart/mixed' });
        }

        world.emu.faults.add({ match: { method: 'POST', path: view.paths.send }, fault: { status: 503 } });
        await submit(me, { kind: MAIL_SEND, key: 'mail:2', payload: {}, secret: mail('Second') as unknown as Record<string, unknown> });
        await settle();
        world.clock.advance({ hours: 8 });
        await settle();
        expect(await action('mail:2')).toMatchObject({ status: 'unknown', attempts: 1 });
        // (Not counting requests answered 401: a token refreshed on the emulator's clock, see the sparse check.)
        expect(world.emu.requests.filter((r) => view.paths.send.test(r.path.split('?')[0]!) && r.status !== 401).length).toBe(2);

        world.emu.faults.add({ match: { method: 'POST', path: view.paths.send }, fault: { status: 429, retryAfter: 30 } });
        await submit(me, { kind: MAIL_SEND, key: 'mail:3', payload: {}, secret: mail('Third') as unknown as Record<string, unknown> });
        await settle();
        expect(await action('mail:3')).toMatchObject({ status: 'done' });
        expect(view.sent().filter((s) => s.subject === 'Third')).toHaveLength(1);
      });

      if (provider === 'microsoft') {
        test('Outlook: where the practice wants sessions visibly marked, our category is added beside the therapist\'s own, once; invites are left alone', async () => {
          const emu = world.emu as unknown as GraphEmulator;
          const practice = await world.store.db.selectFrom('therapists').select('practice_id').where('id', '=', me.therapistId).executeTakeFirstOrThrow();
          const current = await getPracticeSettings(world.store.db, practice.practice_id);
          await updatePracticeSettings(world.store.db, { practiceId: practice.practice_id, settings: { ...current, outlookCategory: 'SessionKeeper' }, actor: 'test', therapistId: null, now: world.clock.now().toJSDate() });
          const at = eventAt(8, 18);
          const own = emu.createEvent(me.account, 'default', { subject: 'Therapy session - A.B.', categories: ['Blue category'], start: { dateTime: at.start.slice(0, 19), timeZone: ZONE }, end: { dateTime: at.end.slice(0, 19), timeZone: ZONE } });
          const invite = emu.createEvent(me.account, 'default', { subject: 'Therapy session', attendees: [{ emailAddress: { address: CLIENT.email, name: CLIENT.name }, type: 'required' }], start: { dateTime: eventAt(9, 18).start.slice(0, 19), timeZone: ZONE }, end: { dateTime: eventAt(9, 18).end.slice(0, 19), timeZone: ZONE } });
          const mail0 = view.clientMail();
          await settle();
          await settle();
          expect(emu.getEvent(me.account, own['id'] as string)!['categories']).toEqual(['Blue category', 'SessionKeeper']);
          expect(emu.getEvent(me.account, invite['id'] as string)!['categories'] ?? []).not.toContain('SessionKeeper');
          // Nothing reached the client.
          expect(view.clientMail()).toBe(mail0);
          await updatePracticeSettings(world.store.db, { practiceId: practice.practice_id, settings: current, actor: 'test', therapistId: null, now: world.clock.now().toJSDate() });
        });
      }

      test('a grant without the tasks permission: a clear reason, and only that connection waits', async () => {
        const other = await meOf(world, await view.connectWithoutTasks(world, 1));
        await drain(world, world.clock.now().toMillis(), random);
        await submit(other, { kind: TASK_OPEN, key: 'task.open:scope:1', factKey: 'scope:1', payload: { key: 'scope:1' }, secret: { title: 'Needs tasks', notes: '' } });
        await settle();
        // Everything else of that connection waits with it; the other therapist's work goes on.
        await submit(other, { kind: MAIL_SEND, key: 'mail:scope:1', payload: {}, secret: { to: [CLIENT], subject: 'Waits too', text: 'x', html: '<p>x</p>' } });
        await submit(me, { kind: TASK_OPEN, key: 'task.open:scope:2', factKey: 'scope:2', payload: { key: 'scope:2' }, secret: { title: 'Works', notes: '' } });
        await settle();
        expect((await action('task.open:scope:1')).status).toBe('parked');
        expect((await action('mail:scope:1')).status).toBe('parked');
        expect((await action('task.open:scope:2')).status).toBe('done');
        const conn = await world.store.db.selectFrom('connections').select(['status', 'status_reason']).where('id', '=', other.connectionId).executeTakeFirstOrThrow();
        expect(conn.status).toBe('needs_reauth');
        expect(conn.status_reason).toMatch(view.missingTasks);
        const mine = await world.store.db.selectFrom('connections').select('status').where('id', '=', me.connectionId).executeTakeFirstOrThrow();
        expect(mine.status).toBe('ok');
      });
    });
  }
}
