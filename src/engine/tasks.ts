// Follow-up tasks as engine actions (open, update, close) in the therapist's Google Tasks or Microsoft
// To Do list, one task per fact, and the sparse check that notices the therapist completing or
// deleting one, so that it is never reopened for the same fact.
import { sql } from 'kysely';
import { z } from 'zod';
import { ConnectorError, NeedsReauth, NotFound, RetryAfter } from '../../connectors/errors.js';
import { taskMarker, type RemoteTask, type TaskConnector } from '../../connectors/port.js';
import { therapistSettings } from '../store/practices.js';
import { claimDueTaskLists, closeTask, finishTaskListCheck, findTask, findTaskList, openTasksOfList, recordTask, recordTaskList, replaceTaskList } from '../store/tasks.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { connectionOf, mayHaveHappened, type ActionPlugin, type ActionResult, type ActionRun } from './outbox.js';
import type { ConnectorFactory } from './platforms.js';

export const TASK_OPEN = 'task.open';
export const TASK_UPDATE = 'task.update';
export const TASK_CLOSE = 'task.close';
/** The actions that open a task, each with the task's key as `key` in its plain payload (engine/followups.ts makes its own). */
const OPENING_KINDS = [TASK_OPEN, 'followup.open'];

/**
 * How often a list with open tasks of ours is looked at for the therapist's own changes: there is
 * no push for tasks on either platform (API-NOTES), and each look is one request per page, so two
 * an hour per list.
 */
export const TASK_CHECK_INTERVAL_MS = 30 * 60_000;
/** After a failed look, the next one comes sooner, but not in a loop. */
const TASK_CHECK_RETRY_MS = 5 * 60_000;
/**
 * The first look asks for changes from a little before the list was recorded: the platform stamps
 * `updated` with its own clock, which may differ from ours.
 */
const CHECK_OVERLAP_MS = 5 * 60_000;

const date = z.iso.date();

/** The follow-up list's name in the practice's settings. */
async function listName(run: Pick<ActionRun, 'store' | 'action'>): Promise<string> {
  return (await therapistSettings(run.store.db, run.action.therapist_id)).followUpList;
}

/** A list the platform no longer has: its open tasks of ours were deleted with it, by the therapist. */
async function listGone(store: Store, listId: string, therapistId: string): Promise<number> {
  let n = 0;
  for (const t of await store.db.selectFrom('tasks').select('id').where('list_id', '=', listId).where('status', '=', 'open').execute()) {
    if (await closeTask(store.db, { therapistId, taskId: t.id, status: 'deleted', by: 'therapist', now: store.now() })) n++;
  }
  return n;
}

/** The connection's follow-up list: recorded, or found again / made by its name and recorded. */
async function listFor(run: ActionRun, connector: TaskConnector, connectionId: string) {
  const known = await findTaskList(run.store.db, run.action.therapist_id, connectionId);
  if (known) return known;
  const providerListId = await connector.ensureList(await listName(run));
  const now = run.store.now();
  return recordTaskList(run.store.db, { therapistId: run.action.therapist_id, connectionId, providerListId, now, nextCheckAt: new Date(now.getTime() + TASK_CHECK_INTERVAL_MS) });
}

// ---------------------------------------------------------------------------------------------

const openSchema = z.strictObject({
  /** The fact the task is about: one task per fact. */
  key: z.string().min(1).max(500),
  due: date.nullable().default(null),
  // The secret part (sealed at rest).
  title: z.string().min(1).max(1024),
  notes: z.string().max(7000),
  link: z.strictObject({ url: z.url(), label: z.string().min(1).max(200) }).optional(),
});
export type TaskOpenPayload = z.input<typeof openSchema>;

/**
 * Opens the follow-up task for a fact, once: a task already recorded for the fact is not opened again
 * (whatever its state: one the therapist completed stays completed), and after a crash or a lost
 * answer the platform is searched for the task's marker before a second is made.
 */
export const taskOpenPlugin: ActionPlugin<z.output<typeof openSchema>> = {
  kind: TASK_OPEN,
  payload: openSchema,
  secretFields: ['title', 'notes', 'link'],
  onCrash: 'recover',
  run: (p, run) => openTask(run, p),
};

/** What a task is made of: its fact's key (one task per fact), title, notes, due date and a link. */
export interface TaskContent {
  key: string;
  title: string;
  notes: string;
  due: string | null;
  link?: { url: string; label: string } | undefined;
}

/**
 * Opens the task for a fact, once (task.open, and the follow-ups that make their content when they run):
 * a task already recorded for the fact is not opened again, whatever its state; after a crash or a
 * lost answer the platform is searched for the task's marker before a second is made.
 */
