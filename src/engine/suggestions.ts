// Suggestions for one client from the store: the therapist's busy time (every synced calendar but the
// ignored ones, and our own pending holds: bookings whose event is not synced yet), their booked
// sessions (for the caps and a compact evening) and the client's kept sessions (their habit), put
// through the pure slot finder (src/scheduling/). Keyed on the therapist the client belongs to. A
// session being moved (a link about it) leaves its own time free for its move, and not offered back.
import type { Kysely } from 'kysely';
import type { PracticeSettings } from '../config.js';
import { InvalidInput } from '../errors.js';
import { availabilityOf } from '../scheduling/availability.js';
import { freeSlots, isOutOfHours, suggest, type Availability, type Busy, type Mode, type Slot, type Suggestion } from '../scheduling/slots.js';
import type { Database } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { therapistContext, type FactCalendar, type TherapistContext } from './facts.js';
import { EVENT_PATCH } from './writes.js';

export type AppointmentType = PracticeSettings['appointmentTypes'][number];

export interface ClientSuggestions {
  therapistId: string;
  zone: string;
  appointmentType: { id: string; name: string; minutes: number; modes: readonly Mode[] };
  suggestions: Suggestion[];
}

/** How many of the client's last kept sessions make their habit. */
const HABIT_SESSIONS = 10;

/**
 * A session a client is moving from a link about it: the appointments row and its event. Its own busy
 * time (the event, the row, a move of it not synced yet) counts as free for its move, so 6 pm can
 * become 7 pm the same evening; its current start is not offered back as a new time.
 */
export interface MovingSession {
  appointmentId: string;
  calendarId: string;
  eventId: string;
  start: Date;
  end: Date;
}

/**
 * The therapist's rules and calendars, and the clock their times are read on: their own zone, else
 * their practice calendar's (where their hours are kept), else the practice's. Slots, the booking page
 * and their follow-up tasks all use it.
 */
export async function therapistClock(db: Kysely<Database>, therapistId: string): Promise<{ ctx: TherapistContext; calendars: FactCalendar[]; home: FactCalendar | undefined; zone: string }> {
  const ctx = await therapistContext(db, therapistId);
  const therapist = await db.selectFrom('therapists').select('time_zone').where('id', '=', therapistId).executeTakeFirstOrThrow();
  const calendars = [...ctx.calendars.values()];
  const home = calendars.find((c) => c.role === 'practice') ?? calendars.find((c) => c.role === 'mixed');
  return { ctx, calendars, home, zone: therapist.time_zone ?? home?.timeZone ?? ctx.settings.timeZone };
}

/** What a therapist's time looks like from the store: their zone, hours, busy time and holds. */
export interface TherapistSchedule {
  therapistId: string;
  settings: PracticeSettings;
  zone: string;
  availability: Availability;
  busy: Busy[];
  /** The calendar sessions are booked on: the practice calendar, else the first mixed one. */
  home: FactCalendar | undefined;
  calendars: FactCalendar[];
  /** The session being moved, whose busy time was left out (null: a new booking). */
  moving: MovingSession | null;
}

/**
 * The therapist's schedule from now to the horizon. Busy: every calendar not ignored, their booked
 * sessions, and our holds (pendingHolds: bookings and moves not synced back yet). With `moving`, that
 * session's own event, row and pending moves are left out: its time is free for its own move.
 */
export async function therapistSchedule(
  db: Kysely<Database>,
  therapistId: string,
  now: Date,
  opts: { moving?: MovingSession | null } = {},
): Promise<TherapistSchedule> {
  const moving = opts.moving ?? null;
  const { ctx, calendars, home, zone } = await therapistClock(db, therapistId);
  const availability = availabilityOf(ctx.settings, zone);
  const until = new Date(now.getTime() + (availability.horizonDays + 2) * 86_400_000);
  const busyRows = await db
    .selectFrom('event_snapshots as s')
    .innerJoin('calendars as c', 'c.id', 's.calendar_id')
    .select(['s.start_at', 's.end_at'])
    .where('c.therapist_id', '=', therapistId)
    .where('c.role', '!=', 'ignored')
    .where('s.busy', '=', true)
    .where('s.status', 'not in', ['cancelled', 'deleted'])
    .where('s.end_at', '>', now)
    .where('s.start_at', '<', until)
    .$if(moving !== null, (q) => q.where((eb) => eb.not(eb.and([eb('s.calendar_id', '=', moving!.calendarId), eb('s.event_id', '=', moving!.eventId)]))))
    .execute();
  const sessions = await db
    .selectFrom('appointments')
    .select(['start_at', 'end_at'])
    .where('therapist_id', '=', therapistId)
    .where('state', '=', 'scheduled')
    .where('end_at', '>', now)
    .where('start_at', '<', until)
    .$if(moving !== null, (q) => q.where('id', '!=', moving!.appointmentId))
    .execute();
  // An earlier move of the same session not synced yet is that session too: free for this move.
  const holds = (await pendingHolds(db, therapistId, now, until)).filter((h) => !moving || h.movesAppointmentId !== moving.appointmentId);
  const busy: Busy[] = [
    ...busyRows.filter((r) => r.start_at && r.end_at).map((r) => ({ start: r.start_at!.getTime(), end: r.end_at!.getTime(), session: false })),
    ...sessions.map((r) => ({ start: r.start_at.getTime(), end: r.end_at.getTime(), session: true })),
    ...holds.map((h) => ({ start: h.start.getTime(), end: h.end.getTime(), session: true })),
  ];
  return { therapistId, settings: ctx.settings, zone, availability, busy, home, calendars, moving };
}

