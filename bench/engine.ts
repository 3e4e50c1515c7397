// The engine at a practice's scale against the Google emulator (50 therapists, 2,000 clients, 6 months of
// sessions): full syncs to stored facts, push notification to fact, an idle tick, and peak memory.
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
import { runDueActions } from '../src/engine/outbox.js';
import { defaultPlugins } from '../src/engine/plugins.js';
import { platformConnectors } from '../src/engine/platforms.js';
import type { SyncOutcome } from '../src/engine/sync.js';
import { EngineWorker, runQueuedSyncs, tick, type WorkerDeps } from '../src/engine/worker.js';
import { createHandler } from '../src/http.js';
import { silentLogger } from '../src/log.js';
import { generateKey, Keyring } from '../src/secrets.js';
import { getPracticeSettings, updatePracticeSettings } from '../src/store/practices.js';
import { makePGliteTemplate, pgliteStoreFromTemplate } from '../src/store/provision.js';
import { instanceKey } from '../test/emulators/google/recurrence.js';
import { startGoogleEmulator, type GoogleEmulator } from '../test/emulators/google/server.js';
import { rng as seededRandom } from '../test/engine/practice-life.js';
import { googleEnv, REDIRECT } from '../test/helpers/platform-env.js';
import { median, report } from './report.js';

const BENCH = 'engine';
const TZ = 'America/New_York';
/** BENCH_ENGINE_THERAPISTS runs a smaller practice (each therapist keeps 40 clients and 6 months). */
const THERAPISTS = Number(process.env['BENCH_ENGINE_THERAPISTS'] ?? 50);
const CLIENTS_PER_THERAPIST = 40;
const WEEKS = 26;
/** Monday of the first week of sessions, and "now" when the engine first syncs (22 weeks in). */
const WINDOW_START = DateTime.fromISO('2025-09-29T00:00:00', { zone: TZ });
const NOW = DateTime.fromISO('2026-03-02T09:00:00', { zone: TZ });
const PUSH_CHANGES = 200;
const IDLE_TICKS = 50;
/** Tag actions carried out after the first syncs (the rest are set aside). */
const TAG_SAMPLE = 200;
const DEFAULT_SEED = 20260302;

// ---------------------------------------------------------------------------------------------
// A seeded practice (the harness's generator: the same seed, the same practice)

const FIRST = ['Avery', 'Jordan', 'Maria', 'Sam', 'Priya', 'Chen', 'Olivia', 'Noah', 'Fatima', 'Liam', 'Grace', 'Diego', 'Hana', 'Marcus', 'Zoe', 'Ibrahim', 'Elena', 'Kofi', 'Nora', 'Tomas'];
const LAST = ['Nguyen', 'Garcia', 'Smith', 'Okafor', 'Rossi', 'Kim', 'Patel', 'Cohen', 'Silva', 'Murphy', 'Haddad', 'Novak', 'Brown', 'Tanaka', 'Larsen', 'Mensah', 'Dubois', 'Singh', 'Walsh', 'Ortiz'];
const MAIL = ['mail.example', 'inbox.example', 'post.example', 'webmail.example'];

interface Client {
  first: string;
  last: string;
  email: string;
  /** Invited as an attendee (else named only in the title). */
  invited: boolean;
  couple: { first: string; last: string; email: string } | null;
  weekday: number; // 1 = Monday
  hour: number;
  everyWeeks: 1 | 2;
  startWeek: number;
  endWeek: number; // exclusive
  recurring: boolean;
}

interface Therapist {
  index: number;
  sub: string;
  calId: string;
  clients: Client[];
  /** Ours, after connecting. */
  therapistId?: string;
  connectionId?: string;
  calendarRowId?: string;
}

/** A session at the emulator as the bench knows it (to change it later). */
interface Session {
  t: Therapist;
  client: Client;
  eventId: string;
  startMs: number;
  minutes: number;
  title: string;
  /** Still booked (not cancelled or moved by the bench). */
  live: boolean;
}

function pick<T>(rng: () => number, list: readonly T[]): T {
  return list[Math.floor(rng() * list.length)]!;
}

function between(rng: () => number, lo: number, hi: number): number {
  return lo + rng() * (hi - lo);
}

