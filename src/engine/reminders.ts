// Reminders to clients, as engine actions derived from state: at every tick the upcoming sessions are
// asked which reminder is due (scheduling/reminders.ts: the practice's offsets, quiet hours on the
// client's clock), and one action per session, time and offset is recorded. When it runs it looks
// again: a session cancelled or moved since sends nothing. The email comes from the therapist's own
// mailbox, at most once, with the time in the client's zone, how to attend, an .ics and a link to
// choose another time.
import { DateTime } from 'luxon';
import { z } from 'zod';
import type { LiveEvent } from '../../connectors/types.js';
import type { PracticeSettings } from '../config.js';
import { zoneLabel } from '../domain/time.js';
import { dueReminder } from '../scheduling/reminders.js';
import { getPracticeSettings } from '../store/practices.js';
import { readSnapshot } from '../store/snapshots.js';
import type { Store } from '../store/store.js';
import { createBookingLink, sessionIcsUid } from './booking.js';
import { clientContact } from './contacts.js';
import { icsFile } from './ics.js';
import { sendAtMostOnce } from './mail.js';
import { connectionOf, type ActionPlugin, type ActionResult, type PlannedAction } from './outbox.js';

export const CLIENT_REMINDER = 'client.reminder';

/** The furthest offset a practice may set (config: 336 hours) and a day: how far ahead sessions are looked at. */
const LOOK_AHEAD_MS = (336 + 24) * 3_600_000;

const payloadSchema = z.strictObject({
  appointmentId: z.uuid(),
  /** The session's start when the reminder fell due: a session moved since is not reminded of by it. */
  start: z.iso.datetime({ offset: true }),
  offsetHours: z.number().positive(),
});

/** The key of a reminder: one per session, start and offset (a moved session gets its own). */
const reminderKey = (appointmentId: string, startMs: number, offsetHours: number) => `reminder:${appointmentId}:${startMs}:${offsetHours}`;
const factOf = (appointmentId: string) => `reminder:${appointmentId}`;

/** The reminders due now across the practice's therapists, from the appointments as they are. */
async function dueReminders(store: Store, now: Date): Promise<(PlannedAction & { therapistId: string })[]> {
  const db = store.db;
  const rows = await db
    .selectFrom('appointments as a')
    .innerJoin('therapists as t', 't.id', 'a.therapist_id')
    .innerJoin('calendars as c', 'c.id', 'a.calendar_id')
    .innerJoin('clients as cl', 'cl.id', 'a.client_id')
    .select(['a.id', 'a.therapist_id', 'a.start_at', 'a.time_zone', 'a.created_at', 'c.connection_id', 't.practice_id', 't.time_zone as therapist_zone', 'cl.time_zone as client_zone'])
    .where('a.state', '=', 'scheduled')
    .where('a.start_at', '>', now)
    .where('a.start_at', '<=', new Date(now.getTime() + LOOK_AHEAD_MS))
    .execute();
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  // When each session got its current time (its last scheduling or move, as recorded), and which
  // ones had a reminder go out already (for a time they no longer have).
  const since = new Map<string, number>();
  const changes = await db
    .selectFrom('appointment_transitions')
    .select(['appointment_id', (eb) => eb.fn.max('recorded_at').as('at')])
    .where('appointment_id', 'in', ids)
    .where('kind', 'in', ['scheduled', 'rescheduled', 'moved', 'restored'])
    .groupBy('appointment_id')
    .execute();
  for (const c of changes) since.set(c.appointment_id, new Date(c.at as unknown as string).getTime());
  const sent = await db
    .selectFrom('actions')
    .select(['fact_key', 'idempotency_key'])
    .where('kind', '=', CLIENT_REMINDER)
    .where('status', 'in', ['done', 'unknown'])
    .where('fact_key', 'in', ids.map(factOf))
    .execute();
  const sentFor = new Map<string, string[]>();
  for (const s of sent) sentFor.set(s.fact_key!, [...(sentFor.get(s.fact_key!) ?? []), s.idempotency_key]);
  const settings = new Map<string, PracticeSettings>();
  const out: (PlannedAction & { therapistId: string })[] = [];
  for (const r of rows) {
    let s = settings.get(r.practice_id);
    if (!s) settings.set(r.practice_id, (s = await getPracticeSettings(db, r.practice_id)));
    if (!s.reminderEmail.enabled || s.reminderOffsetsHours.length === 0) continue;
    const startMs = r.start_at.getTime();
    const zone = r.client_zone ?? r.time_zone ?? r.therapist_zone ?? s.timeZone;
    const earlier = (sentFor.get(factOf(r.id)) ?? []).some((k) => !k.startsWith(`reminder:${r.id}:${startMs}:`));
    const due = dueReminder(
      { startMs, offsetsHours: s.reminderOffsetsHours, quiet: s.quietHours, zone, since: since.get(r.id) ?? r.created_at.getTime(), catchUp: earlier },
      now.getTime(),
    );
    if (!due) continue;
    out.push({
      therapistId: r.therapist_id,
      kind: CLIENT_REMINDER,
      key: reminderKey(r.id, startMs, due.offsetHours),
      factKey: factOf(r.id),
      connectionId: r.connection_id,
      payload: { appointmentId: r.id, start: r.start_at.toISOString(), offsetHours: due.offsetHours },
    });
  }
  return out;
}

export interface ReminderValues {
  client: string;
  therapist: string;
  practice: string;
  date: string;
  time: string;
  zone: string;
  place: string;
  link: string;
  type: string;
}

