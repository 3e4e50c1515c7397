// A test emulator of the Google Calendar API v3, Tasks API v1, Gmail's users.messages.send and Google's OAuth 2.0
// endpoints, on node:http, driven by a Clock. Behaviour follows the discovery documents in /work/shared/refs/, then
// /work/shared/API-NOTES.md and refs/google-examples.md. Tests break it on purpose through faults (faults.ts) and a
// request hook that can drop a request before or after its effect, for crash and lost-reply tests.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../../src/clock.js';
import * as E from './errors.js';
import { isObject, str, type Json } from './events.js';
import { freeBusyQuery } from './freebusy.js';
import { Faults, isApi, type Api, type Endpoint, type Fault, type FaultQueue, type FaultSpec, type RequestHook, type RequestHookInfo } from './faults.js';
import { applyFields, parseFields } from './fields.js';
import { MailStore, type SentMessage } from './gmail.js';
import { OAuthServer } from './oauth.js';
import { PushHub, type ChannelInfo, type Delivery } from './push.js';
import { scopeAllows } from './scopes.js';
import { CalendarStore, USER_ACTOR, type AccessRole, type Actor, type CalendarEntry, type Query } from './store.js';
import { TaskStore } from './tasks.js';

export type { FaultSpec, FaultQueue, Fault, ChannelInfo, Delivery, RequestHook, RequestHookInfo, SentMessage, Api };

export type SendUpdates = 'all' | 'externalOnly' | 'none';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  bodyBytes: number;
  responseBytes: number;
  /** HTTP status answered; 0 when the connection was dropped (fault) or never answered. */
  status: number;
  /** Emulator clock (ISO, UTC) when the request arrived. */
  at: string;
  /**
   * Event writes (insert, patch, update, delete, move): the sendUpdates the request gave, the deprecated
   * sendNotifications read as all/none; undefined when it gave neither, which mails no one
   * (sendNotifications: "The default is false").
   */
  sendUpdates?: SendUpdates;
  /**
   * Event writes that took effect: the guests Google would mail about it under that sendUpdates (every guest but
   * the calendar's owner and the organizer for "all"; for "externalOnly" those who are not accounts of this
   * emulator, its "Google Calendar guests"). Whatever changed: the emulator does not guess which changes Google
   * mails about.
   */
  notifiedGuests?: string[];
  /** The If-Match header the request carried (conditional writes: events.patch, update, delete). */
  ifMatch?: string;
  /** The socket was destroyed: 'before' the request took effect (nothing happened), or 'after' (its answer was lost). */
  dropped?: 'before' | 'after';
  /** Which API the request went to (absent for the OAuth endpoints). */
  api?: Api;
}

