// Structured logging (pino) that cannot leak health data: fields that carry client names, emails,
// event text or tokens are replaced at any depth, and email addresses are masked in every string.
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger };

/** Field names whose values never reach a log, compared without case, at any depth. */
const REDACTED_FIELDS = new Set(
  [
    // people
    'name', 'displayName', 'display_name', 'clientName', 'client_name', 'firstName', 'lastName', 'fullName',
    'email', 'emailAddress', 'email_address', 'emails', 'address', 'phone', 'attendees', 'organizer', 'creator',
    'requiredAttendees', 'optionalAttendees',
    // event text
    'title', 'summary', 'subject', 'description', 'body', 'bodyPreview', 'notes', 'location', 'comment', 'text',
    // secrets
    'token', 'accessToken', 'access_token', 'refreshToken', 'refresh_token', 'idToken', 'id_token', 'authCode',
    'credentials', 'authorization', 'password', 'secret', 'clientSecret', 'client_secret', 'clientState',
    'key', 'cookie', 'set-cookie', 'x-goog-channel-token', 'userOAuthToken', 'userIdToken', 'systemIdToken',
    'payload', 'raw',
  ].map((f) => f.toLowerCase()),
);

const CENSOR = '[redacted]';
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
const SECRET_PARAM = /([?&#](?:code|token|access_token|refresh_token|id_token|client_secret|validationToken)=)[^&\s]+/gi;

export function scrubString(s: string): string {
  return s.replace(EMAIL, '[email]').replace(BEARER, '$1 [redacted]').replace(SECRET_PARAM, '$1[redacted]');
}

/** A copy of a value with redacted fields replaced and strings scrubbed; cycles are cut. */
export function redact(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (seen.has(value)) return '[cycle]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, seen));
  if (value instanceof Error) return redactError(value, seen);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = REDACTED_FIELDS.has(k.toLowerCase()) && v !== undefined && v !== null ? CENSOR : redact(v, seen);
  }
  return out;
}

function redactError(err: Error, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name, message: scrubString(err.message) };
  if (err.stack) out['stack'] = scrubString(err.stack);
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out['code'] = code;
  if (err.cause !== undefined) out['cause'] = redact(err.cause, seen);
  return out;
}

export interface LogOptions {
  level?: LevelWithSilent;
  /** Where lines go; stdout by default (Cloud Run and Functions read structured JSON there). */
  destination?: DestinationStream;
  /** Fixed fields on every line (e.g. the component). */
  base?: Record<string, unknown>;
}

export function createLogger(opts: LogOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'sessionkeeper', ...opts.base },
      messageKey: 'message', // the field Cloud Logging reads as the message
      formatters: {
        level: (label) => ({ severity: label.toUpperCase(), level: label }),
        log: (obj) => redact(obj) as Record<string, unknown>,
      },
      serializers: { err: (e: unknown) => redact(e) },
      hooks: {
        // The message string itself may carry an address pasted from a platform error.
        logMethod(args, method) {
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrubString(a) : a)) as Parameters<typeof method>;
          method.apply(this, scrubbed);
        },
      },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that writes nothing: for tests and library use that does not care. */
export const silentLogger: Logger = pino({ level: 'silent' });
