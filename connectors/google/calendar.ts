// The Google Calendar connector: calendar list, full and incremental sync with the sync token
// (singleEvents, paging, 410 → CursorExpired), push channels (events.watch, channels.stop), and
// Google's errors turned into the typed errors every platform shares.
import { calendar, type calendar_v3 } from '@googleapis/calendar';
import type { OAuth2Client } from 'google-auth-library';
import { CursorExpired, Forbidden, NeedsReauth, NotFound, RetryAfter } from '../errors.js';
import { secretMatches, type CalendarConnector, type ChannelRecord, type CredentialStore, type RemoteCalendar, type StoredChannel, type SyncPage } from '../port.js';
import type { CalendarItem, ItemError } from '../types.js';
import { normaliseGoogleEvent } from './normalise.js';
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

const RATE_LIMIT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'quotaExceeded']);
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

export class GoogleCalendarConnector implements CalendarConnector {
  readonly provider = 'google' as const;
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

  /** One API call with our retries: transient failures are retried with backoff and jitter. */
  async #call<T>(fn: (options: { timeout: number; retry: boolean; retryConfig: { retry: number } }) => Promise<{ data: T }>, retries = this.#opts.retries): Promise<T> {
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

  async stopChannel(channel: { channelId: string; resourceId: string | null }): Promise<void> {
    try {
      await this.#call((o) => this.#api.channels.stop({ requestBody: { id: channel.channelId, ...(channel.resourceId ? { resourceId: channel.resourceId } : {}) } }, o));
    } catch (err) {
      if (!(err instanceof NotFound)) throw err; // already gone: that is what we wanted
    }
  }
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
