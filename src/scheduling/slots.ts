// Free slots and ranked suggestions, pure: a practice's weekly windows (regular hours and the flexible
// evening and weekend ones) with dated exceptions, minus busy time and its buffers, within notice and
// horizon and the caps per day and per evening; ranked by the client's habit, a compact evening and
// sooner over later, spread over days, each with the reasons that ranked it. Every computation is in
// the therapist's zone on wall-clock times, so 18:00 stays 18:00 across a DST change; "now" is a parameter.
import { DateTime } from 'luxon';
import { minutesOfDay, weekdays, type Weekday } from '../config.js';

export type Mode = 'in_person' | 'telehealth';

/** A weekly window: on these days, from start to end (HH:MM, same day). */
export interface WeeklyWindow {
  days: readonly Weekday[];
  start: string;
  end: string;
  /** Regular hours or a flexible (evening, weekend) window: suggestions say which. */
  kind: 'regular' | 'flexible';
  /** The modes offered in it (default: any). */
  modes?: readonly Mode[];
  /** The appointment types (ids) offered in it (default: any). */
  types?: readonly string[];
  /** Where its in-person sessions are (a location id; default: none named). */
  location?: string;
}

/** A dated change: the day closed (a holiday), or an extra window that day (a late Thursday). */
export type DatedException = { date: string; closed: true } | { date: string; start: string; end: string; kind: 'regular' | 'flexible'; modes?: readonly Mode[] };

export interface Availability {
  /** The therapist's IANA zone: windows and caps are read in it. */
  zone: string;
  windows: readonly WeeklyWindow[];
  exceptions?: readonly DatedException[];
  bufferMinutes: number;
  /** No slot starts sooner than this after now. */
  minNoticeHours: number;
  /** Nor later than this many days ahead. */
  horizonDays: number;
  /** At most this many sessions on one day, and this many in one evening (sessions from `eveningFrom`). */
  caps: { perDay: number; perEvening: number };
  /** When an evening starts (default 17:00). */
  eveningFrom?: string;
  /** Candidate starts fall on this grid of minutes past the hour (default 15). */
  stepMinutes?: number;
}

/** Busy time: an event of the therapist's calendars or a pending hold. Sessions count toward the caps. */
export interface Busy {
  start: number;
  end: number;
  session: boolean;
}

export interface Slot {
  /** UTC instants (ms). */
  start: number;
  end: number;
  window: 'regular' | 'flexible';
  modes: readonly Mode[];
  /** The location its window names for in-person sessions, else null (the practice's default). */
  location: string | null;
  /** The start on the therapist's wall clock. */
  local: { date: string; weekday: Weekday; time: string };
}

