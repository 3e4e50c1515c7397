// The interfaces between the engine and the connectors. Connectors know nothing of src/: what they
// must persist (credentials, token caches, channel records) they reach through these, which the
// store implements and the engine hands in.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { CalendarItem, ItemError } from './types.js';

export type Provider = 'google' | 'microsoft';

/**
 * One connection's credentials (OAuth tokens, or MSAL's serialised token cache), as an opaque
 * string that the store seals at rest. Scoped to one connection of one verified therapist.
 */
export interface CredentialStore {
  load(): Promise<string | undefined>;
  save(credentials: string): Promise<void>;
  /** The grant is gone: the connection stops working until the therapist consents again. */
  markNeedsReauth(reason: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Calendars


/** A calendar as the platform lists it. */
export interface RemoteCalendar {
  id: string;
  name: string;
  timeZone: string;
  primary: boolean;
  /** Whether we may read its events (not only free/busy). */
  canRead: boolean;
  canWrite: boolean;
}

/** One page of a sync: normalised items, the ones that failed normalisation, and what comes next. */
export interface SyncPage {
  items: CalendarItem[];
  rejected: ItemError[];
  /** More pages of this listing follow. */
  nextPageToken: string | null;
  /** On the last page: the cursor for the next incremental sync. */
  nextCursor: string | null;
  /**
   * On the last page of a listing that is a complete picture of a time window (Graph's windowed
   * calendarView): what we stored in the window and it did not list is gone.
   */
  window?: { start: Date; end: Date } | null;
  /**
   * On the last page: the time window the cursor covers (Graph's rolling window); null for a whole
   * calendar (Google). Nothing outside it is judged gone by a full resync.
   */
  syncedWindow?: { start: Date; end: Date } | null;
  /** Series read again in full: their stored instances not listed here are gone (Graph). */
  seriesSnapshots?: { seriesId: string; eventIds: string[] }[];
}

/** A push channel (Google) or subscription (Graph) as we record it. */
export interface ChannelRecord {
  channelId: string;
  resourceId: string | null;
  expiresAt: Date;
}

/** What the store keeps of a channel to check a notification against: never the secret itself. */
export interface StoredChannel {
  channelId: string;
  resourceId: string | null;
  /** hashChannelSecret(token or clientState). */
  secretHash: string;
}

/** A channel token or clientState is kept as its SHA-256: the database never holds the secret. */
export function hashChannelSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, secretHash: string): boolean {
  const given = Buffer.from(hashChannelSecret(secret), 'hex');
  const stored = Buffer.from(secretHash, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}

/**
 * What the sync loop needs of a platform. Stateless about progress: the caller keeps the cursor.
 * Throws connectors/errors.ts types: CursorExpired (resync fully), NeedsReauth, RetryAfter,
 * NotFound, Forbidden.
 */
export interface CalendarConnector {
  readonly provider: Provider;
  listCalendars(): Promise<RemoteCalendar[]>;
  /** A page of changes since `cursor` (null: everything), continuing at `pageToken` when given. */
  syncPage(calendarId: string, opts: { cursor: string | null; pageToken: string | null }): Promise<SyncPage>;
  /** Starts push for a calendar; the secret comes back in every notification. */
  watch(calendarId: string, opts: { channelId: string; address: string; secret: string; expiresAt?: Date }): Promise<ChannelRecord>;
  stopChannel(channel: { channelId: string; resourceId: string | null }): Promise<void>;
  /** Extends a channel's life, where the platform allows it (Graph); returns the new expiry. */
  renew?(channelId: string, expiresAt: Date): Promise<Date>;
  /**
   * Whether a write to an event the therapist organises, with attendees, is sent to those attendees
   * as an update (Graph has no sendUpdates=none: API-NOTES, Microsoft). The engine then keeps its
   * marks for such events in the store instead of on the event.
   */
  readonly writesNotifyAttendees: boolean;
  /**
   * Sets one of our private marks on the calendar's copy of an event (Google: a private extended
   * property, written with sendUpdates=none; Graph: a single-value extended property). Writing the
   * same value again changes nothing. NotFound when the event is gone.
   */
  setTag(calendarId: string, eventId: string, name: string, value: string): Promise<void>;
  /** Reads one of our marks back (null when the event has none): how a retry after a crash knows. */
  getTag(calendarId: string, eventId: string, name: string): Promise<string | null>;
  /**
   * Adds a visible category to the event, keeping its others (Outlook categories; Graph only). Adding
   * one it has changes nothing. NotFound when the event is gone.
   */
  addCategory?(calendarId: string, eventId: string, category: string): Promise<void>;
  /**
   * Creates an event, exactly once per `event.key`: Google with an event id derived from the key
   * (a second insert is refused with 409 and the existing event is returned), Graph with the key in
   * an extended property that is searched first when `mayExist`. `created` is false when an earlier
   * attempt had made it.
   */
  createEvent(calendarId: string, event: NewEvent, opts: { mayExist: boolean }): Promise<CreatedEvent>;
  /**
   * Changes an event; only the fields given. `notifyAttendees`: Google's sendUpdates all/none; Graph
   * always notifies an organizer's attendees (see writesNotifyAttendees). NotFound when it is gone.
   */
  patchEvent(calendarId: string, eventId: string, patch: EventPatch, opts: { notifyAttendees: boolean }): Promise<void>;
  /** Deletes an event (a cancellation to its attendees when notifyAttendees); one already gone is not an error. */
  deleteEvent(calendarId: string, eventId: string, opts: { notifyAttendees: boolean }): Promise<void>;
  /**
   * Writes our one line at the end of the event's description (replacing a line of ours already there),
   * or removes it (null); the rest of the description is kept as it is. Returns whether anything changed.
   * `notifyAttendees`: Google's sendUpdates all/none; Graph always notifies an organizer's attendees.
   * NotFound when the event is gone.
   */
  setDescriptionLine(calendarId: string, eventId: string, line: { text: string; url: string } | null, opts: { notifyAttendees: boolean }): Promise<{ changed: boolean }>;
  /** Busy time across these calendars between two instants, merged and sorted (Google freebusy.query, Graph getSchedule); the final check before a booking. Throws the usual typed errors (connectors/errors.ts) when the platform cannot answer, or when any asked calendar cannot be read. */
  freeBusy(calendarIds: readonly string[], from: Date, to: Date): Promise<{ start: Date; end: Date }[]>;
}

// ---------------------------------------------------------------------------------------------
// Calendar writes

export interface Attendee {
  email: string;
  name?: string;
}

/** An event we create (a session booked from a link, a hold). Times are instants; `timeZone` is IANA. */
export interface NewEvent {
  /** Our idempotency key (the action's): the same key never makes a second event. */
  key: string;
  summary: string;
  description?: string;
  location?: string;
  start: Date;
  end: Date;
  timeZone: string;
  attendees: Attendee[];
  /** Add a video meeting: Google Meet (conferenceData create request) or a Teams meeting. */
  onlineMeeting: boolean;
  /** Popup reminders on the therapist's copy, minutes before the start (Google: at most 5; Graph: the first). */
  reminderMinutes?: number[];
  /** Our private marks, written with the event (sk.* names, as setTag). */
  tags?: Record<string, string>;
  /** Whether attendees get the invitation by email (Google sendUpdates all/none; Graph always sends). */
  notifyAttendees: boolean;
}

export interface CreatedEvent {
  eventId: string;
  /** The join link of the video meeting, when one was asked for and the platform made it. */
  meetingUrl: string | null;
  /** False when an earlier attempt had already made it (found by our id or our key). */
  created: boolean;
}

/** A change to an event: only the fields present are written. */
export interface EventPatch {
  summary?: string;
  /** The whole description; null clears it. */
  description?: string | null;
  location?: string | null;
  start?: Date;
  end?: Date;
  /** IANA zone for start/end (required with them). */
  timeZone?: string;
  /** The therapist's popup reminders (an empty list turns them off). */
  reminderMinutes?: number[];
}

// ---------------------------------------------------------------------------------------------
// Tasks (Google Tasks, Microsoft To Do): the therapist's follow-ups

/**
 * The marker a task carries of our key, short and opaque (no client data): Google keeps it in the
 * notes, Graph in a linked resource's externalId. A retry after a crash finds the task by it.
 */
export function taskMarker(key: string): string {
  return `sk-${createHash('sha256').update(key).digest('base64url').slice(0, 22)}`;
}

export interface TaskDraft {
  /** Our key (the fact's): taskMarker(key) goes with the task. */
  key: string;
  title: string;
  notes: string;
  /** The day it is due (yyyy-mm-dd, the therapist's date); Google keeps only the date. */
  due: string | null;
  /** A link shown with the task (Graph: the linked resource's webUrl). */
  link?: { url: string; label: string };
}

export interface RemoteTask {
  taskId: string;
  /** The marker we wrote (taskMarker), or null for tasks not ours. */
  marker: string | null;
  status: 'open' | 'completed' | 'deleted';
  updated: Date;
}

/** What the engine needs of a platform's task list. Throws the same typed errors as calendars. */
export interface TaskConnector {
  readonly provider: Provider;
  /** The list named `name`: found again when it exists, created when not. Returns its id. */
  ensureList(name: string): Promise<string>;
  /** Creates a task once per key: with `mayExist`, a task carrying the key's marker is returned instead. */
  createTask(listId: string, draft: TaskDraft, opts: { mayExist: boolean }): Promise<{ taskId: string; created: boolean }>;
  /** Changes title, notes or due date; never the status. The task as it now is, or null when it is gone. */
  updateTask(listId: string, taskId: string, patch: Partial<Pick<TaskDraft, 'title' | 'notes' | 'due'>>): Promise<RemoteTask | null>;
  /** Marks it done (idempotent); a task already gone is not an error. */
  completeTask(listId: string, taskId: string): Promise<void>;
  deleteTask(listId: string, taskId: string): Promise<void>;
  /**
   * The list's tasks changed since `cursor` (what the last call returned; null the first time, then
   * changes since `start`), completed and deleted ones included, so a task the therapist completed
   * or deleted is seen; and the cursor for the next call (Google: an updatedMin; Graph: the delta
   * link). As few requests as the platform allows: the sparse check.
   */
  changedTasks(listId: string, cursor: string | null, start: Date): Promise<{ tasks: RemoteTask[]; cursor: string }>;
  /** Requests made (the bench counts them). */
  requests: number;
}

// ---------------------------------------------------------------------------------------------
// Mail: from the therapist's own mailbox

export interface MailAttachment {
  filename: string;
  /** e.g. 'text/calendar; method=REQUEST'. */
  contentType: string;
  content: string | Buffer;
}

export interface OutgoingMail {
  from?: Attendee;
  to: Attendee[];
  replyTo?: Attendee;
  subject: string;
  text: string;
  html: string;
  attachments?: MailAttachment[];
}

/**
 * Sends from the connected account. Neither Gmail nor Graph takes an idempotency key (API-NOTES):
 * a send is at most once, and a crash inside it leaves the action unknown.
 */
export interface MailConnector {
  readonly provider: Provider;
  send(mail: OutgoingMail): Promise<{ messageId: string | null }>;
}

/**
 * A freeBusy call's question, checked: the distinct calendar ids and the range in milliseconds, or null
 * when there is nothing to ask (no calendar, an empty range). Throws on an instant that is not one.
 */
export function busyQuestion(calendarIds: readonly string[], from: Date, to: Date): { ids: string[]; start: number; end: number } | null {
  const start = from.getTime();
  const end = to.getTime();
  if (!Number.isFinite(start) || !Number.isFinite(end)) throw new RangeError('freeBusy: from and to must be valid instants');
  const ids = [...new Set(calendarIds)];
  return ids.length === 0 || end <= start ? null : { ids, start, end };
}

/** Busy spans (milliseconds) as freeBusy answers them: sorted by start, overlapping or touching ones joined. */
export function mergeBusy(spans: readonly { start: number; end: number }[]): { start: Date; end: Date }[] {
  const merged: { start: number; end: number }[] = [];
  for (const x of [...spans].sort((a, b) => a.start - b.start || a.end - b.end)) {
    const last = merged.at(-1);
    if (last && x.start <= last.end) last.end = Math.max(last.end, x.end);
    else merged.push({ ...x });
  }
  return merged.map((x) => ({ start: new Date(x.start), end: new Date(x.end) }));
}
