// When a client's reminders go out, pure: each of the practice's offsets before the session, moved
// earlier when it would fall inside quiet hours (read on the client's wall clock, so a DST change
// moves nothing), and which one is due now. "now" is a parameter.
import { DateTime } from 'luxon';
import { minutesOfDay } from '../config.js';

export interface QuietHours {
  /** HH:MM; may run past midnight (21:00 to 08:00). */
  start: string;
  end: string;
}

/** Whether an instant falls inside quiet hours on the wall clock of `zone`. */
export function inQuietHours(ms: number, quiet: QuietHours, zone: string): boolean {
  const t = DateTime.fromMillis(ms, { zone });
  const m = t.hour * 60 + t.minute;
  const s = minutesOfDay(quiet.start);
  const e = minutesOfDay(quiet.end);
  return s < e ? m >= s && m < e : m >= s || m < e;
}

/**
 * The last moment before the quiet hours that contain `ms` began: one minute before their start, on
 * the evening they started (the day before, for a time after midnight in a 21:00-08:00 night).
 */
function beforeQuiet(ms: number, quiet: QuietHours, zone: string): number {
  const t = DateTime.fromMillis(ms, { zone });
  const s = minutesOfDay(quiet.start);
  const e = minutesOfDay(quiet.end);
  const m = t.hour * 60 + t.minute;
  // In a night that crosses midnight, the early-morning part began the evening before.
  const day = s > e && m < e ? t.minus({ days: 1 }) : t;
  const start = day.set({ hour: Math.floor(s / 60), minute: s % 60, second: 0, millisecond: 0 });
  return start.toMillis() - 60_000;
}

export interface PlannedReminder {
  offsetHours: number;
  /** When it goes out (UTC ms): the offset before the start, or earlier to stay out of quiet hours. */
  sendAt: number;
}

/** The reminders of a session starting at `startMs`, latest-offset first (48 h before 2 h). */
export function reminderTimes(startMs: number, offsetsHours: readonly number[], quiet: QuietHours, zone: string): PlannedReminder[] {
  return [...offsetsHours]
    .sort((a, b) => b - a)
    .map((offsetHours) => {
      const at = startMs - offsetHours * 3_600_000;
      return { offsetHours, sendAt: inQuietHours(at, quiet, zone) ? beforeQuiet(at, quiet, zone) : at };
    });
}

/**
 * The reminder due now for a session, if any: the one of the latest offset whose time has come (a
 * client is not sent the 48-hour reminder two hours before), while the session has not started and
 * never inside quiet hours. `since`: when the session got its current time; a reminder whose time
 * had passed before then is not sent (the invitation has just told them), unless `catchUp` (an
 * earlier reminder went out for the session's old time: the client hears of the new one).
 */
export function dueReminder(
  input: { startMs: number; offsetsHours: readonly number[]; quiet: QuietHours; zone: string; since: number; catchUp: boolean },
  now: number,
): PlannedReminder | null {
  if (now >= input.startMs || inQuietHours(now, input.quiet, input.zone)) return null;
  const passed = reminderTimes(input.startMs, input.offsetsHours, input.quiet, input.zone).filter((r) => r.sendAt <= now);
  const latest = passed.at(-1);
  if (!latest) return null;
  if (latest.sendAt < input.since && !input.catchUp) return null;
  return latest;
}
