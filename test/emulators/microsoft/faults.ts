// Fault injection for the Microsoft emulator: FaultSpecs queued by tests and consumed in order by the requests
// they match (429 with/without Retry-After, 5xx, 401, 403, 410, dropped sockets, lost replies, delays, invalid_grant).
import { FaultList, type FaultQueue as SharedQueue, type FaultSpecOf } from '../faults.js';

export type Fault =
  | { status: 429; retryAfter?: number }
  | { status: 500 | 502 | 503 | 504 }
  | { status: 410 }
  | { status: 401 }
  /** Graph's 403 ErrorAccessDenied, as for a permission the token does not carry (e.g. an admin withdrew it). */
  | { status: 403 }
  /** The socket is destroyed before the request is processed: no effect, no answer. */
  | { drop: true }
  /** The request takes effect, then the socket is destroyed instead of the answer: a lost reply. */
  | { dropAfter: true }
  | { delayMs: number }
  /** The token endpoint answers invalid_grant with this AADSTS code (default 70008) and optional suberror. */
  | { invalidGrant: true; aadsts?: number; suberror?: string };

/**
 * Default match (no path): every Graph request (/v1.0/...); an invalidGrant fault waits for the token endpoint.
 * With `path`, exactly the requests whose path matches (e.g. /oauth2\/v2\.0\/token$/ to hit the token endpoint).
 */
export type FaultSpec = FaultSpecOf<Fault>;
export type FaultQueue = SharedQueue<Fault>;

/** Which endpoint a request went to, for the default match. */
export type Endpoint = 'graph' | 'token' | 'identity' | 'other';

export class Faults extends FaultList<Fault, Endpoint> {
  constructor() {
    super((fault, endpoint) => ('invalidGrant' in fault ? endpoint === 'token' : endpoint === 'graph'));
  }
}
