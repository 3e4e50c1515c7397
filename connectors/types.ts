// The normalised calendar item every connector produces and everything after it reads: a live event
// or a tombstone (DESIGN.md, Contracts). Zod schemas; nothing after a connector sees platform fields.
import { IANAZone } from 'luxon';
import { z } from 'zod';

const zoneCache = new Map<string, boolean>();
/** IANA zone check, cached: Intl is slow to ask and calendars repeat a handful of zones. */
export function isValidZone(zone: string): boolean {
  let ok = zoneCache.get(zone);
  if (ok === undefined) {
    ok = IANAZone.isValidZone(zone);
    zoneCache.set(zone, ok);
  }
  return ok;
}

const MIN_YEAR = 1970;
const MAX_YEAR = 2100;

function yearInRange(y: number): boolean {
  return y >= MIN_YEAR && y <= MAX_YEAR;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * A real calendar date (and time of day) at the start of an ISO string that the caller's pattern
 * already shaped: Date.parse takes "2026-02-30" and rolls it over to March, so check by hand.
 */
function realDateTime(s: string): boolean {
  const y = Number(s.slice(0, 4));
  const m = Number(s.slice(5, 7));
  const d = Number(s.slice(8, 10));
  if (m < 1 || m > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (d > (m === 2 && leap ? 29 : DAYS_IN_MONTH[m - 1]!)) return false;
  if (s.length > 10) {
    const hh = Number(s.slice(11, 13));
    const mm = Number(s.slice(14, 16));
    const ss = s[16] === ':' ? Number(s.slice(17, 19)) : 0;
    if (hh > 23 || mm > 59 || ss > 59) return false;
    const offset = /([+-])(\d{2}):(\d{2})$/.exec(s);
    if (offset && (Number(offset[2]) > 23 || Number(offset[3]) > 59)) return false;
  }
  return true;
}

const instantString = z.string().refine(
  (s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(s) && realDateTime(s) && yearInRange(new Date(s).getUTCFullYear()),
  { error: (i) => `must be an RFC 3339 instant with an offset, between ${MIN_YEAR} and ${MAX_YEAR} (got ${JSON.stringify(i.input)})` },
);

const dateString = z.string().refine(
  (s) => /^\d{4}-\d{2}-\d{2}$/.test(s) && realDateTime(s) && yearInRange(Number(s.slice(0, 4))),
  { error: (i) => `must be a date YYYY-MM-DD between ${MIN_YEAR} and ${MAX_YEAR} (got ${JSON.stringify(i.input)})` },
);

const localString = z.string().refine(
  (s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s) && realDateTime(s) && yearInRange(Number(s.slice(0, 4))),
  { error: (i) => `must be a local date-time YYYY-MM-DDTHH:MM[:SS] without offset, between ${MIN_YEAR} and ${MAX_YEAR} (got ${JSON.stringify(i.input)})` },
);

export const zoneSchema = z.string().refine(isValidZone, { error: (i) => `must be an IANA time zone (got ${JSON.stringify(i.input)})` });

/** An instant with the event's zone, a whole day (all-day events), or a floating local time. */
export const eventTimeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('instant'), at: instantString, zone: zoneSchema }),
  z.strictObject({ kind: z.literal('date'), date: dateString }),
  z.strictObject({ kind: z.literal('floating'), local: localString }),
]);
export type EventTime = z.infer<typeof eventTimeSchema>;

export const providerSchema = z.enum(['google', 'microsoft']);

export const attendeeSchema = z.strictObject({
  email: z.string().min(3).max(320),
  name: z.string().max(500).optional(),
  response: z.enum(['accepted', 'declined', 'tentative', 'none']),
  /** This attendee is the calendar's owner (the therapist). */
  self: z.boolean().default(false),
  organizer: z.boolean().default(false),
});
export type Attendee = z.infer<typeof attendeeSchema>;

/** Our own marks on an event, written by the add-ons (private extended properties / single-value properties). */
export const tagsSchema = z.record(z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/, 'tag names are short lower-case words'), z.string().max(1024));

