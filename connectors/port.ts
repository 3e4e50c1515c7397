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
}
