// Conformance of the Microsoft emulator (test/emulators/microsoft/server.ts) through the real clients over HTTP with a ManualClock:
// @microsoft/microsoft-graph-client (graphRedirect in its chain) and @azure/msal-node (msalNetworkClient as its network client).
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, GraphError, ResponseType, RetryHandlerOptions } from '@microsoft/microsoft-graph-client';
import { AuthError, ConfidentialClientApplication, CryptoProvider } from '@azure/msal-node';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { fixture, graphClient, graphConnect, graphFailure, type GraphToken, MICROSOFT_REDIRECT, msalApp, rejection, startGraph } from './conformance.js';
import { msalNetworkClient, type GraphEmulator } from './microsoft/server.js';

type Json = Record<string, unknown>;

const OID = '8ee44408-0679-472c-bc2a-692812af3437';
const TID = '84bd8158-6d4d-4958-8b9f-9d6445542f95';
const UPN = 'samanthab@contoso.onmicrosoft.com';
const NAME = 'Samantha Booth';
const USER = { oid: OID, tid: TID, upn: UPN, displayName: NAME, timeZone: 'Europe/London' };
const REDIRECT = MICROSOFT_REDIRECT;
const SCOPES = ['Calendars.ReadWrite', 'User.Read'];
const WINDOW = { startDateTime: '2025-03-01T00:00:00Z', endDateTime: '2025-04-01T00:00:00Z' };

let clock: ManualClock;
let emu: GraphEmulator;

beforeEach(async () => {
  clock = new ManualClock('2025-03-01T12:00:00Z');
  emu = await startGraph(USER, { clock });
});

afterEach(async () => {
  await emu.close();
});

// ---- wiring: the product's way (./conformance.ts) ----------------------------------------------------------

const connect = (scopes: string[] = SCOPES, retry?: RetryHandlerOptions): Promise<GraphToken & { graph: Client }> => graphConnect(emu, USER, scopes, { retry });

function errorBody(e: GraphError): Json {
  return JSON.parse(String(e.body)) as Json;
}

function decodeJwt(jwt: string): { header: Json; payload: Json } {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')) as Json, payload: JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')) as Json };
}

function timed(day: string, hh: number, minutes = 60, timeZone = 'UTC'): { start: Json; end: Json } {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const endMin = hh * 60 + minutes;
  return {
    start: { dateTime: `${day}T${pad(hh)}:00:00`, timeZone },
    end: { dateTime: `${day}T${pad(Math.floor(endMin / 60))}:${pad(endMin % 60)}:00`, timeZone },
  };
}

function seed(n: number): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const day = `2025-03-${String(3 + (i % 25)).padStart(2, '0')}`;
    ids.push(emu.createEvent(OID, 'default', { subject: `Session ${i}`, ...timed(day, 9 + (i % 8)) })['id'] as string);
  }
  return ids;
}

interface Round {
  pages: Json[];
  items: Json[];
  deltaLink: string;
}

/** Follows @odata.nextLink to the @odata.deltaLink, as a sync engine does. */
async function deltaRound(graph: Client, first: string, maxPageSize?: number): Promise<Round> {
  const pages: Json[] = [];
  let url = first;
  for (;;) {
    let req = graph.api(url);
    if (maxPageSize !== undefined) req = req.header('Prefer', `odata.maxpagesize=${maxPageSize}`);
    const page = (await req.get()) as Json;
    pages.push(page);
    if (typeof page['@odata.nextLink'] === 'string') url = page['@odata.nextLink'];
    else return { pages, items: pages.flatMap((p) => p['value'] as Json[]), deltaLink: String(page['@odata.deltaLink']) };
  }
}

const initialDelta = (w = WINDOW): string => `/me/calendarView/delta?startDateTime=${w.startDateTime}&endDateTime=${w.endDateTime}`;

// ---- identity platform through MSAL -------------------------------------------------------------------------

test('acquireTokenByCode: tokens, id_token claims, account and cache', async () => {
  const cca = msalApp(emu, TID);
  const result = await cca.acquireTokenByCode({ code: emu.authorize(OID, SCOPES, REDIRECT), scopes: SCOPES, redirectUri: REDIRECT });
  expect(result.tokenType).toBe('Bearer');
  expect(result.scopes).toEqual(expect.arrayContaining(['Calendars.ReadWrite', 'User.Read', 'openid', 'profile']));
  expect(result.account).toMatchObject({ homeAccountId: `${OID}.${TID}`, tenantId: TID, username: UPN, name: NAME, localAccountId: OID, environment: 'login.windows.net' }); // MSAL's preferred_cache alias
  expect(result.idTokenClaims).toMatchObject({ iss: `https://login.microsoftonline.com/${TID}/v2.0`, aud: emu.clientId, tid: TID, oid: OID, preferred_username: UPN, name: NAME });
  const { header, payload } = decodeJwt(result.idToken);
  expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT', kid: expect.any(String) });
  expect(payload['iat']).toBe(clock.now().toSeconds());
  expect(payload['nbf']).toBe(payload['iat']);
  expect((payload['exp'] as number) - (payload['iat'] as number)).toBe(3600);
  expect(payload['sub']).toEqual(expect.any(String));

  // The id_token is really signed with the key the JWKS endpoint publishes.
  const jwks = (await (await fetch(`${emu.url}${TID}/discovery/v2.0/keys`)).json()) as { keys: (crypto.JsonWebKey & { kid: string })[] };
  const key = crypto.createPublicKey({ key: jwks.keys.find((k) => k.kid === header['kid'])!, format: 'jwk' });
  const [h, p, s] = result.idToken.split('.');
  expect(crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s ?? '', 'base64url'))).toBe(true);

  // For login.microsoftonline.com MSAL uses its built-in endpoint metadata: the code redemption is its only request.
  expect(emu.requests.map((r) => `${r.method} ${r.path} ${r.status}`)[0]).toBe(`POST /${TID}/oauth2/v2.0/token 200`);
  const tokenReq = emu.requests[0]!;
  expect(tokenReq.headers['content-type']).toContain('application/x-www-form-urlencoded');

  // The refresh token is in MSAL's cache (what the product persists through its ICachePlugin).
  const cache = JSON.parse(cca.getTokenCache().serialize()) as { RefreshToken: Record<string, { secret: string }>; Account: Record<string, unknown> };
  expect(Object.values(cache.RefreshToken)).toHaveLength(1);
  expect(Object.keys(cache.Account)).toHaveLength(1);

  // The code is single-use: AADSTS54005.
  const code = emu.authorize(OID, SCOPES, REDIRECT);
  await cca.acquireTokenByCode({ code, scopes: SCOPES, redirectUri: REDIRECT });
  const again = await rejection<AuthError>(cca.acquireTokenByCode({ code, scopes: SCOPES, redirectUri: REDIRECT }));
  expect(again.errorCode).toBe('invalid_grant');
  expect(again.errorMessage).toContain('AADSTS54005');
});

