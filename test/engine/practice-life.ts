// The reliability harness's practice: a seeded week of life (bookings, cancellations early and late,
// reschedules, declines, no-show marks) as platform-neutral steps, drivers that play them on the
// Google and Graph emulators, and what a run ends with (facts and actions) to compare runs by.
import { DateTime } from 'luxon';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/store/schema.js';

const TZ = 'America/New_York';

/** A small, seedable generator (mulberry32): the same seed, the same week. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Booking {
  ref: string;
  therapist: number;
  client: number;
  start: string;
  minutes: number;
  /** Invited by email (an attendee), or named in the title ("Jane D - session"). */
  invited: boolean;
}

export type Op =
  | { op: 'book'; b: Booking }
  | { op: 'cancel'; ref: string }
  | { op: 'move'; ref: string; start: string }
  | { op: 'decline'; ref: string }
  | { op: 'noshow'; ref: string };

export interface Step {
  at: string;
  ops: Op[];
}

export const clientName = (therapist: number, client: number) => `Client${String.fromCharCode(65 + therapist)}${client} Q`;
export const clientEmail = (therapist: number, client: number) => `client.${therapist}.${client}@mail.example`;

/**
 * A week from Monday `from` (a local morning): every client has a session booked first thing; then,
 * hour by hour, one or two things happen. Step times are whole hours, so no change lands near
 * another's lateness threshold by a few seconds of retries.
 */
export function practiceWeek(seed: number, opts: { therapists: number; clientsPer: number; from: string; steps?: number }): Step[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const from = DateTime.fromISO(opts.from, { zone: TZ });
  const live = new Map<string, Booking>();
  const steps: Step[] = [];
  const slotTaken = new Set<string>();
  const freeSlot = (therapist: number, notBefore: DateTime): DateTime => {
    for (;;) {
      const day = notBefore.startOf('day').plus({ days: 1 + Math.floor(r() * 6) });
      const start = day.set({ hour: 9 + Math.floor(r() * 11) });
      const k = `${therapist}|${start.toMillis()}`;
      if (day.weekday === 7 || slotTaken.has(k)) continue;
      slotTaken.add(k);
      return start;
    }
  };
  let n = 0;
  const booking = (therapist: number, client: number, notBefore: DateTime): Booking => ({
    ref: `b${++n}`,
    therapist,
    client,
    start: freeSlot(therapist, notBefore).toUTC().toISO()!,
    minutes: 50,
    invited: client % 2 === 0,
  });
  const first: Op[] = [];
  for (let t = 0; t < opts.therapists; t++) {
    for (let c = 0; c < opts.clientsPer; c++) {
      const b = booking(t, c, from.minus({ days: 1 }));
      live.set(b.ref, b);
      first.push({ op: 'book', b });
    }
  }
  steps.push({ at: from.toUTC().toISO()!, ops: first });
  const count = opts.steps ?? 40;
  for (let i = 1; i <= count; i++) {
    const at = from.plus({ hours: 3 * i });
    const ops: Op[] = [];
    // Not within a few hours of the late-cancellation line (24 h): a run that loses minutes to
    // crashes and retries must judge each cancellation as the clean run does.
    const future = [...live.values()].filter((b) => {
      const notice = Date.parse(b.start) - at.toMillis();
      return notice > 3_600_000 && (notice < 21 * 3_600_000 || notice > 28 * 3_600_000);
    });
    const past = [...live.values()].filter((b) => Date.parse(b.start) + b.minutes * 60_000 < at.toMillis());
    const roll = r();
    if (roll < 0.3 && future.length > 0) {
      const b = pick(future);
      live.delete(b.ref);
      ops.push({ op: 'cancel', ref: b.ref });
    } else if (roll < 0.5 && future.length > 0) {
      const b = pick(future);
      b.start = freeSlot(b.therapist, at).toUTC().toISO()!;
      ops.push({ op: 'move', ref: b.ref, start: b.start });
    } else if (roll < 0.6 && future.some((b) => b.invited)) {
      const b = pick(future.filter((x) => x.invited));
      live.delete(b.ref);
      ops.push({ op: 'decline', ref: b.ref });
    } else if (roll < 0.75 && past.length > 0) {
      const b = pick(past);
      live.delete(b.ref);
      ops.push({ op: 'noshow', ref: b.ref });
    } else {
      const b = booking(Math.floor(r() * opts.therapists), Math.floor(r() * opts.clientsPer), at);
      live.set(b.ref, b);
      ops.push({ op: 'book', b });
    }
    steps.push({ at: at.toUTC().toISO()!, ops });
  }
  return steps;
}

