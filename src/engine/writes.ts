// Calendar writes as engine actions: create an event with the client invited (optionally with a
// Meet or Teams link), change or delete it, and set the therapist's popup reminders on a session.
// Exactly once: the connector makes the same event for the same action key (connectors/port.ts).
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { NotFound } from '../../connectors/errors.js';
import type { CalendarConnector } from '../../connectors/port.js';
import type { LiveEvent } from '../../connectors/types.js';
import { readSnapshot } from '../store/snapshots.js';
import { sessionsAppearing } from './facts.js';
import { mayHaveHappened, type ActionPlugin, type ActionResult, type ActionRun, type PlannedAction } from './outbox.js';
import type { Kysely } from 'kysely';
import type { Keyring } from '../secrets.js';
import type { Database } from '../store/schema.js';
import type { ConnectionRow } from './platforms.js';

export const EVENT_CREATE = 'event.create';
export const EVENT_PATCH = 'event.patch';
export const EVENT_DELETE = 'event.delete';
export const SESSION_REMINDERS = 'session.reminders';

const instant = z.iso.datetime({ offset: true });
// Luxon asks the runtime whether it knows the zone (Intl.supportedValuesOf lists only canonical
// names and misses e.g. Asia/Kolkata, Europe/Kyiv, Etc/UTC, which platforms send).
const zone = z.string().min(1).refine((name) => IANAZone.isValidZone(name), 'must be an IANA time zone');
const attendee = z.strictObject({ email: z.email(), name: z.string().max(200).optional() });
const minutesList = z.array(z.number().int().min(0).max(40_320)).max(5, 'at most 5 reminders (Google)');
const tagName = z.string().regex(/^sk\.[a-z0-9_.-]{1,60}$/, 'a tag name of ours (sk.…, lower case)');

/** The stored copy of an event while it is live (not deleted or cancelled); null when it is gone or unknown. */
export async function liveEvent(db: Kysely<Database>, keyring: Keyring, ref: { calendarId: string; eventId: string }): Promise<LiveEvent | null> {
  const snapshot = await readSnapshot(db, keyring, ref);
  if (!snapshot || snapshot.status === 'deleted' || snapshot.status === 'cancelled') return null;
  return (snapshot.payload as LiveEvent | null) ?? null;
}

/**
 * On a platform where an organizer's change reaches the attendees (Graph), whether a change to this
 * event reaches no one: only when we know the event (its stored copy, with its attendees) and it
 * invites nobody but the therapist, or the therapist is not its organizer. Not knowing is a no.
 */
async function quietToWrite(run: Pick<ActionRun, 'store'>, calendarId: string, eventId: string): Promise<boolean> {
  const event = await liveEvent(run.store.db, run.store.keyring, { calendarId, eventId });
  if (!event) return false;
  if (event.organizer?.self === false) return true;
  return !(event.attendees ?? []).some((a) => !a.self);
}

/** The calendar of ours (keyed on the therapist) and the connection behind it; undefined when gone. */
export async function calendarOf(run: Pick<ActionRun, 'store' | 'action'>, calendarId: string): Promise<{ providerCalendarId: string; connection: ConnectionRow; zone: string | null } | undefined> {
  const row = await run.store.db
    .selectFrom('calendars as c')
    .innerJoin('connections as k', 'k.id', 'c.connection_id')
    .select(['c.provider_calendar_id', 'c.time_zone', 'k.id', 'k.provider', 'k.therapist_id'])
    .where('c.id', '=', calendarId)
    .where('c.therapist_id', '=', run.action.therapist_id)
    .executeTakeFirst();
  return row ? { providerCalendarId: row.provider_calendar_id, zone: row.time_zone, connection: { id: row.id, therapist_id: row.therapist_id, provider: row.provider } } : undefined;
}

// ---------------------------------------------------------------------------------------------

const createSchema = z
  .strictObject({
    calendarId: z.uuid(),
    start: instant,
    end: instant,
    timeZone: zone,
    onlineMeeting: z.boolean().default(false),
    notifyAttendees: z.boolean().default(true),
    reminderMinutes: minutesList.optional(),
    tags: z.record(tagName, z.string().max(1024)).optional(),
    // The secret part (sealed at rest).
    summary: z.string().min(1).max(1024),
    description: z.string().max(8192).optional(),
    location: z.string().max(1024).optional(),
    attendees: z.array(attendee).max(50),
  })
  .refine((p) => Date.parse(p.end) > Date.parse(p.start), { error: 'must end after it starts', path: ['end'] });
