// The Microsoft Graph connector: calendar list; the default calendar synced with calendarView delta
// over a rolling window (the stored cursor is the whole deltaLink), occurrence stubs completed from
// their series master, a changed series re-read so that silently cancelled occurrences are noticed;
// other calendars read as a windowed calendarView that the sync loop diffs; subscriptions; our tags
// as single-value extended properties; Graph's errors turned into the typed errors every platform shares.
import {
  AuthenticationHandler,
  Client,
  HTTPMessageHandler,
  RetryHandler,
  RetryHandlerOptions,
  type Middleware,
} from '@microsoft/microsoft-graph-client';
import { CursorExpired, Forbidden, NeedsReauth, NotFound, RetryAfter } from '../errors.js';
import { secretMatches, type CalendarConnector, type ChannelRecord, type RemoteCalendar, type StoredChannel, type SyncPage } from '../port.js';
import type { CalendarItem, ItemError } from '../types.js';
import { normaliseGraphEvent, TAG_PROPERTY_GUID, type GraphEvent } from './normalise.js';
import { toIana } from './zones.js';

const GRAPH = 'https://graph.microsoft.com/v1.0';
const DAY = 86_400_000;
/**
 * Tag names and values as normalise.ts reads them back (TAG_ID there; values up to 1,024 characters).
 * Lower case only: Graph tells property names apart by case ("Get singleValueLegacyExtendedProperty":
 * filtering the Name is case-sensitive) while normalise.ts folds them, so sk.A and sk.a would collide.
 */
const TAG_NAME = /^sk\.[a-z0-9_.-]{1,60}$/;
const TAG_VALUE_MAX = 1024;

/** The id of our tag `name`: a named string property in our namespace ("{type} {guid} Name {name}", extended-properties-overview). */
export function tagPropertyId(name: string): string {
  return `String {${TAG_PROPERTY_GUID}} Name ${name}`;
}