/** A template with its placeholders filled in (checked when the settings were saved); blank runs of lines closed up. */
export function renderTemplate(template: string, values: ReminderValues): string {
  return template
    .replace(/\{([a-z]+)\}/g, (m, name: string) => (name in values ? values[name as keyof ReminderValues] : m))
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The text as HTML: escaped, its links made links, its lines kept. */
export function textToHtml(text: string): string {
  const body = escapeHtml(text)
    .replace(/https?:\/\/[^\s<]+/g, (url) => `<a href="${url}">${url}</a>`)
    .split('\n\n')
    .map((p) => `<p>${p.replace(/\n/g, '<br>')}</p>`)
    .join('\n');
  return `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5">${body}</body></html>`;
}

/** The values of a reminder for one session, in the client's zone. */
export function reminderValues(input: {
  clientName: string;
  therapistName: string;
  practiceName: string;
  typeName: string;
  startMs: number;
  zone: string;
  location: string | null;
  meetingUrl: string | null;
  link: string;
}): ReminderValues {
  const t = DateTime.fromMillis(input.startMs, { zone: input.zone, locale: 'en' });
  return {
    client: input.clientName || 'there',
    therapist: input.therapistName,
    practice: input.practiceName,
    date: t.toFormat('cccc d LLLL'),
    time: t.toFormat('h:mm a'),
    zone: zoneLabel(input.zone),
    place: input.meetingUrl ? `Join by video: ${input.meetingUrl}` : input.location ? `Where: ${input.location}` : '',
    link: input.link,
    type: input.typeName,
  };
}

export const clientReminderPlugin: ActionPlugin<z.output<typeof payloadSchema>> = {
  kind: CLIENT_REMINDER,
  payload: payloadSchema,
  // An email: a crash inside the send leaves it unknown, never sent twice.
  onCrash: 'unknown',
  due: dueReminders,
  async run(p, run): Promise<ActionResult> {
    const db = run.store.db;
    const appt = await db
      .selectFrom('appointments as a')
      .innerJoin('therapists as t', 't.id', 'a.therapist_id')
      .innerJoin('practices as pr', 'pr.id', 't.practice_id')
      .select(['a.state', 'a.start_at', 'a.end_at', 'a.client_id', 'a.calendar_id', 'a.event_id', 'a.appointment_type', 'a.time_zone', 't.display_name', 't.time_zone as therapist_zone', 'pr.id as practice_id', 'pr.name as practice_name'])
      .where('a.id', '=', p.appointmentId)
      .where('a.therapist_id', '=', run.action.therapist_id)
      .executeTakeFirst();
    // Looked at again now: a cancellation or a move after the reminder fell due sends nothing.
    if (!appt || appt.state !== 'scheduled') return { status: 'cancelled', reason: 'the session is no longer booked' };
    if (appt.start_at.getTime() !== Date.parse(p.start)) return { status: 'cancelled', reason: 'the session was moved; its new time has its own reminders' };
    if (run.now.getTime() >= appt.start_at.getTime()) return { status: 'cancelled', reason: 'the session has begun' };
    if (!appt.client_id) return { status: 'cancelled', reason: 'the session has no client' };
    const contact = await clientContact(db, run.store.keyring, run.action.therapist_id, appt.client_id);
    if (contact.emails.length === 0) return { status: 'cancelled', reason: 'no email address is known for the client' };
    const conn = await connectionOf(run);
    if (!conn) return { status: 'cancelled', reason: 'the connection is gone' };
    const settings = await getPracticeSettings(db, appt.practice_id);
    const zone = contact.zone ?? appt.time_zone ?? appt.therapist_zone ?? settings.timeZone;
    const snapshot = await readSnapshot(db, run.store.keyring, { calendarId: appt.calendar_id, eventId: appt.event_id });
    const event = snapshot?.payload as LiveEvent | null | undefined;
    // A link about this session: choosing another time moves it (not a second session), and works until it starts.
    const link = await createBookingLink(run.store, {
      therapistId: run.action.therapist_id,
      clientId: appt.client_id,
      factKey: factOf(p.appointmentId),
      appointmentId: p.appointmentId,
      validUntil: appt.start_at,
      now: run.now,
      publicUrl: run.publicUrl,
    });
    const values = reminderValues({
      clientName: contact.name,
      therapistName: appt.display_name ?? appt.practice_name,
      practiceName: appt.practice_name,
      typeName: settings.appointmentTypes.find((t) => t.id === appt.appointment_type)?.name ?? 'Appointment',
      startMs: appt.start_at.getTime(),
      zone,
      location: event?.location ?? null,
      meetingUrl: event?.onlineMeetingUrl ?? null,
      link: link.url,
    });
    const subject = renderTemplate(settings.reminderEmail.subject, values).replace(/\s*\n\s*/g, ' ');
    const text = renderTemplate(settings.reminderEmail.text, values);
    const ics = icsFile({
      uid: sessionIcsUid(p.appointmentId),
      // Later than any copy made before the session last changed (a move's confirmation, an earlier reminder).
      sequence: Math.floor(run.now.getTime() / 1000),
      start: appt.start_at,
      end: appt.end_at,
      stamp: run.now,
      summary: `${values.type} with ${values.therapist}`,
      ...(values.place ? { description: values.place } : {}),
      location: event?.location ?? null,
    });
    const sent = await sendAtMostOnce(run, conn, {
      to: contact.emails.map((email) => ({ email, ...(contact.name && contact.emails.length === 1 ? { name: contact.name } : {}) })),
      subject,
      text,
      html: textToHtml(text),
      attachments: [{ filename: 'appointment.ics', contentType: 'text/calendar; charset=utf-8; method=PUBLISH', content: ics }],
    });
    return { status: 'done', externalRef: sent.messageId, outcome: { sent: true, offsetHours: p.offsetHours } };
  },
};
