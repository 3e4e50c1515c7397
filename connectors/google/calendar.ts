// The Google Calendar connector: calendar list, full and incremental sync with the sync token
// (singleEvents, paging, 410 → CursorExpired), push channels (events.watch, channels.stop), our
// tags as private extended properties (events.patch / events.get), and Google's errors turned into
// the typed errors every platform shares.
import { calendar, type calendar_v3 } from '@googleapis/calendar';
import type { OAuth2Client } from 'google-auth-library';
import { CursorExpired, Forbidden, NeedsReauth, NotFound, RetryAfter } from '../errors.js';
import { secretMatches, type CalendarConnector, type ChannelRecord, type CredentialStore, type RemoteCalendar, type StoredChannel, type SyncPage } from '../port.js';
import type { CalendarItem, ItemError } from '../types.js';
import { normaliseGoogleEvent, TAG_PREFIX } from './normalise.js';
import { guardGrant, isInvalidGrant } from './oauth.js';

export interface GoogleCalendarOptions {
  auth: OAuth2Client;
  credentials: CredentialStore;
  /** The API's root URL; Google's own by default (the emulator in tests). */
  rootUrl?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Page size of events.list (Google: default 250, at most 2500). */
  pageSize?: number;
  /** How often a transient failure is retried inside one call before RetryAfter reaches the caller. */
  retries?: number;
  /** Waits between those retries (tests pass a fast one). */
  sleep?: (ms: number) => Promise<void>;
}

/** The per-request options every call passes to the generated client. */
type CallOptions = { timeout: number; retry: boolean; retryConfig: { retry: number } };

const RATE_LIMIT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'quotaExceeded']);
/** A tag name the sync reads back as a tag (the rule normaliseGoogleEvent applies: "sk." prefix, ≤ 64 characters). */
const TAG_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;
/** Longest tag value the sync reads back (normaliseGoogleEvent drops longer ones). */
const MAX_TAG_VALUE = 1024;
/** Longest Retry-After we wait out inside a call; longer ones go back to the caller to schedule. */
const MAX_INLINE_WAIT_MS = 5_000;

interface GoogleErrorShape {
  code?: number | string;
  status?: number;
  message?: string;
  response?: { status?: number; headers?: Record<string, string> | Headers; data?: { error?: unknown } };
}

function header(headers: Record<string, string> | Headers | undefined, name: string): string | null {
  if (!headers) return null;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
  const h = headers as Record<string, string>;
  return h[name] ?? h[name.toLowerCase()] ?? null;
}

function reasonOf(err: GoogleErrorShape): string | undefined {
  const data = err.response?.data as { error?: { errors?: { reason?: string }[] } } | undefined;
  return data?.error?.errors?.[0]?.reason;
}

