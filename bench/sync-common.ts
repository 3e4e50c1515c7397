// The part of the google-sync and graph-sync benchmarks that is the same for every platform: an
// incremental sync's cost, an idle hour with push on, and the time from a change to our store.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { http as registerFunction } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { CalendarConnector } from '../connectors/port.js';
import type { App } from '../src/app.js';
import type { ManualClock } from '../src/clock.js';
import type { Config } from '../src/config.js';
import { ensureChannel } from '../src/engine/channels.js';
import type { ConnectorFactory } from '../src/engine/platforms.js';
import { syncCalendar } from '../src/engine/sync.js';
import { runQueuedSyncs, EngineWorker } from '../src/engine/worker.js';
import { createHandler } from '../src/http.js';
import { silentLogger } from '../src/log.js';
import type { Store } from '../src/store/store.js';
import { median, report } from './report.js';

export interface SyncBenchWorld {
  bench: string;
  provider: 'google' | 'microsoft';
  store: Store;
  clock: ManualClock;
  config: Config;
  connectors: ConnectorFactory;
  connector: CalendarConnector;
  calendar: { id: string; provider_calendar_id: string };
  /** Every request the emulator received, with its sizes. */
  requests: readonly { bodyBytes: number; responseBytes: number }[];
  /** Waits until the emulator's notifications so far were answered. */
  settled(): Promise<void>;
  /** Makes one change at the platform and returns the changed event's id. */
  change(i: number): string;
  /** What the platform last did about push, for the error when a change never arrives. */
  pushState?: () => unknown;
}

/** An incremental sync after `changes` were made: requests and bytes, both ways. */
export async function measureIncremental(w: SyncBenchWorld, makeChanges: () => void): Promise<void> {
  makeChanges();
  const before = w.requests.length;
  const inc = await syncCalendar(w.store, w.connector, w.calendar.id, { log: silentLogger });
  const calls = w.requests.slice(before);
  report(w.bench, 'incremental_requests', calls.length, 'requests', { changes: inc.items.length });
  report(w.bench, 'incremental_bytes', calls.reduce((n, r) => n + r.bodyBytes + r.responseBytes, 0), 'bytes', { changes: inc.items.length });
}

/** Push on through our own router: an idle hour (requests made), then changes timed to our store. */
export async function measurePush(w: SyncBenchWorld): Promise<void> {
  const app: App = { config: w.config, clock: w.clock, log: silentLogger, store: w.store, opened: undefined as never, close: async () => undefined };
  // The sync path alone: no action plug-ins (the engine bench measures facts and actions), so the
  // first sync's thousands of tag actions do not stand between a change and its snapshot.
  const worker = new EngineWorker({ store: w.store, connectors: w.connectors, plugins: [], log: silentLogger, clock: w.clock, publicUrl: undefined }, 3_600_000);
  app.kick = () => worker.kick();
  const name = `sessionkeeper-${w.bench}`;
  registerFunction(name, createHandler(app));
  const server: http.Server = getTestServer(name);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/${w.provider}`;
    await ensureChannel(w.store, w.connector, w.calendar, { address, log: silentLogger });
    await w.settled();
    // The sync that a new channel queues (to cover its making) is part of setting up, not of idling.
    await runQueuedSyncs({ store: w.store, connectors: w.connectors, log: silentLogger, clock: w.clock }, 'settle');

    // An hour with nothing changing: the worker's rounds (every 5 s of simulated time) ask nothing.
    const idleFrom = w.requests.length;
    for (let s = 0; s < 3600; s += 5) {
      w.clock.advance({ seconds: 5 });
      await runQueuedSyncs({ store: w.store, connectors: w.connectors, log: silentLogger, clock: w.clock }, 'idle');
      await ensureChannel(w.store, w.connector, w.calendar, { address, log: silentLogger });
    }
    report(w.bench, 'idle_requests_per_hour', w.requests.length - idleFrom, 'requests', { simulatedSeconds: 3600 });

    // From a change at the platform to its snapshot in our store, through the notification.
    worker.start();
    const latencies: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      const id = w.change(i);
      for (let waited = 0; ; waited++) {
        if (waited > 20_000) {
          const cal = await w.store.db.selectFrom('calendars').select(['last_error']).where('id', '=', w.calendar.id).executeTakeFirst();
          const queued = await w.store.db.selectFrom('sync_requests').selectAll().execute();
          throw new Error(`a change never reached the store under push (last sync error: ${cal?.last_error ?? 'none'}; queued: ${JSON.stringify(queued)}; push: ${JSON.stringify(w.pushState?.() ?? null)})`);
        }
        const row = await w.store.db.selectFrom('event_snapshots').select('event_id').where('calendar_id', '=', w.calendar.id).where('event_id', '=', id).executeTakeFirst();
        if (row) break;
        await new Promise((r) => setTimeout(r, 1));
      }
      latencies.push(performance.now() - t0);
    }
    report(w.bench, 'push_to_synced_ms', median(latencies), 'ms', { samples: latencies.length, max: Math.round(Math.max(...latencies)) });
    await worker.stop();
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}