export interface GoogleEmulator {
  /** 'http://127.0.0.1:PORT/' (rootUrl for @googleapis/calendar, @googleapis/tasks and @googleapis/gmail). */
  url: string;
  tokenUrl: string;
  revokeUrl: string;
  authUrl: string;
  /** The only OAuth client it accepts. */
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
  addAccount(a: { sub: string; email: string }): void;
  /** As if the user consented on Google's page: returns a one-time auth code for these scopes and redirect_uri. */
  authorize(sub: string, scopes: string[], redirectUri: string): string;
  /** Refresh tokens of the account now answer invalid_grant (and its access tokens 401). */
  revokeAll(sub: string): void;
  /** Access tokens answer 401 until refreshed. */
  expireAccessTokens(sub?: string): void;
  addCalendar(
    sub: string,
    c: { id: string; summary: string; timeZone: string; primary?: boolean; accessRole?: AccessRole; backgroundColor?: string },
  ): void;
  /** The user's own edits (as in the Calendar UI), each bumping the calendar's change log and sending push. */
  insertEvent(calendarId: string, body: Record<string, unknown>): Record<string, unknown>;
  patchEvent(calendarId: string, eventId: string, patch: Record<string, unknown>): Record<string, unknown>;
  deleteEvent(calendarId: string, eventId: string): void;
  moveEvent(calendarId: string, eventId: string, destinationCalendarId: string): Record<string, unknown>;
  /**
   * The stored event as events.get answers it (a deleted one with status "cancelled"), or undefined when the
   * calendar has no such event. Reads only: nothing changes, no push.
   */
  getEvent(calendarId: string, eventId: string): Record<string, unknown> | undefined;
  /** Every sync token issued so far for the calendar answers 410. */
  expireSyncTokens(calendarId: string): void;
  /**
   * freebusy.query answers this calendar's entry with errors [{domain: "global", reason}] and no busy time (e.g.
   * "internalError": FreeBusyCalendar.errors, "if computation for the calendar failed"); null restores it.
   */
  failFreeBusy(calendarId: string, reason: string | null): void;
  /** The account's task lists (the default "My Tasks" first), as tasklists.get answers them. */
  taskLists(sub: string): Record<string, unknown>[];
  /** Every task of a list ("@default" for the default one), deleted and hidden ones included, as tasks.get answers them. */
  tasks(sub: string, listId: string): Record<string, unknown>[];
  /** The user's own edits in Google Tasks (the web UI, the apps). */
  insertTask(sub: string, listId: string, body: Record<string, unknown>): Record<string, unknown>;
  patchTask(sub: string, listId: string, taskId: string, patch: Record<string, unknown>): Record<string, unknown>;
  /** The user ticks the task off in Google's apps: completed, and hidden at once (tasks.list showCompleted). */
  completeTask(sub: string, listId: string, taskId: string): Record<string, unknown>;
  deleteTask(sub: string, listId: string, taskId: string): void;
  /** "Clear completed tasks": completed ones become hidden. */
  clearTasks(sub: string, listId: string): void;
  /** Every message sent with users.messages.send, parsed (mailparser). */
  sentMessages(): SentMessage[];
  faults: FaultQueue;
  /**
   * Crash tests: the hook is called for every API request (calendar/v3, tasks/v1, gmail/v1; not the token
   * endpoint), once before it is processed and once after its effect is applied but before the answer is
   * written; 'drop' destroys the socket there. `seq` counts those requests from 1, anew for each hook set; `api`
   * says which API. null removes the hook. A request that a fault answers sees both phases (with no effect
   * between them); one a `drop` fault cuts sees only 'before'.
   */
  setRequestHook(hook: RequestHook | null): void;
  requests: RecordedRequest[];
  channels(): ChannelInfo[];
  /** Every push notification sent so far, with the receiver's answer (addition to the brief's API). */
  notifications(): Delivery[];
  /** Waits until every push notification sent so far has been answered (or failed). */
  settled(): Promise<void>;
}

const CLIENT_ID = 'sk-test-client';
const CLIENT_SECRET = 'sk-test-secret';
const CALENDAR_PREFIX = '/calendar/v3/';
const TASKS_PREFIX = '/tasks/v1/';
const GMAIL_PREFIX = '/gmail/v1/';

const WRITE_ROLES: ReadonlySet<AccessRole> = new Set(['owner', 'writer']);
const SEND_UPDATES = new Set(['all', 'externalOnly', 'none']);

