// The therapist's follow-ups in Microsoft To Do through Graph: our list found or made, tasks carrying our key's marker
// in their one linked resource (externalId), found again after a lost answer, and the sparse check of what the
// therapist completed or deleted, on the tasks delta.
import { CursorExpired, NotFound } from '../errors.js';
import { taskMarker, type RemoteTask, type TaskConnector, type TaskDraft } from '../port.js';
import { GRAPH, GraphSession, type GraphClientOptions } from './graph.js';

/** The applicationName of our linked resources: how a task is told to be ours. */
export const APPLICATION_NAME = 'SessionKeeper';
/** Page size asked for ($top): To Do answers 10 tasks a page otherwise. */
const PAGE = 100;

interface GraphLinkedResource {
  id?: string;
  applicationName?: string | null;
  displayName?: string | null;
  externalId?: string | null;
  webUrl?: string | null;
}

interface GraphTask {
  id: string;
  status?: string;
  lastModifiedDateTime?: string;
  linkedResources?: GraphLinkedResource[];
}

interface GraphList {
  id: string;
  displayName?: string;
  wellknownListName?: string;
}

export type GraphTaskOptions = GraphClientOptions;

/** Our marker among a task's linked resources (ours carry applicationName SessionKeeper and an sk- externalId). */
function markerOf(t: GraphTask): string | null {
  const mine = (t.linkedResources ?? []).find((r) => typeof r.externalId === 'string' && r.externalId.startsWith('sk-') && (r.applicationName ?? APPLICATION_NAME) === APPLICATION_NAME);
  return mine?.externalId ?? null;
}

function remote(t: GraphTask): RemoteTask {
  return {
    taskId: t.id,
    marker: markerOf(t),
    status: t.status === 'completed' ? 'completed' : 'open',
    updated: new Date(t.lastModifiedDateTime ?? 0),
  };
}

export class GraphTaskConnector implements TaskConnector {
  readonly provider = 'microsoft' as const;
  readonly #graph: GraphSession;

  constructor(opts: GraphTaskOptions) {
    this.#graph = new GraphSession(opts, 'Tasks.ReadWrite');
  }

  /** HTTP requests made (every attempt, retries included). */
  get requests(): number {
    return this.#graph.requests;
  }

  set requests(n: number) {
    this.#graph.requests = n;
  }

