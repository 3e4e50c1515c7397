// Expansion of an event's `recurrence` lines (RFC 5545 RRULE/RDATE/EXDATE, as the discovery document's
// Event.recurrence says) into instance start times, in the series' own time zone so wall-clock times survive DST.
import { DateTime } from 'luxon';

export class RecurrenceError extends Error {}

type Freq = 'DAILY' | 'WEEKLY' | 'MONTHLY' | 'YEARLY';

interface ByDay {
  weekday: number; // luxon: 1 = Monday … 7 = Sunday
  ordinal: number; // 0 = every such weekday in the period
}

interface Rule {
  freq: Freq;
  interval: number;
  count?: number;
  until?: { instant?: DateTime; date?: string };
  byDay: ByDay[];
  byMonthDay: number[];
  byMonth: number[];
  wkst: number;
}

interface DateList {
  /** Exact instants (date-time values). */
  instants: DateTime[];
  /** ISO dates (VALUE=DATE values). */
  dates: string[];
}

export interface ParsedRecurrence {
  rules: Rule[];
  rdates: DateList;
  exdates: DateList;
}

const WEEKDAYS: Record<string, number> = { MO: 1, TU: 2, WE: 3, TH: 4, FR: 5, SA: 6, SU: 7 };

function parseInt10(v: string, what: string): number {
  if (!/^[+-]?\d+$/.test(v)) throw new RecurrenceError(`Invalid ${what}: ${v}`);
  return Number.parseInt(v, 10);
}

function parseIcalValue(value: string, params: Map<string, string>, zone: string): DateTime | string {
  const isDate = params.get('VALUE') === 'DATE' || /^\d{8}$/.test(value);
  if (isDate) {
    const m = /^(\d{4})(\d{2})(\d{2})$/.exec(value);
    if (!m) throw new RecurrenceError(`Invalid date: ${value}`);
    return `${m[1]}-${m[2]}-${m[3]}`;
  }
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)$/.exec(value);
  if (!m) throw new RecurrenceError(`Invalid date-time: ${value}`);
  const parts = { year: +m[1]!, month: +m[2]!, day: +m[3]!, hour: +m[4]!, minute: +m[5]!, second: +m[6]! };
  const at = m[7] === 'Z' ? DateTime.fromObject(parts, { zone: 'utc' }) : DateTime.fromObject(parts, { zone: params.get('TZID') ?? zone });
  if (!at.isValid) throw new RecurrenceError(`Invalid date-time: ${value}`);
  return at;
}

function parseRule(body: string, zone: string): Rule {
  const kv = new Map<string, string>();
  for (const part of body.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) throw new RecurrenceError(`Invalid RRULE part: ${part}`);
    kv.set(part.slice(0, eq).toUpperCase(), part.slice(eq + 1));
  }
  const freq = kv.get('FREQ');
  if (freq !== 'DAILY' && freq !== 'WEEKLY' && freq !== 'MONTHLY' && freq !== 'YEARLY') {
    throw new RecurrenceError(`Unsupported FREQ: ${String(freq)}`);
  }
  for (const key of kv.keys()) {
    if (!['FREQ', 'INTERVAL', 'COUNT', 'UNTIL', 'BYDAY', 'BYMONTHDAY', 'BYMONTH', 'WKST'].includes(key)) {
      throw new RecurrenceError(`Unsupported RRULE part: ${key}`);
    }
  }
  const rule: Rule = { freq, interval: 1, byDay: [], byMonthDay: [], byMonth: [], wkst: 1 };
  const interval = kv.get('INTERVAL');
  if (interval !== undefined) rule.interval = parseInt10(interval, 'INTERVAL');
  if (rule.interval < 1) throw new RecurrenceError('INTERVAL must be positive');
  const count = kv.get('COUNT');
  if (count !== undefined) rule.count = parseInt10(count, 'COUNT');
  const until = kv.get('UNTIL');
  if (until !== undefined) {
    if (rule.count !== undefined) throw new RecurrenceError('COUNT and UNTIL together');
    const v = parseIcalValue(until, new Map(), zone);
    rule.until = typeof v === 'string' ? { date: v } : { instant: v };
  }
  const byDay = kv.get('BYDAY');
  if (byDay !== undefined) {
    for (const d of byDay.split(',')) {
      const m = /^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$/.exec(d.toUpperCase());
      if (!m) throw new RecurrenceError(`Invalid BYDAY: ${d}`);
      rule.byDay.push({ weekday: WEEKDAYS[m[2]!]!, ordinal: m[1] ? Number.parseInt(m[1], 10) : 0 });
    }
  }
  const byMonthDay = kv.get('BYMONTHDAY');
  if (byMonthDay !== undefined) rule.byMonthDay = byMonthDay.split(',').map((v) => parseInt10(v, 'BYMONTHDAY'));
  const byMonth = kv.get('BYMONTH');
  if (byMonth !== undefined) rule.byMonth = byMonth.split(',').map((v) => parseInt10(v, 'BYMONTH'));
  const wkst = kv.get('WKST');
  if (wkst !== undefined) {
    const w = WEEKDAYS[wkst.toUpperCase()];
    if (w === undefined) throw new RecurrenceError(`Invalid WKST: ${wkst}`);
    rule.wkst = w;
  }
  if (rule.byDay.some((d) => d.ordinal !== 0) && rule.freq !== 'MONTHLY' && rule.freq !== 'YEARLY') {
    throw new RecurrenceError('BYDAY ordinals only with MONTHLY or YEARLY');
  }
  return rule;
}

