// The emulators' settings for the product, without the test runner: the tests' helpers, the engine
// worlds and the benchmarks share them.
import type { GoogleEmulator } from '../emulators/google/server.js';

export const REDIRECT = 'http://127.0.0.1:9/oauth/google/callback';
export const MS_REDIRECT = 'http://127.0.0.1:9/oauth/microsoft/callback';
export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

export function googleEnv(emu: GoogleEmulator, extra: Record<string, string> = {}): Record<string, string> {
  return {
    GOOGLE_CLIENT_ID: emu.clientId,
    GOOGLE_CLIENT_SECRET: emu.clientSecret,
    GOOGLE_REDIRECT_URI: REDIRECT,
    GOOGLE_API_ROOT_URL: emu.url,
    GOOGLE_OAUTH_TOKEN_URL: emu.tokenUrl,
    GOOGLE_OAUTH_AUTH_URL: emu.authUrl,
    GOOGLE_OAUTH_REVOKE_URL: emu.revokeUrl,
    ...extra,
  };
}
