// The typed errors every connector throws, the same for every platform (DESIGN.md, Contracts):
// callers decide what to do from the type, never from a platform's status code or message.

export class ConnectorError extends Error {
  override readonly name: string = 'ConnectorError';
}

/** The stored cursor (sync token, delta link) is no longer valid: resync fully and diff the ids. */
export class CursorExpired extends ConnectorError {
  override readonly name = 'CursorExpired';
}

/** The account's grant is gone (revoked, expired refresh token): the therapist must consent again. */
export class NeedsReauth extends ConnectorError {
  override readonly name: string = 'NeedsReauth';
}

/**
 * The grant lacks a permission the call needs (a scope the therapist left unticked at consent):
 * like a lost grant, only the therapist consenting again fixes it, so it is handled as one.
 */
export class MissingScope extends NeedsReauth {
  override readonly name = 'MissingScope';
}

/**
 * A transient failure (rate limit, 5xx, timeout, dropped connection): try again later. `seconds` is
 * the platform's own Retry-After when it gave one; otherwise null and the caller backs off.
 */
export class RetryAfter extends ConnectorError {
  override readonly name = 'RetryAfter';
  constructor(
    readonly seconds: number | null,
    message = seconds === null ? 'a transient platform error' : `the platform asked to retry after ${seconds} s`,
    /**
     * The platform said it did not do the request (429, a rate limit): repeating it cannot do it
     * twice. False after a 5xx, a timeout or a lost answer, when a write may have happened.
     */
    readonly refused = false,
  ) {
    super(message);
  }
}

export class NotFound extends ConnectorError {
  override readonly name = 'NotFound';
}

/**
 * The platform judged the request itself wrong (400, 409, 422: a field it does not take, an address
 * it refuses): repeating it cannot help. The message names no address.
 */
export class Invalid extends ConnectorError {
  override readonly name: string = 'Invalid';
}

/** Permanently refused (a missing scope or permission): retrying will not help. */
export class Forbidden extends ConnectorError {
  override readonly name = 'Forbidden';
}
