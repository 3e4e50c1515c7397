// Google Calendar event resources (refs/google-calendar-v3-discovery.json, "Event") into our
// CalendarItem: tombstones for cancelled items, all-day and zoned times, attendee responses, Meet
// links, our tags from private extended properties, colours. Nothing after this sees Google fields.
import type { calendar_v3 } from '@googleapis/calendar';
import { parseCalendarItem, type CalendarItem, type EventTime, type ItemError } from '../types.js';

/** Our tags live in the calendar's own copy (extendedProperties.private), prefixed "sk.". */
export const TAG_PREFIX = 'sk.';

const RESPONSES: Record<string, 'accepted' | 'declined' | 'tentative' | 'none'> = {
  accepted: 'accepted',
  declined: 'declined',
  tentative: 'tentative',
  needsAction: 'none',
};

function time(t: calendar_v3.Schema$EventDateTime | undefined, calendarZone: string): EventTime | undefined {
  if (!t) return undefined;
  if (t.date) return { kind: 'date', date: t.date };
  // dateTime always carries an offset in API responses; timeZone names the event's own zone.
  if (t.dateTime) return { kind: 'instant', at: t.dateTime, zone: t.timeZone || calendarZone };
  return undefined;
}

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
    if (k.startsWith(TAG_PREFIX) && typeof v === 'string') tags[k] = v;
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
    title: e.summary ?? '',
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
    updated: e.updated,
    version: e.etag,
  });
}