test('discovery documents: OpenID configuration, instance discovery and JWKS in the shapes MSAL takes', async () => {
  const oidc = (await (await fetch(`${emu.url}${TID}/v2.0/.well-known/openid-configuration`)).json()) as Json;
  expect(oidc).toMatchObject({
    issuer: `https://login.microsoftonline.com/${TID}/v2.0`,
    token_endpoint: `https://login.microsoftonline.com/${TID}/oauth2/v2.0/token`,
    authorization_endpoint: `https://login.microsoftonline.com/${TID}/oauth2/v2.0/authorize`,
    jwks_uri: `https://login.microsoftonline.com/${TID}/discovery/v2.0/keys`,
  });
  expect(((await (await fetch(`${emu.url}common/v2.0/.well-known/openid-configuration`)).json()) as Json)['issuer']).toBe('https://login.microsoftonline.com/{tenantid}/v2.0');
  const disc = (await (
    await fetch(`${emu.url}common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(`https://login.microsoftonline.com/${TID}/oauth2/v2.0/authorize`)}`)
  ).json()) as Json;
  expect(disc).toMatchObject({ tenant_discovery_endpoint: `https://login.microsoftonline.com/${TID}/v2.0/.well-known/openid-configuration`, 'api-version': '1.1' });
  expect((disc['metadata'] as Json[])[0]).toMatchObject({ preferred_network: 'login.microsoftonline.com', aliases: expect.arrayContaining(['login.windows.net']) });

  // MSAL has built-in metadata for login.microsoftonline.com and fetches neither document for it; given the emulator's
  // documents as its metadata, it takes them (MSAL checks both shapes) and redeems the code at their token_endpoint.
  const before = emu.requests.length;
  const cca = new ConfidentialClientApplication({
    auth: {
      clientId: emu.clientId,
      authority: `${emu.authorityHost}/${TID}`,
      clientSecret: emu.clientSecret,
      authorityMetadata: JSON.stringify(oidc),
      cloudDiscoveryMetadata: JSON.stringify(disc),
    },
    system: { networkClient: msalNetworkClient(emu) },
  });
  const result = await cca.acquireTokenByCode({ code: emu.authorize(OID, SCOPES, REDIRECT), scopes: SCOPES, redirectUri: REDIRECT });
  expect(result.account?.homeAccountId).toBe(`${OID}.${TID}`);
  expect(emu.requests.slice(before).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([`POST /${TID}/oauth2/v2.0/token 200`]);

  // An unknown tenant: AADSTS90002.
  const unknown = await fetch(`${emu.url}not-a-tenant/v2.0/.well-known/openid-configuration`);
  expect(unknown.status).toBe(400);
  expect(((await unknown.json()) as Json)['error_codes']).toEqual([90002]);
  // Anything but the identity platform hosts is refused by the network client, without a request.
  const e = await rejection<AuthError>(msalNetworkClient(emu).sendGetRequestAsync('https://example.com/x'));
  expect(e.errorCode).toBe('network_error');
});

test('the raw token endpoint answers in the identity platform shape', async () => {
  const code = emu.authorize(OID, ['https://graph.microsoft.com/Calendars.ReadWrite'], REDIRECT);
  const res = await fetch(`${emu.url}${TID}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      client_id: emu.clientId,
      client_secret: emu.clientSecret,
      scope: 'https://graph.microsoft.com/Calendars.ReadWrite offline_access openid profile',
      client_info: '1',
    }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as Json;
  expect(Object.keys(body)).toEqual(['token_type', 'scope', 'expires_in', 'ext_expires_in', 'access_token', 'refresh_token', 'id_token', 'client_info']);
  expect(body).toMatchObject({ token_type: 'Bearer', scope: 'Calendars.ReadWrite openid profile', expires_in: 3599, ext_expires_in: 3599 });
  expect(JSON.parse(Buffer.from(String(body['client_info']), 'base64url').toString('utf8'))).toEqual({ uid: OID, utid: TID });
  const at = decodeJwt(String(body['access_token'])).payload;
  expect(at).toMatchObject({ aud: '00000003-0000-0000-c000-000000000000', oid: OID, tid: TID, scp: 'Calendars.ReadWrite openid profile', appid: emu.clientId });

  // Errors: the AADSTS code in error_description and error_codes.
  const reuse = await fetch(`${emu.url}${TID}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: emu.clientId, client_secret: emu.clientSecret }),
  });
  expect(reuse.status).toBe(400);
  const err = (await reuse.json()) as Json;
  expect(err).toMatchObject({ error: 'invalid_grant', error_codes: [54005], error_uri: 'https://login.microsoftonline.com/error?code=54005' });
  expect(String(err['error_description'])).toMatch(/^AADSTS54005: .*\r\nTrace ID: .*\r\nCorrelation ID: .*\r\nTimestamp: 2025-03-01 12:00:00Z$/s);

  // An auth code lives 10 minutes by the emulator's clock: AADSTS70008 after that.
  const late = emu.authorize(OID, SCOPES, REDIRECT);
  clock.advance({ minutes: 11 });
  const expired = await rejection<AuthError>(msalApp(emu, TID).acquireTokenByCode({ code: late, scopes: SCOPES, redirectUri: REDIRECT }));
  expect(expired.errorCode).toBe('invalid_grant');
  expect(expired.errorMessage).toContain('AADSTS70008');
});

test('a wrong client secret answers invalid_client (AADSTS7000215)', async () => {
  const e = await rejection<AuthError>(msalApp(emu, TID, 'not-the-secret').acquireTokenByCode({ code: emu.authorize(OID, SCOPES, REDIRECT), scopes: SCOPES, redirectUri: REDIRECT }));
  expect(e.errorCode).toBe('invalid_client');
  expect(e.errorMessage).toContain('AADSTS7000215');
  expect(emu.requests.at(-1)).toMatchObject({ path: `/${TID}/oauth2/v2.0/token`, status: 401 });
});

test('scopes beyond the consent answer invalid_grant consent_required (AADSTS65001)', async () => {
  const cca = msalApp(emu, TID);
  const e = await rejection<AuthError>(cca.acquireTokenByCode({ code: emu.authorize(OID, ['User.Read'], REDIRECT), scopes: ['Calendars.ReadWrite'], redirectUri: REDIRECT }));
  expect(e.name).toBe('InteractionRequiredAuthError');
  expect(e.errorCode).toBe('invalid_grant');
  expect(e.subError).toBe('consent_required');
  expect(e.errorMessage).toContain('AADSTS65001');
});

test('authorize page with PKCE and nonce: getAuthCodeUrl → redirect → acquireTokenByCode checks the nonce', async () => {
  const cca = msalApp(emu, TID);
  const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
  const nonce = 'nonce-7f3a';
  const url = await cca.getAuthCodeUrl({ scopes: SCOPES, redirectUri: REDIRECT, codeChallenge: challenge, codeChallengeMethod: 'S256', state: 'st-1', nonce, loginHint: UPN });
  expect(url.startsWith(`https://login.microsoftonline.com/${TID}/oauth2/v2.0/authorize?`)).toBe(true);
  // The browser's trip to the sign-in page, sent to the emulator.
  const res = await fetch(url.replace('https://login.microsoftonline.com/', emu.url), { redirect: 'manual' });
  expect(res.status).toBe(302);
  const back = new URL(res.headers.get('location') ?? '');
  expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
  expect(back.searchParams.get('state')).toBe('st-1');
  const code = back.searchParams.get('code') ?? '';
  const result = await cca.acquireTokenByCode(
    { code, scopes: SCOPES, redirectUri: REDIRECT, codeVerifier: verifier, nonce, state: 'st-1' },
    { code, state: back.searchParams.get('state') ?? '', client_info: back.searchParams.get('client_info') ?? '' },
  );
  expect(result.idTokenClaims).toMatchObject({ nonce });

  // A wrong PKCE verifier is refused; a nonce the id_token does not carry is rejected by MSAL itself.
  const res2 = await fetch((await cca.getAuthCodeUrl({ scopes: SCOPES, redirectUri: REDIRECT, codeChallenge: challenge, codeChallengeMethod: 'S256', nonce: 'n2' })).replace('https://login.microsoftonline.com/', emu.url), { redirect: 'manual' });
  const code2 = new URL(res2.headers.get('location') ?? '').searchParams.get('code') ?? '';
  const bad = await rejection<AuthError>(cca.acquireTokenByCode({ code: code2, scopes: SCOPES, redirectUri: REDIRECT, codeVerifier: 'x'.repeat(43), nonce: 'n2' }));
  expect(bad.errorMessage).toContain('AADSTS501481');
  const code3 = emu.authorize(OID, SCOPES, REDIRECT, { nonce: 'issued' });
  const mismatch = await rejection<AuthError>(cca.acquireTokenByCode({ code: code3, scopes: SCOPES, redirectUri: REDIRECT, nonce: 'expected' }));
  expect(mismatch.errorCode).toBe('nonce_mismatch');
  // msal-node 7 also rejects an id_token nonce when the request names none: authorize() without a nonce issues none.
  const code4 = emu.authorize(OID, SCOPES, REDIRECT, { nonce: 'unexpected' });
  expect((await rejection<AuthError>(cca.acquireTokenByCode({ code: code4, scopes: SCOPES, redirectUri: REDIRECT }))).errorCode).toBe('nonce_mismatch');
});

test('silent refresh: 401 after expireAccessTokens or a clock hour, then acquireTokenSilent refreshes from the cache', async () => {
  const { cca, account, graph } = await connect();
  expect(((await graph.api('/me/calendar').get()) as Json)['name']).toBe('Calendar');

  emu.expireAccessTokens(OID);
  const e = await graphFailure(graph.api('/me/calendar').get());
  expect(e.statusCode).toBe(401);
  expect(e.code).toBe('InvalidAuthenticationToken');
  const body = errorBody(e);
  expect(body).toEqual({
    code: 'InvalidAuthenticationToken',
    message: 'Access token has expired or is not yet valid.',
    innerError: { date: '2025-03-01T12:00:00', 'request-id': expect.any(String), 'client-request-id': expect.any(String) },
  });
  expect(e.headers?.get('www-authenticate')).toContain('Bearer');

  // MSAL's cache runs on the real clock: it only refreshes when asked to (forceRefresh) — with the cached refresh token.
  const before = emu.requests.length;
  const refreshed = await cca.acquireTokenSilent({ account, scopes: SCOPES, forceRefresh: true });
  const tokenCall = emu.requests.slice(before).find((r) => r.path.endsWith('/oauth2/v2.0/token'))!;
  expect(tokenCall.status).toBe(200);
  const g2 = graphClient(emu, async () => refreshed.accessToken);
  expect(((await g2.api('/me').get()) as Json)).toMatchObject({ id: OID, userPrincipalName: UPN, displayName: NAME });

  // Access tokens live 3600 s of the emulator's clock.
  clock.advance({ minutes: 61 });
  expect((await graphFailure(g2.api('/me').get())).statusCode).toBe(401);
  const again = await cca.acquireTokenSilent({ account, scopes: SCOPES, forceRefresh: true });
  expect(again.accessToken).not.toBe(refreshed.accessToken);
  expect((await graphClient(emu, async () => again.accessToken).api('/me/calendars').get()) as Json).toHaveProperty('value');
});

test('revokeAll: the refresh token answers invalid_grant AADSTS50173 through acquireTokenSilent', async () => {
  const { cca, account, accessToken } = await connect();
  emu.revokeAll(OID);
  const e = await rejection<AuthError>(cca.acquireTokenSilent({ account, scopes: SCOPES, forceRefresh: true }));
  expect(e).toBeInstanceOf(AuthError);
  expect(e.errorCode).toBe('invalid_grant');
  expect(e.errorMessage).toContain('AADSTS50173');
  // Issued access tokens keep working until they expire (they are self-contained JWTs).
  expect((await graphClient(emu, async () => accessToken).api('/me/calendar').get()) as Json).toHaveProperty('id');
});

