// The reliability harness with real crashes: the product runs as its own process (`node
// dist/src/server.js`, the tick endpoint driven by the test, its clock a file the test writes) and is
// killed with SIGKILL at 50 seeded points of its platform calls (before a request takes effect, or
// after it took effect and before its answer arrives), during syncs and during actions. After each
// kill it is started again; the week must end with the clean run's facts and actions, each tag written once.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DateTime } from 'luxon';
import { afterAll, describe, expect, test } from 'vitest';
import { GOOGLE_SCOPES } from '../../connectors/google/oauth.js';
import { openApp } from '../../src/app.js';
import { ManualClock } from '../../src/clock.js';
import { completeGoogleConnect } from '../../src/engine/connect.js';
import { platformConnectors } from '../../src/engine/platforms.js';
import { silentLogger } from '../../src/log.js';
import { startGoogleEmulator } from '../emulators/google/server.js';
import { freshPgDatabase, testBackends, testStores } from '../helpers/db.js';
import { googleEnv, REDIRECT } from '../helpers/google.js';
import { freePort } from '../helpers/net.js';
import { childEnv, childProduct, sharedClock } from './child.js';
import { googleDriver, practiceWeek, rng, runResult, unknownRemindersAsDone, type Step } from './practice-life.js';
import { effectiveWrites, GOOGLE_EVENT_PATH, googleWorld, play } from './world.js';

const SEED = Number(process.env['SK_HARNESS_SEED'] ?? 20261126);
const KILLS = 50;
const FROM = '2026-03-02T07:00:00-05:00';
const END = DateTime.fromISO(FROM).plus({ days: 8 }).toUTC().toISO()!;
const LEASE_MS = 5 * 60_000;
const TOKEN = crypto.randomBytes(24).toString('base64url');

