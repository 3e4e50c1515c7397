// Builds the connector for a stored connection from the process settings and the store: the engine's
// one place that knows which connector class serves which provider.
import { randomBytes, createHmac, timingSafeEqual } from 'node:crypto';
import { GoogleCalendarConnector } from '../../connectors/google/calendar.js';
import { GmailConnector } from '../../connectors/google/gmail.js';
import { authorizedClient, type GoogleOAuthConfig } from '../../connectors/google/oauth.js';
import { GoogleTaskConnector } from '../../connectors/google/tasks.js';
import { MissingScope } from '../../connectors/errors.js';
import type { CalendarConnector, MailConnector, TaskConnector } from '../../connectors/port.js';
import type { INetworkModule } from '@azure/msal-node';
import type { Middleware } from '@microsoft/microsoft-graph-client';
import { tokenProvider, type MicrosoftAuthConfig } from '../../connectors/microsoft/auth.js';
import { GraphCalendarConnector } from '../../connectors/microsoft/calendar.js';
import { GraphMailConnector } from '../../connectors/microsoft/mail.js';
import { GraphTaskConnector } from '../../connectors/microsoft/tasks.js';
import type { Config, GoogleConfig, MicrosoftConfig } from '../config.js';
import { InvalidInput } from '../errors.js';
import { credentialStoreFor } from '../store/connections.js';
import type { Provider } from '../store/schema.js';
import type { Keyring } from '../secrets.js';
import type { Store } from '../store/store.js';

/** A stored connection, as the factory needs it. */
export interface ConnectionRow {
  id: string;
  therapist_id: string;
  provider: Provider;
}

export interface ConnectorFactory {
  calendarConnector(connection: ConnectionRow): Promise<CalendarConnector>;
  /** The connection's task list platform (Google Tasks, Microsoft To Do). */
  taskConnector(connection: ConnectionRow): Promise<TaskConnector>;
  /** Mail from the connection's own mailbox (Gmail, Outlook). */
  mailConnector(connection: ConnectionRow): Promise<MailConnector>;
}

export function googleOAuth(google: GoogleConfig): GoogleOAuthConfig {
  return { clientId: google.clientId, clientSecret: google.clientSecret, redirectUri: google.redirectUri, endpoints: google.endpoints };
}

export function requireGoogle(config: Config): GoogleConfig {
  if (!config.google) {
    throw new InvalidInput('Google is not configured', [
      { path: 'GOOGLE_CLIENT_ID', message: 'must be set (an OAuth client of type "Web application" in Google Cloud)' },
      { path: 'GOOGLE_CLIENT_SECRET', message: 'must be set with it' },
    ]);
  }
  return config.google;
}

export interface PlatformOptions {
  sleep?: (ms: number) => Promise<void>;
  timeoutMs?: number;
  /** Where Microsoft's requests go instead of the internet (the emulator in tests). */
  microsoft?: { networkClient?: INetworkModule; transport?: Middleware; maxRetries?: number; now?: () => Date };
}

export function microsoftAuth(config: Config, opts: PlatformOptions = {}): MicrosoftAuthConfig {
  const ms = requireMicrosoft(config);
  return { clientId: ms.clientId, clientSecret: ms.clientSecret, redirectUri: ms.redirectUri, tenant: ms.tenant, ...(opts.microsoft?.networkClient ? { networkClient: opts.microsoft.networkClient } : {}) };
}

export function requireMicrosoft(config: Config): MicrosoftConfig {
  if (!config.microsoft) {
    throw new InvalidInput('Microsoft is not configured', [
      { path: 'MICROSOFT_CLIENT_ID', message: 'must be set (an app registration in Microsoft Entra ID)' },
      { path: 'MICROSOFT_CLIENT_SECRET', message: 'must be set with it' },
    ]);
  }
  return config.microsoft;
}

/** The permission each capability needs, as the platforms name it in a grant (connectors' *_SCOPES). */
const NEEDED_SCOPES: Record<Provider, Record<'tasks' | 'mail', string>> = {
  google: { tasks: 'https://www.googleapis.com/auth/tasks', mail: 'https://www.googleapis.com/auth/gmail.send' },
  microsoft: { tasks: 'Tasks.ReadWrite', mail: 'Mail.Send' },
};

/**
 * Refuses before any call when the connection's grant lacks what the capability needs (Google's
 * consent screen lets a user untick scopes): a clear reason instead of a platform's 403, and the
 * outbox parks that connection's actions until the therapist connects again.
 */
