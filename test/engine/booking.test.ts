// Rebooking from a link through the engine (src/engine/booking.ts), on each platform's emulator and
// both databases: the link says nothing about the client and refuses tampering and expiry; a booking
// holds its time at once, makes one event with the client invited (a Meet or Teams link for
// telehealth) that comes back as the client's session; a used link shows its booking; of two
// clients taking the same time one gets it; the platform's free/busy catches what the store has
// not seen yet; a window's location goes into the invite.
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { bookSlot, createBookingLink, openLink, type BookResult } from '../../src/engine/booking.js';
import { pendingHolds, suggestForClient } from '../../src/engine/suggestions.js';
import { getPracticeSettings, updatePracticeSettings } from '../../src/store/practices.js';
import { silentLogger } from '../../src/log.js';
import type { GoogleEmulator } from '../emulators/google/server.js';
import type { GraphEmulator } from '../emulators/microsoft/server.js';
import { testBackends, testStores } from '../helpers/db.js';
import { meOf, viewOf, type Me, type PlatformView } from './platform-view.js';
import { rng } from './practice-life.js';
import { drain, googleWorld, graphWorld, type World } from './world.js';

const ZONE = 'America/New_York';
const NOW = '2026-03-02T09:00:00-05:00';
const SAM = 'sam.client@example.com';
const ALEX = 'alex.client@example.com';

