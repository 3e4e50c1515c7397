// Google OAuth 2.0 (web flow, offline access) through google-auth-library: the consent URL with the
// product's narrowest scopes, the code exchange, refreshed tokens saved through the CredentialStore,
// invalid_grant turned into NeedsReauth, and revocation on disconnect.
import { OAuth2Client, type Credentials } from 'google-auth-library';
import { NeedsReauth } from '../errors.js';
import type { CredentialStore } from '../port.js';

/**
 * Every scope the product needs, and no more (API-NOTES: each method's scopes in the discovery
 * documents). `openid` gives the ID token whose `sub` keys the account; no profile or email scope.
 */
export const GOOGLE_SCOPES = [
  'openid',
  'https://www.googleapis.com/auth/calendar.events',
  'https://www.googleapis.com/auth/calendar.calendarlist.readonly',
  'https://www.googleapis.com/auth/calendar.freebusy',
  'https://www.googleapis.com/auth/tasks',
  'https://www.googleapis.com/auth/gmail.send',
] as const;

export interface GoogleOAuthConfig {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** Other endpoints than Google's (the emulator in tests). */
  endpoints?: { oauth2TokenUrl?: string; oauth2RevokeUrl?: string; oauth2AuthBaseUrl?: string };
}

export function oauthClient(cfg: GoogleOAuthConfig): OAuth2Client {
  return new OAuth2Client({
    clientId: cfg.clientId,
    clientSecret: cfg.clientSecret,
    redirectUri: cfg.redirectUri,
    // An access token can be refused before its expiry time (revoked sessions, clock skew): refresh
    // once and retry, rather than treating a 401 as a lost grant.
    forceRefreshOnFailure: true,
    ...(cfg.endpoints ? { endpoints: cfg.endpoints } : {}),
  });
}

/** Where to send the therapist to consent; `state` comes back on the callback (bind it to the session). */
export function consentUrl(cfg: GoogleOAuthConfig, state: string): string {
  return oauthClient(cfg).generateAuthUrl({
    access_type: 'offline',
    // Without prompt=consent Google gives a refresh token only on the first consent.
    prompt: 'consent',
    scope: [...GOOGLE_SCOPES],
    include_granted_scopes: false,
    state,
  });
}

export interface ConnectedAccount {
  /** The ID token's `sub`: the stable Google account id. */
  subject: string;
  email: string | null;
  scopes: string[];
  /** What to keep (sealed) for background work: the tokens as JSON. */
  credentials: string;
}

function decodeJwtPayload(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1];
  if (!part) throw new Error('the ID token is not a JWT');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/**
 * Exchanges the callback's code. The ID token comes straight from Google's token endpoint over TLS,
 * so its claims are read without checking its signature (OpenID Connect Core 3.1.3.7).
 */
export async function exchangeCode(cfg: GoogleOAuthConfig, code: string): Promise<ConnectedAccount> {
  const { tokens } = await oauthClient(cfg).getToken(code);
  if (!tokens.refresh_token) throw new Error('Google gave no refresh token: consent again (offline access is required)');
  if (!tokens.id_token) throw new Error('Google gave no ID token: the openid scope is required');
  const claims = decodeJwtPayload(tokens.id_token);
  if (typeof claims['sub'] !== 'string') throw new Error('the ID token has no subject');
  if (claims['aud'] !== cfg.clientId) throw new Error('the ID token was issued to another client');
  const scopes = (tokens.scope ?? '').split(' ').filter(Boolean);
  const missing = GOOGLE_SCOPES.filter((s) => s !== 'openid' && !scopes.includes(s));
  if (missing.length > 0) throw new Error(`the consent left out ${missing.join(', ')}: consent again and keep every box ticked`);
  return { subject: claims['sub'], email: typeof claims['email'] === 'string' ? claims['email'] : null, scopes, credentials: JSON.stringify(keep(tokens)) };
}

/** The parts of the tokens worth keeping (no ID token: it is only read at connect time). */
function keep(tokens: Credentials): Credentials {
  const out: Credentials = {};
  if (tokens.access_token) out.access_token = tokens.access_token;
  if (tokens.refresh_token) out.refresh_token = tokens.refresh_token;
  if (tokens.expiry_date) out.expiry_date = tokens.expiry_date;
  if (tokens.scope) out.scope = tokens.scope;
  if (tokens.token_type) out.token_type = tokens.token_type;
  return out;
}

export function isInvalidGrant(err: unknown): boolean {
  const e = err as { response?: { data?: { error?: unknown } }; message?: string };
  return e?.response?.data?.error === 'invalid_grant' || /invalid_grant/.test(String(e?.message ?? ''));
}

/**
 * An OAuth client for one connection: tokens from the credential store, refreshed ones written
 * back. A refresh refused with invalid_grant marks the connection and throws NeedsReauth.
 */
export async function authorizedClient(cfg: GoogleOAuthConfig, store: CredentialStore): Promise<OAuth2Client> {
  const saved = await store.load();
  if (!saved) throw new NeedsReauth('no stored Google credentials for this connection');
  const tokens = JSON.parse(saved) as Credentials;
  if (!tokens.refresh_token) throw new NeedsReauth('the stored Google credentials have no refresh token');
  const client = oauthClient(cfg);
  client.setCredentials(tokens);
  client.on('tokens', (fresh) => {
    // Google sends a new access token (and rarely a new refresh token): keep the refresh token we had.
    const merged = keep({ ...tokens, ...fresh, refresh_token: fresh.refresh_token ?? tokens.refresh_token ?? null });
    Object.assign(tokens, merged);
    void store.save(JSON.stringify(merged)).catch(() => undefined);
  });
  return client;
}

/** Turns invalid_grant (from a refresh inside any call) into NeedsReauth, marking the connection. */
export async function guardGrant<T>(store: CredentialStore, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isInvalidGrant(err)) {
      await store.markNeedsReauth('Google refused the refresh token (invalid_grant): the therapist must connect again');
      throw new NeedsReauth('Google refused the refresh token (invalid_grant)');
    }
    throw err;
  }
}

/** Revokes the grant at Google (on disconnect). A grant already gone is not an error. */
export async function revokeGrant(cfg: GoogleOAuthConfig, store: CredentialStore): Promise<void> {
  const saved = await store.load();
  if (!saved) return;
  const tokens = JSON.parse(saved) as Credentials;
  const token = tokens.refresh_token ?? tokens.access_token;
  if (!token) return;
  try {
    await oauthClient(cfg).revokeToken(token);
  } catch (err) {
    if (!isInvalidGrant(err) && (err as { response?: { status?: number } }).response?.status !== 400) throw err;
  }
}
