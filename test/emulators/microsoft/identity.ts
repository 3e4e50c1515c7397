// The Microsoft identity platform side of the emulator: users, consent (one-time auth codes), the v2.0 token endpoint
// (authorization_code and refresh_token grants, as MSAL calls them), OIDC discovery documents, and the Bearer check of Graph.
import crypto from 'node:crypto';
import type { Clock } from '../../../src/clock.js';
import * as E from './errors.js';

export interface User {
  oid: string;
  tid: string;
  upn: string;
  displayName: string;
  /** The mailbox time zone (IANA or Windows name): workingHours of getSchedule. */
  timeZone: string;
}

interface Grant {
  oid: string;
  /** Consented scopes in their canonical spelling: Graph scopes without the resource prefix, plus OIDC scopes. */
  scopes: string[];
  revoked: boolean;
}

interface RefreshToken {
  grant: Grant;
  expiresAtMs: number;
}

interface AccessToken {
  grant: Grant;
  expiresAtMs: number;
}

interface AuthCode {
  oid: string;
  scopes: string[];
  redirectUri: string;
  expiresAtMs: number;
  used: boolean;
  nonce?: string;
  codeChallenge?: string;
  codeChallengeMethod?: string;
}

export const AUTHORITY_HOST = 'https://login.microsoftonline.com';
const GRAPH_RESOURCE = 'https://graph.microsoft.com/';
const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
/** Access tokens live an hour by the emulator's clock; the token endpoint reports 3599 s. */
const ACCESS_TOKEN_LIFETIME_MS = 3600 * 1000;
const EXPIRES_IN = 3599;
const AUTH_CODE_LIFETIME_MS = 10 * 60 * 1000;
/** Refresh tokens expire after 90 days without use (identity platform docs on refresh tokens; AADSTS700082). */
const REFRESH_TOKEN_INACTIVITY_MS = 90 * 24 * 3600 * 1000;
const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'];
/** MSAL adds these to every authorize and token request, so a consent through MSAL always includes them. */
const MSAL_DEFAULT_SCOPES = ['openid', 'profile', 'offline_access'];

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** A scope as the token endpoint reads it: 'https://graph.microsoft.com/Calendars.Read' → 'Calendars.Read'. */
export function canonicalScope(s: string): string {
  const lower = s.toLowerCase();
  if (OIDC_SCOPES.includes(lower)) return lower;
  return s.startsWith(GRAPH_RESOURCE) ? s.slice(GRAPH_RESOURCE.length) : s;
}

function hasScope(scopes: readonly string[], s: string): boolean {
  const l = s.toLowerCase();
  return scopes.some((x) => x.toLowerCase() === l);
}

/** One RSA key per process signs id and access tokens (JWKS served at /{tenant}/discovery/v2.0/keys). */
let signingKey: Promise<{ privateKey: crypto.KeyObject; jwk: crypto.JsonWebKey; kid: string }> | undefined;

export function loadSigningKey(): Promise<{ privateKey: crypto.KeyObject; jwk: crypto.JsonWebKey; kid: string }> {
  signingKey ??= new Promise((resolve, reject) => {
    crypto.generateKeyPair('rsa', { modulusLength: 2048 }, (err, publicKey, privateKey) => {
      if (err) return reject(err);
      const jwk = publicKey.export({ format: 'jwk' });
      const kid = b64url(crypto.createHash('sha1').update(String(jwk.n)).digest()).slice(0, 27);
      resolve({ privateKey, jwk, kid });
    });
  });
  return signingKey;
}

export class IdentityServer {
  readonly users = new Map<string, User>();
  private readonly codes = new Map<string, AuthCode>();
  private readonly grants: Grant[] = [];
  private readonly refreshTokens = new Map<string, RefreshToken>();
  private readonly accessTokens = new Map<string, AccessToken>();
  private readonly clock: Clock;
  readonly clientId: string;
  private readonly clientSecret: string;
  private readonly key: { privateKey: crypto.KeyObject; jwk: crypto.JsonWebKey; kid: string };

  constructor(clock: Clock, clientId: string, clientSecret: string, key: { privateKey: crypto.KeyObject; jwk: crypto.JsonWebKey; kid: string }) {
    this.clock = clock;
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.key = key;
  }