/** An OData string literal: a single quote is doubled. */
function odataString(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

export interface GraphCalendarOptions {
  /** A fresh access token (MSAL silent acquisition: connectors/microsoft/auth.ts tokenProvider). */
  getAccessToken: (opts?: { forceRefresh?: boolean }) => Promise<string>;
  /** Middleware placed just before the HTTP handler (the emulator's redirect in tests). */
  transport?: Middleware;
  /** The clock of the caller: the sync window is placed around its now. */
  now?: () => Date;
  /** Days of the synced window before and after now (API-NOTES: e.g. 60 back, 180 ahead). */
  window?: { backDays: number; aheadDays: number };
  pageSize?: number;
  /** Retries of 429/503/504 by the client's RetryHandler (which honours Retry-After). */
  maxRetries?: number;
}

interface Cursor {
  /** The whole @odata.deltaLink (default calendar), or null for a windowed read. */
  link: string | null;
  start: string;
  end: string;
}

/** The subscription's clientState (our secret) and lifecycle address, as Graph wants them. */
export interface GraphSubscription {
  id: string;
  expirationDateTime: string;
}

export function classifyGraphError(err: unknown): Error {
  if (err instanceof NeedsReauth || err instanceof CursorExpired) return err;
  const e = err as { statusCode?: number; code?: string | null; message?: string; headers?: Headers };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const retry = e.headers?.get?.('retry-after');
  const seconds = retry && /^\d+$/.test(retry) ? Number(retry) : null;
  if (status === 410 || e.code === 'syncStateNotFound' || e.code === 'resyncRequired' || e.code === 'SyncStateNotFound') {
    return new CursorExpired(`Graph answered ${status ?? ''} ${e.code ?? ''}: the delta token expired, a full sync is required`.replace(/\s+/g, ' '));
  }
  if (status === 429 || status === 503 || status === 504) return new RetryAfter(seconds, `Graph answered ${status}`);
  if (status === 401) return new NeedsReauth('Graph refused the access token (401)');
  if (status === 403) return new Forbidden(`Graph refused the call (403 ${e.code ?? ''}): a permission is missing`.trim());
  if (status === 404) return new NotFound(`Graph answered 404 (${e.code ?? 'not found'})`);
  if (status !== undefined && status >= 500) return new RetryAfter(seconds, `Graph answered ${status}`);
  if (status === undefined || status === -1) return new RetryAfter(null, `no answer from Graph (${e.message ?? 'connection failed'})`);
  return err instanceof Error ? err : new Error(String(err));
}

export class GraphCalendarConnector implements CalendarConnector {
  readonly provider = 'microsoft' as const;
  /**
   * An organizer's PATCH of an event with attendees sends them an update, and Graph has no
   * sendUpdates=none (API-NOTES, Microsoft "Other"; event-update.md: updates go out to attendees).
   */
  readonly writesNotifyAttendees = true;
  readonly #client: Client;
  readonly #now: () => Date;
  readonly #window: { backDays: number; aheadDays: number };
  readonly #pageSize: number;
  #me: { id: string; email: string | null; zone: string; defaultCalendarId: string } | undefined;
  #forceRefresh = false;
  /** The Graph client wraps whatever getAccessToken throws; the original is kept here. */
  #authFailure: Error | undefined;

  constructor(opts: GraphCalendarOptions) {
    const auth = new AuthenticationHandler({
      getAccessToken: async () => {
        try {
          return await opts.getAccessToken({ forceRefresh: this.#forceRefresh });
        } catch (err) {
          this.#authFailure = err as Error;
          throw err;
        }
      },
    });
    const retry = new RetryHandler(new RetryHandlerOptions(1, opts.maxRetries ?? 3));
    const http = new HTTPMessageHandler();
    auth.setNext(retry);
    if (opts.transport) {
      retry.setNext(opts.transport);
      opts.transport.setNext?.(http);
    } else {
      retry.setNext(http);
    }
    this.#client = Client.initWithMiddleware({ middleware: auth, defaultVersion: 'v1.0' });
    this.#now = opts.now ?? (() => new Date());
    this.#window = opts.window ?? { backDays: 60, aheadDays: 180 };
    this.#pageSize = opts.pageSize ?? 100;
  }

  /** A call; a 401 gets one more try with a token refreshed by force, then NeedsReauth. */
  async #authorized<T>(call: () => Promise<T>): Promise<T> {
    const failed = (err: unknown): Error => {
      const auth = this.#authFailure;
      this.#authFailure = undefined;
      return auth ? classifyGraphError(auth) : classifyGraphError(err);
    };
    try {
      return await call();
    } catch (err) {
      if (this.#authFailure || (err as { statusCode?: number }).statusCode !== 401) throw failed(err);
      this.#forceRefresh = true;
      try {
        return await call();
      } catch (again) {
        throw failed(again);
      } finally {
        this.#forceRefresh = false;
      }
    }
  }

  async #get<T>(url: string, prefer: string[] = []): Promise<T> {
    // UTC times (we keep each event's own zone from originalStartTimeZone), ids that survive moves.
    const headers = ['outlook.timezone="UTC"', 'IdType="ImmutableId"', ...prefer].join(', ');
    return this.#authorized(async () => (await this.#client.api(url).header('Prefer', headers).get()) as T);
  }

  async #send<T>(method: 'post' | 'patch' | 'delete', url: string, body?: unknown): Promise<T> {
    return this.#authorized(async () => {
      const req = this.#client.api(url).header('Prefer', 'IdType="ImmutableId"');
      return (await (method === 'delete' ? req.delete() : method === 'post' ? req.post(body) : req.patch(body))) as T;
    });
  }

  async #whoami() {
    if (!this.#me) {
      const me = await this.#get<{ id: string; mail?: string | null; userPrincipalName?: string }>(`${GRAPH}/me?$select=id,mail,userPrincipalName`);
      // The mailbox's zone needs MailboxSettings.Read, which we do not ask for: without it, UTC (each
      // event keeps its own zone anyway). Transient failures and lost grants still surface.
      const settings = await this.#get<{ timeZone?: string }>(`${GRAPH}/me/mailboxSettings/timeZone`).catch((err: unknown) =>
        err instanceof RetryAfter || err instanceof NeedsReauth ? Promise.reject(err) : { timeZone: undefined },
      );
      const cal = await this.#get<{ id: string }>(`${GRAPH}/me/calendar?$select=id`);
      this.#me = { id: me.id, email: me.mail ?? me.userPrincipalName ?? null, zone: toIana((settings as { value?: string; timeZone?: string }).value ?? settings.timeZone) ?? 'UTC', defaultCalendarId: cal.id };
    }
    return this.#me;
  }

  async listCalendars(): Promise<RemoteCalendar[]> {
    const me = await this.#whoami();
    const out: RemoteCalendar[] = [];
    let url: string | undefined = `${GRAPH}/me/calendars?$select=id,name,isDefaultCalendar,canEdit,canViewPrivateItems`;
    while (url) {
      const page: { value: { id: string; name?: string; isDefaultCalendar?: boolean; canEdit?: boolean }[]; '@odata.nextLink'?: string } = await this.#get(url);
      for (const c of page.value) {
        out.push({ id: c.id, name: c.name ?? c.id, timeZone: me.zone, primary: c.isDefaultCalendar === true || c.id === me.defaultCalendarId, canRead: true, canWrite: c.canEdit !== false });
      }
      url = page['@odata.nextLink'];
    }
    return out;
  }

  #freshWindow(): { start: string; end: string } {
    const now = this.#now().getTime();
    return { start: new Date(now - this.#window.backDays * DAY).toISOString(), end: new Date(now + this.#window.aheadDays * DAY).toISOString() };
  }

  /**
   * The default calendar: calendarView delta (v1.0 offers delta for no other calendar). Others: a
   * windowed calendarView, complete every time, which the loop diffs. When the window would no
   * longer reach two thirds of the way ahead, the cursor is treated as expired: a planned resync.
   */
  async syncPage(calendarId: string, opts: { cursor: string | null; pageToken: string | null }): Promise<SyncPage> {
    const me = await this.#whoami();
    const cursor = opts.cursor ? (JSON.parse(opts.cursor) as Cursor) : null;
    if (cursor && Date.parse(cursor.end) - this.#now().getTime() < (this.#window.aheadDays * DAY * 2) / 3) {
      throw new CursorExpired('the synced window must move ahead: a planned full resync');
    }
    const isDefault = calendarId === me.defaultCalendarId || calendarId === 'primary';
    const window = opts.pageToken ? JSON.parse(opts.pageToken).window as { start: string; end: string } : cursor ?? this.#freshWindow();
    let url: string;
    if (opts.pageToken) url = (JSON.parse(opts.pageToken) as { next: string }).next;
    else if (isDefault && cursor?.link) url = cursor.link;
    else if (isDefault) url = `${GRAPH}/me/calendarView/delta?startDateTime=${encodeURIComponent(window.start)}&endDateTime=${encodeURIComponent(window.end)}`;
    else url = `${GRAPH}/me/calendars/${encodeURIComponent(calendarId)}/calendarView?startDateTime=${encodeURIComponent(window.start)}&endDateTime=${encodeURIComponent(window.end)}&$expand=${encodeURIComponent(`singleValueExtendedProperties($filter=id eq 'String {${TAG_PROPERTY_GUID}} Name sk.session' or id eq 'String {${TAG_PROPERTY_GUID}} Name sk.outcome')`)}`;
    const listedAt = this.#now().toISOString();
    const page = await this.#get<{ value: GraphEvent[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string }>(url, [`odata.maxpagesize=${this.#pageSize}`]);
    const items: CalendarItem[] = [];
    const rejected: ItemError[] = [];
    const masters = new Map<string, GraphEvent | null>();
    const seriesSnapshots: { seriesId: string; eventIds: string[] }[] = [];
    const master = async (id: string): Promise<GraphEvent | null> => {
      if (!masters.has(id)) masters.set(id, await this.#get<GraphEvent>(`${GRAPH}/me/events/${encodeURIComponent(id)}`).catch((err: unknown) => (err instanceof NotFound ? null : Promise.reject(err))));
      return masters.get(id)!;
    };
    const add = (e: GraphEvent) => {
      const r = normaliseGraphEvent(e, calendarId, { calendarZone: me.zone, ownerEmail: me.email, listedAt });
      if (!r.ok) rejected.push(r.error);
      else if (r.item) items.push(r.item);
    };
    for (const raw of page.value) {
      if (raw['@removed'] && raw.id && isDefault) {
        // Delta says "removed" both for a deleted event and for one moved out of the window (the
        // reference: also for events outside it): ask which, so a moved session is not a cancelled one.
        const still = await this.#get<GraphEvent>(`${GRAPH}/me/events/${encodeURIComponent(raw.id)}`).catch((err: unknown) => (err instanceof NotFound ? null : Promise.reject(err)));
        if (still && !still.isCancelled) {
          if (still.type === 'occurrence' && still.seriesMasterId && still.subject === undefined) {
            const m = await master(still.seriesMasterId);
            if (m) add(complete(still, m));
          } else if (still.type !== 'seriesMaster') add(still);
          continue;
        }
        add(raw);
        continue;
      }
      if (raw.type === 'seriesMaster' && raw.id && isDefault) {
        // A changed series: its occurrences are read again, so one cancelled without a delta
        // signal (API-NOTES) is noticed by its absence.
        masters.set(raw.id, raw);
        const instances = await this.#instances(raw.id, window);
        for (const inst of instances) add(complete(inst, raw));
        seriesSnapshots.push({ seriesId: raw.id, eventIds: instances.map((i) => i.id!).filter(Boolean) });
        continue;
      }
      if (raw.type === 'occurrence' && raw.seriesMasterId && raw.subject === undefined) {
        const m = await master(raw.seriesMasterId);
        if (m) add(complete(raw, m));
        continue;
      }
      add(raw);
    }
    const next = page['@odata.nextLink'];
    const delta = page['@odata.deltaLink'];
    return {
      items,
      rejected,
      nextPageToken: next ? JSON.stringify({ next, window }) : null,
      nextCursor: next ? null : JSON.stringify({ link: isDefault ? (delta ?? null) : null, start: window.start, end: window.end } satisfies Cursor),
      // A windowed read is a complete picture of the window; a delta page only of what changed.
      window: next || isDefault ? null : { start: new Date(window.start), end: new Date(window.end) },
      syncedWindow: next ? null : { start: new Date(window.start), end: new Date(window.end) },
      ...(seriesSnapshots.length > 0 ? { seriesSnapshots } : {}),
    };
  }

  async #instances(masterId: string, window: { start: string; end: string }): Promise<GraphEvent[]> {
    const out: GraphEvent[] = [];
    let url: string | undefined = `${GRAPH}/me/events/${encodeURIComponent(masterId)}/instances?startDateTime=${encodeURIComponent(window.start)}&endDateTime=${encodeURIComponent(window.end)}`;
    while (url) {
      const page: { value: GraphEvent[]; '@odata.nextLink'?: string } = await this.#get(url);
      out.push(...page.value);
      url = page['@odata.nextLink'];
    }
    return out;
  }

  /**
   * One of our marks on an event, as a single-value extended property (Graph reference "Create single-value
   * extended property": PATCH /me/events/{id} with singleValueExtendedProperties creates or updates
   * it, and the answer does not include it). Idempotent: the value is read first and the PATCH is
   * skipped when it is already there, because every PATCH of an event with attendees may reach them
   * as a meeting update (API-NOTES: treat it as visible to the client), so a retry must not send
   * another. A deleted or cancelled event is NotFound. `calendarId` is not needed: ids are unique in
   * the mailbox (/me/events/{id} serves every calendar).
   */
  async setTag(calendarId: string, eventId: string, name: string, value: string): Promise<void> {
    checkTag(name, value);
    if ((await this.getTag(calendarId, eventId, name)) === value) return;
    await this.#send('patch', `${GRAPH}/me/events/${encodeURIComponent(eventId)}`, {
      singleValueExtendedProperties: [{ id: tagPropertyId(name), value }],
    });
  }

  /**
   * Reads one mark back: the event expanded with the one property ("Get singleValueLegacyExtendedProperty":
   * $expand=singleValueExtendedProperties($filter=id eq '…') is the only way to read it; the list is
   * absent when the event has no such property). isCancelled is selected too: an attendee's copy of a
   * cancelled meeting stays in the calendar with isCancelled true (event.md), and is as gone as a deleted one.
   */
  async getTag(_calendarId: string, eventId: string, name: string): Promise<string | null> {
    checkTag(name);
    const id = tagPropertyId(name);
    const expand = `singleValueExtendedProperties($filter=id eq ${odataString(id)})`;
    const event = await this.#get<GraphEvent>(`${GRAPH}/me/events/${encodeURIComponent(eventId)}?$select=id,isCancelled&$expand=${encodeURIComponent(expand)}`);
    if (event.isCancelled === true) throw new NotFound(`the event ${eventId} is cancelled`);
    // Graph may answer with the id in its own spelling (e.g. the GUID's case): compare without case.
    const hit = (event.singleValueExtendedProperties ?? []).find((p) => p.id?.toLowerCase() === id.toLowerCase());
    return typeof hit?.value === 'string' ? hit.value : null;
  }

  async watch(calendarId: string, opts: { channelId: string; address: string; secret: string; expiresAt?: Date }): Promise<ChannelRecord> {
    const me = await this.#whoami();
    // Graph's limit for events is 10,080 minutes; three days leaves room to renew.
    const expires = opts.expiresAt ?? new Date(this.#now().getTime() + 3 * DAY);
    const sub = await this.#send<GraphSubscription>('post', `${GRAPH}/subscriptions`, {
      changeType: 'created,updated,deleted',
      notificationUrl: opts.address,
      lifecycleNotificationUrl: `${opts.address}/lifecycle`,
      resource: calendarId === me.defaultCalendarId ? '/me/events' : `/me/calendars/${calendarId}/events`,
      expirationDateTime: expires.toISOString(),
      clientState: opts.secret,
    });
    return { channelId: sub.id, resourceId: null, expiresAt: new Date(sub.expirationDateTime) };
  }

  async renew(subscriptionId: string, expiresAt: Date): Promise<Date> {
    const sub = await this.#send<GraphSubscription>('patch', `${GRAPH}/subscriptions/${encodeURIComponent(subscriptionId)}`, { expirationDateTime: expiresAt.toISOString() });
    return new Date(sub.expirationDateTime);
  }

  async stopChannel(channel: { channelId: string; resourceId: string | null }): Promise<void> {
    try {
      await this.#send('delete', `${GRAPH}/subscriptions/${encodeURIComponent(channel.channelId)}`);
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
    }
  }
}

