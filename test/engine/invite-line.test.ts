// The invite's own line through the engine (src/engine/invite-line.ts) on each platform's emulator and
// both databases: where the practice turns it on, an invited client's session carries "Need to change
// this time? <link>" at the end of its description, the link moving that session; Google writes it
// without an update email; Outlook only when the practice accepts the update the client then gets; a
// session the client is not invited to gets none; a cancelled session's line is taken away.
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { bookingPage, bookSlot, createBookingLink, openLink } from '../../src/engine/booking.js';
import { getPracticeSettings, updatePracticeSettings } from '../../src/store/practices.js';
import type { GoogleEmulator } from '../emulators/google/server.js';
import type { GraphEmulator } from '../emulators/microsoft/server.js';
import { testBackends, testStores } from '../helpers/db.js';
import { meOf, viewOf, type Me, type PlatformView } from './platform-view.js';
import { clientEmail, clientName, rng } from './practice-life.js';
import { drain, googleWorld, graphWorld, type World } from './world.js';

const NY = 'America/New_York';
const FROM = '2026-03-02T09:00:00-05:00';
const LINE = /Need to change this time\? (?:<a href="[^"]+">)?(http:\/\/[^\s<"]+\/book\/([A-Za-z0-9_-]{50}))/;

for (const [provider, make] of [['google', googleWorld], ['microsoft', graphWorld]] as const) {
  for (const backend of testBackends()) {
    describe(`the invite's change line on ${provider} [${backend}]`, { timeout: 180_000 }, () => {
      let world: World;
      let view: PlatformView;
      let me: Me;
      const random = rng(9);
      let booked = 0;
      const settle = () => drain(world, world.clock.now().toMillis(), random);
      const book = (client: number, startIso: string, invited = true) => {
        const ref = `i${++booked}`;
        world.driver.apply({ op: 'book', b: { ref, therapist: 0, client, start: DateTime.fromISO(startIso, { zone: NY }).toISO()!, minutes: 50, invited } });
        return ref;
      };
      const eventAt = async (startIso: string) =>
        (await world.store.db.selectFrom('appointments').select(['id', 'event_id']).where('start_at', '=', DateTime.fromISO(startIso, { zone: NY }).toJSDate()).executeTakeFirstOrThrow());
      /** The description the client's invite shows. */
      const description = (eventId: string): string => {
        if (provider === 'google') return ((world.emu as unknown as GoogleEmulator).getEvent(me.providerCalendarId, eventId)?.['description'] as string | undefined) ?? '';
        const e = (world.emu as unknown as GraphEmulator).getEvent(me.account, eventId);
        return ((e?.['body'] as { content?: string } | undefined)?.content as string | undefined) ?? '';
      };
      const setLine = async (line: { enabled: boolean; outlookUpdates: boolean }) => {
        const practiceId = (await world.store.db.selectFrom('therapists').select('practice_id').where('id', '=', me.therapistId).executeTakeFirstOrThrow()).practice_id;
        const settings = await getPracticeSettings(world.store.db, practiceId);
        await updatePracticeSettings(world.store.db, { practiceId, settings: { ...settings, inviteChangeLine: line }, actor: 'test', therapistId: null, now: world.store.now() });
      };

      beforeAll(async () => {
        world = await make({ stores: testStores, backend, clock: new ManualClock(FROM), therapists: 0 });
        view = viewOf(world);
        me = await meOf(world, await world.connect(0));
      }, 180_000);
      afterAll(async () => world?.close());

      test('off by default: nothing is written', async () => {
        book(1, '2026-03-05T18:00');
        await settle();
        expect(description((await eventAt('2026-03-05T18:00')).event_id)).not.toMatch(LINE);
        expect(await world.store.db.selectFrom('actions').select('id').where('kind', '=', 'invite.line').execute()).toEqual([]);
      });

      test('turned on: the line on an invited session (on Outlook only once the practice accepts the update); none without an invite', async () => {
        await setLine({ enabled: true, outlookUpdates: false });
        const mailBefore = view.clientMail();
        book(2, '2026-03-06T18:00');
        book(3, '2026-03-06T10:00', false);
        await settle();
        const invited = await eventAt('2026-03-06T18:00');
        const named = await eventAt('2026-03-06T10:00');
        expect(description(named.event_id)).not.toMatch(LINE);
        if (provider === 'microsoft') {
          // The therapist's edit would reach the client as an update: left until the practice accepts that.
          expect(description(invited.event_id)).not.toMatch(LINE);
          const left = await world.store.db.selectFrom('actions').select('last_error').where('kind', '=', 'invite.line').where('status', '=', 'cancelled').execute();
          expect(left.some((a) => /outlookUpdates/.test(a.last_error ?? ''))).toBe(true);
          await setLine({ enabled: true, outlookUpdates: true });
          book(4, '2026-03-09T18:00');
          await settle();
          const accepted = await eventAt('2026-03-09T18:00');
          expect(description(accepted.event_id)).toMatch(LINE);
          // The line reached the client as one update (the sessions were made in Outlook itself, not through the API).
          expect(view.clientMail() - mailBefore).toBe(1);
          return;
        }
        const text = description(invited.event_id);
        const m = LINE.exec(text)!;
        expect(m).not.toBeNull();
        expect(text.trimEnd().endsWith(m[1]!)).toBe(true);
        // Written without an update email (sendUpdates=none).
        expect(view.clientMail()).toBe(mailBefore);
        // The link moves this very session.
        const opened = await openLink(world.store.db, world.store.keyring, m[2]!, world.store.now());
        expect(opened.state).toBe('open');
        expect(opened.state === 'open' && opened.link.appointmentId).toBe(invited.id);
        // It lasts until the session, whatever the practice's usual link days.
        expect(opened.state === 'open' && opened.link.expiresAt.getTime()).toBeGreaterThanOrEqual(DateTime.fromISO('2026-03-06T18:50', { zone: NY }).toMillis());
      });

      test("the client declines: the session's line is taken away, the rest of the description kept", async () => {
        await setLine({ enabled: true, outlookUpdates: true });
        const ref = book(5, '2026-03-10T18:00');
        await settle();
        const session = await eventAt('2026-03-10T18:00');
        const before = description(session.event_id);
        expect(before).toMatch(LINE);
        const rest = before.replace(/\s*(<p data-sk="change-line">.*?<\/p>|Need to change this time\? \S+)\s*/s, '');
        world.driver.apply({ op: 'decline', ref });
        await settle();
        const after = description(session.event_id);
        expect(after).not.toMatch(LINE);
        expect(after.includes(rest.slice(0, 20))).toBe(true);
        // They accept again: the session is back on, and so is its line (a new link, still moving it).
        const email = clientEmail(0, 5);
        if (provider === 'google') {
          (world.emu as unknown as GoogleEmulator).patchEvent(me.providerCalendarId, session.event_id, {
            attendees: [
              { email, displayName: clientName(0, 5), responseStatus: 'accepted' },
              { email: me.providerCalendarId, self: true, organizer: true, responseStatus: 'accepted' },
            ],
          });
        } else {
          (world.emu as unknown as GraphEmulator).updateEvent(me.account, session.event_id, {
            attendees: [{ emailAddress: { address: email, name: clientName(0, 5) }, type: 'required', status: { response: 'accepted', time: '0001-01-01T00:00:00Z' } }],
          });
        }
        await settle();
        const back = LINE.exec(description(session.event_id));
        expect(back).not.toBeNull();
        const reopened = await openLink(world.store.db, world.store.keyring, back![2]!, world.store.now());
        expect(reopened.state === 'open' && reopened.link.appointmentId).toBe(session.id);
        await setLine({ enabled: false, outlookUpdates: false });
      });

      test('a session booked online carries its line from the start (on Outlook too, with no update), its link moving that session', async () => {
        await setLine({ enabled: true, outlookUpdates: false });
        book(6, '2026-03-11T18:00');
        await settle();
        const client = (await world.store.db.selectFrom('appointments').select('client_id').where('start_at', '=', DateTime.fromISO('2026-03-11T18:00', { zone: NY }).toJSDate()).executeTakeFirstOrThrow()).client_id!;
        const engine = world.engines[0]!;
        const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: client, now: world.store.now() });
        const page = await bookingPage(world.store, (await openLink(world.store.db, world.store.keyring, link.token, world.store.now()) as { link: Parameters<typeof bookingPage>[1] }).link, world.store.now());
        const slot = page.suggestions.find((x) => x.modes.includes('telehealth'))!;
        const mailBefore = view.clientMail();
        const result = await bookSlot({ store: engine.store, connectors: engine.connectors, log: engine.log, now: world.store.now() }, link.token, { start: new Date(slot.start), mode: 'telehealth' });
        expect(result.kind).toBe('booked');
        await settle();
        const session = await world.store.db.selectFrom('appointments').select(['id', 'event_id']).where('start_at', '=', new Date(slot.start)).executeTakeFirstOrThrow();
        const m = LINE.exec(description(session.event_id))!;
        expect(m).not.toBeNull();
        // The client got the invitation, line and all, and nothing more.
        expect(view.clientMail()).toBe(mailBefore + 1);
        const opened = await openLink(world.store.db, world.store.keyring, m[2]!, world.store.now());
        expect(opened.state === 'open' && opened.link.appointmentId).toBe(session.id);
        const skipped = await world.store.db.selectFrom('actions').select(['status', 'last_error']).where('kind', '=', 'invite.line').where('fact_key', '=', `invite:${session.id}`).execute();
        expect(skipped).toEqual([{ status: 'cancelled', last_error: provider === 'google' ? 'booked online: the invite has carried its line since it was made' : expect.stringMatching(/outlookUpdates/) }]);
        await setLine({ enabled: false, outlookUpdates: false });
      });
    });
  }
}
