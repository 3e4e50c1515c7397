// Recognition + lifecycle over 100,000 calendar items for 200 clients (new sessions, reschedules,
// declines, deletions, marks, other events), in sync rounds of 1,000: events per second on one core
// and the peak memory. Parsing (zod) is measured apart.
import { parseCalendarItem, type CalendarItem } from '../connectors/types.js';
import { parsePracticeSettings } from '../src/config.js';
import { applyRound, createLedger, presumeUntil, type LedgerContext } from '../src/domain/lifecycle.js';
import { compileRules } from '../src/domain/rules.js';
import { report } from './report.js';

const BENCH = 'domain';
const EVENTS = 100_000;
const CLIENTS = 200;
const ROUND = 1_000;
const START = Date.parse('2026-01-05T09:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

/** A deterministic generator (mulberry32), so every run measures the same calendar. */
function rng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeRounds(): { at: string; raw: unknown[] }[] {
  const random = rng(42);
  const rounds: { at: string; raw: unknown[] }[] = [];
  const live: { id: string; client: number; startMs: number; title: string }[] = [];
  let made = 0;
  let next = 0;
  for (let r = 0; made < EVENTS; r++) {
    const atMs = START + r * 6 * 3_600_000;
    const raw: unknown[] = [];
    for (let i = 0; i < ROUND && made < EVENTS; i++, made++) {
      const roll = random();
      const updated = iso(atMs - 60_000);
      const event = (id: string, c: number, startMs: number, title: string, response = 'accepted', extra: Record<string, unknown> = {}) => ({
        kind: 'event',
        provider: 'google',
        calendarId: c % 10 === 0 ? 'clients' : 'primary',
        eventId: id,
        iCalUID: `${id}@google.com`,
        start: { kind: 'instant', at: iso(startMs), zone: 'America/New_York' },
        end: { kind: 'instant', at: iso(startMs + 50 * 60_000), zone: 'America/New_York' },
        status: 'confirmed',
        title,
        organizer: { email: 'dr.lee@brightpath.example', self: true },
        attendees: c % 4 === 3 ? [] : [
          { email: 'dr.lee@brightpath.example', response: 'accepted', self: true, organizer: true },
          { email: `client${c}@example.com`, name: `Client ${c}`, response, self: false, organizer: false },
        ],
        updated,
        version: `"${made}"`,
        ...extra,
      });
      if (roll < 0.1) {
        raw.push(event(`x${next++}`, -1, atMs + random() * 30 * 86_400_000, random() < 0.5 ? 'Lunch' : 'Team meeting'));
      } else if (roll < 0.2 && live.length > 0) {
        const e = live[Math.floor(random() * live.length)]!;
        e.startMs += 86_400_000;
        raw.push(event(e.id, e.client, e.startMs, e.title));
      } else if (roll < 0.25 && live.length > 0) {
        const e = live[Math.floor(random() * live.length)]!;
        raw.push(event(e.id, e.client, e.startMs, e.title, 'declined'));
      } else if (roll < 0.3 && live.length > 0) {
        const e = live.splice(Math.floor(random() * live.length), 1)[0]!;
        raw.push({ kind: 'tombstone', provider: 'google', calendarId: e.client % 10 === 0 ? 'clients' : 'primary', eventId: e.id });
      } else if (roll < 0.32 && live.length > 0) {
        const e = live[Math.floor(random() * live.length)]!;
        raw.push(event(e.id, e.client, e.startMs, `NS ${e.title}`));
      } else {
        const c = Math.floor(random() * CLIENTS);
        const title = c % 4 === 3 ? `C${c} - session` : random() < 0.5 ? 'Session' : `Client ${c}`;
        const e = { id: `s${next++}`, client: c, startMs: atMs + (1 + Math.floor(random() * 28)) * 86_400_000, title };
        live.push(e);
        if (live.length > 5_000) live.shift();
        raw.push(event(e.id, c, e.startMs, title));
      }
    }
    rounds.push({ at: iso(atMs), raw });
  }
  return rounds;
}

export async function run(): Promise<void> {
  const generated = makeRounds();
  const parseStart = performance.now();
  const rounds = generated.map((r) => ({
    at: r.at,
    items: r.raw.map((x) => {
      const p = parseCalendarItem(x);
      if (!p.ok) throw new Error(`bench data is invalid: ${p.error.field}: ${p.error.reason}`);
      return p.item;
    }) as CalendarItem[],
  }));
  const parseMs = performance.now() - parseStart;

  const settings = parsePracticeSettings({ timeZone: 'America/New_York', domains: ['brightpath.example'] });
  const ctx: LedgerContext = {
    rules: compileRules(settings),
    calendars: new Map([['clients', { role: 'practice', name: 'Clients', timeZone: 'America/New_York' }]]),
    defaultZone: 'America/New_York',
  };
  const times: number[] = [];
  let transitions = 0;
  let appointments = 0;
  for (let run = 0; run < 3; run++) {
    const ledger = createLedger();
    const started = performance.now();
    transitions = 0;
    for (const round of rounds) transitions += applyRound(ledger, round, ctx).length;
    transitions += presumeUntil(ledger, iso(START + 400 * 86_400_000), ctx).length;
    times.push(performance.now() - started);
    appointments = [...ledger.appointments.values()].filter((a) => a.decision.appointment).length;
  }
  const best = Math.min(...times);
  report(BENCH, 'events_per_s', EVENTS / (best / 1000), 'events/s', { events: EVENTS, clients: CLIENTS, appointments, transitions, runs: times.length });
  report(BENCH, 'parse_events_per_s', EVENTS / (parseMs / 1000), 'events/s', { events: EVENTS });
  report(BENCH, 'peak_rss_mb', process.resourceUsage().maxRSS / 1024, 'MB');
}
