// A test emulator of Microsoft Graph v1.0 (calendars, events, calendarView delta, subscriptions, getSchedule, Microsoft
// To Do lists and tasks, sendMail) and of the Microsoft identity platform token endpoint, on node:http, driven by a
// Clock. Behaviour follows refs/graph-docs/*.md.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import crypto from 'node:crypto';
import { DateTime } from 'luxon';
import type { Context, Middleware } from '@microsoft/microsoft-graph-client';
import { AuthError, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node';
import type { Clock } from '../../../src/clock.js';
import * as E from './errors.js';
import { contentSnapshot, extPropKey as extPropKeyOf, isObject, project, removedItem, renderEvent, renderStub, requireExtPropKey, type ExtendedProperty, type Instance, type Json, type RenderOptions } from './events.js';
import { Faults, type Endpoint, type Fault, type FaultQueue, type FaultSpec } from './faults.js';
import { AUTHORITY_HOST, IdentityServer, loadSigningKey, type User } from './identity.js';
import { GraphStore, type Calendar, type DeltaEntry, type DeltaState } from './store.js';
import { parseSendMail, SENDMAIL_MAX_BYTES, type SentMail } from './mail.js';
import { parseTaskFilter, renderLinkedResource, renderList, renderTask, TodoStore, type TaskDeltaState, type TaskRecord } from './todo.js';
import { getSchedule, type ScheduleFailure } from './schedule.js';
import { SubscriptionHub, type Delivery, type LifecycleEvent, type SubscriptionInfo } from './subscriptions.js';
import { UTC_OUTPUT, parseQueryInstant, resolveZone, type OutputZone } from './timezones.js';

export type { FaultSpec, FaultQueue, Fault, SubscriptionInfo, Delivery, LifecycleEvent, SentMail, ScheduleFailure };

/** Where a request hook is called: before the request is processed, or after its effect, before the answer. */
export type RequestPhase = 'before' | 'after';

export interface RequestInfo {
  /** Graph requests (/v1.0/...) counted from 1, whatever their answer. */
  seq: number;
  method: string;
  path: string;
  phase: RequestPhase;
}

/**
 * A crash test's hook, called twice for every Graph request. 'drop' destroys the socket there: at 'before' the request
 * has no effect at all; at 'after' its effect is kept and no answer goes out (a lost reply).
 */
export type RequestHook = (info: RequestInfo) => 'drop' | void | Promise<'drop' | void>;

/**
 * Mail Graph/Exchange would have sent to a meeting's attendees because of a request: an organizer's POST of an event with
 * attendees (the invitation), PATCH that changed it (an update), DELETE or cancel of it (the cancellation). API-NOTES:
 * Graph has no sendUpdates=none; "Delete event": deleting a meeting on the organizer's calendar sends a cancellation.
 */
export interface AttendeeUpdate {
  eventId: string;
  kind: AttendeeMailKind;
  /** The attendees' addresses (not the organizer's own). */
  to: string[];
  /** Emulator clock (ISO, UTC). */
  at: string;
}

export type AttendeeMailKind = 'invitation' | 'update' | 'cancellation';

export const PUBLIC_GRAPH = 'https://graph.microsoft.com/v1.0';
const GRAPH_HOST_PREFIX = 'https://graph.microsoft.com/';
/** Hosts of the identity platform (MSAL's instance-discovery aliases) that msalNetworkClient sends to the emulator. */
const AAD_HOSTS = new Set(['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net']);

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  /** Request headers, names in lower case. */
  headers: Record<string, string>;
  bodyBytes: number;
  responseBytes: number;
  /** HTTP status answered; 0 when the connection was dropped (fault, hook) or never answered. */
  status: number;
  /** Graph requests: their number (RequestInfo.seq); 0 for other endpoints. */
  seq: number;
  /** The request sent mail to a meeting's attendees (an invitation, update or cancellation: see attendeeUpdates). */
  attendeeUpdate: boolean;
  /** Emulator clock (ISO, UTC) when the request arrived. */
  at: string;
}

export interface NotificationRecord {
  subscriptionId: string;
  url: string;
  body: unknown;
  status: number | 'error';
  at: string;
}

export interface GraphEmulator {
  /** Local http base, e.g. 'http://127.0.0.1:PORT/'. */
  url: string;
  publicGraph: 'https://graph.microsoft.com/v1.0';
  authorityHost: 'https://login.microsoftonline.com';
  /** The only app registration it accepts. */
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
  addUser(u: { oid: string; tid: string; upn: string; displayName?: string; timeZone?: string }): void;
  /**
   * As if the user consented: a one-time auth code for these scopes (plus openid/profile/offline_access, which MSAL
   * always asks for) and redirect URI. `extra.nonce`/`codeChallenge` as the authorize request would have carried them.
   */
  authorize(oid: string, scopes: string[], redirectUri: string, extra?: { nonce?: string; codeChallenge?: string; codeChallengeMethod?: string }): string;
  /** Refresh tokens now answer invalid_grant (AADSTS50173); issued access tokens stay valid until they expire. */
  revokeAll(oid: string): void;
  /** Access tokens now answer 401 InvalidAuthenticationToken. */
  expireAccessTokens(oid?: string): void;
  addCalendar(oid: string, c: { id?: string; name: string; isDefault?: boolean; canEdit?: boolean }): { id: string };
  /** The user's own edits (as in Outlook): each changes changeKey/lastModifiedDateTime and notifies subscriptions. */
  createEvent(oid: string, calendarId: string | 'default', body: Record<string, unknown>): Record<string, unknown>;
  /** An event as Graph renders it (UTC times, extended properties included), without any side effect; undefined when gone. */
  getEvent(oid: string, eventId: string): Record<string, unknown> | undefined;
  /** On an occurrence id: makes an exception. */
  updateEvent(oid: string, eventId: string, patch: Record<string, unknown>): Record<string, unknown>;
  /** On an occurrence id: cancels that occurrence (no delta item for it; its series master changes). */
  deleteEvent(oid: string, eventId: string): void;
  /** Organizer cancel: isCancelled true, then removed. On an attendee's copy: isCancelled true, kept. */
  cancelEvent(oid: string, eventId: string, comment?: string): void;
  /** Every delta link (and next link) issued so far for the user answers 410 syncStateNotFound. */
  expireDeltaLinks(oid: string): void;
  /**
   * getSchedule answers this address with `error` (freeBusyError {message, responseCode}) and nothing else, as Graph does
   * for a schedule it cannot read; null restores it.
   */
  failSchedule(address: string, error: ScheduleFailure | null): void;
  faults: FaultQueue;
  requests: RecordedRequest[];
  subscriptions(): SubscriptionInfo[];
  /** Lifecycle events to the subscription's lifecycleNotificationUrl. */
  sendLifecycle(subscriptionId: string, event: LifecycleEvent): Promise<void>;
  notifications(): NotificationRecord[];
  /** All notifications sent so far answered. */
  settled(): Promise<void>;
  /**
   * Every meeting mail that real Graph would have sent to attendees, in order, one per request on an event the user
   * organizes, with attendees: POST (kind 'invitation'), a PATCH that changed something ('update'), DELETE or /cancel
   * ('cancellation') (API-NOTES: no sendUpdates=none on Graph). Edits made through createEvent/updateEvent/deleteEvent
   * (the user in Outlook) are not requests and are not listed. `kind` keeps only that kind.
   */
  attendeeUpdates(kind?: AttendeeMailKind): AttendeeUpdate[];
  /** Messages accepted by POST /me/sendMail (202), in order, attachments decoded; `oid` keeps one sender's. */
  sentMail(oid?: string): SentMail[];
  /** Microsoft To Do as the user sees it in the To Do app: their own edits change lastModifiedDateTime like any write. */
  todo: {
    lists(oid: string): Record<string, unknown>[];
    addList(oid: string, displayName: string): { id: string };
    /** The list's tasks, linkedResources expanded. */
    tasks(oid: string, listId: string): Record<string, unknown>[];
    createTask(oid: string, listId: string, body: Record<string, unknown>): Record<string, unknown>;
    updateTask(oid: string, listId: string, taskId: string, patch: Record<string, unknown>): Record<string, unknown>;
    /** The user ticks the task off. */
    completeTask(oid: string, listId: string, taskId: string): Record<string, unknown>;
    deleteTask(oid: string, listId: string, taskId: string): void;
    /** Every tasks delta link issued so far for the user answers 410 syncStateNotFound. */
    expireDelta(oid: string): void;
  };
  /** A hook on every Graph request (crash tests); null removes it. */
  setRequestHook(hook: RequestHook | null): void;
}

