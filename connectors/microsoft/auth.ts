// Microsoft sign-in for background work with @azure/msal-node: the authorization-code flow with
// offline access and the product's narrowest scopes; MSAL's token cache kept per connection through
// an ICachePlugin over the CredentialStore (sealed by the store); silent acquisition, and interaction
// required or invalid_grant turned into NeedsReauth.
import {
  ConfidentialClientApplication,
  InteractionRequiredAuthError,
  type AccountInfo,
  type ICachePlugin,
  type INetworkModule,
  type TokenCacheContext,
} from '@azure/msal-node';
import { NeedsReauth } from '../errors.js';
import type { CredentialStore } from '../port.js';

/**
 * The scopes of the whole product (API-NOTES): calendars, To Do tasks, sending mail, and the user's
 * own profile. MSAL adds openid, profile and offline_access by itself.
 */
// MailboxSettings.Read: the mailbox's time zone, the therapist's own (their hours and slots are in it).
export const MICROSOFT_SCOPES = ['Calendars.ReadWrite', 'Tasks.ReadWrite', 'Mail.Send', 'MailboxSettings.Read', 'User.Read'] as const;

export interface MicrosoftAuthConfig {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** "organizations" for work accounts (the default), "common", or one tenant's id. */
  tenant: string;
  /** Another network than the internet's (the emulator in tests); MSAL refuses http authorities. */
  networkClient?: INetworkModule;
}

/** MSAL's cache for one connection, read from and written to the CredentialStore around each use. */
export function cachePlugin(store: CredentialStore): ICachePlugin {
  return {
    async beforeCacheAccess(ctx: TokenCacheContext): Promise<void> {
      const saved = await store.load();
      if (saved) ctx.tokenCache.deserialize(saved);
    },
    async afterCacheAccess(ctx: TokenCacheContext): Promise<void> {
      if (ctx.cacheHasChanged) await store.save(ctx.tokenCache.serialize());
    },
  };
}

export function msalApp(cfg: MicrosoftAuthConfig, store?: CredentialStore): ConfidentialClientApplication {
  return new ConfidentialClientApplication({
    auth: { clientId: cfg.clientId, clientSecret: cfg.clientSecret, authority: `https://login.microsoftonline.com/${cfg.tenant}` },
    ...(store ? { cache: { cachePlugin: cachePlugin(store) } } : {}),
    system: { ...(cfg.networkClient ? { networkClient: cfg.networkClient } : {}), loggerOptions: { piiLoggingEnabled: false } },
  });
}

export async function microsoftConsentUrl(cfg: MicrosoftAuthConfig, state: string): Promise<string> {
  return msalApp(cfg).getAuthCodeUrl({ scopes: [...MICROSOFT_SCOPES], redirectUri: cfg.redirectUri, state, prompt: 'select_account' });
}

export interface MicrosoftAccount {
  /** The token's oid: the user's stable id within their tenant. */
  oid: string;
  tid: string;
  username: string | null;
  /** MSAL's home account id, to find the account in the cache again. */
  homeAccountId: string;
  scopes: string[];
}

/**
 * Exchanges the callback's code. MSAL writes the tokens into the connection's cache, which the
 * caller persists through `store` (the connection exists by then, or a pending holder does).
 */
export async function exchangeMicrosoftCode(cfg: MicrosoftAuthConfig, code: string, store: CredentialStore): Promise<MicrosoftAccount> {
  const result = await msalApp(cfg, store).acquireTokenByCode({ code, scopes: [...MICROSOFT_SCOPES], redirectUri: cfg.redirectUri });
  const account = result.account;
  const claims = (result.idTokenClaims ?? {}) as { oid?: string; tid?: string };
  const oid = claims.oid ?? account?.localAccountId;
  const tid = claims.tid ?? account?.tenantId;
  if (!account || !oid || !tid) throw new Error('Microsoft gave no account (oid and tid) for this sign-in');
  return { oid, tid, username: account.username || null, homeAccountId: account.homeAccountId, scopes: result.scopes };
}

function needsReauth(err: unknown): boolean {
  if (err instanceof InteractionRequiredAuthError) return true;
  const e = err as { errorCode?: string; message?: string };
  return e?.errorCode === 'invalid_grant' || /invalid_grant|AADSTS(50173|70008|700082|50078|50076|65001)/.test(String(e?.message ?? ''));
}

/**
 * An access token for the connection's account, refreshed silently from the cache. When Microsoft
 * wants the user back (revoked, expired, consent withdrawn), the connection is marked and
 * NeedsReauth thrown.
 */
export function tokenProvider(cfg: MicrosoftAuthConfig, store: CredentialStore, homeAccountId: string): (opts?: { forceRefresh?: boolean }) => Promise<string> {
  const app = msalApp(cfg, store);
  return async (opts = {}) => {
    // A failure to read the cache (the database) is not a lost grant: it surfaces as it is.
    const account: AccountInfo | null = await app.getTokenCache().getAccountByHomeId(homeAccountId);
    if (!account) {
      await store.markNeedsReauth('no Microsoft account in the stored token cache');
      throw new NeedsReauth('no Microsoft account in the stored token cache');
    }
    try {
      // forceRefresh: Graph refused a token MSAL still thought good (revoked sessions).
      const result = await app.acquireTokenSilent({ account, scopes: [...MICROSOFT_SCOPES], forceRefresh: opts.forceRefresh === true });
      return result.accessToken;
    } catch (err) {
      if (needsReauth(err)) {
        await store.markNeedsReauth('Microsoft wants the user to sign in again (interaction required or invalid_grant)');
        throw new NeedsReauth('Microsoft refused the refresh token: the therapist must connect again');
      }
      throw err;
    }
  };
}
