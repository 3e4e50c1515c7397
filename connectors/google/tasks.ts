// The Google Tasks connector: the follow-up list found or made by name, tasks made once per key (a marker in
// the notes, searched for after an unsure insert), changed, completed, deleted, and the sparse check.
import { tasks, type tasks_v1 } from '@googleapis/tasks';
import { z } from 'zod';
import { NotFound, RetryAfter } from '../errors.js';
import { taskMarker, type RemoteTask, type TaskConnector, type TaskDraft } from '../port.js';
import { GoogleCaller, type CallOptions, type GoogleConnectorOptions, type RetryPolicy } from './call.js';

export type GoogleTaskOptions = GoogleConnectorOptions;

/** The only scope the Tasks methods we call accept for writing (discovery document, tasks.tasks.insert "scopes"). */
const TASKS_SCOPE = 'https://www.googleapis.com/auth/tasks';
/** Task.title and Task.notes: "Maximum length allowed: 1024 / 8192 characters". */
const MAX_TITLE = 1024;
const MAX_NOTES = 8192;
/** tasks.list and tasklists.list maxResults: "The default is 20 (max allowed: 100)". */
const PAGE_SIZE = 100;
/** The line that carries our marker: the therapist sees it as a reference, it holds no client data. */
const MARKER_LINE = '— SessionKeeper ref ';
const MARKER_RE = /— SessionKeeper ref (sk-[A-Za-z0-9_-]{22})/g;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
/** How far before its cursor the sparse check asks again (tasks.list is no snapshot: writes commit while we page). */
const CURSOR_OVERLAP_MS = 5_000;

/** The parts of a Task resource we read (Task schema); anything else is left alone. */
const taskSchema = z.object({
  id: z.string().min(1),
  title: z.string().optional(),
  notes: z.string().optional(),
  status: z.enum(['needsAction', 'completed']).optional(),
  deleted: z.boolean().optional(),
  hidden: z.boolean().optional(),
  updated: z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'not an RFC 3339 timestamp'),
});
type Task = z.infer<typeof taskSchema>;

const taskListSchema = z.object({ id: z.string().min(1), title: z.string().optional() });

/** The marker in a task's notes (the last one, should the therapist have copied notes around), or null. */
export function markerOf(notes: string | null | undefined): string | null {
  if (!notes) return null;
  let last: string | null = null;
  for (const m of notes.matchAll(MARKER_RE)) last = m[1] ?? null;
  return last;
}

/**
 * Our trailer at the end of the notes: the link (when given) and the marker, each on a line of its own that
 * starts with "— ", after a blank line. It is kept when the notes are changed.
 */
function trailerOf(marker: string, link?: { url: string; label: string }): string {
  const lines = [...(link ? [`— ${oneLine(link.label)}: ${oneLine(link.url)}`] : []), `${MARKER_LINE}${marker}`];
  return lines.join('\n');
}

/** Splits notes into what the therapist reads and our trailer ('' when the notes carry no marker line). */
export function splitNotes(notes: string): { body: string; trailer: string } {
  const lines = notes.split('\n');
  let end = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i]!.startsWith(MARKER_LINE)) {
      end = i;
      break;
    }
  }
  if (end < 0) return { body: notes, trailer: '' };
  let start = end;
  while (start > 0 && lines[start - 1]!.startsWith('— ')) start--;
  const body = lines.slice(0, start).join('\n').replace(/\n+$/, '');
  const trailer = lines.slice(start, end + 1).join('\n');
  return { body, trailer };
}