test('scopes are checked: 403 ErrorAccessDenied without Calendars.*, reads with Calendars.Read only', async () => {
  const profileOnly = await connect(['User.Read']);
  expect(((await profileOnly.graph.api('/me').get()) as Json)['id']).toBe(OID);
  const denied = await graphFailure(profileOnly.graph.api('/me/calendars').get());
  expect(denied.statusCode).toBe(403);
  expect(errorBody(denied)).toMatchObject({ code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.' });

  const readOnly = await connect(['Calendars.Read']);
  expect(((await readOnly.graph.api('/me/events').get()) as Json)['value']).toEqual([]);
  const w = await graphFailure(readOnly.graph.api('/me/events').post({ subject: 'x', ...timed('2025-03-03', 9) }));
  expect(w.statusCode).toBe(403);
  expect(w.code).toBe('ErrorAccessDenied');
  expect((await graphFailure(readOnly.graph.api('/me').get())).statusCode).toBe(403);
});

// ---- calendars ------------------------------------------------------------------------------------------------

test('GET /me/calendars pages with @odata.nextLink; /me/calendar is the default', async () => {
  const practice = emu.addCalendar(OID, { name: 'Practice' });
  emu.addCalendar(OID, { name: 'Holidays', canEdit: false });
  const { graph } = await connect();
  const p1 = (await graph.api('/me/calendars').top(2).get()) as Json;
  expect((p1['value'] as Json[]).map((c) => c['name'])).toEqual(['Calendar', 'Practice']);
  expect(p1['@odata.nextLink']).toBe('https://graph.microsoft.com/v1.0/me/calendars?$top=2&$skip=2');
  const p2 = (await graph.api(String(p1['@odata.nextLink'])).get()) as Json;
  expect((p2['value'] as Json[]).map((c) => [c['name'], c['canEdit'], c['isDefaultCalendar']])).toEqual([['Holidays', false, false]]);
  expect(p2).not.toHaveProperty('@odata.nextLink');
  const def = (await graph.api('/me/calendar').get()) as Json;
  expect(def).toMatchObject({ name: 'Calendar', isDefaultCalendar: true, canEdit: true, owner: { name: NAME, address: UPN } });
  expect(((await graph.api(`/me/calendars/${practice.id}`).get()) as Json)['name']).toBe('Practice');
  const missing = await graphFailure(graph.api('/me/calendars/AAMkNOPE').get());
  expect(missing.statusCode).toBe(404);
  expect(errorBody(missing)).toMatchObject({ code: 'ErrorItemNotFound', message: 'The specified object was not found in the store.' });
  // A read-only calendar refuses the app's writes.
  const holidays = (p2['value'] as Json[])[0]!;
  expect((await graphFailure(graph.api(`/me/calendars/${String(holidays['id'])}/events`).post({ subject: 'x', ...timed('2025-03-03', 9) }))).statusCode).toBe(403);
});

// ---- calendarView delta ---------------------------------------------------------------------------------------

test('delta needs startDateTime and endDateTime; $select/$filter/$expand/$orderby are refused', async () => {
  const { graph } = await connect();
  const noStart = await graphFailure(graph.api('/me/calendarView/delta?endDateTime=2025-04-01T00:00:00Z').get());
  expect(noStart.statusCode).toBe(400);
  expect(errorBody(noStart)).toMatchObject({
    code: 'ErrorInvalidParameter',
    message: 'This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.',
  });
  expect((await graphFailure(graph.api('/me/calendarView/delta').get())).statusCode).toBe(400);
  for (const bad of ['$select=subject', '$filter=subject eq \'x\'', '$expand=attachments', '$orderby=start/dateTime']) {
    const e = await graphFailure(graph.api(`${initialDelta()}&${bad}`).get());
    expect(e.statusCode, bad).toBe(400);
    expect(e.code).toBe('ErrorInvalidUrlQuery');
  }
  const sel = await graphFailure(graph.api(initialDelta()).select('subject').get());
  expect(sel.statusCode).toBe(400);
  // A bad instant is a 400 too.
  expect((await graphFailure(graph.api('/me/calendarView/delta?startDateTime=yesterday&endDateTime=2025-04-01T00:00:00Z').get())).code).toBe('ErrorInvalidParameter');
});

test('delta pages with Prefer odata.maxpagesize, nextLink until deltaLink; the page shapes match the reference', async () => {
  const ids = seed(5);
  const { graph } = await connect();
  const round = await deltaRound(graph, initialDelta(), 2);
  expect(round.pages.map((p) => (p['value'] as Json[]).length)).toEqual([2, 2, 1]);
  expect(round.pages.map((p) => [typeof p['@odata.nextLink'], typeof p['@odata.deltaLink']])).toEqual([
    ['string', 'undefined'],
    ['string', 'undefined'],
    ['undefined', 'string'],
  ]);
  expect(String(round.pages[0]!['@odata.nextLink'])).toMatch(/^https:\/\/graph\.microsoft\.com\/v1\.0\/me\/calendarView\/delta\?\$skiptoken=[\w-]+$/);
  expect(round.deltaLink).toMatch(/^https:\/\/graph\.microsoft\.com\/v1\.0\/me\/calendarView\/delta\?\$deltatoken=[\w-]+$/);
  expect(new Set(round.items.map((i) => i['id']))).toEqual(new Set(ids));
  expect(Object.keys(round.pages[0]!).sort()).toEqual(Object.keys(fixture('microsoft', 'delta-first-page.json')).sort());
  expect(Object.keys(round.pages[2]!).sort()).toEqual(Object.keys(fixture('microsoft', 'delta-last-page.json')).sort());
  const refItem = (fixture('microsoft', 'delta-first-page.json')['value'] as Json[])[0]!;
  for (const item of round.items) {
    expect(Object.keys(item)).toEqual(expect.arrayContaining(Object.keys(refItem)));
    expect(item['@odata.type']).toBe('#microsoft.graph.event');
    expect((item['start'] as Json)['timeZone']).toBe('UTC');
    expect((item['start'] as Json)['dateTime']).toMatch(/^2025-03-\d\dT\d\d:00:00\.0000000$/);
  }
  // The Prefer header is acknowledged.
  const raw = (await graph.api(initialDelta()).header('Prefer', 'odata.maxpagesize=3').responseType(ResponseType.RAW).get()) as Response;
  expect(raw.headers.get('preference-applied')).toBe('odata.maxpagesize=3');
  // Without Prefer: 10 per page.
  seed(7);
  const big = await deltaRound(graph, initialDelta());
  expect(big.pages.map((p) => (p['value'] as Json[]).length)).toEqual([10, 2]);
});

test('replaying the deltaLink returns only the changes; deletions come as @removed', async () => {
  const ids = seed(4);
  const { graph } = await connect();
  const first = await deltaRound(graph, initialDelta());
  clock.advance({ minutes: 5 });
  const moved = emu.updateEvent(OID, ids[1]!, { subject: 'Moved by the therapist' });
  const added = emu.createEvent(OID, 'default', { subject: 'New client', ...timed('2025-03-20', 14) });
  emu.deleteEvent(OID, ids[2]!);
  const second = await deltaRound(graph, first.deltaLink);
  expect(second.items.map((i) => [i['id'], i['@removed'] ? 'removed' : i['subject']])).toEqual([
    [ids[2], 'removed'],
    [ids[1], 'Moved by the therapist'],
    [added['id'], 'New client'],
  ]);
  const ref = fixture('microsoft', 'delta-next-round.json');
  const [refRemoved, refEvent] = ref['value'] as Json[];
  expect(second.items[0]).toEqual({ '@odata.type': '#microsoft.graph.event', id: ids[2], '@removed': { reason: 'deleted' } });
  expect(Object.keys(second.items[0]!).sort()).toEqual(Object.keys(refRemoved!).sort());
  expect(Object.keys(second.items[1]!)).toEqual(expect.arrayContaining(Object.keys(refEvent!)));
  expect(Object.keys(second.pages[0]!).sort()).toEqual(Object.keys(ref).sort());
  expect(second.items[1]).toMatchObject({ changeKey: moved['changeKey'], lastModifiedDateTime: '2025-03-01T12:05:00.0000000Z' });

  // Nothing changed since: an empty page with a new deltaLink; the old deltaLink can still be replayed.
  const third = await deltaRound(graph, second.deltaLink);
  expect(third.items).toEqual([]);
  expect(third.deltaLink).not.toBe(second.deltaLink);
  expect((await deltaRound(graph, first.deltaLink)).items).toHaveLength(3);

  // Changes outside the window come as @removed too (event-delta.md "Response"), and so does an event moved out of it.
  const outside = emu.createEvent(OID, 'default', { subject: 'In May', ...timed('2025-05-05', 9) });
  emu.updateEvent(OID, ids[3]!, timed('2025-04-10', 9));
  const fourth = await deltaRound(graph, third.deltaLink);
  expect(fourth.items).toEqual([
    { '@odata.type': '#microsoft.graph.event', id: ids[3], '@removed': { reason: 'deleted' } },
    { '@odata.type': '#microsoft.graph.event', id: outside['id'], '@removed': { reason: 'deleted' } },
  ]);
  // /users/{upn} works like /me and keeps its prefix in the links; another user's mailbox is refused.
  const viaUsers = await deltaRound(graph, `/users/${UPN}/calendarView/delta?startDateTime=${WINDOW.startDateTime}&endDateTime=${WINDOW.endDateTime}`);
  expect(viaUsers.deltaLink.startsWith(`https://graph.microsoft.com/v1.0/users/${UPN}/calendarView/delta?$deltatoken=`)).toBe(true);
  expect(viaUsers.items).toHaveLength(3);
  expect((await graphFailure(graph.api('/users/someone.else@contoso.onmicrosoft.com/calendarView/delta').get())).statusCode).toBe(403);
  // Other calendars are not in /me/calendarView/delta (v1.0: the default calendar only).
  const practice = emu.addCalendar(OID, { name: 'Practice' });
  emu.createEvent(OID, practice.id, { subject: 'Elsewhere', ...timed('2025-03-12', 9) });
  expect((await deltaRound(graph, fourth.deltaLink)).items).toEqual([]);
});

test('an expired or unknown delta token answers 410 syncStateNotFound; a full resync works', async () => {
  seed(3);
  const { graph } = await connect();
  const round = await deltaRound(graph, initialDelta());
  const firstPage = (await graph.api(initialDelta()).header('Prefer', 'odata.maxpagesize=1').get()) as Json;
  emu.expireDeltaLinks(OID);
  for (const link of [round.deltaLink, String(firstPage['@odata.nextLink']), 'https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=bogus']) {
    const e = await graphFailure(graph.api(link).get());
    expect(e.statusCode).toBe(410);
    expect(e.code).toBe('syncStateNotFound');
    expect(errorBody(e)['innerError']).toMatchObject({ 'request-id': expect.any(String) });
  }
  const again = await deltaRound(graph, initialDelta());
  expect(again.items).toHaveLength(3);
  expect((await deltaRound(graph, again.deltaLink)).items).toEqual([]);
});

test('series in delta: the master in full, occurrences as stubs, exceptions in full', async () => {
  const { graph } = await connect();
  const master = emu.createEvent(OID, 'default', {
    subject: 'Weekly session',
    attendees: [{ emailAddress: { address: 'client@example.com', name: 'A Client' }, type: 'required' }],
    start: { dateTime: '2025-03-04T18:00:00', timeZone: 'GMT Standard Time' },
    end: { dateTime: '2025-03-04T18:50:00', timeZone: 'GMT Standard Time' },
    recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['tuesday'] }, range: { type: 'numbered', startDate: '2025-03-04', numberOfOccurrences: 5 } },
  });
  const masterId = String(master['id']);
  expect(master).toMatchObject({ type: 'seriesMaster', seriesMasterId: null });
  expect(master['recurrence']).toEqual({
    pattern: { type: 'weekly', interval: 1, month: 0, dayOfMonth: 0, daysOfWeek: ['tuesday'], firstDayOfWeek: 'sunday', index: 'first' },
    range: { type: 'numbered', startDate: '2025-03-04', endDate: '0001-01-01', recurrenceTimeZone: 'GMT Standard Time', numberOfOccurrences: 5 },
  });
  const round = await deltaRound(graph, initialDelta({ startDateTime: '2025-03-01T00:00:00Z', endDateTime: '2025-04-10T00:00:00Z' }));
  expect(round.items.map((i) => i['type'])).toEqual(['seriesMaster', 'occurrence', 'occurrence', 'occurrence', 'occurrence', 'occurrence']);
  const [full, ...stubs] = round.items;
  expect(full).toMatchObject({ id: masterId, subject: 'Weekly session', attendees: [expect.objectContaining({ emailAddress: { name: 'A Client', address: 'client@example.com' } })] });
  for (const s of stubs) expect(Object.keys(s)).toEqual(['@odata.type', 'id', 'seriesMasterId', 'type', 'start', 'end']);
  // London: 18:00 GMT, then 18:00 BST (17:00 UTC) after 30 March.
  expect(stubs.map((s) => (s['start'] as Json)['dateTime'])).toEqual([
    '2025-03-04T18:00:00.0000000',
    '2025-03-11T18:00:00.0000000',
    '2025-03-18T18:00:00.0000000',
    '2025-03-25T18:00:00.0000000',
    '2025-04-01T17:00:00.0000000',
  ]);
  expect(stubs.every((s) => s['seriesMasterId'] === masterId)).toBe(true);

  // Moving one occurrence makes an exception: it comes back in full, with originalStart; the others do not change.
  clock.advance({ minutes: 20 });
  const third = String(stubs[2]!['id']);
  const ex = emu.updateEvent(OID, third, timed('2025-03-19', 10, 50));
  expect(ex).toMatchObject({ id: third, type: 'exception', seriesMasterId: masterId, originalStart: '2025-03-18T18:00:00Z', subject: 'Weekly session' });
  const next = await deltaRound(graph, round.deltaLink);
  expect(next.items).toHaveLength(1);
  expect(next.items[0]).toMatchObject({ '@odata.type': '#microsoft.graph.event', id: third, type: 'exception', start: { dateTime: '2025-03-19T10:00:00.0000000', timeZone: 'UTC' } });
  expect(next.items[0]).toHaveProperty('subject');
});

