// The engine's loop: queued "sync calendar X" requests synced under the calendar's lock (facts and
// actions with them), presumptions and due actions, as one `tick`; run by the in-process worker of
// `npm start` on an interval, or by a scheduler through `sessionkeeper tick` / POST /tick.
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { Forbidden, NeedsReauth, NotFound, RetryAfter } from '../../connectors/errors.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import { claimSyncRequests, finishSyncRequest, releaseSyncRequest, requestSync } from '../store/sync-queue.js';
import type { Store } from '../store/store.js';
import { nextTaskCheckAt } from '../store/tasks.js';
import { upkeepChannels } from './channels.js';
import { applyFacts } from './facts.js';
import { recordDueWork, runDueActions, type ActionPlugin, type OutboxReport } from './outbox.js';
import { defaultPlugins } from './plugins.js';
import type { ConnectorFactory } from './platforms.js';
import { recordSyncError, syncCalendar, type SyncOutcome } from './sync.js';
import { checkTaskLists, type TaskCheckReport } from './tasks.js';

export interface WorkerDeps {
  store: Store;
  connectors: ConnectorFactory;
  log: Logger;
  clock: Clock;
  /** Called after each successful sync (tests and benchmarks watch the outcomes here). */
  onSynced?: (outcome: SyncOutcome) => Promise<void> | void;
  /** The action plug-ins (default: the product's, plugins.ts). */
  plugins?: readonly ActionPlugin[];
  /** Where platforms push notifications; without it there is no push, only syncs on request. */
  publicUrl?: string | undefined;
}

/**
 * How often the worker looks after push channels (each is replaced a day before it expires, or at
 * once when the platform asks). Only a renewal calls the platform; a round otherwise reads our store.
 */
const UPKEEP_EVERY_MS = 60_000;

const LEASE_MS = 5 * 60_000;
/** Actions per round of the in-process worker, between which queued syncs are looked at again. */
const ACTIONS_PER_ROUND = 10;
const MAX_BACKOFF_MS = 30 * 60_000;

/** Exponential back-off with jitter for the n-th failed attempt (1-based). */
export function backoffMs(attempt: number, random = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, 5_000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.5 + random() / 2));
}

/** Runs a batch of due sync requests once; returns how many were claimed and how many synced. */
export async function runQueuedSyncs(deps: WorkerDeps, workerId: string, limit = 20): Promise<{ claimed: number; synced: number }> {
  const { store, log } = deps;
  const claims = await claimSyncRequests(store.db, { workerId, now: store.now(), leaseMs: LEASE_MS, limit });
  let synced = 0;
  for (const claim of claims) {
    const cal = await store.db
      .selectFrom('calendars as c')
      .innerJoin('connections as k', 'k.id', 'c.connection_id')
      .select(['c.id', 'c.role', 'k.id as connection_id', 'k.therapist_id', 'k.provider', 'k.status'])
      .where('c.id', '=', claim.calendarId)
      .executeTakeFirst();
    if (!cal || cal.role === 'ignored' || cal.status !== 'ok') {
      // Nothing to do until the calendar is watched again or the therapist reconnects.
      await finishSyncRequest(store.db, { calendarId: claim.calendarId, seq: claim.seq, workerId });
      continue;
    }
    try {
      const connector = await deps.connectors.calendarConnector({ id: cal.connection_id, therapist_id: cal.therapist_id, provider: cal.provider });
      const outcome = await syncCalendar(store, connector, cal.id, { full: claim.full, log, ...(deps.plugins ? { plugins: deps.plugins } : {}) });
      await deps.onSynced?.(outcome);
      await finishSyncRequest(store.db, { calendarId: claim.calendarId, seq: claim.seq, workerId });
      synced++;
      log.info({ calendarId: cal.id, mode: outcome.mode, items: outcome.items.length, pages: outcome.pages, cursorExpired: outcome.cursorExpired, transitions: outcome.facts?.transitions.length ?? 0, actions: outcome.facts?.actions ?? 0 }, 'calendar synced');
    } catch (err) {
      await recordSyncError(store, cal.id, err);
      if (err instanceof NotFound || err instanceof Forbidden) {
        // Permanent: the calendar is gone or no longer shared, or a permission is missing. Recorded
        // for the operator (calendars shows it); retrying would not help.
        log.warn({ calendarId: cal.id, error: (err as Error).message }, 'calendar sync failed for good');
        await finishSyncRequest(store.db, { calendarId: claim.calendarId, seq: claim.seq, workerId });
        continue;
      }
      if (err instanceof NeedsReauth) {
        // The connection is marked; its calendars wait for the therapist to connect again.
        log.warn({ calendarId: cal.id, connectionId: cal.connection_id }, 'connection needs the therapist to connect again');
        await finishSyncRequest(store.db, { calendarId: claim.calendarId, seq: claim.seq, workerId });
        continue;
      }
      const wait = err instanceof RetryAfter && err.seconds !== null ? err.seconds * 1000 : backoffMs(claim.attempts);
      log.warn({ err, calendarId: cal.id, retryInMs: wait }, 'calendar sync failed; will retry');
      await releaseSyncRequest(store.db, { calendarId: claim.calendarId, workerId, retryAt: new Date(store.now().getTime() + wait) });
    }
  }
  return { claimed: claims.length, synced };
}

