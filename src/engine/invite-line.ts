// The invite's own line, where the practice turns it on (inviteChangeLine): "Need to change this time?
// <link>" at the end of a session's description, the link moving that session. Written when a session
// appears or moves, removed when it is cancelled. Google writes it without an update email; on Outlook an
// organizer's edit reaches the attendees as an update (API-NOTES), so there it is written only when the
// practice accepts that update (outlookUpdates).
import { sql } from 'kysely';
import { z } from 'zod';
import { NotFound } from '../../connectors/errors.js';
import type { LiveEvent } from '../../connectors/types.js';
import { therapistSettings } from '../store/practices.js';
import { readSnapshot } from '../store/snapshots.js';
import { createBookingLink } from './booking.js';
import { clientContact } from './contacts.js';
import { sessionsAppearing } from './facts.js';
import type { ActionPlugin, ActionResult, PlannedAction } from './outbox.js';
import { calendarOf } from './writes.js';

export const INVITE_LINE = 'invite.line';
export const INVITE_LINE_TEXT = 'Need to change this time?';

const payloadSchema = z.strictObject({
  appointmentId: z.uuid(),
  /** Write the line (true) or take it away (false). */
  set: z.boolean(),
  /** The session moved or came back on: a new link (the old one may be used or too short). */
  renew: z.boolean().default(false),
});

const factOf = (appointmentId: string) => `invite:${appointmentId}`;

export const inviteLinePlugin: ActionPlugin<z.output<typeof payloadSchema>> = {
  kind: INVITE_LINE,
  payload: payloadSchema,
  // Writing the same line again (or taking it away again) is harmless: a retry after a crash just does it.
  onCrash: 'recover',
  plan(facts, ctx) {
    if (!ctx.settings.inviteChangeLine.enabled) return [];
    const planned: PlannedAction[] = [];
    const appearing = new Set(sessionsAppearing(facts).map((f) => f.transition.key));
    for (const f of facts) {
      if (!f.clientId || !f.calendar || f.calendar.role === 'busy_only') continue;
      const k = f.transition.kind;
      // Appearing, moved to another time, or back on: the line (a new link, valid until the session).
      const set = appearing.has(f.transition.key) || ((k === 'rescheduled' || k === 'restored') && f.state.status === 'scheduled' && !f.state.movedTo);
      const remove = k === 'cancelled' || k === 'declined';
      if (!set && !remove) continue;
      planned.push({
        kind: INVITE_LINE,
        key: `${INVITE_LINE}:${f.transition.key}`,
        factKey: factOf(f.appointmentId),
        connectionId: f.calendar.connectionId,
        payload: { appointmentId: f.appointmentId, set, renew: set && !appearing.has(f.transition.key) },
      });
    }
    return planned;
  },
  async run(p, run): Promise<ActionResult> {
    const db = run.store.db;
    const therapistId = run.action.therapist_id;
    const appt = await db
      .selectFrom('appointments')
      .select(['state', 'calendar_id', 'event_id', 'client_id', 'start_at', 'end_at'])
      .where('id', '=', p.appointmentId)
      .where('therapist_id', '=', therapistId)
      .executeTakeFirst();
    if (!appt) return { status: 'cancelled', reason: 'the session is gone' };
    const settings = await therapistSettings(db, therapistId);
    const cal = await calendarOf(run, appt.calendar_id);
    if (!cal) return { status: 'cancelled', reason: 'the calendar is no longer connected' };
    const connector = await run.connectors.calendarConnector(cal.connection);
    if (connector.writesNotifyAttendees && !settings.inviteChangeLine.outlookUpdates) {
      return { status: 'cancelled', reason: 'on Outlook the change would reach the client as an update, which the practice has not accepted (inviteChangeLine.outlookUpdates)' };
    }
    const snapshot = await readSnapshot(db, run.store.keyring, { calendarId: appt.calendar_id, eventId: appt.event_id });
    const event = snapshot?.payload as LiveEvent | null | undefined;
    // An event a booking made carries its line from the start (booking.ts), with a link that moves it.
    const booked = event?.tags?.['sk.booking'] !== undefined;
    if (!p.set) {
      // Back on since (restored, its line written again): a late removal must not take that away.
      if (appt.state === 'scheduled' && appt.start_at.getTime() > run.now.getTime()) return { status: 'cancelled', reason: 'the session is on again' };
      // Only a line we wrote is taken away (there is nothing else of ours in the description).
      const wrote = booked || await db
        .selectFrom('actions')
        .select('id')
        .where('therapist_id', '=', therapistId)
        .where('fact_key', '=', factOf(p.appointmentId))
        .where('kind', '=', INVITE_LINE)
        .where(sql<string>`payload->>'set'`, '=', 'true')
        .where('status', '=', 'done')
        .executeTakeFirst();
      if (!wrote) return { status: 'cancelled', reason: 'no line of ours was written on this invite' };
      try {
        const r = await connector.setDescriptionLine(cal.providerCalendarId, appt.event_id, null, { notifyAttendees: false });
        return { status: 'done', outcome: { removed: r.changed } };
      } catch (err) {
        if (err instanceof NotFound) return { status: 'done', outcome: { removed: false, gone: true } };
        throw err;
      }
    }
    if (!settings.inviteChangeLine.enabled) return { status: 'cancelled', reason: 'the practice turned the line off' };
    if (appt.state !== 'scheduled' || appt.start_at.getTime() <= run.now.getTime() || !appt.client_id) return { status: 'cancelled', reason: 'no longer an upcoming session' };
    if (!event || snapshot?.status === 'deleted' || snapshot?.status === 'cancelled') return { status: 'cancelled', reason: 'the event is gone' };
    // The line is for the client's copy of the invite: none when the client is not invited, and the
    // therapist cannot write into an invite the client sent.
    if (!(event.attendees ?? []).some((a) => !a.self)) return { status: 'cancelled', reason: 'the client is not invited to this event: there is no invite to write on' };
    if (event.organizer?.self === false) return { status: 'cancelled', reason: 'the client organizes this event: the line would not reach them' };
    if (booked && !p.renew) return { status: 'cancelled', reason: 'booked online: the invite has carried its line since it was made' };
    const contact = await clientContact(db, run.store.keyring, therapistId, appt.client_id);
    if (contact.emails.length === 0) return { status: 'cancelled', reason: 'no email address is known for the client, so no link could be made' };
    // One link per action: a retry (the answer to the write was lost) writes the same line, no change,
    // so an Outlook client gets no second update.
    const link = await createBookingLink(run.store, {
      therapistId,
      clientId: appt.client_id,
      factKey: `${factOf(p.appointmentId)}~${run.action.id}`,
      appointmentId: p.appointmentId,
      validUntil: appt.end_at,
      reuse: true,
      now: run.now,
      publicUrl: run.publicUrl,
    });
    try {
      const r = await connector.setDescriptionLine(cal.providerCalendarId, appt.event_id, { text: INVITE_LINE_TEXT, url: link.url }, { notifyAttendees: false });
      return { status: 'done', outcome: { written: r.changed } };
    } catch (err) {
      if (err instanceof NotFound) return { status: 'cancelled', reason: 'the event is gone' };
      throw err;
    }
  },
};