function makePractice(rng: () => number): Therapist[] {
  const out: Therapist[] = [];
  let n = 0;
  for (let i = 0; i < THERAPISTS; i++) {
    // 5 weekdays × 11 start hours (9:00 … 19:00, the last ending by 20:00): one slot per client.
    const slots: { weekday: number; hour: number }[] = [];
    for (let d = 1; d <= 5; d++) for (let h = 9; h <= 19; h++) slots.push({ weekday: d, hour: h });
    for (let s = slots.length - 1; s > 0; s--) {
      const j = Math.floor(rng() * (s + 1));
      [slots[s], slots[j]] = [slots[j]!, slots[s]!];
    }
    const clients: Client[] = [];
    for (let c = 0; c < CLIENTS_PER_THERAPIST; c++) {
      n++;
      const first = pick(rng, FIRST);
      const last = pick(rng, LAST);
      const slot = slots[c]!;
      const couple = rng() < 0.06 && slot.hour <= 18;
      const partner = couple ? { first: pick(rng, FIRST), last, email: `partner${n}@${pick(rng, MAIL)}` } : null;
      // Most clients were already coming when the window opens; some start in it (with an intake), some stop.
      const startWeek = rng() < 0.72 ? 0 : 1 + Math.floor(rng() * 20);
      const endWeek = rng() < 0.12 ? Math.min(WEEKS, startWeek + 3 + Math.floor(rng() * 12)) : WEEKS;
      clients.push({
        first,
        last,
        email: `${first}.${last}${n}@${pick(rng, MAIL)}`.toLowerCase(),
        invited: couple || rng() < 0.7,
        couple: partner,
        weekday: slot.weekday,
        hour: slot.hour,
        everyWeeks: rng() < 0.65 ? 1 : 2,
        startWeek,
        endWeek,
        recurring: rng() < 0.55,
      });
    }
    out.push({ index: i, sub: `therapist-${i}`, calId: `dr${i}@brightpath.example`, clients });
  }
  return out;
}

function clientName(c: Client): string {
  return c.couple ? `${c.first} & ${c.couple.first} ${c.last}` : c.invited ? `${c.first} ${c.last}` : `${c.first} ${c.last[0]}.`;
}

function sessionTitle(c: Client, intake: boolean): string {
  if (intake) return `Intake: ${clientName(c)}`;
  if (c.couple) return `Couples: ${clientName(c)}`;
  return `${clientName(c)} - session`;
}

function sessionMinutes(c: Client, intake: boolean): number {
  return c.couple ? 80 : intake ? 60 : 50;
}

function attendeesOf(t: Therapist, c: Client, responseStatus = 'accepted'): Record<string, unknown>[] | undefined {
  if (!c.invited) return undefined;
  const people = [{ email: c.email, displayName: `${c.first} ${c.last}`, responseStatus }];
  if (c.couple) people.push({ email: c.couple.email, displayName: `${c.couple.first} ${c.couple.last}`, responseStatus });
  return [...people, { email: t.calId, responseStatus: 'accepted' }];
}

function times(startMs: number, minutes: number): { start: Record<string, string>; end: Record<string, string> } {
  const start = DateTime.fromMillis(startMs, { zone: TZ });
  return { start: { dateTime: start.toISO()!, timeZone: TZ }, end: { dateTime: start.plus({ minutes }).toISO()!, timeZone: TZ } };
}

/** One user edit at the emulator at a simulated instant. */
interface Op {
  at: number;
  seq: number;
  run(): void;
}

interface History {
  sessions: Session[];
  inserted: number;
  cancelled: number;
  late: number;
  noShows: number;
  rescheduled: number;
}

/**
 * Six months of one practice at the emulator, as it happened: sessions booked ahead (series or one by
 * one), about 10% cancelled with varying notice (deleted, marked CX/LC/TX, or declined), about 3% marked
 * "NS " after the session, some rescheduled. Every edit is made at its own time on the clock.
 */