export interface Hold {
  id: string;
  start: Date;
  end: Date;
  /** A move of this session (its new time), or null for a new session. */
  movesAppointmentId: string | null;
}

/**
 * Our bookings that hold time. A new session: its event is being made, or made and not synced back
 * yet (then the synced copy stands for it). A move: its new time, from the booking until the
 * session's row shows that start once (then the row stands for it; a later change of the session by
 * the therapist is theirs, the hold does not come back). The session's old time is its row's, not the
 * hold's: counted once. Only a session's newest move holds (a second link's move replaces the first).
 */
export async function pendingHolds(db: Kysely<Database>, therapistId: string, from: Date, to: Date): Promise<Hold[]> {
  const created = await db
    .selectFrom('bookings as b')
    .innerJoin('actions as a', 'a.id', 'b.action_id')
    .leftJoin('event_snapshots as s', (j) => j.onRef('s.calendar_id', '=', 'b.calendar_id').onRef('s.event_id', '=', 'a.external_ref'))
    .select(['b.id', 'b.start_at', 'b.end_at'])
    .where('b.therapist_id', '=', therapistId)
    .where('b.moves_appointment_id', 'is', null)
    .where('a.kind', '!=', EVENT_PATCH)
    .where('a.status', 'not in', ['failed', 'cancelled'])
    .where('s.event_id', 'is', null)
    .where('b.end_at', '>', from)
    .where('b.start_at', '<', to)
    .execute();
  const holds: Hold[] = created.map((r) => ({ id: r.id, start: r.start_at, end: r.end_at, movesAppointmentId: null }));
  // Moves whose time is still ahead (not only those in range: a newer move elsewhere replaces an older one).
  const moves = await db
    .selectFrom('bookings as b')
    .innerJoin('actions as a', 'a.id', 'b.action_id')
    .innerJoin('appointments as p', 'p.id', 'b.moves_appointment_id')
    .select(['b.id', 'b.start_at', 'b.end_at', 'b.created_at', 'b.moves_appointment_id', 'p.start_at as session_start'])
    .where('b.therapist_id', '=', therapistId)
    .where('p.therapist_id', '=', therapistId)
    .where('p.state', '=', 'scheduled')
    .where('a.status', 'not in', ['failed', 'cancelled'])
    .where('b.end_at', '>', from)
    .orderBy('b.created_at', 'desc')
    .orderBy('b.id')
    .execute();
  const newest = new Map<string, (typeof moves)[number]>();
  for (const m of moves) if (!newest.has(m.moves_appointment_id!)) newest.set(m.moves_appointment_id!, m);
  const waiting = [...newest.values()].filter((m) => m.session_start.getTime() !== m.start_at.getTime());
  if (waiting.length === 0) return holds;
  // Shown once already: a reschedule of the session to this start, recorded since the booking.
  const shown = await db
    .selectFrom('appointment_transitions')
    .select(['appointment_id', 'detail', 'recorded_at'])
    .where('therapist_id', '=', therapistId)
    .where('kind', '=', 'rescheduled')
    .where('appointment_id', 'in', waiting.map((m) => m.moves_appointment_id!))
    .where('recorded_at', '>=', new Date(Math.min(...waiting.map((m) => m.created_at.getTime()))))
    .execute();
  for (const m of waiting) {
    const seen = shown.some(
      (t) => t.appointment_id === m.moves_appointment_id && t.recorded_at.getTime() >= m.created_at.getTime() && Date.parse(String(t.detail['to'])) === m.start_at.getTime(),
    );
    if (seen || m.start_at.getTime() >= to.getTime()) continue;
    holds.push({ id: m.id, start: m.start_at, end: m.end_at, movesAppointmentId: m.moves_appointment_id });
  }
  return holds;
}

/**
 * The appointment type for a client: the one asked for, else the type of their last session, else
 * the practice's second type (the usual session), else the first. Refuses an unknown type or a mode
 * the type is not offered in.
 */
