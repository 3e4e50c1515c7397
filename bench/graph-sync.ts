// Microsoft 365 sync against the Graph emulator, through real MSAL, the real Graph client and the
// store (PGlite in memory): the same figures as google-sync, under the same names.
import { DateTime } from 'luxon';
import { MICROSOFT_SCOPES } from '../connectors/microsoft/auth.js';
import { ManualClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { completeMicrosoftConnect } from '../src/engine/connect.js';
import { platformConnectors, type PlatformOptions } from '../src/engine/platforms.js';
import { syncCalendar } from '../src/engine/sync.js';
import { silentLogger } from '../src/log.js';
import { generateKey, Keyring } from '../src/secrets.js';
import { makePGliteTemplate, pgliteStoreFromTemplate } from '../src/store/provision.js';
import { graphRedirect, msalNetworkClient, startGraphEmulator } from '../test/emulators/microsoft/server.js';
import { report } from './report.js';
import { measureIncremental, measurePush, type SyncBenchWorld } from './sync-common.js';

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

    const providerId = (await store.db.selectFrom('calendars').select('provider_calendar_id').where('id', '=', cal).executeTakeFirstOrThrow()).provider_calendar_id;
    const world: SyncBenchWorld = {
      bench: BENCH,
      provider: 'microsoft',
      store,
      clock,
      config,
      connectors,
      connector,
      calendar: { id: cal, provider_calendar_id: providerId },
      requests: emu.requests,
      settled: () => emu.settled(),
      pushState: () => ({ statuses: emu.notifications().reduce<Record<string, number>>((m, n) => ((m[String(n.status)] = (m[String(n.status)] ?? 0) + 1), m), {}), last: emu.notifications().slice(-2).map((n) => ({ status: n.status, error: (n as { error?: string }).error })) }),
      // Inside the synced window (180 days ahead): the delta covers it.
      change: (i) => emu.createEvent('bench', 'default', { subject: 'Session', ...slot(10_000 + i) })['id'] as string,
    };
    await measureIncremental(world, () => {
      for (let i = 0; i < 100; i++) {
        if (i % 10 === 0) emu.deleteEvent('bench', ids[i * 7]!);
        else emu.updateEvent('bench', ids[i * 7]!, { subject: `Session moved ${i}` });
      }
    });
    await measurePush(world);
  } finally {
    await store.close();
    await emu.close();
  }
}