/** Google's error, as one of ours. The status code decides, never the message text (API-NOTES). */
export function classifyGoogleError(err: unknown): Error {
  if (isInvalidGrant(err)) return new NeedsReauth('Google refused the refresh token (invalid_grant)');
  const e = err as GoogleErrorShape;
  const oauthError = (e.response?.data as { error?: unknown } | undefined)?.error;
  if (oauthError === 'invalid_client' || oauthError === 'unauthorized_client') {
    // The operator's OAuth client is wrong (a rotated secret): no therapist can fix that by consenting.
    return new Forbidden(`Google refused this server's OAuth client (${oauthError}): check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET`);
  }
  const status = e.response?.status ?? (typeof e.status === 'number' ? e.status : undefined);
  const reason = reasonOf(e);
  const retryHeader = header(e.response?.headers, 'retry-after');
  const retrySeconds = retryHeader !== null && /^\d+$/.test(retryHeader.trim()) ? Number(retryHeader) : null;
  if (status === 410) return new CursorExpired('Google answered 410: the sync token expired, a full sync is required');
  if (status === 429) return new RetryAfter(retrySeconds, `Google answered 429${retrySeconds !== null ? `, retry after ${retrySeconds} s` : ''}`);
  if (status === 403 && reason && RATE_LIMIT_REASONS.has(reason)) return new RetryAfter(retrySeconds, `Google answered 403 ${reason}`);
  if (status === 401) return new NeedsReauth('Google answered 401 after a token refresh: the grant no longer works');
  if (status === 403) return new Forbidden(`Google refused the call (403${reason ? ` ${reason}` : ''}): a scope or permission is missing`);
  if (status === 404) return new NotFound('Google answered 404: the calendar or event is gone, or this account cannot see it');
  if (status !== undefined && status >= 500) return new RetryAfter(retrySeconds, `Google answered ${status}`);
  if (status === undefined) {
    // No answer at all: a dropped connection, a reset, a timeout.
    return new RetryAfter(null, `no answer from Google (${e.code ?? e.message ?? 'connection failed'})`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Google refused the request without doing it (rate limits): retrying cannot do it twice. */
function isRefusal(raw: unknown): boolean {
  const e = raw as GoogleErrorShape;
  const status = e.response?.status ?? (typeof e.status === 'number' ? e.status : undefined);
  return status === 429 || (status === 403 && RATE_LIMIT_REASONS.has(reasonOf(e) ?? ''));
}

export class GoogleCalendarConnector implements CalendarConnector {
  readonly provider = 'google' as const;
  /** We write with sendUpdates=none: Google mails no guest about our tags. */
  readonly writesNotifyAttendees = false;
  readonly #api: calendar_v3.Calendar;
  readonly #credentials: CredentialStore;
  readonly #opts: Required<Pick<GoogleCalendarOptions, 'timeoutMs' | 'pageSize' | 'retries' | 'sleep'>>;
  /** Requests made (tests and benchmarks count them). */
  requests = 0;

  constructor(opts: GoogleCalendarOptions) {
    this.#api = calendar({ version: 'v3', auth: opts.auth, ...(opts.rootUrl ? { rootUrl: opts.rootUrl } : {}) });
    this.#credentials = opts.credentials;
    this.#opts = {
      timeoutMs: opts.timeoutMs ?? 30_000,
      pageSize: Math.min(opts.pageSize ?? 250, 2500),
      retries: opts.retries ?? 3,
      sleep: opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    };
  }

  /**
   * One API call with our retries: transient failures are retried with backoff and jitter. With
   * `refusedOnly`, only answers that say the request was refused (429, 403 rate limits) are retried
   * here: after a 5xx or a lost answer a write may have happened, and the caller checks first.
   */
  async #call<T>(fn: (options: CallOptions) => Promise<{ data: T }>, retries = this.#opts.retries, refusedOnly = false): Promise<T> {
    // gaxios's own retries are off: it does not retry 403 rate limits, and we want one policy.
    const options = { timeout: this.#opts.timeoutMs, retry: false, retryConfig: { retry: 0 } };
    for (let attempt = 0; ; attempt++) {
      try {
        this.requests++;
        const res = await guardGrant(this.#credentials, () => fn(options));
        return res.data;
      } catch (raw) {
        const err = raw instanceof NeedsReauth ? raw : classifyGoogleError(raw);
        if (err instanceof NeedsReauth && !(raw instanceof NeedsReauth)) {
          await this.#credentials.markNeedsReauth(err.message);
        }
        if (!(err instanceof RetryAfter) || attempt >= retries) throw err;
        if (refusedOnly && !isRefusal(raw)) throw err;
        const backoff = Math.min(MAX_INLINE_WAIT_MS, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
        const wait = err.seconds !== null ? err.seconds * 1000 : backoff;
        if (wait > MAX_INLINE_WAIT_MS) throw err;
        await this.#opts.sleep(wait);
      }
    }
  }

  async listCalendars(): Promise<RemoteCalendar[]> {
    const out: RemoteCalendar[] = [];
    let pageToken: string | undefined;
    do {
      const page: calendar_v3.Schema$CalendarList = await this.#call((o) => this.#api.calendarList.list({ maxResults: 250, ...(pageToken ? { pageToken } : {}) }, o));
      for (const c of page.items ?? []) {
        if (!c.id) continue;
        out.push({
          id: c.id,
          name: c.summaryOverride ?? c.summary ?? c.id,
          timeZone: c.timeZone ?? 'UTC',
          primary: c.primary ?? false,
          canRead: c.accessRole === 'owner' || c.accessRole === 'writer' || c.accessRole === 'reader',
          canWrite: c.accessRole === 'owner' || c.accessRole === 'writer',
        });
      }
      pageToken = page.nextPageToken ?? undefined;
    } while (pageToken);
    return out;
  }

  /**
   * A page of events.list. Full and incremental requests keep the same parameters (singleEvents),
   * and the incremental one adds only syncToken: it may not be combined with timeMin and the like.
   */
  async syncPage(calendarId: string, opts: { cursor: string | null; pageToken: string | null }): Promise<SyncPage> {
    const params: calendar_v3.Params$Resource$Events$List = {
      calendarId,
      singleEvents: true,
      maxResults: this.#opts.pageSize,
      ...(opts.cursor ? { syncToken: opts.cursor } : {}),
      ...(opts.pageToken ? { pageToken: opts.pageToken } : {}),
    };
    const page: calendar_v3.Schema$Events = await this.#call((o) => this.#api.events.list(params, o));
    const zone = page.timeZone ?? 'UTC';
    const items: CalendarItem[] = [];
    const rejected: ItemError[] = [];
    for (const raw of page.items ?? []) {
      const result = normaliseGoogleEvent(raw, calendarId, zone, page.updated ?? undefined);
      if (result.ok) items.push(result.item);
      else rejected.push(result.error);
    }
    return { items, rejected, nextPageToken: page.nextPageToken ?? null, nextCursor: page.nextSyncToken ?? null };
  }

  async watch(calendarId: string, opts: { channelId: string; address: string; secret: string; expiresAt?: Date }): Promise<ChannelRecord> {
    const channel: calendar_v3.Schema$Channel = await this.#call((o) =>
      this.#api.events.watch(
        {
          calendarId,
          requestBody: {
            id: opts.channelId,
            type: 'web_hook',
            address: opts.address,
            token: opts.secret,
            ...(opts.expiresAt ? { expiration: String(opts.expiresAt.getTime()) } : {}),
          },
        },
        o,
      ),
      // events.watch is not idempotent: a retry after a lost answer would make a second channel.
      0,
    );
    if (!channel.id || !channel.expiration) throw new Error('Google answered events.watch without a channel id or expiration');
    return { channelId: channel.id, resourceId: channel.resourceId ?? null, expiresAt: new Date(Number(channel.expiration)) };
  }

  /**
   * A call about one event (the tag reads and writes). A 410 here means the event was deleted, not an expired
   * sync token: Google answers 410 "Resource has been deleted" to a write to an event already deleted (seen on
   * events.delete in derekantrican/GAS-ICS-Sync#297), while classifyGoogleError reads 410 as CursorExpired,
   * which is right only for listings.
   */
  async #eventCall<T>(fn: (options: CallOptions) => Promise<{ data: T }>, refusedOnly = false): Promise<T> {
    try {
      return await this.#call(fn, this.#opts.retries, refusedOnly);
    } catch (err) {
      if (err instanceof CursorExpired) throw new NotFound('Google answered 410: the event was deleted');
      throw err;
    }
  }

  /**
   * Sets a private extended property on this calendar's copy of the event (API-NOTES: private properties are
   * this calendar's only; refs discovery document, Event.extendedProperties.private). events.patch merges maps
   * key by key, so our other tags and anyone else's properties stay (Calendar guide "Extended properties":
   * patch "allows you to manipulate some properties while leaving others untouched"). sendUpdates=none: no
   * guest is mailed. A lost reply is not retried here (see #call): the caller reads the tag back first.
   * The partial response (fields) brings back only id and status, none of the event's details.
   */
  async setTag(calendarId: string, eventId: string, name: string, value: string): Promise<void> {
    checkTag(name, value);
    const event = await this.#eventCall<calendar_v3.Schema$Event>((o) =>
      this.#api.events.patch(
        {
          calendarId,
          eventId,
          sendUpdates: 'none',
          fields: 'id,status',
          requestBody: { extendedProperties: { private: { [name]: value } } },
        },
        o,
      ),
      // Each write that takes effect is a new version of the event, and a sync round for its
      // calendar: after an unsure failure the engine reads the tag back before writing again.
      true,
    );
    // Google keeps a deleted event, with status "cancelled" (Event.status: "cancelled events continue to expose
    // event details … so that they can be restored"), and may take the write; for us it is gone.
    if (event.status === 'cancelled') throw new NotFound('the event was deleted (Google keeps it as cancelled)');
  }

  /**
   * Reads one tag back with a partial response (only id, status and the private properties). events.get
   * answers a deleted event with status "cancelled" ("The get method always returns them": Event.status in the
   * discovery document), which is NotFound here, as are 404 and 410.
   */
  async getTag(calendarId: string, eventId: string, name: string): Promise<string | null> {
    const event = await this.#eventCall<calendar_v3.Schema$Event>((o) =>
      this.#api.events.get({ calendarId, eventId, fields: 'id,status,extendedProperties/private' }, o),
    );
    if (event.status === 'cancelled') throw new NotFound('the event was deleted (Google keeps it as cancelled)');
    const v = event.extendedProperties?.private?.[name];
    return typeof v === 'string' ? v : null;
  }

  async stopChannel(channel: { channelId: string; resourceId: string | null }): Promise<void> {
    try {
      await this.#call((o) => this.#api.channels.stop({ requestBody: { id: channel.channelId, ...(channel.resourceId ? { resourceId: channel.resourceId } : {}) } }, o));
    } catch (err) {
      if (!(err instanceof NotFound)) throw err; // already gone: that is what we wanted
    }
  }
}