export interface TickReport {
  channels: { created: number; stopped: number; failed: number } | null;
  reconcileQueued: number;
  synced: number;
  presumed: number;
  /** Actions that fell due with time (plug-ins' `due`), recorded this tick. */
  dueRecorded: number;
  /** The sparse check of follow-up lists (tasks the therapist completed or deleted). */
  tasks: TaskCheckReport;
  actions: OutboxReport;
  /** When something is next due (a retry, a presumption, a lost lease), for a scheduler that sleeps. */
  nextDueAt: string | null;
  /** When the next waiting action is due (a retry, a put-off action): null when none waits. */
  nextActionAt: string | null;
  ms: number;
}

/**
 * All due work, once: push channels looked after, the daily reconciliation queued, queued syncs run
 * (facts and their actions with them), attendance presumed for sessions that ended, due actions
 * carried out. What `sessionkeeper tick` and POST /tick run for a deployment that scales to zero,
 * and what the in-process worker runs on its interval.
 */
export async function tick(deps: WorkerDeps, workerId: string, opts: { upkeep?: boolean; stopping?: () => boolean; maxActions?: number } = {}): Promise<TickReport> {
  const started = performance.now();
  let channels: TickReport['channels'] = null;
  let reconcileQueued = 0;
  if (opts.upkeep !== false) {
    if (deps.publicUrl) channels = await upkeepChannels(deps.store, deps.connectors, { publicUrl: deps.publicUrl, log: deps.log });
    reconcileQueued = await queueReconciliation(deps.store);
  }
  const work = await runDueWork(deps, workerId, opts.stopping, opts.maxActions);
  const next = await nextDue(deps.store);
  return { channels, reconcileQueued, ...work, nextDueAt: next.at?.toISOString() ?? null, nextActionAt: next.actionAt?.toISOString() ?? null, ms: Math.round((performance.now() - started) * 10) / 10 };
}

/** The earliest time anything queued is due: a sync or action (or its retry), a lost lease, a presumption. */
export async function nextDueAt(store: Store): Promise<Date | null> {
  return (await nextDue(store)).at;
}

/** nextDueAt, and the earliest of the actions alone. */
export async function nextDue(store: Store): Promise<{ at: Date | null; actionAt: Date | null }> {
  const row = await sql<{ at: Date | string | null; action_at: Date | string | null }>`
    SELECT least(s.at, a.at, l.at) AS at, a.at AS action_at FROM
      (SELECT min(CASE WHEN claimed_by IS NULL THEN not_before ELSE lease_expires_at END) AS at FROM sync_requests) s,
      (SELECT min(CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_expires_at END) AS at
         FROM actions WHERE status IN ('pending', 'running')) a,
      (SELECT min(next_presume_at) AS at FROM ledgers) l`.execute(store.db);
  const r = row.rows[0];
  const action = r?.action_at ? new Date(r.action_at) : null;
  // A follow-up list with open tasks is looked at on its own cadence.
  const check = await nextTaskCheckAt(store.db);
  const times = [r?.at ? new Date(r.at) : null, check].filter((d): d is Date => d !== null);
  return { at: times.length ? new Date(Math.min(...times.map((d) => d.getTime()))) : null, actionAt: action };
}

/** Syncs, presumptions and actions until nothing more is due now. */
export async function runDueWork(deps: WorkerDeps, workerId: string, stopping: () => boolean = () => false, maxActions?: number): Promise<Omit<TickReport, 'channels' | 'reconcileQueued' | 'nextDueAt' | 'nextActionAt' | 'ms'>> {
  let synced = 0;
  while (!stopping()) {
    const n = await runQueuedSyncs(deps, workerId);
    synced += n.claimed;
    if (n.claimed === 0) break;
  }
  const outbox = { store: deps.store, connectors: deps.connectors, log: deps.log, plugins: deps.plugins ?? defaultPlugins, stopping, publicUrl: deps.publicUrl };
  const presumed = stopping() ? 0 : await presumeDue(deps);
  const dueRecorded = stopping() ? 0 : await recordDueWork(outbox);
  // The therapist's own changes to tasks are looked at before actions run, so an update never goes
  // to a task they have just completed.
  const tasks = stopping() ? { lists: 0, requests: 0, closedByTherapist: 0, failed: 0 } : await checkTaskLists(deps);
  const actions = await runDueActions(outbox, workerId, maxActions === undefined ? {} : { max: maxActions });
  return { synced, presumed, dueRecorded, tasks, actions };
}

/**
 * Presumes attendance for sessions that ended (where the practice presumes it): the ledgers whose
 * next end has passed take a round with no items. Returns how many transitions that made.
 */
