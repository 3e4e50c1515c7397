// The Google Tasks API v1 behind the emulator (refs/google-tasks-v1-discovery.json, revision 20240630): lists,
// tasks, the tasks.list filters and paging, and the Task field rules (due, updated, completed, deleted, hidden).
import crypto from 'node:crypto';
import type { DateTime } from 'luxon';
import type { Clock } from '../../../src/clock.js';
import { formatTimestamp, parseRfc3339 } from './datetime.js';
import * as E from './errors.js';
import { clone, str, type Json } from './events.js';

export type Query = Record<string, string | string[]>;

/** Task.title and TaskList.title: "Maximum length allowed: 1024 characters"; Task.notes: 8192. */
const MAX_TITLE = 1024;
const MAX_NOTES = 8192;
/** tasks.list / tasklists.list maxResults: "The default is 20 (max allowed: 100)". */
const DEFAULT_MAX_RESULTS = 20;
const MAX_RESULTS_CAP = 100;
/** The name Google gives the list every account has (the Tasks overview: "Each user has at least one default task list"). */
const DEFAULT_LIST_TITLE = 'My Tasks';

/** Key order of the documented JSON representation of a Task (fixtures/task-resource.json). */
const TASK_KEY_ORDER = ['kind', 'id', 'etag', 'title', 'updated', 'selfLink', 'parent', 'position', 'notes', 'status', 'due', 'completed', 'deleted', 'hidden', 'links', 'webViewLink'];

interface TaskRecord {
  id: string;
  /** Writable and server-set fields, without kind/id/etag/selfLink/position/links/webViewLink. */
  data: Json;
  etag: string;
  updatedMs: number;
}

interface ListRecord {
  id: string;
  title: string;
  etag: string;
  updated: string;
  tasks: Map<string, TaskRecord>;
  /** Sibling order per parent ('' for the top level): positions are derived from it. */
  order: Map<string, string[]>;
}

interface Listing {
  fingerprint: string;
  items: Json[];
}

function one(q: Query, k: string): string | undefined {
  const v = q[k];
  return Array.isArray(v) ? v[0] : v;
}

function bool(q: Query, k: string, dflt: boolean): boolean {
  const v = one(q, k);
  if (v === undefined) return dflt;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw E.invalid(`Invalid value for ${k}: ${v}`);
}

function time(q: Query, k: string): DateTime | undefined {
  const v = one(q, k);
  if (v === undefined) return undefined;
  const d = parseRfc3339(v);
  if (!d) throw E.invalid(`Invalid value for ${k}: ${v}`);
  return d;
}

function maxResults(q: Query): number {
  const v = one(q, 'maxResults');
  if (v === undefined) return DEFAULT_MAX_RESULTS;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw E.invalid(`Invalid value for maxResults: ${v}`);
  return Math.min(Number(v), MAX_RESULTS_CAP);
}

function randomId(): string {
  return crypto.randomBytes(16).toString('base64url');
}

/** Task list ids look like base64 of "<digits>:0:0" (as Google's do: "MDk3NTYx…OjA6MA"). */
function listId(): string {
  const digits = Array.from(crypto.randomBytes(20), (b) => String(b % 10)).join('');
  return Buffer.from(`${digits}:0:0`).toString('base64').replace(/=+$/, '');
}

function etagOf(seq: number): string {
  return `"${Buffer.from(`${seq}:${crypto.randomBytes(3).toString('hex')}`).toString('base64url')}"`;
}

function checkText(v: unknown, field: string, max: number): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw E.invalid(`Invalid value for ${field}.`);
  if (v.length > max) throw E.invalid(`Invalid value for ${field}: longer than ${max} characters.`);
  return v;
}

/** Task.due: "The due date only records date information; the time portion of the timestamp is discarded". */
function dueOf(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const d = typeof v === 'string' ? parseRfc3339(v) : undefined;
  if (!d) throw E.invalid(`Invalid value for due: ${String(v)}`);
  // The date of the instant in UTC (the emulator's reading; Google documents no zone for it).
  return `${d.toUTC().toISODate()}T00:00:00.000Z`;
}

function timestampOf(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  const d = typeof v === 'string' ? parseRfc3339(v) : undefined;
  if (!d) throw E.invalid(`Invalid value for ${field}: ${String(v)}`);
  return formatTimestamp(d);
}

/** Who writes: an API caller, or the user in Google's own apps (which hide what they complete at once). */
export type TaskActor = 'api' | 'user';

export class TaskStore {
  private readonly accounts = new Map<string, Map<string, ListRecord>>();
  private readonly pageTokens = new Map<string, { listing: Listing; offset: number }>();
  private seq = 0;