export const liveEventSchema = z
  .strictObject({
    kind: z.literal('event'),
    provider: providerSchema,
    calendarId: z.string().min(1),
    eventId: z.string().min(1),
    iCalUID: z.string().min(1).nullable().default(null),
    /** Recurring instances: the series (Google recurringEventId, Graph seriesMasterId). */
    seriesId: z.string().min(1).nullable().default(null),
    /** Recurring instances: where the series would have put this one; identifies it within the series. */
    originalStart: eventTimeSchema.nullable().default(null),
    start: eventTimeSchema,
    end: eventTimeSchema,
    status: z.enum(['confirmed', 'tentative', 'cancelled']),
    title: z.string().max(2000).default(''),
    organizer: z.strictObject({ email: z.string(), name: z.string().optional(), self: z.boolean().default(false) }).nullable().default(null),
    attendees: z.array(attendeeSchema).max(1000).default([]),
    location: z.string().max(2000).nullable().default(null),
    onlineMeetingUrl: z.string().max(2000).nullable().default(null),
    tags: tagsSchema.default({}),
    /** Whether the event blocks the time (Google transparency, Graph showAs). */
    showAs: z.enum(['busy', 'free']).default('busy'),
    /** Outlook categories; Google has none (its colour is colorId). */
    categories: z.array(z.string().max(255)).default([]),
    colorId: z.string().max(32).nullable().default(null),
    /** When the platform last changed the event. */
    updated: instantString,
    /** etag (Google) or changeKey (Graph). */
    version: z.string().min(1),
  })
  .superRefine((e, ctx) => {
    if (e.start.kind !== e.end.kind) {
      ctx.addIssue({ code: 'custom', path: ['end'], message: `must be the same kind of time as start (start is ${e.start.kind}, end is ${e.end.kind})` });
      return;
    }
    const a = timeKey(e.start);
    const b = timeKey(e.end);
    if (b < a) ctx.addIssue({ code: 'custom', path: ['end'], message: 'must not be before start' });
  });
export type LiveEvent = z.infer<typeof liveEventSchema>;

export const tombstoneSchema = z.strictObject({
  kind: z.literal('tombstone'),
  provider: providerSchema,
  calendarId: z.string().min(1),
  eventId: z.string().min(1),
  seriesId: z.string().min(1).nullable().default(null),
  originalStart: eventTimeSchema.nullable().default(null),
});
export type Tombstone = z.infer<typeof tombstoneSchema>;

export const calendarItemSchema = z.discriminatedUnion('kind', [liveEventSchema, tombstoneSchema]);
export type CalendarItem = LiveEvent | Tombstone;

/** A comparable key within one kind of time (instants in ms; dates and local times as text). */
function timeKey(t: EventTime): number | string {
  switch (t.kind) {
    case 'instant':
      return Date.parse(t.at);
    case 'date':
      return t.date;
    case 'floating':
      return t.local.length === 16 ? `${t.local}:00` : t.local;
  }
}

export interface ItemError {
  /** The event's id when it had one. */
  eventId: string;
  /** Where the problem is, e.g. "start.zone" or "attendees[2].email". */
  field: string;
  reason: string;
}

/**
 * Checks one item from a connector (or a file). A bad item gives an error naming its id and field;
 * the caller counts it and goes on with the rest of the batch.
 */
export function parseCalendarItem(raw: unknown): { ok: true; item: CalendarItem } | { ok: false; error: ItemError } {
  const result = calendarItemSchema.safeParse(raw);
  if (result.success) return { ok: true, item: result.data };
  const issue = result.error.issues[0]!;
  const id = typeof raw === 'object' && raw !== null && typeof (raw as { eventId?: unknown }).eventId === 'string' ? (raw as { eventId: string }).eventId : '(no id)';
  return {
    ok: false,
    error: { eventId: id, field: issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[') || '(item)', reason: issue.message },
  };
}