/** Plays operations at a platform (its emulator's own edits, as a therapist or client would make them). */
export interface Driver {
  apply(op: Op): void;
  /** The booking an event id belongs to (runs are compared by booking, not by platform ids). */
  refOf(eventId: string): string | undefined;
}

const localSlot = (startIso: string, minutes: number) => {
  const start = DateTime.fromISO(startIso, { zone: TZ });
  return { start: { dateTime: start.toISO(), timeZone: TZ }, end: { dateTime: start.plus({ minutes }).toISO(), timeZone: TZ } };
};

/** Google: therapist n's calendar is calendarIds[n]; the therapist organises every session. */
export function googleDriver(emu: { insertEvent(c: string, b: Record<string, unknown>): Record<string, unknown>; patchEvent(c: string, e: string, p: Record<string, unknown>): Record<string, unknown>; deleteEvent(c: string, e: string): void }, calendarIds: readonly string[]): Driver {
  const ids = new Map<string, { cal: string; id: string; b: Booking; title: string }>();
  const attendees = (b: Booking, cal: string, response = 'accepted') => [
    { email: clientEmail(b.therapist, b.client), displayName: clientName(b.therapist, b.client), responseStatus: response },
    { email: cal, self: true, organizer: true, responseStatus: 'accepted' },
  ];
  return {
    apply(op) {
      if (op.op === 'book') {
        const cal = calendarIds[op.b.therapist]!;
        const title = op.b.invited ? 'Session' : `${clientName(op.b.therapist, op.b.client)} - session`;
        const e = g(emuInsert(emu, cal, { summary: title, ...localSlot(op.b.start, op.b.minutes), organizer: { email: cal, self: true }, ...(op.b.invited ? { attendees: attendees(op.b, cal) } : {}) }));
        ids.set(op.b.ref, { cal, id: e, b: op.b, title });
        return;
      }
      const e = ids.get(op.ref)!;
      if (op.op === 'cancel') emu.deleteEvent(e.cal, e.id);
      else if (op.op === 'move') emu.patchEvent(e.cal, e.id, localSlot(op.start, e.b.minutes));
      else if (op.op === 'decline') emu.patchEvent(e.cal, e.id, { attendees: attendees(e.b, e.cal, 'declined') });
      else emu.patchEvent(e.cal, e.id, { summary: `NS ${e.title}` });
    },
    refOf: (eventId) => [...ids].find(([, v]) => v.id === eventId)?.[0],
  };
}

function emuInsert(emu: { insertEvent(c: string, b: Record<string, unknown>): Record<string, unknown> }, cal: string, body: Record<string, unknown>) {
  return emu.insertEvent(cal, body);
}
const g = (e: Record<string, unknown>) => e['id'] as string;