test('a cancelled occurrence gives no delta item, but disappears from /instances', async () => {
  const { graph } = await connect();
  const master = emu.createEvent(OID, 'default', {
    subject: 'Group',
    ...timed('2025-03-03', 17),
    recurrence: { pattern: { type: 'daily', interval: 2 }, range: { type: 'endDate', startDate: '2025-03-03', endDate: '2025-03-11' } },
  });
  const masterId = String(master['id']);
  const window = '?startDateTime=2025-03-01T00:00:00Z&endDateTime=2025-04-01T00:00:00Z';
  const before = (await graph.api(`/me/events/${masterId}/instances${window}`).get()) as Json;
  const instances = before['value'] as Json[];
  expect(instances.map((i) => (i['start'] as Json)['dateTime'])).toEqual([
    '2025-03-03T17:00:00.0000000',
    '2025-03-05T17:00:00.0000000',
    '2025-03-07T17:00:00.0000000',
    '2025-03-09T17:00:00.0000000',
    '2025-03-11T17:00:00.0000000',
  ]);
  expect(instances.every((i) => i['type'] === 'occurrence' && i['subject'] === 'Group')).toBe(true);
  const round = await deltaRound(graph, initialDelta());
  const cancelled = String(instances[1]!['id']);

  clock.advance({ minutes: 10 });
  emu.deleteEvent(OID, cancelled);
  const next = await deltaRound(graph, round.deltaLink);
  // Only the series master changed; no item (and no @removed) for the cancelled occurrence.
  expect(next.items.map((i) => [i['id'], i['type']])).toEqual([[masterId, 'seriesMaster']]);
  expect(next.items[0]!['lastModifiedDateTime']).toBe('2025-03-01T12:10:00.0000000Z');
  const after = (await graph.api(`/me/events/${masterId}/instances${window}`).get()) as Json;
  expect((after['value'] as Json[]).map((i) => i['id'])).toEqual(instances.filter((i) => i['id'] !== cancelled).map((i) => i['id']));
  expect((await graphFailure(graph.api(`/me/events/${cancelled}`).get())).statusCode).toBe(404);
  // The same through the API: DELETE on an occurrence id.
  const viaApi = String(instances[2]!['id']);
  await graph.api(`/me/events/${viaApi}`).delete();
  expect((await deltaRound(graph, next.deltaLink)).items.map((i) => i['id'])).toEqual([masterId]);
});

// ---- calendarView, events, time zones ---------------------------------------------------------------------

test('calendarView: full objects with expanded occurrences, paged by $top/$skip; per-calendar views', async () => {
  const practice = emu.addCalendar(OID, { name: 'Practice' });
  seed(3);
  emu.createEvent(OID, 'default', { subject: 'Series', ...timed('2025-03-10', 8), recurrence: { pattern: { type: 'absoluteMonthly', interval: 1, dayOfMonth: 31 }, range: { type: 'noEnd', startDate: '2025-01-31' } } });
  emu.createEvent(OID, practice.id, { subject: 'In practice', ...timed('2025-03-12', 11) });
  const { graph } = await connect();
  const view = (await graph.api('/me/calendarView').query(WINDOW).top(3).get()) as Json;
  expect((view['value'] as Json[])).toHaveLength(3);
  const rest = (await graph.api(String(view['@odata.nextLink'])).get()) as Json;
  const all = [...(view['value'] as Json[]), ...(rest['value'] as Json[])];
  // Monthly on day 31: Outlook puts it on the last day of shorter months (January 31, February 28, March 31).
  expect(all.filter((i) => i['subject'] === 'Series').map((i) => [(i['start'] as Json)['dateTime'], i['type']])).toEqual([['2025-03-31T08:00:00.0000000', 'occurrence']]);
  expect(all.map((i) => i['subject'])).not.toContain('In practice');
  expect(all.every((i) => typeof i['bodyPreview'] === 'string' && 'attendees' in i)).toBe(true);
  const feb = (await graph.api('/me/calendarView').query({ startDateTime: '2025-02-01T00:00:00Z', endDateTime: '2025-03-01T00:00:00Z' }).get()) as Json;
  expect((feb['value'] as Json[]).map((i) => (i['start'] as Json)['dateTime'])).toEqual(['2025-02-28T08:00:00.0000000']);
  // relativeMonthly: the first Monday of every month, three times.
  const firstMonday = emu.createEvent(OID, practice.id, {
    subject: 'Review',
    ...timed('2025-03-01', 16),
    recurrence: { pattern: { type: 'relativeMonthly', interval: 1, daysOfWeek: ['monday'], index: 'first' }, range: { type: 'numbered', startDate: '2025-03-01', numberOfOccurrences: 3 } },
  });
  expect(firstMonday['start']).toEqual({ dateTime: '2025-03-03T16:00:00.0000000', timeZone: 'UTC' }); // moved onto the first occurrence
  const reviews = (await graph.api(`/me/events/${String(firstMonday['id'])}/instances`).query({ startDateTime: '2025-01-01T00:00:00Z', endDateTime: '2026-01-01T00:00:00Z' }).get()) as Json;
  expect((reviews['value'] as Json[]).map((i) => String((i['start'] as Json)['dateTime']).slice(0, 10))).toEqual(['2025-03-03', '2025-04-07', '2025-05-05']);
  const other = (await graph.api(`/me/calendars/${practice.id}/calendarView`).query(WINDOW).get()) as Json;
  expect((other['value'] as Json[]).map((i) => i['subject'])).toEqual(['Review', 'In practice']);
  expect((await graphFailure(graph.api(`/me/calendars/${practice.id}/calendarView`).get())).code).toBe('ErrorInvalidParameter');
});

