// The outbox's machinery: actions are plug-ins registered by kind (what a fact causes, how to carry
// it out, whether a retry after a crash is safe); a runner claims due actions and carries them out
// with retries, exponential backoff with jitter, RetryAfter honoured, and parking on a lost grant.
import { z } from 'zod';
import { Forbidden, Invalid, NeedsReauth, NotFound, RetryAfter } from '../../connectors/errors.js';
import type { Logger } from '../log.js';
import type { Keyring } from '../secrets.js';
import { claimDueActions, completeAction, deferCrashedAction, enqueueAction, enqueueActions, startAction, failAction, markActionUnknown, parkConnectionActions, releaseAction, retryAction, type ClaimedAction, type NewActionInput } from '../store/actions.js';
import { audit } from '../store/audit.js';
import { sealContext } from '../store/keys.js';
import { setConnectionStatus } from '../store/connections.js';
import type { Database } from '../store/schema.js';
import type { Store } from '../store/store.js';
import type { Fact, FactRound, TherapistContext } from './facts.js';
import type { ConnectorFactory } from './platforms.js';

/** An action a plug-in wants recorded with the facts that caused it. */
export interface PlannedAction {
  kind: string;
  /** Unique across the practice: the same fact never yields a second action. */
  key: string;
  factKey: string | null;
  connectionId: string | null;
  payload: Record<string, unknown>;
  /**
   * Names, emails and text the action needs (a message, a task's title, an attendee): sealed at
   * rest (actions.secret) and merged into the payload when it runs. Never in `payload`.
   */
  secret?: Record<string, unknown>;
  notBefore?: Date;
}

export interface ActionRun {
  store: Store;
  connectors: ConnectorFactory;
  log: Logger;
  now: Date;
  action: ClaimedAction;
  /** The last attempt died inside its call (its lease ran out): check before doing it again. */
  recovering: boolean;
  /** This server's public address (links in what we send), when it has one. */
  publicUrl?: string | undefined;
}

/** Whether an earlier attempt may have made its change: then the plug-in checks before writing. */
export function mayHaveHappened(run: Pick<ActionRun, 'recovering' | 'action'>): boolean {
  return run.recovering || run.action.attempts > 1 || run.action.last_error !== null;
}

/** The connection an action runs on, keyed on the therapist; undefined when it is gone. */
export async function connectionOf(run: Pick<ActionRun, 'store' | 'action'>): Promise<{ id: string; therapist_id: string; provider: 'google' | 'microsoft' } | undefined> {
  if (!run.action.connection_id) return undefined;
  return run.store.db
    .selectFrom('connections')
    .select(['id', 'therapist_id', 'provider'])
    .where('id', '=', run.action.connection_id)
    .where('therapist_id', '=', run.action.therapist_id)
    .executeTakeFirst();
}

/** What came of an action: done (with what it made), or nothing left to do and why. */
export type ActionResult = { status: 'done'; externalRef?: string | null; outcome?: unknown } | { status: 'cancelled'; reason: string };

export interface ActionPlugin<P = unknown> {
  kind: string;
  payload: z.ZodType<P>;
  /**
   * After a crash inside the call: "recover" when `run` can find out what happened (our own ids, a
   * marker it searches for), "unknown" when it cannot (an email): the operator decides, never a resend.
   */
  onCrash: 'recover' | 'unknown';
  /**
   * Payload fields that carry personal details (names, emails, text): they must come in the sealed
   * part (`PlannedAction.secret`); an action that has them in its plain payload is refused.
   */
  secretFields?: readonly string[];
  /** The actions the round's facts cause, recorded in the facts' transaction. */
  plan?(facts: readonly Fact[], ctx: TherapistContext): PlannedAction[];
  /**
   * The actions a round causes that depend on what the store already holds or on the whole picture
   * (a follow-up updated rather than opened again, a signal that came with time): asked whenever the
   * ledger is read, in the facts' transaction, after the clients' signals were worked out.
   */
  planRound?(round: FactRound): Promise<PlannedAction[]>;
  /**
   * Work that falls due with time rather than with a fact (a reminder 48 hours before a session):
   * asked at every tick, from the current state, so a moved or cancelled session never leaves a
   * stale job behind. Keys make asking again harmless.
   */
  due?(store: Store, now: Date): Promise<(PlannedAction & { therapistId: string })[]>;
  run(payload: P, run: ActionRun): Promise<ActionResult>;
}

export interface OutboxDeps {
  store: Store;
  connectors: ConnectorFactory;
  log: Logger;
  plugins: readonly ActionPlugin[];
  random?: () => number;
  /** Asked between actions: the process is shutting down, leave the rest for later. */
  stopping?: () => boolean;
  /** This server's public address, for links in what actions send. */
  publicUrl?: string | undefined;
}

const LEASE_MS = 5 * 60_000;
/** After this many attempts a transient failure is given up as permanent (about two days of backoff). */
export const MAX_ATTEMPTS = 12;
/** A process that died inside an action this many times in a row: the action waits before the next try. */
const CRASHES_BEFORE_BACKOFF = 3;
const MAX_BACKOFF_MS = 6 * 3_600_000;

