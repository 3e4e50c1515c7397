// Builds the connector for a stored connection from the process settings and the store: the engine's
// one place that knows which connector class serves which provider.
import { randomBytes, createHmac, timingSafeEqual } from 'node:crypto';
import { GoogleCalendarConnector } from '../../connectors/google/calendar.js';
import { authorizedClient, type GoogleOAuthConfig } from '../../connectors/google/oauth.js';
import type { CalendarConnector } from '../../connectors/port.js';
import type { Config, GoogleConfig } from '../config.js';
import { InvalidInput } from '../errors.js';
import { credentialStoreFor } from '../store/connections.js';
import type { Provider } from '../store/schema.js';
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

export function platformConnectors(config: Config, store: Store, opts: { sleep?: (ms: number) => Promise<void>; timeoutMs?: number } = {}): ConnectorFactory {
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
      throw new InvalidInput(`no connector for ${connection.provider} yet`);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// OAuth state: signed and short-lived, so a callback can only finish a consent we started.

const STATE_TTL_MS = 15 * 60_000;

export function signState(store: Store, now: Date): string {
  const body = `${now.getTime() + STATE_TTL_MS}.${randomBytes(12).toString('base64url')}`;
  const mac = createHmac('sha256', store.keyring.current.indexKey).update(`oauth-state:${body}`).digest('base64url');
  return `${body}.${mac}`;
}

export function checkState(store: Store, state: string, now: Date): boolean {
  const parts = state.split('.');
  if (parts.length !== 3) return false;
  const body = `${parts[0]}.${parts[1]}`;
  const expected = createHmac('sha256', store.keyring.current.indexKey).update(`oauth-state:${body}`).digest();
  const given = Buffer.from(parts[2]!, 'base64url');
  return given.length === expected.length && timingSafeEqual(given, expected) && Number(parts[0]) > now.getTime();
}