test('Prefer outlook.timezone shapes GET times (Windows or IANA names); writes take either; POST answers in the event zone', async () => {
  const { graph } = await connect();
  const created = (await graph.api('/me/events').post({
    subject: 'Intake',
    start: { dateTime: '2025-03-12T09:30:00', timeZone: 'Pacific Standard Time' },
    end: { dateTime: '2025-03-12T10:20:00', timeZone: 'America/Los_Angeles' },
  })) as Json;
  expect(created).toMatchObject({
    start: { dateTime: '2025-03-12T09:30:00.0000000', timeZone: 'Pacific Standard Time' },
    end: { dateTime: '2025-03-12T10:20:00.0000000', timeZone: 'America/Los_Angeles' },
    originalStartTimeZone: 'Pacific Standard Time',
    originalEndTimeZone: 'America/Los_Angeles',
  });
  const id = String(created['id']);
  expect(((await graph.api(`/me/events/${id}`).get()) as Json)['start']).toEqual({ dateTime: '2025-03-12T16:30:00.0000000', timeZone: 'UTC' });
  const pst = (await graph.api(`/me/events/${id}`).header('Prefer', 'outlook.timezone="Pacific Standard Time"').get()) as Json;
  expect(pst['start']).toEqual({ dateTime: '2025-03-12T09:30:00.0000000', timeZone: 'Pacific Standard Time' });
  const berlin = (await graph.api(`/me/events/${id}`).header('Prefer', 'outlook.timezone="Europe/Berlin"').responseType(ResponseType.RAW).get()) as Response;
  expect(berlin.headers.get('preference-applied')).toBe('outlook.timezone="Europe/Berlin"');
  expect(((await berlin.json()) as Json)['end']).toEqual({ dateTime: '2025-03-12T18:20:00.0000000', timeZone: 'Europe/Berlin' });
  const delta = (await graph.api(initialDelta()).header('Prefer', 'outlook.timezone="Tokyo Standard Time", odata.maxpagesize=5').get()) as Json;
  expect(((delta['value'] as Json[])[0]!['start'] as Json)).toEqual({ dateTime: '2025-03-13T01:30:00.0000000', timeZone: 'Tokyo Standard Time' });
  const unknownZone = await graphFailure(graph.api('/me/events').post({ subject: 'x', start: { dateTime: '2025-03-12T09:30:00', timeZone: 'Mars/Olympus' }, end: { dateTime: '2025-03-12T10:00:00', timeZone: 'UTC' } }));
  expect(unknownZone.statusCode).toBe(400);
  expect(unknownZone.code).toBe('TimeZoneNotSupportedException');
  // IdType="ImmutableId" is honoured (ids never change in the emulator) and echoed.
  const imm = (await graph.api(`/me/events/${id}`).header('Prefer', 'IdType="ImmutableId"').responseType(ResponseType.RAW).get()) as Response;
  expect(imm.headers.get('preference-applied')).toBe('IdType="ImmutableId"');
  // All-day events are floating dates.
  const allDay = (await graph.api('/me/events').post({ subject: 'Closed', isAllDay: true, start: { dateTime: '2025-03-14T00:00:00', timeZone: 'Europe/London' }, end: { dateTime: '2025-03-15T00:00:00', timeZone: 'Europe/London' } })) as Json;
  const got = (await graph.api(`/me/events/${String(allDay['id'])}`).header('Prefer', 'outlook.timezone="Pacific Standard Time"').get()) as Json;
  expect(got).toMatchObject({ isAllDay: true, start: { dateTime: '2025-03-14T00:00:00.0000000', timeZone: 'Pacific Standard Time' }, end: { dateTime: '2025-03-15T00:00:00.0000000' } });
  const badAllDay = await graphFailure(graph.api('/me/events').post({ subject: 'x', isAllDay: true, ...timed('2025-03-14', 9) }));
  expect(badAllDay.statusCode).toBe(400);
});

test('a weekly series across the US DST change keeps 18:00 Pacific time', async () => {
  const { graph } = await connect();
  const series = (await graph.api('/me/events').post({
    subject: 'Evening group',
    start: { dateTime: '2025-03-04T18:00:00', timeZone: 'Pacific Standard Time' },
    end: { dateTime: '2025-03-04T19:00:00', timeZone: 'Pacific Standard Time' },
    recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['tuesday', 'thursday'], firstDayOfWeek: 'sunday' }, range: { type: 'numbered', startDate: '2025-03-04', numberOfOccurrences: 6 } },
  })) as Json;
  const inst = (await graph.api(`/me/events/${String(series['id'])}/instances`).query(WINDOW).get()) as Json;
  expect((inst['value'] as Json[]).map((i) => (i['start'] as Json)['dateTime'])).toEqual([
    '2025-03-05T02:00:00.0000000',
    '2025-03-07T02:00:00.0000000',
    '2025-03-12T01:00:00.0000000',
    '2025-03-14T01:00:00.0000000',
    '2025-03-19T01:00:00.0000000',
    '2025-03-21T01:00:00.0000000',
  ]);
  const local = (await graph.api(`/me/events/${String(series['id'])}/instances`).query(WINDOW).header('Prefer', 'outlook.timezone="America/Los_Angeles"').get()) as Json;
  expect((local['value'] as Json[]).every((i) => String((i['start'] as Json)['dateTime']).endsWith('T18:00:00.0000000'))).toBe(true);
  expect((local['value'] as Json[]).every((i) => i['originalStart'] !== undefined && i['seriesMasterId'] === series['id'])).toBe(true);
});

