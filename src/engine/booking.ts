// Rebooking from a link: the signed, expiring link a client gets (bound to practice, client, the fact
// that prompted it and the session it is about; single use for a booking), what the booking page
// shows, and the booking itself: free in our store and on the platform, one winner when two take the
// same time, the event made by the outbox's event.create with the client invited (or, for a link about
// a session, that session's event moved by event.patch), and a hold on the time until it is.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { DateTime, IANAZone } from 'luxon';
import { DEFAULT_LINE_TEXT } from '../../connectors/description-line.js';
import type { CalendarConnector } from '../../connectors/port.js';
import type { LiveEvent } from '../../connectors/types.js';
import { InvalidInput } from '../errors.js';
import type { Logger } from '../log.js';
import type { Mode, Suggestion } from '../scheduling/slots.js';
import type { Keyring } from '../secrets.js';
import { enqueueAction } from '../store/actions.js';
import { audit } from '../store/audit.js';
import { therapistSettings } from '../store/practices.js';
import type { Database } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { clientContact, practiceNames } from './contacts.js';
import { plannedAction, type PlannedAction } from './outbox.js';
import type { ConnectorFactory } from './platforms.js';
import { clientAppointmentType, suggestForClient, therapistSchedule, typeSlots, type AppointmentType, type MovingSession } from './suggestions.js';
import { EVENT_CREATE, EVENT_PATCH, liveEvent, type EventCreatePayload, type EventPatchPayload } from './writes.js';

const LINK_PURPOSE = 'booking-link-v1';
const TOKEN_VERSION = 1;
/** How long the platform's free/busy may take before we go on with what the store knows. */
const FREE_BUSY_TIMEOUT_MS = 5_000;
/** The booking page's suggestions (the issue: 8 for the page). */
export const PAGE_SUGGESTIONS = 8;
/** How far a link may be kept open for the session it is about (validUntil): an invite's link works until the session. */
const LINK_MAX_DAYS = 90;

export interface BookingLink {
  id: string;
  therapistId: string;
  practiceId: string;
  clientId: string;
  factKey: string;
  typeId: string | null;
  /** The session this link offers to move (a reminder's or an invite's link), else null. */
  appointmentId: string | null;
  expiresAt: Date;
}

export interface BookingView {
  id: string;
  start: Date;
  end: Date;
  /** The therapist's zone, and the client's as their browser said (if it did). */
  zone: string;
  clientZone: string | null;
  mode: Mode;
  typeName: string;
  location: string | null;
  /** confirming: the event is being made (or moved); confirmed: it is (the invitation or update went out); failed: it could not be. */
  status: 'confirming' | 'confirmed' | 'failed';
  /** The client's existing session was moved to this time (rather than a new one booked). */
  moved: boolean;
  /** Where it was moved from, when we still know (null for a new session, or a move whose old time is no longer on record). */
  movedFrom: Date | null;
  /** The session's own calendar file UID, for a move (its reminders' .ics use the same). */
  icsUid: string;
  /** When the booking was made: a move's .ics replaces the session's earlier copies by it (SEQUENCE). */
  madeAt: Date;
}

export type OpenedLink =
  | { state: 'invalid' }
  | { state: 'expired'; link: BookingLink }
  | { state: 'used'; link: BookingLink; booking: BookingView }
  | { state: 'open'; link: BookingLink; failed: BookingView | null };

// ---------------------------------------------------------------------------------------------
// The link

/**
 * The token: version, the link row's id, its expiry (seconds) and a MAC over them and what the row
 * binds (practice, client, fact, and the session it moves, if one), base64url. It says nothing about
 * the client: the row does. A changed row (another session, or none) no longer matches the MAC; a link
 * about no session signs what it signed before sessions were bound, so links already sent still open.
 */
function signedMessage(l: Pick<BookingLink, 'id' | 'practiceId' | 'clientId' | 'factKey' | 'appointmentId'>, expSeconds: number): string {
  return `${l.practiceId}|${l.clientId}|${l.factKey}|${l.id}|${expSeconds}${l.appointmentId ? `|session:${l.appointmentId}` : ''}`;
}

function encodeToken(keyring: Keyring, link: BookingLink): string {
  const exp = Math.floor(link.expiresAt.getTime() / 1000);
  const buf = Buffer.alloc(1 + 16 + 4);
  buf.writeUInt8(TOKEN_VERSION, 0);
  Buffer.from(link.id.replace(/-/g, ''), 'hex').copy(buf, 1);
  buf.writeUInt32BE(exp, 17);
  return Buffer.concat([buf, keyring.mac(signedMessage(link, exp), LINK_PURPOSE)]).toString('base64url');
}

