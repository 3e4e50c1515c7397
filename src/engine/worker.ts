// The in-process sync worker of `npm start` (until the engine's own worker lands): takes queued
// "sync calendar X" requests, syncs each under its lock, and puts failures back with back-off.
import { randomUUID } from 'node:crypto';
import { Forbidden, NeedsReauth, NotFound, RetryAfter } from '../../connectors/errors.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import { claimSyncRequests, finishSyncRequest, releaseSyncRequest, requestSync } from '../store/sync-queue.js';
import type { Store } from '../store/store.js';
import { upkeepChannels } from './channels.js';
import type { ConnectorFactory } from './platforms.js';
import { recordSyncError, syncCalendar, type SyncOutcome } from './sync.js';

export interface WorkerDeps {
  store: Store;
  connectors: ConnectorFactory;
  log: Logger;
  clock: Clock;
  /** Called after each successful sync (the engine will turn the items into facts here). */
  onSynced?: (outcome: SyncOutcome) => Promise<void> | void;
  /** Where platforms push notifications; without it there is no push, only syncs on request. */
  publicUrl?: string | undefined;
}

/**
 * How often the worker looks after push channels (each is replaced a day before it expires, or at
 * once when the platform asks). Only a renewal calls the platform; a round otherwise reads our store.
 */
const UPKEEP_EVERY_MS = 60_000;

const LEASE_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 30 * 60_000;

/** Exponential back-off with jitter for the n-th failed attempt (1-based). */
export function backoffMs(attempt: number, random = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, 5_000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.5 + random() / 2));
}

/** Runs every due sync request once; returns how many calendars were synced. */
export async function runQueuedSyncs(deps: WorkerDeps, workerId: string, limit = 20): Promise<number> {
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
      const outcome = await syncCalendar(store, connector, cal.id, { full: claim.full, log });
      await deps.onSynced?.(outcome);
      await finishSyncRequest(store.db, { calendarId: claim.calendarId, seq: claim.seq, workerId });
      synced++;
      log.info({ calendarId: cal.id, mode: outcome.mode, items: outcome.items.length, pages: outcome.pages, cursorExpired: outcome.cursorExpired }, 'calendar synced');
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
  return synced;
}

/** Polls the queue every intervalMs (and at once when kicked) until stopped. */
export class SyncWorker {
  readonly id = `worker-${randomUUID().slice(0, 8)}`;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #lastUpkeepMs = Number.NEGATIVE_INFINITY;

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
        if (nowMs - this.#lastUpkeepMs >= UPKEEP_EVERY_MS) {
          this.#lastUpkeepMs = nowMs;
          if (this.deps.publicUrl) await upkeepChannels(this.deps.store, this.deps.connectors, { publicUrl: this.deps.publicUrl, log: this.deps.log });
          await queueReconciliation(this.deps.store);
        }
        do {
          this.#again = false;
          await runQueuedSyncs(this.deps, this.id);
        } while (this.#again && !this.#stopped);
      } catch (err) {
        this.deps.log.error({ err }, 'sync worker round failed');
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
    // One already waiting (perhaps backing off after failures) is left as it is.
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('sync_requests as r').select('r.calendar_id').whereRef('r.calendar_id', '=', 'c.id'))))
    .execute();
  for (const c of due) await requestSync(store.db, { calendarId: c.id, reason: 'reconcile', now });
  return due.length;
}
