// Fault injection for the Google emulator: FaultSpecs queued by tests and consumed in order by the requests
// they match (rate limits, server errors, 401, 410, dropped sockets, delays, invalid_grant).
import { FaultList, type FaultQueue as SharedQueue, type FaultSpecOf } from '../faults.js';

export type Fault =
  | { status: 429; retryAfter?: number }
  | { status: 403; reason: 'rateLimitExceeded' | 'userRateLimitExceeded' | 'quotaExceeded'; retryAfter?: number }
  | { status: 500 | 502 | 503 }
  | { status: 410 }
  | { status: 401 }
  | { drop: true }
  | { delayMs: number }
  | { invalidGrant: true };

/** Default match: any request to calendar/v3 or the token endpoint (invalidGrant: the token endpoint only). */
export type FaultSpec = FaultSpecOf<Fault>;
export type FaultQueue = SharedQueue<Fault>;

/** Which endpoint a request went to, for the default match. */
export type Endpoint = 'calendar' | 'token' | 'other';

export class Faults extends FaultList<Fault, Endpoint> {
  constructor() {
    super((fault, endpoint) => ('invalidGrant' in fault ? endpoint === 'token' : endpoint === 'calendar' || endpoint === 'token'));
  }
}
