// Microsoft To Do behind the Microsoft emulator: todoTaskList and todoTask resources with their linkedResources, the
// OData options their listings honour ($filter on lastModifiedDateTime/createdDateTime/status, $expand, $select, $top,
// paging) and the tasks delta (todotask-delta.md), shaped as refs/graph-docs/todotasklist-post-tasks.md answers.
import crypto from 'node:crypto';
import { DateTime } from 'luxon';
import type { Clock } from '../../../src/clock.js';
import * as E from './errors.js';
import { isObject, type Json } from './events.js';
import { formatLocal, formatTimestamp, parseLocal, resolveZone } from './timezones.js';

export type TaskStatus = 'notStarted' | 'inProgress' | 'completed' | 'waitingOnOthers' | 'deferred';
const STATUSES: readonly TaskStatus[] = ['notStarted', 'inProgress', 'completed', 'waitingOnOthers', 'deferred'];
const IMPORTANCE = ['low', 'normal', 'high'] as const;
/** Who writes: the app through Graph, or the therapist in the To Do app (emulator helpers). */
export type TodoActor = 'api' | 'user';

export interface TodoList {
  id: string;
  oid: string;
  displayName: string;
  isOwner: boolean;
  isShared: boolean;
  wellknownListName: 'none' | 'defaultList' | 'flaggedEmails';
}

export interface LinkedResource {
  id: string;
  webUrl?: string;
  applicationName?: string;
  displayName?: string;
  externalId?: string;
}

/** A date-time of a task as stored: the instant and the zone name it is answered in (To Do answers UTC). */
interface TaskTime {
  at: DateTime;
}

export interface TaskRecord {
  id: string;
  oid: string;
  listId: string;
  title: string;
  body: { content: string; contentType: 'text' | 'html' };
  importance: (typeof IMPORTANCE)[number];
  isReminderOn: boolean;
  status: TaskStatus;
  categories: string[];
  dueDateTime?: TaskTime;
  reminderDateTime?: TaskTime;
  startDateTime?: TaskTime;
  completedDateTime?: TaskTime;
  linkedResources: LinkedResource[];
  created: DateTime;
  modified: DateTime;
  bodyModified: DateTime;
  changeKey: string;
  /** Change sequence of the last write (delta tokens compare against it). */
  seq: number;
  /** Creation order: listings are in the order tasks were made. */
  order: number;
}

interface TaskTombstone {
  id: string;
  listId: string;
  seq: number;
}

export interface TaskDeltaState {
  seq: number;
  /** Ids the client holds after the round: a later deletion of one comes as @removed. */
  known: Set<string>;
}

/** Properties a client may write on a todoTask (todotasklist-post-tasks.md, todotask-update.md). */
const TASK_WRITABLE = new Set([
  'title',
  'body',
  'categories',
  'completedDateTime',
  'dueDateTime',
  'importance',
  'isReminderOn',
  'recurrence',
  'reminderDateTime',
  'startDateTime',
  'status',
  'linkedResources',
]);
/** Read-only ones the pages list in the request table; sent back, they are ignored. */
const TASK_READ_ONLY = new Set(['id', 'createdDateTime', 'lastModifiedDateTime', 'bodyLastModifiedDateTime', 'hasAttachments']);
const LINKED_WRITABLE = new Set(['webUrl', 'applicationName', 'displayName', 'externalId']);

export function newTodoId(prefix = 'AAMkADA'): string {
  return `${prefix}${crypto.randomBytes(33).toString('base64url')}AAA=`;
}

function unknownTaskProperty(name: string, type = 'todoTask'): E.GraphApiError {
  return new E.GraphApiError(
    400,
    'RequestBodyRead',
    `The property '${name}' does not exist on type 'microsoft.graph.${type}'. Make sure to only use property names that are defined by the type or mark the type as open type.`,
  );
}

function badEnum(value: unknown, type: string): E.GraphApiError {
  return E.badBody(`Cannot convert the literal '${String(value)}' to the expected type 'microsoft.graph.${type}'.`);
}

