// `npm run bench -- slots`: how long the slot finder takes for 8 suggestions over a 4-week horizon
// against 2,000 and 20,000 busy intervals (5 calendars' worth), in the therapist's zone, with a habit.
import { DateTime } from 'luxon';
import { suggest, type Availability, type Busy } from '../src/scheduling/slots.js';
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
}