/** Graph: therapist n is user oids[n]; sessions on the default calendar. */
export function graphDriver(
  emu: { createEvent(oid: string, cal: string, b: Record<string, unknown>): Record<string, unknown>; updateEvent(oid: string, e: string, p: Record<string, unknown>): Record<string, unknown>; deleteEvent(oid: string, e: string): void },
  users: readonly { oid: string; upn: string }[],
): Driver {
  const ids = new Map<string, { oid: string; id: string; b: Booking; title: string }>();
  const slot = (startIso: string, minutes: number) => {
    const start = DateTime.fromISO(startIso, { zone: TZ });
    const f = (d: DateTime) => d.toFormat("yyyy-MM-dd'T'HH:mm:ss");
    return { start: { dateTime: f(start), timeZone: 'Eastern Standard Time' }, end: { dateTime: f(start.plus({ minutes })), timeZone: 'Eastern Standard Time' } };
  };
  const attendees = (b: Booking, response = 'accepted') => [{ emailAddress: { address: clientEmail(b.therapist, b.client), name: clientName(b.therapist, b.client) }, type: 'required', status: { response, time: '0001-01-01T00:00:00Z' } }];
  return {
    apply(op) {
      if (op.op === 'book') {
        const u = users[op.b.therapist]!;
        const title = op.b.invited ? 'Session' : `${clientName(op.b.therapist, op.b.client)} - session`;
        const e = emu.createEvent(u.oid, 'default', { subject: title, ...slot(op.b.start, op.b.minutes), ...(op.b.invited ? { attendees: attendees(op.b) } : {}) });
        ids.set(op.b.ref, { oid: u.oid, id: e['id'] as string, b: op.b, title });
        return;
      }
      const e = ids.get(op.ref)!;
      if (op.op === 'cancel') emu.deleteEvent(e.oid, e.id);
      else if (op.op === 'move') emu.updateEvent(e.oid, e.id, slot(op.start, e.b.minutes));
      else if (op.op === 'decline') emu.updateEvent(e.oid, e.id, { attendees: attendees(e.b, 'declined') });
      else emu.updateEvent(e.oid, e.id, { subject: `NS ${e.title}` });
    },
    refOf: (eventId) => [...ids].find(([, v]) => v.id === eventId)?.[0],
  };
}

/**
 * What a run ends with, in a form two runs can be compared by: each fact (its stable key, kind, and
 * whether a cancellation was late: timing fields shift by the seconds retries take) and each action
 * (its key, kind and final status).
 */
export async function runResult(db: Kysely<Database>, driver: Driver): Promise<{ facts: string[]; actions: string[] }> {
  const rows = await db.selectFrom('calendars as c').innerJoin('connections as k', 'k.id', 'c.connection_id').select(['c.id', 'c.name', 'k.account_email']).execute();
  const calendars = new Map(rows.map((c) => [c.id, `${c.account_email}:${c.name}`]));
  // "calendarUuid/eventId#n:kind" → "account:calendar/booking#n:kind": the same in every run.
  const rename = (key: string) =>
    key.replace(/([0-9a-f-]{36})\/([^#~]+)/g, (_m, cal: string, event: string) => `${calendars.get(cal) ?? cal}/${driver.refOf(event) ?? event}`);
  // A reminder's key names the appointment row ("reminder:<uuid>:<start>:<offset>"): by its ledger key instead.
  const appointments = new Map((await db.selectFrom('appointments').select(['id', 'ledger_key']).execute()).map((a) => [a.id, rename(a.ledger_key ?? a.id)]));
  const renameAction = (key: string) => rename(key.replace(/^reminder:([0-9a-f-]{36}):/, (m, id: string) => `reminder:${appointments.get(id) ?? id}:`));
  const facts = await db.selectFrom('appointment_transitions').select(['key', 'kind', 'detail']).execute();
  const actions = await db.selectFrom('actions').select(['idempotency_key', 'kind', 'status']).execute();
  return {
    facts: facts.map((f) => `${rename(f.key)}${typeof f.detail['late'] === 'boolean' ? ` late=${String(f.detail['late'])}` : ''}`).sort(),
    // A reminder found due and then cancelled (the session changed before it went out) sent nothing,
    // as one never found due: whether a tick fell between the two is timing, not outcome.
    actions: actions.filter((a) => !(a.kind === 'client.reminder' && a.status === 'cancelled')).map((a) => `${renameAction(a.idempotency_key)} ${a.status}`).sort(),
  };
}

/**
 * A run's result as the clean run would have it, and its reminders left `unknown`: an email whose send
 * may or may not have gone out is never resent (DESIGN.md, Delivery), so a faulty or killed run may
 * end with some of them unknown where the clean run has them done. Any other unknown stays as it is.
 */
export function unknownRemindersAsDone(result: { facts: string[]; actions: string[] }): { result: { facts: string[]; actions: string[] }; unknown: number; done: number } {
  const unknown = result.actions.filter((a) => a.startsWith('reminder:') && a.endsWith(' unknown'));
  const done = result.actions.filter((a) => a.startsWith('reminder:') && a.endsWith(' done')).length;
  return { result: { ...result, actions: result.actions.map((a) => (unknown.includes(a) ? a.replace(/ unknown$/, ' done') : a)).sort() }, unknown: unknown.length, done };
}