test('event CRUD through Graph: the event.md shape, changeKey per change, transactionId, 404 after delete', async () => {
  const { graph } = await connect();
  const body = {
    subject: 'First session',
    body: { contentType: 'html', content: '<p>Welcome <b>Alex</b></p>' },
    ...timed('2025-03-10', 15, 50, 'W. Europe Standard Time'),
    location: { displayName: 'Room 2' },
    attendees: [{ emailAddress: { address: 'alex@example.com', name: 'Alex' }, type: 'required' }],
    categories: ['SessionKeeper'],
    isOnlineMeeting: true,
    onlineMeetingProvider: 'teamsForBusiness',
    reminderMinutesBeforeStart: 30,
    transactionId: 'sk-booking-1',
  };
  const created = (await graph.api('/me/events').post(body)) as Json;
  expect(created).toMatchObject({
    '@odata.context': `https://graph.microsoft.com/v1.0/$metadata#users('${OID}')/events/$entity`,
    subject: 'First session',
    bodyPreview: 'Welcome Alex',
    type: 'singleInstance',
    isOrganizer: true,
    isCancelled: false,
    responseStatus: { response: 'organizer', time: '0001-01-01T00:00:00Z' },
    organizer: { emailAddress: { name: NAME, address: UPN } },
    attendees: [{ type: 'required', status: { response: 'none', time: '0001-01-01T00:00:00Z' }, emailAddress: { name: 'Alex', address: 'alex@example.com' } }],
    location: { displayName: 'Room 2', locationType: 'default' },
    locations: [{ displayName: 'Room 2' }],
    isOnlineMeeting: true,
    onlineMeetingProvider: 'teamsForBusiness',
    onlineMeeting: { joinUrl: expect.stringMatching(/^https:\/\/teams\.microsoft\.com\/l\/meetup-join\//) },
    transactionId: 'sk-booking-1',
    createdDateTime: '2025-03-01T12:00:00.0000000Z',
    webLink: expect.stringContaining('https://outlook.office365.com/owa/?itemid='),
  });
  expect(created['@odata.etag']).toBe(`W/"${String(created['changeKey'])}"`);
  // The keys of event.md's JSON representation (less relationships and originalStart, plus iCalUId/transactionId).
  const ref = Object.keys(fixture('microsoft', 'event-resource.json')).filter((k) => !['attachments', 'calendar', 'extensions', 'instances', 'singleValueExtendedProperties', 'multiValueExtendedProperties', 'originalStart'].includes(k));
  const keys = Object.keys(created).filter((k) => !k.startsWith('@odata.'));
  expect(keys.sort()).toEqual([...ref, 'iCalUId', 'transactionId'].sort());
  // The same transactionId does not create a second event.
  const retried = (await graph.api('/me/events').post(body)) as Json;
  expect(retried['id']).toBe(created['id']);
  expect(((await graph.api('/me/events').get()) as Json)['value']).toHaveLength(1);

  clock.advance({ minutes: 3 });
  const id = String(created['id']);
  const patched = (await graph.api(`/me/events/${id}`).patch({ subject: 'First session (moved)', ...timed('2025-03-11', 15, 50, 'W. Europe Standard Time') })) as Json;
  expect(patched['changeKey']).not.toBe(created['changeKey']);
  expect(patched).toMatchObject({ lastModifiedDateTime: '2025-03-01T12:03:00.0000000Z', createdDateTime: '2025-03-01T12:00:00.0000000Z', isOnlineMeeting: true });
  // Unknown properties are refused; read-only ones are ignored.
  const unknown = await graphFailure(graph.api(`/me/events/${id}`).patch({ colour: 'red' }));
  expect(unknown.statusCode).toBe(400);
  expect(unknown.code).toBe('RequestBodyRead');
  await graph.api(`/me/events/${id}`).patch({ id: 'other', changeKey: 'x' });
  expect(((await graph.api(`/me/events/${id}`).select('subject,start').get()) as Json)).toEqual({
    '@odata.context': expect.any(String),
    '@odata.etag': expect.any(String),
    id,
    subject: 'First session (moved)',
    start: { dateTime: '2025-03-11T14:00:00.0000000', timeZone: 'UTC' },
  });
  await graph.api(`/me/events/${id}`).delete();
  const gone = await graphFailure(graph.api(`/me/events/${id}`).get());
  expect(gone.statusCode).toBe(404);
  expect(gone.code).toBe('ErrorItemNotFound');
  expect((await graphFailure(graph.api(`/me/events/${id}`).delete())).statusCode).toBe(404);
});

test('singleValueExtendedProperties: written with the event, read with $expand, found with $filter', async () => {
  const { graph } = await connect();
  const PROP = 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SessionKeeperId';
  const a = (await graph.api('/me/events').post({ subject: 'Tagged', ...timed('2025-03-05', 9), singleValueExtendedProperties: [{ id: PROP, value: 'sk-42' }] })) as Json;
  await graph.api('/me/events').post({ subject: 'Untagged', ...timed('2025-03-05', 11) });
  expect(a).not.toHaveProperty('singleValueExtendedProperties');
  const expanded = (await graph.api(`/me/events/${String(a['id'])}`).expand(`singleValueExtendedProperties($filter=id eq '${PROP}')`).get()) as Json;
  expect(expanded['singleValueExtendedProperties']).toEqual([{ id: PROP, value: 'sk-42' }]);
  const found = (await graph.api('/me/events').filter(`singleValueExtendedProperties/Any(ep: ep/id eq '${PROP}' and ep/value eq 'sk-42')`).get()) as Json;
  expect((found['value'] as Json[]).map((e) => e['subject'])).toEqual(['Tagged']);
  await graph.api(`/me/events/${String(a['id'])}`).patch({ singleValueExtendedProperties: [{ id: PROP, value: 'sk-43' }] });
  const view = (await graph.api('/me/calendarView').query(WINDOW).expand(`singleValueExtendedProperties($filter=id eq '${PROP}')`).get()) as Json;
  expect((view['value'] as Json[]).map((e) => e['singleValueExtendedProperties'] ?? null)).toEqual([[{ id: PROP, value: 'sk-43' }], null]);
  const bad = await graphFailure(graph.api('/me/events').post({ subject: 'x', ...timed('2025-03-05', 9), singleValueExtendedProperties: [{ id: 'nonsense', value: '1' }] }));
  expect(bad.statusCode).toBe(400);
});

test('cancelEvent: the organizer copy turns isCancelled then is removed; an attendee copy stays cancelled', async () => {
  const { graph } = await connect();
  const mine = emu.createEvent(OID, 'default', { subject: 'Mine', ...timed('2025-03-06', 9) });
  const invited = emu.createEvent(OID, 'default', {
    subject: 'Supervision',
    ...timed('2025-03-07', 9),
    organizer: { emailAddress: { address: 'supervisor@example.org', name: 'Supervisor' } },
    attendees: [{ emailAddress: { address: UPN }, type: 'required', status: { response: 'accepted', time: '2025-02-20T10:00:00Z' } }],
  });
  expect(invited).toMatchObject({ isOrganizer: false, responseStatus: { response: 'notResponded' } });
  const round = await deltaRound(graph, initialDelta());
  emu.cancelEvent(OID, String(mine['id']), 'Sorry');
  emu.cancelEvent(OID, String(invited['id']));
  const next = await deltaRound(graph, round.deltaLink);
  expect(next.items.map((i) => [i['id'], i['@removed'] ? 'removed' : `${String(i['subject'])} ${String(i['isCancelled'])}`])).toEqual([
    [mine['id'], 'removed'],
    [invited['id'], 'Canceled: Supervision true'],
  ]);
  // The app may cancel only as organizer.
  const own = (await graph.api('/me/events').post({ subject: 'To cancel', ...timed('2025-03-08', 9) })) as Json;
  const raw = (await graph.api(`/me/events/${String(own['id'])}/cancel`).responseType(ResponseType.RAW).post({ Comment: 'Cancelled by the practice' })) as Response;
  expect(raw.status).toBe(202);
  const notOrganizer = await graphFailure(graph.api(`/me/events/${String(invited['id'])}/cancel`).post({}));
  expect(notOrganizer.statusCode).toBe(400);
});

test('getSchedule: busy times of the default calendar, availabilityView and workingHours', async () => {
  emu.createEvent(OID, 'default', { subject: 'Busy', ...timed('2025-03-05', 10, 60) });
  emu.createEvent(OID, 'default', { subject: 'Maybe', showAs: 'tentative', ...timed('2025-03-05', 12, 30) });
  emu.createEvent(OID, 'default', { subject: 'Free', showAs: 'free', ...timed('2025-03-05', 13) });
  const practice = emu.addCalendar(OID, { name: 'Practice' });
  emu.createEvent(OID, practice.id, { subject: 'Elsewhere', ...timed('2025-03-05', 14) });
  const { graph } = await connect();
  const res = (await graph.api('/me/calendar/getSchedule').header('Prefer', 'outlook.timezone="UTC"').post({
    schedules: [UPN, 'nobody@example.com'],
    startTime: { dateTime: '2025-03-05T09:00:00', timeZone: 'UTC' },
    endTime: { dateTime: '2025-03-05T15:00:00', timeZone: 'UTC' },
    availabilityViewInterval: 60,
  })) as Json;
  const [me, nobody] = res['value'] as Json[];
  expect(me).toMatchObject({
    scheduleId: UPN,
    availabilityView: '020100',
    scheduleItems: [
      { isPrivate: false, status: 'busy', subject: 'Busy', start: { dateTime: '2025-03-05T10:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2025-03-05T11:00:00.0000000', timeZone: 'UTC' } },
      { status: 'tentative', subject: 'Maybe' },
    ],
    workingHours: { daysOfWeek: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'], startTime: '08:00:00.0000000', endTime: '17:00:00.0000000', timeZone: { name: 'GMT Standard Time' } },
  });
  expect(nobody).toMatchObject({ scheduleId: 'nobody@example.com', error: { responseCode: 'ErrorMailRecipientNotFound' } });
  const ref = (fixture('microsoft', 'getschedule-response.json')['value'] as Json[])[0]!;
  expect(Object.keys(me!).sort()).toEqual(Object.keys(ref).sort());
  expect(Object.keys((me!['scheduleItems'] as Json[])[0]!).sort()).toEqual(Object.keys((ref['scheduleItems'] as Json[])[0]!).sort());
});

// ---- subscriptions ------------------------------------------------------------------------------------------

interface Received {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  got: Received[];
  /** How validation requests are answered (default: echo the decoded token as text/plain). */
  validation: 'echo' | 'wrong' | 'status500' | 'json' | 'hang';
  close: () => Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const got: Received[] = [];
  const r: Receiver = { url: '', got, validation: 'echo', close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('validationToken');
      if (token === null) return void res.writeHead(202).end();
      switch (r.validation) {
        case 'echo':
          return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end(token);
        case 'wrong':
          return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end(encodeURIComponent(token));
        case 'status500':
          return void res.writeHead(500).end();
        case 'json':
          return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(token));
        case 'hang':
          return; // never answers
      }
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/graph`;
  r.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  };
  return r;
}

function notificationsOf(hook: Receiver): Json[] {
  return hook.got.filter((g) => !g.url.includes('validationToken')).flatMap((g) => (JSON.parse(g.body) as { value: Json[] }).value);
}

const inMinutes = (m: number): string => clock.now().plus({ minutes: m }).toUTC().toISO() ?? '';

test('subscription: validation handshake on both URLs, then notifications with clientState', async () => {
  const hook = await receiver();
  try {
    const { graph } = await connect();
    const sub = (await graph.api('/subscriptions').post({
      changeType: 'created,updated,deleted',
      notificationUrl: `${hook.url}?tenant=practice-1`,
      lifecycleNotificationUrl: `${hook.url}/lifecycle`,
      resource: '/me/events',
      expirationDateTime: inMinutes(4230),
      clientState: 'sk-secret-123',
    })) as Json;
    // Two validation POSTs: text/plain, ?validationToken=…, query of the notificationUrl kept.
    expect(hook.got).toHaveLength(2);
    for (const v of hook.got) {
      expect(v.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(new URL(v.url, 'http://x').searchParams.get('validationToken')).toMatch(/^Validation: Testing client application reachability for subscription Request-Id: [0-9a-f-]{36}$/);
    }
    expect(new URL(hook.got[0]!.url, 'http://x').searchParams.get('tenant')).toBe('practice-1');
    expect(hook.got[1]!.url.startsWith('/hooks/graph/lifecycle?')).toBe(true);
    expect(sub).toMatchObject({
      '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity',
      resource: '/me/events',
      applicationId: emu.clientId,
      changeType: 'created,updated,deleted',
      clientState: 'sk-secret-123',
      creatorId: OID,
      expirationDateTime: '2025-03-04T10:30:00.0000000Z',
      lifecycleNotificationUrl: `${hook.url}/lifecycle`,
    });
    expect(Object.keys(sub)).toEqual(expect.arrayContaining(Object.keys(fixture('microsoft', 'subscription-response.json'))));
    expect(emu.subscriptions()).toEqual([
      {
        id: sub['id'],
        resource: '/me/events',
        notificationUrl: `${hook.url}?tenant=practice-1`,
        lifecycleNotificationUrl: `${hook.url}/lifecycle`,
        clientState: 'sk-secret-123',
        expirationDateTime: '2025-03-04T10:30:00.0000000Z',
        removed: false,
      },
    ]);

    const ev = emu.createEvent(OID, 'default', { subject: 'Booked in Outlook', ...timed('2025-03-10', 9) });
    emu.updateEvent(OID, String(ev['id']), { subject: 'Renamed' });
    await graph.api(`/me/events/${String(ev['id'])}`).delete();
    // Events of another calendar are not in /me/events.
    const practice = emu.addCalendar(OID, { name: 'Practice' });
    emu.createEvent(OID, practice.id, { subject: 'Elsewhere', ...timed('2025-03-10', 11) });
    await emu.settled();
    const notes = notificationsOf(hook);
    expect(notes.map((n) => n['changeType'])).toEqual(['created', 'updated', 'deleted']);
    const ref = (fixture('microsoft', 'change-notification.json')['value'] as Json[])[0]!;
    for (const n of notes) {
      expect(Object.keys(n).sort()).toEqual(Object.keys(ref).sort());
      expect(Object.keys(n['resourceData'] as Json).sort()).toEqual(Object.keys(ref['resourceData'] as Json).sort());
      expect(n).toMatchObject({
        subscriptionId: sub['id'],
        clientState: 'sk-secret-123',
        tenantId: TID,
        subscriptionExpirationDateTime: '2025-03-04T10:30:00.0000000Z',
        resource: `Users/${OID}/Events/${String(ev['id'])}`,
        resourceData: { '@odata.type': '#Microsoft.Graph.Event', '@odata.id': `Users/${OID}/Events/${String(ev['id'])}`, id: ev['id'] },
      });
    }
    expect(emu.notifications().map((n) => [n.status, n.url])).toEqual([
      [202, `${hook.url}?tenant=practice-1`],
      [202, `${hook.url}?tenant=practice-1`],
      [202, `${hook.url}?tenant=practice-1`],
    ]);
    expect(hook.got.filter((g) => !g.url.includes('validationToken')).every((g) => g.headers['content-type']?.startsWith('application/json'))).toBe(true);

    // GET lists it; PATCH renews; DELETE stops notifications.
    expect((((await graph.api('/subscriptions').get()) as Json)['value'] as Json[]).map((s) => s['id'])).toEqual([sub['id']]);
    const renewed = (await graph.api(`/subscriptions/${String(sub['id'])}`).patch({ expirationDateTime: inMinutes(10080) })) as Json;
    expect(renewed['expirationDateTime']).toBe('2025-03-08T12:00:00.0000000Z');
    await graph.api(`/subscriptions/${String(sub['id'])}`).delete();
    emu.createEvent(OID, 'default', { subject: 'After delete', ...timed('2025-03-11', 9) });
    await emu.settled();
    expect(notificationsOf(hook)).toHaveLength(3);
    expect((await graphFailure(graph.api(`/subscriptions/${String(sub['id'])}`).get())).statusCode).toBe(404);
  } finally {
    await hook.close();
  }
});

test('subscription: a failed handshake creates nothing (wrong token, 500, not text/plain, no answer in time)', async () => {
  const hook = await receiver();
  await emu.close();
  // Long enough for a real echo on a loaded machine; the "hang" case waits it out.
  emu = await startGraph({ oid: OID, tid: TID, upn: UPN, displayName: NAME }, { clock, validationTimeoutMs: 2000 });
  try {
    const { graph } = await connect();
    const create = (): Promise<unknown> =>
      graph.api('/subscriptions').post({ changeType: 'created,updated,deleted', notificationUrl: hook.url, resource: 'me/events', expirationDateTime: inMinutes(60), clientState: 'x' });
    for (const mode of ['wrong', 'status500', 'json', 'hang'] as const) {
      hook.validation = mode;
      const e = await graphFailure(create());
      expect(e.statusCode, mode).toBe(400);
      expect(e.code).toBe('ValidationError');
      expect(e.message).toMatch(/^Subscription validation request failed\./);
    }
    expect(emu.subscriptions()).toEqual([]);
    // A failing lifecycle URL fails the creation too.
    hook.validation = 'echo';
    const e = await graphFailure(graph.api('/subscriptions').post({ changeType: 'updated', notificationUrl: hook.url, lifecycleNotificationUrl: 'http://127.0.0.1:9/nothing', resource: 'me/events', expirationDateTime: inMinutes(60) }));
    expect(e.code).toBe('ValidationError');
    expect(emu.subscriptions()).toEqual([]);
    expect((await create()) as Json).toHaveProperty('id');
  } finally {
    await hook.close();
  }
});

test('subscription: expiry at most 10080 minutes ahead, clientState at most 128 characters, known resources', async () => {
  const hook = await receiver();
  try {
    const { graph, cca, account } = await connect();
    const body = (extra: Json): Json => ({ changeType: 'created,updated,deleted', notificationUrl: hook.url, resource: '/me/events', expirationDateTime: inMinutes(60), ...extra });
    const tooLong = await graphFailure(graph.api('/subscriptions').post(body({ expirationDateTime: inMinutes(10081) })));
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.message).toContain('10080 minutes');
    expect((await graphFailure(graph.api('/subscriptions').post(body({ expirationDateTime: inMinutes(-1) })))).statusCode).toBe(400);
    expect((await graphFailure(graph.api('/subscriptions').post(body({ clientState: 'c'.repeat(129) })))).statusCode).toBe(400);
    expect((await graphFailure(graph.api('/subscriptions').post(body({ changeType: 'created,moved' })))).statusCode).toBe(400);
    expect((await graphFailure(graph.api('/subscriptions').post(body({ resource: "me/mailFolders('Inbox')/messages" })))).statusCode).toBe(400);
    expect(hook.got).toEqual([]); // refused before any handshake
    const ok = (await graph.api('/subscriptions').post(body({ expirationDateTime: inMinutes(10080), clientState: 'c'.repeat(128) }))) as Json;
    expect(ok['expirationDateTime']).toBe('2025-03-08T12:00:00.0000000Z');
    const renewTooFar = await graphFailure(graph.api(`/subscriptions/${String(ok['id'])}`).patch({ expirationDateTime: inMinutes(20000) }));
    expect(renewTooFar.statusCode).toBe(400);

    // One calendar: /me/calendars/{id}/events hears only that calendar.
    const practice = emu.addCalendar(OID, { name: 'Practice' });
    await graph.api('/subscriptions').post(body({ resource: `/me/calendars/${practice.id}/events`, changeType: 'created', clientState: 'practice' }));
    emu.createEvent(OID, practice.id, { subject: 'P', ...timed('2025-03-10', 9) });
    await emu.settled();
    expect(notificationsOf(hook).map((n) => n['clientState'])).toEqual(['practice']);

    // Expired subscriptions stop notifying and are gone.
    clock.advance({ minutes: 10081 });
    const fresh = await cca.acquireTokenSilent({ account, scopes: SCOPES, forceRefresh: true });
    const graph2 = graphClient(emu, async () => fresh.accessToken);
    emu.createEvent(OID, practice.id, { subject: 'Later', ...timed('2025-03-20', 9) });
    emu.createEvent(OID, 'default', { subject: 'Later', ...timed('2025-03-20', 9) });
    await emu.settled();
    expect(notificationsOf(hook)).toHaveLength(1);
    expect((await graphFailure(graph2.api(`/subscriptions/${String(ok['id'])}`).patch({ expirationDateTime: inMinutes(60) }))).statusCode).toBe(404);
    expect((((await graph2.api('/subscriptions').get()) as Json)['value'] as Json[])).toEqual([]);
  } finally {
    await hook.close();
  }
});

test('lifecycle events: reauthorizationRequired pauses until renewed, missed, subscriptionRemoved removes', async () => {
  const hook = await receiver();
  try {
    const { graph } = await connect();
    const sub = (await graph.api('/subscriptions').post({
      changeType: 'created,updated,deleted',
      notificationUrl: hook.url,
      lifecycleNotificationUrl: `${hook.url}/lifecycle`,
      resource: '/me/events',
      expirationDateTime: inMinutes(600),
      clientState: 'cs',
    })) as Json;
    const id = String(sub['id']);
    await emu.sendLifecycle(id, 'reauthorizationRequired');
    const life = hook.got.filter((g) => g.url === '/hooks/graph/lifecycle');
    expect(life).toHaveLength(1);
    const payload = (JSON.parse(life[0]!.body) as { value: Json[] }).value[0]!;
    const ref = (fixture('microsoft', 'lifecycle-notification.json')['value'] as Json[])[0]!;
    expect(Object.keys(payload).sort()).toEqual(Object.keys(ref).sort());
    expect(payload).toEqual({ subscriptionId: id, subscriptionExpirationDateTime: '2025-03-01T22:00:00.0000000Z', tenantId: TID, clientState: 'cs', lifecycleEvent: 'reauthorizationRequired' });
    // Paused: changes meanwhile are lost; a PATCH reauthorizes.
    emu.createEvent(OID, 'default', { subject: 'Lost', ...timed('2025-03-10', 9) });
    await emu.settled();
    expect(notificationsOf(hook).filter((n) => !('lifecycleEvent' in n))).toHaveLength(0);
    await graph.api(`/subscriptions/${id}`).patch({ expirationDateTime: inMinutes(700) });
    emu.createEvent(OID, 'default', { subject: 'Heard', ...timed('2025-03-10', 11) });
    await emu.settled();
    expect(notificationsOf(hook).filter((n) => !('lifecycleEvent' in n)).map((n) => n['changeType'])).toEqual(['created']);

    await emu.sendLifecycle(id, 'missed');
    await emu.sendLifecycle(id, 'subscriptionRemoved');
    expect(notificationsOf(hook).filter((n) => 'lifecycleEvent' in n).map((n) => n['lifecycleEvent'])).toEqual(['reauthorizationRequired', 'missed', 'subscriptionRemoved']);
    expect(emu.subscriptions()[0]!.removed).toBe(true);
    expect((await graphFailure(graph.api(`/subscriptions/${id}`).get())).statusCode).toBe(404);
    emu.createEvent(OID, 'default', { subject: 'After removal', ...timed('2025-03-12', 11) });
    await emu.settled();
    expect(notificationsOf(hook).filter((n) => !('lifecycleEvent' in n))).toHaveLength(1);
    expect(emu.notifications().map((n) => n.status)).toEqual([202, 202, 202, 202]);
  } finally {
    await hook.close();
  }
});

test('duplicates: each change can be delivered several times', async () => {
  const hook = await receiver();
  await emu.close();
  emu = await startGraph({ oid: OID, tid: TID, upn: UPN }, { clock, duplicates: 3 });
  try {
    const { graph } = await connect();
    await graph.api('/subscriptions').post({ changeType: 'updated', notificationUrl: hook.url, resource: '/me/events', expirationDateTime: inMinutes(60), clientState: 'd' });
    const ev = emu.createEvent(OID, 'default', { subject: 'x', ...timed('2025-03-10', 9) });
    emu.updateEvent(OID, String(ev['id']), { subject: 'y' });
    await emu.settled();
    const notes = notificationsOf(hook);
    expect(notes.map((n) => n['changeType'])).toEqual(['updated', 'updated', 'updated']);
    expect(new Set(notes.map((n) => (n['resourceData'] as Json)['id']))).toEqual(new Set([ev['id']]));
  } finally {
    await hook.close();
  }
});

// ---- faults -------------------------------------------------------------------------------------------------

test('fault: 429 with and without Retry-After (retries off), then the RetryHandler retrying by itself', async () => {
  const { graph, cca, account } = await connect();
  emu.faults.add({ fault: { status: 429, retryAfter: 7 } });
  const a = await graphFailure(graph.api('/me/calendar').get());
  expect(a.statusCode).toBe(429);
  expect(a.headers?.get('retry-after')).toBe('7');
  expect(a.code).toBe('ApplicationThrottled');
  emu.faults.add({ fault: { status: 429 } });
  const b = await graphFailure(graph.api('/me/calendar').get());
  expect(b.statusCode).toBe(429);
  expect(b.headers?.get('retry-after')).toBeNull();
  // The library's RetryHandler (3 retries by default) honours Retry-After: two 429s, then 200 — three requests.
  const retrying = graphClient(emu, async () => (await cca.acquireTokenSilent({ account, scopes: SCOPES })).accessToken, new RetryHandlerOptions(0, 3));
  emu.faults.add({ fault: { status: 429, retryAfter: 0 }, times: 2 });
  const before = emu.requests.length;
  expect(((await retrying.api('/me/calendar').get()) as Json)['name']).toBe('Calendar');
  const calls = emu.requests.slice(before).filter((r) => r.path === '/v1.0/me/calendar');
  expect(calls.map((r) => r.status)).toEqual([429, 429, 200]);
  expect(calls[2]!.headers['retry-attempt']).toBe('2');
  expect(emu.faults.pending()).toBe(0);
});

test('fault: 503 and 504 observed, and retried by the RetryHandler', async () => {
  const { graph, cca, account } = await connect();
  emu.faults.add({ fault: { status: 503 } });
  const a = await graphFailure(graph.api('/me/events').get());
  expect(a.statusCode).toBe(503);
  expect(a.code).toBe('ServiceNotAvailable');
  emu.faults.add({ fault: { status: 504 } });
  expect((await graphFailure(graph.api('/me/events').get())).statusCode).toBe(504);
  const retrying = graphClient(emu, async () => (await cca.acquireTokenSilent({ account, scopes: SCOPES })).accessToken, new RetryHandlerOptions(0, 2));
  emu.faults.add({ match: { path: /\/events$/ }, fault: { status: 503 } });
  const before = emu.requests.length;
  expect(((await retrying.api('/me/events').get()) as Json)['value']).toEqual([]);
  expect(emu.requests.slice(before).map((r) => r.status)).toEqual([503, 200]);
});

test('fault: dropped connection and delay', async () => {
  const { graph } = await connect();
  emu.faults.add({ fault: { drop: true } });
  const d = await rejection<Error>(graph.api('/me/calendar').get());
  expect(d).toBeInstanceOf(Error);
  expect(emu.requests.at(-1)).toMatchObject({ path: '/v1.0/me/calendar', status: 0 });
  emu.faults.add({ match: { path: /calendarView$/ }, fault: { delayMs: 300 } });
  const t0 = Date.now();
  await graph.api('/me/calendarView').query(WINDOW).get();
  expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
});

test('fault: 410 and 401 on Graph; invalid_grant on the token endpoint', async () => {
  const { graph, cca, account } = await connect();
  emu.faults.add({ fault: { status: 410 } });
  const gone = await graphFailure(graph.api(initialDelta()).get());
  expect(gone.statusCode).toBe(410);
  expect(gone.code).toBe('syncStateNotFound');
  emu.faults.add({ fault: { status: 401 } });
  const unauth = await graphFailure(graph.api('/me/calendar').get());
  expect(unauth.statusCode).toBe(401);
  expect(unauth.code).toBe('InvalidAuthenticationToken');
  expect((await graph.api('/me/calendar').get()) as Json).toHaveProperty('id');

  // invalidGrant waits for the token endpoint (Graph requests do not consume it).
  emu.faults.add({ fault: { invalidGrant: true } });
  await graph.api('/me/calendar').get();
  expect(emu.faults.pending()).toBe(1);
  const e = await rejection<AuthError>(cca.acquireTokenSilent({ account, scopes: SCOPES, forceRefresh: true }));
  expect(e.errorCode).toBe('invalid_grant');
  expect(e.errorMessage).toContain('AADSTS70008');
  emu.faults.add({ fault: { invalidGrant: true, aadsts: 700082, suberror: 'bad_token' } });
  const bad = await rejection<AuthError>(cca.acquireTokenSilent({ account, scopes: SCOPES, forceRefresh: true }));
  expect(bad.name).toBe('InteractionRequiredAuthError');
  expect(bad.subError).toBe('bad_token');
  // 5xx faults can target the token endpoint by path.
  emu.faults.add({ match: { path: /oauth2\/v2\.0\/token$/ }, fault: { status: 503 } });
  const unavailable = await rejection<AuthError>(msalApp(emu, TID).acquireTokenByCode({ code: emu.authorize(OID, SCOPES, REDIRECT), scopes: SCOPES, redirectUri: REDIRECT }));
  expect(unavailable.errorCode).toBe('temporarily_unavailable');
  expect((await msalApp(emu, TID).acquireTokenByCode({ code: emu.authorize(OID, SCOPES, REDIRECT), scopes: SCOPES, redirectUri: REDIRECT })).accessToken).toBeTruthy();
  emu.faults.add({ fault: { status: 503 }, times: 3 });
  expect(emu.faults.pending()).toBe(3);
  emu.faults.clear();
  expect(emu.faults.pending()).toBe(0);
});

test('requests are recorded with lower-case headers, sizes and the emulator clock', async () => {
  const { graph } = await connect();
  clock.advance({ minutes: 1 });
  await graph.api('/me/events').post({ subject: 'x', ...timed('2025-03-05', 9) });
  const rec = emu.requests.at(-1)!;
  expect(rec).toMatchObject({ method: 'POST', path: '/v1.0/me/events', status: 201, at: '2025-03-01T12:01:00.000Z' });
  expect(rec.headers['authorization']).toMatch(/^Bearer ey/);
  expect(rec.headers['content-type']).toContain('application/json');
  expect(rec.bodyBytes).toBeGreaterThan(0);
  expect(rec.responseBytes).toBeGreaterThan(0);
  await graph.api(initialDelta()).get();
  expect(emu.requests.at(-1)!.query).toEqual({ startDateTime: WINDOW.startDateTime, endDateTime: WINDOW.endDateTime });
});