/** Notes as written: the body (shortened when the whole would pass Google's limit), a blank line, our trailer. */
export function composeNotes(body: string, trailer: string): string {
  if (trailer === '') return body.length > MAX_NOTES ? `${body.slice(0, MAX_NOTES - 1)}…` : body;
  const room = MAX_NOTES - trailer.length - 2;
  const text = body.length > room ? `${body.slice(0, Math.max(0, room - 1))}…` : body;
  return text === '' ? trailer : `${text}\n\n${trailer}`;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** A due day as Google stores it: Task.due "only records date information; the time portion … is discarded". */
function dueOf(day: string): string {
  if (!DAY.test(day)) throw new Error(`a due date is a day (yyyy-mm-dd), not ${JSON.stringify(day)}`);
  return `${day}T00:00:00.000Z`;
}

function checkTitle(title: string): string {
  if (title.length > MAX_TITLE) throw new Error(`a task title has at most ${MAX_TITLE} characters`);
  return title;
}

function remote(t: Task): RemoteTask {
  return {
    taskId: t.id,
    marker: markerOf(t.notes),
    status: t.deleted ? 'deleted' : t.status === 'completed' ? 'completed' : 'open',
    updated: new Date(t.updated),
  };
}

function parseTask(raw: unknown): Task {
  const r = taskSchema.safeParse(raw);
  if (!r.success) throw new Error(`Google answered with a task we cannot read: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

export class GoogleTaskConnector implements TaskConnector {
  readonly provider = 'google' as const;
  readonly #api: tasks_v1.Tasks;
  readonly #caller: GoogleCaller;

  constructor(opts: GoogleTaskOptions) {
    this.#api = tasks({ version: 'v1', auth: opts.auth, ...(opts.rootUrl ? { rootUrl: opts.rootUrl } : {}) });
    this.#caller = new GoogleCaller(opts, TASKS_SCOPE);
  }

  /** Requests made (the bench counts them). */
  get requests(): number {
    return this.#caller.requests;
  }

  set requests(n: number) {
    this.#caller.requests = n;
  }

  #call<T>(fn: (options: CallOptions) => Promise<{ data: T }>, policy: RetryPolicy = 'transient'): Promise<T> {
    return this.#caller.call(fn, policy);
  }

  /** A call about one task: NotFound becomes null. */
  async #orNull<T>(p: Promise<T>): Promise<T | null> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof NotFound) return null;
      throw err;
    }
  }

  /**
   * The list called `name`, found among the account's lists (paged), or made. tasklists.insert is not
   * idempotent: after an unsure failure the lists are looked at again before a second insert.
   */
  async ensureList(name: string): Promise<string> {
    const title = checkTitle(name);
    const found = await this.#findList(title);
    if (found) return found;
    for (let attempt = 0; ; attempt++) {
      try {
        const made = await this.#call((o) => this.#api.tasklists.insert({ requestBody: { title } }, o), 'refused');
        const list = taskListSchema.safeParse(made);
        if (!list.success) throw new Error('Google answered tasklists.insert without a list id');
        return list.data.id;
      } catch (err) {
        // A refusal that outlasted the inline retries made nothing: the caller tries again later.
        if (!(err instanceof RetryAfter) || err.refused || attempt >= this.#caller.retries) throw err;
        const again = await this.#findList(title);
        if (again) return again;
        await this.#caller.sleep(err.seconds !== null ? err.seconds * 1000 : this.#caller.backoffMs(attempt));
      }
    }
  }

  async #findList(title: string): Promise<string | null> {
    let pageToken: string | undefined;
    do {
      const page: tasks_v1.Schema$TaskLists = await this.#call((o) => this.#api.tasklists.list({ maxResults: PAGE_SIZE, ...(pageToken ? { pageToken } : {}) }, o));
      for (const raw of page.items ?? []) {
        const list = taskListSchema.safeParse(raw);
        if (list.success && list.data.title === title) return list.data.id;
      }
      pageToken = page.nextPageToken ?? undefined;
    } while (pageToken);
    return null;
  }

  /**
   * Makes the task once per key. The notes end with our marker (taskMarker): with `mayExist` (an earlier
   * attempt may have made it) the list is searched for it first. tasks.insert is not idempotent, so an
   * unsure failure (5xx, a lost answer) is followed by the same search before the insert is tried again;
   * only an answer that proves refusal (429, 403 rate limit) is retried at once.
   */
  async createTask(listId: string, draft: TaskDraft, opts: { mayExist: boolean }): Promise<{ taskId: string; created: boolean }> {
    const marker = taskMarker(draft.key);
    if (opts.mayExist) {
      const found = await this.#findByMarker(listId, marker);
      if (found) return { taskId: found, created: false };
    }
    const requestBody: tasks_v1.Schema$Task = {
      title: checkTitle(draft.title),
      notes: composeNotes(draft.notes, trailerOf(marker, draft.link)),
      status: 'needsAction',
      ...(draft.due ? { due: dueOf(draft.due) } : {}),
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const made = parseTask(await this.#call((o) => this.#api.tasks.insert({ tasklist: listId, requestBody }, o), 'refused'));
        return { taskId: made.id, created: true };
      } catch (err) {
        // A refusal that outlasted the inline retries made nothing: the caller tries again later.
        if (!(err instanceof RetryAfter) || err.refused || attempt >= this.#caller.retries) throw err;
        // Nothing was there before this call (searched, or the caller says no attempt was made): a task
        // with the marker now is this call's own.
        const found = await this.#findByMarker(listId, marker);
        if (found) return { taskId: found, created: true };
        await this.#caller.sleep(err.seconds !== null ? err.seconds * 1000 : this.#caller.backoffMs(attempt));
      }
    }
  }

  /**
   * The task carrying `marker`, whatever its state (completed, hidden by a clear, deleted: tasks.list shows
   * those only when asked, with showCompleted, showHidden, showDeleted). A live one is preferred.
   */
  async #findByMarker(listId: string, marker: string): Promise<string | null> {
    let best: Task | null = null;
    for await (const t of this.#listAll(listId, null)) {
      if (markerOf(t.notes) !== marker) continue;
      if (!t.deleted) return t.id;
      best ??= t;
    }
    return best?.id ?? null;
  }

  /** Every task of the list changed since `since` (all when null), one request per page. */
  async *#listAll(listId: string, since: Date | null): AsyncGenerator<Task> {
    let pageToken: string | undefined;
    do {
      const params: tasks_v1.Params$Resource$Tasks$List = {
        tasklist: listId,
        maxResults: PAGE_SIZE,
        showCompleted: true,
        // Tasks completed in Google's own apps are hidden at once ("showHidden must also be True to show tasks
        // completed in first party clients": tasks.list showCompleted).
        showHidden: true,
        showDeleted: true,
        ...(since ? { updatedMin: since.toISOString() } : {}),
        ...(pageToken ? { pageToken } : {}),
      };
      const page: tasks_v1.Schema$Tasks = await this.#call((o) => this.#api.tasks.list(params, o));
      for (const raw of page.items ?? []) {
        const t = taskSchema.safeParse(raw);
        // A task we cannot read cannot be matched with ours either: it is passed over.
        if (t.success) yield t.data;
      }
      pageToken = page.nextPageToken ?? undefined;
    } while (pageToken);
  }

  /**
   * Changes title, notes or due day (never the status). New notes keep our trailer (the marker line, and the
   * link), read from the task first. The task as it now is, or null when it is gone (404).
   */
  async updateTask(listId: string, taskId: string, patch: Partial<Pick<TaskDraft, 'title' | 'notes' | 'due'>>): Promise<RemoteTask | null> {
    const body: tasks_v1.Schema$Task = {};
    if (patch.title !== undefined) body.title = checkTitle(patch.title);
    if (patch.due !== undefined) body.due = patch.due === null ? null : dueOf(patch.due);
    if (patch.notes !== undefined) {
      const current = await this.#orNull(this.#call((o) => this.#api.tasks.get({ tasklist: listId, task: taskId }, o)));
      if (current === null) return null;
      const { trailer } = splitNotes(parseTask(current).notes ?? '');
      body.notes = composeNotes(patch.notes, trailer);
    }
    if (Object.keys(body).length === 0) {
      const t = await this.#orNull(this.#call((o) => this.#api.tasks.get({ tasklist: listId, task: taskId }, o)));
      return t === null ? null : remote(parseTask(t));
    }
    // Setting the same title, notes and due day again changes nothing: retried like a read.
    const t = await this.#orNull(this.#call((o) => this.#api.tasks.patch({ tasklist: listId, task: taskId, requestBody: body }, o)));
    return t === null ? null : remote(parseTask(t));
  }

  /** Marks the task completed (Google sets `completed`); again is harmless, and one already gone is fine. */
  async completeTask(listId: string, taskId: string): Promise<void> {
    await this.#orNull(this.#call((o) => this.#api.tasks.patch({ tasklist: listId, task: taskId, fields: 'id,status', requestBody: { status: 'completed' } }, o)));
  }

  /** Deletes the task (Google keeps it with deleted: true, listed with showDeleted); one already gone is fine. */
  async deleteTask(listId: string, taskId: string): Promise<void> {
    await this.#orNull(this.#call((o) => this.#api.tasks.delete({ tasklist: listId, task: taskId }, o)));
  }

  /**
   * The sparse check: tasks.list with updatedMin, completed, hidden and deleted ones included (Tasks has no
   * push: API-NOTES, Other Google APIs), 100 a page, one request per page. The cursor is the latest `updated`
   * seen (Google's own clock, so ours never has to agree with it); the next call asks from a little before it,
   * so a write that committed while we listed, stamped earlier than a task we saw, is not missed. What comes
   * twice is harmless to the caller.
   */
  async changedTasks(listId: string, cursor: string | null, start: Date): Promise<{ tasks: RemoteTask[]; cursor: string }> {
    const fromCursor = cursor !== null ? Date.parse(cursor) : Number.NaN;
    const since = Number.isNaN(fromCursor) ? start.getTime() : fromCursor;
    const out: RemoteTask[] = [];
    let latest = since;
    for await (const t of this.#listAll(listId, new Date(Number.isNaN(fromCursor) ? since : since - CURSOR_OVERLAP_MS))) {
      const r = remote(t);
      out.push(r);
      latest = Math.max(latest, r.updated.getTime());
    }
    return { tasks: out, cursor: new Date(latest).toISOString() };
  }
}
