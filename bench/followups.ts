// `npm run bench -- followups`: how soon a client's cancellation becomes a follow-up task in the therapist's
// list with the engine always on (Google Tasks, Microsoft To Do), and how many client reminders a second it sends.
//
// cancel_to_task: the in-process EngineWorker on its own interval (the server's default) with a clock that
// runs in real time, the emulator over HTTP pushing to our real webhook route, which kicks the worker. Each
// sample: one client's booked session deleted at the emulator (its push leaves at once, so the clock starts
// at the delete) until the task is in the emulator's task lists (polled every POLL_MS). The bench's polling
// runs in the engine's process and event loop, as a test would. Google's figures are named as in the other
// benches; Microsoft's carry a `graph_` prefix (and every line says its `platform`).
// reminders_per_s: 25 therapists' 500 upcoming sessions (clients invited by email), synced with reminders off,
// the clock moved to when each is due its 48-hour reminder, reminders turned on: sent / wall seconds of the
// ticks that send them all (a driven clock here; the figure is throughput, not latency).
import { DateTime } from 'luxon';
import { ManualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { FOLLOWUP_OPEN } from '../src/engine/followups.js';
import type { ActionPlugin } from '../src/engine/outbox.js';
import { defaultPlugins } from '../src/engine/plugins.js';
import { EngineWorker, tick, type WorkerDeps } from '../src/engine/worker.js';
import { getPracticeSettings, updatePracticeSettings } from '../src/store/practices.js';
import { makePGliteTemplate, pgliteStoreFromTemplate } from '../src/store/provision.js';
import type { GoogleEmulator } from '../test/emulators/google/server.js';
import type { GraphEmulator } from '../test/emulators/microsoft/server.js';
import { meOf } from '../test/engine/platform-view.js';
import { clientName, rng } from '../test/engine/practice-life.js';
import { drain, googleWorld, graphWorld, type World, type WorldOptions, type WorldStores } from '../test/engine/world.js';
import { median, report } from './report.js';

const BENCH = 'followups';
const NY = 'America/New_York';
/** A Monday morning: the practice's day starts, out of quiet hours. */
const START = '2026-03-02T09:00:00-05:00';
const DEFAULT_SEED = 20260302;
/** Clients who cancel, one session each (a first one, not counted, makes the follow-up list). */
const CANCELLATIONS = Number(process.env['BENCH_FOLLOWUPS_CANCELLATIONS'] ?? 60);
/** Sessions each client has booked (weekly): the cancelled one and the ones after it. */
const SESSIONS_PER_CLIENT = 3;
const POLL_MS = 2;
/** Between one cancellation's task and the next cancellation, once the engine is quiet. */
const GAP_MS = 150;
const SAMPLE_TIMEOUT_MS = 20_000;
/** The reminder practice: 25 therapists with 20 sessions each, on Thursday and Friday. */
const REMINDER_THERAPISTS = 25;
const REMINDER_HOURS = [...[11, 12, 13, 14, 15, 16, 17, 18, 19].map((h) => ({ day: 3, h })), ...[9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19].map((h) => ({ day: 4, h }))];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** Progress on stderr (stdout holds only the figures). */
function stage(what: string, since: number): void {
  process.stderr.write(`bench ${BENCH}: ${what} in ${((performance.now() - since) / 1000).toFixed(1)} s\n`);
}

/**
 * The real clock from a fixed instant: it moves with the wall clock and nothing drives it, so the engine,
 * the store and the emulator live in real time while the practice's dates (quiet hours, reminders) are the
 * same on every run. A ManualClock in type only (the worlds take one); it cannot be set.
 */
class RunningClock extends ManualClock {
  readonly #origin: number;
  readonly #wallAtOrigin = Date.now();

  constructor(start: string) {
    super(start);
    this.#origin = super.now().toMillis();
  }

  override now(): DateTime {
    return DateTime.fromMillis(this.#origin + (Date.now() - this.#wallAtOrigin), { zone: 'utc' });
  }

  override set(): void {
    throw new Error('a running clock is not set');
  }

  override advance(): DateTime {
    throw new Error('a running clock is not advanced');
  }
}

/** What the bench needs of each platform. */
interface Platform {
  provider: 'google' | 'microsoft';
  /** Before each metric's name. */
  prefix: string;
  make(opts: WorldOptions): Promise<World>;
  /** Our POST of a new task. */
  taskInsert: RegExp;
  /** The sync's read of the calendar's changes. */
  changesRead: RegExp;
  /** Whether one of the account's task lists holds a task whose title starts with this. */
  hasTask(world: World, account: string, titleStart: string): boolean;
  /** Emails sent so far from the therapists' mailboxes. */
  sent(world: World): number;
}

const GOOGLE: Platform = {
  provider: 'google',
  prefix: '',
  make: googleWorld,
  taskInsert: /^\/tasks\/v1\/lists\/[^/]+\/tasks$/,
  changesRead: /^\/calendar\/v3\/calendars\/[^/]+\/events$/,
  hasTask(world, account, titleStart) {
    const emu = world.emu as unknown as GoogleEmulator;
    return emu.taskLists(account).some((l) => emu.tasks(account, l['id'] as string).some((t) => !t['deleted'] && String(t['title']).startsWith(titleStart)));
  },
  sent: (world) => (world.emu as unknown as GoogleEmulator).sentMessages().length,
};

const GRAPH: Platform = {
  provider: 'microsoft',
  prefix: 'graph_',
  make: graphWorld,
  taskInsert: /^\/v1\.0\/(me|users\/[^/]+)\/todo\/lists\/[^/]+\/tasks$/,
  changesRead: /^\/v1\.0\/(me|users\/[^/]+)\/(calendars\/[^/]+\/)?(calendarView|events)\/delta$/,
  hasTask(world, account, titleStart) {
    const emu = world.emu as unknown as GraphEmulator;
    return emu.todo.lists(account).some((l) => emu.todo.tasks(account, l['id'] as string).some((t) => String(t['title']).startsWith(titleStart)));
  },
  sent: (world) => (world.emu as unknown as GraphEmulator).sentMail().length,
};

/** Until nothing is queued or due: no sync requested, no action waiting or running, no push in flight. */
async function quiet(world: World, withinMs = 120_000): Promise<void> {
  const until = performance.now() + withinMs;
  for (;;) {
    await world.emu.settled();
    const now = world.store.now();
    const syncs = await world.store.db.selectFrom('sync_requests').select('calendar_id').where('not_before', '<=', now).limit(1).execute();
    const actions = await world.store.db.selectFrom('actions').select('id').where('status', 'in', ['pending', 'running']).where('next_attempt_at', '<=', now).limit(1).execute();
    if (syncs.length + actions.length === 0) return;
    if (performance.now() > until) throw new Error(`${BENCH}: the engine never became quiet`);
    await sleep(10);
  }
}

/**
 * One cancellation's times (performance.now()): the delete, the webhook's kick, the sync that stored the
 * fact, the follow-up action starting, our task request and its answer, the task seen.
 */
interface Sample {
  ref: string;
  deleted: number;
  kicked?: number;
  changesRequest?: number;
  changesSeq?: number;
  changesAnswered?: number;
  synced?: number;
  actionStarted?: number;
  taskRequest?: number;
  taskAnswered?: number;
  seen?: number;
}

/**
 * Where the time went, in ms: the push reached the webhook and it queued the sync; the worker woke, took
 * the queued sync and the calendar's lock and asked for the changes; the emulator handled the read (its
 * own work only: the HTTP round trip is in the parts either side); the sync stored the snapshots, the
 * fact and its action, and committed; the rest of that round ran until the follow-up action started
 * (presumptions, due reminders, the task lists' check, actions queued before it); the action made the
 * task's words (times to offer, a booking link) up to its request; the emulator handled the insert;
 * the bench saw the task.
 */
function parts(s: Sample): Record<string, number> {
  const d = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? round1(b - a) : -1);
  return {
    pushToWebhook: d(s.deleted, s.kicked),
    webhookToChangesRequest: d(s.kicked, s.changesRequest),
    changesAtEmulator: d(s.changesRequest, s.changesAnswered),
    changesToFact: d(s.changesAnswered, s.synced),
    factToAction: d(s.synced, s.actionStarted),
    actionToTaskRequest: d(s.actionStarted, s.taskRequest),
    taskAtEmulator: d(s.taskRequest, s.taskAnswered),
    answerToSeen: d(s.taskAnswered, s.seen),
  };
}

async function cancelToTask(p: Platform, stores: WorldStores, seed: number): Promise<void> {
  const random = rng(seed);
  const began = performance.now();
  const clock = new RunningClock(START);
  const world = await p.make({ stores, backend: 'pglite', clock, therapists: 0 });
  let worker: EngineWorker | undefined;
  try {
    const me = await meOf(world, await world.connect(0));
    // Each client's weekly sessions from Thursday to a week later, on weekdays 9:00-18:00, all with the client invited.
    const first: { ref: string; client: number }[] = [];
    const monday = DateTime.fromISO(START, { zone: NY });
    for (let c = 1; c <= CANCELLATIONS + 1; c++) {
      let at = monday.plus({ days: 3 + Math.floor(random() * 8) }).set({ hour: 9 + Math.floor(random() * 10), minute: 0, second: 0, millisecond: 0 });
      if (at.weekday > 5) at = at.plus({ days: 8 - at.weekday });
      for (let w = 0; w < SESSIONS_PER_CLIENT; w++) {
        world.driver.apply({ op: 'book', b: { ref: `c${c}w${w}`, therapist: 0, client: c, start: at.plus({ weeks: w }).toISO()!, minutes: 50, invited: true } });
      }
      first.push({ ref: `c${c}w0`, client: c });
    }
    for (let i = first.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [first[i], first[j]] = [first[j]!, first[i]!];
    }

    // Always on, as `npm start` runs it: the worker on the default interval, kicked by our webhook route.
    const intervalMs = loadConfig({}).workerIntervalMs;
    let current: Sample | undefined;
    // The product's plug-ins; the follow-up's opening notes when it starts (for the figures' parts only).
    const plugins = defaultPlugins.map((plugin): ActionPlugin => {
      if (plugin.kind !== FOLLOWUP_OPEN) return plugin;
      return {
        ...plugin,
        run: (payload, r) => {
          if (current && current.actionStarted === undefined) current.actionStarted = performance.now();
          return plugin.run(payload, r);
        },
      };
    });
    const deps: WorkerDeps = {
      ...world.engines[0]!,
      plugins,
      // The platform pushes straight to our router (the world's proxy, which holds notifications, is left out).
      publicUrl: world.router.url,
      onSynced: (o) => {
        const s = current;
        if (!s || s.synced !== undefined || !o.facts) return;
        if (o.facts.transitions.some((t) => world.driver.refOf(t.eventId) === s.ref)) s.synced = performance.now();
      },
    };
    worker = new EngineWorker(deps, intervalMs);
    const w = worker;
    world.router.app.kick = () => {
      if (current && current.kicked === undefined) current.kicked = performance.now();
      w.kick();
    };
    world.emu.setRequestHook(({ seq, method, path, phase }) => {
      const s = current;
      if (!s) return;
      if (s.kicked !== undefined && method === 'GET' && p.changesRead.test(path)) {
        if (phase === 'before' && s.changesRequest === undefined) [s.changesRequest, s.changesSeq] = [performance.now(), seq];
        if (phase === 'after' && seq === s.changesSeq && s.changesAnswered === undefined) s.changesAnswered = performance.now();
        return;
      }
      if (method !== 'POST' || !p.taskInsert.test(path)) return;
      if (phase === 'before' && s.taskRequest === undefined) s.taskRequest = performance.now();
      if (phase === 'after' && s.taskAnswered === undefined) s.taskAnswered = performance.now();
    });
    const setupStarted = performance.now();
    worker.start();
    // The first round makes the push channel and syncs the calendar; the tags it queues are carried out.
    for (;;) {
      await quiet(world);
      const channel = await world.store.db.selectFrom('push_channels').select('id').where('calendar_id', '=', me.calendarId).where('status', '=', 'active').executeTakeFirst();
      const synced = await world.store.db.selectFrom('appointments').select('id').where('therapist_id', '=', me.therapistId).limit(1).executeTakeFirst();
      if (channel && synced) break;
      if (performance.now() - setupStarted > 120_000) throw new Error(`${BENCH}: no push channel or first sync on ${p.provider}`);
      await sleep(20);
    }
    await sleep(GAP_MS);
    stage(`${p.provider}: connected, synced, channel made`, began);

    const cancelling = performance.now();
    const samples: Sample[] = [];
    for (const { ref, client } of first) {
      const s: Sample = { ref, deleted: performance.now() };
      current = s;
      world.driver.apply({ op: 'cancel', ref });
      const title = `${clientName(0, client)} `;
      while (!p.hasTask(world, me.account, title)) {
        if (performance.now() - s.deleted > SAMPLE_TIMEOUT_MS) throw new Error(`${BENCH}: no follow-up task on ${p.provider} ${SAMPLE_TIMEOUT_MS} ms after cancelling ${ref}`);
        await sleep(POLL_MS);
      }
      s.seen = performance.now();
      current = undefined;
      samples.push(s);
      await quiet(world);
      await sleep(GAP_MS);
    }
    await worker.stop();
    world.emu.setRequestHook(null);
    stage(`${p.provider}: ${samples.length} cancellations`, cancelling);

    // The first made the follow-up list as well: a warm-up, not counted.
    const [warmUp, ...counted] = samples;
    const latencies = counted.map((s) => s.seen! - s.deleted);
    const byPart = counted.map(parts);
    const partsAt = (q: number) => Object.fromEntries(Object.keys(byPart[0]!).map((k) => [k, round1(percentile(byPart.map((b) => b[k]!), q))]));
    const slowest = counted.reduce((a, b) => (b.seen! - b.deleted > a.seen! - a.deleted ? b : a));
    const common = { platform: p.provider, samples: counted.length, workerIntervalMs: intervalMs, pollMs: POLL_MS, seed };
    report(BENCH, `${p.prefix}cancel_to_task_p50_ms`, percentile(latencies, 50), 'ms', { ...common, partsMedian: partsAt(50), firstWithListMs: round1(warmUp!.seen! - warmUp!.deleted), goalP99Ms: 1000 });
    report(BENCH, `${p.prefix}cancel_to_task_p99_ms`, percentile(latencies, 99), 'ms', { ...common, max: round1(Math.max(...latencies)), slowestParts: parts(slowest), partsP99: partsAt(99), goal: 1000 });
    report(BENCH, `${p.prefix}cancellations`, counted.length, 'cancellations', { platform: p.provider, meanMs: round1(latencies.reduce((a, b) => a + b, 0) / latencies.length), medianMs: round1(median(latencies)), seed });
  } finally {
    await worker?.stop();
    world.emu.setRequestHook(null);
    await world.close();
  }
}

async function remindersPerS(p: Platform, stores: WorldStores, seed: number): Promise<void> {
  const random = rng(seed);
  const began = performance.now();
  const clock = new ManualClock(START);
  const world = await p.make({ stores, backend: 'pglite', clock, therapists: REMINDER_THERAPISTS });
  try {
    const db = world.store.db;
    const practices = await db.selectFrom('practices').select('id').execute();
    const reminders = async (enabled: boolean) => {
      for (const { id } of practices) {
        const settings = await getPracticeSettings(db, id);
        await updatePracticeSettings(db, { practiceId: id, settings: { ...settings, reminderEmail: { ...settings.reminderEmail, enabled } }, actor: 'bench', therapistId: null, now: world.store.now() });
      }
    };
    // Off while the practice is synced and the clock moves on, so that they all fall due at once.
    await reminders(false);
    const monday = DateTime.fromISO(START, { zone: NY });
    let n = 0;
    for (let t = 0; t < REMINDER_THERAPISTS; t++) {
      for (const [i, slot] of REMINDER_HOURS.entries()) {
        const start = monday.plus({ days: slot.day }).set({ hour: slot.h });
        world.driver.apply({ op: 'book', b: { ref: `r${++n}`, therapist: t, client: i + 1, start: start.toISO()!, minutes: 50, invited: true } });
      }
    }
    await drain(world, clock.now().toMillis(), random);
    // Thursday 8:29: every session (Thursday 11:00 to Friday 19:00) is within 48 hours, none within 2.
    clock.set(monday.plus({ days: 3 }).set({ hour: 8, minute: 29 }).toUTC().toISO()!);
    await drain(world, clock.now().toMillis(), random);
    await reminders(true);
    stage(`${p.provider}: ${REMINDER_THERAPISTS} therapists connected and synced, Thursday reached`, began);

    const before = p.sent(world);
    let ticks = 0;
    const started = performance.now();
    for (;;) {
      const r = await tick(world.engines[0]!, 'bench', { upkeep: false });
      ticks++;
      if (r.actions.claimed === 0 && r.dueRecorded === 0) break;
    }
    const ms = performance.now() - started;
    const sent = p.sent(world) - before;
    const done = await db.selectFrom('actions').select((eb) => eb.fn.countAll<string>().as('n')).where('kind', '=', 'client.reminder').where('status', '=', 'done').executeTakeFirstOrThrow();
    const sessions = REMINDER_THERAPISTS * REMINDER_HOURS.length;
    const common = { platform: p.provider, sessions, therapists: REMINDER_THERAPISTS, ticks, seconds: round1(ms / 1000), seed };
    report(BENCH, `${p.prefix}reminders_per_s`, sent / (ms / 1000), 'reminders/s', common);
    report(BENCH, `${p.prefix}reminders`, sent, 'reminders', { ...common, actionsDone: Number(done.n) });
    if (sent !== sessions || Number(done.n) !== sessions) throw new Error(`${BENCH}: ${sent} reminders sent (${done.n} done) of ${sessions} sessions on ${p.provider}`);
  } finally {
    await world.close();
  }
}

export async function run(): Promise<void> {
  const seed = Number(process.env['BENCH_SEED'] ?? DEFAULT_SEED);
  const template = await makePGliteTemplate();
  const stores: WorldStores = {
    open: (_backend, keyring, clock) => pgliteStoreFromTemplate(template, keyring, clock),
    another: () => Promise.reject(new Error('one engine in this bench')),
  };
  for (const p of [GOOGLE, GRAPH]) {
    await cancelToTask(p, stores, seed);
    await remindersPerS(p, stores, seed);
  }
}
