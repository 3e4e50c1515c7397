// The outbox: actions recorded with an idempotency key in the transaction of the fact that caused
// them, then claimed by workers (FOR UPDATE SKIP LOCKED, so instances share them) and carried out.
import { sql, type Kysely } from 'kysely';
import type { Action, Database } from './schema.js';

export interface NewActionInput {
  therapistId: string;
  connectionId?: string | null;
  kind: string;
  idempotencyKey: string;
  payload?: Record<string, unknown>;
  /** When it may first run (now, or later for work that waits). */
  notBefore: Date;
  now: Date;
  /** The fact it is a consequence of (a transition's or a signal's key). */
  factKey?: string | null;
  /** The personal part of the payload, already sealed (outbox.ts sealActionSecret). */
  secret?: string | null;
}

function actionRow(input: NewActionInput) {
  return {
    therapist_id: input.therapistId,
    connection_id: input.connectionId ?? null,
    kind: input.kind,
    idempotency_key: input.idempotencyKey,
    payload: JSON.stringify(input.payload ?? {}),
    next_attempt_at: input.notBefore,
    fact_key: input.factKey ?? null,
    secret: input.secret ?? null,
    created_at: input.now,
    updated_at: input.now,
  };
}

/** Records an action once: a second call with the same key changes nothing and says so. */
export async function enqueueAction(db: Kysely<Database>, input: NewActionInput): Promise<{ id: string; created: boolean }> {
  const inserted = await db
    .insertInto('actions')
    .values(actionRow(input))
    .onConflict((oc) => oc.column('idempotency_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (inserted) return { id: inserted.id, created: true };
  const existing = await db.selectFrom('actions').select('id').where('idempotency_key', '=', input.idempotencyKey).executeTakeFirstOrThrow();
  return { id: existing.id, created: false };
}

/** Records many actions at once (each once, by key); returns how many were new. */
export async function enqueueActions(db: Kysely<Database>, inputs: readonly NewActionInput[]): Promise<number> {
  let created = 0;
  for (let i = 0; i < inputs.length; i += 500) {
    const rows = await db
      .insertInto('actions')
      .values(
        inputs.slice(i, i + 500).map(actionRow),
      )
      .onConflict((oc) => oc.column('idempotency_key').doNothing())
      .returning('id')
      .execute();
    created += rows.length;
  }
  return created;
}

export interface ClaimedAction extends Action {
  /** "pending" normally; "running" when a worker died holding it (its lease ran out). */
  claimed_from: 'pending' | 'running';
  /**
   * When a call of it was started and never settled (its worker died inside it, or it was put off
   * after that): the plug-in checks before doing it again. Null: no call is in doubt.
   */
  prior_start: Date | null;
}

/**
 * Claims up to `limit` due actions for one worker, with a lease. An action whose worker died
 * (lease expired while running) is claimed again and says so in `claimed_from`: the action's kind
 * decides whether a retry is safe (an email is not: it becomes `unknown`).
 */
export async function claimDueActions(
  db: Kysely<Database>,
  opts: { workerId: string; now: Date; leaseMs: number; limit: number; kinds?: readonly string[] },
): Promise<ClaimedAction[]> {
  const lease = new Date(opts.now.getTime() + opts.leaseMs);
  const kindFilter = opts.kinds ? sql`AND kind = ANY(${[...opts.kinds]}::text[])` : sql``;
  const result = await sql<ClaimedAction>`
    UPDATE actions AS a
    SET status = 'running', lease_expires_at = ${lease}, claimed_by = ${opts.workerId}, updated_at = ${opts.now}
    FROM (
      SELECT id, status AS claimed_from, started_at AS prior_start FROM actions
      WHERE ((status = 'pending' AND next_attempt_at <= ${opts.now})
          OR (status = 'running' AND lease_expires_at <= ${opts.now}))
        ${kindFilter}
      ORDER BY next_attempt_at, id
      LIMIT ${opts.limit}
      FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE a.id = due.id
    RETURNING a.*, due.claimed_from, due.prior_start`.execute(db);
  return result.rows;
}

/** Conditions that a worker's update only applies while it still holds the action's lease. */
function held(db: Kysely<Database>, id: string, workerId: string) {
  return db.updateTable('actions').where('id', '=', id).where('claimed_by', '=', workerId).where('status', '=', 'running');
}

async function settle(query: ReturnType<typeof held>): Promise<boolean> {
  const result = await query.executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Marks the call as started (one more attempt), renewing the lease: a batch claimed together is
 * started one by one, and each gets its full lease. False when this worker no longer holds it (do
 * not run it then). A claim alone changes neither the attempts nor the start: an action claimed in
 * a batch by a process that died before reaching it was not attempted, and a call in doubt from an
 * earlier holder stays in doubt (started_at) until an attempt settles it.
 */
export async function startAction(db: Kysely<Database>, input: { id: string; workerId: string; now: Date; leaseMs: number }): Promise<boolean> {
  return settle(
    held(db, input.id, input.workerId).set((eb) => ({
      started_at: input.now,
      attempts: eb('attempts', '+', 1),
      lease_expires_at: new Date(input.now.getTime() + input.leaseMs),
      updated_at: input.now,
    })),
  );
}

/** Puts a claimed action back in line without running it (the process is stopping): what was in doubt stays in doubt. */
export function releaseAction(db: Kysely<Database>, input: { id: string; workerId: string; now: Date }): Promise<boolean> {
  return settle(held(db, input.id, input.workerId).set({ status: 'pending', next_attempt_at: input.now, lease_expires_at: null, claimed_by: null, updated_at: input.now }));
}

/**
 * An action whose calls keep stopping the process (its holder died inside it again) waits until
 * `until`, its start kept, so the claim after that is a recovery again. The rest of the work goes on
 * meanwhile; nothing is given up.
 */
export function deferCrashedAction(
  db: Kysely<Database>,
  input: { id: string; workerId: string; now: Date; until: Date; priorStart: Date; reason: string },
): Promise<boolean> {
  return settle(
    held(db, input.id, input.workerId).set({
      status: 'pending',
      next_attempt_at: input.until,
      // Kept: the call in doubt is still in doubt, so the next claim checks first.
      started_at: input.priorStart,
      last_error: input.reason,
      lease_expires_at: null,
      claimed_by: null,
      updated_at: input.now,
    }),
  );
}

/** Done; returns false if this worker no longer held it (another took it over after a lost lease). */
export function completeAction(
  db: Kysely<Database>,
  input: { id: string; workerId: string; now: Date; externalRef?: string | null; outcome?: unknown },
): Promise<boolean> {
  return settle(
    held(db, input.id, input.workerId).set({
      status: 'done',
      external_ref: input.externalRef ?? null,
      outcome: input.outcome === undefined ? null : JSON.stringify(input.outcome),
      lease_expires_at: null,
      finished_at: input.now,
      updated_at: input.now,
    }),
  );
}

/** A transient failure: back to pending, due again at `retryAt`. */
export function retryAction(db: Kysely<Database>, input: { id: string; workerId: string; now: Date; retryAt: Date; error: string }): Promise<boolean> {
  return settle(
    held(db, input.id, input.workerId).set({
      status: 'pending',
      next_attempt_at: input.retryAt,
      last_error: input.error,
      lease_expires_at: null,
      claimed_by: null,
      // The call ended with an answer (or an error we saw): nothing is in doubt from a crash.
      started_at: null,
      updated_at: input.now,
    }),
  );
}

/** A permanent failure: stops with its reason. */
export function failAction(db: Kysely<Database>, input: { id: string; workerId: string; now: Date; error: string }): Promise<boolean> {
  return settle(
    held(db, input.id, input.workerId).set({ status: 'failed', last_error: input.error, lease_expires_at: null, finished_at: input.now, updated_at: input.now }),
  );
}

/** The outcome cannot be known (a crash inside a call with no idempotency key): shown, never resent. */
export function markActionUnknown(db: Kysely<Database>, input: { id: string; workerId: string; now: Date; reason: string }): Promise<boolean> {
  return settle(
    held(db, input.id, input.workerId).set({ status: 'unknown', last_error: input.reason, lease_expires_at: null, finished_at: input.now, updated_at: input.now }),
  );
}

/**
 * Parks the waiting actions of a connection (its grant is gone), and the one this worker holds when
 * given; returns how many. Actions other workers are running finish (or fail) on their own.
 */
export async function parkConnectionActions(
  db: Kysely<Database>,
  input: { therapistId: string; connectionId: string; now: Date; reason: string; held?: { id: string; workerId: string; answered: boolean } },
): Promise<number> {
  // A call in doubt (started_at) stays in doubt while parked: a send that may have gone out must not
  // look fresh when the actions resume. Only the held action whose call was answered (refused for
  // the grant) is cleared.
  if (input.held?.answered) {
    await db.updateTable('actions').set({ started_at: null }).where('id', '=', input.held.id).where('claimed_by', '=', input.held.workerId).where('status', '=', 'running').execute();
  }
  const result = await db
    .updateTable('actions')
    .set({ status: 'parked', last_error: input.reason, lease_expires_at: null, claimed_by: null, updated_at: input.now })
    .where('therapist_id', '=', input.therapistId)
    .where('connection_id', '=', input.connectionId)
    .where((eb) => {
      const mine = input.held ? eb.and([eb('id', '=', input.held.id), eb('claimed_by', '=', input.held.workerId), eb('status', '=', 'running')]) : eb.val(false);
      return eb.or([eb('status', '=', 'pending'), mine]);
    })
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Puts a connection's parked actions back in line (after the therapist consented again). */
export async function resumeConnectionActions(db: Kysely<Database>, input: { therapistId: string; connectionId: string; now: Date }): Promise<number> {
  const result = await db
    .updateTable('actions')
    .set({ status: 'pending', next_attempt_at: input.now, updated_at: input.now })
    .where('therapist_id', '=', input.therapistId)
    .where('connection_id', '=', input.connectionId)
    .where('status', '=', 'parked')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
