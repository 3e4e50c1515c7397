// Suggestions for a client from the store (src/engine/suggestions.ts): a client who came on Tuesdays
// at 18:00 for six weeks is offered next Tuesday at 18:00 first, with that reason; the therapist's
// other busy time and booked sessions are respected; bad input is refused with what was wrong.
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { suggestForClient } from '../../src/engine/suggestions.js';
import type { GoogleEmulator } from '../emulators/google/server.js';
import { testBackends, testStores } from '../helpers/db.js';
import { rng } from './practice-life.js';
import { drain, googleWorld, type World } from './world.js';

const ZONE = 'America/New_York';
const NOW = '2026-03-02T09:00:00-05:00';

for (const backend of testBackends()) {
  describe(`suggestions for a client [${backend}]`, { timeout: 120_000 }, () => {
    let world: World;
    let therapistId: string;
    let clientId: string;
    beforeAll(async () => {
      world = await googleWorld({ stores: testStores, backend, clock: new ManualClock(NOW), therapists: 0 });
      const me = await world.connect(0);
      therapistId = me.therapistId;
      const emu = world.emu as unknown as GoogleEmulator;
      const cal = 'dr0@practice.example';
      const timed = (iso: string, minutes = 50) => {
        const s = DateTime.fromISO(iso, { zone: ZONE });
        return { start: { dateTime: s.toISO(), timeZone: ZONE }, end: { dateTime: s.plus({ minutes }).toISO(), timeZone: ZONE } };
      };
      // Six Tuesdays at 18:00 with the same client, kept (attendance presumed as they ended).
      for (let w = 6; w >= 1; w--) {
        const day = DateTime.fromISO('2026-03-03T18:00', { zone: ZONE }).minus({ weeks: w });
        emu.insertEvent(cal, { summary: 'Therapy session', attendees: [{ email: 'sam.client@example.com', responseStatus: 'accepted' }], ...timed(day.toISO()!) });
      }
      // The therapist's own evening: something on Wednesday 17:00-19:00, and another client's session on Thursday 18:00.
      emu.insertEvent(cal, { summary: 'School meeting', ...timed('2026-03-04T17:00', 120) });
      emu.insertEvent(cal, { summary: 'Therapy session', attendees: [{ email: 'alex@example.com', responseStatus: 'accepted' }], ...timed('2026-03-05T18:00') });
      await drain(world, world.clock.now().toMillis(), rng(3));
      const client = await world.store.db.selectFrom('appointments').select('client_id').where('therapist_id', '=', therapistId).where('state', '=', 'attended').executeTakeFirstOrThrow();
      clientId = client.client_id!;
    }, 120_000);
    afterAll(async () => world?.close());

    test('their usual Tuesday 18:00 first, with the reason; busy time and the other session respected; one a day', async () => {
      const result = await suggestForClient(world.store, { therapistId, clientId, now: world.clock.now().toJSDate(), k: 3 });
      expect(result.zone).toBe(ZONE);
      const local = result.suggestions.map((s) => DateTime.fromMillis(s.start, { zone: ZONE }));
      expect(local[0]!.toFormat('ccc yyyy-MM-dd HH:mm')).toBe('Tue 2026-03-03 18:00');
      expect(result.suggestions[0]!.reasons).toContain('Tuesdays 18:00 like the last 6 sessions');
      expect(new Set(local.map((t) => t.toISODate())).size).toBe(3);
      const all = await suggestForClient(world.store, { therapistId, clientId, now: world.clock.now().toJSDate(), k: 20 });
      for (const s of all.suggestions) {
        const t = DateTime.fromMillis(s.start, { zone: ZONE });
        // Clear of Wednesday 17:00-19:00 and Thursday 18:00-18:50, with the 10-minute buffer.
        if (t.toISODate() === '2026-03-04') expect(s.end <= DateTime.fromISO('2026-03-04T16:50', { zone: ZONE }).toMillis() || s.start >= DateTime.fromISO('2026-03-04T19:10', { zone: ZONE }).toMillis()).toBe(true);
        if (t.toISODate() === '2026-03-05') expect(s.end <= DateTime.fromISO('2026-03-05T17:50', { zone: ZONE }).toMillis() || s.start >= DateTime.fromISO('2026-03-05T19:00', { zone: ZONE }).toMillis()).toBe(true);
      }
    });

    test('an unknown client, type or mode is refused with what was wrong', async () => {
      const now = world.clock.now().toJSDate();
      await expect(suggestForClient(world.store, { therapistId, clientId: '00000000-0000-4000-8000-000000000000', now, k: 3 })).rejects.toMatchObject({ issues: [{ path: 'client' }] });
      await expect(suggestForClient(world.store, { therapistId, clientId, now, k: 3, typeId: 'massage' })).rejects.toMatchObject({ issues: [{ path: 'type', message: expect.stringContaining('intake, individual, couples') }] });
    });
  });
}