function enumOf<T extends string>(v: unknown, allowed: readonly T[], type: string): T {
  const hit = allowed.find((a) => typeof v === 'string' && a.toLowerCase() === v.toLowerCase());
  if (hit === undefined) throw badEnum(v, type);
  return hit;
}

/** A dateTimeTimeZone of a request: Windows or IANA zone name. */
function taskTime(v: unknown, name: string): DateTime {
  if (!isObject(v)) throw E.badBody(`The property '${name}' must be a dateTimeTimeZone.`);
  const tz = typeof v['timeZone'] === 'string' ? v['timeZone'] : '';
  const zone = resolveZone(tz);
  if (zone === undefined) {
    throw new E.GraphApiError(400, 'TimeZoneNotSupportedException', `A valid TimeZone value must be specified. The following TimeZone value is not supported: '${tz}'.`);
  }
  const dt = typeof v['dateTime'] === 'string' ? v['dateTime'] : '';
  const at = parseLocal(dt, zone);
  if (!at) throw E.badBody(`Cannot convert the literal '${dt}' to the expected type 'Edm.DateTime'.`);
  return at;
}

function linkedResource(v: unknown, where: string): LinkedResource {
  if (!isObject(v)) throw E.badBody(`${where} must be a linkedResource.`);
  for (const k of Object.keys(v)) {
    if (k.startsWith('@odata.') || k === 'id') continue;
    if (!LINKED_WRITABLE.has(k)) throw unknownTaskProperty(k, 'linkedResource');
  }
  const out: LinkedResource = { id: crypto.randomUUID() };
  for (const k of LINKED_WRITABLE) {
    const x = v[k];
    if (x === undefined || x === null) continue;
    if (typeof x !== 'string') throw E.badBody(`Cannot convert a value to target type 'Edm.String' for property '${k}'.`);
    (out as unknown as Record<string, string>)[k] = x;
  }
  return out;
}

export function renderLinkedResource(r: LinkedResource): Json {
  const o: Json = { id: r.id };
  if (r.webUrl !== undefined) o['webUrl'] = r.webUrl;
  o['applicationName'] = r.applicationName ?? null;
  o['displayName'] = r.displayName ?? null;
  if (r.externalId !== undefined) o['externalId'] = r.externalId;
  return o;
}

/** A dateTimeTimeZone as To Do answers it: in UTC, with seven fractional digits (todotask-update.md, Response). */
function renderTaskTime(t: TaskTime): { dateTime: string; timeZone: string } {
  return { dateTime: formatLocal(t.at.toUTC()), timeZone: 'UTC' };
}

export interface RenderTaskOptions {
  expandLinked?: boolean;
  odataType?: boolean;
}

/** The todoTask resource (todotask.md, JSON representation; key order as the Create page's response). */
export function renderTask(t: TaskRecord, opts: RenderTaskOptions = {}): Json {
  const o: Json = {};
  if (opts.odataType) o['@odata.type'] = '#microsoft.graph.todoTask';
  o['@odata.etag'] = `W/"${t.changeKey}"`;
  o['importance'] = t.importance;
  o['isReminderOn'] = t.isReminderOn;
  o['status'] = t.status;
  o['title'] = t.title;
  o['createdDateTime'] = formatTimestamp(t.created);
  o['lastModifiedDateTime'] = formatTimestamp(t.modified);
  o['hasAttachments'] = false;
  o['categories'] = [...t.categories];
  o['id'] = t.id;
  o['body'] = { ...t.body };
  o['bodyLastModifiedDateTime'] = formatTimestamp(t.bodyModified);
  if (t.completedDateTime) o['completedDateTime'] = renderTaskTime(t.completedDateTime);
  if (t.dueDateTime) o['dueDateTime'] = renderTaskTime(t.dueDateTime);
  if (t.reminderDateTime) o['reminderDateTime'] = renderTaskTime(t.reminderDateTime);
  if (t.startDateTime) o['startDateTime'] = renderTaskTime(t.startDateTime);
  if (opts.expandLinked) o['linkedResources'] = t.linkedResources.map(renderLinkedResource);
  return o;
}

