// The queue of "sync calendar X" requests: one row per calendar, so a burst of notifications is one
// sync. A request that arrives while its calendar is syncing bumps `seq` and survives that sync.
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface SyncRequestInput {
  calendarId: string;
  /** Why: "push", "reconcile", "cli", "lifecycle:missed" ... (no health data). */
  reason: string;
  /** Drop the cursor and resync everything (the store diffs the ids). */
  full?: boolean;
  now: Date;
  /** Not before this instant (a retry's back-off); now by default. */
  notBefore?: Date;
}

/** Adds or merges a request: a full resync wins over an incremental one, the earliest time wins. */
export async function requestSync(db: Kysely<Database>, input: SyncRequestInput): Promise<void> {
  const notBefore = input.notBefore ?? input.now;
  await db
    .insertInto('sync_requests')
    .values({
      calendar_id: input.calendarId,
      reason: input.reason,
      full_resync: input.full ?? false,
      requested_at: input.now,
      not_before: notBefore,
    })
    .onConflict((oc) =>
      oc.column('calendar_id').doUpdateSet({
        seq: sql`sync_requests.seq + 1`,
        full_resync: sql`sync_requests.full_resync OR excluded.full_resync`,
        reason: sql`excluded.reason`,
        requested_at: sql`excluded.requested_at`,
        // A new request is not held back by an older one's back-off.
        not_before: sql`LEAST(sync_requests.not_before, excluded.not_before)`,
      }),
    )
    .execute();
}

export interface ClaimedSync {
  calendarId: string;
  seq: number;
  full: boolean;
  reason: string;
  attempts: number;
}

/** Claims due requests whose calendar nobody is syncing (or whose worker's lease ran out). */
export async function claimSyncRequests(
  db: Kysely<Database>,
  opts: { workerId: string; now: Date; leaseMs: number; limit: number },
): Promise<ClaimedSync[]> {
  const lease = new Date(opts.now.getTime() + opts.leaseMs);
  const result = await sql<{ calendar_id: string; seq: number; full_resync: boolean; reason: string; attempts: number }>`
    UPDATE sync_requests AS r
    SET claimed_seq = r.seq, claimed_by = ${opts.workerId}, lease_expires_at = ${lease}, attempts = r.attempts + 1
    FROM (
      SELECT calendar_id FROM sync_requests
      WHERE not_before <= ${opts.now}
        AND (claimed_seq IS NULL OR lease_expires_at <= ${opts.now})
      ORDER BY not_before, calendar_id
      LIMIT ${opts.limit}
      FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE r.calendar_id = due.calendar_id
    RETURNING r.calendar_id, r.seq, r.full_resync, r.reason, r.attempts`.execute(db);
  return result.rows.map((r) => ({ calendarId: r.calendar_id, seq: r.seq, full: r.full_resync, reason: r.reason, attempts: r.attempts }));
}

/**
 * The sync of a claimed request succeeded. The request is removed unless a new one came in
 * meanwhile (seq moved on): then it stays, unclaimed, for another round.
 */
export async function finishSyncRequest(db: Kysely<Database>, claim: { calendarId: string; seq: number; workerId: string }): Promise<'done' | 'requeued'> {
  const deleted = await db
    .deleteFrom('sync_requests')
    .where('calendar_id', '=', claim.calendarId)
    .where('seq', '=', claim.seq)
    .where('claimed_by', '=', claim.workerId)
    .executeTakeFirst();
  if (deleted.numDeletedRows > 0n) return 'done';
  await db
    .updateTable('sync_requests')
    .set({ claimed_seq: null, claimed_by: null, lease_expires_at: null, attempts: 0 })
    .where('calendar_id', '=', claim.calendarId)
    .where('claimed_by', '=', claim.workerId)
    // full_resync stays as it is: a full request made during this sync must not be lost, and
    // one more full resync than needed is only slower.
    .where('seq', '>', claim.seq)
    .execute();
  return 'requeued';
}

/** The sync failed: the request stays, due again at `retryAt`. */
export async function releaseSyncRequest(db: Kysely<Database>, claim: { calendarId: string; workerId: string; retryAt: Date }): Promise<void> {
  await db
    .updateTable('sync_requests')
    .set({ claimed_seq: null, claimed_by: null, lease_expires_at: null, not_before: claim.retryAt })
    .where('calendar_id', '=', claim.calendarId)
    .where('claimed_by', '=', claim.workerId)
    .execute();
}

export async function pendingSyncCount(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom('sync_requests').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}