  addUser(u: User): void {
    this.users.set(u.oid, { ...u });
  }

  user(oid: string): User {
    const u = this.users.get(oid);
    if (!u) throw new Error(`Microsoft emulator: unknown user ${oid} (call addUser first)`);
    return u;
  }

  userByUpn(upn: string): User | undefined {
    const l = upn.toLowerCase();
    return [...this.users.values()].find((u) => u.upn.toLowerCase() === l);
  }

  /** As if the user consented on the sign-in page: a one-time code for these scopes (plus MSAL's openid/profile/offline_access). */
  authorize(oid: string, scopes: string[], redirectUri: string, extra: { nonce?: string; codeChallenge?: string; codeChallengeMethod?: string } = {}): string {
    this.user(oid);
    const canonical: string[] = [];
    for (const s of [...scopes, ...MSAL_DEFAULT_SCOPES].map(canonicalScope)) if (!hasScope(canonical, s)) canonical.push(s);
    const code = `1.A${b64url(crypto.randomBytes(48))}`;
    const c: AuthCode = { oid, scopes: canonical, redirectUri, expiresAtMs: this.clock.now().toMillis() + AUTH_CODE_LIFETIME_MS, used: false };
    if (extra.nonce !== undefined) c.nonce = extra.nonce;
    if (extra.codeChallenge !== undefined) c.codeChallenge = extra.codeChallenge;
    if (extra.codeChallengeMethod !== undefined) c.codeChallengeMethod = extra.codeChallengeMethod;
    this.codes.set(code, c);
    return code;
  }

  revokeAll(oid: string): void {
    for (const g of this.grants) if (g.oid === oid) g.revoked = true;
  }

  expireAccessTokens(oid?: string): void {
    const now = this.clock.now().toMillis();
    for (const t of this.accessTokens.values()) if (oid === undefined || t.grant.oid === oid) t.expiresAtMs = Math.min(t.expiresAtMs, now);
  }

  tenantKnown(tenant: string): boolean {
    const t = tenant.toLowerCase();
    if (t === 'common' || t === 'organizations' || t === 'consumers') return true;
    return [...this.users.values()].some((u) => u.tid.toLowerCase() === t || u.upn.toLowerCase().endsWith(`@${t}`));
  }

  private checkClient(form: URLSearchParams, authorization: string | undefined, tenant: string): void {
    let id = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const basic = /^Basic\s+(.+)$/i.exec(authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
    }
    if (id !== this.clientId) throw E.unknownClient(id ?? '', tenant);
    if (secret !== this.clientSecret) throw E.invalidClient(this.clientId);
  }

  private sign(header: Record<string, unknown>, payload: Record<string, unknown>): string {
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    const sig = crypto.sign('sha256', Buffer.from(input), this.key.privateKey);
    return `${input}.${b64url(sig)}`;
  }

  private idToken(user: User, nowS: number, nonce: string | undefined): string {
    const payload: Record<string, unknown> = {
      aud: this.clientId,
      iss: `${AUTHORITY_HOST}/${user.tid}/v2.0`,
      iat: nowS,
      nbf: nowS,
      exp: nowS + 3600,
      name: user.displayName,
    };
    if (nonce !== undefined) payload['nonce'] = nonce;
    Object.assign(payload, {
      oid: user.oid,
      preferred_username: user.upn,
      rh: `0.A${b64url(crypto.randomBytes(24))}.`,
      sid: crypto.randomUUID(),
      sub: b64url(crypto.createHash('sha256').update(`${user.oid}|${this.clientId}`).digest()).slice(0, 43),
      tid: user.tid,
      uti: b64url(crypto.randomBytes(16)),
      ver: '2.0',
    });
    return this.sign({ typ: 'JWT', alg: 'RS256', kid: this.key.kid }, payload);
  }

