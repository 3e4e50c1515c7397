// Graph's patternedRecurrence (event.md `recurrence`: pattern daily|weekly|absoluteMonthly|relativeMonthly|absoluteYearly|
// relativeYearly, range endDate|noEnd|numbered) normalized and expanded to occurrence starts in the series' own zone.
import { DateTime } from 'luxon';

export class RecurrenceError extends Error {}

const PATTERN_TYPES = ['daily', 'weekly', 'absoluteMonthly', 'relativeMonthly', 'absoluteYearly', 'relativeYearly'] as const;
const RANGE_TYPES = ['endDate', 'noEnd', 'numbered'] as const;
const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
const INDEXES = ['first', 'second', 'third', 'fourth', 'last'] as const;

export type PatternType = (typeof PATTERN_TYPES)[number];
export type RangeType = (typeof RANGE_TYPES)[number];
type Weekday = (typeof WEEKDAYS)[number];
type WeekIndex = (typeof INDEXES)[number];

export interface Recurrence {
  pattern: {
    type: PatternType;
    interval: number;
    month: number;
    dayOfMonth: number;
    daysOfWeek: Weekday[];
    firstDayOfWeek: Weekday;
    index: WeekIndex;
  };
  range: {
    type: RangeType;
    startDate: string;
    endDate: string;
    recurrenceTimeZone: string;
    numberOfOccurrences: number;
  };
}

const NO_DATE = '0001-01-01';
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function obj(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new RecurrenceError(`${what} must be an object.`);
  return v as Record<string, unknown>;
}

function int(v: unknown, dflt: number, what: string): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new RecurrenceError(`Invalid ${what}: ${String(v)}`);
  return v;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], dflt: T | undefined, what: string): T {
  if ((v === undefined || v === null) && dflt !== undefined) return dflt;
  const hit = allowed.find((a) => typeof v === 'string' && a.toLowerCase() === v.toLowerCase());
  if (hit === undefined) throw new RecurrenceError(`Invalid ${what}: ${String(v)}`);
  return hit;
}

/** Validates a request's recurrence; `startLocal` is the event start in its zone (defaults for weekly/monthly). */
export function normalizeRecurrence(input: unknown, startLocal: DateTime, startZoneName: string): Recurrence {
  const r = obj(input, 'recurrence');
  const p = obj(r['pattern'], 'recurrence.pattern');
  const g = obj(r['range'], 'recurrence.range');
  const type = oneOf(p['type'], PATTERN_TYPES, undefined, 'recurrence pattern type');
  const interval = int(p['interval'], 1, 'recurrence interval');
  if (interval < 1) throw new RecurrenceError('The recurrence interval must be at least 1.');
  const rawDays = Array.isArray(p['daysOfWeek']) ? p['daysOfWeek'] : [];
  const daysOfWeek = rawDays.map((d) => oneOf(d, WEEKDAYS, undefined, 'day of week'));
  const startWeekday = WEEKDAYS[startLocal.weekday - 1]!;
  const pattern: Recurrence['pattern'] = {
    type,
    interval,
    month: int(p['month'], 0, 'month'),
    dayOfMonth: int(p['dayOfMonth'], 0, 'dayOfMonth'),
    daysOfWeek,
    firstDayOfWeek: oneOf(p['firstDayOfWeek'], WEEKDAYS, 'sunday', 'firstDayOfWeek'),
    index: oneOf(p['index'], INDEXES, 'first', 'index'),
  };
  if (type === 'weekly' && daysOfWeek.length === 0) pattern.daysOfWeek = [startWeekday];
  if ((type === 'relativeMonthly' || type === 'relativeYearly') && daysOfWeek.length === 0) {
    throw new RecurrenceError(`daysOfWeek is required for a ${type} pattern.`);
  }
  if ((type === 'absoluteMonthly' || type === 'absoluteYearly') && (pattern.dayOfMonth < 1 || pattern.dayOfMonth > 31)) {
    throw new RecurrenceError(`dayOfMonth must be between 1 and 31 for a ${type} pattern.`);
  }
  if ((type === 'absoluteYearly' || type === 'relativeYearly') && (pattern.month < 1 || pattern.month > 12)) {
    throw new RecurrenceError(`month must be between 1 and 12 for a ${type} pattern.`);
  }
  const rangeType = oneOf(g['type'], RANGE_TYPES, undefined, 'recurrence range type');
  const startDate = typeof g['startDate'] === 'string' ? g['startDate'] : startLocal.toISODate() ?? '';
  if (!DATE.test(startDate) || !DateTime.fromISO(startDate).isValid) throw new RecurrenceError(`Invalid recurrence range startDate: ${startDate}`);
  let endDate = NO_DATE;
  let numberOfOccurrences = 0;
  if (rangeType === 'endDate') {
    endDate = typeof g['endDate'] === 'string' ? g['endDate'] : '';
    if (!DATE.test(endDate) || !DateTime.fromISO(endDate).isValid) throw new RecurrenceError(`Invalid recurrence range endDate: ${endDate}`);
    if (endDate < startDate) throw new RecurrenceError('The recurrence range endDate is before its startDate.');
  }
  if (rangeType === 'numbered') {
    numberOfOccurrences = int(g['numberOfOccurrences'], 0, 'numberOfOccurrences');
    if (numberOfOccurrences < 1) throw new RecurrenceError('numberOfOccurrences must be at least 1.');
  }
  const recurrenceTimeZone = typeof g['recurrenceTimeZone'] === 'string' && g['recurrenceTimeZone'] !== '' ? g['recurrenceTimeZone'] : startZoneName;
  return { pattern, range: { type: rangeType, startDate, endDate, recurrenceTimeZone, numberOfOccurrences } };
}

