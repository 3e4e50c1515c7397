// The call policy every Google connector shares: Google's errors as our typed errors, and retries with
// backoff and jitter inside one call, only where repeating is safe (idempotent writes, proven refusals).
import type { OAuth2Client } from 'google-auth-library';
import { CursorExpired, Forbidden, Invalid, MissingScope, NeedsReauth, NotFound, RetryAfter } from '../errors.js';
import type { CredentialStore } from '../port.js';
import { guardGrant, isInvalidGrant } from './oauth.js';

/** What every Google connector is built from (src/engine/platforms.ts builds them all alike). */
export interface GoogleConnectorOptions {
  auth: OAuth2Client;
  credentials: CredentialStore;
  /** The API's root URL; Google's own by default (the emulator in tests). */
  rootUrl?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** How often a transient failure is retried inside one call before RetryAfter reaches the caller. */
  retries?: number;
  /** Waits between those retries (tests pass a fast one). */
  sleep?: (ms: number) => Promise<void>;
}

/** The per-request options every call passes to the generated clients. */
export type CallOptions = { timeout: number; retry: boolean; retryConfig: { retry: number } };

/**
 * Which failures a call may repeat by itself:
 * - 'transient': every transient one (429, 403 rate limits, 5xx, timeouts, lost answers). For reads,
 *   and for writes that are idempotent (an event insert with our own id, patch, delete).
 * - 'refused': only answers that prove Google did nothing (429, 403 rate limits). After a 5xx or a lost
 *   answer the write may have happened: the caller checks first, or gives up (Gmail send).
 * - 'never': not even those (events.watch: each accepted request is one more channel).
 */
export type RetryPolicy = 'transient' | 'refused' | 'never';

/** Google's rate-limit reasons on a 403 (API-NOTES, Limits and errors): retried like a 429. */
const RATE_LIMIT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'quotaExceeded', 'dailyLimitExceeded']);
/** Reasons of a 403 that mean the grant lacks the method's scope (the emulator and Google: "Insufficient Permission"). */
const SCOPE_REASONS = new Set(['insufficientPermissions', 'ACCESS_TOKEN_SCOPE_INSUFFICIENT']);
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

function statusOf(err: GoogleErrorShape): number | undefined {
  return err.response?.status ?? (typeof err.status === 'number' ? err.status : undefined);
}

/** The first `errors[].reason` of Google's JSON error body, or the one-platform `details[].reason`. */
export function reasonOf(err: unknown): string | undefined {
  const data = (err as GoogleErrorShape).response?.data as { error?: { errors?: { reason?: unknown }[]; details?: { reason?: unknown }[] } } | undefined;
  const reason = data?.error?.errors?.[0]?.reason ?? data?.error?.details?.find((d) => typeof d.reason === 'string')?.reason;
  return typeof reason === 'string' ? reason : undefined;
}

/** Google's own message, kept only when it cannot carry an address (no client emails in our errors or logs). */
function safeMessage(err: unknown): string | undefined {
  const data = (err as GoogleErrorShape).response?.data as { error?: { message?: unknown } } | undefined;
  const m = data?.error?.message;
  if (typeof m !== 'string' || m.includes('@')) return undefined;
  return m.length > 200 ? `${m.slice(0, 200)}…` : m;
}

/**
 * Google's error, as one of ours. The status code decides, never the message text (API-NOTES).
 * `scope`: the scope the call needs, named in the Forbidden a missing scope gives.
 */
