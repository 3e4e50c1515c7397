// Shared wiring of the emulator conformance suites (test/emulators/*.conformance.test.ts): each emulator started on a
// ManualClock with its user, and the real clients (MSAL, the Graph client, OAuth2Client, the Google APIs, our connectors) pointed at it.
import fs from 'node:fs';
import path from 'node:path';
import { calendar, type calendar_v3 } from '@googleapis/calendar';
import { gmail, type gmail_v1 } from '@googleapis/gmail';
import { tasks, type tasks_v1 } from '@googleapis/tasks';
import { AuthenticationHandler, Client, GraphError, HTTPMessageHandler, RetryHandler, RetryHandlerOptions, type Middleware } from '@microsoft/microsoft-graph-client';
import { ConfidentialClientApplication, type AccountInfo } from '@azure/msal-node';
import { OAuth2Client } from 'google-auth-library';
import { GoogleCalendarConnector } from '../../connectors/google/calendar.js';
import { MICROSOFT_SCOPES } from '../../connectors/microsoft/auth.js';
import { GraphCalendarConnector } from '../../connectors/microsoft/calendar.js';
import { ManualClock, type Clock } from '../../src/clock.js';
import { startGoogleEmulator, type GoogleEmulator } from './google/server.js';
import { graphRedirect, msalNetworkClient, startGraphEmulator, type GraphEmulator, type GraphEmulatorOptions } from './microsoft/server.js';

type Json = Record<string, unknown>;

/** A reference example kept in test/emulators/<dir>/fixtures (see the README there). */
export function fixture(dir: 'google' | 'microsoft', name: string): Json {
  return JSON.parse(fs.readFileSync(path.join(import.meta.dirname, dir, 'fixtures', name), 'utf8')) as Json;
}

/** The instant every suite's ManualClock starts at. */
export const CLOCK_START = '2025-03-01T12:00:00Z';
/** The redirect URIs the suites consent with. */
export const GOOGLE_REDIRECT = 'http://127.0.0.1:9/oauth/callback';
export const MICROSOFT_REDIRECT = 'https://app.example.com/auth/microsoft/callback';

// ---- Microsoft: the Graph emulator, MSAL, the Graph client --------------------------------------------------------

export interface GraphUser {
  oid: string;
  tid: string;
  upn: string;
  displayName?: string;
  timeZone?: string;
}

/** The Graph emulator on `opts.clock` (a ManualClock at CLOCK_START unless given), with this user added. */
export async function startGraph(user: GraphUser, opts: Partial<GraphEmulatorOptions> = {}): Promise<GraphEmulator> {
  const emu = await startGraphEmulator({ ...opts, clock: opts.clock ?? new ManualClock(CLOCK_START) });
  emu.addUser(user);
  return emu;
}

/** MSAL as the product builds it: the user's tenant as authority, msalNetworkClient as its network client. */
export function msalApp(emu: GraphEmulator, tid: string, clientSecret = emu.clientSecret): ConfidentialClientApplication {
  return new ConfidentialClientApplication({
    auth: { clientId: emu.clientId, authority: `${emu.authorityHost}/${tid}`, clientSecret },
    system: { networkClient: msalNetworkClient(emu) },
  });
}

export interface GraphToken {
  cca: ConfidentialClientApplication;
  account: AccountInfo;
  /** The access token of the code exchange. */
  accessToken: string;
  /** A fresh access token from MSAL's cache (acquireTokenSilent), as the product's token provider. */
  getAccessToken: () => Promise<string>;
}

/** The user consents to these scopes; MSAL exchanges the code. */
export async function graphToken(emu: GraphEmulator, user: Pick<GraphUser, 'oid' | 'tid'>, scopes: readonly string[], redirectUri = MICROSOFT_REDIRECT): Promise<GraphToken> {
  const cca = msalApp(emu, user.tid);
  const result = await cca.acquireTokenByCode({ code: emu.authorize(user.oid, [...scopes], redirectUri), scopes: [...scopes], redirectUri });
  const account = result.account!;
  return { cca, account, accessToken: result.accessToken, getAccessToken: async () => (await cca.acquireTokenSilent({ account, scopes: [...scopes] })).accessToken };
}

/** The real Graph client: AuthenticationHandler → RetryHandler → graphRedirect → HTTPMessageHandler; retries off unless asked for. */
export function graphClient(emu: GraphEmulator, getAccessToken: () => Promise<string>, retry: RetryHandlerOptions = new RetryHandlerOptions(0, 0)): Client {
  const chain: Middleware[] = [new AuthenticationHandler({ getAccessToken }), new RetryHandler(retry), graphRedirect(emu), new HTTPMessageHandler()];
  return Client.initWithMiddleware({ middleware: chain });
}

/** graphToken, then a graphClient on its silent token. */
export async function graphConnect(
  emu: GraphEmulator,
  user: Pick<GraphUser, 'oid' | 'tid'>,
  scopes: readonly string[],
  opts: { retry?: RetryHandlerOptions; redirectUri?: string } = {},
): Promise<GraphToken & { graph: Client }> {
  const token = await graphToken(emu, user, scopes, opts.redirectUri);
  return { ...token, graph: graphClient(emu, token.getAccessToken, opts.retry) };
}

