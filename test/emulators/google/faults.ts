// Fault injection for the Google emulator: FaultSpecs queued by tests and consumed in order by the requests
// they match (rate limits, server errors, 401, 410, dropped sockets, delays, invalid_grant).

export type Fault =
  | { status: 429; retryAfter?: number }
  | { status: 403; reason: 'rateLimitExceeded' | 'userRateLimitExceeded' | 'quotaExceeded'; retryAfter?: number }
  | { status: 500 | 502 | 503 }
  | { status: 410 }
  | { status: 401 }
  | { drop: true }
  | { delayMs: number }
  | { invalidGrant: true };

export interface FaultSpec {
  /** Default: any request to calendar/v3 or the token endpoint (invalidGrant: the token endpoint only). */
  match?: { method?: string; path?: RegExp };
  /** How many matching requests it applies to; default 1. */
  times?: number;
  fault: Fault;
}

export interface FaultQueue {
  add(f: FaultSpec): void;
  clear(): void;
  /** How many fault applications are still queued (the sum of the remaining `times`). */
  pending(): number;
}

/** Which endpoint a request went to, for the default match. */
export type Endpoint = 'calendar' | 'token' | 'other';

interface Entry {
  spec: FaultSpec;
  remaining: number;
}

export class Faults implements FaultQueue {
  private entries: Entry[] = [];

  add(f: FaultSpec): void {
    const times = f.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new Error(`FaultSpec.times must be a positive integer, got ${String(f.times)}`);
    this.entries.push({ spec: f, remaining: times });
  }

  clear(): void {
    this.entries = [];
  }

  pending(): number {
    return this.entries.reduce((n, e) => n + e.remaining, 0);
  }

  /** The first queued fault matching this request, consumed; undefined when none applies. */
  take(method: string, path: string, endpoint: Endpoint): Fault | undefined {
    for (const e of this.entries) {
      if (!this.matches(e.spec, method, path, endpoint)) continue;
      e.remaining -= 1;
      if (e.remaining <= 0) this.entries.splice(this.entries.indexOf(e), 1);
      return e.spec.fault;
    }
    return undefined;
  }

  private matches(spec: FaultSpec, method: string, path: string, endpoint: Endpoint): boolean {
    const m = spec.match;
    if (m?.method !== undefined && m.method.toUpperCase() !== method.toUpperCase()) return false;
    if (m?.path !== undefined) {
      m.path.lastIndex = 0;
      return m.path.test(path);
    }
    if ('invalidGrant' in spec.fault) return endpoint === 'token';
    return endpoint === 'calendar' || endpoint === 'token';
  }
}
