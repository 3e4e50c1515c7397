// `npm run bench -- slots`: how long the slot finder takes for 8 suggestions over a 4-week horizon
// against 2,000 and 20,000 busy intervals (5 calendars' worth), in the therapist's zone, with a habit;
// and the server's time to render a client's booking page from the store (PGlite) with 2,000.
import { DateTime } from 'luxon';
import { ManualClock } from '../src/clock.js';
import { bookingPage, createBookingLink, openLink } from '../src/engine/booking.js';
import { generateKey, Keyring } from '../src/secrets.js';
import { suggest, type Availability, type Busy } from '../src/scheduling/slots.js';
import { upsertCalendar } from '../src/store/calendars.js';
import { createClient } from '../src/store/clients.js';
import { createConnection } from '../src/store/connections.js';
import { createPractice, createTherapist } from '../src/store/practices.js';
import { makePGliteTemplate, pgliteStoreFromTemplate } from '../src/store/provision.js';
import { upsertSnapshots, type SnapshotInput } from '../src/store/snapshots.js';
import { chooserPage } from '../src/surfaces/booking/page.js';
import { rng } from '../test/engine/practice-life.js';
import { report } from './report.js';

const BENCH = 'slots';
const ZONE = 'America/New_York';

/**
 * n busy intervals from 5 calendars: a fifth of them distinct events (about 14 a day over the 4-week
 * horizon for 2,000: work, family, personal), each also found on the other calendars (a shared family
 * calendar, the practice's copy), as synced calendars overlap. 20,000 reach months past the horizon,
 * which the finder must pass over quickly.
 */
function busyOf(n: number, now: number, random: () => number): Busy[] {
  const out: Busy[] = [];
  const day0 = DateTime.fromMillis(now, { zone: ZONE }).startOf('day');
  const distinct = Math.round(n / 5);
  const span = Math.max(28, Math.round(distinct / 14));
  for (let i = 0; i < distinct; i++) {
    const day = day0.plus({ days: Math.floor(random() * span) });
    const start = day.set({ hour: 6 + Math.floor(random() * 16), minute: [0, 15, 30, 45][Math.floor(random() * 4)]! }).toMillis();
    const b = { start, end: start + (15 + Math.floor(random() * 4) * 15) * 60_000, session: random() < 0.3 };
    // The same event on each of the 5 calendars, a copy a few minutes off now and then.
    for (let c = 0; c < 5; c++) out.push(c > 0 && random() < 0.2 ? { ...b, start: b.start + 5 * 60_000, session: false } : { ...b, session: c === 0 && b.session });
  }
  return out;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export async function run(): Promise<void> {
  const now = DateTime.fromISO('2026-03-02T08:00', { zone: ZONE }).toMillis();
  const availability: Availability = {
    zone: ZONE,
    windows: [
      { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00', kind: 'regular' },
      { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '17:00', end: '21:00', kind: 'flexible' },
      { days: ['sat'], start: '09:00', end: '14:00', kind: 'flexible' },
    ],
    bufferMinutes: 10,
    minNoticeHours: 12,
    horizonDays: 28,
    caps: { perDay: 8, perEvening: 3 },
  };
  const habit = { starts: [1, 2, 3, 4, 5, 6].map((w) => DateTime.fromISO('2026-03-03T18:00', { zone: ZONE }).minus({ weeks: w }).toMillis()) };
  for (const n of [2_000, 20_000]) {
    const random = rng(n);
    const times: number[] = [];
    const runs = n > 5_000 ? 40 : 200;
    for (let i = 0; i < runs + 5; i++) {
      const busy = busyOf(n, now, random);
      const t0 = performance.now();
      const top = suggest(availability, busy, { minutes: 50, now, k: 8, habit });
      const ms = performance.now() - t0;
      if (top.length === 0) throw new Error('slots bench: no suggestion at all');
      if (i >= 5) times.push(ms);
    }
    times.sort((a, b) => a - b);
    const label = n >= 20_000 ? '20k' : '2k';
    report(BENCH, `p50_ms_${label}`, percentile(times, 0.5), 'ms', { busy: n, suggestions: 8, horizonDays: 28, runs });
    report(BENCH, `p99_ms_${label}`, percentile(times, 0.99), 'ms', { busy: n, runs });
  }
  await bookingPageBench(now);
}

/**
 * The booking page as GET /book/<token> makes it: the link opened (MAC, its bookings), the client's 8
 * suggestions from the store (2,000 busy intervals over 5 calendars) and the HTML rendered.
 */
async function bookingPageBench(now: number): Promise<void> {
  const clock = new ManualClock(DateTime.fromMillis(now, { zone: ZONE }).toISO()!);
  const store = await pgliteStoreFromTemplate(await makePGliteTemplate(), new Keyring(generateKey()), clock);
  try {
    const at = new Date(now);
    const practice = await createPractice(store.db, { name: 'Bench practice', now: at });
    const t = await createTherapist(store.db, { practiceId: practice.id, identity: { provider: 'google', subject: 'bench' }, now: at });
    await store.db.updateTable('therapists').set({ time_zone: ZONE, display_name: 'Dr Bench' }).where('id', '=', t.id).execute();
    const c = await createConnection(store.db, store.keyring, { therapistId: t.id, provider: 'google', accountSubject: 'bench', now: at });
    const busy = busyOf(2_000, now, rng(99));
    for (let k = 0; k < 5; k++) {
      const cal = await upsertCalendar(store.db, { therapistId: t.id, connectionId: c.id, providerCalendarId: `cal${k}`, now: at });
      await store.db.updateTable('calendars').set({ role: k === 0 ? 'practice' : 'busy_only', time_zone: ZONE }).where('id', '=', cal.id).execute();
      const rows: SnapshotInput[] = busy
        .filter((_, i) => i % 5 === k)
        .map((b, i) => ({ eventId: `e${k}-${i}`, icalUid: `e${k}-${i}@bench`, status: 'confirmed', version: '1', startAt: new Date(b.start), endAt: new Date(b.end), payload: { title: 'Busy' } }));
      for (let i = 0; i < rows.length; i += 250) await store.transaction((trx) => upsertSnapshots(trx, store.keyring, cal.id, rows.slice(i, i + 250), at));
    }
    const client = await createClient(store.db, store.keyring, { therapistId: t.id, displayName: 'Bench Client', identities: [{ kind: 'email', value: 'client@example.com' }], now: at });
    const link = await createBookingLink(store, { therapistId: t.id, clientId: client.id, now: at });
    const times: number[] = [];
    let bytes = 0;
    const runs = 100;
    for (let i = 0; i < runs + 5; i++) {
      const t0 = performance.now();
      const opened = await openLink(store.db, store.keyring, link.token, at);
      if (opened.state !== 'open') throw new Error(`slots bench: the link is ${opened.state}`);
      const page = await bookingPage(store, opened.link, at);
      const html = chooserPage({ action: `/book/${link.token}`, page, nonce: 'bench' });
      const ms = performance.now() - t0;
      if (page.suggestions.length === 0) throw new Error('slots bench: the booking page offers nothing');
      bytes = Buffer.byteLength(html);
      if (i >= 5) times.push(ms);
    }
    times.sort((a, b) => a - b);
    report(BENCH, 'booking_page_p95_ms', percentile(times, 0.95), 'ms', { busy: 2_000, calendars: 5, suggestions: 8, runs, backend: 'pglite', bytes });
  } finally {
    await store.close();
  }
}
