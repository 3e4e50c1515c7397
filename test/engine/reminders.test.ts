// Reminders to clients through the engine (src/engine/reminders.ts) on each platform's emulator and
// both databases, on a driven clock: each goes out exactly when it should (48 h and 2 h before, earlier
// than the client's quiet hours in their own zone), from the therapist's mailbox, with the time in the
// client's zone, an .ics and a link to choose another time; a session cancelled after its reminder fell
// due but before it went out sends nothing; a moved session's reminders follow the new time.
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { recordDueWork } from '../../src/engine/outbox.js';
import { defaultPlugins } from '../../src/engine/plugins.js';
import { getPracticeSettings, updatePracticeSettings } from '../../src/store/practices.js';
import { testBackends, testStores } from '../helpers/db.js';
import { meOf, viewOf, type Me, type PlatformView } from './platform-view.js';
import { clientEmail, rng } from './practice-life.js';
import { drain, googleWorld, graphWorld, type World } from './world.js';

const NY = 'America/New_York';
const FROM = '2026-03-02T09:00:00-05:00';

for (const [provider, make] of [['google', googleWorld], ['microsoft', graphWorld]] as const) {
  for (const backend of testBackends()) {
    describe(`client reminders on ${provider} [${backend}]`, { timeout: 180_000 }, () => {
      let world: World;
      let view: PlatformView;
      let me: Me;
      const random = rng(3);
      let booked = 0;
      /** Sets the clock and runs one tick (and the syncs and actions it brings). */
      const at = async (iso: string) => {
        world.clock.set(DateTime.fromISO(iso, { zone: NY }).toUTC().toISO()!);
        await drain(world, world.clock.now().toMillis(), random);
      };
      const book = async (client: number, startIso: string) => {
        const ref = `r${++booked}`;
        world.driver.apply({ op: 'book', b: { ref, therapist: 0, client, start: DateTime.fromISO(startIso, { zone: NY }).toISO()!, minutes: 50, invited: true } });
        await drain(world, world.clock.now().toMillis(), random);
        return ref;
      };
      const sentTo = (client: number) => view.sent().filter((m) => m.to.includes(clientEmail(0, client)));

      beforeAll(async () => {
        world = await make({ stores: testStores, backend, clock: new ManualClock(FROM), therapists: 0 });
        view = viewOf(world);
        me = await meOf(world, await world.connect(0));
        await world.store.db.updateTable('therapists').set({ display_name: 'Dr Rivera' }).where('id', '=', me.therapistId).execute();
      }, 180_000);
      afterAll(async () => world?.close());

      test('48 h and 2 h before, earlier than the quiet hours in the client\'s own zone, with the time there, an .ics and a link', async () => {
        await book(1, '2026-03-05T18:00');
        // The client lives in London: their quiet hours (21:00-08:00) are what count.
        const client = await world.store.db.selectFrom('clients').select('id').orderBy('created_at', 'desc').executeTakeFirstOrThrow();
        await world.store.db.updateTable('clients').set({ time_zone: 'Europe/London' }).where('id', '=', client.id).execute();
        // 48 h before is Tue 18:00 in New York, 23:00 in London: it goes at 20:59 London (15:59 New York).
        await at('2026-03-03T15:58');
        expect(sentTo(1)).toHaveLength(0);
        await at('2026-03-03T15:59');
        expect(sentTo(1)).toHaveLength(1);
        const mail = sentTo(1)[0]!;
        expect(mail.subject).toBe('Reminder: your appointment with Dr Rivera on Thursday 5 March');
        expect(mail.html).toContain('Hello ClientA1 Q,');
        expect(mail.html).toContain('on Thursday 5 March at 11:00 PM (London time)');
        expect(mail.html).toMatch(/Choose another time: <a href="http[^"]+\/book\/[A-Za-z0-9_-]{50}">/);
        expect(mail.html).not.toMatch(/therapy/i);
        const ics = mail.attachments.find((a) => a.filename === 'appointment.ics')!;
        expect(ics.contentType).toMatch(/^text\/calendar/);
        expect(ics.content.replace(/\r\n /g, '')).toContain('DTSTART:20260305T230000Z');
        // Later ticks the same day send nothing more.
        await at('2026-03-03T20:00');
        expect(sentTo(1)).toHaveLength(1);
        // 2 h before (16:00 New York) is 21:00 in London, quiet: 20:59 London, 15:59 New York.
        await at('2026-03-05T15:58');
        expect(sentTo(1)).toHaveLength(1);
        await at('2026-03-05T15:59');
        expect(sentTo(1)).toHaveLength(2);
        await at('2026-03-05T19:00');
        expect(sentTo(1)).toHaveLength(2);
      });

      test('cancelled after its reminder fell due, before it went out: nothing is sent', async () => {
        const ref = await book(2, '2026-03-09T10:00');
        // The 48-hour reminder falls due at Sat 10:00 and is recorded; the cancellation comes before it is sent.
        world.clock.set(DateTime.fromISO('2026-03-07T10:00', { zone: NY }).toUTC().toISO()!);
        const engine = world.engines[0]!;
        expect(await recordDueWork({ store: engine.store, connectors: engine.connectors, log: engine.log, plugins: defaultPlugins })).toBe(1);
        world.driver.apply({ op: 'cancel', ref });
        await drain(world, world.clock.now().toMillis(), random);
        await at('2026-03-09T09:00');
        expect(sentTo(2)).toHaveLength(0);
        const action = await world.store.db.selectFrom('actions').select(['status', 'last_error']).where('kind', '=', 'client.reminder').where('status', '!=', 'done').executeTakeFirstOrThrow();
        expect(action).toEqual({ status: 'cancelled', last_error: 'the session is no longer booked' });
      });

      test('a moved session: no reminder for the old time, its reminders for the new one', async () => {
        const ref = await book(3, '2026-03-12T18:00');
        await at('2026-03-10T18:00');
        expect(sentTo(3)).toHaveLength(1);
        // Moved on Wednesday morning to Friday 18:00.
        world.clock.set(DateTime.fromISO('2026-03-11T09:00', { zone: NY }).toUTC().toISO()!);
        world.driver.apply({ op: 'move', ref, start: DateTime.fromISO('2026-03-13T18:00', { zone: NY }).toISO()! });
        await drain(world, world.clock.now().toMillis(), random);
        await at('2026-03-11T17:59');
        expect(sentTo(3)).toHaveLength(1);
        await at('2026-03-11T18:00');
        expect(sentTo(3)).toHaveLength(2);
        expect(sentTo(3)[1]!.html).toContain('Friday 13 March at 6:00 PM (New York time)');
        // Thursday 16:00 (2 h before the old time): nothing.
        await at('2026-03-12T16:30');
        expect(sentTo(3)).toHaveLength(2);
        await at('2026-03-13T16:00');
        expect(sentTo(3)).toHaveLength(3);
      });

      test('moved at short notice after a reminder named the old time: the client hears of the new time at once', async () => {
        const ref = await book(4, '2026-03-17T18:00');
        await at('2026-03-15T18:00');
        expect(sentTo(4)).toHaveLength(1);
        // On Monday morning, moved to Monday 20:00: its 48-hour time has passed, but the client was told Tuesday.
        world.clock.set(DateTime.fromISO('2026-03-16T09:00', { zone: NY }).toUTC().toISO()!);
        world.driver.apply({ op: 'move', ref, start: DateTime.fromISO('2026-03-16T20:00', { zone: NY }).toISO()! });
        await drain(world, world.clock.now().toMillis(), random);
        expect(sentTo(4)).toHaveLength(2);
        expect(sentTo(4)[1]!.html).toContain('Monday 16 March at 8:00 PM (New York time)');
        const statuses = await world.store.db.selectFrom('actions').select(['status']).where('kind', '=', 'client.reminder').execute();
        expect(statuses.every((s) => s.status === 'done' || s.status === 'cancelled')).toBe(true);
      });

      test("the practice's popup reminders on the therapist's sessions (left alone on Outlook where the client would get an update)", async () => {
        const practiceId = (await world.store.db.selectFrom('therapists').select('practice_id').where('id', '=', me.therapistId).executeTakeFirstOrThrow()).practice_id;
        const settings = await getPracticeSettings(world.store.db, practiceId);
        await updatePracticeSettings(world.store.db, { practiceId, settings: { ...settings, sessionPopupMinutes: [15, 60] }, actor: 'test', therapistId: null, now: world.store.now() });
        await book(5, '2026-03-20T18:00');
        world.driver.apply({ op: 'book', b: { ref: 'named', therapist: 0, client: 6, start: DateTime.fromISO('2026-03-20T10:00', { zone: NY }).toISO()!, minutes: 50, invited: false } });
        await drain(world, world.clock.now().toMillis(), random);
        const eventOf = async (startIso: string) =>
          (await world.store.db.selectFrom('appointments').select('event_id').where('start_at', '=', DateTime.fromISO(startIso, { zone: NY }).toJSDate()).executeTakeFirstOrThrow()).event_id;
        const withClient = view.event(me, await eventOf('2026-03-20T18:00'))!;
        const named = view.event(me, await eventOf('2026-03-20T10:00'))!;
        if (provider === 'google') {
          expect(withClient.reminders).toEqual([15, 60]);
          expect(named.reminders).toEqual([15, 60]);
        } else {
          // Graph keeps one reminder; an organizer's change to an invite reaches the client, so that one is left.
          expect(named.reminders).toEqual([15]);
          const left = await world.store.db.selectFrom('actions').select(['status', 'last_error']).where('kind', '=', 'session.reminders').where('status', '=', 'cancelled').execute();
          expect(left).toHaveLength(1);
          expect(left[0]!.last_error).toMatch(/the change would reach the client/);
        }
        await updatePracticeSettings(world.store.db, { practiceId, settings, actor: 'test', therapistId: null, now: world.store.now() });
      });

      test("quiet hours on the client's clock across their change to summer time", async () => {
        // A client in London; their session is Monday 30 March, 09:00 London (04:00 New York), the
        // morning after the UK's clocks went forward. Two hours before is 07:00 London, quiet: the
        // reminder goes at 20:59 London on Sunday, which is BST by then (19:59Z, 15:59 New York).
        await at('2026-03-25T09:00');
        await book(7, '2026-03-30T04:00');
        const client = await world.store.db.selectFrom('clients').select('id').orderBy('created_at', 'desc').executeTakeFirstOrThrow();
        await world.store.db.updateTable('clients').set({ time_zone: 'Europe/London' }).where('id', '=', client.id).execute();
        // 48 h before: Saturday 08:00 London (GMT still, the quiet hours just over), 04:00 New York.
        await at('2026-03-28T03:59');
        expect(sentTo(7)).toHaveLength(0);
        await at('2026-03-28T04:00');
        expect(sentTo(7)).toHaveLength(1);
        await at('2026-03-29T15:58');
        expect(sentTo(7)).toHaveLength(1);
        await at('2026-03-29T15:59');
        expect(sentTo(7)).toHaveLength(2);
        expect(sentTo(7)[1]!.html).toContain('on Monday 30 March at 9:00 AM (London time)');
      });
    });
  }
}