  constructor(
    private readonly clock: Clock,
    private readonly baseUrl: () => string,
  ) {}

  private now(): string {
    return formatTimestamp(this.clock.now());
  }

  /** The account's lists, with the default one made on first use. */
  private listsOf(sub: string): Map<string, ListRecord> {
    let lists = this.accounts.get(sub);
    if (!lists) {
      lists = new Map();
      this.accounts.set(sub, lists);
      this.newList(lists, DEFAULT_LIST_TITLE);
    }
    return lists;
  }

  private newList(lists: Map<string, ListRecord>, title: string): ListRecord {
    const list: ListRecord = { id: listId(), title, etag: etagOf(++this.seq), updated: this.now(), tasks: new Map(), order: new Map() };
    lists.set(list.id, list);
    return list;
  }

  /** A list by id, or "@default" for the account's default list (the first). */
  list(sub: string, id: string): ListRecord {
    const lists = this.listsOf(sub);
    if (id === '@default') return lists.values().next().value!;
    const list = lists.get(id);
    if (!list) throw E.entityNotFound();
    return list;
  }

  private listJson(l: ListRecord): Json {
    return { kind: 'tasks#taskList', id: l.id, etag: l.etag, title: l.title, updated: l.updated, selfLink: `${this.baseUrl()}tasks/v1/users/@me/lists/${l.id}` };
  }

  private position(l: ListRecord, t: TaskRecord): string {
    const siblings = l.order.get(str(t.data['parent']) ?? '') ?? [];
    return String(Math.max(0, siblings.indexOf(t.id))).padStart(20, '0');
  }

  private taskJson(l: ListRecord, t: TaskRecord): Json {
    const out: Json = {
      ...clone(t.data),
      kind: 'tasks#task',
      id: t.id,
      etag: t.etag,
      selfLink: `${this.baseUrl()}tasks/v1/lists/${l.id}/tasks/${t.id}`,
      position: this.position(l, t),
      links: [],
      webViewLink: `https://tasks.google.com/task/${t.id}?sa=6`,
    };
    const ordered: Json = {};
    for (const k of TASK_KEY_ORDER) if (out[k] !== undefined) ordered[k] = out[k];
    return ordered;
  }

  private task(l: ListRecord, id: string): TaskRecord {
    const t = l.tasks.get(id);
    if (!t) throw E.entityNotFound();
    return t;
  }

  /**
   * The stored fields from a desired state (insert: the body; patch: merged; update: the body), checked as
   * the Task schema says. `prev`: the task before the write.
   */
  private compose(desired: Json, prev: Json | undefined, actor: TaskActor): Json {
    const out: Json = {};
    const title = checkText(desired['title'], 'title', MAX_TITLE);
    out['title'] = title ?? '';
    const notes = checkText(desired['notes'], 'notes', MAX_NOTES);
    if (notes !== undefined && notes !== '') out['notes'] = notes;
    const status = desired['status'] ?? 'needsAction';
    if (status !== 'needsAction' && status !== 'completed') throw E.invalid(`Invalid value for status: ${String(status)}`);
    out['status'] = status;
    const due = dueOf(desired['due']);
    if (due !== undefined) out['due'] = due;
    if (status === 'completed') {
      // completed: given, kept from before, or now.
      out['completed'] = timestampOf(desired['completed'], 'completed') ?? (prev?.['status'] === 'completed' ? prev['completed'] : undefined) ?? this.now();
      // Tasks completed in Google's own apps are hidden at once (tasks.list showCompleted: "showHidden must also be
      // True to show tasks completed in first party clients"); a hidden one stays hidden.
      if (actor === 'user' || (prev?.['hidden'] === true && prev['status'] === 'completed')) out['hidden'] = true;
    }
    const deleted = desired['deleted'];
    if (deleted !== undefined && deleted !== null && typeof deleted !== 'boolean') throw E.invalid('Invalid value for deleted.');
    if (deleted === true) out['deleted'] = true;
    if (typeof prev?.['parent'] === 'string') out['parent'] = prev['parent'];
    return out;
  }

  private commit(l: ListRecord, id: string, data: Json): TaskRecord {
    const t: TaskRecord = { id, data, etag: etagOf(++this.seq), updatedMs: this.clock.now().toMillis() };
    data['updated'] = this.now();
    l.tasks.set(id, t);
    return t;
  }

  // ---- task lists ------------------------------------------------------------------------------

