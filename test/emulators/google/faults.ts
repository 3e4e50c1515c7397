// Fault injection for the Google emulator: FaultSpecs queued by tests and consumed in order by the requests
// they match (rate limits, server errors, 401, 410, dropped sockets before or after the effect, delays,
// invalid_grant), and the request hook of crash tests. Both apply to every API the emulator serves: Calendar,
// Tasks and Gmail.
import { FaultList, type FaultQueue as SharedQueue, type FaultSpecOf } from '../faults.js';

export type Fault =
  | { status: 429; retryAfter?: number }
  | { status: 403; reason: 'rateLimitExceeded' | 'userRateLimitExceeded' | 'quotaExceeded'; retryAfter?: number }
  | { status: 500 | 502 | 503 }
  | { status: 410 }
  | { status: 401 }
  /** The socket is destroyed before the request is processed: no effect, no answer. */
  | { drop: true }
  /** The request takes effect (a write is applied), then the socket is destroyed: a lost reply. */
  | { dropAfter: true }
  | { delayMs: number }
  | { invalidGrant: true };

/** Default match: any request to calendar/v3, tasks/v1, gmail/v1 or the token endpoint (invalidGrant: the token endpoint only). */
export type FaultSpec = FaultSpecOf<Fault>;
export type FaultQueue = SharedQueue<Fault>;

/** The APIs the emulator serves. */
export type Api = 'calendar' | 'tasks' | 'gmail';

/** Which endpoint a request went to, for the default match. */
export type Endpoint = Api | 'token' | 'other';

export function isApi(endpoint: Endpoint): endpoint is Api {
  return endpoint === 'calendar' || endpoint === 'tasks' || endpoint === 'gmail';
}

export class Faults extends FaultList<Fault, Endpoint> {
  constructor() {
    super((fault, endpoint) => ('invalidGrant' in fault ? endpoint === 'token' : isApi(endpoint) || endpoint === 'token'));
  }
}

/** What a request hook is told: `seq` counts API requests (Calendar, Tasks, Gmail) from 1 since the hook was set. */
export interface RequestHookInfo {
  seq: number;
  method: string;
  path: string;
  /** Which API the request went to. */
  api: Api;
  /** 'before': nothing of the request is processed yet; 'after': its effect is applied, the answer not yet written. */
  phase: 'before' | 'after';
}

/** Returning 'drop' destroys the socket at that point (before: no effect at all; after: effect kept, no answer). */
export type RequestHook = (info: RequestHookInfo) => 'drop' | void | Promise<'drop' | void>;
