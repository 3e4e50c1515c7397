// freebusy.query of the Google emulator (POST calendar/v3/freeBusy): the FreeBusyRequest and FreeBusyResponse schemas
// of the discovery document (/work/shared/refs/google-calendar-v3-discovery.json), busy time computed from the stored
// events, and a calendar that cannot be read answered inside the 200 as that calendar's `errors`.
import { DateTime } from 'luxon';
import { isValidZone, parseRfc3339 } from './datetime.js';
import * as E from './errors.js';
import { isObject, str, type Json } from './events.js';
import type { CalendarStore } from './store.js';

/** FreeBusyRequest.calendarExpansionMax: "Maximum value is 50" (and the number of calendars answered when not given). */
export const CALENDAR_EXPANSION_MAX = 50;
/**
 * The longest range Google answers. The discovery document names none; Google answers a longer one with 400 "The
 * requested time range is too long." (calcom/cal.com#11696; #11962 splits at "a maximum time span of 90 days"; reason
 * timeRangeTooLong as integrations record it). API-NOTES: "ranges over ~90 days are refused".
 */
export const MAX_RANGE_DAYS = 90;

/** What a test breaks on purpose: the calendar's entry answers these reasons (e.g. internalError) instead of its busy time. */
export type FreeBusyFailures = ReadonlyMap<string, string>;

function timeRangeTooLong(): E.GoogleApiError {
  const m = 'The requested time range is too long.';
  return new E.GoogleApiError(400, m, [{ domain: 'calendar', reason: 'timeRangeTooLong', message: m }], 'INVALID_ARGUMENT');
}

/** A required instant of the request: "Missing timeMin parameter." (reason required) when absent, 400 invalid when not RFC 3339. */
function instant(req: Json, name: 'timeMin' | 'timeMax'): DateTime {
  const raw = str(req[name]);
  if (raw === undefined || raw === '') throw E.required(`Missing ${name} parameter.`);
  const at = parseRfc3339(raw);
  if (!at) throw E.invalid(`Invalid value for: ${name}`);
  return at;
}

/**
 * Answers freebusy.query for the account `sub`. Each item is a calendar id as the calendar list knows it ('primary'
 * included), answered under the same key: its busy periods (TimePeriod: start inclusive, end exclusive) in the request's
 * timeZone (default UTC), or, for a calendar the account does not have, errors [{domain: "global", reason: "notFound"}]
 * with no busy time; items past calendarExpansionMax answer reason tooManyCalendarsRequested (Error.reason in the
 * discovery document; the emulator's domain). timeMin and timeMax come back in UTC with milliseconds, as in
 * fixtures/freebusy-query-response.json.
 */
export function freeBusyQuery(store: CalendarStore, sub: string, req: Json, failures: FreeBusyFailures = new Map()): Json {
  const timeMin = instant(req, 'timeMin');
  const timeMax = instant(req, 'timeMax');
  if (timeMax.toMillis() <= timeMin.toMillis()) throw E.timeRangeEmpty();
  if (timeMax.diff(timeMin, 'days').days > MAX_RANGE_DAYS) throw timeRangeTooLong();
  const zone = str(req['timeZone']) ?? 'UTC';
  if (!isValidZone(zone)) throw E.invalid(`Invalid time zone definition: ${zone}`);
  const rawMax = req['calendarExpansionMax'];
  if (rawMax !== undefined && (typeof rawMax !== 'number' || !Number.isInteger(rawMax) || rawMax < 1 || rawMax > CALENDAR_EXPANSION_MAX)) {
    throw E.invalid('Invalid value for: calendarExpansionMax');
  }
  const expansionMax = typeof rawMax === 'number' ? rawMax : CALENDAR_EXPANSION_MAX;
  const items = req['items'];
  if (items !== undefined && !Array.isArray(items)) throw E.parseError();
  const fmt = (ms: number): string => DateTime.fromMillis(ms, { zone }).toISO({ suppressMilliseconds: true }) ?? '';
  const calendars: Json = {};
  let counted = 0;
  for (const it of (items ?? []) as unknown[]) {
    const id = isObject(it) ? str(it['id']) : undefined;
    if (id === undefined || id in calendars) continue;
    counted += 1;
    if (counted > expansionMax) {
      calendars[id] = { errors: [{ domain: 'global', reason: 'tooManyCalendarsRequested' }], busy: [] };
      continue;
    }
    const entry = store.entryFor(sub, id);
    const failure = entry ? failures.get(entry.calendarId) : undefined;
    if (!entry) calendars[id] = { errors: [{ domain: 'global', reason: 'notFound' }], busy: [] };
    else if (failure) calendars[id] = { errors: [{ domain: 'global', reason: failure }], busy: [] };
    else calendars[id] = { busy: store.busy(entry.calendarId, timeMin, timeMax).map((x) => ({ start: fmt(x.s), end: fmt(x.e) })) };
  }
  const utc = (d: DateTime): string => d.toUTC().toISO() ?? '';
  return { kind: 'calendar#freeBusy', timeMin: utc(timeMin), timeMax: utc(timeMax), calendars };
}