async function requireScope(store: Store, connection: ConnectionRow, capability: 'tasks' | 'mail'): Promise<void> {
  const row = await store.db.selectFrom('connections').select('scopes').where('id', '=', connection.id).where('therapist_id', '=', connection.therapist_id).executeTakeFirst();
  const granted = (row?.scopes ?? []).map((s) => s.toLowerCase());
  // An empty list: the platform did not say what it granted; the call itself will tell.
  if (granted.length === 0) return;
  const needed = NEEDED_SCOPES[connection.provider][capability];
  const n = needed.toLowerCase();
  if (granted.some((g) => g === n || g.endsWith(`/${n}`))) return;
  const what = capability === 'tasks' ? (connection.provider === 'google' ? 'Google Tasks' : 'Microsoft To Do') : connection.provider === 'google' ? 'sending email through Gmail' : 'sending mail through Outlook';
  throw new MissingScope(`the account was connected without permission for ${what} (${needed}): connect it again and allow it`);
}

export function platformConnectors(config: Config, store: Store, opts: PlatformOptions = {}): ConnectorFactory {
  const credentialsOf = (connection: ConnectionRow) =>
    credentialStoreFor(store.db, store.keyring, { therapistId: connection.therapist_id, connectionId: connection.id }, () => store.now());
  /** What every Google connector of a connection is built from. */
  const google = async (connection: ConnectionRow) => {
    const cfg = requireGoogle(config);
    const credentials = credentialsOf(connection);
    const auth = await authorizedClient(googleOAuth(cfg), credentials);
    return {
      auth,
      credentials,
      ...(cfg.apiRootUrl ? { rootUrl: cfg.apiRootUrl } : {}),
      ...(opts.sleep ? { sleep: opts.sleep } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    };
  };
  /** What every Graph connector of a connection is built from: the connection's account is MSAL's home account id (oid.tid). */
  const graph = async (connection: ConnectionRow) => {
    const account = await store.db.selectFrom('connections').select('account_subject').where('id', '=', connection.id).executeTakeFirstOrThrow();
    return {
      getAccessToken: tokenProvider(microsoftAuth(config, opts), credentialsOf(connection), account.account_subject),
      ...(opts.microsoft?.transport ? { transport: opts.microsoft.transport } : {}),
      ...(opts.microsoft?.maxRetries !== undefined ? { maxRetries: opts.microsoft.maxRetries } : {}),
    };
  };
  return {
    async calendarConnector(connection) {
      if (connection.provider === 'google') return new GoogleCalendarConnector(await google(connection));
      return new GraphCalendarConnector({ ...(await graph(connection)), now: opts.microsoft?.now ?? (() => store.now()) });
    },
    async taskConnector(connection) {
      await requireScope(store, connection, 'tasks');
      if (connection.provider === 'google') return new GoogleTaskConnector(await google(connection));
      return new GraphTaskConnector(await graph(connection));
    },
    async mailConnector(connection) {
      await requireScope(store, connection, 'mail');
      if (connection.provider === 'google') return new GmailConnector(await google(connection));
      return new GraphMailConnector(await graph(connection));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Signed, expiring tokens: the OAuth state (a callback can only finish a consent we started) and
// invitations (only invited people become therapists of the practice).

const STATE_TTL_MS = 15 * 60_000;

function mac(keyring: Keyring, purpose: string, body: string): string {
  return createHmac('sha256', keyring.current.indexKey).update(`${purpose}:${body}`).digest('base64url');
}

function signed(keyring: Keyring, purpose: string, expiresMs: number, flags: string): string {
  const body = `${expiresMs}.${randomBytes(12).toString('base64url')}.${flags}`;
  return `${body}.${mac(keyring, purpose, body)}`;
}

/** The flags of a valid token, or undefined for a forged, altered or expired one. */
function opened(keyring: Keyring, purpose: string, token: string, now: Date): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 4) return undefined;
  const body = parts.slice(0, 3).join('.');
  const expected = Buffer.from(mac(keyring, purpose, body), 'base64url');
  const given = Buffer.from(parts[3]!, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected) || !(Number(parts[0]) > now.getTime())) return undefined;
  return parts[2];
}

/** The OAuth state of a consent we start; `invited` lets a new therapist in. */
export function signState(keyring: Keyring, now: Date, opts: { invited?: boolean } = {}): string {
  return signed(keyring, 'oauth-state', now.getTime() + STATE_TTL_MS, opts.invited ? 'i' : '-');
}

export function checkState(keyring: Keyring, state: string, now: Date): { invited: boolean } | undefined {
  const flags = opened(keyring, 'oauth-state', state, now);
  return flags === undefined ? undefined : { invited: flags === 'i' };
}

export function signInvite(keyring: Keyring, now: Date, days: number): string {
  return signed(keyring, 'invite', now.getTime() + days * 86_400_000, '-');
}

export function checkInvite(keyring: Keyring, invite: string, now: Date): boolean {
  return opened(keyring, 'invite', invite, now) !== undefined;
}