export interface GraphEmulatorOptions {
  clock: Clock;
  host?: string;
  /** Each change notification is POSTed this many times (default 1; real Graph often sends ~3). */
  duplicates?: number;
  /** Real-time limit of the subscription validation handshake (default 10 000 ms, as in the reference). */
  validationTimeoutMs?: number;
  /** Real-time limit of a notification POST (default 3 000 ms, as in the webhooks page). */
  notificationTimeoutMs?: number;
}

const CLIENT_ID = '5f0c0d1e-7a1b-4c59-9a55-5e55104e4b10';
const CLIENT_SECRET = 'sk~emulator~secret';
const DEFAULT_PAGE = 10;
const MAX_PAGE = 1000;
const READ_SCOPES = ['calendars.read', 'calendars.readwrite', 'calendars.read.shared', 'calendars.readwrite.shared'];
const WRITE_SCOPES = ['calendars.readwrite', 'calendars.readwrite.shared'];
// GET /me/mailboxSettings (user-get-mailboxsettings): MailboxSettings.Read or .ReadWrite.
const MAILBOX_SETTINGS_SCOPES = ['mailboxsettings.read', 'mailboxsettings.readwrite'];
const PROFILE_SCOPES = ['user.read', 'user.readwrite', 'user.readbasic.all', 'user.read.all', 'directory.read.all'];
/** To Do (todotasklist-post-tasks.md: Tasks.ReadWrite to write; the list pages also take Tasks.Read to read). */
const TASK_READ_SCOPES = ['tasks.read', 'tasks.readwrite'];
const TASK_WRITE_SCOPES = ['tasks.readwrite'];
/** user-sendmail.md: Mail.Send. */
const MAIL_SEND_SCOPES = ['mail.send'];
/** To Do task listings answer 10 tasks a page unless $top says otherwise (public Q&A: "todo API only returns 10 tasks"). */
const TASK_PAGE = 10;
/** Task lists come in one page of up to 100 unless $top asks for less (public Q&A on /me/todo/lists paging). */
const LIST_PAGE = 100;
const JSON_TYPE = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

type Query = Map<string, string>;

interface Prefs {
  maxPageSize?: number;
  out: OutputZone;
  applied: string[];
}

interface DeltaSession {
  oid: string;
  calendarId: string;
  prefix: string;
  from: DateTime;
  to: DateTime;
  expired: boolean;
  /** Next link: the rest of the round, then the state its delta link will carry. Delta link: the state. */
  remaining?: Json[];
  state: DeltaState;
}

interface GraphCtx {
  requestId: string;
  clientRequestId: string;
  prefs: Prefs;
  rec: RecordedRequest;
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

function token(): string {
  return crypto.randomBytes(24).toString('base64url');
}

function parsePrefer(header: string | string[] | undefined): Prefs {
  const raw = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const prefs: Prefs = { out: UTC_OUTPUT, applied: [] };
  const size = /odata\.maxpagesize\s*=\s*"?(\d+)"?/i.exec(raw);
  if (size) {
    const n = Number.parseInt(size[1]!, 10);
    if (n > 0) {
      prefs.maxPageSize = Math.min(n, MAX_PAGE);
      prefs.applied.push(`odata.maxpagesize=${prefs.maxPageSize}`);
    }
  }
  const tz = /outlook\.timezone\s*=\s*(?:"([^"]*)"|([^,;]+))/i.exec(raw);
  if (tz) {
    const label = (tz[1] ?? tz[2] ?? '').trim();
    const zone = resolveZone(label);
    if (zone !== undefined) {
      prefs.out = { label, zone };
      prefs.applied.push(`outlook.timezone="${label}"`);
    }
  }
  if (/IdType\s*=\s*"?ImmutableId"?/i.test(raw)) prefs.applied.push('IdType="ImmutableId"');
  return prefs;
}

function hasAny(scopes: readonly string[], wanted: readonly string[]): boolean {
  return scopes.some((s) => wanted.includes(s.toLowerCase()));
}

/** `$expand=singleValueExtendedProperties($filter=id eq '…' [or id eq '…'])`: the ids; undefined without $expand. */
function parseExpand(q: Query): string[] | undefined {
  const v = q.get('$expand');
  if (v === undefined) return undefined;
  const m = /^\s*singleValueExtendedProperties\s*(?:\((.*)\))?\s*$/i.exec(v);
  if (!m) throw E.badBody(`Parsing OData Select and Expand failed: Could not find a property named '${v.split('(')[0]}' on type 'microsoft.graph.event'.`);
  const ids: string[] = [];
  for (const hit of (m[1] ?? '').matchAll(/id\s+eq\s+'((?:[^']|'')*)'/gi)) {
    const id = hit[1]!.replace(/''/g, "'");
    // A malformed id is refused here too (public issue threads show ErrorInvalidProperty for an $expand filter).
    requireExtPropKey(id);
    ids.push(id);
  }
  return ids;
}

function parseSelect(q: Query): string[] | undefined {
  const v = q.get('$select');
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean);
}

/** The $filter forms the emulator understands (the ones a sync engine uses to find its own events). */
function parseFilter(q: Query): ((i: Instance) => boolean) | undefined {
  const raw = q.get('$filter');
  if (raw === undefined) return undefined;
  const preds: ((i: Instance) => boolean)[] = [];
  // singleValueExtendedProperties/Any(ep: ep/id eq '…' [and <value test>]) ("Get singleValueLegacyExtendedProperty"): the
  // id as extPropKey tells properties apart (the Name with its case); for a string property the value test is eq, ne,
  // contains(ep/value, '…') or startswith(ep/value, '…'), and "Filtering the value property … is case-insensitive".
  const lit = "'((?:[^']|'')*)'";
  const valueTest = `(?:\\1\\/value\\s+(eq|ne)\\s+${lit}|(contains|startswith)\\(\\s*\\1\\/value\\s*,\\s*${lit}\\s*\\))`;
  const any = new RegExp(`singleValueExtendedProperties\\/any\\(\\s*(\\w+)\\s*:\\s*\\1\\/id\\s+eq\\s+${lit}(?:\\s+and\\s+${valueTest})?\\s*\\)`, 'gi');
  let rest = raw.replace(any, (_all, _v: string, id: string, cmp: string | undefined, cmpValue: string | undefined, fn: string | undefined, fnValue: string | undefined) => {
    const key = requireExtPropKey(id.replace(/''/g, "'"));
    const want = (cmpValue ?? fnValue)?.replace(/''/g, "'").toLowerCase();
    const op = (cmp ?? fn)?.toLowerCase();
    preds.push((i) => {
      const props = (i.fields['singleValueExtendedProperties'] as ExtendedProperty[] | undefined) ?? [];
      const p = props.find((x) => extPropKeyOf(x.id) === key);
      if (!p) return false;
      if (want === undefined) return true;
      const v = p.value.toLowerCase();
      return op === 'eq' ? v === want : op === 'ne' ? v !== want : op === 'contains' ? v.includes(want) : v.startsWith(want);
    });
    return ' __any__ ';
  });
  rest = rest.trim();
  for (const clause of rest.split(/\s+and\s+/i).map((s) => s.trim()).filter((s) => s !== '' && s !== '__any__')) {
    const m = /^(subject|iCalUId|type|showAs|id|seriesMasterId)\s+eq\s+'((?:[^']|'')*)'$/i.exec(clause);
    const b = /^(isCancelled|isOrganizer|isAllDay)\s+eq\s+(true|false)$/i.exec(clause);
    if (m) {
      const prop = m[1]!.toLowerCase();
      const value = m[2]!.replace(/''/g, "'");
      preds.push((i) => {
        switch (prop) {
          case 'subject':
            return i.fields['subject'] === value;
          case 'icaluid':
            return i.iCalUId === value;
          case 'type':
            return i.type === value;
          case 'showas':
            return i.fields['showAs'] === value;
          case 'id':
            return i.id === value;
          default:
            return i.master?.id === value;
        }
      });
    } else if (b) {
      const prop = b[1]!;
      const want = b[2]!.toLowerCase() === 'true';
      preds.push((i) => (prop.toLowerCase() === 'isallday' ? i.timing.isAllDay : i.fields[prop.charAt(0).toLowerCase() + prop.slice(1)]) === want);
    } else {
      throw new E.GraphApiError(400, 'BadRequest', `Invalid filter clause: '${clause}' (the emulator supports singleValueExtendedProperties/Any(...), and eq on subject, iCalUId, type, showAs, id, seriesMasterId, isCancelled, isOrganizer, isAllDay).`);
    }
  }
  return (i) => preds.every((p) => p(i));
}