/** The product's Graph connector with the product's permissions (unless told), its clock at CLOCK_START; by default graphRedirect as transport and no retries, so each answer is seen. */
export async function graphConnector(
  emu: GraphEmulator,
  user: Pick<GraphUser, 'oid' | 'tid'>,
  opts: { scopes?: readonly string[]; transport?: Middleware; maxRetries?: number } = {},
): Promise<GraphCalendarConnector> {
  const { getAccessToken } = await graphToken(emu, user, opts.scopes ?? MICROSOFT_SCOPES);
  return new GraphCalendarConnector({ getAccessToken, transport: opts.transport ?? graphRedirect(emu), maxRetries: opts.maxRetries ?? 0, now: () => new Date(CLOCK_START) });
}

/** The GraphError a Graph call rejects with (anything else is thrown again). */
export async function graphFailure(p: Promise<unknown>): Promise<GraphError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GraphError) return e;
    throw e;
  }
  throw new Error('expected the Graph call to fail');
}

/** Whatever the promise rejects with. */
export async function rejection<T extends Error = Error>(p: Promise<unknown>): Promise<T> {
  try {
    await p;
  } catch (e) {
    return e as T;
  }
  throw new Error('expected a rejection');
}

/** Follows @odata.nextLink to the @odata.deltaLink: every item of the round, and the link of the next one. */
export async function deltaItems(graph: Client, link: string): Promise<{ items: Json[]; deltaLink: string }> {
  const items: Json[] = [];
  let url = link;
  for (;;) {
    const page = (await graph.api(url).get()) as Json;
    items.push(...(page['value'] as Json[]));
    if (typeof page['@odata.nextLink'] === 'string') url = page['@odata.nextLink'];
    else return { items, deltaLink: page['@odata.deltaLink'] as string };
  }
}

// ---- Google: the Google emulator, OAuth2Client, @googleapis/* ------------------------------------------------------

export interface GoogleUser {
  sub: string;
  email: string;
  /** The time zone of the user's primary calendar (whose id is the email). */
  timeZone: string;
}

/** The Google emulator on `opts.clock` (a ManualClock at CLOCK_START unless given), with the user's account and primary calendar. */
export async function startGoogle(user: GoogleUser, opts: { clock?: Clock } = {}): Promise<GoogleEmulator> {
  const emu = await startGoogleEmulator({ clock: opts.clock ?? new ManualClock(CLOCK_START) });
  emu.addAccount({ sub: user.sub, email: user.email });
  emu.addCalendar(user.sub, { id: user.email, summary: user.email, timeZone: user.timeZone, primary: true });
  return emu;
}

export interface GoogleAuthOptions {
  clientSecret?: string;
  forceRefreshOnFailure?: boolean;
  redirectUri?: string;
}

/** An OAuth2Client for the emulator's OAuth client and endpoints, with no credentials yet. */
export function googleOAuth(emu: GoogleEmulator, opts: GoogleAuthOptions = {}): OAuth2Client {
  return new OAuth2Client({
    clientId: emu.clientId,
    clientSecret: opts.clientSecret ?? emu.clientSecret,
    redirectUri: opts.redirectUri ?? GOOGLE_REDIRECT,
    forceRefreshOnFailure: opts.forceRefreshOnFailure ?? false,
    endpoints: { oauth2TokenUrl: emu.tokenUrl, oauth2RevokeUrl: emu.revokeUrl, oauth2AuthBaseUrl: emu.authUrl },
  });
}

/** The account consents to these scopes; the code is exchanged and the tokens set on the client. */
export async function googleGrant(emu: GoogleEmulator, sub: string, scopes: readonly string[], opts: GoogleAuthOptions = {}): Promise<OAuth2Client> {
  const auth = googleOAuth(emu, opts);
  const { tokens } = await auth.getToken(emu.authorize(sub, [...scopes], opts.redirectUri ?? GOOGLE_REDIRECT));
  auth.setCredentials(tokens);
  return auth;
}

export interface GoogleClients {
  auth: OAuth2Client;
  cal: calendar_v3.Calendar;
  tk: tasks_v1.Tasks;
  gm: gmail_v1.Gmail;
}

/** googleGrant, then the real Calendar, Tasks and Gmail clients with the emulator as rootUrl. */
export async function googleClients(emu: GoogleEmulator, sub: string, scopes: readonly string[], opts: GoogleAuthOptions = {}): Promise<GoogleClients> {
  const auth = await googleGrant(emu, sub, scopes, opts);
  return {
    auth,
    cal: calendar({ version: 'v3', auth, rootUrl: emu.url }),
    tk: tasks({ version: 'v1', auth, rootUrl: emu.url }),
    gm: gmail({ version: 'v1', auth, rootUrl: emu.url }),
  };
}

/** The product's Google connector on a fresh grant: credentials kept in memory, retries inside a call do not wait. */
export async function googleConnector(
  emu: GoogleEmulator,
  sub: string,
  scopes: readonly string[],
  opts: { retries?: number; markNeedsReauth?: (reason: string) => Promise<void> } = {},
): Promise<GoogleCalendarConnector> {
  const auth = await googleGrant(emu, sub, scopes);
  return new GoogleCalendarConnector({
    auth,
    credentials: { load: async () => JSON.stringify(auth.credentials), save: async () => undefined, markNeedsReauth: opts.markNeedsReauth ?? (async () => undefined) },
    rootUrl: emu.url,
    sleep: async () => undefined,
    retries: opts.retries ?? 0,
  });
}