export async function presumeDue(deps: WorkerDeps, limit = 100): Promise<number> {
  const { store, log } = deps;
  const now = store.now();
  // Also each ledger not looked at for a day: risk signals become true with time alone.
  const stale = new Date(now.getTime() - RECONCILE_EVERY_MS);
  const due = await store.db
    .selectFrom('ledgers')
    .select('therapist_id')
    .where((eb) => eb.or([eb('next_presume_at', '<=', now), eb('updated_at', '<', stale)]))
    .orderBy('next_presume_at')
    .limit(limit)
    .execute();
  let made = 0;
  for (const { therapist_id } of due) {
    try {
      const facts = await store.transaction((trx) => applyFacts(trx, store.keyring, { therapistId: therapist_id, items: [], at: now, plugins: deps.plugins ?? defaultPlugins, refresh: true }));
      made += facts.transitions.length;
    } catch (err) {
      // One therapist's trouble must not hold up the others: look again in an hour.
      log.error({ err, therapistId: therapist_id }, 'presuming attendance failed; will look again');
      await store.db.updateTable('ledgers').set({ next_presume_at: new Date(now.getTime() + 3_600_000), updated_at: now }).where('therapist_id', '=', therapist_id).execute();
    }
  }
  return made;
}

/** Runs the engine in this process: a tick every intervalMs, and at once when kicked. */
export class EngineWorker {
  readonly id = `worker-${randomUUID().slice(0, 8)}`;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #lastUpkeepMs = Number.NEGATIVE_INFINITY;
  /** Called after each round (tests and benchmarks wait on it). */
  onRound: ((report: TickReport) => void) | undefined;

  constructor(
    private readonly deps: WorkerDeps,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.#schedule(0);
  }

  /** Run now (a notification just queued work). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), ms);
    this.#timer.unref?.();
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    this.#running = (async () => {
      try {
        const nowMs = this.deps.clock.now().toMillis();
        // Upkeep reads the store each minute; only a renewal calls a platform.
        const upkeep = nowMs - this.#lastUpkeepMs >= UPKEEP_EVERY_MS;
        if (upkeep) this.#lastUpkeepMs = nowMs;
        const stopping = () => this.#stopped;
        // Actions in small batches: a notification's sync never waits behind a long queue of
        // actions (a first sync of a long history queues thousands of tags).
        const more = (r: TickReport) => r.actions.claimed >= ACTIONS_PER_ROUND;
        let report = await tick(this.deps, this.id, { upkeep, stopping, maxActions: ACTIONS_PER_ROUND });
        this.onRound?.(report);
        while ((this.#again || more(report)) && !this.#stopped) {
          this.#again = false;
          report = await tick(this.deps, this.id, { upkeep: false, stopping, maxActions: ACTIONS_PER_ROUND });
          this.onRound?.(report);
        }
      } catch (err) {
        this.deps.log.error({ err }, 'engine round failed');
      }
    })();
    await this.#running;
    this.#running = undefined;
    if (!this.#stopped) this.#schedule(this.intervalMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}

/**
 * On start-up every watched calendar gets one incremental sync: notifications sent while no process
 * was listening are lost (a cheap catch-up, one request per calendar when nothing changed).
 */
export async function queueCatchUp(store: Store): Promise<number> {
  const now = store.now();
  const rows = await store.db
    .selectFrom('calendars as c')
    .innerJoin('connections as k', 'k.id', 'c.connection_id')
    .select('c.id')
    .where('c.role', '<>', 'ignored')
    .where('k.status', '=', 'ok')
    // Synced in the last two minutes (another instance is up, or a cold start under a scheduler
    // that ticks each minute): nothing can have been missed.
    .where((eb) => eb.or([eb('c.last_sync_at', 'is', null), eb('c.last_sync_at', '<', new Date(now.getTime() - 120_000))]))
    .execute();
  for (const c of rows) await requestSync(store.db, { calendarId: c.id, reason: 'startup', now });
  return rows.length;
}

/** Every watched calendar is synced at least this often, push or not: lost notifications are made up. */
export const RECONCILE_EVERY_MS = 24 * 3_600_000;

/** Queues a sync for each watched calendar of a working connection not synced for a day. */
export async function queueReconciliation(store: Store): Promise<number> {
  const now = store.now();
  const due = await store.db
    .selectFrom('calendars as c')
    .innerJoin('connections as k', 'k.id', 'c.connection_id')
    .select('c.id')
    .where('c.role', '<>', 'ignored')
    .where('k.status', '=', 'ok')
    .where((eb) => eb.or([eb('c.last_sync_at', 'is', null), eb('c.last_sync_at', '<', new Date(now.getTime() - RECONCILE_EVERY_MS))]))
    // A calendar failing for good (gone, no longer shared) is tried again hourly, not every minute.
    .where((eb) => eb.or([eb('c.last_error_at', 'is', null), eb('c.last_error_at', '<', new Date(now.getTime() - 3_600_000))]))
    // One already waiting (perhaps backing off after failures) is left as it is.
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('sync_requests as r').select('r.calendar_id').whereRef('r.calendar_id', '=', 'c.id'))))
    .execute();
  for (const c of due) await requestSync(store.db, { calendarId: c.id, reason: 'reconcile', now });
  return due.length;
}