  listLists(sub: string, q: Query): Json {
    const lists = [...this.listsOf(sub).values()];
    const max = maxResults(q);
    const pageToken = one(q, 'pageToken');
    let offset = 0;
    if (pageToken !== undefined) {
      const p = this.pageTokens.get(pageToken);
      if (!p || p.listing.fingerprint !== `lists:${sub}`) throw E.invalid('Invalid page token value.');
      offset = p.offset;
    }
    const page = lists.slice(offset, offset + max);
    const res: Json = { kind: 'tasks#taskLists', etag: etagOf(this.seq) };
    if (offset + page.length < lists.length) {
      const token = crypto.randomBytes(12).toString('base64url');
      this.pageTokens.set(token, { listing: { fingerprint: `lists:${sub}`, items: [] }, offset: offset + page.length });
      res['nextPageToken'] = token;
    }
    res['items'] = page.map((l) => this.listJson(l));
    return res;
  }

  getList(sub: string, id: string): Json {
    return this.listJson(this.list(sub, id));
  }

  insertList(sub: string, body: Json): Json {
    const title = checkText(body['title'], 'title', MAX_TITLE);
    if (title === undefined || title === '') throw E.required('Missing title.');
    return this.listJson(this.newList(this.listsOf(sub), title));
  }

  patchList(sub: string, id: string, body: Json, replace: boolean): Json {
    const l = this.list(sub, id);
    const title = checkText(body['title'], 'title', MAX_TITLE);
    if (title !== undefined) l.title = title;
    else if (replace) throw E.required('Missing title.');
    l.etag = etagOf(++this.seq);
    l.updated = this.now();
    return this.listJson(l);
  }

  deleteList(sub: string, id: string): void {
    const lists = this.listsOf(sub);
    const l = this.list(sub, id);
    if (l === lists.values().next().value) throw E.invalid('The default task list cannot be deleted.');
    lists.delete(l.id);
  }

  // ---- tasks -------------------------------------------------------------------------------------

  /** tasks.list: a snapshot taken at the first page, paged with nextPageToken. */
  listTasks(sub: string, listIdParam: string, q: Query): Json {
    const l = this.list(sub, listIdParam);
    const max = maxResults(q);
    const pageToken = one(q, 'pageToken');
    const fingerprint = `tasks:${sub}:${l.id}?${Object.keys(q)
      .filter((k) => k !== 'pageToken' && k !== 'maxResults')
      .sort()
      .map((k) => `${k}=${JSON.stringify(q[k])}`)
      .join('&')}`;
    let listing: Listing;
    let offset = 0;
    if (pageToken !== undefined) {
      const p = this.pageTokens.get(pageToken);
      if (!p || p.listing.fingerprint !== fingerprint) throw E.invalid('Invalid page token value.');
      listing = p.listing;
      offset = p.offset;
    } else {
      const showCompleted = bool(q, 'showCompleted', true);
      const showDeleted = bool(q, 'showDeleted', false);
      const showHidden = bool(q, 'showHidden', false);
      const updatedMin = time(q, 'updatedMin');
      const completedMin = time(q, 'completedMin');
      const completedMax = time(q, 'completedMax');
      const dueMin = time(q, 'dueMin');
      const dueMax = time(q, 'dueMax');
      const ms = (v: unknown): number | undefined => (typeof v === 'string' ? Date.parse(v) : undefined);
      const items = this.ordered(l).filter((t) => {
        const d = t.data;
        if (d['deleted'] === true && !showDeleted) return false;
        if (d['hidden'] === true && !showHidden) return false;
        if (d['status'] === 'completed' && !showCompleted) return false;
        if (updatedMin && t.updatedMs < updatedMin.toMillis()) return false;
        const completed = ms(d['completed']);
        if (completedMin && (completed === undefined || completed < completedMin.toMillis())) return false;
        if (completedMax && (completed === undefined || completed > completedMax.toMillis())) return false;
        const due = ms(d['due']);
        if (dueMin && (due === undefined || due < dueMin.toMillis())) return false;
        if (dueMax && (due === undefined || due > dueMax.toMillis())) return false;
        return true;
      });
      listing = { fingerprint, items: items.map((t) => this.taskJson(l, t)) };
    }
    const page = listing.items.slice(offset, offset + max);
    const res: Json = { kind: 'tasks#tasks', etag: etagOf(this.seq) };
    if (offset + page.length < listing.items.length) {
      const token = crypto.randomBytes(12).toString('base64url');
      this.pageTokens.set(token, { listing, offset: offset + page.length });
      res['nextPageToken'] = token;
    }
    // An empty page carries no `items` (the field is absent, not an empty array).
    if (page.length > 0) res['items'] = page;
    return res;
  }