export function renderList(l: TodoList): Json {
  return { '@odata.etag': `W/"${crypto.createHash('sha1').update(l.id + l.displayName).digest('base64').slice(0, 22)}"`, displayName: l.displayName, isOwner: l.isOwner, isShared: l.isShared, wellknownListName: l.wellknownListName, id: l.id };
}

/**
 * `$filter` of a task listing: clauses joined by `and`; `lastModifiedDateTime`/`createdDateTime` compared (ge, gt, le,
 * lt, eq) with an unquoted DateTimeOffset literal (OData: a quoted one is a string and does not compare), `status` eq/ne
 * a quoted status, `title` eq. A lambda on linkedResources is refused (emulator's choice: no Graph page documents it).
 */
export function parseTaskFilter(raw: string | undefined): ((t: TaskRecord) => boolean) | undefined {
  if (raw === undefined) return undefined;
  const preds: ((t: TaskRecord) => boolean)[] = [];
  const clauses = raw.split(/\s+and\s+/i).map((s) => s.trim()).filter(Boolean);
  if (clauses.length === 0) throw E.badBody(`Invalid filter clause: '${raw}'.`);
  for (const clause of clauses) {
    const time = /^(lastModifiedDateTime|createdDateTime)\s+(ge|gt|le|lt|eq)\s+(\S+)$/i.exec(clause);
    const status = /^status\s+(eq|ne)\s+'([^']*)'$/i.exec(clause);
    const title = /^title\s+eq\s+'((?:[^']|'')*)'$/i.exec(clause);
    if (time) {
      const literal = time[3]!;
      if (literal.startsWith("'")) {
        throw E.badBody("A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThanOrEqual'.");
      }
      const at = DateTime.fromISO(literal, { setZone: true });
      if (!at.isValid || !/(Z|[+-]\d{2}:\d{2})$/.test(literal)) throw E.badBody(`Syntax error at position ${clause.indexOf(literal)} in '${clause}'.`);
      const ms = at.toMillis();
      const prop = time[1]!.toLowerCase();
      const op = time[2]!.toLowerCase();
      preds.push((t) => {
        const v = (prop === 'createddatetime' ? t.created : t.modified).toMillis();
        return op === 'ge' ? v >= ms : op === 'gt' ? v > ms : op === 'le' ? v <= ms : op === 'lt' ? v < ms : v === ms;
      });
    } else if (status) {
      const want = enumOf(status[2], STATUSES, 'taskStatus');
      const eq = status[1]!.toLowerCase() === 'eq';
      preds.push((t) => (t.status === want) === eq);
    } else if (title) {
      const want = title[1]!.replace(/''/g, "'");
      preds.push((t) => t.title === want);
    } else {
      throw new E.GraphApiError(
        400,
        'BadRequest',
        `Invalid filter clause: '${clause}' (the emulator supports lastModifiedDateTime/createdDateTime ge|gt|le|lt|eq <DateTimeOffset>, status eq|ne '<status>', title eq '<title>').`,
      );
    }
  }
  return (t) => preds.every((p) => p(t));
}

export class TodoStore {
  readonly lists = new Map<string, TodoList>();
  readonly tasks = new Map<string, TaskRecord>();
  private readonly tombstones: TaskTombstone[] = [];
  private seq = 0;
  private created = 0;

  constructor(private readonly clock: Clock) {}

  /** Every mailbox has the built-in "Tasks" and "Flagged email" lists (todotasklist.md, wellknownListName). */
  addMailbox(oid: string): void {
    this.addList(oid, { displayName: 'Tasks', wellknownListName: 'defaultList' });
    this.addList(oid, { displayName: 'Flagged email', wellknownListName: 'flaggedEmails' });
  }

  addList(oid: string, l: { displayName: string; wellknownListName?: TodoList['wellknownListName']; isShared?: boolean }): TodoList {
    const list: TodoList = { id: newTodoId('AQMkADAwATM0MDAAMS0'), oid, displayName: l.displayName, isOwner: true, isShared: l.isShared ?? false, wellknownListName: l.wellknownListName ?? 'none' };
    this.lists.set(list.id, list);
    return list;
  }