function buildHistory(emu: GoogleEmulator, clock: ManualClock, practice: Therapist[], rng: () => number): History {
  const ops: Op[] = [];
  const nowMs = NOW.toMillis();
  const h: History = { sessions: [], inserted: 0, cancelled: 0, late: 0, noShows: 0, rescheduled: 0 };
  let seq = 0;
  // Edits happen on whole seconds, as Google's timestamps have them.
  const add = (at: number, run: () => void) => ops.push({ at: Math.round(at / 1000) * 1000, seq: seq++, run });
  const hour = 3_600_000;

  for (const t of practice) {
    for (const c of t.clients) {
      const occurrences: { startMs: number; intake: boolean }[] = [];
      for (let w = c.startWeek; w < c.endWeek; w += c.everyWeeks) {
        occurrences.push({ startMs: WINDOW_START.plus({ weeks: w, days: c.weekday - 1, hours: c.hour }).toMillis(), intake: c.startWeek > 0 && w === c.startWeek });
      }
      if (occurrences.length === 0) continue;
      // A new client's intake is a single event; the series (or the single bookings) follow it.
      const ids = new Map<number, string>();
      const bookedAt = new Map<number, number>();
      const regular = occurrences.filter((o) => !o.intake);
      const intake = occurrences.find((o) => o.intake);
      if (intake) {
        const at = intake.startMs - between(rng, 2, 10) * 24 * hour;
        bookedAt.set(intake.startMs, at);
        add(at, () => {
          const e = emu.insertEvent(t.calId, { summary: sessionTitle(c, true), ...times(intake.startMs, sessionMinutes(c, true)), ...(c.invited ? { attendees: attendeesOf(t, c) } : {}) });
          ids.set(intake.startMs, e['id'] as string);
          h.inserted++;
        });
      }
      if (c.recurring && regular.length > 1) {
        const first = regular[0]!;
        const last = regular[regular.length - 1]!;
        // Booked a few days ahead, or after the intake when there was one.
        const at = intake ? intake.startMs + 2 * hour : first.startMs - between(rng, 1, 7) * 24 * hour;
        const until = DateTime.fromMillis(last.startMs, { zone: 'utc' }).plus({ hours: 1 }).toFormat("yyyyMMdd'T'HHmmss'Z'");
        for (const o of regular) bookedAt.set(o.startMs, at);
        add(at, () => {
          const master = emu.insertEvent(t.calId, {
            summary: sessionTitle(c, false),
            ...times(first.startMs, sessionMinutes(c, false)),
            recurrence: [`RRULE:FREQ=WEEKLY;INTERVAL=${c.everyWeeks};UNTIL=${until}`],
            ...(c.invited ? { attendees: attendeesOf(t, c) } : {}),
          });
          for (const o of regular) ids.set(o.startMs, `${master['id'] as string}_${instanceKey(DateTime.fromMillis(o.startMs, { zone: 'utc' }), false)}`);
          h.inserted += regular.length;
        });
      } else {
        for (const o of regular) {
          // Booked one by one, one to three weeks ahead (the last weeks are not all booked yet by "now").
          const at = o.startMs - between(rng, 7, 21) * 24 * hour;
          bookedAt.set(o.startMs, at);
          add(at, () => {
            const e = emu.insertEvent(t.calId, { summary: sessionTitle(c, false), ...times(o.startMs, sessionMinutes(c, false)), ...(c.invited ? { attendees: attendeesOf(t, c) } : {}) });
            ids.set(o.startMs, e['id'] as string);
            h.inserted++;
          });
        }
      }

      for (const o of occurrences) {
        const booked = bookedAt.get(o.startMs)!;
        if (booked >= nowMs) continue; // not booked yet
        const minutes = sessionMinutes(c, o.intake);
        const title = sessionTitle(c, o.intake);
        const session: Session = { t, client: c, eventId: '', startMs: o.startMs, minutes, title, live: true };
        // The id is known once the booking ran (ops run in time order).
        add(booked + 1, () => {
          session.eventId = ids.get(o.startMs)!;
        });
        const roll = rng();
        if (roll < 0.1) {
          // Cancelled: notice from an hour to three weeks; a quarter of them late (under 24 h).
          const r = rng();
          const noticeH = r < 0.25 ? between(rng, 1, 23) : r < 0.7 ? between(rng, 24, 168) : between(rng, 168, 504);
          const at = Math.max(booked + hour, o.startMs - noticeH * hour);
          if (at >= nowMs) {
            h.sessions.push(session);
            continue;
          }
          const late = o.startMs - at < 24 * hour;
          const how = rng();
          add(at, () => {
            if (how < 0.5) emu.deleteEvent(t.calId, session.eventId);
            else if (how < 0.8 || !c.invited) {
              const prefix = rng() < 0.12 ? 'TX ' : late ? 'LC ' : 'CX ';
              emu.patchEvent(t.calId, session.eventId, { summary: `${prefix}${title}` });
            } else emu.patchEvent(t.calId, session.eventId, { attendees: attendeesOf(t, c, 'declined') });
            h.cancelled++;
            if (late) h.late++;
          });
          session.live = false;
          h.sessions.push(session);
          continue;
        }
        if (roll < 0.14) {
          // Rescheduled, two hours to five days ahead: another day of the same week, another hour.
          const at = Math.max(booked + hour, o.startMs - between(rng, 2, 120) * hour);
          if (at < nowMs) {
            const day = DateTime.fromMillis(o.startMs, { zone: TZ });
            let moved = day.set({ hour: 9 + Math.floor(rng() * 11) }).plus({ days: Math.floor(rng() * 5) - 2 });
            if (moved.weekday > 5) moved = moved.minus({ days: 2 });
            if (moved.toMillis() <= at + hour) moved = day.set({ hour: Math.min(19, day.hour + 1) });
            const to = moved.toMillis();
            add(at, () => {
              emu.patchEvent(t.calId, session.eventId, times(to, minutes));
              session.startMs = to;
              h.rescheduled++;
            });
          }
        } else if (roll < 0.17) {
          // No-show: the therapist puts "NS " in front of the title within a day and a half.
          const at = o.startMs + minutes * 60_000 + between(rng, 1, 36) * hour;
          if (at < nowMs) {
            add(at, () => {
              emu.patchEvent(t.calId, session.eventId, { summary: `NS ${title}` });
              session.live = false;
              h.noShows++;
            });
          }
        }
        h.sessions.push(session);
      }
    }
  }
  ops.sort((a, b) => a.at - b.at || a.seq - b.seq);
  for (const op of ops) {
    clock.set(DateTime.fromMillis(op.at, { zone: 'utc' }));
    op.run();
  }
  return h;
}