/** A tag that normalise.ts could not read back would be lost silently: refused here instead. */
function checkTag(name: string, value?: string): void {
  if (!TAG_NAME.test(name)) throw new RangeError(`a tag name must look like sk.name (letters, digits, _ . -, at most 60 after "sk."), got '${name}'`);
  if (value !== undefined && value.length > TAG_VALUE_MAX) throw new RangeError(`a tag value may have at most ${TAG_VALUE_MAX} characters (${value.length} given)`);
}

/** An occurrence stub with what its series master says (subject, attendees, ...), its own times kept. */
function complete(occurrence: GraphEvent, master: GraphEvent): GraphEvent {
  return {
    ...master,
    ...Object.fromEntries(Object.entries(occurrence).filter(([, v]) => v !== undefined)),
    type: occurrence.type ?? 'occurrence',
    seriesMasterId: occurrence.seriesMasterId ?? master.id ?? null,
    // The instance changes when its master does.
    changeKey: occurrence.changeKey ?? `${master.changeKey ?? ''}:${occurrence.start?.dateTime ?? ''}`,
    lastModifiedDateTime: occurrence.lastModifiedDateTime ?? master.lastModifiedDateTime,
  } as GraphEvent;
}

/** A Graph change notification (one entry of its "value"), checked against the subscription we keep. */
export interface GraphNotification {
  subscriptionId: string;
  clientState: string | null;
  changeType: string | null;
  lifecycleEvent: 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed' | null;
}

export function parseGraphNotifications(body: unknown): GraphNotification[] | undefined {
  const value = (body as { value?: unknown })?.value;
  if (!Array.isArray(value)) return undefined;
  const out: GraphNotification[] = [];
  for (const v of value as Record<string, unknown>[]) {
    if (typeof v?.['subscriptionId'] !== 'string') return undefined;
    const life = v['lifecycleEvent'];
    out.push({
      subscriptionId: v['subscriptionId'] as string,
      clientState: typeof v['clientState'] === 'string' ? (v['clientState'] as string) : null,
      changeType: typeof v['changeType'] === 'string' ? (v['changeType'] as string) : null,
      lifecycleEvent: life === 'reauthorizationRequired' || life === 'subscriptionRemoved' || life === 'missed' ? life : null,
    });
  }
  return out;
}

/** A notification is ours only with the clientState we chose for that subscription. */
export function verifyGraphNotification(note: GraphNotification, subscription: StoredChannel | undefined): boolean {
  return !!subscription && subscription.channelId === note.subscriptionId && note.clientState !== null && secretMatches(note.clientState, subscription.secretHash);
}