/** Only tags the sync can read back are written: anything else would be lost silently. */
function checkTag(name: string, value: string): void {
  if (!name.startsWith(TAG_PREFIX) || !TAG_NAME.test(name)) throw new Error(`not a tag name of ours: ${JSON.stringify(name)} (must start with ${TAG_PREFIX})`);
  if (value.length > MAX_TAG_VALUE) throw new Error(`tag ${name}: a value of at most ${MAX_TAG_VALUE} characters`);
}

/** Google's push notification, checked against the channel record the caller looked up. */
export interface GoogleNotification {
  channelId: string;
  token: string;
  state: 'sync' | 'exists' | 'not_exists';
  resourceId: string | null;
  messageNumber: number | null;
}

/**
 * Reads the X-Goog-* headers of a notification (no body). Returns undefined for anything that is
 * not a well-formed Google notification; the caller then verifies the channel and token with the store.
 */
export function parseGoogleNotification(headers: Record<string, string | string[] | undefined>): GoogleNotification | undefined {
  const h = (name: string) => {
    const v = headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const channelId = h('x-goog-channel-id');
  const token = h('x-goog-channel-token');
  const state = h('x-goog-resource-state');
  if (!channelId || !token || (state !== 'sync' && state !== 'exists' && state !== 'not_exists')) return undefined;
  const number = h('x-goog-message-number');
  return { channelId, token, state, resourceId: h('x-goog-resource-id') ?? null, messageNumber: number && /^\d+$/.test(number) ? Number(number) : null };
}

/**
 * Checks a parsed notification against the channel record the caller looked up by its id: the
 * token must match (by hash, in constant time) and so must the resource, once Google gave us one.
 */
export function verifyGoogleNotification(note: GoogleNotification, channel: StoredChannel | undefined): boolean {
  if (!channel || channel.channelId !== note.channelId) return false;
  if (!secretMatches(note.token, channel.secretHash)) return false;
  return !channel.resourceId || !note.resourceId || channel.resourceId === note.resourceId;
}
