// Rebooking from a link through the engine (src/engine/booking.ts), on each platform's emulator and
// both databases: the link says nothing about the client and refuses tampering and expiry; a booking
// holds its time at once, makes one event with the client invited (a Meet or Teams link for
// telehealth) that comes back as the client's session; a used link shows its booking; of two
// clients taking the same time one gets it; the platform's free/busy catches what the store has
// not seen yet; a window's location goes into the invite. A link about a session (a reminder's) moves
// that session: its own time is not offered back but is free for its move, the client gets the
// platform's update, the synced copy is the same session rescheduled; a cancelled session's link books
// a new one; the session a link names cannot be changed under it.
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { bookingPage, bookSlot, createBookingLink, openLink, type BookResult } from '../../src/engine/booking.js';
import { pendingHolds, suggestForClient } from '../../src/engine/suggestions.js';
import { InvalidInput } from '../../src/errors.js';
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
const ROBIN = 'robin.client@example.com';

for (const [provider, make] of [['google', googleWorld], ['microsoft', graphWorld]] as const) {
  for (const backend of testBackends()) {
    describe(`booking from a link on ${provider} [${backend}]`, { timeout: 120_000 }, () => {
      let world: World;
      let view: PlatformView;
      let me: Me;
      let sam: string;
      let alex: string;
      let robin: string;
      const random = rng(11);
      const now = () => world.store.now();
      const deps = () => ({ store: world.store, connectors: world.engines[0]!.connectors, log: silentLogger, now: now() });
      const settle = () => drain(world, world.clock.now().toMillis() + 120_000, random);
      const booked = (r: BookResult) => {
        if (r.kind !== 'booked') throw new Error(`expected a booking, got ${JSON.stringify(r)}`);
        return r.booking;
      };
      /** An event the therapist puts on their calendar (they organize it); its platform id. */
      const insert = (summary: string, startIso: string, minutes: number, attendee?: string): string => {
        const s = DateTime.fromISO(startIso, { zone: ZONE });
        const e = s.plus({ minutes });
        if (provider === 'google') {
          return (world.emu as unknown as GoogleEmulator).insertEvent(me.providerCalendarId, {
            summary,
            ...(attendee ? { attendees: [{ email: attendee, responseStatus: 'accepted' }] } : {}),
            start: { dateTime: s.toISO()!, timeZone: ZONE },
            end: { dateTime: e.toISO()!, timeZone: ZONE },
          })['id'] as string;
        } else {
          return (world.emu as unknown as GraphEmulator).createEvent(me.account, 'default', {
            subject: summary,
            ...(attendee ? { attendees: [{ emailAddress: { address: attendee }, type: 'required', status: { response: 'accepted' } }] } : {}),
            start: { dateTime: s.toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: 'Eastern Standard Time' },
            end: { dateTime: e.toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: 'Eastern Standard Time' },
          })['id'] as string;
        }
      };
      /** The therapist deletes the event at the platform (the client's invite is cancelled). */
      const remove = (eventId: string) =>
        provider === 'google' ? (world.emu as unknown as GoogleEmulator).deleteEvent(me.providerCalendarId, eventId) : (world.emu as unknown as GraphEmulator).deleteEvent(me.account, eventId);
      /** Where the platform has the event now (Graph renders UTC times without an offset). */
      const platformStart = (eventId: string): number => {
        if (provider === 'google') return Date.parse(((world.emu as unknown as GoogleEmulator).getEvent(me.providerCalendarId, eventId)!['start'] as { dateTime: string }).dateTime);
        const start = (world.emu as unknown as GraphEmulator).getEvent(me.account, eventId)!['start'] as { dateTime: string; timeZone: string };
        return DateTime.fromISO(start.dateTime, { zone: start.timeZone === 'UTC' ? 'utc' : start.timeZone }).toMillis();
      };
      /** The client's sessions as the store has them (from sync). */
      const sessionsOf = (clientId: string) =>
        world.store.db.selectFrom('appointments').select(['id', 'event_id', 'start_at', 'state']).where('therapist_id', '=', me.therapistId).where('client_id', '=', clientId).orderBy('start_at').execute();
      const at = (iso: string) => DateTime.fromISO(iso, { zone: ZONE }).toMillis();

      beforeAll(async () => {
        world = await make({ stores: testStores, backend, clock: new ManualClock(NOW), therapists: 0 });
        view = viewOf(world);
        me = await meOf(world, await world.connect(0));
        // Two clients, each with two past sessions (kept: attendance is presumed as they end).
        insert('Therapy session', '2026-02-17T18:00', 50, SAM);
        insert('Therapy session', '2026-02-24T18:00', 50, SAM);
        insert('Therapy session', '2026-02-19T10:00', 50, ALEX);
        insert('Therapy session', '2026-02-26T10:00', 50, ALEX);
        // Robin comes on Tuesdays at 19:00: what their page ranks first.
        insert('Therapy session', '2026-02-10T19:00', 50, ROBIN);
        insert('Therapy session', '2026-02-17T19:00', 50, ROBIN);
        insert('Therapy session', '2026-02-24T19:00', 50, ROBIN);
        await drain(world, world.clock.now().toMillis(), random);
        const clientOf = async (hour: number) => {
          const rows = await world.store.db.selectFrom('appointments').select(['client_id', 'start_at']).where('therapist_id', '=', me.therapistId).where('state', '=', 'attended').execute();
          return rows.find((r) => DateTime.fromJSDate(r.start_at, { zone: ZONE }).hour === hour)!.client_id!;
        };
        sam = await clientOf(18);
        alex = await clientOf(10);
        robin = await clientOf(19);
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

      test("a link about a session moves it: not to its own time, but to one overlapping it; one event, the client updated, the same session rescheduled", async () => {
        const eventId = insert('Therapy session', '2026-03-17T19:00', 50, ROBIN);
        await settle();
        const [session] = await sessionsOf(robin).then((rows) => rows.filter((r) => r.state === 'scheduled' && r.start_at > now()));
        expect(session).toMatchObject({ event_id: eventId, start_at: new Date(at('2026-03-17T19:00')) });
        const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, factKey: `reminder:${session!.id}`, appointmentId: session!.id, now: now() });
        const opened = await openLink(world.store.db, world.store.keyring, link.token, now());
        if (opened.state !== 'open') throw new Error(`expected an open link, got ${opened.state}`);
        expect(opened.link.appointmentId).toBe(session!.id);

        // The page names the session and offers their usual Tuesday 19:00 in other weeks, never its own time.
        const page = await bookingPage(world.store, opened.link, now());
        expect(page.moving).toEqual({ start: new Date(at('2026-03-17T19:00')), end: new Date(at('2026-03-17T19:50')), mode: 'in_person' });
        const offered = page.suggestions.map((s) => DateTime.fromMillis(s.start, { zone: ZONE }).toFormat('ccc d LLL HH:mm'));
        expect(offered).toContain('Tue 10 Mar 19:00');
        expect(offered).not.toContain('Tue 17 Mar 19:00');
        expect(await bookSlot(deps(), link.token, { start: new Date(at('2026-03-17T19:00')), mode: 'in_person' })).toMatchObject({ kind: 'taken' });
        // 19:30 overlaps the session: busy for anyone else, free for the session's own move.
        const other = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: alex, now: now() });
        expect(await bookSlot(deps(), other.token, { start: new Date(at('2026-03-17T19:30')), mode: 'in_person' })).toMatchObject({ kind: 'taken' });
        const eventsBefore = view.createdEvents(me);
        const mailBefore = view.clientMail();
        const moved = booked(await bookSlot(deps(), link.token, { start: new Date(at('2026-03-17T19:30')), mode: 'in_person', clientZone: 'Europe/London' }));
        // A second link about the same session (the invite's, say) waits until this move reaches the calendar.
        const second = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, appointmentId: session!.id, now: now() });
        expect(await bookSlot(deps(), second.token, { start: new Date(at('2026-03-10T19:00')), mode: 'in_person' })).toEqual({ kind: 'unavailable', reason: 'your appointment is being moved already: please try again in a minute' });
        expect(moved).toMatchObject({ moved: true, movedFrom: new Date(at('2026-03-17T19:00')), status: 'confirming', start: new Date(at('2026-03-17T19:30')) });
        // The new time is held at once (20:00 would touch it) while the old one is the session's until the move lands.
        expect((await pendingHolds(world.store.db, me.therapistId, now(), new Date(at('2026-03-18T00:00')))).filter((h) => h.movesAppointmentId === session!.id).map((h) => h.start.getTime())).toEqual([at('2026-03-17T19:30')]);
        expect(await bookSlot(deps(), other.token, { start: new Date(at('2026-03-17T20:00')), mode: 'in_person' })).toMatchObject({ kind: 'taken' });
        expect(await bookSlot(deps(), link.token, { start: new Date(at('2026-03-10T19:00')), mode: 'in_person' })).toMatchObject({ kind: 'closed', link: { state: 'used', booking: { id: moved.id } } });

        await settle();
        // At the platform: no new event; the session's own event at the new time, the client still on it and sent an update.
        expect(view.createdEvents(me)).toBe(eventsBefore);
        expect(platformStart(eventId)).toBe(at('2026-03-17T19:30'));
        expect(view.event(me, eventId)!.attendees).toEqual([ROBIN]);
        expect(view.clientMail()).toBe(mailBefore + 1);
        // Synced back: the same session, rescheduled; still one upcoming session for the client.
        const upcoming = (await sessionsOf(robin)).filter((r) => r.state === 'scheduled' && r.start_at > now());
        expect(upcoming).toEqual([{ id: session!.id, event_id: eventId, start_at: new Date(at('2026-03-17T19:30')), state: 'scheduled' }]);
        const transitions = await world.store.db.selectFrom('appointment_transitions').select(['kind', 'detail']).where('appointment_id', '=', session!.id).where('kind', '=', 'rescheduled').execute();
        expect(transitions.map((t) => Date.parse(String(t.detail['to'])))).toEqual([at('2026-03-17T19:30')]);
        expect((await pendingHolds(world.store.db, me.therapistId, now(), new Date(at('2026-03-18T00:00')))).filter((h) => h.movesAppointmentId)).toEqual([]);
        // The link now shows the move, from when to when.
        expect(await openLink(world.store.db, world.store.keyring, link.token, now())).toMatchObject({
          state: 'used',
          booking: { status: 'confirmed', moved: true, movedFrom: new Date(at('2026-03-17T19:00')), start: new Date(at('2026-03-17T19:30')), icsUid: `${session!.id}@sessionkeeper` },
        });
        // Its "add to calendar" file is the session's own (the UID a reminder's .ics has), replacing the earlier copy.
        const ics = await (await fetch(`${world.router.url}/book/${link.token}/ics`)).text();
        expect(ics).toContain(`UID:${session!.id}@sessionkeeper\r\n`);
        expect(ics).toMatch(/SEQUENCE:\d{10}\r\n/);
        expect(ics.replace(/\r\n /g, '')).toContain('DTSTART:' + new Date(at('2026-03-17T19:30')).toISOString().replace(/[-:]/g, '').replace('.000', ''));
      });

      test('a link about a session that was cancelled books a new session', async () => {
        const eventId = insert('Therapy session', '2026-03-19T19:00', 50, ROBIN);
        await settle();
        const session = (await sessionsOf(robin)).find((r) => r.event_id === eventId)!;
        const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, appointmentId: session.id, now: now() });
        remove(eventId);
        await settle();
        expect((await sessionsOf(robin)).find((r) => r.id === session.id)!.state).not.toBe('scheduled');
        const opened = await openLink(world.store.db, world.store.keyring, link.token, now());
        if (opened.state !== 'open') throw new Error(`expected an open link, got ${opened.state}`);
        const page = await bookingPage(world.store, opened.link, now());
        expect(page.moving).toBeNull();
        const eventsBefore = view.createdEvents(me);
        const pick = page.suggestions[0]!;
        const booking = booked(await bookSlot(deps(), link.token, { start: new Date(pick.start), mode: 'telehealth' }));
        expect(booking).toMatchObject({ moved: false, movedFrom: null });
        await settle();
        expect(view.createdEvents(me)).toBe(eventsBefore + 1);
        expect((await sessionsOf(robin)).filter((r) => r.state === 'scheduled' && r.start_at.getTime() === pick.start)).toHaveLength(1);
      });

      test("a link is bound to its session: another client's is refused, a changed binding does not open, and it lasts until the session", async () => {
        const [robins, alexs] = [await sessionsOf(robin), await sessionsOf(alex)];
        const mine = robins[0]!;
        await expect(createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, appointmentId: alexs[0]!.id, now: now() })).rejects.toBeInstanceOf(InvalidInput);
        await expect(createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, appointmentId: 'not-a-session', now: now() })).rejects.toBeInstanceOf(InvalidInput);
        const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, appointmentId: mine.id, now: now() });
        const plain = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, now: now() });
        const state = (token: string) => openLink(world.store.db, world.store.keyring, token, now()).then((o) => o.state);
        expect(await state(link.token)).toBe('open');
        const bind = (id: string, appointmentId: string | null) => world.store.db.updateTable('booking_links').set({ appointment_id: appointmentId }).where('id', '=', id).execute();
        // Another of the client's sessions, none, or one added to a plain link: the signature no longer matches.
        await bind(link.id, robins[1]!.id);
        expect(await state(link.token)).toBe('invalid');
        await bind(link.id, null);
        expect(await state(link.token)).toBe('invalid');
        await bind(plain.id, mine.id);
        expect(await state(plain.token)).toBe('invalid');
        await bind(link.id, mine.id);
        await bind(plain.id, null);
        expect([await state(link.token), await state(plain.token)]).toEqual(['open', 'open']);
        // validUntil: open until the session (beyond bookingLinkDays), at most 90 days.
        const days = (d: Date) => Math.round(DateTime.fromJSDate(d).diff(DateTime.fromJSDate(now()), 'days').days);
        const until = DateTime.fromJSDate(now()).plus({ days: 30 }).toJSDate();
        expect(days((await createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, appointmentId: mine.id, validUntil: until, now: now() })).expiresAt)).toBe(30);
        expect((await createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, validUntil: until, now: now() })).expiresAt.getTime()).toBeGreaterThanOrEqual(until.getTime());
        expect(days((await createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, validUntil: DateTime.fromJSDate(now()).plus({ days: 400 }).toJSDate(), now: now() })).expiresAt)).toBe(90);
        expect(days((await createBookingLink(world.store, { therapistId: me.therapistId, clientId: robin, validUntil: DateTime.fromJSDate(now()).minus({ days: 1 }).toJSDate(), now: now() })).expiresAt)).toBe(14);
      });
    });
  }
}