function decodeToken(token: string): { id: string; exp: number; mac: Buffer } | null {
  if (!/^[A-Za-z0-9_-]{40,80}$/.test(token)) return null;
  const buf = Buffer.from(token, 'base64url');
  // Only the canonical spelling: the last character's spare bits are ignored by the decoder, so a
  // changed last character could otherwise still open the link.
  if (buf.length !== 1 + 16 + 4 + 16 || buf.readUInt8(0) !== TOKEN_VERSION || buf.toString('base64url') !== token) return null;
  const hex = buf.subarray(1, 17).toString('hex');
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { id, exp: buf.readUInt32BE(17), mac: buf.subarray(21) };
}

/**
 * Makes a booking link for a client of this therapist. `factKey` names what prompted it (a signal or
 * transition key) so the booking can close what it opened; '' for one asked for by hand.
 * `appointmentId` (a session of this therapist and client) makes it a link that moves that session
 * rather than booking another. `validUntil` keeps it open at least until then (an invite's link
 * until the session), at most LINK_MAX_DAYS ahead; it never closes sooner than bookingLinkDays.
 */
export async function createBookingLink(
  store: Store,
  input: {
    therapistId: string;
    clientId: string;
    factKey?: string;
    typeId?: string | null;
    appointmentId?: string | null;
    validUntil?: Date | null;
    /** Give back the live link made before for the same fact key, if there is one. */
    reuse?: boolean;
    now: Date;
    publicUrl?: string | undefined;
  },
): Promise<{ id: string; token: string; url: string; expiresAt: Date }> {
  const db = store.db;
  const owner = await db
    .selectFrom('clients as c')
    .innerJoin('therapists as t', 't.id', 'c.therapist_id')
    .select(['t.practice_id'])
    .where('c.id', '=', input.clientId)
    .where('c.therapist_id', '=', input.therapistId)
    .executeTakeFirst();
  if (!owner) throw new InvalidInput('no such client', [{ path: 'client', message: `no client ${input.clientId} of this therapist` }]);
  const contact = await clientContact(db, store.keyring, input.therapistId, input.clientId);
  if (contact.emails.length === 0) throw new InvalidInput('the client cannot book online', [{ path: 'client', message: 'we know no email address of this client, so a booking could not invite them' }]);
  const settings = await therapistSettings(db, input.therapistId);
  if (input.typeId) await clientAppointmentType(db, settings, { therapistId: input.therapistId, clientId: input.clientId, typeId: input.typeId });
  const appointmentId = input.appointmentId ?? null;
  if (appointmentId !== null) {
    const session = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(appointmentId)
      ? await db.selectFrom('appointments').select('id').where('id', '=', appointmentId).where('therapist_id', '=', input.therapistId).where('client_id', '=', input.clientId).executeTakeFirst()
      : undefined;
    if (!session) throw new InvalidInput('no such session', [{ path: 'session', message: `no session ${appointmentId} of this client with this therapist` }]);
  }
  const usual = DateTime.fromJSDate(input.now).plus({ days: settings.bookingLinkDays }).startOf('second').toMillis();
  // Up to the second after validUntil (the token keeps seconds), never past the cap.
  const wanted = input.validUntil ? Math.min(Math.ceil(input.validUntil.getTime() / 1000) * 1000, DateTime.fromJSDate(input.now).plus({ days: LINK_MAX_DAYS }).startOf('second').toMillis()) : 0;
  const expiresAt = new Date(Math.max(usual, wanted));
  // `reuse`: the link made before for the same fact (a retried action writes the same line again,
  // which is then no change, rather than a new link and a second update to the client).
  const earlier = input.reuse
    ? await db
        .selectFrom('booking_links')
        .select(['id', 'expires_at'])
        .where('therapist_id', '=', input.therapistId)
        .where('client_id', '=', input.clientId)
        .where('fact_key', '=', input.factKey ?? '')
        .where('expires_at', '>', input.now)
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst()
    : undefined;
  const row = earlier ?? await db
    .insertInto('booking_links')
    .values({
      therapist_id: input.therapistId,
      client_id: input.clientId,
      fact_key: input.factKey ?? '',
      appointment_type: input.typeId ?? null,
      appointment_id: appointmentId,
      expires_at: expiresAt,
      created_at: input.now,
    })
    .returning(['id', 'expires_at'])
    .executeTakeFirstOrThrow();
  const token = encodeToken(store.keyring, {
    id: row.id,
    therapistId: input.therapistId,
    practiceId: owner.practice_id,
    clientId: input.clientId,
    factKey: input.factKey ?? '',
    typeId: input.typeId ?? null,
    appointmentId,
    expiresAt: row.expires_at,
  });
  const base = input.publicUrl ?? 'http://localhost:8080';
  return { id: row.id, token, url: `${base}/book/${token}`, expiresAt: row.expires_at };
}