export type EventCreatePayload = z.input<typeof createSchema>;

/**
 * Creates an event on one of the therapist's calendars. The action's key is the event's key: a
 * redelivered action, a lost answer or a crash between the call and its record finds the event
 * made before instead of making a second (and a second Meet link).
 */
export const eventCreatePlugin: ActionPlugin<z.output<typeof createSchema>> = {
  kind: EVENT_CREATE,
  payload: createSchema,
  secretFields: ['summary', 'description', 'location', 'attendees'],
  onCrash: 'recover',
  async run(p, run): Promise<ActionResult> {
    const cal = await calendarOf(run, p.calendarId);
    if (!cal) return { status: 'cancelled', reason: 'the calendar is no longer connected' };
    const connector = await run.connectors.calendarConnector(cal.connection);
    const made = await connector.createEvent(
      cal.providerCalendarId,
      {
        key: run.action.idempotency_key,
        summary: p.summary,
        ...(p.description !== undefined ? { description: p.description } : {}),
        ...(p.location !== undefined ? { location: p.location } : {}),
        start: new Date(p.start),
        end: new Date(p.end),
        timeZone: p.timeZone,
        attendees: p.attendees,
        onlineMeeting: p.onlineMeeting,
        ...(p.reminderMinutes ? { reminderMinutes: p.reminderMinutes } : {}),
        ...(p.tags ? { tags: p.tags } : {}),
        notifyAttendees: p.notifyAttendees,
      },
      { mayExist: mayHaveHappened(run) },
    );
    // The join link is not kept here (the event carries it); only that there is one.
    return { status: 'done', externalRef: made.eventId, outcome: { created: made.created, onlineMeeting: made.meetingUrl !== null } };
  },
};

// ---------------------------------------------------------------------------------------------

const patchSchema = z
  .strictObject({
    calendarId: z.uuid(),
    eventId: z.string().min(1),
    notifyAttendees: z.boolean().default(false),
    start: instant.optional(),
    end: instant.optional(),
    timeZone: zone.optional(),
    reminderMinutes: minutesList.optional(),
    summary: z.string().min(1).max(1024).optional(),
    description: z.string().max(8192).nullable().optional(),
    location: z.string().max(1024).nullable().optional(),
  })
  .refine((p) => (p.start === undefined) === (p.end === undefined) && (p.start === undefined || p.timeZone !== undefined), {
    error: 'start and end go together, with timeZone',
    path: ['start'],
  });
export type EventPatchPayload = z.input<typeof patchSchema>;

/** Changes one of our events (a patch is the same patch again: safe to repeat). */
export const eventPatchPlugin: ActionPlugin<z.output<typeof patchSchema>> = {
  kind: EVENT_PATCH,
  payload: patchSchema,
  secretFields: ['summary', 'description', 'location'],
  onCrash: 'recover',
  async run(p, run): Promise<ActionResult> {
    const cal = await calendarOf(run, p.calendarId);
    if (!cal) return { status: 'cancelled', reason: 'the calendar is no longer connected' };
    const connector = await run.connectors.calendarConnector(cal.connection);
    if (!p.notifyAttendees && connector.writesNotifyAttendees && !(await quietToWrite(run, p.calendarId, p.eventId))) {
      // Graph has no sendUpdates=none (API-NOTES): the client would get an update nobody meant to send.
      return { status: 'cancelled', reason: 'asked not to notify the attendees, but on this platform the change would reach them' };
    }
    try {
      await connector.patchEvent(
        cal.providerCalendarId,
        p.eventId,
        {
          ...(p.summary !== undefined ? { summary: p.summary } : {}),
          ...(p.description !== undefined ? { description: p.description } : {}),
          ...(p.location !== undefined ? { location: p.location } : {}),
          ...(p.start !== undefined ? { start: new Date(p.start), end: new Date(p.end!), timeZone: p.timeZone! } : {}),
          ...(p.reminderMinutes !== undefined ? { reminderMinutes: p.reminderMinutes } : {}),
        },
        { notifyAttendees: p.notifyAttendees },
      );
    } catch (err) {
      if (err instanceof NotFound) return { status: 'cancelled', reason: 'the event is gone' };
      throw err;
    }
    return { status: 'done', externalRef: p.eventId };
  },
};

