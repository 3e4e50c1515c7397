// Google Calendar event resources (refs/google-calendar-v3-discovery.json, "Event") into our
// CalendarItem: tombstones for cancelled items, all-day and zoned times, attendee responses, Meet
// links, our tags from private extended properties, colours. Nothing after this sees Google fields.
import type { calendar_v3 } from '@googleapis/calendar';
import { DateTime } from 'luxon';
import { parseCalendarItem, type CalendarItem, type EventTime, type ItemError } from '../types.js';

/** Our tags live in the calendar's own copy (extendedProperties.private), prefixed "sk.". */
export const TAG_PREFIX = 'sk.';

const RESPONSES: Record<string, 'accepted' | 'declined' | 'tentative' | 'none'> = {
  accepted: 'accepted',
  declined: 'declined',
  tentative: 'tentative',
  needsAction: 'none',
};

const HAS_OFFSET = /(Z|[+-]\d{2}:\d{2})$/;

function time(t: calendar_v3.Schema$EventDateTime | undefined, calendarZone: string): EventTime | undefined {
  if (!t) return undefined;
  if (t.date) return { kind: 'date', date: t.date };
  if (!t.dateTime) return undefined;
  // API responses carry an offset; an event written without one is read in its timeZone (the
  // discovery document: "A time zone offset is required unless a time zone is explicitly
  // specified in timeZone"); with neither, it floats in the calendar's zone.
  if (HAS_OFFSET.test(t.dateTime)) return { kind: 'instant', at: t.dateTime, zone: t.timeZone || calendarZone };
  if (t.timeZone) {
    const at = DateTime.fromISO(t.dateTime, { zone: t.timeZone });
    return at.isValid ? { kind: 'instant', at: at.toISO()!, zone: t.timeZone } : { kind: 'instant', at: t.dateTime, zone: t.timeZone };
  }
  return { kind: 'floating', local: t.dateTime };
}

const TAG_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;

function meetLink(e: calendar_v3.Schema$Event): string | null {
  if (e.hangoutLink) return e.hangoutLink;
  const video = e.conferenceData?.entryPoints?.find((p) => p.entryPointType === 'video');
  return video?.uri ?? null;
}

/**
 * One item of events.list into a CalendarItem, or an error naming the event and the field.
 * A cancelled item is a tombstone: Google guarantees only its id (and for a cancelled instance,
 * recurringEventId and originalStartTime), whatever else it happens to carry.
 */
export function normaliseGoogleEvent(
  e: calendar_v3.Schema$Event,
  calendarId: string,
  calendarZone: string,
  /** The listing's own `updated`, for items that lack theirs (a calendar shared free/busy only). */
  listedAt?: string,
): { ok: true; item: CalendarItem } | { ok: false; error: ItemError } {
  if (!e.id) return { ok: false, error: { eventId: '(no id)', field: 'id', reason: 'the event has no id' } };
  if (e.status === 'cancelled') {
    return parseCalendarItem({
      kind: 'tombstone',
      provider: 'google',
      calendarId,
      eventId: e.id,
      seriesId: e.recurringEventId ?? null,
      originalStart: time(e.originalStartTime, calendarZone) ?? null,
    });
  }
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.extendedProperties?.private ?? {})) {
    // A property that is not one of our well-formed tags is someone else's: left out, not fatal.
    if (k.startsWith(TAG_PREFIX) && TAG_NAME.test(k) && typeof v === 'string' && v.length <= 1024) tags[k] = v;
  }
  return parseCalendarItem({
    kind: 'event',
    provider: 'google',
    calendarId,
    eventId: e.id,
    iCalUID: e.iCalUID ?? null,
    seriesId: e.recurringEventId ?? null,
    originalStart: time(e.originalStartTime, calendarZone) ?? null,
    start: time(e.start, calendarZone),
    end: time(e.end, calendarZone),
    status: e.status === 'tentative' ? 'tentative' : 'confirmed',
    // Titles are for recognition; an absurdly long one is cut, not a reason to lose the event.
    title: (e.summary ?? '').slice(0, 2000),
    organizer: e.organizer?.email ? { email: e.organizer.email, ...(e.organizer.displayName ? { name: e.organizer.displayName } : {}), self: e.organizer.self ?? false } : null,
    attendees: (e.attendees ?? [])
      .filter((a) => a.email && !a.resource)
      .map((a) => ({
        email: a.email!,
        ...(a.displayName ? { name: a.displayName } : {}),
        response: RESPONSES[a.responseStatus ?? 'needsAction'] ?? 'none',
        self: a.self ?? false,
        organizer: a.organizer ?? false,
      })),
    location: e.location ?? null,
    onlineMeetingUrl: meetLink(e),
    tags,
    categories: [],
    colorId: e.colorId ?? null,
    // Free: marked "available", or the owner declined it (it then does not block their time).
    showAs: e.transparency === 'transparent' || (e.attendees ?? []).some((a) => a.self && a.responseStatus === 'declined') ? 'free' : 'busy',
    updated: e.updated ?? listedAt,
    version: e.etag,
  });
}
