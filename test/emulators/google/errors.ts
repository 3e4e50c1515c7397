// Error bodies of the Google emulator: Calendar v3, Tasks v1 and Gmail v1 errors in Google's JSON shape
// {"error":{code,message,errors,status}} and OAuth token-endpoint errors; the 401/409/410 texts are the ones
// quoted in the brief and API-NOTES (Google).

export interface GoogleErrorItem {
  message: string;
  domain: string;
  reason: string;
  location?: string;
  locationType?: string;
}

/** A Calendar API error answered as Google's JSON error body. */
export class GoogleApiError extends Error {
  readonly code: number;
  readonly errors: GoogleErrorItem[];
  readonly status: string | undefined;
  readonly headers: Record<string, string>;

  constructor(code: number, message: string, errors: GoogleErrorItem[], status?: string, headers: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.errors = errors;
    this.status = status;
    this.headers = headers;
  }

  body(): { error: Record<string, unknown> } {
    const error: Record<string, unknown> = { code: this.code, message: this.message, errors: this.errors };
    if (this.status !== undefined) error['status'] = this.status;
    return { error };
  }
}

function item(domain: string, reason: string, message: string): GoogleErrorItem {
  return { domain, reason, message };
}

/** 401: the exact body Google sends for a missing, unknown, expired or revoked access token. */
export function authError(): GoogleApiError {
  return new GoogleApiError(
    401,
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
    [{ message: 'Invalid Credentials', domain: 'global', reason: 'authError', location: 'Authorization', locationType: 'header' }],
    'UNAUTHENTICATED',
  );
}

/** 403: the token's scopes do not include any scope the discovery document lists for the method. */
export function insufficientPermissions(): GoogleApiError {
  return new GoogleApiError(
    403,
    'Request had insufficient authentication scopes.',
    [{ message: 'Insufficient Permission', domain: 'global', reason: 'insufficientPermissions' }],
    'PERMISSION_DENIED',
  );
}

export function requiredAccessLevel(): GoogleApiError {
  return new GoogleApiError(
    403,
    'You need to have writer access to this calendar.',
    [item('calendar', 'requiredAccessLevel', 'You need to have writer access to this calendar.')],
    'PERMISSION_DENIED',
  );
}

export function notFound(message = 'Not Found'): GoogleApiError {
  return new GoogleApiError(404, message, [item('global', 'notFound', message)], 'NOT_FOUND');
}

export function invalid(message = 'Invalid Value', reason = 'invalid'): GoogleApiError {
  return new GoogleApiError(400, message, [item('global', reason, message)], 'INVALID_ARGUMENT');
}

export function required(message: string): GoogleApiError {
  return new GoogleApiError(400, message, [item('global', 'required', message)], 'INVALID_ARGUMENT');
}

export function timeRangeEmpty(): GoogleApiError {
  return new GoogleApiError(
    400,
    'The specified time range is empty.',
    [item('calendar', 'timeRangeEmpty', 'The specified time range is empty.')],
    'INVALID_ARGUMENT',
  );
}

export function parseError(): GoogleApiError {
  return new GoogleApiError(400, 'Parse Error', [item('global', 'parseError', 'Parse Error')], 'INVALID_ARGUMENT');
}

/** 409 for a client-chosen event id already used in the calendar (body exactly as in the brief: no status). */
export function duplicate(): GoogleApiError {
  return new GoogleApiError(409, 'The requested identifier already exists.', [
    item('global', 'duplicate', 'The requested identifier already exists.'),
  ]);
}

/**
 * 412 for a write whose If-Match names an etag the event no longer has (Calendar guide "Get specific versions of
 * resources": "Otherwise, you will get a 412 (Precondition failed) response code"). The body as Google sends it: message
 * "Precondition Failed", reason conditionNotMet, domain global, located at the If-Match header, no status (as client logs
 * quote it: googleapis/google-api-dotnet-client#222, phw198/OutlookGoogleCalendarSync#181).
 */
export function preconditionFailed(): GoogleApiError {
  return new GoogleApiError(412, 'Precondition Failed', [
    { domain: 'global', reason: 'conditionNotMet', message: 'Precondition Failed', locationType: 'header', location: 'If-Match' },
  ]);
}

/** 410 when deleting an event that is already deleted. */
export function deleted(): GoogleApiError {
  return new GoogleApiError(410, 'Resource has been deleted', [item('global', 'deleted', 'Resource has been deleted')], 'GONE');
}