/** Exponential backoff with jitter for the n-th failed attempt (1-based): 10 s, 20 s, ... up to 6 h. */
export function actionBackoffMs(attempt: number, random = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, 10_000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.5 + random() / 2));
}

export interface OutboxReport {
  claimed: number;
  done: number;
  retried: number;
  failed: number;
  unknown: number;
  parked: number;
  cancelled: number;
  /** Actions the process died inside repeatedly, put off with a backoff. */
  deferred: number;
}

const SECRET_CONTEXT = sealContext('actions', 'secret');

/** A planned action as the store records it, its secret part sealed. */
export function plannedAction(keyring: Keyring, therapistId: string, p: PlannedAction, now: Date): NewActionInput {
  return {
    therapistId,
    connectionId: p.connectionId,
    kind: p.kind,
    idempotencyKey: p.key,
    payload: p.payload,
    notBefore: p.notBefore ?? now,
    now,
    factKey: p.factKey,
    secret: p.secret ? keyring.encrypt(JSON.stringify(p.secret), SECRET_CONTEXT) : null,
  };
}

/**
 * Records one action from outside the facts (a booking, an operator, a test), once per key;
 * returns its id and whether it was new.
 */
export async function submitAction(store: Store, therapistId: string, p: PlannedAction): Promise<{ id: string; created: boolean }> {
  return enqueueAction(store.db, plannedAction(store.keyring, therapistId, p, store.now()));
}

/**
 * Thrown by a plug-in when a call that cannot be repeated safely may or may not have taken effect
 * (an email whose send answered 5xx or never answered): the action becomes `unknown`, never retried.
 */
export class OutcomeUnknown extends Error {
  override readonly name = 'OutcomeUnknown';
}

/** Asks each plug-in for the work that is due now and records it (once per key); returns how many were new. */
export async function recordDueWork(deps: OutboxDeps): Promise<number> {
  let created = 0;
  const now = deps.store.now();
  for (const plugin of deps.plugins) {
    if (!plugin.due) continue;
    const due = await plugin.due(deps.store, now);
    created += await enqueueActions(deps.store.db, due.map((p) => plannedAction(deps.store.keyring, p.therapistId, p, now)));
  }
  return created;
}

/** Claims and carries out due actions until none is due (or `max` were claimed). */
export async function runDueActions(deps: OutboxDeps, workerId: string, opts: { max?: number; batch?: number } = {}): Promise<OutboxReport> {
  const report: OutboxReport = { claimed: 0, done: 0, retried: 0, failed: 0, unknown: 0, parked: 0, cancelled: 0, deferred: 0 };
  const byKind = new Map(deps.plugins.map((p) => [p.kind, p]));
  const max = opts.max ?? 1000;
  while (report.claimed < max) {
    const claims = await claimDueActions(deps.store.db, { workerId, now: deps.store.now(), leaseMs: LEASE_MS, limit: Math.min(opts.batch ?? 20, max - report.claimed), kinds: [...byKind.keys()] });
    if (claims.length === 0) break;
    report.claimed += claims.length;
    for (const action of claims) {
      if (deps.stopping?.()) {
        // Back in line at once: nothing was started (and a call in doubt from before stays in doubt).
        await releaseAction(deps.store.db, { id: action.id, workerId, now: deps.store.now() });
        continue;
      }
      await runOne(deps, byKind.get(action.kind)!, action, workerId, report);
    }
    if (deps.stopping?.()) break;
  }
  return report;
}

