// Rebooking from a link: the signed, expiring link a client gets (bound to practice, client and the
// fact that prompted it; single use for a booking), what the booking page shows, and the booking
// itself: free in our store and on the platform, one winner when two take the same time, the event
// made by the outbox's event.create with the client invited, and a hold on the time until it is.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { DateTime, IANAZone } from 'luxon';
import type { CalendarConnector } from '../../connectors/port.js';
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
import { plannedAction } from './outbox.js';
import type { ConnectorFactory } from './platforms.js';
import { clientAppointmentType, suggestForClient, therapistSchedule, typeSlots } from './suggestions.js';
import { EVENT_CREATE, type EventCreatePayload } from './writes.js';

const LINK_PURPOSE = 'booking-link-v1';
const TOKEN_VERSION = 1;
/** How long the platform's free/busy may take before we go on with what the store knows. */
const FREE_BUSY_TIMEOUT_MS = 5_000;
/** The booking page's suggestions (the issue: 8 for the page). */
export const PAGE_SUGGESTIONS = 8;

export interface BookingLink {
  id: string;
  therapistId: string;
  practiceId: string;
  clientId: string;
  factKey: string;
  typeId: string | null;
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
  /** confirming: the event is being made; confirmed: it exists (the invitation went out); failed: it could not be made. */
  status: 'confirming' | 'confirmed' | 'failed';
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
 * binds (practice, client, fact), base64url. It says nothing about the client: the row does.
 */
function signedMessage(l: Pick<BookingLink, 'id' | 'practiceId' | 'clientId' | 'factKey'>, expSeconds: number): string {
  return `${l.practiceId}|${l.clientId}|${l.factKey}|${l.id}|${expSeconds}`;
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
 */
export async function createBookingLink(
  store: Store,
  input: { therapistId: string; clientId: string; factKey?: string; typeId?: string | null; now: Date; publicUrl?: string | undefined },
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
  const expiresAt = DateTime.fromJSDate(input.now).plus({ days: settings.bookingLinkDays }).startOf('second').toJSDate();
  const row = await db
    .insertInto('booking_links')
    .values({ therapist_id: input.therapistId, client_id: input.clientId, fact_key: input.factKey ?? '', appointment_type: input.typeId ?? null, expires_at: expiresAt, created_at: input.now })
    .returning('id')
    .executeTakeFirstOrThrow();
  const token = encodeToken(store.keyring, {
    id: row.id,
    therapistId: input.therapistId,
    practiceId: owner.practice_id,
    clientId: input.clientId,
    factKey: input.factKey ?? '',
    typeId: input.typeId ?? null,
    expiresAt,
  });
  const base = input.publicUrl ?? 'http://localhost:8080';
  return { id: row.id, token, url: `${base}/book/${token}`, expiresAt };
}

/** Reads a link back: invalid (malformed, unknown, altered), expired, used (with its booking) or open. */
export async function openLink(db: Kysely<Database>, keyring: Keyring, token: string, now: Date): Promise<OpenedLink> {
  const decoded = decodeToken(token);
  if (!decoded) return { state: 'invalid' };
  const row = await db
    .selectFrom('booking_links as l')
    .innerJoin('therapists as t', 't.id', 'l.therapist_id')
    .select(['l.id', 'l.therapist_id', 'l.client_id', 'l.fact_key', 'l.appointment_type', 'l.expires_at', 't.practice_id'])
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
    expiresAt: row.expires_at,
  };
  if (decoded.exp !== Math.floor(link.expiresAt.getTime() / 1000) || !keyring.macMatches(signedMessage(link, decoded.exp), LINK_PURPOSE, decoded.mac)) return { state: 'invalid' };
  const bookings = await linkBookings(db, link);
  const live = bookings.find((b) => b.status !== 'failed');
  if (live) return { state: 'used', link, booking: live };
  if (now.getTime() >= link.expiresAt.getTime()) return { state: 'expired', link };
  return { state: 'open', link, failed: bookings[0] ?? null };
}

/** The bookings made from a link, newest first, with their status read off their event.create action. */
async function linkBookings(db: Kysely<Database>, link: BookingLink): Promise<BookingView[]> {
  const rows = await db
    .selectFrom('bookings as b')
    .innerJoin('actions as a', 'a.id', 'b.action_id')
    .select(['b.id', 'b.start_at', 'b.end_at', 'b.time_zone', 'b.client_zone', 'b.mode', 'b.appointment_type', 'b.location', 'a.status'])
    .where('b.link_id', '=', link.id)
    .where('b.therapist_id', '=', link.therapistId)
    .orderBy('b.created_at', 'desc')
    .execute();
  const settings = await therapistSettings(db, link.therapistId);
  return rows.map((r) => ({
    id: r.id,
    start: r.start_at,
    end: r.end_at,
    zone: r.time_zone,
    clientZone: r.client_zone,
    mode: r.mode,
    typeName: settings.appointmentTypes.find((t) => t.id === r.appointment_type)?.name ?? 'Appointment',
    location: r.location,
    status: r.status === 'done' ? 'confirmed' : r.status === 'failed' || r.status === 'cancelled' ? 'failed' : 'confirming',
  }));
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
}

/** What the booking page of an open link shows: the client's suggestions (8) with the practice's names. */
export async function bookingPage(store: Store, link: BookingLink, now: Date): Promise<BookingPage> {
  const db = store.db;
  const names = await practiceNames(db, link.therapistId);
  const schedule = await therapistSchedule(db, link.therapistId, now);
  const result = await suggestForClient(store, { therapistId: link.therapistId, clientId: link.clientId, now, k: PAGE_SUGGESTIONS, typeId: link.typeId, schedule });
  const client = await db.selectFrom('clients').select('time_zone').where('id', '=', link.clientId).executeTakeFirstOrThrow();
  const settings = schedule.settings;
  return {
    ...names,
    type: result.appointmentType,
    zone: result.zone,
    clientZone: client.time_zone,
    suggestions: result.suggestions,
    locations: settings.locations,
  };
}

// ---------------------------------------------------------------------------------------------
// Booking

export interface BookingDeps {
  store: Store;
  connectors: ConnectorFactory;
  log: Logger;
  now: Date;
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
 */
export async function bookSlot(deps: BookingDeps, token: string, choice: { start: Date; mode: Mode; clientZone?: string | null }): Promise<BookResult> {
  const { store, now } = deps;
  const opened = await openLink(store.db, store.keyring, token, now);
  if (opened.state !== 'open') return { kind: 'closed', link: opened };
  const link = opened.link;
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
  const secret = {
    summary: `${type.name} with ${names.therapistName}`,
    description: bookingDescription(choice.mode, location?.name ?? null),
    ...(location ? { location: location.address } : {}),
    // One person: invited by the name the practice knows them by; a couple: by their addresses.
    attendees: contact.emails.map((email) => ({ email, ...(contact.name && contact.emails.length === 1 ? { name: contact.name } : {}) })),
  };

  return store.db.transaction().execute(async (trx): Promise<BookResult> => {
    // One booking at a time per therapist: the second of two finds the first's hold.
    await trx.selectFrom('therapists').select('id').where('id', '=', link.therapistId).forUpdate().executeTakeFirstOrThrow();
    const again = await openLink(trx, store.keyring, token, now);
    if (again.state !== 'open') return { kind: 'closed', link: again };
    const fresh = await therapistSchedule(trx, link.therapistId, now);
    if (!offered(typeSlots(fresh, type, now, choice.mode))) return { kind: 'taken', reason: 'that time was just taken' };
    const action = await enqueueAction(
      trx,
      plannedAction(
        store.keyring,
        link.therapistId,
        { kind: EVENT_CREATE, key: `booking:${bookingId}:event`, factKey: link.factKey || null, connectionId: home.connectionId, payload: { ...payload }, secret },
        now,
      ),
    );
    await trx
      .insertInto('bookings')
      .values({
        id: bookingId,
        therapist_id: link.therapistId,
        client_id: link.clientId,
        link_id: link.id,
        calendar_id: home.id,
        appointment_type: type.id,
        mode: choice.mode,
        start_at: new Date(slot.start),
        end_at: new Date(slot.end),
        time_zone: schedule.zone,
        location: location?.address ?? null,
        client_zone: clientZone,
        action_id: action.id,
        fact_key: link.factKey,
        created_at: now,
      })
      .execute();
    // The fact of the booking: what prompted the link is answered (issue 10 closes its follow-up).
    await audit(trx, { at: now, therapistId: link.therapistId, actor: `client-link:${link.id}`, action: 'create', subjectType: 'booking', subjectId: bookingId, detail: { factKey: link.factKey, mode: choice.mode, type: type.id } });
    return {
      kind: 'booked',
      booking: { id: bookingId, start: new Date(slot.start), end: new Date(slot.end), zone: schedule.zone, clientZone, mode: choice.mode, typeName: type.name, location: location?.address ?? null, status: 'confirming' },
    };
  });
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
 */
async function platformBusy(deps: BookingDeps, therapistId: string, from: Date, to: Date): Promise<'busy' | 'free' | 'unknown'> {
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
        if (busy.some((b) => b.start.getTime() < to.getTime() && b.end.getTime() > from.getTime())) verdict = 'busy';
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
