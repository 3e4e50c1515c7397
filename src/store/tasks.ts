// The follow-up tasks we opened in a therapist's Google Tasks or Microsoft To Do, and the list they
// live in per connection: how a task is found again by its fact, and how the therapist's completing
// or deleting it is recorded so that it is never opened again for the same fact.
import { sql, type Kysely } from 'kysely';
import type { Database, TaskStatus } from './schema.js';

export interface TaskListRow {
  id: string;
  therapistId: string;
  connectionId: string;
  providerListId: string;
  cursor: string | null;
  createdAt: Date;
}

/** The connection's follow-up list as recorded, or undefined before the first task. */
export async function findTaskList(db: Kysely<Database>, therapistId: string, connectionId: string): Promise<TaskListRow | undefined> {
  const row = await db
    .selectFrom('task_lists')
    .select(['id', 'therapist_id', 'connection_id', 'provider_list_id', 'cursor', 'created_at'])
    .where('therapist_id', '=', therapistId)
    .where('connection_id', '=', connectionId)
    .executeTakeFirst();
  return row && { id: row.id, therapistId: row.therapist_id, connectionId: row.connection_id, providerListId: row.provider_list_id, cursor: row.cursor, createdAt: row.created_at };
}

/** Records the list (the first writer wins: two workers that both found or made it agree on one). */
export async function recordTaskList(
  db: Kysely<Database>,
  input: { therapistId: string; connectionId: string; providerListId: string; now: Date; nextCheckAt: Date },
): Promise<TaskListRow> {
  await db
    .insertInto('task_lists')
    .values({
      therapist_id: input.therapistId,
      connection_id: input.connectionId,
      provider_list_id: input.providerListId,
      next_check_at: input.nextCheckAt,
      created_at: input.now,
      updated_at: input.now,
    })
    .onConflict((oc) => oc.column('connection_id').doNothing())
    .execute();
  return (await findTaskList(db, input.therapistId, input.connectionId))!;
}

/** The platform's list was deleted and another found or made: the record points at it, its cursor anew. */
export async function replaceTaskList(db: Kysely<Database>, input: { listId: string; providerListId: string; now: Date }): Promise<TaskListRow> {
  const row = await db
    .updateTable('task_lists')
    .set({ provider_list_id: input.providerListId, cursor: null, created_at: input.now, updated_at: input.now })
    .where('id', '=', input.listId)
    .returning(['id', 'therapist_id', 'connection_id', 'provider_list_id', 'cursor', 'created_at'])
    .executeTakeFirstOrThrow();
  return { id: row.id, therapistId: row.therapist_id, connectionId: row.connection_id, providerListId: row.provider_list_id, cursor: row.cursor, createdAt: row.created_at };
}

export interface TaskRow {
  id: string;
  listId: string;
  key: string;
  marker: string;
  providerTaskId: string;
  status: TaskStatus;
  closedBy: 'therapist' | 'sessionkeeper' | null;
}

/** Our task for a fact (keyed on the therapist), or undefined when none was opened. */
export async function findTask(db: Kysely<Database>, therapistId: string, key: string): Promise<(TaskRow & { providerListId: string; connectionId: string }) | undefined> {
  const row = await db
    .selectFrom('tasks as t')
    .innerJoin('task_lists as l', 'l.id', 't.list_id')
    .select(['t.id', 't.list_id', 't.key', 't.marker', 't.provider_task_id', 't.status', 't.closed_by', 'l.provider_list_id', 'l.connection_id'])
    .where('t.therapist_id', '=', therapistId)
    .where('t.key', '=', key)
    .executeTakeFirst();
  return (
    row && {
      id: row.id,
      listId: row.list_id,
      key: row.key,
      marker: row.marker,
      providerTaskId: row.provider_task_id,
      status: row.status,
      closedBy: row.closed_by,
      providerListId: row.provider_list_id,
      connectionId: row.connection_id,
    }
  );
}

/** Records a task we opened; a second record for the same fact keeps the first. */
export async function recordTask(
  db: Kysely<Database>,
  input: { therapistId: string; listId: string; key: string; marker: string; providerTaskId: string; now: Date },
): Promise<void> {
  await db
    .insertInto('tasks')
    .values({
      therapist_id: input.therapistId,
      list_id: input.listId,
      key: input.key,
      marker: input.marker,
      provider_task_id: input.providerTaskId,
      status: 'open',
      created_at: input.now,
      updated_at: input.now,
    })
    .onConflict((oc) => oc.columns(['therapist_id', 'key']).doNothing())
    .execute();
}