/** Parses the `recurrence` array; `zone` is the series' start.timeZone (used for floating values). */
export function parseRecurrence(lines: readonly string[], zone: string): ParsedRecurrence {
  const out: ParsedRecurrence = { rules: [], rdates: { instants: [], dates: [] }, exdates: { instants: [], dates: [] } };
  for (const raw of lines) {
    const line = raw.trim();
    const colon = line.indexOf(':');
    if (colon < 0) throw new RecurrenceError(`Invalid recurrence line: ${line}`);
    const [name, ...paramParts] = line.slice(0, colon).split(';');
    const params = new Map<string, string>();
    for (const p of paramParts) {
      const eq = p.indexOf('=');
      if (eq > 0) params.set(p.slice(0, eq).toUpperCase(), p.slice(eq + 1));
    }
    const value = line.slice(colon + 1);
    switch ((name ?? '').toUpperCase()) {
      case 'RRULE':
        out.rules.push(parseRule(value, zone));
        break;
      case 'RDATE':
      case 'EXDATE': {
        const list = name?.toUpperCase() === 'RDATE' ? out.rdates : out.exdates;
        for (const v of value.split(',')) {
          const parsed = parseIcalValue(v, params, zone);
          if (typeof parsed === 'string') list.dates.push(parsed);
          else list.instants.push(parsed);
        }
        break;
      }
      default:
        throw new RecurrenceError(`Unsupported recurrence line: ${line}`);
    }
  }
  if (out.rules.length === 0 && out.rdates.instants.length === 0 && out.rdates.dates.length === 0) {
    throw new RecurrenceError('No RRULE or RDATE');
  }
  return out;
}

function daysInMonth(year: number, month: number): number {
  return DateTime.fromObject({ year, month, day: 1 }).daysInMonth ?? 31;
}

/** The days (as {year, month, day}) of one period of the rule, in order. */
function periodDays(rule: Rule, start: DateTime, periodIndex: number): { year: number; month: number; day: number }[] {
  const base = start.startOf('day');
  const result: { year: number; month: number; day: number }[] = [];
  const push = (d: DateTime): void => {
    result.push({ year: d.year, month: d.month, day: d.day });
  };
  const byDayPlain = rule.byDay.filter((d) => d.ordinal === 0).map((d) => d.weekday);
  const monthOk = (m: number): boolean => rule.byMonth.length === 0 || rule.byMonth.includes(m);
  switch (rule.freq) {
    case 'DAILY': {
      const d = base.plus({ days: periodIndex * rule.interval });
      if (byDayPlain.length > 0 && !byDayPlain.includes(d.weekday)) break;
      if (!monthOk(d.month)) break;
      if (rule.byMonthDay.length > 0 && !rule.byMonthDay.some((md) => (md > 0 ? md : daysInMonth(d.year, d.month) + md + 1) === d.day)) break;
      push(d);
      break;
    }
    case 'WEEKLY': {
      const offset = (base.weekday - rule.wkst + 7) % 7;
      const weekStart = base.minus({ days: offset }).plus({ weeks: periodIndex * rule.interval });
      const days = byDayPlain.length > 0 ? byDayPlain : [base.weekday];
      for (let i = 0; i < 7; i++) {
        const d = weekStart.plus({ days: i });
        if (days.includes(d.weekday) && monthOk(d.month)) push(d);
      }
      break;
    }
    case 'MONTHLY':
    case 'YEARLY': {
      const months: { year: number; month: number }[] = [];
      if (rule.freq === 'MONTHLY') {
        const m = base.startOf('month').plus({ months: periodIndex * rule.interval });
        if (monthOk(m.month)) months.push({ year: m.year, month: m.month });
      } else {
        const year = base.year + periodIndex * rule.interval;
        for (const month of rule.byMonth.length > 0 ? [...rule.byMonth].sort((a, b) => a - b) : [base.month]) months.push({ year, month });
      }
      for (const { year, month } of months) {
        const dim = daysInMonth(year, month);
        const picked = new Set<number>();
        if (rule.byMonthDay.length > 0) {
          for (const md of rule.byMonthDay) {
            const day = md > 0 ? md : dim + md + 1;
            if (day >= 1 && day <= dim) picked.add(day);
          }
        }
        if (rule.byDay.length > 0) {
          const byDaySet = new Set<number>();
          for (const bd of rule.byDay) {
            const matching: number[] = [];
            for (let day = 1; day <= dim; day++) {
              if (DateTime.fromObject({ year, month, day }).weekday === bd.weekday) matching.push(day);
            }
            if (bd.ordinal === 0) matching.forEach((d) => byDaySet.add(d));
            else {
              const d = bd.ordinal > 0 ? matching[bd.ordinal - 1] : matching[matching.length + bd.ordinal];
              if (d !== undefined) byDaySet.add(d);
            }
          }
          if (rule.byMonthDay.length > 0) {
            for (const d of [...picked]) if (!byDaySet.has(d)) picked.delete(d);
          } else byDaySet.forEach((d) => picked.add(d));
        }
        if (rule.byMonthDay.length === 0 && rule.byDay.length === 0 && base.day <= dim) picked.add(base.day);
        for (const day of [...picked].sort((a, b) => a - b)) result.push({ year, month, day });
      }
      break;
    }
  }
  return result;
}