  #tasks(listId: string): string {
    return `${GRAPH}/me/todo/lists/${encodeURIComponent(listId)}/tasks`;
  }

  #task(listId: string, taskId: string): string {
    return `${this.#tasks(listId)}/${encodeURIComponent(taskId)}`;
  }

  /** Our list by its name (every page of /me/todo/lists), created when missing. */
  async ensureList(name: string): Promise<string> {
    const lists = await this.#graph.all<GraphList>(`${GRAPH}/me/todo/lists?$top=${PAGE}`);
    const found = lists.find((l) => l.displayName === name) ?? lists.find((l) => l.displayName?.toLowerCase() === name.toLowerCase());
    if (found) return found.id;
    const created = await this.#graph.send<GraphList>('post', `${GRAPH}/me/todo/lists`, { displayName: name });
    return created.id;
  }

  /**
   * The task carrying this marker. No Graph page documents a $filter on linkedResources, so the list is read with
   * $expand=linkedResources ($select keeps it small) page by page until the marker is seen: our list holds only our
   * follow-ups, and this runs only on a retry after a lost answer.
   */
  async #findByMarker(listId: string, marker: string): Promise<GraphTask | null> {
    let url: string | undefined = `${this.#tasks(listId)}?$select=id,status,lastModifiedDateTime&$expand=linkedResources&$top=${PAGE}`;
    while (url) {
      const page: { value: GraphTask[]; '@odata.nextLink'?: string } = await this.#graph.get(url);
      const hit = page.value.find((t) => markerOf(t) === marker);
      if (hit) return hit;
      url = page['@odata.nextLink'];
    }
    return null;
  }

  /**
   * POST with the marker in the task's one linked resource (To Do allows one per task on create: public issue
   * microsoftgraph/microsoft-graph-docs-contrib#654). The due date goes as midnight UTC of that day: To Do keeps only
   * the date, at midnight of the zone given (todotask-update.md), so UTC reads back as the same day.
   */
  async createTask(listId: string, draft: TaskDraft, opts: { mayExist: boolean }): Promise<{ taskId: string; created: boolean }> {
    const marker = taskMarker(draft.key);
    if (opts.mayExist) {
      const found = await this.#findByMarker(listId, marker);
      if (found) return { taskId: found.id, created: false };
    }
    const body: Record<string, unknown> = {
      title: draft.title,
      body: { content: draft.notes, contentType: 'text' },
      linkedResources: [
        {
          applicationName: APPLICATION_NAME,
          displayName: draft.link?.label ?? APPLICATION_NAME,
          externalId: marker,
          ...(draft.link ? { webUrl: draft.link.url } : {}),
        },
      ],
    };
    if (draft.due) body['dueDateTime'] = dueOf(draft.due);
    const created = await this.#graph.send<GraphTask>('post', this.#tasks(listId), body);
    return { taskId: created.id, created: true };
  }

  async updateTask(listId: string, taskId: string, patch: Partial<Pick<TaskDraft, 'title' | 'notes' | 'due'>>): Promise<RemoteTask | null> {
    const body: Record<string, unknown> = {};
    if (patch.title !== undefined) body['title'] = patch.title;
    if (patch.notes !== undefined) body['body'] = { content: patch.notes, contentType: 'text' };
    if (patch.due !== undefined) body['dueDateTime'] = patch.due === null ? null : dueOf(patch.due);
    try {
      if (Object.keys(body).length === 0) return await this.getTask(listId, taskId);
      const t = await this.#graph.send<GraphTask>('patch', this.#task(listId, taskId), body);
      // The PATCH answer does not carry linkedResources: the marker is read back with them.
      return markerOf(t) === null ? await this.getTask(listId, taskId) : remote(t);
    } catch (err) {
      if (err instanceof NotFound) return null;
      throw err;
    }
  }

  /**
   * One task as it is now (linkedResources expanded), or null when Graph answers 404: To Do keeps no tombstone, so a
   * GET of a known id is the other way (besides the delta's @removed) to tell that the therapist deleted it.
   */
  async getTask(listId: string, taskId: string): Promise<RemoteTask | null> {
    try {
      return remote(await this.#graph.get<GraphTask>(`${this.#task(listId, taskId)}?$select=id,status,lastModifiedDateTime&$expand=linkedResources`));
    } catch (err) {
      if (err instanceof NotFound) return null;
      throw err;
    }
  }

  async completeTask(listId: string, taskId: string): Promise<void> {
    try {
      await this.#graph.send('patch', this.#task(listId, taskId), { status: 'completed' });
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
    }
  }

  async deleteTask(listId: string, taskId: string): Promise<void> {
    try {
      await this.#graph.send('delete', this.#task(listId, taskId));
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
    }
  }

  /**
   * The sparse check, on the list's tasks delta (todotask-delta.md: $expand is encoded into the links, one request per
   * page of changes). Cursor null: a first round, which lists every task; those written since `start` are returned.
   * Afterwards the cursor's deltaLink gives what changed, deleted tasks as `@removed` (id only). The engine knows its
   * tasks by marker, so the cursor also keeps, for our open tasks, task id → marker: a removed id is reported with its
   * marker and status 'deleted'. When Graph has dropped the delta state (410
   * syncStateNotFound), a fresh round is a complete picture of the list: our open tasks missing from it are deleted.
   */
  async changedTasks(listId: string, cursor: string | null, start: Date): Promise<{ tasks: RemoteTask[]; cursor: string }> {
    const prior = parseCursor(cursor);
    const fresh = `${this.#tasks(listId)}/delta?$select=id,status,lastModifiedDateTime&$expand=linkedResources`;
    let round: { items: (GraphTask & { '@removed'?: unknown })[]; deltaLink: string };
    let complete = prior === null;
    try {
      round = await this.#deltaRound(prior?.link ?? fresh);
    } catch (err) {
      if (!(err instanceof CursorExpired) || prior === null) throw err;
      round = await this.#deltaRound(fresh);
      complete = true;
    }
    const open = new Map(Object.entries(prior?.open ?? {}));
    const out: RemoteTask[] = [];
    const listed = new Set<string>();
    for (const item of round.items) {
      const key = item.id;
      if (item['@removed'] !== undefined) {
        out.push({ taskId: item.id, marker: open.get(key) ?? null, status: 'deleted', updated: new Date() });
        open.delete(key);
        continue;
      }
      listed.add(key);
      const t = remote(item);
      if (t.marker && t.status === 'open') open.set(key, t.marker);
      else open.delete(key);
      // A first round lists everything: only what was written since `start` is news.
      if (prior !== null || t.updated.getTime() >= start.getTime()) out.push(t);
    }
    if (complete && prior !== null) {
      // The state was lost: whatever we held open and the fresh round does not list is gone.
      for (const [key, marker] of Object.entries(prior.open)) {
        if (listed.has(key)) continue;
        out.push({ taskId: key, marker, status: 'deleted', updated: new Date() });
        open.delete(key);
      }
    }
    return { tasks: out, cursor: JSON.stringify({ v: 1, link: round.deltaLink, open: Object.fromEntries(open) } satisfies TaskCursor) };
  }

  async #deltaRound(link: string): Promise<{ items: (GraphTask & { '@removed'?: unknown })[]; deltaLink: string }> {
    const items: (GraphTask & { '@removed'?: unknown })[] = [];
    let url: string | undefined = link;
    for (;;) {
      const page: { value: (GraphTask & { '@removed'?: unknown })[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string } = await this.#graph.get(url!, [`odata.maxpagesize=${PAGE}`]);
      items.push(...page.value);
      if (page['@odata.nextLink']) url = page['@odata.nextLink'];
      else if (page['@odata.deltaLink']) return { items, deltaLink: page['@odata.deltaLink'] };
      else throw new Error('Graph ended a tasks delta page without a next or delta link');
    }
  }
}

/** What changedTasks hands back as its cursor: the deltaLink, and task id → marker of our open tasks. */
interface TaskCursor {
  v: 1;
  link: string;
  open: Record<string, string>;
}

function parseCursor(cursor: string | null): TaskCursor | null {
  if (!cursor) return null;
  try {
    const c = JSON.parse(cursor) as Partial<TaskCursor>;
    return c && c.v === 1 && typeof c.link === 'string' && typeof c.open === 'object' && c.open !== null ? (c as TaskCursor) : null;
  } catch {
    return null;
  }
}

/** A due date (yyyy-mm-dd) as To Do's dueDateTime: midnight UTC of that day. */
function dueOf(due: string): { dateTime: string; timeZone: string } {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(due)) throw new RangeError(`a due date is yyyy-mm-dd, got '${due}'`);
  return { dateTime: `${due}T00:00:00`, timeZone: 'UTC' };
}