export async function startGraphEmulator(opts: GraphEmulatorOptions): Promise<GraphEmulator> {
  const clock = opts.clock;
  const host = opts.host ?? '127.0.0.1';
  const faults = new Faults();
  const requests: RecordedRequest[] = [];
  const attendeeUpdates: AttendeeUpdate[] = [];
  const sentMail: SentMail[] = [];
  const scheduleFailures = new Map<string, ScheduleFailure>();
  const todo = new TodoStore(clock);
  let requestHook: RequestHook | null = null;
  let graphSeq = 0;
  /** Answers that must not go out (a dropAfter fault or a hook's 'drop' at 'after'): the socket is destroyed instead. */
  const lostReplies = new WeakSet<http.ServerResponse>();
  const identity = new IdentityServer(clock, CLIENT_ID, CLIENT_SECRET, await loadSigningKey());
  const owner = (oid: string): { name: string; address: string } => {
    const u = identity.user(oid);
    return { name: u.displayName, address: u.upn };
  };
  const store = new GraphStore(clock, owner, (change) => hub.notify(change, identity.user(change.oid).tid));
  const hub: SubscriptionHub = new SubscriptionHub(clock, {
    clientId: CLIENT_ID,
    duplicates: opts.duplicates ?? 1,
    validationTimeoutMs: opts.validationTimeoutMs ?? 10_000,
    notificationTimeoutMs: opts.notificationTimeoutMs ?? 3_000,
    resolveResource: (oid, resource) => resolveResource(oid, resource),
  });
  const deltaSessions = new Map<string, DeltaSession>();
  /** Tasks delta: token → the round's state (deltaLink) or the rest of the round (nextLink). */
  const taskDeltaSessions = new Map<string, { oid: string; listId: string; state: TaskDeltaState; remaining?: Json[]; expand: boolean; select?: string[] | undefined; size: number; expired?: boolean }>();
  let baseUrl = '';

  function resolveResource(oid: string, resource: string): { calendarId: string } | 'unsupported' | undefined {
    const r = resource.trim().replace(/^\/+/, '');
    const m = /^(me|users\/([^/]+))\/(events|calendar\/events|calendars\/([^/]+)\/events|calendars\('([^']+)'\)\/events)$/i.exec(r);
    if (!m) return 'unsupported';
    if (m[2] !== undefined) {
      const u = identity.users.get(m[2]) ?? identity.userByUpn(m[2]);
      if (!u || u.oid !== oid) return undefined;
    }
    const calId = m[4] ?? m[5];
    if (calId === undefined) return { calendarId: store.defaultCalendar(oid).id };
    const cal = store.calendarFor(oid, calId);
    return cal ? { calendarId: cal.id } : undefined;
  }

  // ---- responses -------------------------------------------------------------------------------------------

  function send(res: http.ServerResponse, rec: RecordedRequest, status: number, body: unknown, headers: Record<string, string>, contentType = JSON_TYPE): void {
    if (lostReplies.has(res)) {
      res.socket?.destroy();
      return;
    }
    const data = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const h: Record<string, string | number> = { ...headers, 'Content-Length': Buffer.byteLength(data) };
    if (body !== undefined) h['Content-Type'] = contentType;
    res.writeHead(status, h);
    res.end(data);
    rec.status = status;
    rec.responseBytes = Buffer.byteLength(data);
  }

  function graphHeaders(ctx: GraphCtx): Record<string, string> {
    const h: Record<string, string> = {
      'request-id': ctx.requestId,
      'client-request-id': ctx.clientRequestId,
      'x-ms-ags-diagnostic': '{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"EMU"}}',
      'Cache-Control': 'no-cache',
    };
    if (ctx.prefs.applied.length > 0) h['Preference-Applied'] = ctx.prefs.applied.join(', ');
    return h;
  }

  function sendGraphError(res: http.ServerResponse, rec: RecordedRequest, ctx: GraphCtx, err: E.GraphApiError): void {
    const headers = { ...graphHeaders(ctx), ...err.headers };
    delete headers['Preference-Applied'];
    if (err.status === 401) {
      headers['WWW-Authenticate'] =
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"';
    }
    const innerError = { date: clock.now().toUTC().toFormat("yyyy-MM-dd'T'HH:mm:ss"), 'request-id': ctx.requestId, 'client-request-id': ctx.clientRequestId };
    send(res, rec, err.status, err.body(innerError), headers);
  }

  function sendAadError(res: http.ServerResponse, rec: RecordedRequest, err: E.AadError): void {
    const correlationId = rec.headers['client-request-id'] ?? crypto.randomUUID();
    const timestamp = clock.now().toUTC().toFormat('yyyy-MM-dd HH:mm:ss') + 'Z';
    send(res, rec, err.status, err.body(timestamp, correlationId), { ...err.headers, 'Cache-Control': 'no-store, no-cache', Pragma: 'no-cache' }, 'application/json; charset=utf-8');
  }

  function faultError(fault: Fault, endpoint: Endpoint): E.GraphApiError | E.AadError {
    if ('invalidGrant' in fault) {
      const o: { suberror?: string } = {};
      if (fault.suberror !== undefined) o.suberror = fault.suberror;
      return E.invalidGrant(fault.aadsts ?? 70008, o);
    }
    if (!('status' in fault)) throw new Error('unreachable fault');
    const retryAfter = 'retryAfter' in fault && fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : undefined;
    if (endpoint !== 'graph') {
      switch (fault.status) {
        case 401:
        case 403:
          return E.invalidClient(CLIENT_ID);
        case 410:
          return E.invalidGrant(70008);
        case 429:
          return new E.AadError(429, 'temporarily_unavailable', undefined, 'The request was throttled. Retry later.', retryAfter ? { headers: retryAfter } : {});
        default:
          return new E.AadError(fault.status, 'temporarily_unavailable', 90033, 'A transient error has occurred. Please try again.');
      }
    }
    switch (fault.status) {
      case 401:
        return E.expiredToken();
      case 403:
        return E.accessDenied();
      case 410:
        return E.syncStateNotFound();
      case 429:
        return E.throttled('retryAfter' in fault ? fault.retryAfter : undefined);
      default:
        return E.serverError(fault.status);
    }
  }

  function parseJson(body: Buffer): Json {
    if (body.length === 0) throw E.badBody();
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw E.badBody('Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
    }
    if (!isObject(parsed)) throw E.badBody('Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
    return parsed;
  }

  // ---- Graph -----------------------------------------------------------------------------------------------

  function pageSize(q: Query, prefs: Prefs, defaultSize = DEFAULT_PAGE): number {
    const top = q.get('$top');
    if (top !== undefined) {
      if (!/^\d+$/.test(top) || Number(top) < 1) throw E.badBody(`Invalid value '${top}' for $top query option found.`);
      return Math.min(Number(top), MAX_PAGE);
    }
    return prefs.maxPageSize ?? defaultSize;
  }

  function skipOf(q: Query): number {
    const skip = q.get('$skip');
    if (skip === undefined) return 0;
    if (!/^\d+$/.test(skip)) throw E.badBody(`Invalid value '${skip}' for $skip query option found.`);
    return Number(skip);
  }

  /** One page of a collection with @odata.nextLink carrying $skip (and the other query options). */
  function collection(items: Json[], q: Query, prefs: Prefs, context: string, linkPath: string, defaultSize = DEFAULT_PAGE): Json {
    const size = pageSize(q, prefs, defaultSize);
    const offset = skipOf(q);
    const page = items.slice(offset, offset + size);
    const out: Json = { '@odata.context': context };
    if (offset + page.length < items.length) {
      const params = new URLSearchParams();
      for (const [k, v] of q) if (k !== '$skip') params.set(k === 'startdatetime' ? 'startDateTime' : k === 'enddatetime' ? 'endDateTime' : k, v);
      params.set('$skip', String(offset + page.length));
      out['@odata.nextLink'] = `${PUBLIC_GRAPH}/${linkPath}?${params.toString().replace(/%24/g, '$')}`;
    }
    out['value'] = page;
    return out;
  }

  function renderCalendar(c: Calendar): Json {
    const o = owner(c.oid);
    return {
      id: c.id,
      name: c.name,
      color: c.color,
      hexColor: c.hexColor,
      isDefaultCalendar: c.isDefault,
      changeKey: c.changeKey,
      canShare: c.isDefault && c.canEdit,
      canViewPrivateItems: true,
      canEdit: c.canEdit,
      allowedOnlineMeetingProviders: ['teamsForBusiness'],
      defaultOnlineMeetingProvider: 'teamsForBusiness',
      isTallyingResponses: true,
      isRemovable: !c.isDefault,
      owner: { name: o.name, address: o.address },
    };
  }

  function renderOpts(prefs: Prefs, q: Query): RenderOptions {
    const r: RenderOptions = { out: prefs.out };
    const ext = parseExpand(q);
    if (ext !== undefined) r.extPropIds = ext;
    return r;
  }

  function windowOf(q: Query): { from: DateTime; to: DateTime } {
    const s = q.get('startdatetime');
    const e = q.get('enddatetime');
    if (s === undefined || e === undefined || s === '' || e === '') throw E.windowRequired();
    const from = parseQueryInstant(s);
    if (!from) throw E.invalidParameter(`The value '${s}' of parameter 'StartDateTime' is invalid.`);
    const to = parseQueryInstant(e);
    if (!to) throw E.invalidParameter(`The value '${e}' of parameter 'EndDateTime' is invalid.`);
    return { from, to };
  }

  function renderDelta(entries: DeltaEntry[], out: OutputZone): Json[] {
    return entries.map((e) => {
      if ('removed' in e) return removedItem(e.removed);
      return e.inst.type === 'occurrence' ? renderStub(e.inst, { out }) : renderEvent(e.inst, { out, odataType: true });
    });
  }

  /** calendarView/delta (event-delta.md, delta-query-events.md): a round paged by $skiptoken, ended by a $deltatoken link. */
  function delta(user: User, prefix: string, q: Query, prefs: Prefs): Json {
    const unsupported = ['$select', '$expand', '$filter', '$orderby', '$search'].filter((k) => q.has(k));
    if (unsupported.length > 0) throw E.unsupportedDeltaQuery(unsupported);
    const size = prefs.maxPageSize ?? DEFAULT_PAGE;
    const skip = q.get('$skiptoken');
    const dtok = q.get('$deltatoken');
    let session: DeltaSession;
    let items: Json[];
    if (skip !== undefined) {
      const s = deltaSessions.get(skip);
      if (!s || s.expired || s.remaining === undefined || s.oid !== user.oid) throw E.syncStateNotFound();
      session = s;
      items = s.remaining;
    } else {
      let since: DeltaState | undefined;
      let from: DateTime;
      let to: DateTime;
      let calendarId: string;
      if (dtok !== undefined) {
        const s = deltaSessions.get(dtok);
        if (!s || s.expired || s.remaining !== undefined || s.oid !== user.oid) throw E.syncStateNotFound();
        since = s.state;
        ({ from, to, calendarId } = s);
      } else {
        ({ from, to } = windowOf(q));
        calendarId = store.defaultCalendar(user.oid).id;
      }
      const round = store.deltaRound(user.oid, calendarId, from, to, since);
      items = renderDelta(round.entries, prefs.out);
      session = { oid: user.oid, calendarId, prefix, from, to, expired: false, state: round.state };
    }
    const page = items.slice(0, size);
    const rest = items.slice(size);
    const out: Json = { '@odata.context': `${PUBLIC_GRAPH}/$metadata#Collection(event)` };
    if (rest.length > 0) {
      const t = token();
      deltaSessions.set(t, { ...session, remaining: rest });
      out['@odata.nextLink'] = `${PUBLIC_GRAPH}/${prefix}/calendarView/delta?$skiptoken=${t}`;
    } else {
      const t = token();
      const { remaining: _drop, ...final } = session;
      deltaSessions.set(t, final);
      out['@odata.deltaLink'] = `${PUBLIC_GRAPH}/${prefix}/calendarView/delta?$deltatoken=${t}`;
    }
    out['value'] = page;
    return out;
  }

  function calendarView(user: User, calendarId: string, linkPath: string, q: Query, prefs: Prefs): Json {
    const { from, to } = windowOf(q);
    const filter = parseFilter(q);
    const ro = renderOpts(prefs, q);
    const select = parseSelect(q);
    const items = store
      .window(user.oid, calendarId, from, to)
      .filter((i) => !filter || filter(i))
      .map((i) => project(renderEvent(i, ro), select));
    return collection(items, q, prefs, `${PUBLIC_GRAPH}/$metadata#users('${user.oid}')/calendarView`, linkPath);
  }

  /** Records the mail an organizer's request on a meeting sends to its attendees (see AttendeeUpdate). */
  function attendeeMail(ctx: GraphCtx, user: User, inst: Instance, kind: AttendeeMailKind): void {
    if (inst.fields['isOrganizer'] !== true) return;
    const attendees = Array.isArray(inst.fields['attendees']) ? (inst.fields['attendees'] as Json[]) : [];
    const to = attendees
      .map((a) => String((a['emailAddress'] as Json | undefined)?.['address'] ?? ''))
      .filter((addr) => addr !== '' && addr.toLowerCase() !== user.upn.toLowerCase());
    if (to.length === 0) return;
    ctx.rec.attendeeUpdate = true;
    attendeeUpdates.push({ eventId: inst.id, kind, to, at: clock.now().toUTC().toISO() ?? '' });
  }

  // ---- Microsoft To Do ---------------------------------------------------------------------------------------

  /** `$expand=linkedResources` (the only navigation the emulator expands on a task). */
  function taskExpand(q: Query): boolean {
    const v = q.get('$expand');
    if (v === undefined) return false;
    const parts = v.split(',').map((x) => x.trim()).filter(Boolean);
    for (const p of parts) {
      if (!/^linkedResources$/i.test(p)) throw E.badBody(`Parsing OData Select and Expand failed: Could not find a property named '${p.split('(')[0]}' on type 'microsoft.graph.todoTask'.`);
    }
    return parts.length > 0;
  }

  function taskProject(item: Json, select: string[] | undefined): Json {
    if (select === undefined || select.length === 0) return item;
    const wanted = new Set(select.map((x) => x.toLowerCase()));
    const out: Json = {};
    for (const [k, v] of Object.entries(item)) if (k.startsWith('@odata.') || k === 'id' || k === 'linkedResources' || wanted.has(k.toLowerCase())) out[k] = v;
    return out;
  }

  /** tasks/delta (todotask-delta.md): $select, $top and $expand honoured; a round paged by $skiptoken, ended by $deltatoken. */
  function taskDelta(user: User, prefix: string, listId: string, q: Query, prefs: Prefs): Json {
    const unsupported = ['$filter', '$orderby', '$search'].filter((k) => q.has(k));
    if (unsupported.length > 0) throw new E.GraphApiError(400, 'BadRequest', `The query option(s) '${unsupported.join(', ')}' are not supported on todoTask delta by the emulator.`);
    const skip = q.get('$skiptoken');
    const dtok = q.get('$deltatoken');
    let session: { oid: string; listId: string; state: TaskDeltaState; remaining?: Json[]; expand: boolean; select?: string[] | undefined; size: number };
    let items: Json[];
    if (skip !== undefined) {
      const s = taskDeltaSessions.get(skip);
      if (!s || s.expired || s.remaining === undefined || s.oid !== user.oid || s.listId !== listId) throw E.syncStateNotFound();
      session = s;
      items = s.remaining;
    } else {
      let since: TaskDeltaState | undefined;
      let expand = taskExpand(q);
      let select = parseSelect(q);
      let size = pageSize(q, prefs, TASK_PAGE);
      if (dtok !== undefined) {
        const s = taskDeltaSessions.get(dtok);
        if (!s || s.expired || s.remaining !== undefined || s.oid !== user.oid || s.listId !== listId) throw E.syncStateNotFound();
        since = s.state;
        ({ expand, select, size } = s);
      }
      const round = todo.deltaRound(user.oid, listId, since);
      items = [
        ...round.removed.map((id) => ({ '@odata.type': '#microsoft.graph.todoTask', id, '@removed': { reason: 'deleted' } })),
        ...round.changed.map((t) => taskProject(renderTask(t, { expandLinked: expand, odataType: true }), select)),
      ];
      session = { oid: user.oid, listId, state: round.state, expand, select, size };
    }
    const page = items.slice(0, session.size);
    const rest = items.slice(session.size);
    const out: Json = { '@odata.context': `${PUBLIC_GRAPH}/$metadata#Collection(todoTask)` };
    const t = token();
    if (rest.length > 0) {
      taskDeltaSessions.set(t, { ...session, remaining: rest });
      out['@odata.nextLink'] = `${PUBLIC_GRAPH}/${prefix}/todo/lists/${encodeURIComponent(listId)}/tasks/delta?$skiptoken=${t}`;
    } else {
      const { remaining: _drop, ...final } = session;
      taskDeltaSessions.set(t, final);
      out['@odata.deltaLink'] = `${PUBLIC_GRAPH}/${prefix}/todo/lists/${encodeURIComponent(listId)}/tasks/delta?$deltatoken=${t}`;
    }
    out['value'] = page;
    return out;
  }

  /** /me/todo/...: lists, tasks, linkedResources (todotasklist.md, todotask.md, linkedresource.md). */
  function handleTodo(user: User, scopes: string[], prefix: string, segs: string[], method: string, q: Query, body: Buffer, prefs: Prefs): { status: number; body?: unknown } {
    const read = (): void => {
      if (!hasAny(scopes, TASK_READ_SCOPES)) throw E.accessDenied();
    };
    const write = (): void => {
      if (!hasAny(scopes, TASK_WRITE_SCOPES)) throw E.accessDenied();
    };
    const [s0, listId, s2, taskId, s4, lrId] = segs;
    const base = `${PUBLIC_GRAPH}/$metadata#users('${user.oid}')/todo`;
    if (s0 !== 'lists') throw E.segmentNotFound(s0 ?? 'todo');
    if (listId === undefined) {
      if (method === 'GET') {
        read();
        const items = todo.listsOf(user.oid).map(renderList);
        return { status: 200, body: collection(items, q, prefs, `${base}/lists`, `${prefix}/todo/lists`, LIST_PAGE) };
      }
      if (method === 'POST') {
        write();
        return { status: 201, body: { '@odata.context': `${base}/lists/$entity`, '@odata.type': '#microsoft.graph.todoTaskList', ...renderList(todo.createList(user.oid, parseJson(body))) } };
      }
      throw E.segmentNotFound('lists');
    }
    if (s2 === undefined) {
      read();
      if (method !== 'GET') throw new E.GraphApiError(405, 'MethodNotAllowed', `The emulator does not serve ${method} on a task list.`);
      return { status: 200, body: { '@odata.context': `${base}/lists/$entity`, ...renderList(todo.list(user.oid, listId)) } };
    }
    if (s2 !== 'tasks') throw E.segmentNotFound(s2);
    const tasksPath = `${prefix}/todo/lists/${encodeURIComponent(listId)}/tasks`;
    const taskContext = `${base}/lists('${listId}')/tasks/$entity`;
    if (taskId === undefined) {
      if (method === 'GET') {
        read();
        const filter = parseTaskFilter(q.get('$filter'));
        const expand = taskExpand(q);
        const select = parseSelect(q);
        if (q.has('$orderby') || q.has('$search')) throw new E.GraphApiError(400, 'BadRequest', 'The emulator supports $filter, $expand, $select, $top and $skip on tasks.');
        const items = todo
          .tasksOf(user.oid, listId)
          .filter((t) => !filter || filter(t))
          .map((t) => taskProject(renderTask(t, { expandLinked: expand }), select));
        return { status: 200, body: collection(items, q, prefs, `${base}/lists('${listId}')/tasks`, tasksPath, TASK_PAGE) };
      }
      if (method === 'POST') {
        write();
        const t = todo.createTask(user.oid, listId, parseJson(body));
        // The Create page's response shows the linkedResources created with the task.
        return { status: 201, body: { '@odata.context': taskContext, ...renderTask(t, { expandLinked: t.linkedResources.length > 0 }) } };
      }
      throw E.segmentNotFound('tasks');
    }
    if (taskId === 'delta' && s4 === undefined) {
      read();
      if (method !== 'GET') throw E.segmentNotFound('delta');
      todo.list(user.oid, listId);
      return { status: 200, body: taskDelta(user, prefix, listId, q, prefs) };
    }
    if (s4 === undefined) {
      if (method === 'GET') {
        read();
        const t = todo.task(user.oid, listId, taskId);
        return { status: 200, body: { '@odata.context': taskContext, ...taskProject(renderTask(t, { expandLinked: taskExpand(q) }), parseSelect(q)) } };
      }
      if (method === 'PATCH') {
        write();
        const t = todo.updateTask(user.oid, listId, taskId, parseJson(body));
        return { status: 200, body: { '@odata.context': taskContext, ...renderTask(t) } };
      }
      if (method === 'DELETE') {
        write();
        todo.deleteTask(user.oid, listId, taskId);
        return { status: 204 };
      }
      throw E.segmentNotFound(taskId);
    }
    if (s4 !== 'linkedResources') throw E.segmentNotFound(s4);
    const lrContext = `${base}/lists('${listId}')/tasks('${taskId}')/linkedResources`;
    if (lrId === undefined) {
      if (method === 'GET') {
        read();
        const items = todo.task(user.oid, listId, taskId).linkedResources.map(renderLinkedResource);
        return { status: 200, body: collection(items, q, prefs, lrContext, `${tasksPath}/${encodeURIComponent(taskId)}/linkedResources`) };
      }
      if (method === 'POST') {
        write();
        return { status: 201, body: { '@odata.context': `${lrContext}/$entity`, ...renderLinkedResource(todo.addLinkedResource(user.oid, listId, taskId, parseJson(body))) } };
      }
      throw E.segmentNotFound('linkedResources');
    }
    const t = todo.task(user.oid, listId, taskId);
    const r = t.linkedResources.find((x) => x.id === lrId);
    if (!r) throw E.itemNotFound();
    if (method === 'GET') {
      read();
      return { status: 200, body: { '@odata.context': `${lrContext}/$entity`, ...renderLinkedResource(r) } };
    }
    if (method === 'DELETE') {
      write();
      t.linkedResources = t.linkedResources.filter((x) => x.id !== lrId);
      return { status: 204 };
    }
    throw E.segmentNotFound(lrId);
  }

  /** POST /me/sendMail (user-sendmail.md, JSON): 202 Accepted, no body; the message kept for sentMail(). */
  function handleSendMail(user: User, scopes: string[], method: string, body: Buffer, req: http.IncomingMessage): { status: number; body?: unknown } {
    if (method !== 'POST') throw E.segmentNotFound('sendMail');
    if (!hasAny(scopes, MAIL_SEND_SCOPES)) throw E.accessDenied();
    if (body.length > SENDMAIL_MAX_BYTES) {
      throw new E.GraphApiError(413, 'RequestEntityTooLarge', `The request is larger than ${SENDMAIL_MAX_BYTES} bytes: attach large files through an upload session.`);
    }
    if (/^text\/plain/i.test(String(req.headers['content-type'] ?? ''))) {
      // The MIME form (user-sendmail.md, Example 4) is not emulated; its base64 check is, as the page documents it.
      const text = body.toString('utf8').replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new E.GraphApiError(400, 'ErrorMimeContentInvalidBase64String', 'Invalid base64 string for MIME content.');
      throw new E.GraphApiError(400, 'BadRequest', 'The emulator does not accept MIME content for sendMail; send JSON.');
    }
    sentMail.push(parseSendMail(parseJson(body), { name: user.displayName, address: user.upn }, user.oid, clock.now().toUTC().toISO() ?? ''));
    return { status: 202 };
  }

  function eventContext(user: User): string {
    return `${PUBLIC_GRAPH}/$metadata#users('${user.oid}')/events/$entity`;
  }

  async function handleGraph(method: string, segs: string[], q: Query, body: Buffer, req: http.IncomingMessage, ctx: GraphCtx): Promise<{ status: number; body?: unknown }> {
    const auth = identity.authenticate(req.headers.authorization);
    const user = auth.user;
    const scopes = auth.scopes;
    const canRead = (): void => {
      if (!hasAny(scopes, READ_SCOPES)) throw E.accessDenied();
    };
    const canWrite = (): void => {
      if (!hasAny(scopes, WRITE_SCOPES)) throw E.accessDenied();
    };
    const prefs = ctx.prefs;

    if (segs[0] === 'subscriptions') {
      canRead();
      const id = segs[1];
      if (segs.length === 1 && method === 'POST') return { status: 201, body: await hub.create(user, parseJson(body)) };
      if (segs.length === 1 && method === 'GET') return { status: 200, body: { '@odata.context': `${PUBLIC_GRAPH}/$metadata#subscriptions`, value: hub.listFor(user.oid) } };
      if (segs.length === 2 && id !== undefined) {
        if (method === 'GET') return { status: 200, body: hub.get(user.oid, id) };
        if (method === 'PATCH') return { status: 200, body: hub.patch(user.oid, id, parseJson(body)) };
        if (method === 'DELETE') {
          hub.delete(user.oid, id);
          return { status: 204 };
        }
      }
      if (segs.length === 3 && id !== undefined && segs[2] === 'reauthorize' && method === 'POST') {
        hub.reauthorize(user.oid, id);
        return { status: 204 };
      }
      throw E.segmentNotFound(segs.slice(1).join('/') || 'subscriptions');
    }

    let rest: string[];
    let prefix: string;
    if (segs[0] === 'me') {
      rest = segs.slice(1);
      prefix = 'me';
    } else if (segs[0] === 'users' && segs[1] !== undefined) {
      const target = identity.users.get(segs[1]) ?? identity.userByUpn(segs[1]);
      if (!target || target.oid !== user.oid) throw E.accessDenied();
      rest = segs.slice(2);
      prefix = `users/${segs[1]}`;
    } else {
      throw E.segmentNotFound(segs[0] ?? '');
    }

    if (rest.length === 0 && method === 'GET') {
      if (!hasAny(scopes, PROFILE_SCOPES)) throw E.accessDenied();
      return {
        status: 200,
        body: {
          '@odata.context': `${PUBLIC_GRAPH}/$metadata#users/$entity`,
          businessPhones: [],
          displayName: user.displayName,
          givenName: null,
          jobTitle: null,
          mail: user.upn,
          mobilePhone: null,
          officeLocation: null,
          preferredLanguage: null,
          surname: null,
          userPrincipalName: user.upn,
          id: user.oid,
        },
      };
    }

    if (rest[0] === 'mailboxSettings' && method === 'GET' && rest.length <= 2) {
      if (!hasAny(scopes, MAILBOX_SETTINGS_SCOPES)) throw E.accessDenied();
      // The reference's example answers a property read as {"@odata.context": …/mailboxSettings/timeZone, "value": "Pacific Standard Time"}.
      const context = `${PUBLIC_GRAPH}/$metadata#users('${user.oid}')/mailboxSettings`;
      const zone = user.timeZone;
      if (rest[1] === 'timeZone') return { status: 200, body: { '@odata.context': `${context}/timeZone`, value: zone } };
      if (rest[1] !== undefined) throw E.segmentNotFound(rest[1]);
      return { status: 200, body: { '@odata.context': context, timeZone: zone, dateFormat: 'M/d/yyyy', timeFormat: 'h:mm tt', workingHours: { daysOfWeek: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'], startTime: '08:00:00.0000000', endTime: '17:00:00.0000000', timeZone: { name: zone } } } };
    }
    if (rest[0] === 'todo') return handleTodo(user, scopes, prefix, rest.slice(1), method, q, body, prefs);
    if (rest[0] === 'sendMail' && rest.length === 1) return handleSendMail(user, scopes, method, body, req);

    // Which calendar a path names: /calendar (the default), /calendars/{id}, or none (/events, /calendarView).
    const [a, b] = rest;
    let calendar: Calendar | undefined;
    let tail: (string | undefined)[];
    if (a === 'calendar') {
      calendar = store.defaultCalendar(user.oid);
      tail = rest.slice(1);
    } else if (a === 'calendars' && b !== undefined) {
      calendar = store.calendarFor(user.oid, b);
      if (!calendar) {
        canRead();
        throw E.itemNotFound();
      }
      tail = rest.slice(2);
    } else if (a === 'calendars' && b === undefined) {
      canRead();
      if (method !== 'GET') throw E.segmentNotFound('calendars');
      const items = store.calendarsOf(user.oid).map(renderCalendar);
      return { status: 200, body: collection(items, q, prefs, `${PUBLIC_GRAPH}/$metadata#users('${user.oid}')/calendars`, `${prefix}/calendars`) };
    } else {
      tail = rest;
    }
    const calPath = calendar ? (a === 'calendar' ? `${prefix}/calendar` : `${prefix}/calendars/${b}`) : prefix;
    const [t0, t1, t2] = tail;

    if (calendar && tail.length === 0) {
      canRead();
      if (method !== 'GET') throw E.segmentNotFound(a ?? '');
      return { status: 200, body: { '@odata.context': `${PUBLIC_GRAPH}/$metadata#users('${user.oid}')/calendars/$entity`, ...renderCalendar(calendar) } };
    }
    // calendar-getschedule.md: POST /me/calendar/getSchedule or /users/{id}/calendar/getSchedule (a function bound to the
    // calendar type, so any calendar's path reaches it; the answer is the mailboxes' default calendars whatever the path).
    if (calendar && t0 === 'getSchedule' && tail.length === 1 && method === 'POST') {
      canRead();
      const deps = { store, userByUpn: (address: string) => identity.userByUpn(address), failures: scheduleFailures, context: `${PUBLIC_GRAPH}/$metadata#Collection(microsoft.graph.scheduleInformation)` };
      return { status: 200, body: getSchedule(deps, user, parseJson(body), prefs.out) };
    }
    if (t0 === 'calendarView') {
      canRead();
      if (method !== 'GET') throw E.segmentNotFound('calendarView');
      if (tail.length === 2 && t1 === 'delta') {
        if (calendar && !calendar.isDefault) {
          throw new E.GraphApiError(400, 'BadRequest', 'calendarView/delta of a calendar other than the default one is not available in v1.0 (emulator).');
        }
        return { status: 200, body: delta(user, prefix, q, prefs) };
      }
      if (tail.length !== 1) throw E.segmentNotFound(String(t1));
      return { status: 200, body: calendarView(user, (calendar ?? store.defaultCalendar(user.oid)).id, `${calPath}/calendarView`, q, prefs) };
    }
    if (t0 !== 'events') throw E.segmentNotFound(String(t0 ?? a));
    const calId = (calendar ?? store.defaultCalendar(user.oid)).id;

    if (tail.length === 1) {
      if (method === 'GET') {
        canRead();
        const filter = parseFilter(q);
        const ro = renderOpts(prefs, q);
        const select = parseSelect(q);
        const items = store
          .list(user.oid, calId)
          .filter((i) => !filter || filter(i))
          .map((i) => project(renderEvent(i, ro), select));
        return { status: 200, body: collection(items, q, prefs, `${PUBLIC_GRAPH}/$metadata#users('${user.oid}')/events`, `${calPath}/events`) };
      }
      if (method === 'POST') {
        canWrite();
        const parsed = parseJson(body);
        const known = typeof parsed['transactionId'] === 'string' && [...store.records.values()].some((r) => r.oid === user.oid && r.fields['transactionId'] === parsed['transactionId']);
        const inst = store.create(user.oid, calId, parsed, 'api');
        // An organizer's new meeting goes out to its attendees as an invitation (not again for a repeated transactionId).
        if (!known) attendeeMail(ctx, user, inst, 'invitation');
        ctx.prefs.applied = ctx.prefs.applied.filter((p) => !p.startsWith('outlook.timezone'));
        return { status: 201, body: { '@odata.context': eventContext(user), ...renderEvent(inst, { out: prefs.out, ownZones: true }) } };
      }
      throw E.segmentNotFound('events');
    }

    const eventId = t1!;
    const inCalendar = (i: Instance | undefined): Instance => {
      if (!i || (calendar && i.calendarId !== calendar.id)) throw E.itemNotFound();
      return i;
    };
    /**
     * A conditional write: If-Match names the version read (the event's @odata.etag, W/"<changeKey>"), and a stale one is
     * refused with 412 ErrorIrresolvableConflict (E.irresolvableConflict). "*" matches any existing item; a W/ prefix
     * is ignored (weak comparison), so the bare quoted changeKey matches too.
     */
    const ifMatch = (inst: Instance): void => {
      const header = req.headers['if-match'];
      if (header === undefined) return;
      const weak = (tag: string): string => tag.trim().replace(/^W\//, '');
      const wanted = (Array.isArray(header) ? header.join(',') : header).split(',').map((t) => t.trim()).filter(Boolean);
      if (!wanted.some((t) => t === '*' || weak(t) === `"${inst.changeKey}"`)) throw E.irresolvableConflict();
    };
    if (tail.length === 2) {
      if (method === 'GET') {
        canRead();
        const inst = inCalendar(store.resolve(user.oid, eventId));
        return { status: 200, body: { '@odata.context': eventContext(user), ...project(renderEvent(inst, renderOpts(prefs, q)), parseSelect(q)) } };
      }
      if (method === 'PATCH') {
        canWrite();
        const before = inCalendar(store.resolve(user.oid, eventId));
        ifMatch(before);
        const inst = store.update(user.oid, eventId, parseJson(body), 'api');
        // An organizer's update of a meeting goes out to its attendees (event-update.md; API-NOTES: Graph has no
        // sendUpdates=none, and a PATCH of only an extended property is treated as visible too). A PATCH that changed
        // nothing is not counted (emulator's choice: nothing to tell anyone), though the item is saved as any PATCH.
        const attendees = (i: Instance): number => (Array.isArray(i.fields['attendees']) ? i.fields['attendees'].length : 0);
        if (before.fields['isOrganizer'] === true && (attendees(before) > 0 || attendees(inst) > 0) && contentSnapshot(before) !== contentSnapshot(inst)) {
          // Attendees removed by this PATCH hear of it too: the update goes to those before and after.
          const merged = { ...inst, fields: { ...inst.fields, attendees: [...((before.fields['attendees'] as Json[] | undefined) ?? []), ...((inst.fields['attendees'] as Json[] | undefined) ?? [])] } };
          const seen = new Set<string>();
          merged.fields.attendees = merged.fields.attendees.filter((x) => {
            const addr = String((x['emailAddress'] as Json | undefined)?.['address'] ?? '').toLowerCase();
            if (seen.has(addr)) return false;
            seen.add(addr);
            return true;
          });
          attendeeMail(ctx, user, merged, 'update');
        }
        ctx.prefs.applied = ctx.prefs.applied.filter((p) => !p.startsWith('outlook.timezone'));
        return { status: 200, body: { '@odata.context': eventContext(user), ...renderEvent(inst, { out: prefs.out, ownZones: true }) } };
      }
      if (method === 'DELETE') {
        canWrite();
        const gone = inCalendar(store.resolve(user.oid, eventId));
        ifMatch(gone);
        store.remove(user.oid, eventId, 'api');
        // "Delete event": deleting a meeting on the organizer's calendar sends the attendees a cancellation.
        attendeeMail(ctx, user, gone, 'cancellation');
        return { status: 204 };
      }
      throw E.segmentNotFound(eventId);
    }
    if (tail.length === 3 && t2 === 'instances' && method === 'GET') {
      canRead();
      const inst = inCalendar(store.resolve(user.oid, eventId));
      const { from, to } = windowOf(q);
      const ro = renderOpts(prefs, q);
      const select = parseSelect(q);
      const items = inst.type === 'seriesMaster' ? store.seriesInstances(inst.record, from, to).map((i) => project(renderEvent(i, ro), select)) : [];
      return { status: 200, body: collection(items, q, prefs, `${PUBLIC_GRAPH}/$metadata#Collection(event)`, `${calPath}/events/${eventId}/instances`) };
    }
    if (tail.length === 3 && t2 === 'cancel' && method === 'POST') {
      canWrite();
      const cancelled = inCalendar(store.resolve(user.oid, eventId));
      store.cancel(user.oid, eventId, 'api');
      attendeeMail(ctx, user, cancelled, 'cancellation');
      return { status: 202 };
    }
    throw E.segmentNotFound(String(t2));
  }

  // ---- identity platform -----------------------------------------------------------------------------------

  function formOf(body: Buffer): URLSearchParams {
    return new URLSearchParams(body.toString('utf8'));
  }

  function handleIdentity(method: string, segs: string[], u: URL, body: Buffer, req: http.IncomingMessage, rec: RecordedRequest, res: http.ServerResponse): void {
    const json = (status: number, b: unknown): void =>
      send(res, rec, status, b, { 'Cache-Control': 'max-age=86400, private', 'Access-Control-Allow-Origin': '*' }, 'application/json; charset=utf-8');
    const [tenant, s1, s2, s3] = segs;
    if (tenant === 'common' && s1 === 'discovery' && s2 === 'instance' && segs.length === 3 && method === 'GET') {
      return json(200, identity.instanceDiscovery(u.searchParams.get('authorization_endpoint')));
    }
    if (tenant === undefined || !identity.tenantKnown(tenant)) {
      throw E.aadInvalidRequest(90002, `Tenant '${tenant ?? ''}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    }
    if (s1 === 'v2.0' && s2 === '.well-known' && s3 === 'openid-configuration' && method === 'GET') return json(200, identity.openidConfiguration(tenant));
    if (s1 === 'discovery' && s2 === 'v2.0' && s3 === 'keys' && method === 'GET') return json(200, identity.jwks());
    if (s1 === 'oauth2' && s2 === 'v2.0' && s3 === 'token' && segs.length === 4) {
      if (method !== 'POST') throw E.aadInvalidRequest(900561, 'The endpoint only accepts POST requests.');
      const out = identity.token(tenant, formOf(body), req.headers.authorization);
      return send(res, rec, 200, out, { 'Cache-Control': 'no-store, no-cache', Pragma: 'no-cache', 'x-ms-request-id': crypto.randomUUID() }, 'application/json; charset=utf-8');
    }
    if (s1 === 'oauth2' && s2 === 'v2.0' && s3 === 'authorize' && method === 'GET') {
      // The sign-in and consent pages, answered at once: a redirect back with a code for the one matching user.
      const p = u.searchParams;
      if (p.get('client_id') !== CLIENT_ID) throw E.unknownClient(p.get('client_id') ?? '', tenant);
      const redirectUri = p.get('redirect_uri') ?? '';
      const hint = p.get('login_hint');
      const users = [...identity.users.values()];
      const target = hint ? identity.userByUpn(hint) : users.length === 1 ? users[0] : undefined;
      if (!target || redirectUri === '') throw E.aadInvalidRequest(900144, 'No user to sign in (add one, or pass login_hint) or no redirect_uri.');
      const extra: { nonce?: string; codeChallenge?: string; codeChallengeMethod?: string } = {};
      if (p.get('nonce') !== null) extra.nonce = p.get('nonce')!;
      if (p.get('code_challenge') !== null) extra.codeChallenge = p.get('code_challenge')!;
      if (p.get('code_challenge_method') !== null) extra.codeChallengeMethod = p.get('code_challenge_method')!;
      const code = identity.authorize(target.oid, (p.get('scope') ?? '').split(/\s+/).filter(Boolean), redirectUri, extra);
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('client_info', identity.clientInfo(target));
      if (p.get('state') !== null) back.searchParams.set('state', p.get('state')!);
      back.searchParams.set('session_state', crypto.randomUUID());
      return send(res, rec, 302, undefined, { Location: back.toString() });
    }
    return json(404, { error: 'not_found', error_description: `The emulator does not serve ${u.pathname}.` });
  }

  // ---- dispatch --------------------------------------------------------------------------------------------

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const u = new URL(req.url ?? '/', 'http://emulator.invalid');
    const path = u.pathname;
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of u.searchParams) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const rec: RecordedRequest = { method, path, query, headers, bodyBytes: 0, responseBytes: 0, status: 0, seq: 0, attendeeUpdate: false, at: clock.now().toUTC().toISO() ?? '' };
    requests.push(rec);
    const body = await readBody(req);
    rec.bodyBytes = body.length;
    let segs: string[];
    try {
      segs = path.split('/').slice(1).map(decodeURIComponent);
    } catch {
      segs = [];
    }
    const isGraph = segs[0] === 'v1.0' || segs[0] === 'beta';
    const endpoint: Endpoint = isGraph ? 'graph' : /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(path) ? 'token' : segs.length > 0 ? 'identity' : 'other';
    const ctx: GraphCtx = { requestId: crypto.randomUUID(), clientRequestId: headers['client-request-id'] ?? crypto.randomUUID(), prefs: parsePrefer(req.headers['prefer']), rec };
    if (isGraph) rec.seq = ++graphSeq;
    /** The crash-test hook at this phase (Graph requests only); true when it wants the socket destroyed. */
    const hooked = async (phase: RequestPhase): Promise<boolean> => isGraph && requestHook !== null && (await requestHook({ seq: rec.seq, method, path, phase })) === 'drop';

    if (await hooked('before')) {
      req.socket.destroy();
      return;
    }
    const fault = faults.take(method, path, endpoint);
    if (fault) {
      if ('drop' in fault) {
        req.socket.destroy();
        return;
      }
      if ('dropAfter' in fault) lostReplies.add(res);
      else if ('delayMs' in fault) await sleep(fault.delayMs);
      else {
        const err = faultError(fault, endpoint);
        if (await hooked('after')) lostReplies.add(res);
        if (err instanceof E.GraphApiError) sendGraphError(res, rec, ctx, err);
        else sendAadError(res, rec, err);
        return;
      }
    }

    if (isGraph) {
      let answer: () => void;
      try {
        if (segs[0] !== 'v1.0') throw new E.GraphApiError(400, 'BadRequest', 'The emulator serves the v1.0 endpoint only.');
        const q: Query = new Map();
        for (const [k, v] of u.searchParams) if (!q.has(k.toLowerCase())) q.set(k.toLowerCase(), v);
        const out = await handleGraph(method, segs.slice(1).filter((s, i, all) => s !== '' || i < all.length - 1), q, body, req, ctx);
        answer = () => send(res, rec, out.status, out.body, graphHeaders(ctx));
      } catch (err) {
        const e = err instanceof E.GraphApiError ? err : new E.GraphApiError(500, 'InternalServerError', `Emulator error: ${(err as Error).stack ?? String(err)}`);
        answer = () => sendGraphError(res, rec, ctx, e);
      }
      // The effect is applied: a hook may still lose the answer.
      if (await hooked('after')) lostReplies.add(res);
      answer();
      return;
    }
    try {
      handleIdentity(method, segs, u, body, req, rec, res);
    } catch (err) {
      if (err instanceof E.AadError) sendAadError(res, rec, err);
      else sendAadError(res, rec, new E.AadError(500, 'server_error', undefined, `Emulator error: ${(err as Error).message}`));
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(err));
      }
    });
  });
  // Idle connections are closed by the client, never by the emulator: the server's 5-second keep-alive timer, firing
  // late after a busy stretch of the test process (encrypting thousands of events), raced a request the client had
  // just written on the same socket ("fetch failed" without the request ever arriving). close() ends them all.
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;

  const calendarIdOf = (oid: string, calendarId: string): string => {
    if (calendarId === 'default') return store.defaultCalendar(oid).id;
    if (!store.calendarFor(oid, calendarId)) throw new Error(`Microsoft emulator: user ${oid} has no calendar ${calendarId}`);
    return calendarId;
  };

  return {
    url: baseUrl,
    publicGraph: PUBLIC_GRAPH,
    authorityHost: AUTHORITY_HOST,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    async close() {
      hub.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    addUser(u) {
      if (identity.users.has(u.oid)) throw new Error(`Microsoft emulator: user ${u.oid} already exists`);
      identity.addUser({ oid: u.oid, tid: u.tid, upn: u.upn, displayName: u.displayName ?? u.upn.split('@')[0] ?? u.upn, timeZone: u.timeZone ?? 'UTC' });
      // Every mailbox has its default calendar, named "Calendar".
      store.addCalendar(u.oid, { name: 'Calendar', isDefault: true });
      todo.addMailbox(u.oid);
    },
    authorize: (oid, scopes, redirectUri, extra) => identity.authorize(oid, scopes, redirectUri, extra ?? {}),
    revokeAll: (oid) => identity.revokeAll(oid),
    expireAccessTokens: (oid) => identity.expireAccessTokens(oid),
    addCalendar(oid, c) {
      identity.user(oid);
      return { id: store.addCalendar(oid, c).id };
    },
    createEvent(oid, calendarId, body) {
      return renderEvent(store.create(oid, calendarIdOf(oid, calendarId), body, 'user'), { out: UTC_OUTPUT });
    },
    getEvent(oid, eventId) {
      const inst = store.resolve(oid, eventId);
      if (!inst) return undefined;
      const ext = ((inst.fields['singleValueExtendedProperties'] as { id: string }[] | undefined) ?? []).map((p) => p.id);
      return renderEvent(inst, { out: UTC_OUTPUT, extPropIds: ext });
    },
    updateEvent(oid, eventId, patch) {
      return renderEvent(store.update(oid, eventId, patch, 'user'), { out: UTC_OUTPUT });
    },
    deleteEvent: (oid, eventId) => store.remove(oid, eventId, 'user'),
    cancelEvent: (oid, eventId) => store.cancel(oid, eventId, 'user'),
    expireDeltaLinks(oid) {
      for (const s of deltaSessions.values()) if (s.oid === oid) s.expired = true;
    },
    failSchedule(address, error) {
      if (error === null) scheduleFailures.delete(address.toLowerCase());
      else scheduleFailures.set(address.toLowerCase(), { ...error });
    },
    faults,
    requests,
    subscriptions: () => hub.infos(),
    sendLifecycle: (id, event) => hub.lifecycle(id, event),
    notifications: () => hub.deliveries.map((d) => ({ subscriptionId: d.subscriptionId, url: d.url, body: d.body, status: d.status, at: d.at })),
    settled: () => hub.settled(),
    attendeeUpdates: (kind) => attendeeUpdates.filter((a) => kind === undefined || a.kind === kind).map((a) => ({ ...a, to: [...a.to] })),
    sentMail: (oid) => sentMail.filter((m) => oid === undefined || m.oid === oid).map((m) => ({ ...m, attachments: m.attachments.map((x) => ({ ...x, content: Buffer.from(x.content) })) })),
    todo: {
      lists: (oid) => todo.listsOf(oid).map(renderList),
      addList: (oid, displayName) => {
        identity.user(oid);
        return { id: todo.addList(oid, { displayName }).id };
      },
      tasks: (oid, listId) => todo.tasksOf(oid, listId).map((t: TaskRecord) => renderTask(t, { expandLinked: true })),
      createTask: (oid, listId, body) => renderTask(todo.createTask(oid, listId, body), { expandLinked: true }),
      updateTask: (oid, listId, taskId, patch) => renderTask(todo.updateTask(oid, listId, taskId, patch), { expandLinked: true }),
      completeTask: (oid, listId, taskId) => renderTask(todo.updateTask(oid, listId, taskId, { status: 'completed' }), { expandLinked: true }),
      deleteTask: (oid, listId, taskId) => todo.deleteTask(oid, listId, taskId),
      expireDelta(oid) {
        for (const s of taskDeltaSessions.values()) if (s.oid === oid) s.expired = true;
      },
    },
    setRequestHook(hook) {
      requestHook = hook;
    },
  };
}

/**
 * A middleware for Client.initWithMiddleware: rewrites https://graph.microsoft.com/ to the emulator and passes on.
 * Put it after AuthenticationHandler (which attaches the token only to https Graph URLs) and RetryHandler, before
 * HTTPMessageHandler: AuthenticationHandler → RetryHandler → graphRedirect(emu) → HTTPMessageHandler.
 */
export function graphRedirect(emu: GraphEmulator): Middleware {
  let next: Middleware | undefined;
  return {
    async execute(context: Context): Promise<void> {
      const request: unknown = context.request;
      const url = typeof request === 'string' ? request : (request as Request).url;
      if (url.startsWith(GRAPH_HOST_PREFIX)) {
        const local = emu.url + url.slice(GRAPH_HOST_PREFIX.length);
        context.request = typeof request === 'string' ? local : new Request(local, request as Request);
      }
      if (!next) throw new Error('graphRedirect: no next middleware; chain HTTPMessageHandler after it');
      await next.execute(context);
    },
    setNext(middleware: Middleware): void {
      next = middleware;
    },
  };
}

/**
 * MSAL's `system.networkClient`: every request to login.microsoftonline.com (or its aliases) goes to the emulator,
 * answered as msal-node's own HttpClient answers ({headers, body, status}, JSON body); anything else is a network error.
 */
export function msalNetworkClient(emu: GraphEmulator): INetworkModule {
  const target = (url: string): string => {
    const u = new URL(url);
    if (u.protocol !== 'https:' || !AAD_HOSTS.has(u.host)) throw new AuthError('network_error', `Network request failed: the emulator does not serve ${u.origin}`);
    return `${emu.url}${u.pathname.slice(1)}${u.search}`;
  };
  const sendRequest = async <T>(url: string, method: 'GET' | 'POST', options: NetworkRequestOptions | undefined, timeout?: number): Promise<NetworkResponse<T>> => {
    const signal = timeout ? AbortSignal.timeout(timeout) : undefined;
    let res: Response;
    try {
      const init: RequestInit = { method, headers: { ...(options?.headers ?? {}) } };
      if (method === 'POST') init.body = options?.body ?? '';
      if (signal) init.signal = signal;
      res = await fetch(target(url), init);
    } catch (err) {
      if (err instanceof AuthError) throw err;
      throw new AuthError('network_error', `Network request failed: ${(err as Error).message}`);
    }
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      headers[k] = v;
    });
    try {
      return { headers, body: (await res.json()) as T, status: res.status };
    } catch (err) {
      throw new AuthError('token_parsing_error', `Failed to parse response: ${(err as Error).message}`);
    }
  };
  return {
    sendGetRequestAsync: <T>(url: string, options?: NetworkRequestOptions, timeout?: number) => sendRequest<T>(url, 'GET', options, timeout),
    sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => sendRequest<T>(url, 'POST', options),
  };
}