export function classifyGoogleError(err: unknown, scope?: string): Error {
  if (isInvalidGrant(err)) return new NeedsReauth('Google refused the refresh token (invalid_grant)');
  const e = err as GoogleErrorShape;
  const oauthError = (e.response?.data as { error?: unknown } | undefined)?.error;
  if (oauthError === 'invalid_client' || oauthError === 'unauthorized_client') {
    // The operator's OAuth client is wrong (a rotated secret): no therapist can fix that by consenting.
    return new Forbidden(`Google refused this server's OAuth client (${oauthError}): check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET`);
  }
  const status = statusOf(e);
  const reason = reasonOf(e);
  const retryHeader = header(e.response?.headers, 'retry-after');
  const retrySeconds = retryHeader !== null && /^\d+$/.test(retryHeader.trim()) ? Number(retryHeader) : null;
  if (status === 410) return new CursorExpired('Google answered 410: the sync token expired, a full sync is required');
  // 429 and the 403 rate limits say Google did nothing: `refused`, so even a send may be repeated later.
  if (status === 429) return new RetryAfter(retrySeconds, `Google answered 429${retrySeconds !== null ? `, retry after ${retrySeconds} s` : ''}`, true);
  if (status === 403 && reason && RATE_LIMIT_REASONS.has(reason)) return new RetryAfter(retrySeconds, `Google answered 403 ${reason}`, true);
  if (status === 401) return new NeedsReauth('Google answered 401 after a token refresh: the grant no longer works');
  if (status === 403 && reason && SCOPE_REASONS.has(reason)) {
    // Only the therapist consenting again gives the grant its scope: handled as a lost grant, so the
    // connection is marked and its actions wait (the issue: "parks only that connection").
    return new MissingScope(
      `Google refused the call (403 ${reason}): the connection's grant lacks the scope it needs${scope ? ` (${scope})` : ''}; the therapist must connect again and allow it`,
    );
  }
  if (status === 403) return new Forbidden(`Google refused the call (403${reason ? ` ${reason}` : ''}): a scope or permission is missing`);
  if (status === 404) return new NotFound('Google answered 404: the calendar, list or item is gone, or this account cannot see it');
  if (status !== undefined && status >= 500) return new RetryAfter(retrySeconds, `Google answered ${status}`);
  if (status === undefined) {
    // No answer at all: a dropped connection, a reset, a timeout.
    return new RetryAfter(null, `no answer from Google (${e.code ?? e.message ?? 'connection failed'})`);
  }
  if (status === 400 || status === 409 || status === 412) {
    // A request Google judged invalid (or in conflict): repeating it cannot help. Google's message is kept
    // only when it names no address.
    const m = safeMessage(err);
    return new GoogleRefused(status, reason, `Google refused the request (${status}${reason ? ` ${reason}` : ''})${m ? `: ${m}` : ''}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** A request Google refused as invalid (400) or conflicting (409): not transient, never retried. */
export class GoogleRefused extends Invalid {
  override readonly name = 'GoogleRefused';
  constructor(
    readonly status: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One connector's way of calling Google: the grant guarded (invalid_grant → NeedsReauth, the connection
 * marked), errors classified, and retries by policy. `requests` counts HTTP requests made through it
 * (google-auth-library's own refresh-and-retry after a 401/403 is one call to us).
 */
export class GoogleCaller {
  readonly #credentials: CredentialStore;
  readonly #scope: string | undefined;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly sleep: (ms: number) => Promise<void>;
  requests = 0;

  constructor(opts: GoogleConnectorOptions, scope?: string) {
    this.#credentials = opts.credentials;
    this.#scope = scope;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = opts.retries ?? 3;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** The backoff before retry `attempt` (0-based): exponential, with jitter, capped. */
  backoffMs(attempt: number): number {
    return Math.min(MAX_INLINE_WAIT_MS, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
  }

  /**
   * One API call with our retries. Throws our typed errors; a failure the policy does not let us repeat
   * goes to the caller at once (RetryAfter for a transient one: the caller decides, e.g. checks first).
   */
  async call<T>(fn: (options: CallOptions) => Promise<{ data: T }>, policy: RetryPolicy = 'transient', retries = this.retries): Promise<T> {
    // gaxios's own retries are off: it does not retry 403 rate limits, and we want one policy.
    const options: CallOptions = { timeout: this.timeoutMs, retry: false, retryConfig: { retry: 0 } };
    for (let attempt = 0; ; attempt++) {
      try {
        this.requests++;
        const res = await guardGrant(this.#credentials, () => fn(options));
        return res.data;
      } catch (raw) {
        const err = raw instanceof NeedsReauth ? raw : classifyGoogleError(raw, this.#scope);
        if (err instanceof NeedsReauth && !(raw instanceof NeedsReauth)) {
          await this.#credentials.markNeedsReauth(err.message);
        }
        if (!(err instanceof RetryAfter) || attempt >= retries || policy === 'never') throw err;
        if (policy === 'refused' && !err.refused) throw err;
        const wait = err.seconds !== null ? err.seconds * 1000 : this.backoffMs(attempt);
        if (wait > MAX_INLINE_WAIT_MS) throw err;
        await this.sleep(wait);
      }
    }
  }
}