  private accessToken(grant: Grant, nowMs: number): string {
    const user = this.user(grant.oid);
    const nowS = Math.floor(nowMs / 1000);
    const scp = grant.scopes.filter((s) => !OIDC_SCOPES.includes(s.toLowerCase()) || s === 'openid' || s === 'profile' || s === 'email');
    const token = this.sign(
      { typ: 'JWT', alg: 'RS256', kid: this.key.kid },
      {
        aud: GRAPH_APP_ID,
        iss: `https://sts.windows.net/${user.tid}/`,
        iat: nowS,
        nbf: nowS,
        exp: nowS + ACCESS_TOKEN_LIFETIME_MS / 1000,
        app_displayname: 'SessionKeeper (emulator)',
        appid: this.clientId,
        name: user.displayName,
        oid: user.oid,
        scp: scp.join(' '),
        sub: b64url(crypto.createHash('sha256').update(`${user.oid}|graph`).digest()).slice(0, 43),
        tid: user.tid,
        unique_name: user.upn,
        upn: user.upn,
        uti: b64url(crypto.randomBytes(16)),
        ver: '1.0',
      },
    );
    this.accessTokens.set(token, { grant, expiresAtMs: nowMs + ACCESS_TOKEN_LIFETIME_MS });
    return token;
  }

  /** Requested scopes must have been consented (AADSTS65001 otherwise); '.default' means every consented scope. */
  private checkRequested(grant: Grant, scopeParam: string | null): string[] {
    const requested = (scopeParam ?? '').split(/\s+/).filter(Boolean).map(canonicalScope);
    const missing = requested.filter((s) => s !== '.default' && !hasScope(grant.scopes, s));
    if (missing.length > 0) throw E.invalidGrant(65001, { suberror: 'consent_required' });
    return requested;
  }

