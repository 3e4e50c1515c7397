// Suggestions for one client from the store: the therapist's busy time (every synced calendar but the
// ignored ones, and our own pending holds: bookings whose event is not synced yet), their booked
// sessions (for the caps and a compact evening) and the client's kept sessions (their habit), put
// through the pure slot finder (src/scheduling/). Keyed on the therapist the client belongs to.
import type { Kysely } from 'kysely';
import type { PracticeSettings } from '../config.js';
import { InvalidInput } from '../errors.js';
import { availabilityOf } from '../scheduling/availability.js';
import { freeSlots, suggest, type Availability, type Busy, type Mode, type Slot, type Suggestion } from '../scheduling/slots.js';
import type { Database } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { therapistContext, type FactCalendar } from './facts.js';

export type AppointmentType = PracticeSettings['appointmentTypes'][number];

export interface ClientSuggestions {
  therapistId: string;
  zone: string;
  appointmentType: { id: string; name: string; minutes: number; modes: readonly Mode[] };
  suggestions: Suggestion[];
}

/** How many of the client's last kept sessions make their habit. */
const HABIT_SESSIONS = 10;

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
}

/**
 * The therapist's schedule from now to the horizon. Busy: every calendar not ignored, their booked
 * sessions, and our holds (bookings whose event.create is neither failed nor cancelled and whose
 * event has not come back through sync yet: once it has, the synced copy stands for it).
 */
export async function therapistSchedule(db: Kysely<Database>, therapistId: string, now: Date): Promise<TherapistSchedule> {
  const ctx = await therapistContext(db, therapistId);
  // The therapist's own zone, else their practice calendar's (where their hours are kept), else the practice's.
  const therapist = await db.selectFrom('therapists').select('time_zone').where('id', '=', therapistId).executeTakeFirstOrThrow();
  const calendars = [...ctx.calendars.values()];
  const home = calendars.find((c) => c.role === 'practice') ?? calendars.find((c) => c.role === 'mixed');
  const zone = therapist.time_zone ?? home?.timeZone ?? ctx.settings.timeZone;
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
    .execute();
  const sessions = await db
    .selectFrom('appointments')
    .select(['start_at', 'end_at'])
    .where('therapist_id', '=', therapistId)
    .where('state', '=', 'scheduled')
    .where('end_at', '>', now)
    .where('start_at', '<', until)
    .execute();
  const holds = await pendingHolds(db, therapistId, now, until);
  const busy: Busy[] = [
    ...busyRows.filter((r) => r.start_at && r.end_at).map((r) => ({ start: r.start_at!.getTime(), end: r.end_at!.getTime(), session: false })),
    ...sessions.map((r) => ({ start: r.start_at.getTime(), end: r.end_at.getTime(), session: true })),
    ...holds.map((h) => ({ start: h.start.getTime(), end: h.end.getTime(), session: true })),
  ];
  return { therapistId, settings: ctx.settings, zone, availability, busy, home, calendars };
}

/** Our bookings that hold time: their event is being made, or made and not synced back yet. */
export async function pendingHolds(db: Kysely<Database>, therapistId: string, from: Date, to: Date): Promise<{ id: string; start: Date; end: Date }[]> {
  const rows = await db
    .selectFrom('bookings as b')
    .innerJoin('actions as a', 'a.id', 'b.action_id')
    .leftJoin('event_snapshots as s', (j) => j.onRef('s.calendar_id', '=', 'b.calendar_id').onRef('s.event_id', '=', 'a.external_ref'))
    .select(['b.id', 'b.start_at', 'b.end_at'])
    .where('b.therapist_id', '=', therapistId)
    .where('a.status', 'not in', ['failed', 'cancelled'])
    .where('s.event_id', 'is', null)
    .where('b.end_at', '>', from)
    .where('b.start_at', '<', to)
    .execute();
  return rows.map((r) => ({ id: r.id, start: r.start_at, end: r.end_at }));
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

/** The free slots of one type for a schedule, each with only the modes the type allows. */
export function typeSlots(schedule: TherapistSchedule, type: AppointmentType, now: Date, mode?: Mode): Slot[] {
  return freeSlots(schedule.availability, schedule.busy, { minutes: type.minutes, typeId: type.id, now: now.getTime(), ...(mode ? { mode } : {}) })
    .map((s) => inTypeModes(s, type))
    .filter((s) => s.modes.length > 0);
}

export async function suggestForClient(
  store: Store,
  input: { therapistId: string; clientId: string; now: Date; k: number; typeId?: string | null; mode?: Mode; schedule?: TherapistSchedule },
): Promise<ClientSuggestions> {
  const db = store.db;
  const client = await db.selectFrom('clients').select('id').where('id', '=', input.clientId).where('therapist_id', '=', input.therapistId).executeTakeFirst();
  if (!client) throw new InvalidInput('no such client', [{ path: 'client', message: `no client ${input.clientId} of this therapist` }]);
  const schedule = input.schedule ?? (await therapistSchedule(db, input.therapistId, input.now));
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
  const suggestions = suggest(schedule.availability, schedule.busy, {
    minutes: type.minutes,
    typeId: type.id,
    now: input.now.getTime(),
    k: input.k,
    habit: { starts: kept.map((r) => r.start_at.getTime()) },
    ...(mode ? { mode } : {}),
  }).map((s) => inTypeModes(s, type));
  return {
    therapistId: input.therapistId,
    zone: schedule.zone,
    appointmentType: { id: type.id, name: type.name, minutes: type.minutes, modes: type.modes },
    suggestions,
  };
}