/**
 * The fact key of the link a booked event's invite carries (inviteChangeLine): made before the event,
 * so before its session has a row; the session is found through the booking when the link is opened.
 */
const SESSION_OF_BOOKING = 'session-of-booking:';

/** The session a booking made, once its event has come back through sync (null before). */
async function sessionOfBooking(db: Kysely<Database>, therapistId: string, bookingId: string): Promise<string | null> {
  const row = await db
    .selectFrom('bookings as b')
    .innerJoin('actions as a', 'a.id', 'b.action_id')
    .innerJoin('appointments as p', (j) => j.onRef('p.calendar_id', '=', 'b.calendar_id').onRef('p.event_id', '=', 'a.external_ref'))
    .select('p.id')
    .where('b.id', '=', bookingId)
    .where('b.therapist_id', '=', therapistId)
    .where('p.therapist_id', '=', therapistId)
    .executeTakeFirst();
  return row?.id ?? null;
}

/** Reads a link back: invalid (malformed, unknown, altered), expired, used (with its booking) or open. */
export async function openLink(db: Kysely<Database>, keyring: Keyring, token: string, now: Date): Promise<OpenedLink> {
  const decoded = decodeToken(token);
  if (!decoded) return { state: 'invalid' };
  const row = await db
    .selectFrom('booking_links as l')
    .innerJoin('therapists as t', 't.id', 'l.therapist_id')
    .select(['l.id', 'l.therapist_id', 'l.client_id', 'l.fact_key', 'l.appointment_type', 'l.appointment_id', 'l.expires_at', 't.practice_id'])
    .where('l.id', '=', decoded.id)
    .executeTakeFirst();
  if (!row) return { state: 'invalid' };
  const link: BookingLink = {
    id: row.id,
    therapistId: row.therapist_id,
    practiceId: row.practice_id,
    clientId: row.client_id,
    factKey: row.fact_key,
    typeId: row.appointment_type,
    appointmentId: row.appointment_id,
    expiresAt: row.expires_at,
  };
  if (decoded.exp !== Math.floor(link.expiresAt.getTime() / 1000) || !keyring.macMatches(signedMessage(link, decoded.exp), LINK_PURPOSE, decoded.mac)) return { state: 'invalid' };
  if (!link.appointmentId && link.factKey.startsWith(SESSION_OF_BOOKING)) link.appointmentId = await sessionOfBooking(db, link.therapistId, link.factKey.slice(SESSION_OF_BOOKING.length));
  const bookings = await linkBookings(db, link);
  const live = bookings.find((b) => b.status !== 'failed');
  if (live) return { state: 'used', link, booking: live };
  if (now.getTime() >= link.expiresAt.getTime()) return { state: 'expired', link };
  return { state: 'open', link, failed: bookings[0] ?? null };
}

/** The UID of a session's .ics (a reminder's attachment, a move's confirmation): the same session, one calendar entry. */
export const sessionIcsUid = (id: string) => `${id}@sessionkeeper`;

/** The bookings made from a link, newest first, with their status read off their event.create (or a move's event.patch) action. */
async function linkBookings(db: Kysely<Database>, link: BookingLink): Promise<BookingView[]> {
  const rows = await db
    .selectFrom('bookings as b')
    .innerJoin('actions as a', 'a.id', 'b.action_id')
    .select(['b.id', 'b.start_at', 'b.end_at', 'b.time_zone', 'b.client_zone', 'b.mode', 'b.appointment_type', 'b.location', 'b.moves_appointment_id', 'b.created_at', 'a.kind', 'a.status'])
    .where('b.link_id', '=', link.id)
    .where('b.therapist_id', '=', link.therapistId)
    .orderBy('b.created_at', 'desc')
    .execute();
  const settings = await therapistSettings(db, link.therapistId);
  return Promise.all(
    rows.map(async (r) => {
      const moved = r.kind === EVENT_PATCH;
      return {
        id: r.id,
        start: r.start_at,
        end: r.end_at,
        zone: r.time_zone,
        clientZone: r.client_zone,
        mode: r.mode,
        typeName: settings.appointmentTypes.find((t) => t.id === r.appointment_type)?.name ?? 'Appointment',
        location: r.location,
        status: r.status === 'done' ? 'confirmed' : r.status === 'failed' || r.status === 'cancelled' ? 'failed' : 'confirming',
        moved,
        movedFrom: moved && r.moves_appointment_id ? await movedFrom(db, link.therapistId, r.moves_appointment_id, r) : null,
        icsUid: sessionIcsUid(moved && r.moves_appointment_id ? r.moves_appointment_id : r.id),
        madeAt: r.created_at,
      } satisfies BookingView;
    }),
  );
}

