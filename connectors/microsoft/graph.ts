// The one way our Microsoft connectors talk to Graph: the client's middleware chain (MSAL token, RetryHandler with our
// retry count, the test transport), a request counter, the 401 → forced refresh → NeedsReauth rule, and Graph's
// errors turned into the typed errors every platform shares (connectors/errors.ts).
import {
  AuthenticationHandler,
  Client,
  HTTPMessageHandler,
  RetryHandler,
  RetryHandlerOptions,
  type Context,
  type Middleware,
} from '@microsoft/microsoft-graph-client';
import { CursorExpired, Forbidden, Invalid, MissingScope, NeedsReauth, NotFound, RetryAfter } from '../errors.js';

/** Permissions whose 403 can only mean the grant lacks them (classifyGraphError). */
const MAILBOX_PERMISSIONS = new Set(['Tasks.ReadWrite', 'Mail.Send']);

export const GRAPH = 'https://graph.microsoft.com/v1.0';

/** What every Graph connector is built from (src/engine/platforms.ts hands these in). */
export interface GraphClientOptions {
  /** A fresh access token (MSAL silent acquisition: connectors/microsoft/auth.ts tokenProvider). */
  getAccessToken: (opts?: { forceRefresh?: boolean }) => Promise<string>;
  /** Middleware placed just before the HTTP handler (the emulator's redirect in tests). */
  transport?: Middleware;
  /** Retries of 429/503/504 by the client's RetryHandler (which honours Retry-After); default 3 as the client's. */
  maxRetries?: number;
}

/** The RetryHandler's first delay when Graph gives no Retry-After (seconds). */
const RETRY_DELAY = 1;
/**
 * The longest Retry-After waited out inside a call. The client's RetryHandler honours up to 180 s a
 * try, which could outlast the outbox's lease (a second worker would then take the action as in
 * doubt while the first still waits); longer waits go back to the outbox as RetryAfter.
 */
const MAX_INLINE_WAIT_S = 5;

/** Whether the RetryHandler may retry this answer inside the call: only a short Retry-After (or none). */
function shortWait(response: Response | undefined): boolean {
  const v = response?.headers?.get('retry-after');
  if (!v) return true;
  const seconds = /^\d+$/.test(v.trim()) ? Number(v) : Math.round((Date.parse(v) - Date.now()) / 1000);
  return Number.isFinite(seconds) && seconds <= MAX_INLINE_WAIT_S;
}

