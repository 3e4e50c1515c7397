// Follow-up tasks through the engine (src/engine/followups.ts) on each platform's emulator and both
// databases, on a driven clock over simulated weeks: a cancellation or a no-show opens a task at once in
// the therapist's follow-up list, naming the client, what happened, times to offer and a booking link;
// more facts about the same client update that task instead of opening another; a new booking closes it
// (the task says so); a client not rebooked after session 1 gets a task exactly when the watch says,
// with a message to send; a task the therapist completed is never reopened for its fact.
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { bookSlot } from '../../src/engine/booking.js';
import type { GoogleEmulator } from '../emulators/google/server.js';
import type { GraphEmulator } from '../emulators/microsoft/server.js';
import { testBackends, testStores } from '../helpers/db.js';
import { meOf, viewOf, type Me, type PlatformView } from './platform-view.js';
import { rng } from './practice-life.js';
import { drain, googleWorld, graphWorld, type World } from './world.js';

const NY = 'America/New_York';
const FROM = '2026-03-02T09:00:00-05:00';

for (const [provider, make] of [['google', googleWorld], ['microsoft', graphWorld]] as const) {
  for (const backend of testBackends()) {
    describe(`follow-up tasks on ${provider} [${backend}]`, { timeout: 180_000 }, () => {
      let world: World;
      let view: PlatformView;
      let me: Me;
      const random = rng(5);
      let booked = 0;
      const settle = () => drain(world, world.clock.now().toMillis(), random);
      /** Sets the clock (New York wall time) and runs one tick (and the syncs and actions it brings). */
      const at = async (iso: string) => {
        world.clock.set(DateTime.fromISO(iso, { zone: NY }).toUTC().toISO()!);
        await settle();
      };
      const book = (client: number, startIso: string, invited = true) => {
        const ref = `f${++booked}`;
        world.driver.apply({ op: 'book', b: { ref, therapist: 0, client, start: DateTime.fromISO(startIso, { zone: NY }).toISO()!, minutes: 50, invited } });
        return ref;
      };
      const list = async () => {
        const row = await world.store.db.selectFrom('task_lists').select('provider_list_id').where('therapist_id', '=', me.therapistId).executeTakeFirst();
        return row ? view.tasks(me, row.provider_list_id) : [];
      };
      const tasksOf = async (name: string) => (await list()).filter((t) => t.title.includes(name));

      beforeAll(async () => {
        world = await make({ stores: testStores, backend, clock: new ManualClock(FROM), therapists: 0 });
        view = viewOf(world);
        me = await meOf(world, await world.connect(0));
      }, 180_000);
      afterAll(async () => world?.close());

      test('a cancellation opens a task at once: the client, what happened, times to offer, a link; booking again closes it', async () => {
        const ref = book(1, '2026-03-05T18:00');
        await settle();
        expect(await tasksOf('ClientA1')).toEqual([]);
        world.clock.set(DateTime.fromISO('2026-03-04T10:00', { zone: NY }).toUTC().toISO()!);
        world.driver.apply({ op: 'cancel', ref });
        await settle();
        const [task, ...more] = await tasksOf('ClientA1 Q');
        expect(more).toEqual([]);
        expect(task!.status).toBe('open');
        expect(task!.title).toBe('ClientA1 Q cancelled Thu 5 Mar, 6:00 PM: offer another time');
        expect(task!.notes).toContain('- Cancelled the session of Thu 5 Mar, 6:00 PM (seen Wed 4 Mar, 10:00 AM).');
        expect(task!.notes).toContain('Nothing is booked.');
        const offered = task!.notes.split('Evening and weekend times you could offer:\n')[1]!.split('\n\n')[0]!.split('\n');
        expect(offered.length).toBeGreaterThan(0);
        expect(offered.length).toBeLessThanOrEqual(3);
        // Evening and weekend times only (the practice's flexible windows: weekdays from 17:00, Saturday mornings).
        for (const l of offered) expect(l).toMatch(/^- (Sat \d+ Mar, (9|10|11|12):00 AM \(weekend|(Mon|Tue|Wed|Thu|Fri) \d+ Mar, [5-8]:00 PM \(evening); /);
        expect(task!.notes).toMatch(/\/book\/[A-Za-z0-9_-]{50}/);
        // One cancellation is not yet a client leaving: no message to send.
        expect(task!.notes).not.toContain('A message you could send');

        // The client books again (a new session on the calendar): the task closes by itself and says why.
        book(1, '2026-03-10T18:00');
        await at('2026-03-04T12:00');
        const [closed] = await tasksOf('ClientA1 Q');
        expect(closed!.status).toBe('completed');
        expect(closed!.notes).toMatch(/^Closed by SessionKeeper: booked again for Tue 10 Mar, 6:00 PM\./);
        const row = await world.store.db.selectFrom('follow_ups').select(['status', 'closed_reason']).where('therapist_id', '=', me.therapistId).executeTakeFirstOrThrow();
        expect(row).toEqual({ status: 'closed', closed_reason: 'booked' });
      });

      test('cancelled and booked again in the same change: no task', async () => {
        const ref = book(2, '2026-03-06T18:00');
        await settle();
        world.driver.apply({ op: 'cancel', ref });
        book(2, '2026-03-07T10:00');
        await settle();
        expect(await tasksOf('ClientA2')).toEqual([]);
      });

      test('more about the same client updates the one task; a client who keeps missing gets a message to send', async () => {
        book(3, '2026-03-09T18:00');
        const second = book(3, '2026-03-11T18:00');
        await at('2026-03-06T09:00');
        // Monday's session: the client does not come (the therapist marks it).
        await at('2026-03-09T19:30');
        const monday = (await world.store.db.selectFrom('appointments').select('event_id').where('start_at', '=', DateTime.fromISO('2026-03-09T18:00', { zone: NY }).toJSDate()).executeTakeFirstOrThrow()).event_id;
        const mondayRef = world.driver.refOf(monday)!;
        world.driver.apply({ op: 'noshow', ref: mondayRef });
        await settle();
        let tasks = await tasksOf('ClientA3 Q');
        expect(tasks).toHaveLength(1);
        expect(tasks[0]!.title).toBe('ClientA3 Q missed Mon 9 Mar, 6:00 PM: check in');
        expect(tasks[0]!.notes).toContain('Next booked: Wed 11 Mar, 6:00 PM.');
        // Then they cancel Wednesday's: the same task, now with both, and a message that asks how they are.
        await at('2026-03-10T09:00');
        world.driver.apply({ op: 'cancel', ref: second });
        await settle();
        tasks = await tasksOf('ClientA3 Q');
        expect(tasks).toHaveLength(1);
        expect(tasks[0]!.status).toBe('open');
        expect(tasks[0]!.notes).toContain('- Did not come to the session of Mon 9 Mar, 6:00 PM.');
        expect(tasks[0]!.notes).toContain('- Cancelled the session of Wed 11 Mar, 6:00 PM (seen Tue 10 Mar, 9:00 AM).');
        expect(tasks[0]!.notes).toContain('Nothing is booked.');
        expect(tasks[0]!.notes).toMatch(/A message you could send:\nHi ClientA3, I wanted to check in and see how you are doing\. .*\/book\//);
        const opened = await world.store.db.selectFrom('actions').select(['kind', 'status']).where('fact_key', 'like', 'followup:no_show:%').orderBy('kind').execute();
        expect(opened).toEqual([
          { kind: 'followup.open', status: 'done' },
          { kind: 'followup.update', status: 'done' },
        ]);
      });

      test('not rebooked 7 days after session 1: a task exactly then, with a message; completed by the therapist, never reopened', async () => {
        book(4, '2026-03-12T10:00');
        await at('2026-03-11T09:00');
        // The session ends 10:50 on the 12th and is presumed attended; the watch says 7 days after.
        await at('2026-03-19T10:49');
        expect(await tasksOf('ClientA4')).toEqual([]);
        await at('2026-03-19T10:50');
        const [task] = await tasksOf('ClientA4 Q');
        expect(task!.title).toBe('ClientA4 Q has not rebooked after session 1: check in');
        expect(task!.notes).toContain('- Nothing booked since session 1 on Thu 12 Mar');
        expect(task!.notes).toContain('A message you could send:');
        // The therapist ticks it off in their task list; the check notices, and nothing reopens it.
        const listId = (await world.store.db.selectFrom('task_lists').select('provider_list_id').where('therapist_id', '=', me.therapistId).executeTakeFirstOrThrow()).provider_list_id;
        view.completeTask(me, listId, task!.id);
        await at('2026-03-19T12:00');
        await at('2026-03-21T12:00');
        const after = await tasksOf('ClientA4 Q');
        expect(after).toHaveLength(1);
        expect(after[0]!.status).toBe('completed');
        const closedBy = await world.store.db.selectFrom('tasks').select(['status', 'closed_by']).where('provider_task_id', '=', task!.id).executeTakeFirstOrThrow();
        expect(closedBy).toEqual({ status: 'completed', closed_by: 'therapist' });
      });

      test("booking from the task's link closes the task", async () => {
        const ref = book(5, '2026-03-24T18:00');
        await at('2026-03-22T09:00');
        world.driver.apply({ op: 'cancel', ref });
        await settle();
        const [task] = await tasksOf('ClientA5 Q');
        const token = /\/book\/([A-Za-z0-9_-]{50})/.exec(task!.notes)![1]!;
        const engine = world.engines[0]!;
        const first = /- (\w{3} \d+ \w{3}, \d+:\d\d [AP]M)/.exec(task!.notes.split('Evening and weekend times you could offer:\n')[1]!)![1]!;
        const start = DateTime.fromFormat(`${first} 2026`, 'ccc d LLL, h:mm a yyyy', { zone: NY, locale: 'en' });
        const result = await bookSlot({ store: engine.store, connectors: engine.connectors, log: engine.log, now: world.store.now() }, token, { start: start.toJSDate(), mode: 'telehealth' });
        expect(result.kind).toBe('booked');
        await settle();
        const [closed] = await tasksOf('ClientA5 Q');
        expect(closed!.status).toBe('completed');
        expect(closed!.notes).toContain(`Closed by SessionKeeper: booked again for ${first}.`);
      });

      test('a regular client past their usual gap: a check-in task exactly when it becomes true', async () => {
        await at('2026-03-25T09:00');
        for (const d of ['2026-03-31', '2026-04-07', '2026-04-14']) book(6, `${d}T19:00`);
        await settle();
        // Weekly: the gap is at least 21 days (cadence), from the last kept session (Tue 14 Apr, 19:00).
        await at('2026-05-05T18:59');
        expect(await tasksOf('ClientA6')).toEqual([]);
        await at('2026-05-05T19:00');
        const [task, ...more] = await tasksOf('ClientA6 Q');
        expect(more).toEqual([]);
        expect(task!.title).toBe('Check in with ClientA6 Q: no session for 21 days');
        expect(task!.notes).toContain('- No session for 21 days since Tue 14 Apr; usually every 7 days.');
        expect(task!.notes).toContain('A message you could send:');
      });

      test('a series ended with nothing booked: a task at once; the client named only in titles gets no link', async () => {
        await at('2026-05-06T09:00');
        const title = 'ClientA7 Q - session';
        let master: string;
        if (provider === 'google') {
          const emu = world.emu as unknown as GoogleEmulator;
          const start = DateTime.fromISO('2026-05-12T20:00', { zone: NY });
          master = emu.insertEvent(me.providerCalendarId, {
            summary: title,
            start: { dateTime: start.toISO(), timeZone: NY },
            end: { dateTime: start.plus({ minutes: 50 }).toISO(), timeZone: NY },
            recurrence: ['RRULE:FREQ=WEEKLY;COUNT=4'],
          })['id'] as string;
        } else {
          const emu = world.emu as unknown as GraphEmulator;
          master = emu.createEvent(me.account, 'default', {
            subject: title,
            start: { dateTime: '2026-05-12T20:00:00', timeZone: 'Eastern Standard Time' },
            end: { dateTime: '2026-05-12T20:50:00', timeZone: 'Eastern Standard Time' },
            recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['tuesday'] }, range: { type: 'numbered', startDate: '2026-05-12', numberOfOccurrences: 4 } },
          })['id'] as string;
        }
        await settle();
        // The first session is kept; on Thursday the therapist deletes the series.
        await at('2026-05-14T10:00');
        if (provider === 'google') (world.emu as unknown as GoogleEmulator).deleteEvent(me.providerCalendarId, master);
        else (world.emu as unknown as GraphEmulator).deleteEvent(me.account, master);
        await settle();
        const [task] = await tasksOf('ClientA7 Q');
        expect(task!.title).toBe("ClientA7 Q's regular sessions ended with nothing booked: check in");
        expect(task!.notes).toContain('- Their regular sessions were ended from Tue 19 May with nothing booked after (Thu 14 May).');
        expect(task!.notes).toContain('No email address is known for ClientA7 Q, so no booking link could be made.');
        // Five days later the not-rebooked watch is true too: the same task says so, no second one.
        await at('2026-05-19T20:50');
        const tasks = await tasksOf('ClientA7 Q');
        expect(tasks).toHaveLength(1);
        expect(tasks[0]!.notes).toContain('- Nothing booked since session 1 on Tue 12 May');
      });

      test('the therapist completed the task just before more happened: the new fact gets a task of its own', async () => {
        const first = book(8, '2026-05-26T18:00');
        const second = book(8, '2026-05-28T18:00');
        await at('2026-05-21T09:00');
        world.driver.apply({ op: 'cancel', ref: first });
        await at('2026-05-22T09:00');
        const [a] = await tasksOf('ClientA8 Q');
        const listId = (await world.store.db.selectFrom('task_lists').select('provider_list_id').where('therapist_id', '=', me.therapistId).executeTakeFirstOrThrow()).provider_list_id;
        // Ticked off in their task list; minutes later (before our half-hourly look) the client cancels again.
        view.completeTask(me, listId, a!.id);
        world.driver.apply({ op: 'cancel', ref: second });
        await at('2026-05-22T09:05');
        const tasks = await tasksOf('ClientA8 Q');
        expect(tasks).toHaveLength(2);
        const done = tasks.find((t) => t.id === a!.id)!;
        expect(done.status).toBe('completed');
        const fresh = tasks.find((t) => t.id !== a!.id)!;
        expect(fresh.status).toBe('open');
        expect(fresh.title).toBe('ClientA8 Q cancelled Thu 28 May, 6:00 PM: offer another time');
        expect(fresh.notes).toContain('- Cancelled the session of Thu 28 May, 6:00 PM');
      });
    });
  }
}