const deleteSchema = z.strictObject({ calendarId: z.uuid(), eventId: z.string().min(1), notifyAttendees: z.boolean().default(true) });
export type EventDeletePayload = z.input<typeof deleteSchema>;

/** Deletes one of our events (a hold no longer needed, a booking withdrawn); one already gone is done. */
export const eventDeletePlugin: ActionPlugin<z.output<typeof deleteSchema>> = {
  kind: EVENT_DELETE,
  payload: deleteSchema,
  onCrash: 'recover',
  async run(p, run): Promise<ActionResult> {
    const cal = await calendarOf(run, p.calendarId);
    if (!cal) return { status: 'cancelled', reason: 'the calendar is no longer connected' };
    const connector = await run.connectors.calendarConnector(cal.connection);
    await connector.deleteEvent(cal.providerCalendarId, p.eventId, { notifyAttendees: p.notifyAttendees });
    return { status: 'done', externalRef: p.eventId };
  },
};

// ---------------------------------------------------------------------------------------------

const remindersSchema = z.strictObject({ appointmentId: z.uuid(), calendarId: z.uuid(), eventId: z.string().min(1), minutes: minutesList });
export type SessionRemindersPayload = z.input<typeof remindersSchema>;

/**
 * The therapist's own popup reminders on a session's event. On Google they are the therapist's copy
 * only and written without an update to guests (API-NOTES: "they apply only to the authenticated
 * user's copy"). On Graph an organizer's PATCH of an invite with attendees reaches them as an update
 * (API-NOTES, Microsoft), so such an event is left alone and the action says why.
 */
export const sessionRemindersPlugin: ActionPlugin<z.output<typeof remindersSchema>> = {
  kind: SESSION_REMINDERS,
  payload: remindersSchema,
  onCrash: 'recover',
  /** The practice's popup reminders (sessionPopupMinutes) on each session as it appears on an event. */
  plan(facts, ctx) {
    const minutes = ctx.settings.sessionPopupMinutes;
    if (!minutes) return [];
    return sessionsAppearing(facts).map(
      (f): PlannedAction => ({
        kind: SESSION_REMINDERS,
        key: `${SESSION_REMINDERS}:${f.transition.key}`,
        factKey: f.transition.key,
        connectionId: f.calendar.connectionId,
        payload: { appointmentId: f.appointmentId, calendarId: f.state.calendarId, eventId: f.state.eventId, minutes },
      }),
    );
  },
  async run(p, run): Promise<ActionResult> {
    const db = run.store.db;
    const appt = await db
      .selectFrom('appointments')
      .select(['state', 'calendar_id', 'event_id'])
      .where('id', '=', p.appointmentId)
      .where('therapist_id', '=', run.action.therapist_id)
      .executeTakeFirst();
    if (!appt || appt.state !== 'scheduled' || appt.calendar_id !== p.calendarId || appt.event_id !== p.eventId) {
      return { status: 'cancelled', reason: 'no longer an upcoming session on this event' };
    }
    if (!(await liveEvent(db, run.store.keyring, { calendarId: p.calendarId, eventId: p.eventId }))) return { status: 'cancelled', reason: 'the event is gone' };
    const cal = await calendarOf(run, p.calendarId);
    if (!cal) return { status: 'cancelled', reason: 'the calendar is no longer connected' };
    const connector: CalendarConnector = await run.connectors.calendarConnector(cal.connection);
    if (connector.writesNotifyAttendees && !(await quietToWrite(run, p.calendarId, p.eventId))) {
      return { status: 'cancelled', reason: 'the session may be an invite the therapist sends: on this platform the change would reach the client as an update' };
    }
    try {
      await connector.patchEvent(cal.providerCalendarId, p.eventId, { reminderMinutes: p.minutes }, { notifyAttendees: false });
    } catch (err) {
      if (err instanceof NotFound) return { status: 'cancelled', reason: 'the event is gone' };
      throw err;
    }
    return { status: 'done', externalRef: p.eventId };
  },
};
