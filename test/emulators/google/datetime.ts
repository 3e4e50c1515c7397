// Event times for the Google emulator: the EventDateTime shape ({date} | {dateTime, timeZone?}) of the
// Calendar v3 discovery document (schema EventDateTime), parsed and rendered with luxon.
import { DateTime, IANAZone } from 'luxon';

export interface EventDateTime {
  date?: string;
  dateTime?: string;
  timeZone?: string;
}

export interface ResolvedTime {
  /** The instant, expressed in `zone` (for all-day: midnight of the date in `zone`). */
  at: DateTime;
  allDay: boolean;
  /** The zone the time is expressed in: the EventDateTime's own timeZone or the fallback (calendar) zone. */
  zone: string;
  /** Whether the EventDateTime named its timeZone. */
  explicitZone: boolean;
}

const zones = new Map<string, boolean>();
/** Cached: luxon asks Intl each time, which made the emulator a sixth of a benchmark's CPU. */
export function isValidZone(zone: string): boolean {
  let ok = zones.get(zone);
  if (ok === undefined) zones.set(zone, (ok = IANAZone.isValidZone(zone)));
  return ok;
}

export function asEventDateTime(v: unknown): EventDateTime | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const out: EventDateTime = {};
  if (typeof o['date'] === 'string') out.date = o['date'];
  if (typeof o['dateTime'] === 'string') out.dateTime = o['dateTime'];
  if (typeof o['timeZone'] === 'string') out.timeZone = o['timeZone'];
  return out;
}

const RFC3339_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const LOCAL_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$/;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/** "Must be an RFC3339 timestamp with mandatory time zone offset" (events.list timeMin/timeMax). */
export function parseRfc3339(s: string): DateTime | undefined {
  if (!RFC3339_WITH_OFFSET.test(s)) return undefined;
  const d = DateTime.fromISO(s, { setZone: true });
  return d.isValid ? d : undefined;
}

/** Resolves an EventDateTime; throws a plain Error with a Google-like message when it is unusable. */
export function resolveTime(edt: EventDateTime, fallbackZone: string, which: 'start' | 'end' = 'start'): ResolvedTime {
  const explicitZone = typeof edt.timeZone === 'string' && edt.timeZone !== '';
  const zone = explicitZone ? (edt.timeZone as string) : fallbackZone;
  if (!isValidZone(zone)) throw new Error(`Invalid time zone definition for ${which} time.`);
  if (edt.date !== undefined && edt.dateTime === undefined) {
    if (!DATE_ONLY.test(edt.date)) throw new Error(`Invalid ${which} time.`);
    const at = DateTime.fromISO(edt.date, { zone });
    if (!at.isValid) throw new Error(`Invalid ${which} time.`);
    return { at, allDay: true, zone, explicitZone };
  }
  if (edt.dateTime !== undefined) {
    if (!RFC3339_WITH_OFFSET.test(edt.dateTime) && !LOCAL_DATE_TIME.test(edt.dateTime)) throw new Error(`Invalid ${which} time.`);
    if (LOCAL_DATE_TIME.test(edt.dateTime) && !explicitZone) throw new Error(`Missing time zone definition for ${which} time.`);
    const at = DateTime.fromISO(edt.dateTime, { zone });
    if (!at.isValid) throw new Error(`Invalid ${which} time.`);
    return { at, allDay: false, zone, explicitZone };
  }
  throw new Error(`Missing ${which} time.`);
}

/** RFC 3339 with the zone's offset and no milliseconds, as Google renders event times ("2025-02-09T08:00:00-06:00"). */
export function formatDateTime(at: DateTime): string {
  return at.toISO({ suppressMilliseconds: true, includeOffset: true }) ?? '';
}

/** Renders a time in the stored shape: {date} for all-day, else {dateTime[, timeZone]}. */
export function renderTime(at: DateTime, allDay: boolean, timeZone: string | undefined): EventDateTime {
  if (allDay) return { date: at.toISODate() ?? '' };
  return timeZone === undefined ? { dateTime: formatDateTime(at) } : { dateTime: formatDateTime(at), timeZone };
}

/** "updated"/"created": RFC 3339 in UTC with milliseconds and Z, as in the reference payloads. */
export function formatTimestamp(at: DateTime): string {
  return at.toUTC().toISO({ suppressMilliseconds: false }) ?? '';
}