  listsOf(oid: string): TodoList[] {
    return [...this.lists.values()].filter((l) => l.oid === oid);
  }

  list(oid: string, id: string): TodoList {
    const l = this.lists.get(id);
    if (!l || l.oid !== oid) throw E.itemNotFound();
    return l;
  }

  /** POST /me/todo/lists (todo-post-lists.md): displayName is required. */
  createList(oid: string, body: Json): TodoList {
    for (const k of Object.keys(body)) {
      if (k.startsWith('@odata.')) continue;
      if (k !== 'displayName' && k !== 'id' && k !== 'isOwner' && k !== 'isShared' && k !== 'wellknownListName') throw unknownTaskProperty(k, 'todoTaskList');
    }
    const name = body['displayName'];
    if (typeof name !== 'string' || name.trim() === '') throw E.invalidRequest('The displayName of a task list is required.');
    return this.addList(oid, { displayName: name });
  }

  tasksOf(oid: string, listId: string): TaskRecord[] {
    this.list(oid, listId);
    return [...this.tasks.values()].filter((t) => t.oid === oid && t.listId === listId).sort((a, b) => a.created.toMillis() - b.created.toMillis() || a.order - b.order);
  }

  task(oid: string, listId: string, id: string): TaskRecord {
    this.list(oid, listId);
    const t = this.tasks.get(id);
    if (!t || t.oid !== oid || t.listId !== listId) throw E.itemNotFound();
    return t;
  }

  private touch(t: TaskRecord): void {
    this.seq += 1;
    t.seq = this.seq;
    t.modified = this.clock.now().toUTC();
    t.changeKey = crypto.randomBytes(16).toString('base64');
  }

  /** Applies a POST/PATCH body to a task; throws 400 for what the pages do not allow. */
  private apply(t: TaskRecord, body: Json, create: boolean): void {
    for (const k of Object.keys(body)) {
      if (k.startsWith('@odata.')) continue;
      if (TASK_READ_ONLY.has(k)) continue;
      if (!TASK_WRITABLE.has(k)) throw unknownTaskProperty(k);
      if (k === 'linkedResources' && !create) {
        // linkedResources is a navigation property: created inline only with the task, afterwards through its own
        // collection (todotask-post-linkedresources.md). Emulator's choice of answer for a PATCH of it.
        throw E.badBody("The navigation property 'linkedResources' cannot be updated with the task; use /linkedResources.");
      }
    }
    const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(body, k);
    const now = this.clock.now().toUTC();
    if (has('title')) t.title = body['title'] === null ? '' : String(body['title']);
    if (has('body')) {
      const b = body['body'];
      if (b !== null && !isObject(b)) throw E.badBody('body must be an itemBody.');
      t.body = { content: b && typeof b['content'] === 'string' ? b['content'] : '', contentType: b && b['contentType'] !== undefined ? enumOf(b['contentType'], ['text', 'html'] as const, 'bodyType') : 'text' };
      t.bodyModified = now;
    }
    if (has('importance')) t.importance = enumOf(body['importance'], IMPORTANCE, 'importance');
    if (has('isReminderOn')) {
      if (typeof body['isReminderOn'] !== 'boolean') throw E.badBody("Cannot convert a value to target type 'Edm.Boolean' for property 'isReminderOn'.");
      t.isReminderOn = body['isReminderOn'];
    }
    if (has('categories')) {
      const c = body['categories'];
      if (!Array.isArray(c) || c.some((x) => typeof x !== 'string')) throw E.badBody('categories must be an array of strings.');
      t.categories = [...(c as string[])];
    }
    // To Do keeps a due date, not a time: the date as written, at midnight of the zone given, answered in UTC
    // (todotask-update.md: 16:00 Eastern is answered as 04:00 UTC, that is midnight Eastern).
    if (has('dueDateTime')) {
      if (body['dueDateTime'] === null) delete t.dueDateTime;
      else t.dueDateTime = { at: taskTime(body['dueDateTime'], 'dueDateTime').startOf('day') };
    }
    for (const k of ['reminderDateTime', 'startDateTime'] as const) {
      if (!has(k)) continue;
      if (body[k] === null) delete t[k];
      else t[k] = { at: taskTime(body[k], k) };
    }
    if (has('reminderDateTime') && t.reminderDateTime && !has('isReminderOn')) t.isReminderOn = true;
    if (has('status')) {
      const next = enumOf(body['status'], STATUSES, 'taskStatus');
      if (next === 'completed' && t.status !== 'completed') t.completedDateTime = { at: now.startOf('day') };
      if (next !== 'completed') delete t.completedDateTime;
      t.status = next;
    }
    if (has('completedDateTime') && body['completedDateTime'] !== null && t.status === 'completed') {
      t.completedDateTime = { at: taskTime(body['completedDateTime'], 'completedDateTime') };
    }
    if (has('linkedResources') && create) {
      const l = body['linkedResources'];
      if (l !== null) {
        if (!Array.isArray(l)) throw E.badBody('linkedResources must be an array.');
        // Only one linked resource per task on create (public issue microsoftgraph/microsoft-graph-docs-contrib#654:
        // 400 invalidRequest "Only one item in linkedResources is allowed.").
        if (l.length > 1) throw new E.GraphApiError(400, 'invalidRequest', 'Only one item in linkedResources is allowed.');
        t.linkedResources = l.map((x, i) => linkedResource(x, `linkedResources[${i}]`));
      }
    }
  }