async function runOne(deps: OutboxDeps, plugin: ActionPlugin, claimed: ClaimedAction, workerId: string, report: OutboxReport): Promise<void> {
  let action = claimed;
  const { store, log } = deps;
  const db = store.db;
  const now = store.now();
  const ids = { id: action.id, workerId, now };
  const where = { actionId: action.id, kind: action.kind };
  const exposed = (plugin.secretFields ?? []).filter((f) => f in action.payload);
  if (exposed.length > 0) {
    await failAction(db, { ...ids, error: `this ${action.kind} has personal details in its plain payload (${exposed.join(', ')}): they belong in its sealed part` });
    report.failed++;
    return;
  }
  let input: unknown = action.payload;
  if (action.secret !== null) {
    try {
      input = { ...action.payload, ...(JSON.parse(store.keyring.decrypt(action.secret, SECRET_CONTEXT)) as Record<string, unknown>) };
    } catch (err) {
      await failAction(db, { ...ids, error: `the stored details of this ${action.kind} do not open: ${(err as Error).message}` });
      report.failed++;
      return;
    }
  }
  const parsed = plugin.payload.safeParse(input);
  if (!parsed.success) {
    await failAction(db, { ...ids, error: `the stored payload is not a valid ${action.kind}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` });
    report.failed++;
    return;
  }
  // A lost lease whose holder never started the call is a plain retry; one it started may have happened.
  const recovering = action.prior_start !== null;
  if (recovering && plugin.onCrash === 'unknown') {
    // It may have happened: the platform has no key to ask by, and doing it twice is worse.
    await markActionUnknown(db, { ...ids, reason: 'the process stopped inside the call: it may or may not have been done' });
    log.warn(where, 'action outcome unknown after a crash; shown to the operator');
    report.unknown++;
    return;
  }
  // (attempts counts the calls started before this claim.)
  if (recovering && action.claimed_from === 'running' && action.attempts >= CRASHES_BEFORE_BACKOFF) {
    // It may be what stops the process: run again only after a backoff, so the rest gets done.
    const until = new Date(now.getTime() + actionBackoffMs(action.attempts - CRASHES_BEFORE_BACKOFF + 1, deps.random));
    await deferCrashedAction(db, { ...ids, until, priorStart: action.prior_start!, reason: `the process stopped inside this action (attempt ${action.attempts}); next try at ${until.toISOString()}` });
    log.warn({ ...where, attempts: action.attempts, until }, 'an action keeps stopping the process; it waits before the next try');
    report.deferred++;
    return;
  }
  if (action.connection_id) {
    const conn = await db.selectFrom('connections').select('status').where('id', '=', action.connection_id).executeTakeFirst();
    if (conn && conn.status !== 'ok') {
      await parkConnectionActions(db, { therapistId: action.therapist_id, connectionId: action.connection_id, now, reason: `the connection ${conn.status === 'revoked' ? 'was revoked' : 'needs the therapist to connect again'}`, held: { id: action.id, workerId, answered: false } });
      report.parked++;
      return;
    }
  }
  if (!(await startAction(db, { id: action.id, workerId, now, leaseMs: LEASE_MS }))) {
    log.warn(where, 'another worker took the action over before it started; left to it');
    return;
  }
  // From here on, `attempts` counts this one.
  action = { ...action, attempts: action.attempts + 1 };
  try {
    const result = await plugin.run(parsed.data, { store, connectors: deps.connectors, log, now, action, recovering, publicUrl: deps.publicUrl });
    if (result.status === 'done') {
      if (await completeAction(db, { ...ids, now: store.now(), externalRef: result.externalRef ?? null, outcome: result.outcome })) report.done++;
      else log.warn(where, 'done, but another worker had taken the action over (its lease ran out): it will check before doing it again');
    } else {
      await settleCancelled(db, { ...ids, now: store.now(), reason: result.reason });
      report.cancelled++;
    }
  } catch (err) {
    const message = `${(err as Error).name}: ${(err as Error).message}`.slice(0, 500);
    const later = store.now();
    if (err instanceof OutcomeUnknown) {
      await markActionUnknown(db, { ...ids, now: later, reason: message });
      log.warn({ ...where, error: message }, 'action outcome unknown; shown to the operator, never repeated blindly');
      report.unknown++;
      return;
    }
    if (err instanceof NeedsReauth) {
      let parked = 0;
      if (action.connection_id) {
        const ref = { therapistId: action.therapist_id, connectionId: action.connection_id };
        parked = await store.transaction(async (trx) => {
          const n = await parkConnectionActions(trx, { ...ref, now: later, reason: message, held: { id: action.id, workerId, answered: true } });
          // The therapist sees it where they see the connection (status, the add-ons); the operator in `status`.
          await setConnectionStatus(trx, ref, 'needs_reauth', message, later);
          await audit(trx, { at: later, therapistId: action.therapist_id, actor: 'system', action: 'update', subjectType: 'connection', subjectId: action.connection_id, detail: { status: 'needs_reauth', parkedActions: n } });
          return n;
        });
      } else {
        await failAction(db, { ...ids, now: later, error: message });
      }
      log.warn({ ...where, connectionId: action.connection_id, parked }, 'the grant is gone: the connection\'s actions wait for the therapist to connect again');
      report.parked++;
      return;
    }
    // Attempts count every try, those the process died in too.
    const permanent = err instanceof NotFound || err instanceof Forbidden || err instanceof Invalid;
    if (permanent || action.attempts >= MAX_ATTEMPTS) {
      const reason = !permanent ? `gave up after ${action.attempts} attempts: ${message}` : message;
      await failAction(db, { ...ids, now: later, error: reason });
      log.warn({ ...where, error: reason }, 'action failed for good');
      report.failed++;
      return;
    }
    const wait = err instanceof RetryAfter && err.seconds !== null ? err.seconds * 1000 : actionBackoffMs(action.attempts, deps.random);
    await retryAction(db, { ...ids, now: later, retryAt: new Date(later.getTime() + wait), error: message });
    log.info({ ...where, attempt: action.attempts, retryInMs: wait, error: message }, 'action failed; will retry');
    report.retried++;
  }
}

/** Nothing left to do (the session was cancelled meanwhile, the event is gone): stops with its reason. */
async function settleCancelled(db: import('kysely').Kysely<Database>, input: { id: string; workerId: string; now: Date; reason: string }): Promise<void> {
  await db
    .updateTable('actions')
    .set({ status: 'cancelled', last_error: input.reason, lease_expires_at: null, finished_at: input.now, updated_at: input.now })
    .where('id', '=', input.id)
    .where('claimed_by', '=', input.workerId)
    .where('status', '=', 'running')
    .execute();
}
