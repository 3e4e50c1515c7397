// A Microsoft world for tests: the Graph emulator on the test's clock, the product's settings and
// connectors pointing at it (MSAL's network client, a redirect middleware for the Graph client), and
// a therapist connected through the real code flow.
import { afterAll, beforeAll } from 'vitest';
import { MICROSOFT_SCOPES } from '../../connectors/microsoft/auth.js';
import { loadConfig, type Config } from '../../src/config.js';
import { completeMicrosoftConnect } from '../../src/engine/connect.js';
import { platformConnectors, type ConnectorFactory, type PlatformOptions } from '../../src/engine/platforms.js';
import { graphRedirect, msalNetworkClient, startGraphEmulator, type GraphEmulator } from '../emulators/microsoft/server.js';
import type { TestDb } from './db.js';

export { MS_REDIRECT, TENANT } from './platform-env.js';
import { MS_REDIRECT, TENANT } from './platform-env.js';

export interface MicrosoftWorld {
  emu: GraphEmulator;
  config: Config;
  platform: PlatformOptions;
  connectors: ConnectorFactory;
  connect(user: { oid: string; upn: string }): Promise<{ therapistId: string; connectionId: string; calendars: Record<string, string> }>;
}

export function withMicrosoft(t: TestDb): MicrosoftWorld {
  let emu: GraphEmulator | undefined;
  let config: Config | undefined;
  let platform: PlatformOptions | undefined;
  let connectors: ConnectorFactory | undefined;
  beforeAll(async () => {
    emu = await startGraphEmulator({ clock: t.clock });
    config = loadConfig({ MICROSOFT_CLIENT_ID: emu.clientId, MICROSOFT_CLIENT_SECRET: emu.clientSecret, MICROSOFT_TENANT: TENANT, MICROSOFT_REDIRECT_URI: MS_REDIRECT });
    platform = { microsoft: { networkClient: msalNetworkClient(emu) as never, transport: graphRedirect(emu), maxRetries: 0 } };
    connectors = platformConnectors(config, t.store, platform);
  });
  afterAll(async () => {
    await emu?.close();
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the Microsoft world is made in beforeAll');
    return v;
  };
  return {
    get emu() {
      return need(emu);
    },
    get config() {
      return need(config);
    },
    get platform() {
      return need(platform);
    },
    get connectors() {
      return need(connectors);
    },
    async connect(user) {
      const e = need(emu);
      e.addUser({ oid: user.oid, tid: TENANT, upn: user.upn, displayName: user.upn, timeZone: 'Eastern Standard Time' });
      const code = e.authorize(user.oid, [...MICROSOFT_SCOPES], MS_REDIRECT);
      const connected = await completeMicrosoftConnect(t.store, need(config), need(connectors), code, { allowNewTherapist: true, platform: need(platform) });
      const calendars: Record<string, string> = {};
      for (const c of connected.calendars) calendars[c.name] = c.id;
      return { therapistId: connected.therapistId, connectionId: connected.connectionId, calendars };
    },
  };
}