export async function clientAppointmentType(
  db: Kysely<Database>,
  settings: PracticeSettings,
  input: { therapistId: string; clientId: string; typeId?: string | null; mode?: Mode },
): Promise<AppointmentType> {
  const types = settings.appointmentTypes;
  const last = await db
    .selectFrom('appointments')
    .select('appointment_type')
    .where('therapist_id', '=', input.therapistId)
    .where('client_id', '=', input.clientId)
    .orderBy('start_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  const type = (input.typeId ? types.find((t) => t.id === input.typeId) : undefined) ?? types.find((t) => t.id === last?.appointment_type) ?? types[1] ?? types[0]!;
  if (input.typeId && type.id !== input.typeId) throw new InvalidInput('no such appointment type', [{ path: 'type', message: `the practice has no type "${input.typeId}" (it has ${types.map((t) => t.id).join(', ')})` }]);
  if (input.mode && !type.modes.includes(input.mode)) throw new InvalidInput('mode not offered', [{ path: 'mode', message: `${type.name} is not offered ${input.mode === 'in_person' ? 'in person' : 'by telehealth'}` }]);
  return type;
}

/** A slot with only the modes the appointment type is offered in (a window may offer more). */
function inTypeModes<S extends Slot>(slot: S, type: AppointmentType): S {
  return { ...slot, modes: slot.modes.filter((m) => type.modes.includes(m)) };
}

/** Whether a slot is the moving session's current time (not a new time to move it to). */
const ownTime = (schedule: TherapistSchedule, s: Slot) => schedule.moving !== null && s.start === schedule.moving.start.getTime();

/**
 * The free slots of one type for a schedule, each with only the modes the type allows; for a move
 * (schedule.moving), without the session's own current time.
 */
export function typeSlots(schedule: TherapistSchedule, type: AppointmentType, now: Date, mode?: Mode): Slot[] {
  return freeSlots(schedule.availability, schedule.busy, { minutes: type.minutes, typeId: type.id, now: now.getTime(), ...(mode ? { mode } : {}) })
    .map((s) => inTypeModes(s, type))
    .filter((s) => s.modes.length > 0 && !ownTime(schedule, s));
}

/**
 * The top k of ranked suggestions as suggest() picks them (scheduling/slots.ts): best first, one a
 * day while there are days enough, then the best of the rest. Used when a slot is taken out of the
 * full ranking (a moving session's own time), so its day still gets its next best time.
 */
/**
 * The client's k best times. With `moving` (or a schedule made with it), the session's own time is
 * free for its move and its current start is not among them.
 */
export async function suggestForClient(
  store: Store,
  input: {
    therapistId: string;
    clientId: string;
    now: Date;
    k: number;
    typeId?: string | null;
    mode?: Mode;
    schedule?: TherapistSchedule;
    moving?: MovingSession | null;
    /** Only evening and weekend times (scheduling/slots.ts isOutOfHours). */
    outOfHours?: boolean;
  },
): Promise<ClientSuggestions> {
  const db = store.db;
  const client = await db.selectFrom('clients').select('id').where('id', '=', input.clientId).where('therapist_id', '=', input.therapistId).executeTakeFirst();
  if (!client) throw new InvalidInput('no such client', [{ path: 'client', message: `no client ${input.clientId} of this therapist` }]);
  const schedule = input.schedule ?? (await therapistSchedule(db, input.therapistId, input.now, { moving: input.moving ?? null }));
  const type = await clientAppointmentType(db, schedule.settings, input);
  const kept = await db
    .selectFrom('appointments')
    .select('start_at')
    .where('therapist_id', '=', input.therapistId)
    .where('client_id', '=', input.clientId)
    .where('state', '=', 'attended')
    .orderBy('start_at', 'desc')
    .limit(HABIT_SESSIONS)
    .execute();
  // A type offered in one mode only is suggested in that mode (windows of the other mode do not count).
  const mode = input.mode ?? (type.modes.length === 1 ? type.modes[0] : undefined);
  // A move never offers the session's own time.
  const only = (s: Slot) => !ownTime(schedule, s) && (!input.outOfHours || isOutOfHours(s));
  const suggestions = suggest(schedule.availability, schedule.busy, {
    minutes: type.minutes,
    typeId: type.id,
    now: input.now.getTime(),
    k: input.k,
    habit: { starts: kept.map((r) => r.start_at.getTime()) },
    ...(mode ? { mode } : {}),
    ...(schedule.moving || input.outOfHours ? { only } : {}),
  }).map((s) => inTypeModes(s, type));
  return {
    therapistId: input.therapistId,
    zone: schedule.zone,
    appointmentType: { id: type.id, name: type.name, minutes: type.minutes, modes: type.modes },
    suggestions,
  };
}
