// OAuth 2.0 side of the Google emulator: accounts, consent (one-time auth codes), the token endpoint
// (authorization_code and refresh_token grants), revocation, and the Bearer check of Calendar requests.
import crypto from 'node:crypto';
import type { Clock } from '../../../src/clock.js';
import * as E from './errors.js';
import { normalizeScope } from './scopes.js';

export interface Account {
  sub: string;
  email: string;
}

interface Grant {
  sub: string;
  scopes: string[];
  refreshToken: string;
  revoked: boolean;
}

interface AccessToken {
  grant: Grant;
  expiresAtMs: number;
}

interface AuthCode {
  sub: string;
  scopes: string[];
  redirectUri: string;
  expiresAtMs: number;
  used: boolean;
}

/** Access tokens live an hour by the emulator's clock; the token endpoint reports 3599 s as Google does. */
const ACCESS_TOKEN_LIFETIME_MS = 3600 * 1000;
const EXPIRES_IN = 3599;
const AUTH_CODE_LIFETIME_MS = 10 * 60 * 1000;

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export class OAuthServer {
  readonly accounts = new Map<string, Account>();
  private readonly codes = new Map<string, AuthCode>();
  private readonly grants: Grant[] = [];
  private readonly refreshTokens = new Map<string, Grant>();
  private readonly accessTokens = new Map<string, AccessToken>();
  private readonly clock: Clock;
  readonly clientId: string;
  private readonly clientSecret: string;

  constructor(clock: Clock, clientId: string, clientSecret: string) {
    this.clock = clock;
    this.clientId = clientId;
    this.clientSecret = clientSecret;
  }

  addAccount(a: Account): void {
    this.accounts.set(a.sub, { ...a });
  }

  account(sub: string): Account {
    const a = this.accounts.get(sub);
    if (!a) throw new Error(`Google emulator: unknown account ${sub} (call addAccount first)`);
    return a;
  }

  /** As if the user consented on Google's page: a one-time code for these scopes and redirect URI. */
  authorize(sub: string, scopes: string[], redirectUri: string): string {
    this.account(sub);
    const code = `4/0${b64url(crypto.randomBytes(24))}`;
    this.codes.set(code, {
      sub,
      scopes: [...new Set(scopes.map(normalizeScope))],
      redirectUri,
      expiresAtMs: this.clock.now().toMillis() + AUTH_CODE_LIFETIME_MS,
      used: false,
    });
    return code;
  }

  revokeAll(sub: string): void {
    for (const g of this.grants) if (g.sub === sub) g.revoked = true;
  }

  expireAccessTokens(sub?: string): void {
    const now = this.clock.now().toMillis();
    for (const t of this.accessTokens.values()) if (sub === undefined || t.grant.sub === sub) t.expiresAtMs = Math.min(t.expiresAtMs, now);
  }

  /** Checks client authentication: client_id/client_secret in the form (client_secret_post) or HTTP Basic. */
  private checkClient(form: URLSearchParams, authorization: string | undefined): void {
    let id = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const basic = /^Basic\s+(.+)$/i.exec(authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
    }
    if (id !== this.clientId || secret !== this.clientSecret) throw E.invalidClient();
  }

  private idToken(account: Account, nowMs: number): string {
    const header = { alg: 'RS256', kid: 'emulator-key-1', typ: 'JWT' };
    const iat = Math.floor(nowMs / 1000);
    const payload = {
      iss: 'https://accounts.google.com',
      azp: this.clientId,
      aud: this.clientId,
      sub: account.sub,
      email: account.email,
      email_verified: true,
      iat,
      exp: iat + 3600,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    // Not a real RS256 signature: any bytes (the brief); verifyIdToken against Google's keys would reject it.
    const signature = b64url(crypto.createHash('sha256').update(signingInput).digest());
    return `${signingInput}.${signature}`;
  }

  private issueAccess(grant: Grant): { token: string; nowMs: number } {
    const token = `ya29.${b64url(crypto.randomBytes(48))}`;
    const nowMs = this.clock.now().toMillis();
    this.accessTokens.set(token, { grant, expiresAtMs: nowMs + ACCESS_TOKEN_LIFETIME_MS });
    return { token, nowMs };
  }

  /** POST to the token endpoint (application/x-www-form-urlencoded). */
  token(form: URLSearchParams, authorization: string | undefined): Record<string, unknown> {
    const grantType = form.get('grant_type');
    if (!grantType) throw new E.OAuthError(400, 'unsupported_grant_type', 'Invalid grant_type: ');
    this.checkClient(form, authorization);
    if (grantType === 'authorization_code') {
      const code = form.get('code');
      if (!code) throw new E.OAuthError(400, 'invalid_request', 'Missing required parameter: code');
      const c = this.codes.get(code);
      if (!c) throw E.invalidGrant('Malformed auth code.');
      if (c.used || c.expiresAtMs <= this.clock.now().toMillis()) throw E.invalidGrant('Bad Request');
      if ((form.get('redirect_uri') ?? '') !== c.redirectUri) throw new E.OAuthError(400, 'redirect_uri_mismatch', 'Bad Request');
      c.used = true;
      const grant: Grant = { sub: c.sub, scopes: c.scopes, refreshToken: `1//0${b64url(crypto.randomBytes(48))}`, revoked: false };
      this.grants.push(grant);
      this.refreshTokens.set(grant.refreshToken, grant);
      const { token, nowMs } = this.issueAccess(grant);
      const res: Record<string, unknown> = {
        access_token: token,
        expires_in: EXPIRES_IN,
        refresh_token: grant.refreshToken,
        scope: grant.scopes.join(' '),
        token_type: 'Bearer',
      };
      if (grant.scopes.includes('openid')) res['id_token'] = this.idToken(this.account(grant.sub), nowMs);
      return res;
    }
    if (grantType === 'refresh_token') {
      const rt = form.get('refresh_token');
      if (!rt) throw new E.OAuthError(400, 'invalid_request', 'Missing required parameter: refresh_token');
      const grant = this.refreshTokens.get(rt);
      if (!grant || grant.revoked) throw E.invalidGrant();
      const { token, nowMs } = this.issueAccess(grant);
      const res: Record<string, unknown> = {
        access_token: token,
        expires_in: EXPIRES_IN,
        scope: grant.scopes.join(' '),
        token_type: 'Bearer',
      };
      if (grant.scopes.includes('openid')) res['id_token'] = this.idToken(this.account(grant.sub), nowMs);
      return res;
    }
    throw new E.OAuthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType}`);
  }

  /** The revoke endpoint: revoking an access or refresh token ends the whole grant. */
  revoke(token: string | null): void {
    if (!token) throw new E.OAuthError(400, 'invalid_request', 'Missing required parameter: token');
    const grant = this.refreshTokens.get(token) ?? this.accessTokens.get(token)?.grant;
    if (!grant || grant.revoked) throw new E.OAuthError(400, 'invalid_token', 'Token expired or revoked');
    grant.revoked = true;
  }

  /** The Bearer check of a Calendar request; throws the 401 authError otherwise. */
  authenticate(authorization: string | undefined): { account: Account; scopes: Set<string> } {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw E.authError();
    const t = this.accessTokens.get(m[1]!);
    if (!t || t.grant.revoked || t.expiresAtMs <= this.clock.now().toMillis()) throw E.authError();
    return { account: this.account(t.grant.sub), scopes: new Set(t.grant.scopes) };
  }
}