/**
 * Where a move took the session from. The session's row keeps its old start until the move syncs
 * back; after that, the reschedule recorded since the booking (to this start) says where it was.
 */
async function movedFrom(db: Kysely<Database>, therapistId: string, appointmentId: string, booking: { start_at: Date; created_at: Date }): Promise<Date | null> {
  const shown = await db
    .selectFrom('appointment_transitions')
    .select('detail')
    .where('appointment_id', '=', appointmentId)
    .where('therapist_id', '=', therapistId)
    .where('kind', '=', 'rescheduled')
    .where('recorded_at', '>=', booking.created_at)
    .orderBy('recorded_at')
    .orderBy('id')
    .execute();
  const move = shown.find((t) => Date.parse(String(t.detail['to'])) === booking.start_at.getTime());
  if (move && typeof move.detail['from'] === 'string' && !Number.isNaN(Date.parse(move.detail['from']))) return new Date(move.detail['from']);
  if (move) return null;
  const session = await db.selectFrom('appointments').select('start_at').where('id', '=', appointmentId).where('therapist_id', '=', therapistId).executeTakeFirst();
  return session && session.start_at.getTime() !== booking.start_at.getTime() ? session.start_at : null;
}

// ---------------------------------------------------------------------------------------------
// The session a link moves

/** A session the link's client can move: where it is, its type, and how it is held (video or in person). */
export interface MovableSession extends MovingSession {
  typeId: string | null;
  /** The event's IANA zone (the moved times are written in it), when it has one. */
  zone: string | null;
  /** It has a video link (Meet, Teams): a telehealth session. */
  online: boolean;
  /** Its location as the event has it (compared, never stored by us). */
  location: string | null;
}

/**
 * The session a link offers to move, when it still can be: the link names one, it is still scheduled
 * (not cancelled, moved away or over), it starts in the future, and the therapist organizes its
 * event (we can move it and the client gets the platform's update; an invite from the client is
 * theirs to move). Otherwise null: the link books a new session, as a link about no session does.
 */
export async function movableSession(db: Kysely<Database>, keyring: Keyring, link: Pick<BookingLink, 'therapistId' | 'clientId' | 'appointmentId'>, now: Date): Promise<MovableSession | null> {
  if (!link.appointmentId) return null;
  const row = await db
    .selectFrom('appointments as a')
    .innerJoin('calendars as c', 'c.id', 'a.calendar_id')
    .select(['a.id', 'a.calendar_id', 'a.event_id', 'a.start_at', 'a.end_at', 'a.time_zone', 'a.appointment_type', 'c.role'])
    .where('a.id', '=', link.appointmentId)
    .where('a.therapist_id', '=', link.therapistId)
    .where('c.therapist_id', '=', link.therapistId)
    .where('a.client_id', '=', link.clientId)
    .where('a.state', '=', 'scheduled')
    .where('a.start_at', '>', now)
    .executeTakeFirst();
  // A busy-only or ignored calendar is not one we write to.
  if (!row || row.role === 'busy_only' || row.role === 'ignored') return null;
  const event = await liveEvent(db, keyring, { calendarId: row.calendar_id, eventId: row.event_id });
  if (!event || event.kind !== 'event' || event.organizer?.self === false) return null;
  return {
    appointmentId: row.id,
    calendarId: row.calendar_id,
    eventId: row.event_id,
    start: row.start_at,
    end: row.end_at,
    typeId: row.appointment_type,
    zone: row.time_zone && IANAZone.isValidZone(row.time_zone) ? row.time_zone : null,
    online: !!event.onlineMeetingUrl,
    location: event.location ?? null,
  };
}

/** The type to offer: the link's, else (for a move) the session's own while the practice still has it. */
function linkTypeId(link: BookingLink, moving: MovableSession | null, types: readonly AppointmentType[]): string | null {
  if (link.typeId) return link.typeId;
  return moving?.typeId && types.some((t) => t.id === moving.typeId) ? moving.typeId : null;
}

/** A move keeps how the session is held (a move cannot add or take away its video link): video when it has one, where the type allows. */
function movingMode(type: AppointmentType, moving: MovableSession): Mode {
  const held: Mode = moving.online ? 'telehealth' : 'in_person';
  return type.modes.includes(held) ? held : type.modes[0]!;
}

// ---------------------------------------------------------------------------------------------
// The page

