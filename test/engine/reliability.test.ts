// The engine's reliability harness, in-process, on both platforms and both databases: a seeded week
// of practice life played clean, then with every notification delivered three times eight at once,
// then with 20% of platform calls failing, then with two engines on one PostgreSQL. Each run must
// end with the clean run's facts and actions, and each session's tag written exactly once.
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { testBackends, testStores } from '../helpers/db.js';
import { meOf, viewOf } from './platform-view.js';
import { practiceWeek, rng, runResult, unknownRemindersAsDone } from './practice-life.js';
import { googleWorld, graphWorld, injectFaults, play, type World, type WorldOptions } from './world.js';

const SEED = Number(process.env['SK_HARNESS_SEED'] ?? 20261126);
const FROM = '2026-03-02T07:00:00-05:00';
const END = DateTime.fromISO(FROM).plus({ days: 8 }).toUTC().toISO()!;

/** The follow-up tasks at the platform, across the therapists' lists: each must be there once. */
async function platformTasks(w: World): Promise<{ title: string; status: string }[]> {
  const lists = await w.store.db
    .selectFrom('task_lists as l')
    .innerJoin('calendars as c', 'c.connection_id', 'l.connection_id')
    .select(['l.provider_list_id', 'l.therapist_id', 'l.connection_id', 'c.id as calendar_id'])
    .execute();
  const out: { title: string; status: string }[] = [];
  for (const l of lists) {
    const me = await meOf(w, { therapistId: l.therapist_id, connectionId: l.connection_id, calendarId: l.calendar_id });
    out.push(...viewOf(w).tasks(me, l.provider_list_id).map((t) => ({ title: t.title, status: t.status })));
  }
  return out;
}

/** Follow-ups opened (done) in a run's result. */
const followUpsOpened = (r: { actions: string[] }) => r.actions.filter((a) => /^followup:[^~]+ done$/.test(a)).length;

for (const [provider, make] of [['google', googleWorld], ['microsoft', graphWorld]] as const) {
  for (const backend of testBackends()) {
    describe(`engine reliability on ${provider} [${backend}] (seed ${SEED})`, { timeout: 300_000 }, () => {
      const steps = practiceWeek(SEED, { therapists: 3, clientsPer: 5, from: FROM, steps: 40 });
      let clean: { facts: string[]; actions: string[] };
      const worlds: World[] = [];
      const run = async (opts: Partial<WorldOptions>, prepare?: (w: World) => void) => {
        const w = await make({ stores: testStores, backend, clock: new ManualClock(FROM), therapists: 3, ...opts });
        worlds.push(w);
        prepare?.(w);
        await play(w, steps, END, rng(SEED + 7));
        w.emu.setRequestHook(null);
        return w;
      };
      afterAll(async () => {
        for (const w of worlds) await w.close();
      });

      beforeAll(async () => {
        console.log(`engine reliability harness: seed ${SEED} (set SK_HARNESS_SEED to replay)`);
        const w = await run({});
        clean = await runResult(w.store.db, w.driver);
      }, 300_000);

      test('the clean week: facts of every kind, every action done, each tag written once', async () => {
        const kinds = new Set(clean.facts.map((f) => f.split(' ')[0]!.split(':').at(-1)));
        for (const k of ['scheduled', 'rescheduled', 'cancelled', 'attended', 'no_show']) expect(kinds).toContain(k);
        if (provider === 'google') expect(kinds).toContain('declined');
        expect(clean.actions.length).toBeGreaterThan(15);
        expect(clean.actions.every((a) => a.endsWith(' done') || a.endsWith(' cancelled'))).toBe(true);
        // Clients were reminded (48 h and 2 h before), each message once.
        const reminders = clean.actions.filter((a) => a.startsWith('reminder:') && a.endsWith(' done'));
        expect(reminders.length).toBeGreaterThan(3);
        expect(viewOf(worlds[0]!).sent().length).toBe(reminders.length);
        const w = worlds[0]!;
        expect([...w.tagWrites().values()].every((n) => n === 1)).toBe(true);
        // Cancellations, declines and no-shows opened follow-ups, each one task at the platform; some closed when the client booked again.
        expect(followUpsOpened(clean)).toBeGreaterThan(2);
        expect(clean.actions.some((a) => /^followup:.*~close done$/.test(a))).toBe(true);
        expect(await platformTasks(w)).toHaveLength(followUpsOpened(clean));
      });

      test('every notification delivered three times, eight at once: the same facts and actions', async () => {
        const w = await run({}, (x) => {
          x.proxy.copies = 3;
          x.proxy.burst = 8;
        });
        expect(w.proxy.delivered).toBeGreaterThan(100);
        expect(await runResult(w.store.db, w.driver)).toEqual(clean);
        expect([...w.tagWrites().values()].every((n) => n === 1)).toBe(true);
      });

      test('20% of platform calls fail (429, 5xx, dropped, lost answers): the same facts and actions', async () => {
        let faults: ReturnType<typeof injectFaults> | undefined;
        const w = await run({}, (x) => {
          faults = injectFaults(x, 0.2, SEED + 1);
        });
        expect(faults!.injected()).toBeGreaterThan(20);
        // A reminder whose send failed in a way that may have sent it is `unknown`; otherwise the clean run.
        const { result, unknown, done } = unknownRemindersAsDone(await runResult(w.store.db, w.driver));
        expect(result).toEqual(clean);
        // Never a reminder twice: the messages that reached the platform are at most one per reminder done or unknown.
        const sent = viewOf(w).sent().length;
        expect(sent).toBeGreaterThanOrEqual(done);
        expect(sent).toBeLessThanOrEqual(done + unknown);
        // Never a follow-up task twice, whatever failed in between.
        expect(await platformTasks(w)).toHaveLength(followUpsOpened(clean));
        const writes = [...w.tagWrites().values()];
        expect(writes.length).toBeGreaterThan(0);
        expect(writes.every((n) => n === 1)).toBe(true);
      });

      if (backend === 'postgres') {
        test('two engines on one PostgreSQL share the work without doubling it', async () => {
          const w = await run({ engines: 2 }, (x) => {
            x.proxy.copies = 3;
            x.proxy.burst = 8;
          });
          expect(await runResult(w.store.db, w.driver)).toEqual(clean);
          expect([...w.tagWrites().values()].every((n) => n === 1)).toBe(true);
          const by = await w.store.db.selectFrom('actions').select('claimed_by').where('status', '=', 'done').execute();
          expect(new Set(by.map((b) => b.claimed_by)).size).toBe(2);
        });
      }
    });
  }
}