const hhmm = (minutes: number) => `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

/** The weekday of a luxon DateTime as our settings name it. */
function weekdayOf(d: DateTime): Weekday {
  return weekdays[d.weekday - 1]!;
}

/**
 * The local wall time on a day, or null when it does not exist there (the hour a DST change skips):
 * luxon moves such a time forward, which would put a slot at a time nobody chose.
 */
function wallTime(day: DateTime, minutes: number): DateTime | null {
  const t = day.set({ hour: Math.floor(minutes / 60), minute: minutes % 60, second: 0, millisecond: 0 });
  return t.hour * 60 + t.minute === minutes ? t : null;
}

/**
 * One local day of a zone: its start and end instants, date and weekday, and whether its offset stays
 * the same all day (then a wall time is its start plus the minutes: luxon is asked only on the days a
 * DST change falls on, as its cost would dominate). Kept in a bounded cache: days repeat across calls.
 */
interface DayInfo {
  day: DateTime;
  dayStart: number;
  dayEnd: number;
  steady: boolean;
  date: string;
  wd: Weekday;
}
const days = new Map<string, DayInfo>();
function dayInfo(zone: string, firstDate: string, first: DateTime, d: number): DayInfo {
  const key = `${zone}|${firstDate}|${d}`;
  let info = days.get(key);
  if (!info) {
    const day = first.plus({ days: d });
    info = { day, dayStart: day.toMillis(), dayEnd: day.plus({ days: 1 }).toMillis(), steady: day.offset === day.endOf('day').offset, date: day.toISODate()!, wd: weekdayOf(day) };
    if (days.size >= 20_000) days.clear();
    days.set(key, info);
  }
  return info;
}

/** The windows of one local day: weekly ones, unless the day is closed, plus its extra ones. */
interface DayWindow {
  start: number;
  end: number;
  kind: 'regular' | 'flexible';
  modes: readonly Mode[];
  location: string | null;
}

/** The windows of one local day that offer this type: weekly ones, unless the day is closed, plus its extra ones. */
function windowsOn(a: Availability, date: string, wd: Weekday, typeId: string | undefined): DayWindow[] {
  const exceptions = (a.exceptions ?? []).filter((e) => e.date === date);
  const all: Mode[] = ['in_person', 'telehealth'];
  const out: DayWindow[] = [];
  if (!exceptions.some((e) => 'closed' in e)) {
    for (const w of a.windows) {
      if (!w.days.includes(wd) || (typeId !== undefined && w.types && !w.types.includes(typeId))) continue;
      out.push({ start: minutesOfDay(w.start), end: minutesOfDay(w.end), kind: w.kind, modes: w.modes ?? all, location: w.location ?? null });
    }
  }
  for (const e of exceptions) if (!('closed' in e)) out.push({ start: minutesOfDay(e.start), end: minutesOfDay(e.end), kind: e.kind, modes: e.modes ?? all, location: null });
  return out;
}

/**
 * Every free slot of `minutes` for `mode` (and appointment type `typeId`) between now + notice and the horizon: inside a window that
 * offers the mode, clear of busy time by the buffer on both sides, and within the day's and the
 * evening's caps. In start order.
 */
export function freeSlots(a: Availability, busy: readonly Busy[], input: { minutes: number; mode?: Mode; typeId?: string; now: number }): Slot[] {
  const step = a.stepMinutes ?? 15;
  const buffer = a.bufferMinutes * 60_000;
  const earliest = input.now + a.minNoticeHours * 3_600_000;
  const latest = input.now + a.horizonDays * 86_400_000;
  const evening = minutesOfDay(a.eveningFrom ?? '17:00');
  const sorted = [...busy].sort((x, y) => x.start - y.start);
  const longest = sorted.reduce((m, b) => Math.max(m, b.end - b.start), 0);
  /** The first index whose start is at or after `t` (sorted by start). */
  const from = (t: number) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]!.start < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const out: Slot[] = [];
  const first = DateTime.fromMillis(input.now, { zone: a.zone }).startOf('day');
  const firstDate = first.toISODate()!;
  for (let d = 0; d <= a.horizonDays + 1; d++) {
    const { day, dayStart, dayEnd, steady, date, wd } = dayInfo(a.zone, firstDate, first, d);
    // Only the busy time near this day is looked at for its candidates (thousands of intervals over
    // the horizon, a few dozen a day).
    const near = sorted.slice(from(dayStart - buffer - longest), from(dayEnd + buffer)).filter((b) => b.end > dayStart - buffer);
    const sessions = near.filter((b) => b.session && b.start >= dayStart && b.start < dayEnd);
    const eveningStart = steady ? dayStart + evening * 60_000 : (wallTime(day, evening)?.toMillis() ?? dayEnd);
    // The caps count the sessions already booked: a slot is offered when one more still fits.
    const perDay = sessions.length;
    const perEvening = sessions.filter((b) => b.start >= eveningStart).length;
    const offered = new Set<number>();
    for (const w of windowsOn(a, date, wd, input.typeId)) {
      if (input.mode && !w.modes.includes(input.mode)) continue;
      for (let m = Math.ceil(w.start / step) * step; m + input.minutes <= w.end; m += step) {
        let start: number;
        if (steady) start = dayStart + m * 60_000;
        else {
          const t = wallTime(day, m);
          if (!t) continue;
          start = t.toMillis();
        }
        // A session lasts its minutes, also over a DST change.
        const end = start + input.minutes * 60_000;
        if (start < earliest || start > latest) continue;
        if (near.some((b) => b.start < end + buffer && b.end > start - buffer)) continue;
        if (perDay >= a.caps.perDay || (start >= eveningStart && perEvening >= a.caps.perEvening)) continue;
        // Two windows of a day may overlap (a regular and an extra one): a start is offered once.
        if (offered.has(start)) continue;
        offered.add(start);
        out.push({ start, end, window: w.kind, modes: input.mode ? [input.mode] : w.modes, location: w.location, local: { date, weekday: wd, time: hhmm(m) } });
      }
    }
  }
  return out.sort((x, y) => x.start - y.start);
}

export interface Suggestion extends Slot {
  score: number;
  /** Why it ranked where it did, naming the values ("Tuesdays 18:00 like the last 6 sessions"). */
  reasons: string[];
}

/** What the client's past sessions say: their usual weekday and time, in the therapist's zone. */
export interface ClientHabit {
  /** Their sessions' starts (UTC ms), kept ones. */
  starts: readonly number[];
}

const DAY_NAMES: Record<Weekday, string> = { mon: 'Mondays', tue: 'Tuesdays', wed: 'Wednesdays', thu: 'Thursdays', fri: 'Fridays', sat: 'Saturdays', sun: 'Sundays' };

/** The client's most frequent weekday and local time, and how many of their last sessions had it. */
export function habitOf(zone: string, habit: ClientHabit | undefined): { day: Weekday; time: string; count: number; of: number } | null {
  if (!habit || habit.starts.length === 0) return null;
  const counts = new Map<string, number>();
  for (const s of habit.starts) {
    const t = DateTime.fromMillis(s, { zone });
    const key = `${weekdayOf(t)} ${t.toFormat('HH:mm')}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  // The most frequent; ties to the earliest in the week, then the day: the same input, the same answer.
  const [best, count] = [...counts].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))[0]!;
  const [day, time] = best.split(' ') as [Weekday, string];
  return { day, time, count, of: habit.starts.length };
}