export interface BookingPage {
  practiceName: string;
  therapistName: string;
  type: { id: string; name: string; minutes: number; modes: readonly Mode[] };
  /** The therapist's zone (the slots' wall clock) and the client's when we know it. */
  zone: string;
  clientZone: string | null;
  suggestions: Suggestion[];
  /** Location names by id, and the default one's (for in-person slots). */
  locations: { id: string; name: string; address: string }[];
  /**
   * The session this link moves (its current time, and how it is held: the move keeps that), when it
   * still can be moved; null when the link books a new session.
   */
  moving: { start: Date; end: Date; mode: Mode } | null;
}

/**
 * What the booking page of an open link shows: the client's suggestions (8) with the practice's
 * names; for a link about a session that can still be moved, that session, and times to move it to
 * (its own time free for the move, its current start not among them, in the mode it is held in).
 */
export async function bookingPage(store: Store, link: BookingLink, now: Date): Promise<BookingPage> {
  const db = store.db;
  const names = await practiceNames(db, link.therapistId);
  const moving = await movableSession(db, store.keyring, link, now);
  const schedule = await therapistSchedule(db, link.therapistId, now, { moving });
  const settings = schedule.settings;
  const typeId = linkTypeId(link, moving, settings.appointmentTypes);
  const mode = moving ? movingMode(await clientAppointmentType(db, settings, { therapistId: link.therapistId, clientId: link.clientId, typeId }), moving) : undefined;
  const result = await suggestForClient(store, { therapistId: link.therapistId, clientId: link.clientId, now, k: PAGE_SUGGESTIONS, typeId, schedule, ...(mode ? { mode } : {}) });
  const client = await db.selectFrom('clients').select('time_zone').where('id', '=', link.clientId).executeTakeFirstOrThrow();
  return {
    ...names,
    type: result.appointmentType,
    zone: result.zone,
    clientZone: client.time_zone,
    suggestions: result.suggestions,
    locations: settings.locations,
    moving: moving && mode ? { start: moving.start, end: moving.end, mode } : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Booking

export interface BookingDeps {
  store: Store;
  connectors: ConnectorFactory;
  log: Logger;
  now: Date;
  /** This server's public address (the invite's change line links to it). */
  publicUrl?: string | undefined;
}

export type BookResult =
  | { kind: 'booked'; booking: BookingView }
  | { kind: 'taken'; reason: string }
  | { kind: 'unavailable'; reason: string }
  | { kind: 'closed'; link: Exclude<OpenedLink, { state: 'open' }> };

/**
 * Books the slot starting at `start` for the link's client. The slot must still be one the finder
 * offers (window, notice, caps, our store's busy time and holds), and the platform's free/busy must
 * not show it busy. Under the therapist's row lock the store is looked at again: of two clients taking
 * the same time, the second finds the first's hold and gets `taken`. The event is made by event.create
 * (the outbox: exactly once, retried), with the client invited and a Meet or Teams link for telehealth.
 * A link about a session that can still be moved (movableSession) moves it instead: the same checks
 * with the session's own time free for it, then event.patch of its event to the new time with the
 * client sent the platform's update; the session keeps its mode (`choice.mode` is not asked).
 */
export async function bookSlot(deps: BookingDeps, token: string, choice: { start: Date; mode: Mode; clientZone?: string | null }): Promise<BookResult> {
  const { store, now } = deps;
  const opened = await openLink(store.db, store.keyring, token, now);
  if (opened.state !== 'open') return { kind: 'closed', link: opened };
  const link = opened.link;
  const moving = await movableSession(store.db, store.keyring, link, now);
  if (moving) return moveSession(deps, token, link, moving, choice);
  // The invite's link of a session booked a moment ago, whose event has not come back yet: a second
  // session is not what the client asked for.
  if (link.factKey.startsWith(SESSION_OF_BOOKING) && !link.appointmentId) {
    return { kind: 'unavailable', reason: 'your appointment is still being confirmed: please try again in a minute' };
  }
  const schedule = await therapistSchedule(store.db, link.therapistId, now);
  const type = await clientAppointmentType(store.db, schedule.settings, { therapistId: link.therapistId, clientId: link.clientId, typeId: link.typeId });
  if (!type.modes.includes(choice.mode)) return { kind: 'taken', reason: `${type.name} is not offered ${choice.mode === 'in_person' ? 'in person' : 'by telehealth'}` };
  const home = schedule.home;
  if (!home) return { kind: 'unavailable', reason: 'the practice has no calendar to book on' };
  const offered = (s: ReturnType<typeof typeSlots>) => s.find((x) => x.start === choice.start.getTime() && x.modes.includes(choice.mode));
  const slot = offered(typeSlots(schedule, type, now, choice.mode));
  if (!slot) return { kind: 'taken', reason: 'that time is no longer free' };
  const buffer = schedule.availability.bufferMinutes * 60_000;
  if ((await platformBusy(deps, link.therapistId, new Date(slot.start - buffer), new Date(slot.end + buffer))) === 'busy') {
    return { kind: 'taken', reason: 'that time is no longer free' };
  }
  const contact = await clientContact(store.db, store.keyring, link.therapistId, link.clientId);
  if (contact.emails.length === 0) return { kind: 'unavailable', reason: 'the practice has no email address to send the invitation to' };
  const names = await practiceNames(store.db, link.therapistId);
  const location = choice.mode === 'in_person' ? (schedule.settings.locations.find((l) => l.id === slot.location) ?? schedule.settings.locations[0] ?? null) : null;
  const clientZone = choice.clientZone && IANAZone.isValidZone(choice.clientZone) ? choice.clientZone : null;
  const bookingId = randomUUID();
  const payload = eventPayload({ home: home.id, zone: schedule.zone, slot, mode: choice.mode, bookingId });
  // The invite's change line, written with the event (on Outlook the only time it reaches the client
  // without an update of its own): a link that moves the session this booking makes.
  let changeLine = '';
  if (schedule.settings.inviteChangeLine.enabled) {
    const move = await createBookingLink(store, { therapistId: link.therapistId, clientId: link.clientId, factKey: `${SESSION_OF_BOOKING}${bookingId}`, validUntil: new Date(slot.end), now, publicUrl: deps.publicUrl });
    changeLine = `\n\n${DEFAULT_LINE_TEXT} ${move.url}`;
  }
  const secret = {
    summary: `${type.name} with ${names.therapistName}`,
    description: bookingDescription(choice.mode, location?.name ?? null) + changeLine,
    ...(location ? { location: location.address } : {}),
    // One person: invited by the name the practice knows them by; a couple: by their addresses.
    attendees: contact.emails.map((email) => ({ email, ...(contact.name && contact.emails.length === 1 ? { name: contact.name } : {}) })),
  };

  return store.db.transaction().execute(async (trx): Promise<BookResult> => {
    // One booking at a time per therapist: the second of two finds the first's hold.
    await trx.selectFrom('therapists').select('id').where('id', '=', link.therapistId).forUpdate().executeTakeFirstOrThrow();
    const again = await openLink(trx, store.keyring, token, now);
    if (again.state !== 'open') return { kind: 'closed', link: again };
    // The session became movable meanwhile (a link's session synced in): the client chooses again.
    if (await movableSession(trx, store.keyring, again.link, now)) return { kind: 'taken', reason: 'your appointment changed just now' };
    const fresh = await therapistSchedule(trx, link.therapistId, now);
    if (!offered(typeSlots(fresh, type, now, choice.mode))) return { kind: 'taken', reason: 'that time was just taken' };
    return recordBooking(trx, store.keyring, {
      link,
      bookingId,
      now,
      action: { kind: EVENT_CREATE, key: `booking:${bookingId}:event`, factKey: link.factKey || null, connectionId: home.connectionId, payload: { ...payload }, secret },
      calendarId: home.id,
      type,
      mode: choice.mode,
      slot,
      zone: schedule.zone,
      location: location?.address ?? null,
      clientZone,
      moves: null,
    });
  });
}

/**
 * bookSlot for a link about a session that can be moved: the slot must be one offered for the move
 * (the session's own busy time free for it, its current start not), the platform's free/busy must not
 * show it busy but for the session itself (an interval exactly the session's time), and under the
 * row lock the store and the session are looked at again. Then event.patch moves the session's event
 * (its calendar, its connection) with the client notified, and the booking records the move: its new
 * time is held until the session's row shows it (suggestions.ts pendingHolds).
 */
async function moveSession(deps: BookingDeps, token: string, link: BookingLink, moving: MovableSession, choice: { start: Date; clientZone?: string | null }): Promise<BookResult> {
  const { store, now } = deps;
  const schedule = await therapistSchedule(store.db, link.therapistId, now, { moving });
  const type = await clientAppointmentType(store.db, schedule.settings, { therapistId: link.therapistId, clientId: link.clientId, typeId: linkTypeId(link, moving, schedule.settings.appointmentTypes) });
  const mode = movingMode(type, moving);
  const calendar = schedule.calendars.find((c) => c.id === moving.calendarId);
  if (!calendar) return { kind: 'unavailable', reason: "the practice's calendar with your appointment is not connected" };
  const offered = (s: ReturnType<typeof typeSlots>) => s.find((x) => x.start === choice.start.getTime() && x.modes.includes(mode));
  const slot = offered(typeSlots(schedule, type, now, mode));
  if (!slot) return { kind: 'taken', reason: 'that time is no longer free' };
  const buffer = schedule.availability.bufferMinutes * 60_000;
  const own = { start: moving.start.getTime(), end: moving.end.getTime() };
  if ((await platformBusy(deps, link.therapistId, new Date(slot.start - buffer), new Date(slot.end + buffer), own)) === 'busy') {
    return { kind: 'taken', reason: 'that time is no longer free' };
  }
  // A window that names its place moves an in-person session there; otherwise it stays where it is.
  const place = mode === 'in_person' && slot.location ? schedule.settings.locations.find((l) => l.id === slot.location) : undefined;
  const clientZone = choice.clientZone && IANAZone.isValidZone(choice.clientZone) ? choice.clientZone : null;
  const bookingId = randomUUID();
  const payload: EventPatchPayload = {
    calendarId: moving.calendarId,
    eventId: moving.eventId,
    // The client gets the platform's update of the invite they have (Google sendUpdates=all; Graph always).
    notifyAttendees: true,
    start: new Date(slot.start).toISOString(),
    end: new Date(slot.end).toISOString(),
    timeZone: moving.zone ?? schedule.zone,
  };
  const secret = place && place.address !== moving.location ? { location: place.address } : undefined;

  return store.db.transaction().execute(async (trx): Promise<BookResult> => {
    await trx.selectFrom('therapists').select('id').where('id', '=', link.therapistId).forUpdate().executeTakeFirstOrThrow();
    const again = await openLink(trx, store.keyring, token, now);
    if (again.state !== 'open') return { kind: 'closed', link: again };
    // The session changed meanwhile (moved, cancelled): what was checked no longer holds.
    const still = await movableSession(trx, store.keyring, link, now);
    if (!still || still.start.getTime() !== moving.start.getTime() || still.end.getTime() !== moving.end.getTime() || still.eventId !== moving.eventId) {
      return { kind: 'taken', reason: 'your appointment changed just now' };
    }
    // One move of a session at a time (a reminder's link and the invite's both move it): a later one
    // waits until the earlier has reached the calendar, or a retried older patch could win.
    const unfinished = await trx
      .selectFrom('bookings as b')
      .innerJoin('actions as a', 'a.id', 'b.action_id')
      .select('b.id')
      .where('b.therapist_id', '=', link.therapistId)
      .where('b.moves_appointment_id', '=', still.appointmentId)
      .where('a.status', 'in', ['pending', 'running', 'parked', 'unknown'])
      .executeTakeFirst();
    if (unfinished) return { kind: 'unavailable', reason: 'your appointment is being moved already: please try again in a minute' };
    const fresh = await therapistSchedule(trx, link.therapistId, now, { moving: still });
    if (!offered(typeSlots(fresh, type, now, mode))) return { kind: 'taken', reason: 'that time was just taken' };
    return recordBooking(trx, store.keyring, {
      link,
      bookingId,
      now,
      action: { kind: EVENT_PATCH, key: `booking:${bookingId}:move`, factKey: link.factKey || null, connectionId: calendar.connectionId, payload: { ...payload }, ...(secret ? { secret } : {}) },
      calendarId: moving.calendarId,
      type,
      mode,
      slot,
      zone: schedule.zone,
      location: place?.address ?? null,
      clientZone,
      moves: { appointmentId: moving.appointmentId, from: moving.start },
    });
  });
}

/**
 * Records a booking in the therapist's locked transaction: the action that makes it (event.create, or a
 * move's event.patch), the bookings row that holds the time until it has, and the audit entry with the
 * fact the link answered. What the client is shown back.
 */
async function recordBooking(
  trx: Kysely<Database>,
  keyring: Keyring,
  b: {
    link: BookingLink;
    bookingId: string;
    now: Date;
    action: PlannedAction;
    calendarId: string;
    type: { id: string; name: string };
    mode: Mode;
    slot: { start: number; end: number };
    zone: string;
    location: string | null;
    clientZone: string | null;
    /** A move: the session and where it was. */
    moves: { appointmentId: string; from: Date } | null;
  },
): Promise<BookResult> {
  const { link, bookingId, now } = b;
  const action = await enqueueAction(trx, plannedAction(keyring, link.therapistId, b.action, now));
  await trx
    .insertInto('bookings')
    .values({
      id: bookingId,
      therapist_id: link.therapistId,
      client_id: link.clientId,
      link_id: link.id,
      calendar_id: b.calendarId,
      appointment_type: b.type.id,
      mode: b.mode,
      start_at: new Date(b.slot.start),
      end_at: new Date(b.slot.end),
      time_zone: b.zone,
      location: b.location,
      client_zone: b.clientZone,
      action_id: action.id,
      fact_key: link.factKey,
      moves_appointment_id: b.moves?.appointmentId ?? null,
      created_at: now,
    })
    .execute();
  // The fact of the booking: what prompted the link is answered (its follow-up closes when the session syncs in).
  await audit(trx, {
    at: now,
    therapistId: link.therapistId,
    actor: `client-link:${link.id}`,
    action: 'create',
    subjectType: 'booking',
    subjectId: bookingId,
    detail: { factKey: link.factKey, mode: b.mode, type: b.type.id, ...(b.moves ? { movesAppointment: b.moves.appointmentId } : {}) },
  });
  return {
    kind: 'booked',
    booking: {
      id: bookingId,
      icsUid: sessionIcsUid(b.moves?.appointmentId ?? bookingId),
      madeAt: now,
      start: new Date(b.slot.start),
      end: new Date(b.slot.end),
      zone: b.zone,
      clientZone: b.clientZone,
      mode: b.mode,
      typeName: b.type.name,
      location: b.location,
      status: 'confirming',
      moved: b.moves !== null,
      movedFrom: b.moves?.from ?? null,
    },
  };
}

/** event.create's plain payload for a booking (the names and the client's email go in its sealed part). */
function eventPayload(p: { home: string; zone: string; slot: { start: number; end: number }; mode: Mode; bookingId: string }): Omit<EventCreatePayload, 'summary' | 'attendees' | 'description' | 'location'> {
  return {
    calendarId: p.home,
    start: new Date(p.slot.start).toISOString(),
    end: new Date(p.slot.end).toISOString(),
    timeZone: p.zone,
    onlineMeeting: p.mode === 'telehealth',
    notifyAttendees: true,
    // The therapist's own mark (recognise.ts TAG_SESSION): a booked session is a session, whatever its title.
    tags: { 'sk.session': 'yes', 'sk.booking': p.bookingId },
  };
}

function bookingDescription(mode: Mode, place: string | null): string {
  return mode === 'telehealth'
    ? 'Booked online. This is a video appointment: join with the link in this invitation.'
    : `Booked online. In person${place ? ` at ${place}` : ''}.`;
}

/**
 * The platform's free/busy over the therapist's counted calendars, the final check: 'busy' when any
 * says so; 'free'; 'unknown' when a platform could not answer in time (then the store's view stands:
 * its calendars are kept current by push, and the booking should not fail because a check did).
 * `own`: a session being moved; free/busy names no events, so an interval exactly its time is taken
 * for it (one merged with a neighbouring event is not, and the time counts as busy).
 */
async function platformBusy(deps: BookingDeps, therapistId: string, from: Date, to: Date, own?: { start: number; end: number }): Promise<'busy' | 'free' | 'unknown'> {
  const rows = await deps.store.db
    .selectFrom('calendars as c')
    .innerJoin('connections as k', 'k.id', 'c.connection_id')
    .select(['c.provider_calendar_id', 'k.id', 'k.provider', 'k.therapist_id'])
    .where('c.therapist_id', '=', therapistId)
    .where('c.role', '!=', 'ignored')
    .where('k.status', '=', 'ok')
    .execute();
  const byConnection = new Map<string, { connection: { id: string; therapist_id: string; provider: 'google' | 'microsoft' }; calendars: string[] }>();
  for (const r of rows) {
    const entry = byConnection.get(r.id) ?? { connection: { id: r.id, therapist_id: r.therapist_id, provider: r.provider }, calendars: [] };
    entry.calendars.push(r.provider_calendar_id);
    byConnection.set(r.id, entry);
  }
  let verdict: 'busy' | 'free' | 'unknown' = 'free';
  await Promise.all(
    [...byConnection.values()].map(async ({ connection, calendars }) => {
      try {
        const connector: CalendarConnector = await deps.connectors.calendarConnector(connection);
        const busy = await withTimeout(connector.freeBusy(calendars, from, to), FREE_BUSY_TIMEOUT_MS);
        const others = own ? busy.filter((b) => b.start.getTime() !== own.start || b.end.getTime() !== own.end) : busy;
        if (others.some((b) => b.start.getTime() < to.getTime() && b.end.getTime() > from.getTime())) verdict = 'busy';
      } catch (err) {
        deps.log.warn({ err: errorName(err), connectionId: connection.id }, 'free/busy check failed; booking on the stored calendars');
        if (verdict === 'free') verdict = 'unknown';
      }
    }),
  );
  return verdict;
}

function errorName(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
