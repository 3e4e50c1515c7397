// Google sync against the emulator, through the real client libraries and store (PGlite in memory):
// full sync speed, what an incremental sync costs, requests while idle with push on, and how long a
// change takes from Google to our store under push.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { http as registerFunction } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { DateTime } from 'luxon';
import { GOOGLE_SCOPES } from '../connectors/google/oauth.js';
import type { App } from '../src/app.js';
import { ManualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { ensureChannel } from '../src/engine/channels.js';
import { completeGoogleConnect } from '../src/engine/connect.js';
import { platformConnectors } from '../src/engine/platforms.js';
import { syncCalendar } from '../src/engine/sync.js';
import { runQueuedSyncs, SyncWorker } from '../src/engine/worker.js';
import { createHandler } from '../src/http.js';
import { silentLogger } from '../src/log.js';
import { generateKey, Keyring } from '../src/secrets.js';
import { makePGliteTemplate, pgliteStoreFromTemplate } from '../src/store/provision.js';
import { startGoogleEmulator } from '../test/emulators/google/server.js';
import { median, report } from './report.js';

const BENCH = 'google-sync';
const TZ = 'America/New_York';
const REDIRECT = 'http://127.0.0.1:9/oauth/google/callback';

function timed(i: number) {
  const start = DateTime.fromISO('2026-01-05T08:00:00', { zone: TZ }).plus({ days: Math.floor(i / 10), hours: i % 10 });
  return { start: { dateTime: start.toISO(), timeZone: TZ }, end: { dateTime: start.plus({ minutes: 50 }).toISO(), timeZone: TZ } };
}

export async function run(): Promise<void> {
  const clock = new ManualClock(DateTime.utc().startOf('second'));
  const emu = await startGoogleEmulator({ clock });
  const store = await pgliteStoreFromTemplate(await makePGliteTemplate(), new Keyring(generateKey()), clock);
  const config = loadConfig({
    GOOGLE_CLIENT_ID: emu.clientId,
    GOOGLE_CLIENT_SECRET: emu.clientSecret,
    GOOGLE_REDIRECT_URI: REDIRECT,
    GOOGLE_API_ROOT_URL: emu.url,
    GOOGLE_OAUTH_TOKEN_URL: emu.tokenUrl,
    GOOGLE_OAUTH_AUTH_URL: emu.authUrl,
    GOOGLE_OAUTH_REVOKE_URL: emu.revokeUrl,
  });
  const connectors = platformConnectors(config, store);
  try {
    const calId = 'bench@brightpath.example';
    emu.addAccount({ sub: 'bench', email: calId });
    emu.addCalendar('bench', { id: calId, summary: 'Bench', timeZone: TZ, primary: true });
    const connected = await completeGoogleConnect(store, config, connectors, emu.authorize('bench', [...GOOGLE_SCOPES], REDIRECT));
    const cal = connected.calendars[0]!.id;
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) ids.push(emu.insertEvent(calId, { summary: i % 3 ? 'Session' : 'Intake', ...timed(i), attendees: [{ email: `client${i % 200}@example.com`, responseStatus: 'accepted' }] })['id'] as string);
    const connector = await connectors.calendarConnector({ id: connected.connectionId, therapist_id: connected.therapistId, provider: 'google' });

    const started = performance.now();
    const full = await syncCalendar(store, connector, cal, { log: silentLogger });
    const fullMs = performance.now() - started;
    report(BENCH, 'full_sync_events_per_s', full.items.length / (fullMs / 1000), 'events/s', { events: full.items.length, pages: full.pages });

    for (let i = 0; i < 100; i++) {
      if (i % 10 === 0) emu.deleteEvent(calId, ids[i * 7]!);
      else emu.patchEvent(calId, ids[i * 7]!, { summary: `Session moved ${i}` });
    }
    const before = emu.requests.length;
    const inc = await syncCalendar(store, connector, cal, { log: silentLogger });
    const calls = emu.requests.slice(before);
    report(BENCH, 'incremental_requests', calls.length, 'requests', { changes: inc.items.length });
    report(BENCH, 'incremental_bytes', calls.reduce((n, r) => n + r.bodyBytes + r.responseBytes, 0), 'bytes', { changes: inc.items.length });

    // Push on: our router on a local port, the worker woken by each notification.
    const app: App = { config, clock, log: silentLogger, store, opened: undefined as never, close: async () => undefined };
    const worker = new SyncWorker({ store, connectors, log: silentLogger, clock, publicUrl: undefined }, 3_600_000);
    app.kick = () => worker.kick();
    registerFunction('sessionkeeper-bench', createHandler(app));
    const server: http.Server = getTestServer('sessionkeeper-bench');
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/google`;
    await ensureChannel(store, connector, { id: cal, provider_calendar_id: calId }, { address, log: silentLogger });
    await emu.settled();
    // The sync that a new channel queues (to cover its making) is part of setting up, not of idling.
    await runQueuedSyncs({ store, connectors, log: silentLogger, clock }, 'settle');

    // An hour with nothing changing: the worker's rounds (every 5 s of simulated time) ask nothing.
    const idleFrom = emu.requests.length;
    for (let s = 0; s < 3600; s += 5) {
      clock.advance({ seconds: 5 });
      await runQueuedSyncs({ store, connectors, log: silentLogger, clock }, 'idle');
      await ensureChannel(store, connector, { id: cal, provider_calendar_id: calId }, { address, log: silentLogger });
    }
    report(BENCH, 'idle_requests_per_hour', emu.requests.length - idleFrom, 'requests', { simulatedSeconds: 3600 });

    // From a change at Google to its snapshot in our store, through the notification.
    worker.start();
    const latencies: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      const ev = emu.insertEvent(calId, { summary: 'Session', ...timed(20_000 + i) });
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