for (const backend of testBackends()) {
  describe(`engine crashes on google [${backend}] (seed ${SEED})`, () => {
    const steps: Step[] = practiceWeek(SEED, { therapists: 1, clientsPer: 8, from: FROM, steps: 40 });
    const cleanups: (() => Promise<void>)[] = [];
    afterAll(async () => {
      for (const c of cleanups.reverse()) await c();
    });

    test(`killed with SIGKILL at ${KILLS} seeded points, it converges to the clean run with nothing done twice`, { timeout: 900_000 }, async () => {
      console.log(`engine crash harness: seed ${SEED} (set SK_HARNESS_SEED to replay)`);
      // The clean run, in-process, gives the result to reach and how many platform calls it took.
      const clean = await googleWorld({ stores: testStores, backend, clock: new ManualClock(FROM), therapists: 1 });
      cleanups.push(() => clean.close());
      await play(clean, steps, END, rng(SEED + 7));
      const expected = await runResult(clean.store.db, clean.driver);
      const cleanCalls = clean.emu.requests.filter((r) => r.path.startsWith('/calendar/v3/')).length;

      // The crash run: the emulator here, the product in a child process.
      const clock = new ManualClock(FROM);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-crash-'));
      const shared = sharedClock(clock, dir);
      const setClock = shared.set;
      const emu = await startGoogleEmulator({ clock });
      cleanups.push(() => emu.close());
      const port = await freePort();
      const env = childEnv(googleEnv(emu), { port, clockFile: shared.file, token: TOKEN, dir, ...(backend === 'postgres' ? { databaseUrl: await freshPgDatabase() } : {}) });

      // The therapist connects (through the product's own code, before the server runs).
      const setup = await openApp({ env, clock, log: silentLogger, command: 'test setup' });
      emu.addAccount({ sub: 'sub-0', email: 'dr0@practice.example' });
      emu.addCalendar('sub-0', { id: 'dr0@practice.example', summary: 'Practice', timeZone: 'America/New_York', primary: true });
      const connected = await completeGoogleConnect(setup.store, setup.config, platformConnectors(setup.config, setup.store), emu.authorize('sub-0', [...GOOGLE_SCOPES], REDIRECT));
      await setup.store.db.updateTable('calendars').set({ role: 'practice' }).where('connection_id', '=', connected.connectionId).execute();
      await setup.close();

      const child = childProduct({ script: 'dist/src/server.js', env, port, token: TOKEN });
      const startTimes: number[] = [];
      const start = async () => {
        startTimes.push(await child.start());
      };
      cleanups.push(() => child.kill());

      // Seeded kill points: after a seeded number of platform calls (1 to 4), the next one, before
      // it takes effect or after; 50 times.
      const r = rng(SEED + 3);
      const gap = () => 1 + Math.floor(r() * 4);
      let nextKill = gap();
      let phaseOf: 'before' | 'after' = r() < 0.5 ? 'before' : 'after';
      let calls = 0;
      let kills = 0;
      let down = false;
      const during = new Map<string, number>();
      emu.setRequestHook(async ({ seq, method, phase }) => {
        if (phase === 'before') calls = seq;
        if (down || kills >= KILLS || seq !== nextKill || phase !== phaseOf) return;
        nextKill = seq + gap();
        phaseOf = r() < 0.5 ? 'before' : 'after';
        kills++;
        const what = method === 'PATCH' ? 'action' : method === 'GET' ? 'sync or check' : method;
        during.set(what, (during.get(what) ?? 0) + 1);
        down = true;
        await child.kill();
        return 'drop';
      });

      /** POST /tick until nothing is due before `untilMs`; a crash restarts the server after its leases ran out. */
      const drain = async (untilMs: number) => {
        for (;;) {
          if (down) {
            setClock(new Date(clock.now().toMillis() + LEASE_MS + 1000).toISOString());
            down = false;
            await start();
          }
          await emu.settled();
          const res = await child.tick();
          if (!res || res.status !== 200) {
            if (!down) throw new Error(`tick failed without a kill: ${res ? res.status : 'no answer'}`);
            continue;
          }
          const report = res.report;
          await emu.settled();
          if (report.synced + report.presumed + report.actions.claimed > 0) continue;
          let next = report.nextDueAt ? Date.parse(report.nextDueAt) : null;
          // An action the process died inside several times waits with a backoff (outbox.ts), which
          // can reach past the next step of the week: it is carried out before the practice moves on,
          // as in the clean run, rather than after a later change made it moot.
          if (next !== null && next > untilMs && report.nextActionAt) next = Date.parse(report.nextActionAt);
          if (next === null || (next > untilMs && !report.nextActionAt)) return;
          if (next > clock.now().toMillis()) setClock(new Date(next).toISOString());
        }
      };

      await start();
      const driver = googleDriver(emu, ['dr0@practice.example']);
      for (let i = 0; i < steps.length; i++) {
        const at = Math.max(Date.parse(steps[i]!.at), clock.now().toMillis());
        setClock(new Date(at).toISOString());
        for (const op of steps[i]!.ops) driver.apply(op);
        await drain(i + 1 < steps.length ? Date.parse(steps[i + 1]!.at) - 1 : Date.parse(END));
      }
      setClock(END);
      await drain(Date.parse(END));
      emu.setRequestHook(null);
      await child.stop();

      const after = await openApp({ env, clock, log: silentLogger, command: 'test check' });
      cleanups.push(() => after.close());
      startTimes.sort((a, b) => a - b);
      console.log(`crash harness: server start median ${Math.round(startTimes[startTimes.length >> 1]!)} ms, max ${Math.round(startTimes.at(-1)!)} ms`);
      console.log(`crash harness: ${kills} kills (${[...during].map(([k, n]) => `${n} during ${k}`).join(', ')}) over ${calls} platform calls; the clean run made ${cleanCalls}`);
      expect(kills).toBe(KILLS);
      // What went wrong, if anything: the failed actions' reasons.
      // (A reminder killed inside its send is unknown, by design: counted below, never sent twice.)
      const failed = await after.store.db.selectFrom('actions').select(['idempotency_key', 'last_error', 'attempts']).where('status', 'not in', ['done', 'cancelled']).where((eb) => eb.not(eb.and([eb('kind', '=', 'client.reminder'), eb('status', '=', 'unknown')]))).execute();
      expect(failed).toEqual([]);
      const cancelled = await after.store.db.selectFrom('actions').select(['idempotency_key', 'last_error']).where('status', '=', 'cancelled').execute();
      if (cancelled.length > 0) console.log(`crash harness: cancelled actions: ${JSON.stringify(cancelled)}`);
      const { result, unknown, done } = unknownRemindersAsDone(await runResult(after.store.db, driver));
      expect(result).toEqual(expected);
      const sent = emu.sentMessages().length;
      expect(sent).toBeGreaterThanOrEqual(done);
      expect(sent).toBeLessThanOrEqual(done + unknown);
      // The follow-ups the week opened, each one task in Google Tasks however often the process died.
      const lists = await after.store.db.selectFrom('task_lists as l').innerJoin('connections as k', 'k.id', 'l.connection_id').select(['l.provider_list_id', 'k.account_subject']).execute();
      const tasks = lists.flatMap((l) => emu.tasks(l.account_subject, l.provider_list_id));
      const opened = result.actions.filter((a) => /^followup:[^~]+ done$/.test(a)).length;
      expect(opened).toBeGreaterThan(0);
      expect(tasks).toHaveLength(opened);
      const writes = effectiveWrites(emu.requests, GOOGLE_EVENT_PATH);
      expect(writes.size).toBeGreaterThan(0);
      expect([...writes.values()].every((n) => n === 1)).toBe(true);
    });
  });
}