  createTask(oid: string, listId: string, body: Json): TaskRecord {
    this.list(oid, listId);
    const now = this.clock.now().toUTC();
    const t: TaskRecord = {
      id: newTodoId(),
      oid,
      listId,
      title: '',
      body: { content: '', contentType: 'text' },
      importance: 'normal',
      isReminderOn: false,
      status: 'notStarted',
      categories: [],
      linkedResources: [],
      created: now,
      modified: now,
      bodyModified: now,
      changeKey: '',
      seq: 0,
      order: ++this.created,
    };
    this.apply(t, body, true);
    this.touch(t);
    this.tasks.set(t.id, t);
    return t;
  }

  updateTask(oid: string, listId: string, id: string, body: Json): TaskRecord {
    const t = this.task(oid, listId, id);
    // Validate on a copy: a refused PATCH changes nothing.
    const draft: TaskRecord = { ...t, body: { ...t.body }, categories: [...t.categories], linkedResources: t.linkedResources.map((r) => ({ ...r })) };
    this.apply(draft, body, false);
    // Optional date-times the PATCH cleared are absent from the draft: drop them from the record too.
    for (const k of Object.keys(t) as (keyof TaskRecord)[]) if (!(k in draft)) delete t[k];
    Object.assign(t, draft);
    this.touch(t);
    return t;
  }

  deleteTask(oid: string, listId: string, id: string): void {
    const t = this.task(oid, listId, id);
    this.tasks.delete(t.id);
    this.seq += 1;
    this.tombstones.push({ id: t.id, listId, seq: this.seq });
  }

  addLinkedResource(oid: string, listId: string, id: string, body: Json): LinkedResource {
    const t = this.task(oid, listId, id);
    const r = linkedResource(body, 'linkedResource');
    t.linkedResources.push(r);
    this.touch(t);
    return r;
  }

  /**
   * One delta round over a list (todotask-delta.md): without `since` every task; with it the tasks written after it and
   * `@removed` for the ones deleted since that the client held.
   */
  deltaRound(oid: string, listId: string, since?: TaskDeltaState): { changed: TaskRecord[]; removed: string[]; state: TaskDeltaState } {
    const all = this.tasksOf(oid, listId);
    const state: TaskDeltaState = { seq: this.seq, known: new Set(all.map((t) => t.id)) };
    if (!since) return { changed: all, removed: [], state };
    const removed = this.tombstones.filter((x) => x.listId === listId && x.seq > since.seq && since.known.has(x.id)).map((x) => x.id);
    return { changed: all.filter((t) => t.seq > since.seq), removed, state };
  }
}
