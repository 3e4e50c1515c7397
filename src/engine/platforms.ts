// Builds the connector for a stored connection from the process settings and the store: the engine's
// one place that knows which connector class serves which provider.
import { randomBytes, createHmac, timingSafeEqual } from 'node:crypto';
import { GoogleCalendarConnector } from '../../connectors/google/calendar.js';
import { authorizedClient, type GoogleOAuthConfig } from '../../connectors/google/oauth.js';
import type { CalendarConnector } from '../../connectors/port.js';
import type { INetworkModule } from '@azure/msal-node';
import type { Middleware } from '@microsoft/microsoft-graph-client';
import { tokenProvider, type MicrosoftAuthConfig } from '../../connectors/microsoft/auth.js';
import { GraphCalendarConnector } from '../../connectors/microsoft/calendar.js';
import type { Config, GoogleConfig, MicrosoftConfig } from '../config.js';
import { InvalidInput } from '../errors.js';
import { credentialStoreFor } from '../store/connections.js';
import type { Provider } from '../store/schema.js';
import type { Keyring } from '../secrets.js';
import type { Store } from '../store/store.js';

export interface ConnectorFactory {
  calendarConnector(connection: { id: string; therapist_id: string; provider: Provider }): Promise<CalendarConnector>;
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

export function platformConnectors(config: Config, store: Store, opts: PlatformOptions = {}): ConnectorFactory {
  return {
    async calendarConnector(connection) {
      const ref = { therapistId: connection.therapist_id, connectionId: connection.id };
      const credentials = credentialStoreFor(store.db, store.keyring, ref, () => store.now());
      if (connection.provider === 'google') {
        const google = requireGoogle(config);
        const auth = await authorizedClient(googleOAuth(google), credentials);
        return new GoogleCalendarConnector({
          auth,
          credentials,
          ...(google.apiRootUrl ? { rootUrl: google.apiRootUrl } : {}),
          ...(opts.sleep ? { sleep: opts.sleep } : {}),
          ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
        });
      }
      // Microsoft: the connection's account is MSAL's home account id (oid.tid).
      const account = await store.db.selectFrom('connections').select('account_subject').where('id', '=', connection.id).executeTakeFirstOrThrow();
      return new GraphCalendarConnector({
        getAccessToken: tokenProvider(microsoftAuth(config, opts), credentials, account.account_subject),
        now: opts.microsoft?.now ?? (() => store.now()),
        ...(opts.microsoft?.transport ? { transport: opts.microsoft.transport } : {}),
        ...(opts.microsoft?.maxRetries !== undefined ? { maxRetries: opts.microsoft.maxRetries } : {}),
      });
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