  private tokenResponse(grant: Grant, requested: string[], form: URLSearchParams, nonce: string | undefined): Record<string, unknown> {
    const nowMs = this.clock.now().toMillis();
    const user = this.user(grant.oid);
    const resourceScopes = grant.scopes.filter((s) => !OIDC_SCOPES.includes(s.toLowerCase()));
    const oidc = ['openid', 'profile', 'email'].filter((s) => hasScope(grant.scopes, s) && (requested.length === 0 || hasScope(requested, s)));
    const res: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: [...resourceScopes, ...oidc].join(' '),
      expires_in: EXPIRES_IN,
      ext_expires_in: EXPIRES_IN,
      access_token: this.accessToken(grant, nowMs),
    };
    if (hasScope(grant.scopes, 'offline_access')) {
      const rt = `1.A${b64url(crypto.randomBytes(96))}`;
      this.refreshTokens.set(rt, { grant, expiresAtMs: nowMs + REFRESH_TOKEN_INACTIVITY_MS });
      res['refresh_token'] = rt;
    }
    if (hasScope(grant.scopes, 'openid')) res['id_token'] = this.idToken(user, Math.floor(nowMs / 1000), nonce);
    if (form.get('client_info') === '1') res['client_info'] = this.clientInfo(user);
    return res;
  }

  clientInfo(user: User): string {
    return b64url(JSON.stringify({ uid: user.oid, utid: user.tid }));
  }

  /** POST /{tenant}/oauth2/v2.0/token (application/x-www-form-urlencoded). */
  token(tenant: string, form: URLSearchParams, authorization: string | undefined): Record<string, unknown> {
    if (!this.tenantKnown(tenant)) {
      throw E.aadInvalidRequest(90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    }
    const grantType = form.get('grant_type');
    if (!grantType) throw E.aadInvalidRequest(900144, "The request body must contain the following parameter: 'grant_type'.");
    this.checkClient(form, authorization, tenant);
    const now = this.clock.now().toMillis();
    if (grantType === 'authorization_code') {
      const code = form.get('code');
      if (!code) throw E.aadInvalidRequest(900144, "The request body must contain the following parameter: 'code'.");
      const c = this.codes.get(code);
      if (!c) throw E.invalidGrant(70000, { text: "The provided value for the 'code' parameter is not valid." });
      if (c.used) throw E.invalidGrant(54005);
      if (c.expiresAtMs <= now) throw E.invalidGrant(70008);
      if ((form.get('redirect_uri') ?? '') !== c.redirectUri) {
        throw E.invalidGrant(70000, { text: "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect URI used to obtain the authorization code." });
      }
      if (c.codeChallenge !== undefined) {
        const verifier = form.get('code_verifier') ?? '';
        const expected = c.codeChallengeMethod === 'plain' ? verifier : b64url(crypto.createHash('sha256').update(verifier).digest());
        if (expected !== c.codeChallenge) throw E.invalidGrant(501481, { text: 'The Code_Verifier does not match the code_challenge supplied in the authorization request.' });
      }
      c.used = true;
      const user = this.user(c.oid);
      if (!['common', 'organizations'].includes(tenant.toLowerCase()) && tenant.toLowerCase() !== user.tid.toLowerCase() && !user.upn.toLowerCase().endsWith(`@${tenant.toLowerCase()}`)) {
        throw E.invalidGrant(50020, { text: `User account '${user.upn}' from identity provider does not exist in tenant '${tenant}'.` });
      }
      const grant: Grant = { oid: c.oid, scopes: c.scopes, revoked: false };
      this.grants.push(grant);
      const requested = this.checkRequested(grant, form.get('scope'));
      return this.tokenResponse(grant, requested, form, c.nonce);
    }
    if (grantType === 'refresh_token') {
      const rtValue = form.get('refresh_token');
      if (!rtValue) throw E.aadInvalidRequest(900144, "The request body must contain the following parameter: 'refresh_token'.");
      const rt = this.refreshTokens.get(rtValue);
      if (!rt) throw E.invalidGrant(9002313, { text: 'Invalid request. Request is malformed or invalid.' });
      if (rt.grant.revoked) throw E.invalidGrant(50173);
      if (rt.expiresAtMs <= now) throw E.invalidGrant(700082);
      rt.expiresAtMs = now + REFRESH_TOKEN_INACTIVITY_MS;
      const requested = this.checkRequested(rt.grant, form.get('scope'));
      return this.tokenResponse(rt.grant, requested, form, undefined);
    }
    throw new E.AadError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
  }

  /** The Bearer check of a Graph request: the user and the token's scopes, or 401. Revocation does not end issued access tokens. */
  authenticate(authorization: string | undefined): { user: User; scopes: string[] } {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw E.emptyToken();
    const t = this.accessTokens.get(m[1]!);
    if (!t || t.expiresAtMs <= this.clock.now().toMillis()) throw E.expiredToken();
    return { user: this.user(t.grant.oid), scopes: t.grant.scopes };
  }

  /** GET /{tenant}/v2.0/.well-known/openid-configuration, in the shape login.microsoftonline.com serves it. */
  openidConfiguration(tenant: string): Record<string, unknown> {
    const base = `${AUTHORITY_HOST}/${tenant}`;
    const generic = ['common', 'organizations', 'consumers'].includes(tenant.toLowerCase());
    const issuerTenant = generic ? '{tenantid}' : this.tidFor(tenant);
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${AUTHORITY_HOST}/${issuerTenant}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: 'EU',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    };
  }

  private tidFor(tenant: string): string {
    const t = tenant.toLowerCase();
    const u = [...this.users.values()].find((x) => x.tid.toLowerCase() === t || x.upn.toLowerCase().endsWith(`@${t}`));
    return u?.tid ?? tenant;
  }

  /** GET /common/discovery/instance?api-version=1.1&authorization_endpoint=… (cloud instance discovery). */
  instanceDiscovery(authorizationEndpoint: string | null): Record<string, unknown> {
    let tenant = 'common';
    const m = /^https:\/\/[^/]+\/([^/]+)\//.exec(authorizationEndpoint ?? '');
    if (m) tenant = m[1]!;
    return {
      tenant_discovery_endpoint: `${AUTHORITY_HOST}/${tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [
        {
          preferred_network: 'login.microsoftonline.com',
          preferred_cache: 'login.windows.net',
          aliases: ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'],
        },
      ],
    };
  }

  jwks(): Record<string, unknown> {
    const { n, e } = this.key.jwk;
    return { keys: [{ kty: 'RSA', use: 'sig', kid: this.key.kid, x5t: this.key.kid, n, e, issuer: `${AUTHORITY_HOST}/{tenantid}/v2.0` }] };
  }
}