  /** Tasks in list order: each parent followed by its subtasks, siblings by position. */
  private ordered(l: ListRecord): TaskRecord[] {
    const out: TaskRecord[] = [];
    const walk = (parent: string): void => {
      for (const id of l.order.get(parent) ?? []) {
        const t = l.tasks.get(id);
        if (!t) continue;
        out.push(t);
        walk(id);
      }
    };
    walk('');
    return out;
  }

  getTask(sub: string, listIdParam: string, taskId: string): Json {
    const l = this.list(sub, listIdParam);
    return this.taskJson(l, this.task(l, taskId));
  }

  /** tasks.insert: "If the task is created at the first position among its siblings, this parameter [previous] is omitted." */
  insertTask(sub: string, listIdParam: string, body: Json, q: Query = {}, actor: TaskActor = 'api'): Json {
    const l = this.list(sub, listIdParam);
    const parent = one(q, 'parent');
    if (parent !== undefined) this.task(l, parent);
    const previous = one(q, 'previous');
    const siblings = l.order.get(parent ?? '') ?? [];
    if (previous !== undefined && !siblings.includes(previous)) throw E.invalid('Invalid value for previous: not a sibling task.');
    const data = this.compose(body, undefined, actor);
    if (parent !== undefined) data['parent'] = parent;
    let id: string;
    do id = randomId();
    while (l.tasks.has(id));
    const at = previous === undefined ? 0 : siblings.indexOf(previous) + 1;
    siblings.splice(at, 0, id);
    l.order.set(parent ?? '', siblings);
    return this.taskJson(l, this.commit(l, id, data));
  }

  /** tasks.patch: given fields replace the stored ones, null clears one (notes, due, completed). */
  patchTask(sub: string, listIdParam: string, taskId: string, patch: Json, actor: TaskActor = 'api'): Json {
    const l = this.list(sub, listIdParam);
    const prev = this.task(l, taskId).data;
    const desired: Json = clone(prev);
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete desired[k];
      else desired[k] = clone(v);
    }
    // A status set back to needsAction drops the completion date (Task.completed: "omitted if the task has not
    // been completed") unless the patch gives one.
    if (patch['status'] === 'needsAction') delete desired['completed'];
    if (patch['status'] === 'completed' && prev['status'] !== 'completed' && patch['completed'] === undefined) delete desired['completed'];
    return this.taskJson(l, this.commit(l, taskId, this.compose(desired, prev, actor)));
  }

  /** tasks.update: the body replaces every writable field. */
  updateTask(sub: string, listIdParam: string, taskId: string, body: Json): Json {
    const l = this.list(sub, listIdParam);
    const prev = this.task(l, taskId).data;
    const desired = clone(body);
    if (desired['status'] === 'completed' && prev['status'] !== 'completed' && desired['completed'] === undefined) delete desired['completed'];
    return this.taskJson(l, this.commit(l, taskId, this.compose(desired, prev, 'api')));
  }

  /**
   * tasks.delete: the task stays with deleted: true (listed with showDeleted), as do its subtasks. Deleting a
   * deleted task again changes nothing (the emulator's choice).
   */
  deleteTask(sub: string, listIdParam: string, taskId: string): void {
    const l = this.list(sub, listIdParam);
    const t = this.task(l, taskId);
    if (t.data['deleted'] === true) return;
    const mark = (id: string): void => {
      const r = l.tasks.get(id);
      if (r && r.data['deleted'] !== true) this.commit(l, id, { ...r.data, deleted: true });
      for (const child of l.order.get(id) ?? []) mark(child);
    };
    mark(t.id);
  }

  /** tasks.clear: completed tasks become hidden ("Clears all completed tasks from the specified task list"). */
  clear(sub: string, listIdParam: string): void {
    const l = this.list(sub, listIdParam);
    for (const t of [...l.tasks.values()]) {
      if (t.data['status'] === 'completed' && t.data['deleted'] !== true && t.data['hidden'] !== true) this.commit(l, t.id, { ...t.data, hidden: true });
    }
  }

  // ---- the user's side (Google's own apps) ----------------------------------------------------------

  listsJson(sub: string): Json[] {
    return [...this.listsOf(sub).values()].map((l) => this.listJson(l));
  }

  /** Every task of a list, deleted and hidden ones included. */
  tasksJson(sub: string, listIdParam: string): Json[] {
    const l = this.list(sub, listIdParam);
    return this.ordered(l).map((t) => this.taskJson(l, t));
  }

  /** Writes as the user does in Google's apps (a completion there hides the task at once). */
  userPatch(sub: string, listIdParam: string, taskId: string, patch: Json): Json {
    return this.patchTask(sub, listIdParam, taskId, patch, 'user');
  }
}
