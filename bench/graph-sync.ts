// Microsoft 365 sync against the Graph emulator, through real MSAL, the real Graph client and the
// store (PGlite in memory): the same figures as google-sync, under the same names.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { http as registerFunction } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { DateTime } from 'luxon';
import { MICROSOFT_SCOPES } from '../connectors/microsoft/auth.js';
import type { App } from '../src/app.js';
import { ManualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { ensureChannel } from '../src/engine/channels.js';
import { completeMicrosoftConnect } from '../src/engine/connect.js';
import { platformConnectors, type PlatformOptions } from '../src/engine/platforms.js';
import { syncCalendar } from '../src/engine/sync.js';
import { runQueuedSyncs, SyncWorker } from '../src/engine/worker.js';
import { createHandler } from '../src/http.js';
import { silentLogger } from '../src/log.js';
import { generateKey, Keyring } from '../src/secrets.js';
import { makePGliteTemplate, pgliteStoreFromTemplate } from '../src/store/provision.js';
import { graphRedirect, msalNetworkClient, startGraphEmulator } from '../test/emulators/microsoft/server.js';
import { median, report } from './report.js';

const BENCH = 'graph-sync';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const REDIRECT = 'http://127.0.0.1:9/oauth/microsoft/callback';

function slot(i: number) {
  const start = DateTime.utc().startOf('day').plus({ days: 1 + Math.floor(i / 60), minutes: (i % 60) * 15 });
  return { start: { dateTime: start.toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: 'UTC' }, end: { dateTime: start.plus({ minutes: 10 }).toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: 'UTC' } };
}

export async function run(): Promise<void> {
  const clock = new ManualClock(DateTime.utc().startOf('second'));
  const emu = await startGraphEmulator({ clock });
  const store = await pgliteStoreFromTemplate(await makePGliteTemplate(), new Keyring(generateKey()), clock);
  const config = loadConfig({ MICROSOFT_CLIENT_ID: emu.clientId, MICROSOFT_CLIENT_SECRET: emu.clientSecret, MICROSOFT_TENANT: TENANT, MICROSOFT_REDIRECT_URI: REDIRECT });
  const platform: PlatformOptions = { microsoft: { networkClient: msalNetworkClient(emu) as never, transport: graphRedirect(emu), maxRetries: 0 } };
  const connectors = platformConnectors(config, store, platform);
  try {
    emu.addUser({ oid: 'bench', tid: TENANT, upn: 'bench@contoso.example', timeZone: 'UTC' });
    const connected = await completeMicrosoftConnect(store, config, connectors, emu.authorize('bench', [...MICROSOFT_SCOPES], REDIRECT), { allowNewTherapist: true, platform });
    const cal = connected.calendars.find((c) => c.role !== 'ignored')!.id;
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) ids.push(emu.createEvent('bench', 'default', { subject: i % 3 ? 'Session' : 'Intake', ...slot(i), attendees: [{ type: 'required', emailAddress: { address: `client${i % 200}@example.com` } }] })['id'] as string);
    const connector = await connectors.calendarConnector({ id: connected.connectionId, therapist_id: connected.therapistId, provider: 'microsoft' });

    const started = performance.now();
    const full = await syncCalendar(store, connector, cal, { log: silentLogger });
    report(BENCH, 'full_sync_events_per_s', full.items.length / ((performance.now() - started) / 1000), 'events/s', { events: full.items.length, pages: full.pages });

    for (let i = 0; i < 100; i++) {
      if (i % 10 === 0) emu.deleteEvent('bench', ids[i * 7]!);
      else emu.updateEvent('bench', ids[i * 7]!, { subject: `Session moved ${i}` });
    }
    const before = emu.requests.length;
    const inc = await syncCalendar(store, connector, cal, { log: silentLogger });
    const calls = emu.requests.slice(before);
    report(BENCH, 'incremental_requests', calls.length, 'requests', { changes: inc.items.length });
    report(BENCH, 'incremental_bytes', calls.reduce((n, r) => n + r.bodyBytes + r.responseBytes, 0), 'bytes', { changes: inc.items.length });

    const app: App = { config, clock, log: silentLogger, store, opened: undefined as never, close: async () => undefined };
    const worker = new SyncWorker({ store, connectors, log: silentLogger, clock, publicUrl: undefined }, 3_600_000);
    app.kick = () => worker.kick();
    registerFunction('sessionkeeper-graph-bench', createHandler(app));
    const server: http.Server = getTestServer('sessionkeeper-graph-bench');
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/microsoft`;
    const providerId = (await store.db.selectFrom('calendars').select('provider_calendar_id').where('id', '=', cal).executeTakeFirstOrThrow()).provider_calendar_id;
    await ensureChannel(store, connector, { id: cal, provider_calendar_id: providerId }, { address, log: silentLogger });
    await runQueuedSyncs({ store, connectors, log: silentLogger, clock }, 'settle');

    const idleFrom = emu.requests.length;
    for (let s = 0; s < 3600; s += 5) {
      clock.advance({ seconds: 5 });
      await runQueuedSyncs({ store, connectors, log: silentLogger, clock }, 'idle');
      await ensureChannel(store, connector, { id: cal, provider_calendar_id: providerId }, { address, log: silentLogger });
    }
    report(BENCH, 'idle_requests_per_hour', emu.requests.length - idleFrom, 'requests', { simulatedSeconds: 3600 });

    worker.start();
    const latencies: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      const ev = emu.createEvent('bench', 'default', { subject: 'Session', ...slot(10_000 + i) });
      // Inside the synced window (180 days ahead): the delta covers it.
      for (let waited = 0; ; waited++) {
        if (waited > 20_000) throw new Error('a change never reached the store under push');
        const row = await store.db.selectFrom('event_snapshots').select('event_id').where('calendar_id', '=', cal).where('event_id', '=', ev['id'] as string).executeTakeFirst();
        if (row) break;
        await new Promise((r) => setTimeout(r, 1));
      }
      latencies.push(performance.now() - t0);
    }
    report(BENCH, 'push_to_synced_ms', median(latencies), 'ms', { samples: latencies.length, max: Math.round(Math.max(...latencies)) });
    await worker.stop();
    await new Promise<void>((r) => server.close(() => r()));
  } finally {
    await store.close();
    await emu.close();
  }
}