export async function openTask(run: ActionRun, p: TaskContent): Promise<ActionResult> {
  const existing = await findTask(run.store.db, run.action.therapist_id, p.key);
  if (existing) {
    return existing.status === 'open'
      ? { status: 'done', externalRef: existing.providerTaskId, outcome: { created: false } }
      : { status: 'cancelled', reason: `the task for this was already ${existing.status} by ${existing.closedBy}` };
  }
  const conn = await connectionOf(run);
  if (!conn) return { status: 'cancelled', reason: 'the connection is gone' };
  const connector = await run.connectors.taskConnector(conn);
  let list = await listFor(run, connector, conn.id);
  const draft = { key: p.key, title: p.title, notes: p.notes, due: p.due, ...(p.link ? { link: p.link } : {}) };
  let made: { taskId: string; created: boolean };
  try {
    made = await connector.createTask(list.providerListId, draft, { mayExist: mayHaveHappened(run) });
  } catch (err) {
    if (!(err instanceof NotFound)) throw err;
    // The therapist deleted the follow-up list: its tasks went with it (theirs), and a new list is
    // found or made by name for this one.
    await listGone(run.store, list.id, run.action.therapist_id);
    const providerListId = await connector.ensureList(await listName(run));
    list = await replaceTaskList(run.store.db, { listId: list.id, providerListId, now: run.store.now() });
    made = await connector.createTask(list.providerListId, draft, { mayExist: false });
  }
  await recordTask(run.store.db, { therapistId: run.action.therapist_id, listId: list.id, key: p.key, marker: taskMarker(p.key), providerTaskId: made.taskId, now: run.store.now() });
  return { status: 'done', externalRef: made.taskId, outcome: { created: made.created } };
}