function parseQuery(u: URL): Query {
  const out: Query = {};
  for (const [k, v] of u.searchParams) {
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else out[k] = Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function one(q: Query, k: string): string | undefined {
  const v = q[k];
  return Array.isArray(v) ? v[0] : v;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Route {
  id: string;
  calendarId?: string;
  eventId?: string;
}

/** Maps a calendar/v3 path and method to the discovery document's method id. */
function route(method: string, segs: string[]): Route | undefined {
  const [a, b, c, d, e] = segs;
  const n = segs.length;
  if (a === 'users' && b === 'me' && c === 'calendarList') {
    if (n === 3 && method === 'GET') return { id: 'calendarList.list' };
    if (n === 4 && method === 'GET') return { id: 'calendarList.get', calendarId: d! };
    return undefined;
  }
  if (a === 'channels' && b === 'stop' && n === 2 && method === 'POST') return { id: 'channels.stop' };
  if (a === 'freeBusy' && n === 1 && method === 'POST') return { id: 'freebusy.query' };
  if (a === 'calendars' && b !== undefined && c === 'events') {
    if (n === 3) {
      if (method === 'GET') return { id: 'events.list', calendarId: b };
      if (method === 'POST') return { id: 'events.insert', calendarId: b };
      return undefined;
    }
    if (n === 4 && d === 'watch' && method === 'POST') return { id: 'events.watch', calendarId: b };
    if (n === 4) {
      const byMethod: Record<string, string> = { GET: 'events.get', PATCH: 'events.patch', PUT: 'events.update', DELETE: 'events.delete' };
      const id = byMethod[method];
      return id ? { id, calendarId: b, eventId: d! } : undefined;
    }
    if (n === 5 && e === 'instances' && method === 'GET') return { id: 'events.instances', calendarId: b, eventId: d! };
    if (n === 5 && e === 'move' && method === 'POST') return { id: 'events.move', calendarId: b, eventId: d! };
  }
  return undefined;
}

interface TaskRoute {
  id: string;
  tasklist?: string;
  task?: string;
}

/** Maps a tasks/v1 path and method to the Tasks discovery document's method id. */
function taskRoute(method: string, segs: string[]): TaskRoute | undefined {
  const [a, b, c, d, e, f] = segs;
  const n = segs.length;
  if (a === 'users' && b === '@me' && c === 'lists') {
    if (n === 3) return method === 'GET' ? { id: 'tasks.tasklists.list' } : method === 'POST' ? { id: 'tasks.tasklists.insert' } : undefined;
    if (n === 4) {
      const byMethod: Record<string, string> = { GET: 'tasks.tasklists.get', PATCH: 'tasks.tasklists.patch', PUT: 'tasks.tasklists.update', DELETE: 'tasks.tasklists.delete' };
      const id = byMethod[method];
      return id ? { id, tasklist: d! } : undefined;
    }
    return undefined;
  }
  if (a === 'lists' && b !== undefined) {
    if (n === 3 && c === 'clear' && method === 'POST') return { id: 'tasks.tasks.clear', tasklist: b };
    if (n === 3 && c === 'tasks') return method === 'GET' ? { id: 'tasks.tasks.list', tasklist: b } : method === 'POST' ? { id: 'tasks.tasks.insert', tasklist: b } : undefined;
    if (n === 4 && c === 'tasks') {
      const byMethod: Record<string, string> = { GET: 'tasks.tasks.get', PATCH: 'tasks.tasks.patch', PUT: 'tasks.tasks.update', DELETE: 'tasks.tasks.delete' };
      const id = byMethod[method];
      return id ? { id, tasklist: b, task: d! } : undefined;
    }
    if (n === 5 && c === 'tasks' && e === 'move' && method === 'POST' && f === undefined) return { id: 'tasks.tasks.move', tasklist: b, task: d! };
  }
  return undefined;
}

export async function startGoogleEmulator(opts: { clock: Clock; host?: string }): Promise<GoogleEmulator> {
  const clock = opts.clock;
  const host = opts.host ?? '127.0.0.1';
  const faults = new Faults();
  const requests: RecordedRequest[] = [];
  const oauth = new OAuthServer(clock, CLIENT_ID, CLIENT_SECRET);
  const push = new PushHub(clock);
  const store = new CalendarStore(clock, (calendarId) => push.notify(calendarId));
  const taskStore = new TaskStore(clock, () => baseUrl);
  const mail = new MailStore(clock);
  const calendarListPages = new Map<string, { fingerprint: string; offset: number }>();
  const freeBusyFailures = new Map<string, string>();
  let baseUrl = '';

  let requestHook: RequestHook | null = null;
  let hookSeq = 0;

  function send(res: http.ServerResponse, rec: RecordedRequest, answer: Answer): void {
    const { status, body, headers = {} } = answer;
    const data = body === undefined ? '' : JSON.stringify(body, null, 1);
    const h: Record<string, string | number> = { ...headers, 'Content-Length': Buffer.byteLength(data) };
    if (body !== undefined) h['Content-Type'] = 'application/json; charset=UTF-8';
    res.writeHead(status, h);
    res.end(data);
    rec.status = status;
    rec.responseBytes = Buffer.byteLength(data);
  }

  function errorAnswer(err: unknown): Answer {
    if (err instanceof E.GoogleApiError) {
      const headers: Record<string, string> = { ...err.headers };
      if (err.code === 401) headers['WWW-Authenticate'] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"';
      return { status: err.code, body: err.body(), headers };
    }
    if (err instanceof E.OAuthError) {
      return { status: err.httpStatus, body: err.body(), headers: { 'Cache-Control': 'no-cache, no-store, max-age=0, must-revalidate' } };
    }
    const e = new E.GoogleApiError(500, `Emulator error: ${(err as Error).message}`, [{ domain: 'global', reason: 'backendError', message: 'Backend Error' }], 'INTERNAL');
    return { status: 500, body: e.body() };
  }

  /** Who Google would mail about a write to this event under sendUpdates (see RecordedRequest.notifiedGuests). */
  function guestsToNotify(event: Json | undefined, sendUpdates: SendUpdates | undefined): string[] {
    if (!event || sendUpdates === undefined || sendUpdates === 'none') return [];
    const organizer = isObject(event['organizer']) ? str(event['organizer']['email'])?.toLowerCase() : undefined;
    const googleUsers = new Set([...oauth.accounts.values()].map((a) => a.email.toLowerCase()));
    const out: string[] = [];
    for (const a of Array.isArray(event['attendees']) ? event['attendees'] : []) {
      if (!isObject(a) || a['self'] === true || a['resource'] === true) continue;
      const email = str(a['email']);
      if (email === undefined || email.toLowerCase() === organizer) continue;
      if (sendUpdates === 'externalOnly' && googleUsers.has(email.toLowerCase())) continue;
      out.push(email);
    }
    return out;
  }

  /** The answer a queued fault forces (drop, dropAfter and delay are handled by the caller). */
  function faultError(fault: Fault, endpoint: Endpoint): E.GoogleApiError | E.OAuthError {
    const retry = (s: number | undefined): Record<string, string> => (s === undefined ? {} : { 'Retry-After': String(s) });
    if ('invalidGrant' in fault) return E.invalidGrant();
    if (!('status' in fault)) throw new Error('unreachable fault');
    if (endpoint === 'token') {
      switch (fault.status) {
        case 401:
          return E.invalidClient();
        case 429:
        case 403:
          return new E.OAuthError(fault.status, 'rate_limit_exceeded', 'Rate Limit Exceeded');
        case 410:
          return new E.OAuthError(400, 'invalid_grant', 'Token has been expired or revoked.');
        default:
          return new E.OAuthError(fault.status, 'internal_failure', 'Backend Error');
      }
    }
    switch (fault.status) {
      case 401:
        return E.authError();
      case 410:
        return endpoint === 'calendar' ? E.fullSyncRequired() : E.gone();
      case 429:
        return E.tooManyRequests(retry(fault.retryAfter));
      case 403:
        return E.rateLimited403(fault.reason, retry(fault.retryAfter), isApi(endpoint) ? endpoint : 'calendar');
      default:
        return E.serverError(fault.status);
    }
  }

  function parseJsonBody(body: Buffer): Json {
    if (body.length === 0) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw E.parseError();
    }
    if (!isObject(parsed)) throw E.parseError();
    return parsed;
  }

  function calendarEntryItem(entry: CalendarEntry): Json {
    const cal = store.calendar(entry.calendarId);
    const item: Json = {
      kind: 'calendar#calendarListEntry',
      etag: entry.etag,
      id: cal.id,
      summary: cal.summary,
      timeZone: cal.timeZone,
      backgroundColor: entry.backgroundColor,
      accessRole: entry.accessRole,
    };
    if (entry.primary) item['primary'] = true;
    return item;
  }

  /**
   * A conditional write (If-Match) on an event: refused with 412 when the event's etag is none of those named (the Calendar
   * guide "Get specific versions of resources"; "*" matches any event that exists). Compared as HTTP's weak comparison
   * (a W/ prefix ignored). An event the calendar does not have is the usual 404, before any precondition.
   */
  function checkIfMatch(calId: string, eventId: string, ifMatch: string | undefined): void {
    if (ifMatch === undefined) return;
    const current = str(store.get(calId, eventId)['etag']) ?? '';
    const weak = (tag: string): string => tag.trim().replace(/^W\//, '');
    const wanted = ifMatch.split(',').map((t) => t.trim()).filter(Boolean);
    if (!wanted.some((t) => t === '*' || weak(t) === weak(current))) throw E.preconditionFailed();
  }

  function handleCalendar(r: Route, method: string, query: Query, body: Buffer, authorization: string | undefined, rec: RecordedRequest, ifMatch?: string): Answer {
    const { account, scopes } = oauth.authenticate(authorization);
    if (!scopeAllows(scopes, r.id)) throw E.insufficientPermissions();
    const sub = account.sub;

    if (r.id === 'calendarList.list') {
      const minRole = one(query, 'minAccessRole');
      const rank: Record<AccessRole, number> = { freeBusyReader: 0, reader: 1, writer: 2, owner: 3 };
      if (minRole !== undefined && !(minRole in rank)) throw E.invalid(`Invalid value for minAccessRole: ${minRole}`);
      const entries = [...(store.entries.get(sub)?.values() ?? [])].filter(
        (e) => minRole === undefined || rank[e.accessRole] >= rank[minRole as AccessRole],
      );
      const maxRaw = one(query, 'maxResults');
      if (maxRaw !== undefined && !/^\d+$/.test(maxRaw)) throw E.invalid(`Invalid value for maxResults: ${maxRaw}`);
      const max = Math.min(maxRaw === undefined ? 100 : Math.max(1, Number.parseInt(maxRaw, 10)), 250);
      const fingerprint = `${sub}|${minRole ?? ''}`;
      let offset = 0;
      const pageToken = one(query, 'pageToken');
      if (pageToken !== undefined) {
        const p = calendarListPages.get(pageToken);
        if (!p || p.fingerprint !== fingerprint) throw E.invalid('Invalid page token value.');
        offset = p.offset;
      }
      const page = entries.slice(offset, offset + max);
      const res: Json = { kind: 'calendar#calendarList', etag: `"p3${entries.length.toString(32)}${offset.toString(32)}0g"` };
      if (offset + page.length < entries.length) {
        const token = Buffer.from(`${Math.random()}:${offset + page.length}`).toString('base64');
        calendarListPages.set(token, { fingerprint, offset: offset + page.length });
        res['nextPageToken'] = token;
      }
      res['items'] = page.map(calendarEntryItem);
      return { status: 200, body: res };
    }

    if (r.id === 'channels.stop') {
      push.stop(parseJsonBody(body));
      return { status: 204 };
    }

    if (r.id === 'freebusy.query') return { status: 200, body: freeBusyQuery(store, sub, parseJsonBody(body), freeBusyFailures) };

    const entry = store.entryFor(sub, r.calendarId ?? '');
    if (!entry) throw E.notFound();
    const calId = entry.calendarId;
    if (r.id === 'calendarList.get') return { status: 200, body: calendarEntryItem(entry) };

    const sendUpdatesRaw = one(query, 'sendUpdates');
    if (sendUpdatesRaw !== undefined && !SEND_UPDATES.has(sendUpdatesRaw)) throw E.invalid(`Invalid value for sendUpdates: ${sendUpdatesRaw}`);
    const sendNotifications = one(query, 'sendNotifications');
    const sendUpdates: SendUpdates | undefined =
      (sendUpdatesRaw as SendUpdates | undefined) ?? (sendNotifications === 'true' ? 'all' : sendNotifications === 'false' ? 'none' : undefined);
    const isWrite = ['events.insert', 'events.patch', 'events.update', 'events.delete', 'events.move'].includes(r.id);
    if (isWrite && sendUpdates !== undefined) rec.sendUpdates = sendUpdates;
    /** A write that took effect: who would be mailed about it. */
    const wrote = (event: Json | undefined): void => {
      rec.notifiedGuests = guestsToNotify(event, sendUpdates);
    };
    const cdv = one(query, 'conferenceDataVersion');
    if (cdv !== undefined && cdv !== '0' && cdv !== '1') throw E.invalid(`Invalid value for conferenceDataVersion: ${cdv}`);
    const actor: Actor = { origin: 'api', email: account.email, conferenceDataVersion: cdv === '1' ? 1 : 0 };
    const needWriter = (): void => {
      if (!WRITE_ROLES.has(entry.accessRole)) throw E.requiredAccessLevel();
    };
    const maxAttendeesRaw = one(query, 'maxAttendees');
    const maxAttendees = maxAttendeesRaw === undefined ? undefined : Number.parseInt(maxAttendeesRaw, 10);
    if (maxAttendees !== undefined && (!Number.isFinite(maxAttendees) || maxAttendees < 1)) throw E.invalid('Invalid value for maxAttendees.');

    switch (r.id) {
      case 'events.list':
        return { status: 200, body: store.list(calId, query, entry.accessRole) };
      case 'events.get':
        return { status: 200, body: store.get(calId, r.eventId!, maxAttendees, entry.accessRole) };
      case 'events.instances':
        return { status: 200, body: store.instances(calId, r.eventId!, query, entry.accessRole) };
      case 'events.insert': {
        needWriter();
        const event = store.insert(calId, parseJsonBody(body), actor);
        wrote(event);
        return { status: 200, body: event };
      }
      case 'events.patch': {
        needWriter();
        checkIfMatch(calId, r.eventId!, ifMatch);
        const event = store.patch(calId, r.eventId!, parseJsonBody(body), actor);
        wrote(event);
        return { status: 200, body: event };
      }
      case 'events.update': {
        needWriter();
        checkIfMatch(calId, r.eventId!, ifMatch);
        const event = store.update(calId, r.eventId!, parseJsonBody(body), actor);
        wrote(event);
        return { status: 200, body: event };
      }
      case 'events.delete': {
        needWriter();
        checkIfMatch(calId, r.eventId!, ifMatch);
        let before: Json | undefined;
        try {
          before = store.get(calId, r.eventId!);
        } catch {
          before = undefined;
        }
        store.delete(calId, r.eventId!);
        wrote(before);
        return { status: 204 };
      }
      case 'events.move': {
        needWriter();
        const destination = one(query, 'destination');
        if (!destination) throw E.required('Required parameter: destination');
        const dest = store.entryFor(sub, destination);
        if (!dest) throw E.notFound();
        if (!WRITE_ROLES.has(dest.accessRole)) throw E.requiredAccessLevel();
        const event = store.move(calId, r.eventId!, dest.calendarId);
        wrote(event);
        return { status: 200, body: event };
      }
      case 'events.watch': {
        const resourceUri = `${baseUrl}calendar/v3/calendars/${encodeURIComponent(r.calendarId ?? calId)}/events?alt=json`;
        return { status: 200, body: push.watch(calId, resourceUri, parseJsonBody(body)) };
      }
      default:
        throw E.notFound();
    }
  }

  /** A tasks/v1 request, after the Bearer and scope checks of the discovery document's method. */
  function handleTasks(r: TaskRoute, query: Query, body: Buffer, authorization: string | undefined): Answer {
    const { account, scopes } = oauth.authenticate(authorization);
    if (!scopeAllows(scopes, r.id)) throw E.insufficientPermissions();
    const sub = account.sub;
    const list = r.tasklist ?? '';
    const task = r.task ?? '';
    switch (r.id) {
      case 'tasks.tasklists.list':
        return { status: 200, body: taskStore.listLists(sub, query) };
      case 'tasks.tasklists.get':
        return { status: 200, body: taskStore.getList(sub, list) };
      case 'tasks.tasklists.insert':
        return { status: 200, body: taskStore.insertList(sub, parseJsonBody(body)) };
      case 'tasks.tasklists.patch':
        return { status: 200, body: taskStore.patchList(sub, list, parseJsonBody(body), false) };
      case 'tasks.tasklists.update':
        return { status: 200, body: taskStore.patchList(sub, list, parseJsonBody(body), true) };
      case 'tasks.tasklists.delete':
        taskStore.deleteList(sub, list);
        return { status: 204 };
      case 'tasks.tasks.list':
        return { status: 200, body: taskStore.listTasks(sub, list, query) };
      case 'tasks.tasks.get':
        return { status: 200, body: taskStore.getTask(sub, list, task) };
      case 'tasks.tasks.insert':
        return { status: 200, body: taskStore.insertTask(sub, list, parseJsonBody(body), query) };
      case 'tasks.tasks.patch':
        return { status: 200, body: taskStore.patchTask(sub, list, task, parseJsonBody(body)) };
      case 'tasks.tasks.update':
        return { status: 200, body: taskStore.updateTask(sub, list, task, parseJsonBody(body)) };
      case 'tasks.tasks.delete':
        taskStore.deleteTask(sub, list, task);
        return { status: 204 };
      case 'tasks.tasks.clear':
        taskStore.clear(sub, list);
        return { status: 204 };
      default:
        // tasks.move: not served (the product never moves tasks).
        throw E.notFound();
    }
  }

  /** gmail/v1: only users.messages.send, in its JSON form (what @googleapis/gmail sends for requestBody.raw). */
  async function handleGmail(segs: string[], method: string, body: Buffer, authorization: string | undefined): Promise<Answer> {
    const [a, userId, c, d] = segs;
    if (!(segs.length === 4 && a === 'users' && userId !== undefined && c === 'messages' && d === 'send' && method === 'POST')) throw E.notFound();
    const { account, scopes } = oauth.authenticate(authorization);
    if (!scopeAllows(scopes, 'gmail.users.messages.send')) throw E.insufficientPermissions();
    return { status: 200, body: await mail.send(account, userId, parseJsonBody(body)) };
  }

  function formOf(req: http.IncomingMessage, body: Buffer): URLSearchParams {
    const type = req.headers['content-type'] ?? '';
    if (type.includes('application/json')) {
      const j = parseJsonBody(body);
      const out = new URLSearchParams();
      for (const [k, v] of Object.entries(j)) if (typeof v === 'string') out.set(k, v);
      return out;
    }
    return new URLSearchParams(body.toString('utf8'));
  }

  /** The path's segments after an API prefix, decoded; a malformed escape is a 404. */
  function segments(path: string, prefix: string): string[] {
    try {
      return path.slice(prefix.length).split('/').map(decodeURIComponent);
    } catch {
      throw E.notFound();
    }
  }

  /** Applies a `fields` selection (Google's partial response: any method that returns data) to a 2xx answer. */
  function partial(query: Query, run: () => Answer): Answer {
    // A malformed selection is refused before anything is done.
    const fields = one(query, 'fields');
    const selection = fields === undefined ? undefined : parseFields(fields);
    const out = run();
    if (selection && out.body !== undefined && out.status >= 200 && out.status < 300) return { ...out, body: applyFields(out.body, selection) };
    return out;
  }

  /** Processes a request that no fault stopped: its effect is applied here; the answer is written by the caller. */
  async function processRequest(req: http.IncomingMessage, u: URL, method: string, query: Query, body: Buffer, endpoint: Endpoint, rec: RecordedRequest): Promise<Answer> {
    const path = u.pathname;
    try {
      if (endpoint === 'tasks') {
        const r = taskRoute(method, segments(path, TASKS_PREFIX));
        if (!r) throw E.notFound();
        return partial(query, () => handleTasks(r, query, body, req.headers.authorization));
      }
      if (endpoint === 'gmail') {
        const fields = one(query, 'fields');
        const selection = fields === undefined ? undefined : parseFields(fields);
        const out = await handleGmail(segments(path, GMAIL_PREFIX), method, body, req.headers.authorization);
        return selection && out.body !== undefined ? { ...out, body: applyFields(out.body, selection) } : out;
      }
      if (endpoint === 'calendar') {
        const r = route(method, segments(path, CALENDAR_PREFIX));
        if (!r) throw E.notFound();
        const ifMatch = req.headers['if-match'];
        return partial(query, () => handleCalendar(r, method, query, body, req.headers.authorization, rec, Array.isArray(ifMatch) ? ifMatch.join(', ') : ifMatch));
      }
      if (path === '/token') {
        if (method !== 'POST') throw new E.OAuthError(405, 'invalid_request', 'Method Not Allowed');
        const tokens = oauth.token(formOf(req, body), req.headers.authorization);
        return { status: 200, body: tokens, headers: { 'Cache-Control': 'no-cache, no-store, max-age=0, must-revalidate', Pragma: 'no-cache' } };
      }
      if (path === '/revoke') {
        if (method !== 'POST' && method !== 'GET') throw new E.OAuthError(405, 'invalid_request', 'Method Not Allowed');
        oauth.revoke(u.searchParams.get('token') ?? formOf(req, body).get('token'));
        return { status: 200 };
      }
      if (path === '/o/oauth2/v2/auth' && method === 'GET') {
        // The consent page, answered at once: redirect back with a code for the one matching account.
        if (u.searchParams.get('client_id') !== CLIENT_ID) throw new E.OAuthError(401, 'invalid_client', 'The OAuth client was not found.');
        const redirectUri = u.searchParams.get('redirect_uri') ?? '';
        const hint = u.searchParams.get('login_hint');
        const accounts = [...oauth.accounts.values()];
        const account = hint ? accounts.find((a) => a.email === hint || a.sub === hint) : accounts.length === 1 ? accounts[0] : undefined;
        if (!account || redirectUri === '') throw new E.OAuthError(400, 'invalid_request', 'No account to sign in (add one, or pass login_hint) or no redirect_uri.');
        const scopes = (u.searchParams.get('scope') ?? '').split(/\s+/).filter(Boolean);
        const code = oauth.authorize(account.sub, scopes, redirectUri);
        const target = new URL(redirectUri);
        const state = u.searchParams.get('state');
        if (state !== null) target.searchParams.set('state', state);
        target.searchParams.set('code', code);
        target.searchParams.set('scope', scopes.join(' '));
        return { status: 302, headers: { Location: target.toString() } };
      }
      throw E.notFound();
    } catch (err) {
      return errorAnswer(err);
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const u = new URL(req.url ?? '/', 'http://emulator.invalid');
    const path = u.pathname;
    const query = parseQuery(u);
    const rec: RecordedRequest = {
      method,
      path,
      query,
      bodyBytes: 0,
      responseBytes: 0,
      status: 0,
      at: clock.now().toUTC().toISO() ?? '',
    };
    requests.push(rec);
    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined) rec.ifMatch = Array.isArray(ifMatch) ? ifMatch.join(', ') : ifMatch;
    const body = await readBody(req);
    rec.bodyBytes = body.length;
    const endpoint: Endpoint = path.startsWith(CALENDAR_PREFIX)
      ? 'calendar'
      : path.startsWith(TASKS_PREFIX)
        ? 'tasks'
        : path.startsWith(GMAIL_PREFIX)
          ? 'gmail'
          : path === '/token'
            ? 'token'
            : 'other';
    if (isApi(endpoint)) rec.api = endpoint;
    const drop = (phase: 'before' | 'after'): void => {
      rec.dropped = phase;
      req.socket.destroy();
    };

    // The hook sees API requests only; the one set when the request arrived sees both of its phases.
    const api = isApi(endpoint) ? endpoint : undefined;
    const hook = api ? requestHook : null;
    const seq = hook ? ++hookSeq : 0;
    if (hook && api && (await hook({ seq, method, path, api, phase: 'before' })) === 'drop') {
      drop('before');
      return;
    }

    let answer: Answer | undefined;
    let dropAfter = false;
    const fault = faults.take(method, path, endpoint);
    if (fault) {
      if ('drop' in fault) {
        drop('before');
        return;
      }
      if ('dropAfter' in fault) dropAfter = true;
      else if ('delayMs' in fault) await sleep(fault.delayMs);
      else answer = errorAnswer(faultError(fault, endpoint));
    }
    answer ??= await processRequest(req, u, method, query, body, endpoint, rec);

    if (hook && api && (await hook({ seq, method, path, api, phase: 'after' })) === 'drop') {
      drop('after');
      return;
    }
    if (dropAfter) {
      // The effect stays; the client never hears of it (a lost reply).
      drop('after');
      return;
    }
    send(res, rec, answer);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(err));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  baseUrl = `http://${hostInUrl}:${port}/`;

  const requireCalendar = (calendarId: string): void => {
    if (!store.calendars.has(calendarId)) throw new Error(`Google emulator: unknown calendar ${calendarId} (call addCalendar first)`);
  };

  return {
    url: baseUrl,
    tokenUrl: `${baseUrl}token`,
    revokeUrl: `${baseUrl}revoke`,
    authUrl: `${baseUrl}o/oauth2/v2/auth`,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    async close() {
      push.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    addAccount: (a) => oauth.addAccount(a),
    authorize: (sub, scopes, redirectUri) => oauth.authorize(sub, scopes, redirectUri),
    revokeAll: (sub) => oauth.revokeAll(sub),
    expireAccessTokens: (sub) => oauth.expireAccessTokens(sub),
    addCalendar(sub, c) {
      const account = oauth.account(sub);
      store.addCalendar(sub, account.email, c);
    },
    insertEvent(calendarId, body) {
      requireCalendar(calendarId);
      return store.insert(calendarId, body, USER_ACTOR);
    },
    patchEvent(calendarId, eventId, patch) {
      requireCalendar(calendarId);
      return store.patch(calendarId, eventId, patch, USER_ACTOR);
    },
    deleteEvent(calendarId, eventId) {
      requireCalendar(calendarId);
      store.delete(calendarId, eventId);
    },
    moveEvent(calendarId, eventId, destinationCalendarId) {
      requireCalendar(calendarId);
      requireCalendar(destinationCalendarId);
      return store.move(calendarId, eventId, destinationCalendarId);
    },
    getEvent(calendarId, eventId) {
      requireCalendar(calendarId);
      try {
        return store.get(calendarId, eventId);
      } catch (err) {
        if (err instanceof E.GoogleApiError && err.code === 404) return undefined;
        throw err;
      }
    },
    expireSyncTokens: (calendarId) => store.expireSyncTokens(calendarId),
    failFreeBusy(calendarId, reason) {
      requireCalendar(calendarId);
      if (reason === null) freeBusyFailures.delete(calendarId);
      else freeBusyFailures.set(calendarId, reason);
    },
    taskLists: (sub) => (oauth.account(sub), taskStore.listsJson(sub)),
    tasks: (sub, listId) => (oauth.account(sub), taskStore.tasksJson(sub, listId)),
    insertTask: (sub, listId, body) => (oauth.account(sub), taskStore.insertTask(sub, listId, body, {}, 'user')),
    patchTask: (sub, listId, taskId, patch) => (oauth.account(sub), taskStore.userPatch(sub, listId, taskId, patch)),
    completeTask: (sub, listId, taskId) => (oauth.account(sub), taskStore.userPatch(sub, listId, taskId, { status: 'completed' })),
    deleteTask(sub, listId, taskId) {
      oauth.account(sub);
      taskStore.deleteTask(sub, listId, taskId);
    },
    clearTasks(sub, listId) {
      oauth.account(sub);
      taskStore.clear(sub, listId);
    },
    sentMessages: () => [...mail.sent],
    faults,
    setRequestHook(hook) {
      requestHook = hook;
      hookSeq = 0;
    },
    requests,
    channels: () => push.channels(),
    notifications: () => push.deliveries.map((d) => ({ ...d })),
    settled: () => push.settled(),
  };
}