function periodStart(rule: Rule, start: DateTime, period: number): DateTime {
  const base = start.startOf('day');
  const n = period * rule.interval;
  switch (rule.freq) {
    case 'DAILY':
      return base.plus({ days: n });
    case 'WEEKLY':
      return base.minus({ days: (base.weekday - rule.wkst + 7) % 7 }).plus({ weeks: n });
    case 'MONTHLY':
      return base.startOf('month').plus({ months: n });
    case 'YEARLY':
      return base.startOf('year').plus({ years: n });
  }
}

function atTimeOfDay(day: { year: number; month: number; day: number }, start: DateTime, allDay: boolean): DateTime {
  if (allDay) return DateTime.fromObject(day, { zone: start.zone });
  return DateTime.fromObject(
    { ...day, hour: start.hour, minute: start.minute, second: start.second, millisecond: start.millisecond },
    { zone: start.zone },
  );
}

function untilReached(rule: Rule, at: DateTime, allDay: boolean): boolean {
  if (!rule.until) return false;
  if (rule.until.instant) {
    if (allDay) return (at.toISODate() ?? '') > (rule.until.instant.setZone(at.zone).toISODate() ?? '');
    return at.toMillis() > rule.until.instant.toMillis();
  }
  return (at.toISODate() ?? '') > (rule.until.date ?? '');
}

export interface ExpandOptions {
  /** Stop generating at this instant (inclusive bound on start times). */
  windowEnd: DateTime;
  /** Safety cap on the number of instances. */
  max?: number;
}

/**
 * Instance start times of the series, ascending, in the zone of `start` (the series' start.timeZone).
 * COUNT counts occurrences of the rule before EXDATEs are removed (RFC 5545 3.8.5.1).
 */
export function expandRecurrence(parsed: ParsedRecurrence, start: DateTime, allDay: boolean, opts: ExpandOptions): DateTime[] {
  const max = opts.max ?? 10_000;
  const endMs = opts.windowEnd.toMillis();
  const byMs = new Map<number, DateTime>();
  for (const rule of parsed.rules) {
    let produced = 0;
    let done = false;
    for (let period = 0; !done && period < 100_000; period++) {
      // Periods start in ascending order: one that starts after the window (or UNTIL) ends the scan.
      if (periodStart(rule, start, period).toMillis() > endMs) break;
      const days = periodDays(rule, start, period);
      for (const day of days) {
        const at = atTimeOfDay(day, start, allDay);
        if (at.toMillis() < start.toMillis()) continue;
        if (untilReached(rule, at, allDay) || at.toMillis() > endMs) {
          done = true;
          break;
        }
        if (rule.count !== undefined && produced >= rule.count) {
          done = true;
          break;
        }
        produced++;
        byMs.set(at.toMillis(), at);
        if (byMs.size >= max) {
          done = true;
          break;
        }
      }
    }
  }
  for (const at of parsed.rdates.instants) if (at.toMillis() <= endMs) byMs.set(at.toMillis(), at.setZone(start.zone));
  for (const date of parsed.rdates.dates) {
    const at = atTimeOfDay(DateTime.fromISO(date), start, allDay);
    if (at.toMillis() <= endMs) byMs.set(at.toMillis(), at);
  }
  const exInstants = new Set(parsed.exdates.instants.map((d) => d.toMillis()));
  const exDates = new Set(parsed.exdates.dates);
  return [...byMs.values()]
    .filter((at) => !exInstants.has(at.toMillis()) && !exDates.has(at.toISODate() ?? ''))
    .sort((a, b) => a.toMillis() - b.toMillis());
}

/** Whether the series ends by itself (every rule has COUNT or UNTIL). */
export function isBounded(parsed: ParsedRecurrence): boolean {
  return parsed.rules.every((r) => r.count !== undefined || r.until !== undefined);
}

/**
 * The instance-id suffix Google uses: UTC of the original start, "YYYYMMDDTHHMMSSZ", or "YYYYMMDD" for all-day
 * (google-examples.md C1: "5hni4sj3ql1669otmjg7sn1mok_20250325T130000Z").
 */
export function instanceKey(at: DateTime, allDay: boolean): string {
  return allDay ? at.toFormat('yyyyMMdd') : at.toUTC().toFormat("yyyyMMdd'T'HHmmss'Z'");
}

export const INSTANCE_KEY = /^(\d{8})(T\d{6}Z)?$/;