// ---------------------------------------------------------------------------------------------

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function run(): Promise<void> {
  const seed = Number(process.env['BENCH_SEED'] ?? DEFAULT_SEED);
  const rng = seededRandom(seed);
  const clock = new ManualClock(WINDOW_START.minus({ weeks: 4 }));
  const emu = await startGoogleEmulator({ clock });
  const store = await pgliteStoreFromTemplate(await makePGliteTemplate(), new Keyring(generateKey()), clock);
  const config = loadConfig(googleEnv(emu));
  const connectors = platformConnectors(config, store);
  const stage = (what: string, since: number) => {
    const m = process.memoryUsage();
    const mb = (n: number) => Math.round(n / 1_048_576);
    process.stderr.write(`bench engine: ${what} in ${((performance.now() - since) / 1000).toFixed(1)} s (rss ${mb(m.rss)} MB, heap ${mb(m.heapUsed)} MB, array buffers ${mb(m.arrayBuffers)} MB)\n`);
  };
  let server: http.Server | undefined;
  let worker: EngineWorker | undefined;
  try {
    // The practice and its history at the emulator.
    let t0 = performance.now();
    const practice = makePractice(rng);
    for (const t of practice) {
      emu.addAccount({ sub: t.sub, email: t.calId });
      emu.addCalendar(t.sub, { id: t.calId, summary: `Dr ${t.index}`, timeZone: TZ, primary: true });
    }
    const history = buildHistory(emu, clock, practice, rng);
    stage(`history built (${history.inserted} sessions booked)`, t0);

    // Every therapist connects "now"; the practice's zone and domain are set as an operator would.
    clock.set(NOW);
    t0 = performance.now();
    for (const t of practice) {
      const connected = await completeGoogleConnect(store, config, connectors, emu.authorize(t.sub, [...GOOGLE_SCOPES], REDIRECT));
      t.therapistId = connected.therapistId;
      t.connectionId = connected.connectionId;
      t.calendarRowId = connected.calendars[0]!.id;
      if (t.index === 0) {
        const practiceId = (await store.db.selectFrom('therapists').select('practice_id').where('id', '=', connected.therapistId).executeTakeFirstOrThrow()).practice_id;
        const settings = await getPracticeSettings(store.db, practiceId);
        await updatePracticeSettings(store.db, { practiceId, settings: { ...settings, timeZone: TZ, domains: ['brightpath.example'] }, actor: 'bench', therapistId: null, now: store.now() });
      }
    }
    stage(`${practice.length} therapists connected`, t0);

    // events_per_s: the queued first syncs of the 50 calendars, facts (and their actions) written with them.
    const outcomes: SyncOutcome[] = [];
    const deps: WorkerDeps = { store, connectors, log: silentLogger, clock, onSynced: (o) => void outcomes.push(o) };
    t0 = performance.now();
    for (;;) {
      const n = await runQueuedSyncs(deps, 'bench-full');
      if (n.claimed === 0) break;
    }
    const fullMs = performance.now() - t0;
    const events = outcomes.reduce((n, o) => n + o.items.length, 0);
    const transitions = Number((await store.db.selectFrom('appointment_transitions').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
    const byKind = await store.db.selectFrom('appointment_transitions').select(['kind', (eb) => eb.fn.countAll<string>().as('n')]).groupBy('kind').execute();
    const queuedActions = outcomes.reduce((n, o) => n + (o.facts?.actions ?? 0), 0);
    stage(`first syncs (${events} events)`, t0);

    // The first syncs queued a tag action per session (tagging.ts), carried out one by one: a sample
    // is run for its rate, the rest are set aside (cancelled) so that what follows starts settled.
    t0 = performance.now();
    const sample = await runDueActions({ store, connectors, log: silentLogger, plugins: defaultPlugins }, 'bench-settle', { max: TAG_SAMPLE });
    const tagMs = performance.now() - t0;
    const setAside = await store.db
      .updateTable('actions')
      .set({ status: 'cancelled', last_error: 'set aside by the engine bench', finished_at: store.now(), updated_at: store.now() })
      .where('status', '=', 'pending')
      .executeTakeFirst();
    stage(`${sample.done} tag actions`, t0);
    report(BENCH, 'events_per_s', events / (fullMs / 1000), 'events/s', {
      events,
      transitions,
      seconds: Math.round(fullMs / 100) / 10,
      therapists: practice.length,
      calendars: outcomes.length,
      kinds: Object.fromEntries(byKind.map((k) => [k.kind, Number(k.n)])),
      actionsQueued: queuedActions,
      tagActionsPerS: Math.round((sample.done / (tagMs / 1000)) * 10) / 10,
      tagActionsSetAside: Number(setAside.numUpdatedRows),
      history: { booked: history.inserted, cancelled: history.cancelled, late: history.late, noShows: history.noShows, rescheduled: history.rescheduled },
      seed,
    });

    // Always on: our router on a local port, a push channel per calendar, the worker kicked by the webhook.
    const app: App = { config, clock, log: silentLogger, store, opened: undefined as never, close: async () => undefined };
    const waiters = new Map<string, { kinds: readonly string[]; resolve: (at: number) => void }>();
    let syncedWhileWaiting = 0;
    const pushDeps: WorkerDeps = {
      store,
      connectors,
      log: silentLogger,
      clock,
      onSynced: async (o) => {
        if (waiters.size === 0) return;
        syncedWhileWaiting++;
        if (!o.facts) return;
        for (const tr of o.facts.transitions) {
          const w = waiters.get(tr.eventId);
          if (!w || !w.kinds.includes(tr.kind)) continue;
          // The row is committed with the sync's transaction: confirm it is there.
          const row = await store.db.selectFrom('appointment_transitions').select('id').where('key', '=', tr.key).executeTakeFirst();
          if (row) {
            waiters.delete(tr.eventId);
            w.resolve(performance.now());
          }
        }
      },
    };
    worker = new EngineWorker(pushDeps, 3_600_000);
    app.kick = () => worker!.kick();
    const name = `sessionkeeper-${BENCH}`;
    registerFunction(name, createHandler(app));
    server = getTestServer(name);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const publicUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t0 = performance.now();
    for (const t of practice) {
      const connector = await connectors.calendarConnector({ id: t.connectionId!, therapist_id: t.therapistId!, provider: 'google' });
      await ensureChannel(store, connector, { id: t.calendarRowId!, provider_calendar_id: t.calId }, { address: `${publicUrl}/webhooks/google`, log: silentLogger });
    }
    await emu.settled();
    for (;;) {
      const n = await runQueuedSyncs(pushDeps, 'bench-channels');
      if (n.claimed === 0) break;
    }
    stage('channels made', t0);

    // Quiet: nothing queued, due or in flight (the worker ticks only when kicked here; its interval is an hour).
    let rounds = 0;
    let roundWaiters: (() => void)[] = [];
    worker.onRound = () => {
      rounds++;
      const waiting = roundWaiters;
      roundWaiters = [];
      for (const w of waiting) w();
    };
    worker.start();
    const quiet = async () => {
      for (let i = 0; i < 10_000; i++) {
        await emu.settled();
        const now = store.now();
        const pending = await store.db.selectFrom('sync_requests').select('calendar_id').where('not_before', '<=', now).limit(1).execute();
        const due = await store.db.selectFrom('actions').select('id').where('status', 'in', ['pending', 'running']).where('next_attempt_at', '<=', now).limit(1).execute();
        const presume = await store.db.selectFrom('ledgers').select('therapist_id').where('next_presume_at', '<=', now).limit(1).execute();
        if (pending.length + due.length + presume.length > 0) {
          const round = new Promise<void>((r) => roundWaiters.push(r));
          worker!.kick();
          await round;
          continue;
        }
        const before = rounds;
        await sleep(2);
        if (rounds === before) return;
      }
      throw new Error('the engine never became quiet');
    };
    await quiet();

    const latencies: number[] = [];
    let sharedRounds = 0;
    const counts = { cancel: 0, reschedule: 0, book: 0 };
    const byTherapist = new Map<Therapist, Session[]>();
    for (const s of history.sessions) {
      const list = byTherapist.get(s.t) ?? [];
      list.push(s);
      byTherapist.set(s.t, list);
    }
    t0 = performance.now();
    for (let i = 0; i < PUSH_CHANGES; i++) {
      // A busy practice: a change every few minutes (sessions end meanwhile and are presumed attended).
      clock.advance({ minutes: Math.round(between(rng, 1, 10)) });
      const nowMs = clock.now().toMillis();
      const t = pick(rng, practice);
      const booked = (byTherapist.get(t) ?? []).filter((s) => s.live && s.eventId && s.startMs > nowMs + 3_600_000 && s.startMs < nowMs + 21 * 24 * 3_600_000);
      const roll = rng();
      let change: () => { eventId: string; kinds: string[] };
      if (roll < 0.45 && booked.length > 0) {
        // A cancellation, at whatever notice the session happens to be away (some under 24 h).
        const near = booked.filter((s) => s.startMs < nowMs + 48 * 3_600_000);
        const s = near.length > 0 && rng() < 0.35 ? pick(rng, near) : pick(rng, booked);
        const how = rng();
        counts.cancel++;
        change = () => {
          s.live = false;
          if (how < 0.5) {
            emu.deleteEvent(t.calId, s.eventId);
            return { eventId: s.eventId, kinds: ['cancelled'] };
          }
          if (how < 0.8 || !s.client.invited) {
            emu.patchEvent(t.calId, s.eventId, { summary: `${s.startMs - nowMs < 24 * 3_600_000 ? 'LC' : 'CX'} ${s.title}` });
            return { eventId: s.eventId, kinds: ['cancelled'] };
          }
          emu.patchEvent(t.calId, s.eventId, { attendees: attendeesOf(t, s.client, 'declined') });
          return { eventId: s.eventId, kinds: ['declined', 'cancelled'] };
        };
      } else if (roll < 0.75 && booked.length > 0) {
        const s = pick(rng, booked);
        const day = DateTime.fromMillis(s.startMs, { zone: TZ });
        let to = day.set({ hour: 9 + Math.floor(rng() * 11) }).plus({ days: Math.floor(rng() * 3) - 1 });
        if (to.weekday > 5) to = to.minus({ days: 2 });
        if (to.toMillis() === s.startMs || to.toMillis() <= nowMs + 3_600_000) to = day.plus({ days: 1 });
        counts.reschedule++;
        change = () => {
          emu.patchEvent(t.calId, s.eventId, times(to.toMillis(), s.minutes));
          s.startMs = to.toMillis();
          return { eventId: s.eventId, kinds: ['rescheduled'] };
        };
      } else {
        // A new booking: one of the therapist's clients, in the next three weeks, 9:00–19:00.
        const c = pick(rng, t.clients);
        let at = DateTime.fromMillis(nowMs, { zone: TZ }).plus({ days: 1 + Math.floor(rng() * 20) }).set({ hour: 9 + Math.floor(rng() * 11), minute: 0, second: 0, millisecond: 0 });
        if (at.weekday > 5) at = at.plus({ days: 8 - at.weekday });
        const minutes = sessionMinutes(c, false);
        const title = sessionTitle(c, false);
        counts.book++;
        change = () => {
          const e = emu.insertEvent(t.calId, { summary: title, ...times(at.toMillis(), minutes), ...(c.invited ? { attendees: attendeesOf(t, c) } : {}) });
          const s: Session = { t, client: c, eventId: e['id'] as string, startMs: at.toMillis(), minutes, title, live: true };
          byTherapist.get(t)?.push(s);
          return { eventId: s.eventId, kinds: ['scheduled'] };
        };
      }
      syncedWhileWaiting = 0;
      let resolveFact!: (at: number) => void;
      const fact = new Promise<number>((r) => (resolveFact = r));
      const started = performance.now();
      const made = change();
      waiters.set(made.eventId, { kinds: made.kinds, resolve: resolveFact });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<number>((r) => (timer = setTimeout(() => r(-1), 20_000)));
      const at = await Promise.race([fact, timeout]);
      clearTimeout(timer);
      if (at < 0) throw new Error(`change ${i} (${made.kinds.join('/')} of ${made.eventId}) never became a fact`);
      latencies.push(at - started);
      // Other calendars synced first (the daily reconciliation came due in the same round).
      if (syncedWhileWaiting > 1) sharedRounds++;
      await quiet();
    }
    const pushMs = performance.now() - t0;
    stage(`${PUSH_CHANGES} pushed changes`, t0);
    const ledgers = await store.db.selectFrom('ledgers').select((eb) => eb.fn<number>('length', ['state']).as('bytes')).execute();
    const pushExtra = { samples: latencies.length, ...counts, samplesBehindOtherSyncs: sharedRounds, ledgerKBMedian: Math.round(median(ledgers.map((l) => Number(l.bytes))) / 1024), max: Math.round(Math.max(...latencies) * 10) / 10, simulatedHours: Math.round(clock.now().diff(NOW, 'hours').hours), wallSeconds: Math.round(pushMs / 100) / 10, seed };
    report(BENCH, 'notify_to_fact_p50_ms', percentile(latencies, 50), 'ms', pushExtra);
    report(BENCH, 'notify_to_fact_p99_ms', percentile(latencies, 99), 'ms', pushExtra);
    await worker.stop();
    worker = undefined;

    // tick_ms: one tick with nothing due (channels looked after, reconciliation checked, nothing queued).
    await emu.settled();
    const idleDeps: WorkerDeps = { store, connectors, log: silentLogger, clock, publicUrl };
    await tick(idleDeps, 'bench-idle');
    const ticks: number[] = [];
    for (let i = 0; i < IDLE_TICKS; i++) {
      const started = performance.now();
      const r = await tick(idleDeps, 'bench-idle');
      ticks.push(performance.now() - started);
      if (r.synced + r.presumed + r.actions.claimed + (r.channels?.created ?? 0) > 0) throw new Error(`an idle tick found work: ${JSON.stringify(r)}`);
    }
    const bare: number[] = [];
    for (let i = 0; i < IDLE_TICKS; i++) {
      const started = performance.now();
      await tick(idleDeps, 'bench-idle', { upkeep: false });
      bare.push(performance.now() - started);
    }
    report(BENCH, 'tick_ms', median(ticks), 'ms', { ticks: ticks.length, p99: Math.round(percentile(ticks, 99) * 100) / 100, withoutUpkeepMedian: Math.round(median(bare) * 100) / 100, calendars: practice.length, seed });

    // Most of it is PGlite's in-memory database (its files and WAL live in WebAssembly memory).
    const m = process.memoryUsage();
    report(BENCH, 'peak_rss_mb', process.resourceUsage().maxRSS / 1024, 'MB', { rssNowMB: Math.round(m.rss / 1_048_576), heapMB: Math.round(m.heapUsed / 1_048_576), arrayBuffersMB: Math.round(m.arrayBuffers / 1_048_576), seed });
  } finally {
    await worker?.stop();
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    await store.close();
    await emu.close();
  }
}