/** Whether an opening of the task for this fact is still to be carried out (pending, running or parked). */
async function openingPending(run: Pick<ActionRun, 'store' | 'action'>, key: string): Promise<boolean> {
  const row = await run.store.db
    .selectFrom('actions')
    .select('id')
    .where('therapist_id', '=', run.action.therapist_id)
    .where('kind', 'in', OPENING_KINDS)
    .where('status', 'in', ['pending', 'running', 'parked'])
    .where(sql<string>`payload->>'key'`, '=', key)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Records what the platform says of a task after our call: the therapist may have closed it. `ours`:
 * a completion that an earlier attempt of this very close may have made (it died before its record).
 */
async function noteRemote(run: ActionRun, taskId: string, remote: RemoteTask | null, ours = false): Promise<'open' | 'completed' | 'deleted'> {
  const status = remote === null ? 'deleted' : remote.status;
  const by = ours && status === 'completed' ? 'sessionkeeper' : 'therapist';
  if (status !== 'open') await closeTask(run.store.db, { therapistId: run.action.therapist_id, taskId, status, by, now: run.store.now() });
  return status;
}

const updateSchema = z.strictObject({
  key: z.string().min(1).max(500),
  due: date.nullable().optional(),
  title: z.string().min(1).max(1024).optional(),
  notes: z.string().max(7000).optional(),
});
export type TaskUpdatePayload = z.input<typeof updateSchema>;

/** When more happens about the same fact: the open task is updated, never duplicated or reopened. */
export const taskUpdatePlugin: ActionPlugin<z.output<typeof updateSchema>> = {
  kind: TASK_UPDATE,
  payload: updateSchema,
  secretFields: ['title', 'notes'],
  onCrash: 'recover',
  run: (p, run) => updateTask(run, p.key, p),
};

/** Writes new content into the open task of a fact; one the therapist completed or deleted is left alone. */
export async function updateTask(run: ActionRun, key: string, p: { title?: string | undefined; notes?: string | undefined; due?: string | null | undefined }): Promise<ActionResult> {
  const task = await findTask(run.store.db, run.action.therapist_id, key);
  if (!task) {
    // Its opening has not been carried out yet (it waits for a retry): this one waits too.
    if (await openingPending(run, key)) throw new RetryAfter(null, 'the task is not open yet');
    return { status: 'cancelled', reason: 'no task was opened for this' };
  }
  if (task.status !== 'open') return { status: 'cancelled', reason: `the task was ${task.status} by ${task.closedBy}: not reopened` };
  const conn = await connectionOf({ ...run, action: { ...run.action, connection_id: task.connectionId } });
  if (!conn) return { status: 'cancelled', reason: 'the connection is gone' };
  const connector = await run.connectors.taskConnector(conn);
  const remote = await connector.updateTask(task.providerListId, task.providerTaskId, {
    ...(p.title !== undefined ? { title: p.title } : {}),
    ...(p.notes !== undefined ? { notes: p.notes } : {}),
    ...(p.due !== undefined ? { due: p.due } : {}),
  });
  const status = await noteRemote(run, task.id, remote);
  return { status: 'done', externalRef: task.providerTaskId, outcome: { status } };
}

const closeSchema = z.strictObject({
  key: z.string().min(1).max(500),
  /** Why it closes by itself (shown in the task before it is completed), e.g. "booked again for 3 March". */
  notes: z.string().max(7000).optional(),
});
export type TaskClosePayload = z.input<typeof closeSchema>;

/** The fact is settled (the client booked again): the task says so and is completed by us. */
export const taskClosePlugin: ActionPlugin<z.output<typeof closeSchema>> = {
  kind: TASK_CLOSE,
  payload: closeSchema,
  secretFields: ['notes'],
  onCrash: 'recover',
  run: (p, run) => closeTaskOf(run, p.key, p.notes),
};

/** Completes the task of a fact (after writing why into its notes, when given): the fact is settled. */
export async function closeTaskOf(run: ActionRun, key: string, notes: string | undefined): Promise<ActionResult> {
  const p = { key, notes };
  const task = await findTask(run.store.db, run.action.therapist_id, p.key);
  if (!task) {
    // Its opening may still be on its way (waiting for a retry, parked, running elsewhere): the
    // close waits for it rather than leave a task open for good.
    if (await openingPending(run, p.key)) throw new RetryAfter(null, 'the task is not open yet');
    return { status: 'cancelled', reason: 'no task was opened for this' };
  }
  if (task.status !== 'open') return { status: 'done', externalRef: task.providerTaskId, outcome: { already: task.status, by: task.closedBy } };
  const conn = await connectionOf({ ...run, action: { ...run.action, connection_id: task.connectionId } });
  if (!conn) return { status: 'cancelled', reason: 'the connection is gone' };
  const connector = await run.connectors.taskConnector(conn);
  if (p.notes !== undefined) {
    const remote = await connector.updateTask(task.providerListId, task.providerTaskId, { notes: p.notes });
    const ours = mayHaveHappened(run);
    const status = await noteRemote(run, task.id, remote, ours);
    if (status !== 'open') return { status: 'done', externalRef: task.providerTaskId, outcome: { already: status, by: ours && status === 'completed' ? 'sessionkeeper' : 'therapist' } };
  }
  await connector.completeTask(task.providerListId, task.providerTaskId);
  await closeTask(run.store.db, { therapistId: run.action.therapist_id, taskId: task.id, status: 'completed', by: 'sessionkeeper', now: run.store.now() });
  return { status: 'done', externalRef: task.providerTaskId, outcome: { closed: true } };
}

// ---------------------------------------------------------------------------------------------

export interface TaskCheckReport {
  lists: number;
  requests: number;
  /** Tasks the therapist completed or deleted, newly seen. */
  closedByTherapist: number;
  failed: number;
}

/**
 * The sparse check: each list with open tasks of ours whose time has come is listed for changes
 * since the last look (one request per page), and the tasks the therapist completed or deleted
 * are recorded as theirs. A failure waits for the next look; a lost grant marks the connection
 * (the connector does), which takes the list out of the checks until the therapist reconnects.
 */
export async function checkTaskLists(deps: { store: Store; connectors: ConnectorFactory; log: Logger }, opts: { limit?: number } = {}): Promise<TaskCheckReport> {
  const { store, log } = deps;
  const report: TaskCheckReport = { lists: 0, requests: 0, closedByTherapist: 0, failed: 0 };
  const now = store.now();
  const lists = await claimDueTaskLists(store.db, { now, leaseUntil: new Date(now.getTime() + TASK_CHECK_RETRY_MS), limit: opts.limit ?? 50 });
  for (const list of lists) {
    report.lists++;
    let connector: TaskConnector | undefined;
    try {
      connector = await deps.connectors.taskConnector({ id: list.connectionId, therapist_id: list.therapistId, provider: list.provider });
      const startedAt = store.now();
      const changed = await connector.changedTasks(list.providerListId, list.cursor, new Date(list.createdAt.getTime() - CHECK_OVERLAP_MS));
      const open = await openTasksOfList(store.db, list.id);
      for (const t of changed.tasks) {
        if (t.status === 'open') continue;
        const ours = open.find(t);
        if (!ours) continue;
        if (await closeTask(store.db, { therapistId: ours.therapistId, taskId: ours.id, status: t.status, by: 'therapist', now: store.now() })) report.closedByTherapist++;
      }
      await finishTaskListCheck(store.db, { listId: list.id, cursor: changed.cursor, nextCheckAt: new Date(startedAt.getTime() + TASK_CHECK_INTERVAL_MS), now: store.now() });
    } catch (err) {
      if (err instanceof NotFound) {
        // The therapist deleted the whole list: every open task of ours in it is theirs, deleted.
        report.closedByTherapist += await listGone(store, list.id, list.therapistId);
        continue;
      }
      report.failed++;
      const message = err instanceof ConnectorError || err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      // A transient failure keeps the claim's short lease as the next look; anything else waits the
      // whole interval (a missing scope will not fix itself in five minutes). A lost grant has marked
      // the connection, which takes the list out of the checks.
      if (!(err instanceof RetryAfter)) await finishTaskListCheck(store.db, { listId: list.id, cursor: null, nextCheckAt: new Date(now.getTime() + TASK_CHECK_INTERVAL_MS), now: store.now() });
      log.warn({ taskListId: list.id, connectionId: list.connectionId, error: message, reauth: err instanceof NeedsReauth }, 'the follow-up list could not be checked; it is looked at again later');
    } finally {
      report.requests += connector?.requests ?? 0;
    }
  }
  return report;
}