for (const [provider, make] of [['google', googleWorld], ['microsoft', graphWorld]] as const) {
  for (const backend of testBackends()) {
    describe(`booking from a link on ${provider} [${backend}]`, { timeout: 120_000 }, () => {
      let world: World;
      let view: PlatformView;
      let me: Me;
      let sam: string;
      let alex: string;
      const random = rng(11);
      const now = () => world.store.now();
      const deps = () => ({ store: world.store, connectors: world.engines[0]!.connectors, log: silentLogger, now: now() });
      const settle = () => drain(world, world.clock.now().toMillis() + 120_000, random);
      const booked = (r: BookResult) => {
        if (r.kind !== 'booked') throw new Error(`expected a booking, got ${JSON.stringify(r)}`);
        return r.booking;
      };
      const insert = (summary: string, startIso: string, minutes: number, attendee?: string) => {
        const s = DateTime.fromISO(startIso, { zone: ZONE });
        const e = s.plus({ minutes });
        if (provider === 'google') {
          (world.emu as unknown as GoogleEmulator).insertEvent(me.providerCalendarId, {
            summary,
            ...(attendee ? { attendees: [{ email: attendee, responseStatus: 'accepted' }] } : {}),
            start: { dateTime: s.toISO()!, timeZone: ZONE },
            end: { dateTime: e.toISO()!, timeZone: ZONE },
          });
        } else {
          (world.emu as unknown as GraphEmulator).createEvent(me.account, 'default', {
            subject: summary,
            ...(attendee ? { attendees: [{ emailAddress: { address: attendee }, type: 'required', status: { response: 'accepted' } }] } : {}),
            start: { dateTime: s.toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: 'Eastern Standard Time' },
            end: { dateTime: e.toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: 'Eastern Standard Time' },
          });
        }
      };

      beforeAll(async () => {
        world = await make({ stores: testStores, backend, clock: new ManualClock(NOW), therapists: 0 });
        view = viewOf(world);
        me = await meOf(world, await world.connect(0));
        // Two clients, each with two past sessions (kept: attendance is presumed as they end).
        insert('Therapy session', '2026-02-17T18:00', 50, SAM);
        insert('Therapy session', '2026-02-24T18:00', 50, SAM);
        insert('Therapy session', '2026-02-19T10:00', 50, ALEX);
        insert('Therapy session', '2026-02-26T10:00', 50, ALEX);
        await drain(world, world.clock.now().toMillis(), random);
        const clientOf = async (hour: number) => {
          const rows = await world.store.db.selectFrom('appointments').select(['client_id', 'start_at']).where('therapist_id', '=', me.therapistId).where('state', '=', 'attended').execute();
          return rows.find((r) => DateTime.fromJSDate(r.start_at, { zone: ZONE }).hour === hour)!.client_id!;
        };
        sam = await clientOf(18);
        alex = await clientOf(10);
      }, 120_000);
      afterAll(async () => world?.close());

      test('a link carries no name or email, opens, and refuses a changed token, an unknown id and expiry', async () => {
        const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: sam, factKey: 'signal:test', now: now(), publicUrl: 'https://book.example' });
        expect(link.url).toMatch(/^https:\/\/book\.example\/book\/[A-Za-z0-9_-]{50}$/);
        expect(link.url).not.toMatch(/sam|client|example\.com|therapy/i);
        expect(DateTime.fromJSDate(link.expiresAt).diff(DateTime.fromJSDate(now()), 'days').days).toBeCloseTo(14, 0);
        const opened = await openLink(world.store.db, world.store.keyring, link.token, now());
        expect(opened).toMatchObject({ state: 'open', link: { clientId: sam, factKey: 'signal:test' } });
        // Every single character changed: never opens.
        for (let i = 0; i < link.token.length; i++) {
          const c = link.token[i] === 'A' ? 'B' : 'A';
          const forged = link.token.slice(0, i) + c + link.token.slice(i + 1);
          expect((await openLink(world.store.db, world.store.keyring, forged, now())).state).toBe('invalid');
        }
        expect((await openLink(world.store.db, world.store.keyring, 'not-a-token', now())).state).toBe('invalid');
        const later = DateTime.fromJSDate(now()).plus({ days: 14, minutes: 1 }).toJSDate();
        expect((await openLink(world.store.db, world.store.keyring, link.token, later)).state).toBe('expired');
      });

      test('a booking holds its time at once, makes one event with the client invited and a video link, and comes back as their session', async () => {
        const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: sam, factKey: 'signal:sam-gap', now: now() });
        const offer = await suggestForClient(world.store, { therapistId: me.therapistId, clientId: sam, now: now(), k: 8 });
        // Their habit first: Tuesday 18:00.
        const pick = offer.suggestions[0]!;
        expect(DateTime.fromMillis(pick.start, { zone: ZONE }).toFormat('ccc HH:mm')).toBe('Tue 18:00');
        const booking = booked(await bookSlot(deps(), link.token, { start: new Date(pick.start), mode: 'telehealth', clientZone: 'Europe/London' }));
        expect(booking).toMatchObject({ status: 'confirming', mode: 'telehealth', clientZone: 'Europe/London' });
        // Held before the event exists: nobody else is offered that time.
        expect((await pendingHolds(world.store.db, me.therapistId, now(), new Date(pick.end))).map((h) => h.start.getTime())).toContain(pick.start);
        const other = await suggestForClient(world.store, { therapistId: me.therapistId, clientId: alex, now: now(), k: 40 });
        expect(other.suggestions.some((s) => s.start < pick.end + 10 * 60_000 && s.end > pick.start - 10 * 60_000)).toBe(false);
        // The same link again: its booking, not a second one.
        const again = await bookSlot(deps(), link.token, { start: new Date(pick.start + 86_400_000), mode: 'telehealth' });
        expect(again).toMatchObject({ kind: 'closed', link: { state: 'used', booking: { id: booking.id } } });

        await settle();
        const action = await world.store.db.selectFrom('bookings as b').innerJoin('actions as a', 'a.id', 'b.action_id').select(['a.status', 'a.external_ref', 'a.payload']).where('b.id', '=', booking.id).executeTakeFirstOrThrow();
        expect(action.status).toBe('done');
        // The plain payload holds no name or email (they are sealed).
        expect(JSON.stringify(action.payload)).not.toMatch(/sam|@/i);
        const event = view.event(me, action.external_ref!)!;
        expect(event.attendees).toEqual([SAM]);
        expect(event.meetingUrl).toMatch(/^https:\/\//);
        expect(event.summary).toMatch(/^Individual session with /);
        expect((await openLink(world.store.db, world.store.keyring, link.token, now()))).toMatchObject({ state: 'used', booking: { status: 'confirmed' } });
        // Synced back: the client's own session (the tag makes it one), and the hold gives way to it.
        const session = await world.store.db.selectFrom('appointments').select(['client_id', 'state']).where('event_id', '=', action.external_ref!).executeTakeFirstOrThrow();
        expect(session).toEqual({ client_id: sam, state: 'scheduled' });
        expect(await pendingHolds(world.store.db, me.therapistId, now(), new Date(pick.end))).toEqual([]);
        const audit = await world.store.db.selectFrom('audit_log').select(['actor', 'detail']).where('subject_type', '=', 'booking').where('subject_id', '=', booking.id).executeTakeFirstOrThrow();
        expect(audit.detail).toMatchObject({ factKey: 'signal:sam-gap' });
      });

      test('two clients taking the same time at once: one gets it, the other is told it was taken', async () => {
        const a = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: sam, now: now() });
        const b = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: alex, now: now() });
        const slot = (await suggestForClient(world.store, { therapistId: me.therapistId, clientId: alex, now: now(), k: 8 })).suggestions.at(-1)!;
        const results = await Promise.all([a, b].map((l) => bookSlot(deps(), l.token, { start: new Date(slot.start), mode: 'in_person' })));
        expect(results.map((r) => r.kind).sort()).toEqual(['booked', 'taken']);
        const loser = [a, b][results.findIndex((r) => r.kind === 'taken')]!;
        // The loser's link is still open, and its fresh times leave the taken one out.
        const opened = await openLink(world.store.db, world.store.keyring, loser.token, now());
        expect(opened.state).toBe('open');
        await settle();
      });

      test("the platform's free/busy catches an event the store has not seen yet", async () => {
        const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: alex, now: now() });
        const slot = (await suggestForClient(world.store, { therapistId: me.therapistId, clientId: alex, now: now(), k: 8 })).suggestions[0]!;
        // Put on the calendar at the platform; its notification is held by the proxy (not synced).
        insert('Dentist', DateTime.fromMillis(slot.start, { zone: ZONE }).toISO()!, 30);
        const result = await bookSlot(deps(), link.token, { start: new Date(slot.start), mode: 'telehealth' });
        expect(result).toMatchObject({ kind: 'taken' });
        await settle();
      });

      test('a platform that cannot answer free/busy does not stop the booking: the synced calendars decide', async () => {
        const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: alex, now: now() });
        const slot = (await suggestForClient(world.store, { therapistId: me.therapistId, clientId: alex, now: now(), k: 8 })).suggestions[1]!;
        world.emu.faults.add({ match: { path: /\/(freeBusy|getSchedule)$/ }, fault: { status: 500 }, times: 20 });
        const result = await bookSlot(deps(), link.token, { start: new Date(slot.start), mode: 'telehealth' });
        expect(result).toMatchObject({ kind: 'booked' });
        await settle();
        expect(await openLink(world.store.db, world.store.keyring, link.token, now())).toMatchObject({ state: 'used', booking: { status: 'confirmed' } });
      });

      test("an in-person booking in a window with a location invites to that address, without a video link", async () => {
        const practiceId = (await world.store.db.selectFrom('therapists').select('practice_id').where('id', '=', me.therapistId).executeTakeFirstOrThrow()).practice_id;
        const settings = await getPracticeSettings(world.store.db, practiceId);
        const change = (next: unknown) => updatePracticeSettings(world.store.db, { practiceId, settings: next, actor: 'test', therapistId: null, now: now() });
        await change({
          ...settings,
          locations: [
            { id: 'main', name: 'Main office', address: '1 Main St, Springfield' },
            { id: 'north', name: 'North clinic', address: '9 North Rd, Springfield' },
          ],
          // Saturday mornings: in person only, at the north clinic.
          flexibleWindows: [{ days: ['sat'], start: '09:00', end: '12:00', modes: ['in_person'], location: 'north' }],
        });
        const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: alex, now: now() });
        const sat = (await suggestForClient(world.store, { therapistId: me.therapistId, clientId: alex, now: now(), k: 20 })).suggestions.find((s) => s.local.weekday === 'sat')!;
        expect(sat).toMatchObject({ modes: ['in_person'], location: 'north' });
        expect(await bookSlot(deps(), link.token, { start: new Date(sat.start), mode: 'telehealth' })).toMatchObject({ kind: 'taken' });
        const booking = booked(await bookSlot(deps(), link.token, { start: new Date(sat.start), mode: 'in_person' }));
        expect(booking.location).toBe('9 North Rd, Springfield');
        // The confirmation, read back from the link later, names the address too.
        expect(await openLink(world.store.db, world.store.keyring, link.token, now())).toMatchObject({ state: 'used', booking: { location: '9 North Rd, Springfield', mode: 'in_person' } });
        await settle();
        const ref = (await world.store.db.selectFrom('bookings as b').innerJoin('actions as a', 'a.id', 'b.action_id').select('a.external_ref').where('b.id', '=', booking.id).executeTakeFirstOrThrow()).external_ref!;
        const event = view.event(me, ref)!;
        expect(event.attendees).toEqual([ALEX]);
        expect(event.meetingUrl).toBeNull();
        await change(settings);
      });
    });
  }
}
