// A Google world for tests: the emulator on the test's clock, the product's settings pointing at it,
// and a therapist connected through the real consent flow (authorize → code → completeGoogleConnect).
import { afterAll, beforeAll } from 'vitest';
import { GOOGLE_SCOPES } from '../../connectors/google/oauth.js';
import { loadConfig, type Config } from '../../src/config.js';
import { completeGoogleConnect } from '../../src/engine/connect.js';
import { platformConnectors, type ConnectorFactory } from '../../src/engine/platforms.js';
import type { CalendarRole } from '../../src/store/schema.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/server.js';
import type { TestDb } from './db.js';

export { googleEnv, REDIRECT } from './platform-env.js';
import { googleEnv, REDIRECT } from './platform-env.js';

export interface GoogleWorld {
  emu: GoogleEmulator;
  config: Config;
  connectors: ConnectorFactory;
  /** Adds an account with its calendars at the emulator and connects it; returns our ids. */
  connect(account: { sub: string; email: string; calendars: { id: string; summary?: string; role?: CalendarRole; primary?: boolean }[] }): Promise<{
    therapistId: string;
    connectionId: string;
    calendars: Record<string, string>;
  }>;
}


export function withGoogle(t: TestDb, opts: { timeoutMs?: number } = {}): GoogleWorld {
  let emu: GoogleEmulator | undefined;
  let config: Config | undefined;
  let connectors: ConnectorFactory | undefined;
  beforeAll(async () => {
    emu = await startGoogleEmulator({ clock: t.clock });
    config = loadConfig(googleEnv(emu));
    // Retries inside a call do not wait in tests: the clock is the test's.
    connectors = platformConnectors(config, t.store, { sleep: async () => undefined, timeoutMs: opts.timeoutMs ?? 3000 });
  });
  afterAll(async () => {
    await emu?.close();
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the Google world is made in beforeAll');
    return v;
  };
  return {
    get emu() {
      return need(emu);
    },
    get config() {
      return need(config);
    },
    get connectors() {
      return need(connectors);
    },
    async connect(account) {
      const e = need(emu);
      e.addAccount({ sub: account.sub, email: account.email });
      account.calendars.forEach((c, i) => e.addCalendar(account.sub, { id: c.id, summary: c.summary ?? c.id, timeZone: 'America/New_York', primary: c.primary ?? i === 0 }));
      const code = e.authorize(account.sub, [...GOOGLE_SCOPES], REDIRECT);
      const connected = await completeGoogleConnect(t.store, need(config), need(connectors), code);
      const calendars: Record<string, string> = {};
      for (const c of account.calendars) {
        const row = await t.store.db.selectFrom('calendars').select('id').where('connection_id', '=', connected.connectionId).where('provider_calendar_id', '=', c.id).executeTakeFirstOrThrow();
        calendars[c.id] = row.id;
        await t.store.db.updateTable('calendars').set({ role: c.role ?? 'mixed' }).where('id', '=', row.id).execute();
      }
      return { therapistId: connected.therapistId, connectionId: connected.connectionId, calendars };
    },
  };
}
