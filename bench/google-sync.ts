// Google sync against the emulator, through the real client libraries and store (PGlite in memory):
// full sync speed, what an incremental sync costs, requests while idle with push on, and how long a
// change takes from Google to our store under push.
import { DateTime } from 'luxon';
import { GOOGLE_SCOPES } from '../connectors/google/oauth.js';
import { ManualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { completeGoogleConnect } from '../src/engine/connect.js';
import { platformConnectors } from '../src/engine/platforms.js';
import { syncCalendar } from '../src/engine/sync.js';
import { silentLogger } from '../src/log.js';
import { generateKey, Keyring } from '../src/secrets.js';
import { makePGliteTemplate, pgliteStoreFromTemplate } from '../src/store/provision.js';
import { startGoogleEmulator } from '../test/emulators/google/server.js';
import { googleEnv, REDIRECT } from '../test/helpers/platform-env.js';
import { report } from './report.js';
import { measureIncremental, measurePush, type SyncBenchWorld } from './sync-common.js';

const BENCH = 'google-sync';
const TZ = 'America/New_York';

function timed(i: number) {
  const start = DateTime.fromISO('2026-01-05T08:00:00', { zone: TZ }).plus({ days: Math.floor(i / 10), hours: i % 10 });
  return { start: { dateTime: start.toISO(), timeZone: TZ }, end: { dateTime: start.plus({ minutes: 50 }).toISO(), timeZone: TZ } };
}

export async function run(): Promise<void> {
  const clock = new ManualClock(DateTime.utc().startOf('second'));
  const emu = await startGoogleEmulator({ clock });
  const store = await pgliteStoreFromTemplate(await makePGliteTemplate(), new Keyring(generateKey()), clock);
  const config = loadConfig(googleEnv(emu));
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

    const world: SyncBenchWorld = {
      bench: BENCH,
      provider: 'google',
      store,
      clock,
      config,
      connectors,
      connector,
      calendar: { id: cal, provider_calendar_id: calId },
      requests: emu.requests,
      settled: () => emu.settled(),
      change: (i) => emu.insertEvent(calId, { summary: 'Session', ...timed(20_000 + i) })['id'] as string,
    };
    await measureIncremental(world, () => {
      for (let i = 0; i < 100; i++) {
        if (i % 10 === 0) emu.deleteEvent(calId, ids[i * 7]!);
        else emu.patchEvent(calId, ids[i * 7]!, { summary: `Session moved ${i}` });
      }
    });
    await measurePush(world);
  } finally {
    await store.close();
    await emu.close();
  }
}
