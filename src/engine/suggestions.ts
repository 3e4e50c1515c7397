// Suggestions for one client from the store: the therapist's busy time (every synced calendar but the
// ignored ones, and our own pending holds once booking makes them), their booked sessions (for the
// caps and a compact evening) and the client's kept sessions (their habit), put through the pure
// slot finder (src/scheduling/). Keyed on the therapist the client belongs to.
import { InvalidInput } from '../errors.js';
import { availabilityOf } from '../scheduling/availability.js';
import { suggest, type Busy, type Mode, type Suggestion } from '../scheduling/slots.js';
import type { Store } from '../store/store.js';
import { therapistContext } from './facts.js';

export interface ClientSuggestions {
  therapistId: string;
  zone: string;
  appointmentType: { id: string; name: string; minutes: number };
  suggestions: Suggestion[];
}

/** How many of the client's last kept sessions make their habit. */
const HABIT_SESSIONS = 10;

export async function suggestForClient(
  store: Store,
  input: { therapistId: string; clientId: string; now: Date; k: number; typeId?: string; mode?: Mode },
): Promise<ClientSuggestions> {
  const db = store.db;
  const client = await db.selectFrom('clients').select('id').where('id', '=', input.clientId).where('therapist_id', '=', input.therapistId).executeTakeFirst();
  if (!client) throw new InvalidInput('no such client', [{ path: 'client', message: `no client ${input.clientId} of this therapist` }]);
  const ctx = await therapistContext(db, input.therapistId);
  // The therapist's own zone, else their practice calendar's (where their hours are kept), else the practice's.
  const therapist = await db.selectFrom('therapists').select('time_zone').where('id', '=', input.therapistId).executeTakeFirstOrThrow();
  const calendars = [...ctx.calendars.values()];
  const home = calendars.find((c) => c.role === 'practice') ?? calendars.find((c) => c.role === 'mixed');
  const zone = therapist.time_zone ?? home?.timeZone ?? ctx.settings.timeZone;
  const types = ctx.settings.appointmentTypes;
  // The type of the client's last session, else the practice's second type (the usual session), else the first.
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

  const availability = availabilityOf(ctx.settings, zone);
  const now = input.now.getTime();
  const until = new Date(now + (availability.horizonDays + 2) * 86_400_000);
  const busyRows = await db
    .selectFrom('event_snapshots as s')
    .innerJoin('calendars as c', 'c.id', 's.calendar_id')
    .select(['s.start_at', 's.end_at'])
    .where('c.therapist_id', '=', input.therapistId)
    .where('c.role', '!=', 'ignored')
    .where('s.busy', '=', true)
    .where('s.status', 'not in', ['cancelled', 'deleted'])
    .where('s.end_at', '>', input.now)
    .where('s.start_at', '<', until)
    .execute();
  const sessions = await db
    .selectFrom('appointments')
    .select(['start_at', 'end_at'])
    .where('therapist_id', '=', input.therapistId)
    .where('state', '=', 'scheduled')
    .where('end_at', '>', input.now)
    .where('start_at', '<', until)
    .execute();
  const busy: Busy[] = [
    ...busyRows.filter((r) => r.start_at && r.end_at).map((r) => ({ start: r.start_at!.getTime(), end: r.end_at!.getTime(), session: false })),
    ...sessions.map((r) => ({ start: r.start_at.getTime(), end: r.end_at.getTime(), session: true })),
  ];
  const kept = await db
    .selectFrom('appointments')
    .select('start_at')
    .where('therapist_id', '=', input.therapistId)
    .where('client_id', '=', input.clientId)
    .where('state', '=', 'attended')
    .orderBy('start_at', 'desc')
    .limit(HABIT_SESSIONS)
    .execute();
  const suggestions = suggest(availability, busy, {
    minutes: type.minutes,
    now,
    k: input.k,
    habit: { starts: kept.map((r) => r.start_at.getTime()) },
    ...(input.mode ? { mode: input.mode } : {}),
  });
  return { therapistId: input.therapistId, zone, appointmentType: { id: type.id, name: type.name, minutes: type.minutes }, suggestions };
}
