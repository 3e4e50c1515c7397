// Microsoft Graph event resources (refs/graph-docs/event.md) into our CalendarItem: @removed
// tombstones, all-day and zoned times (Windows or IANA names), attendee responses, Teams links,
// our tags from single-value extended properties, categories. Occurrence stubs are completed by the
// caller from their series master first (API-NOTES: delta may return only id, type, start, end).
import { DateTime } from 'luxon';
import { parseCalendarItem, type CalendarItem, type ItemError } from '../types.js';
import { toIana } from './zones.js';

/** The namespace of our single-value extended properties: "String {GUID} Name sk.session". */
export const TAG_PROPERTY_GUID = '5e8f1b2a-7c3d-4f6e-9a1b-2c3d4e5f6a7b';
const TAG_ID = new RegExp(`^String \\{${TAG_PROPERTY_GUID}\\} Name (sk\\.[a-z0-9_.-]{1,60})$`, 'i');

export interface GraphDateTime {
  dateTime?: string;
  timeZone?: string;
}

export interface GraphEvent {
  id?: string;
  '@removed'?: { reason?: string };
  type?: 'singleInstance' | 'occurrence' | 'exception' | 'seriesMaster';
  seriesMasterId?: string | null;
  originalStart?: string | null;
  originalStartTimeZone?: string | null;
  iCalUId?: string | null;
  subject?: string | null;
  start?: GraphDateTime;
  end?: GraphDateTime;
  isAllDay?: boolean;
  isCancelled?: boolean;
  isOrganizer?: boolean;
  showAs?: string;
  responseStatus?: { response?: string };
  organizer?: { emailAddress?: { name?: string; address?: string } };
  attendees?: { type?: string; status?: { response?: string }; emailAddress?: { name?: string; address?: string } }[];
  location?: { displayName?: string };
  onlineMeeting?: { joinUrl?: string } | null;
  categories?: string[];
  singleValueExtendedProperties?: { id?: string; value?: string }[];
  lastModifiedDateTime?: string;
  changeKey?: string;
  '@odata.etag'?: string;
}

const RESPONSES: Record<string, 'accepted' | 'declined' | 'tentative' | 'none'> = {
  accepted: 'accepted',
  organizer: 'accepted',
  tentativelyAccepted: 'tentative',
  declined: 'declined',
  none: 'none',
  notResponded: 'none',
};

/** A Graph dateTime (no offset) in its timeZone, as an RFC 3339 instant. */
function instant(t: GraphDateTime | undefined, fallbackZone: string): string | undefined {
  if (!t?.dateTime) return undefined;
  const zone = toIana(t.timeZone) ?? fallbackZone;
  const dt = DateTime.fromISO(t.dateTime.replace(/(\.\d{3})\d+$/, '$1'), { zone });
  return dt.isValid ? dt.toUTC().toISO()! : undefined;
}

/**
 * One Graph event (or @removed entry) into a CalendarItem; null for a series master (its
 * occurrences are the items), or an error naming the event and the field.
 */
export function normaliseGraphEvent(
  e: GraphEvent,
  calendarId: string,
  /** listedAt: when the page was fetched, for items without lastModifiedDateTime (the reference's delta items). */
  opts: { calendarZone: string; ownerEmail: string | null; listedAt?: string },
): { ok: true; item: CalendarItem | null } | { ok: false; error: ItemError } {
  if (!e.id) return { ok: false, error: { eventId: '(no id)', field: 'id', reason: 'the event has no id' } };
  if (e['@removed']) return parseCalendarItem({ kind: 'tombstone', provider: 'microsoft', calendarId, eventId: e.id });
  if (e.type === 'seriesMaster') return { ok: true, item: null };
  const zone = toIana(e.originalStartTimeZone) ?? opts.calendarZone;
  const owner = opts.ownerEmail?.toLowerCase() ?? null;
  const startAt = instant(e.start, zone);
  const endAt = instant(e.end, zone);
  const allDay = e.isAllDay === true;
  // An all-day event is a floating date: midnight to midnight whatever zone the answer is labelled
  // with, so the date is read as it is, never converted.
  const day = (t: GraphDateTime | undefined) => t?.dateTime?.slice(0, 10);
  const tags: Record<string, string> = {};
  for (const p of e.singleValueExtendedProperties ?? []) {
    const m = p.id ? TAG_ID.exec(p.id) : null;
    if (m && typeof p.value === 'string' && p.value.length <= 1024) tags[m[1]!.toLowerCase()] = p.value;
  }
  const selfDeclined = e.responseStatus?.response === 'declined' && !e.isOrganizer;
  return parseCalendarItem({
    kind: 'event',
    provider: 'microsoft',
    calendarId,
    eventId: e.id,
    iCalUID: e.iCalUId ?? null,
    seriesId: e.seriesMasterId ?? null,
    originalStart: e.originalStart ? { kind: 'instant', at: new Date(e.originalStart).toISOString(), zone } : null,
    start: allDay ? { kind: 'date', date: day(e.start) } : startAt ? { kind: 'instant', at: startAt, zone } : undefined,
    end: allDay ? { kind: 'date', date: day(e.end) } : endAt ? { kind: 'instant', at: endAt, zone } : undefined,
    status: e.isCancelled ? 'cancelled' : e.showAs === 'tentative' ? 'tentative' : 'confirmed',
    title: (e.subject ?? '').slice(0, 2000),
    organizer: e.organizer?.emailAddress?.address
      ? { email: e.organizer.emailAddress.address, ...(e.organizer.emailAddress.name ? { name: e.organizer.emailAddress.name } : {}), self: e.isOrganizer === true }
      : null,
    attendees: (e.attendees ?? [])
      .filter((a) => a.emailAddress?.address && a.type !== 'resource')
      .map((a) => ({
        email: a.emailAddress!.address!,
        ...(a.emailAddress!.name ? { name: a.emailAddress!.name } : {}),
        response: RESPONSES[a.status?.response ?? 'none'] ?? 'none',
        self: owner !== null && a.emailAddress!.address!.toLowerCase() === owner,
        organizer: a.status?.response === 'organizer',
      })),
    location: e.location?.displayName || null,
    onlineMeetingUrl: e.onlineMeeting?.joinUrl ?? null,
    tags,
    categories: e.categories ?? [],
    colorId: null,
    showAs: e.showAs === 'free' || e.showAs === 'workingElsewhere' || selfDeclined ? 'free' : 'busy',
    updated: e.lastModifiedDateTime ?? opts.listedAt,
    // Occurrence stubs carry no version: their times are what can change.
    version: e.changeKey ?? e['@odata.etag'] ?? (e.type === 'occurrence' ? `stub:${e.start?.dateTime ?? ''}/${e.end?.dateTime ?? ''}` : undefined),
  });
}
