// Error bodies of the Microsoft emulator: Graph errors {"error":{code,message,innerError}} (Graph "Error responses",
// as cited by subscription-post-subscriptions.md) and Microsoft identity platform token-endpoint errors (AADSTS codes).
import crypto from 'node:crypto';

// The reference pages give few error texts: where a code or message below is not quoted from them, it is the wording
// real services are commonly seen to use, or (marked "emulator's choice") one picked here; key on status and code.

/** A Graph API error answered in Graph's JSON shape; innerError is filled in by the server per request. */
export class GraphApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }

  body(innerError: Record<string, string>): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, innerError } };
  }
}

/** 401 for a missing, unknown or expired access token (the wording of the brief). */
export function expiredToken(): GraphApiError {
  return new GraphApiError(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.');
}

export function emptyToken(): GraphApiError {
  return new GraphApiError(401, 'InvalidAuthenticationToken', 'Access token is empty.');
}

export function accessDenied(): GraphApiError {
  return new GraphApiError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
}

export function itemNotFound(): GraphApiError {
  return new GraphApiError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
}

/**
 * 412 for a write whose If-Match names a version the item no longer has: Graph's Exchange error, code and message as
 * client logs quote them (microsoftgraph/microsoft-graph-docs-contrib#7934, microsoftgraph/msgraph-sdk-dotnet#1201:
 * "Status Code: PreconditionFailed … Code: ErrorIrresolvableConflict").
 */
export function irresolvableConflict(): GraphApiError {
  return new GraphApiError(
    412,
    'ErrorIrresolvableConflict',
    'The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.',
  );
}

export function segmentNotFound(segment: string): GraphApiError {
  return new GraphApiError(400, 'BadRequest', `Resource not found for the segment '${segment}'.`);
}

export function invalidParameter(message: string): GraphApiError {
  return new GraphApiError(400, 'ErrorInvalidParameter', message);
}

/** calendarView and instances without their window. */
export function windowRequired(): GraphApiError {
  return invalidParameter('This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.');
}

export function invalidRequest(message: string): GraphApiError {
  return new GraphApiError(400, 'ErrorInvalidRequest', message);
}

/** event-delta.md: "$expand, $filter, $orderby, $search" unsupported and "You cannot use $select" (code: emulator's choice). */
export function unsupportedDeltaQuery(names: string[]): GraphApiError {
  return new GraphApiError(
    400,
    'ErrorInvalidUrlQuery',
    `The following parameters are not supported with change tracking over the 'CalendarView' resource: '${names.join(', ')}'.`,
  );
}

/** A delta state token that is expired or unknown: 410 Gone (delta-query-events.md "state tokens"; message: emulator's choice). */
export function syncStateNotFound(): GraphApiError {
  return new GraphApiError(410, 'syncStateNotFound', 'The sync state generation is not found. Restart the synchronization without a state token.');
}

export function unknownProperty(name: string): GraphApiError {
  return new GraphApiError(
    400,
    'RequestBodyRead',
    `The property '${name}' does not exist on type 'microsoft.graph.event'. Make sure to only use property names that are defined by the type or mark the type as open type.`,
  );
}

/**
 * An extended property id in none of the formats of extended-properties-overview.md. Code and message as real Graph
 * answers them (quoted in public issue threads, e.g. microsoftgraph/msgraph-sdk-powershell#2784).
 */
export function invalidPropertyId(): GraphApiError {
  return new GraphApiError(
    400,
    'ErrorInvalidProperty',
    "PropertyId values may only be in one of the following formats: 'MapiPropertyType namespaceGuid Name propertyName', 'MapiPropertyType namespaceGuid Id propertyId' or 'MapiPropertyType propertyTag'.",
  );
}

export function badBody(message = 'Empty Payload. JSON content expected.'): GraphApiError {
  return new GraphApiError(400, 'BadRequest', message);
}

export function throttled(retryAfter?: number): GraphApiError {
  return new GraphApiError(
    429,
    'ApplicationThrottled',
    'Application is over its MailboxConcurrency limit.',
    retryAfter === undefined ? {} : { 'Retry-After': String(retryAfter) },
  );
}

export function serverError(status: 500 | 502 | 503 | 504): GraphApiError {
  switch (status) {
    case 503:
      return new GraphApiError(503, 'ServiceNotAvailable', 'The service is temporarily unavailable. Please retry later.');
    case 504:
      return new GraphApiError(504, 'GatewayTimeout', 'The gateway did not receive a response from the backend in time.');
    case 502:
      return new GraphApiError(502, 'BadGateway', 'Bad Gateway');
    default:
      return new GraphApiError(500, 'InternalServerError', 'An internal server error occurred.');
  }
}

/** Subscription errors: the validation handshake (subscription-post-subscriptions.md "If validation fails ... 400 Bad Request"). */
export function validationFailed(detail: string): GraphApiError {
  return new GraphApiError(400, 'ValidationError', `Subscription validation request failed. ${detail}`);
}

export function subscriptionInvalid(message: string): GraphApiError {
  return new GraphApiError(400, 'ExtensionError', `Operation: Create; Exception: [Status Code: BadRequest; Reason: ${message}]`);
}

export function subscriptionNotFound(): GraphApiError {
  return new GraphApiError(404, 'ResourceNotFound', 'The object was not found.');
}

/** An error of the identity platform token endpoint: {error, error_description "AADSTSnnnn: …", error_codes, …}. */
export class AadError extends Error {
  readonly status: number;
  readonly error: string;
  readonly aadsts: number | undefined;
  readonly suberror: string | undefined;
  readonly headers: Record<string, string>;

  constructor(status: number, error: string, aadsts: number | undefined, description: string, opts: { suberror?: string; headers?: Record<string, string> } = {}) {
    super(description);
    this.status = status;
    this.error = error;
    this.aadsts = aadsts;
    this.suberror = opts.suberror;
    this.headers = opts.headers ?? {};
  }

  body(timestamp: string, correlationId: string): Record<string, unknown> {
    const traceId = crypto.randomUUID();
    const code = this.aadsts === undefined ? '' : `AADSTS${this.aadsts}: `;
    const out: Record<string, unknown> = {
      error: this.error,
      error_description: `${code}${this.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    };
    if (this.aadsts !== undefined) {
      out['error_codes'] = [this.aadsts];
      out['timestamp'] = timestamp;
      out['trace_id'] = traceId;
      out['correlation_id'] = correlationId;
      out['error_uri'] = `https://login.microsoftonline.com/error?code=${this.aadsts}`;
    }
    if (this.suberror !== undefined) out['suberror'] = this.suberror;
    return out;
  }
}

/** The AADSTS texts of the invalid_grant cases the emulator produces. */
export const AADSTS_TEXT: Readonly<Record<number, string>> = {
  50173:
    "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
  54005: 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
  65001: "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
  70000: 'The provided value for the input parameter is not valid.',
  70008:
    'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
  700082: 'The refresh token has expired due to inactivity. The token was issued on a date more than 90 days ago.',
};

export function invalidGrant(aadsts: number, opts: { suberror?: string; text?: string } = {}): AadError {
  const extra: { suberror?: string } = {};
  if (opts.suberror !== undefined) extra.suberror = opts.suberror;
  return new AadError(400, 'invalid_grant', aadsts, opts.text ?? AADSTS_TEXT[aadsts] ?? 'Invalid grant.', extra);
}

export function invalidClient(clientId: string): AadError {
  return new AadError(
    401,
    'invalid_client',
    7000215,
    `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
  );
}

export function unknownClient(clientId: string, tenant: string): AadError {
  return new AadError(
    400,
    'unauthorized_client',
    700016,
    `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`,
  );
}

export function aadInvalidRequest(aadsts: number, message: string): AadError {
  return new AadError(400, 'invalid_request', aadsts, message);
}