/** An OData string literal: a single quote is doubled. */
export function odataString(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

/**
 * A Graph failure as our typed error. `permission` names the delegated permission the call needs, so that a 403 says
 * which one to grant (Graph's own 403 says only "Access is denied").
 */
export function classifyGraphError(err: unknown, permission?: string): Error {
  if (err instanceof NeedsReauth || err instanceof CursorExpired) return err;
  const e = err as { statusCode?: number; code?: string | null; message?: string; headers?: Headers };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const retry = e.headers?.get?.('retry-after');
  const seconds = retry && /^\d+$/.test(retry) ? Number(retry) : null;
  if (status === 410 || e.code === 'syncStateNotFound' || e.code === 'resyncRequired' || e.code === 'SyncStateNotFound') {
    return new CursorExpired(`Graph answered ${status ?? ''} ${e.code ?? ''}: the delta token expired, a full sync is required`.replace(/\s+/g, ' '));
  }
  // A 429 is a refusal: Graph did not do the request. A 503 or 504 may come after it did.
  if (status === 429) return new RetryAfter(seconds, `Graph answered 429`, true);
  if (status === 503 || status === 504) return new RetryAfter(seconds, `Graph answered ${status}`);
  if (status === 401) return new NeedsReauth('Graph refused the access token (401)');
  if (status === 403) {
    // To Do and sendMail answer 403 only for the mailbox's grant: the permission is missing, which
    // the therapist consenting again fixes (MissingScope parks that connection's actions). On a
    // calendar a 403 may as well be an item or calendar shared read-only: permanent for that call.
    if (permission && MAILBOX_PERMISSIONS.has(permission)) {
      return new MissingScope(`Graph refused the call (403 ${e.code ?? ''}): the delegated permission ${permission} is missing; the therapist must connect again and allow it`.replace(/\s+/g, ' '));
    }
    const which = permission ? `the delegated permission ${permission} is missing (grant it and have the therapist consent again), or the item is read-only` : 'a permission is missing';
    return new Forbidden(`Graph refused the call (403 ${e.code ?? ''}): ${which}`.replace(/\s+/g, ' '));
  }
  if (status === 404) return new NotFound(`Graph answered 404 (${e.code ?? 'not found'})`);
  if (status === 400 || status === 409 || status === 422) {
    // Graph's own text may quote what it refused (an attendee's or recipient's address): kept only
    // when it names none, so that no address reaches last_error or the logs.
    const text = typeof e.message === 'string' && !e.message.includes('@') ? `: ${e.message.slice(0, 200)}` : '';
    return new Invalid(`Graph refused the request (${status} ${e.code ?? ''})${text}`.replace(/\s+/g, ' '));
  }
  if (status !== undefined && status >= 500) return new RetryAfter(seconds, `Graph answered ${status}`);
  if (status === undefined || status === -1) return new RetryAfter(null, `no answer from Graph (${e.message ?? 'connection failed'})`);
  return err instanceof Error ? err : new Error(String(err));
}

/** Counts every HTTP attempt (retries included): what the bench reports and the tests check. */
class CountingMiddleware implements Middleware {
  #next: Middleware | undefined;
  constructor(private readonly onRequest: () => void) {}
  async execute(context: Context): Promise<void> {
    this.onRequest();
    if (!this.#next) throw new Error('CountingMiddleware: no next middleware');
    await this.#next.execute(context);
  }
  setNext(next: Middleware): void {
    this.#next = next;
  }
}

export interface SendOptions {
  /**
   * The call may not be repeated once Graph may have acted on it (sendMail): the RetryHandler then retries a 429 only
   * (Graph refused the request, nothing was done), never a 503/504, which may come after the effect.
   */
  atMostOnce?: boolean;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/**
 * A Graph client for one connection. Every connector of the connection (calendar, To Do, mail) goes through one of
 * these, so all have the same throttling policy and the same error types.
 */
export class GraphSession {
  readonly client: Client;
  /** HTTP requests made (every attempt, retries included). */
  requests = 0;
  readonly #maxRetries: number;
  readonly #permission: string;
  #forceRefresh = false;
  /** The Graph client wraps whatever getAccessToken throws; the original is kept here. */
  #authFailure: Error | undefined;

  constructor(opts: GraphClientOptions, permission: string) {
    this.#maxRetries = opts.maxRetries ?? 3;
    this.#permission = permission;
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
    const retry = new RetryHandler(new RetryHandlerOptions(RETRY_DELAY, this.#maxRetries, (_delay, _attempt, _request, _options, response) => shortWait(response)));
    const count = new CountingMiddleware(() => {
      this.requests += 1;
    });
    const http = new HTTPMessageHandler();
    auth.setNext(retry);
    retry.setNext(count);
    if (opts.transport) {
      count.setNext(opts.transport);
      opts.transport.setNext?.(http);
    } else {
      count.setNext(http);
    }
    this.client = Client.initWithMiddleware({ middleware: auth, defaultVersion: 'v1.0' });
  }

  classify(err: unknown): Error {
    return classifyGraphError(err, this.#permission);
  }

  /** A call; a 401 gets one more try with a token refreshed by force, then NeedsReauth. */
  async authorized<T>(call: () => Promise<T>): Promise<T> {
    const failed = (err: unknown): Error => {
      const auth = this.#authFailure;
      this.#authFailure = undefined;
      if (!auth) return this.classify(err);
      const e = this.classify(auth);
      // No token, so no request went out: a transient failure here is a refusal (safe to repeat even a send).
      return e instanceof RetryAfter && !e.refused ? new RetryAfter(e.seconds, `no access token: ${e.message}`, true) : e;
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

  /** GET with these Prefer values (joined into one header). */
  async get<T>(url: string, prefer: string[] = []): Promise<T> {
    return this.authorized(async () => {
      const req = this.client.api(url);
      if (prefer.length > 0) req.header('Prefer', prefer.join(', '));
      return (await req.get()) as T;
    });
  }

  async send<T>(method: 'post' | 'patch' | 'delete', url: string, body?: unknown, opts: SendOptions = {}): Promise<T> {
    return this.authorized(async () => {
      const req = this.client.api(url);
      for (const [k, v] of Object.entries(opts.headers ?? {})) req.header(k, v);
      if (opts.atMostOnce) {
        // Per-request RetryHandler options (the handler reads them from the request's middleware control first).
        req.middlewareOptions([new RetryHandlerOptions(RETRY_DELAY, this.#maxRetries, (_delay, _attempt, _request, _options, response) => response.status === 429 && shortWait(response))]);
      }
      return (await (method === 'delete' ? req.delete() : method === 'post' ? req.post(body) : req.patch(body))) as T;
    });
  }

  /** Every item of a collection, following @odata.nextLink. */
  async all<T>(url: string, prefer: string[] = []): Promise<T[]> {
    const out: T[] = [];
    let next: string | undefined = url;
    while (next) {
      const page: { value: T[]; '@odata.nextLink'?: string } = await this.get(next, prefer);
      out.push(...page.value);
      next = page['@odata.nextLink'];
    }
    return out;
  }
}