/** 410 for an expired sync token (discovery doc, events.list syncToken: "the server will respond with a 410 GONE"). */
export function fullSyncRequired(): GoogleApiError {
  const m = 'Sync token is no longer valid, a full sync is required.';
  return new GoogleApiError(410, m, [item('global', 'fullSyncRequired', m)], 'GONE');
}

/**
 * 400 for more than 5 reminder overrides (Event.reminders.overrides: "The maximum number of override reminders
 * is 5"). Reason as other integrations record it from the live API (eventRemindersCountExceedsLimit, domain
 * calendar); the message text is the emulator's.
 */
export function tooManyReminders(): GoogleApiError {
  const m = 'The number of reminder overrides exceeds the limit of 5.';
  return new GoogleApiError(400, m, [item('calendar', 'eventRemindersCountExceedsLimit', m)], 'INVALID_ARGUMENT');
}

/** 400 for reminders.useDefault true together with overrides (reason and message as integrations record them). */
export function defaultRemindersWithOverrides(): GoogleApiError {
  const m = 'Cannot specify both default reminders and overrides at the same time.';
  return new GoogleApiError(400, m, [item('calendar', 'cannotUseDefaultRemindersAndSpecifyOverride', m)], 'INVALID_ARGUMENT');
}

/** Google's one-platform 404 text (Tasks API: "Requested entity was not found."). */
export function entityNotFound(): GoogleApiError {
  return notFound('Requested entity was not found.');
}

/** Gmail's 400 for a bad message: reason invalidArgument. */
export function invalidArgument(message: string): GoogleApiError {
  return new GoogleApiError(400, message, [item('global', 'invalidArgument', message)], 'INVALID_ARGUMENT');
}

/** Gmail's 403 for a userId other than "me" or the account's own address. */
export function delegationDenied(userId: string): GoogleApiError {
  const m = `Delegation denied for ${userId}`;
  return new GoogleApiError(403, m, [item('global', 'forbidden', m)], 'PERMISSION_DENIED');
}

/** A generic 410 for APIs without sync tokens (a fault on Tasks or Gmail). */
export function gone(): GoogleApiError {
  return new GoogleApiError(410, 'Resource has been deleted', [item('global', 'deleted', 'Resource has been deleted')], 'GONE');
}

export type RateLimitReason = 'rateLimitExceeded' | 'userRateLimitExceeded' | 'quotaExceeded';

const RATE_LIMIT_MESSAGES: Record<RateLimitReason, string> = {
  rateLimitExceeded: 'Rate Limit Exceeded',
  userRateLimitExceeded: 'User Rate Limit Exceeded',
  quotaExceeded: 'Calendar usage limits exceeded.',
};

/** `api`: the quotaExceeded text is Calendar's own; the other APIs answer "Quota exceeded". */
export function rateLimited403(reason: RateLimitReason, headers: Record<string, string> = {}, api: 'calendar' | 'tasks' | 'gmail' = 'calendar'): GoogleApiError {
  const m = reason === 'quotaExceeded' && api !== 'calendar' ? 'Quota exceeded.' : RATE_LIMIT_MESSAGES[reason];
  return new GoogleApiError(403, m, [item('usageLimits', reason, m)], 'PERMISSION_DENIED', headers);
}

export function tooManyRequests(headers: Record<string, string> = {}): GoogleApiError {
  return new GoogleApiError(
    429,
    'Rate Limit Exceeded',
    [item('usageLimits', 'rateLimitExceeded', 'Rate Limit Exceeded')],
    'RESOURCE_EXHAUSTED',
    headers,
  );
}

export function serverError(code: 500 | 502 | 503): GoogleApiError {
  const message = code === 500 ? 'Backend Error' : code === 502 ? 'Bad Gateway' : 'The service is currently unavailable.';
  return new GoogleApiError(code, message, [item('global', 'backendError', message)], code === 500 ? 'INTERNAL' : 'UNAVAILABLE');
}

/** An error of the OAuth token or revoke endpoint: {"error": "...", "error_description": "..."}. */
export class OAuthError extends Error {
  readonly httpStatus: number;
  readonly error: string;
  readonly description: string | undefined;

  constructor(httpStatus: number, error: string, description?: string) {
    super(description ?? error);
    this.httpStatus = httpStatus;
    this.error = error;
    this.description = description;
  }

  body(): Record<string, string> {
    return this.description === undefined ? { error: this.error } : { error: this.error, error_description: this.description };
  }
}

export function invalidGrant(description = 'Token has been expired or revoked.'): OAuthError {
  return new OAuthError(400, 'invalid_grant', description);
}

export function invalidClient(): OAuthError {
  return new OAuthError(401, 'invalid_client', 'The OAuth client was not found.');
}