function weekdayNumber(d: Weekday): number {
  return WEEKDAYS.indexOf(d) + 1; // luxon: 1 = Monday … 7 = Sunday
}

function clampDay(year: number, month: number, day: number, zone: string): DateTime {
  const first = DateTime.fromObject({ year, month, day: 1 }, { zone });
  return first.set({ day: Math.min(day, first.daysInMonth ?? 28) });
}

/** The index-th (or last) day of the month that is one of `days` (Outlook allows several, e.g. "first weekday"). */
function relativeDay(year: number, month: number, days: Weekday[], index: WeekIndex, zone: string): DateTime {
  const first = DateTime.fromObject({ year, month, day: 1 }, { zone });
  const wanted = new Set(days.map(weekdayNumber));
  const matches: DateTime[] = [];
  for (let d = first; d.month === month; d = d.plus({ days: 1 })) if (wanted.has(d.weekday)) matches.push(d);
  if (index === 'last') return matches[matches.length - 1]!;
  return matches[Math.min(INDEXES.indexOf(index), matches.length - 1)]!;
}

/** Pattern dates (midnight in `zone`) in ascending order from the range start, before any range end applies. */
function* patternDates(rec: Recurrence, zone: string): Generator<DateTime> {
  const { pattern: p } = rec;
  const start = DateTime.fromISO(rec.range.startDate, { zone });
  const MAX_PERIODS = 50_000;
  switch (p.type) {
    case 'daily':
      for (let k = 0; k < MAX_PERIODS * 7; k++) yield start.plus({ days: k * p.interval });
      return;
    case 'weekly': {
      const fdow = weekdayNumber(p.firstDayOfWeek);
      const weekStart = start.minus({ days: (start.weekday - fdow + 7) % 7 });
      const offsets = [...new Set(p.daysOfWeek.map((d) => (weekdayNumber(d) - fdow + 7) % 7))].sort((a, b) => a - b);
      for (let k = 0; k < MAX_PERIODS; k++) {
        const week = weekStart.plus({ days: k * p.interval * 7 });
        for (const o of offsets) {
          const d = week.plus({ days: o });
          if (d >= start) yield d;
        }
      }
      return;
    }
    case 'absoluteMonthly':
    case 'relativeMonthly':
      for (let k = 0; k < MAX_PERIODS; k++) {
        const m = start.startOf('month').plus({ months: k * p.interval });
        const d = p.type === 'absoluteMonthly' ? clampDay(m.year, m.month, p.dayOfMonth, zone) : relativeDay(m.year, m.month, p.daysOfWeek, p.index, zone);
        if (d >= start) yield d;
      }
      return;
    case 'absoluteYearly':
    case 'relativeYearly':
      for (let k = 0; k < MAX_PERIODS; k++) {
        const y = start.year + k * p.interval;
        const d = p.type === 'absoluteYearly' ? clampDay(y, p.month, p.dayOfMonth, zone) : relativeDay(y, p.month, p.daysOfWeek, p.index, zone);
        if (d >= start) yield d;
      }
      return;
  }
}

/**
 * Occurrence starts of a series whose first start is `startLocal` (its time of day is kept on every date, so wall-clock
 * times survive DST), in ascending order, stopping at the range's end, before `until` (exclusive) or after `limit` starts.
 */
export function expandRecurrence(rec: Recurrence, startLocal: DateTime, until: DateTime, limit = Number.POSITIVE_INFINITY): DateTime[] {
  const zone = startLocal.zoneName ?? 'UTC';
  const out: DateTime[] = [];
  const endDate = rec.range.type === 'endDate' ? rec.range.endDate : undefined;
  let count = 0;
  for (const d of patternDates(rec, zone)) {
    if (endDate !== undefined && (d.toISODate() ?? '') > endDate) break;
    if (rec.range.type === 'numbered' && count >= rec.range.numberOfOccurrences) break;
    const at = DateTime.fromObject(
      { year: d.year, month: d.month, day: d.day, hour: startLocal.hour, minute: startLocal.minute, second: startLocal.second },
      { zone },
    );
    if (at >= until) break;
    count += 1;
    out.push(at);
    if (out.length >= limit) break;
  }
  return out;
}

/** The recurrence as Graph returns it (every property present). */
export function renderRecurrence(rec: Recurrence): Record<string, unknown> {
  return { pattern: { ...rec.pattern, daysOfWeek: [...rec.pattern.daysOfWeek] }, range: { ...rec.range } };
}
