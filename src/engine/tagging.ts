// The first action plug-in: a recognised session is tagged as ours on its event (a private extended
// property on Google, a single-value extended property on Graph), exactly once: a retry reads the
// tag back before writing. Where a write would reach the client (Graph), the mark stays in the store.
import { z } from 'zod';
import { NotFound } from '../../connectors/errors.js';
import { therapistSettings } from '../store/practices.js';
import { sessionsAppearing } from './facts.js';
import { mayHaveHappened, type ActionPlugin, type ActionResult, type PlannedAction } from './outbox.js';
import { calendarOf, liveEvent } from './writes.js';

/** The tag's name: its value is our appointment's id. */
export const TAG_OURS = 'sk.ours';
export const TAG_KIND = 'tag_session';

const payloadSchema = z.strictObject({ appointmentId: z.uuid(), calendarId: z.uuid(), eventId: z.string().min(1) });
type TagPayload = z.infer<typeof payloadSchema>;

export const tagSessionPlugin: ActionPlugin<TagPayload> = {
  kind: TAG_KIND,
  payload: payloadSchema,
  onCrash: 'recover',
  plan(facts) {
    return sessionsAppearing(facts).map(
      (f): PlannedAction => ({
        kind: TAG_KIND,
        key: `${TAG_KIND}:${f.transition.key}`,
        factKey: f.transition.key,
        connectionId: f.calendar.connectionId,
        payload: { appointmentId: f.appointmentId, calendarId: f.state.calendarId, eventId: f.state.eventId },
      }),
    );
  },
  async run(p, run): Promise<ActionResult> {
    const { store, connectors, action } = run;
    const db = store.db;
    const appt = await db
      .selectFrom('appointments')
      .select(['state', 'calendar_id', 'event_id'])
      .where('id', '=', p.appointmentId)
      .where('therapist_id', '=', action.therapist_id)
      .executeTakeFirst();
    if (!appt || appt.state === 'not_a_session' || appt.state === 'moved' || appt.calendar_id !== p.calendarId || appt.event_id !== p.eventId) {
      return { status: 'cancelled', reason: 'no longer a session on this event' };
    }
    const event = await liveEvent(db, store.keyring, { calendarId: p.calendarId, eventId: p.eventId });
    if (!event) return { status: 'cancelled', reason: 'the event is gone' };
    const cal = await calendarOf(run, p.calendarId);
    if (!cal) return { status: 'cancelled', reason: 'the calendar is no longer connected' };
    const connector = await connectors.calendarConnector(cal.connection);
    if (connector.writesNotifyAttendees && event.organizer?.self !== false && (event.attendees ?? []).some((a) => !a.self)) {
      // A write to an invite the therapist sends would reach the client as an update (API-NOTES,
      // Microsoft): the appointments row is our mark for such events.
      return { status: 'done', outcome: { markedIn: 'store' } };
    }
    let found = false;
    try {
      // A retry may follow a write whose answer was lost: read first, write only if it is not there.
      // (and after an operator's retry, which keeps the last error).
      if (mayHaveHappened(run)) found = (await connector.getTag(cal.providerCalendarId, p.eventId, TAG_OURS)) === p.appointmentId;
      if (!found) await connector.setTag(cal.providerCalendarId, p.eventId, TAG_OURS, p.appointmentId);
      // The visible mark, where the practice wants one (Outlook categories): read before written, so
      // a retry adds it once.
      const category = connector.addCategory ? (await therapistSettings(db, action.therapist_id)).outlookCategory : null;
      if (category) await connector.addCategory!(cal.providerCalendarId, p.eventId, category);
    } catch (err) {
      if (err instanceof NotFound) return { status: 'cancelled', reason: 'the event is gone' };
      throw err;
    }
    return { status: 'done', externalRef: p.eventId, outcome: { markedIn: 'event', ...(found ? { found } : {}) } };
  },
};