/** A flexible window's time (the practice's evenings and weekends), or one from 17:00 or on a weekend. */
export function isOutOfHours(s: Slot): boolean {
  return s.window === 'flexible' || s.local.weekday === 'sat' || s.local.weekday === 'sun' || s.local.time >= '17:00';
}

/**
 * The top `k` suggestions: ranked by the client's habit (same weekday and time, or the same weekday),
 * by keeping the evening compact (right before or after a session, its buffer apart), and by sooner
 * over later; then spread over different days (one a day while there are days enough). Stable: the
 * same input gives the same list.
 */
export function suggest(
  a: Availability,
  busy: readonly Busy[],
  input: { minutes: number; mode?: Mode; typeId?: string; now: number; k: number; habit?: ClientHabit; only?: (s: Slot) => boolean },
): Suggestion[] {
  // only: the times that may be offered at all (evenings and weekends for a follow-up; not a moved
  // session's own time), left out before the ranking and the spread over days.
  const slots = input.only ? freeSlots(a, busy, input).filter(input.only) : freeSlots(a, busy, input);
  const habit = habitOf(a.zone, input.habit);
  const buffer = a.bufferMinutes * 60_000;
  // Sessions by the instant a slot would start right after them, or end right before them.
  const after = new Map<number, Busy>();
  const before = new Map<number, Busy>();
  for (const b of busy) {
    if (!b.session) continue;
    after.set(b.end + buffer, b);
    before.set(b.start - buffer, b);
  }
  const scored: Suggestion[] = slots.map((s) => {
    const reasons: string[] = [];
    let score = 0;
    if (habit && s.local.weekday === habit.day) {
      if (s.local.time === habit.time) {
        score += 50;
        reasons.push(`${DAY_NAMES[habit.day]} ${habit.time} like ${habit.count === habit.of ? `the last ${habit.of} sessions` : `${habit.count} of the last ${habit.of} sessions`}`);
      } else {
        score += 20;
        reasons.push(`${DAY_NAMES[habit.day]}, the client's usual day`);
      }
    }
    const prior = after.get(s.start);
    const next = before.get(s.end);
    if (prior || next) {
      score += 25;
      const at = DateTime.fromMillis((prior ?? next)!.start, { zone: a.zone }).toFormat('HH:mm');
      reasons.push(prior ? `right after your ${at} session` : `right before your ${at} session`);
    }
    if (s.window === 'flexible') reasons.push(s.local.weekday === 'sat' || s.local.weekday === 'sun' ? 'a weekend time' : 'an evening time');
    // Sooner over later: up to 20 points, less a point every 2 days ahead.
    const days = Math.floor((s.start - input.now) / 86_400_000);
    score += Math.max(0, 20 - days / 2);
    if (days <= 2) reasons.push(days === 0 ? 'today' : days === 1 ? 'tomorrow' : 'in two days');
    return { ...s, score, reasons };
  });
  scored.sort((x, y) => y.score - x.score || x.start - y.start);
  const picked: Suggestion[] = [];
  const days = new Set<string>();
  const dayOf = (s: Slot) => s.local.date;
  for (const s of scored) {
    if (picked.length >= input.k) break;
    if (days.has(dayOf(s))) continue;
    picked.push(s);
    days.add(dayOf(s));
  }
  // Fewer days than k: the best of the rest, on days already picked.
  for (const s of scored) {
    if (picked.length >= input.k) break;
    if (!picked.includes(s)) picked.push(s);
  }
  return picked;
}
