// Fault injection for the Microsoft emulator: FaultSpecs queued by tests and consumed in order by the requests
// they match (429 with/without Retry-After, 5xx, 401, 410, dropped sockets, delays, invalid_grant).

export type Fault =
  | { status: 429; retryAfter?: number }
  | { status: 500 | 502 | 503 | 504 }
  | { status: 410 }
  | { status: 401 }
  | { drop: true }
  | { delayMs: number }
  /** The token endpoint answers invalid_grant with this AADSTS code (default 70008) and optional suberror. */
  | { invalidGrant: true; aadsts?: number; suberror?: string };

export interface FaultSpec {
  /**
   * Default (no path): every Graph request (/v1.0/...); an invalidGrant fault waits for the token endpoint.
   * With `path`, exactly the requests whose path matches (e.g. /oauth2\/v2\.0\/token$/ to hit the token endpoint).
   */
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
export type Endpoint = 'graph' | 'token' | 'identity' | 'other';

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
    return endpoint === 'graph';
  }
}