/**
 * Closes a task in our record: completed or deleted, by the therapist (seen on the platform) or by us.
 * Only an open task changes: a close never reopens, and the first close says who closed it.
 */
export async function closeTask(
  db: Kysely<Database>,
  input: { therapistId: string; taskId: string; status: Exclude<TaskStatus, 'open'>; by: 'therapist' | 'sessionkeeper'; now: Date },
): Promise<boolean> {
  const res = await db
    .updateTable('tasks')
    .set({ status: input.status, closed_by: input.by, closed_at: input.now, updated_at: input.now })
    .where('id', '=', input.taskId)
    .where('therapist_id', '=', input.therapistId)
    .where('status', '=', 'open')
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/**
 * Claims the lists whose sparse check is due, for one worker: only lists holding open tasks of ours
 * on a connection that works. Each claimed list's next check moves to `leaseUntil`, so another
 * worker does not take it meanwhile; the checker sets the real next time when done.
 */
export async function claimDueTaskLists(db: Kysely<Database>, input: { now: Date; leaseUntil: Date; limit: number }): Promise<(TaskListRow & { provider: 'google' | 'microsoft' })[]> {
  const rows = await sql<{ id: string; therapist_id: string; connection_id: string; provider_list_id: string; cursor: string | null; created_at: Date | string; provider: 'google' | 'microsoft' }>`
    WITH due AS (
      SELECT l.id FROM task_lists l
      JOIN connections k ON k.id = l.connection_id AND k.status = 'ok'
      WHERE l.next_check_at <= ${input.now}
        AND EXISTS (SELECT 1 FROM tasks t WHERE t.list_id = l.id AND t.status = 'open')
      ORDER BY l.next_check_at
      LIMIT ${input.limit}
      FOR UPDATE OF l SKIP LOCKED
    )
    UPDATE task_lists l SET next_check_at = ${input.leaseUntil}
    FROM due, connections k
    WHERE l.id = due.id AND k.id = l.connection_id
    RETURNING l.id, l.therapist_id, l.connection_id, l.provider_list_id, l.cursor, l.created_at, k.provider`.execute(db);
  return rows.rows.map((r) => ({
    id: r.id,
    therapistId: r.therapist_id,
    connectionId: r.connection_id,
    providerListId: r.provider_list_id,
    cursor: r.cursor,
    createdAt: new Date(r.created_at),
    provider: r.provider,
  }));
}

/** The open tasks of a list, found by the marker their platform copy carries or by the platform's id. */
export async function openTasksOfList(db: Kysely<Database>, listId: string): Promise<{ find(t: { marker: string | null; taskId: string }): { id: string; therapistId: string } | undefined }> {
  const rows = await db.selectFrom('tasks').select(['id', 'therapist_id', 'marker', 'provider_task_id']).where('list_id', '=', listId).where('status', '=', 'open').execute();
  const byMarker = new Map(rows.map((r) => [r.marker, r]));
  const byId = new Map(rows.map((r) => [r.provider_task_id, r]));
  return {
    // A deletion may come with the id alone (Graph's delta: "@removed" items carry only the id).
    find(t) {
      const r = (t.marker !== null ? byMarker.get(t.marker) : undefined) ?? byId.get(t.taskId);
      return r && { id: r.id, therapistId: r.therapist_id };
    },
  };
}

/** After a check: where the platform's changes were read up to, and when to look again. */
export async function finishTaskListCheck(db: Kysely<Database>, input: { listId: string; cursor: string | null; nextCheckAt: Date; now: Date }): Promise<void> {
  await db
    .updateTable('task_lists')
    .set({ ...(input.cursor !== null ? { cursor: input.cursor, checked_through: input.now } : {}), next_check_at: input.nextCheckAt, updated_at: input.now })
    .where('id', '=', input.listId)
    .execute();
}

/** The earliest time a list with open tasks is due for its check (for the tick's nextDueAt). */
export async function nextTaskCheckAt(db: Kysely<Database>): Promise<Date | null> {
  const row = await sql<{ at: Date | string | null }>`
    SELECT min(l.next_check_at) AS at FROM task_lists l
    WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.list_id = l.id AND t.status = 'open')`.execute(db);
  const at = row.rows[0]?.at;
  return at ? new Date(at) : null;
}
