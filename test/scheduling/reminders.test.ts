// When reminders go out (src/scheduling/reminders.ts): at the practice's offsets, earlier rather than
// inside quiet hours on the client's own clock (across a DST change too), only the latest that is due,
// never once the session has begun or while the client's night lasts, and after a move only when an
// earlier reminder told the client the old time.
import { DateTime } from 'luxon';
import { describe, expect, test } from 'vitest';
import { dueReminder, inQuietHours, reminderTimes } from '../../src/scheduling/reminders.js';

const QUIET = { start: '21:00', end: '08:00' };
const at = (iso: string, zone: string) => DateTime.fromISO(iso, { zone }).toMillis();
const local = (ms: number, zone: string) => DateTime.fromMillis(ms, { zone }).toFormat('ccc yyyy-MM-dd HH:mm');

describe('reminder times', () => {
  test('at the offsets before the session, the furthest first', () => {
    const ny = 'America/New_York';
    const times = reminderTimes(at('2026-03-12T18:00', ny), [2, 48], QUIET, ny);
    expect(times.map((t) => [t.offsetHours, local(t.sendAt, ny)])).toEqual([
      [48, 'Tue 2026-03-10 18:00'],
      [2, 'Thu 2026-03-12 16:00'],
    ]);
  });

  test('one that would fall in quiet hours goes out just before they began, on the client clock', () => {
    const london = 'Europe/London';
    // A 09:00 session: its 2-hour reminder (07:00) would wake the client; it goes the evening before.
    const times = reminderTimes(at('2026-03-12T09:00', london), [48, 2], QUIET, london);
    expect(times.map((t) => local(t.sendAt, london))).toEqual(['Tue 2026-03-10 09:00', 'Wed 2026-03-11 20:59']);
    // Across the change to summer time (29 March 2026): still 20:59 on the client's clock.
    const dst = reminderTimes(at('2026-03-30T09:00', london), [2], QUIET, london);
    expect(local(dst[0]!.sendAt, london)).toBe('Sun 2026-03-29 20:59');
    // A reminder at 22:30 (a 00:30 session) goes at 20:59 the same evening.
    const late = reminderTimes(at('2026-03-13T00:30', london), [2], QUIET, london);
    expect(local(late[0]!.sendAt, london)).toBe('Thu 2026-03-12 20:59');
    // Quiet hours that do not cross midnight (13:00-14:00, a lunch break).
    expect(inQuietHours(at('2026-03-12T13:30', london), { start: '13:00', end: '14:00' }, london)).toBe(true);
    expect(inQuietHours(at('2026-03-12T14:00', london), { start: '13:00', end: '14:00' }, london)).toBe(false);
  });
});

describe('the reminder due now', () => {
  const zone = 'America/New_York';
  const start = at('2026-03-12T18:00', zone);
  const base = { startMs: start, offsetsHours: [48, 2], quiet: QUIET, zone, since: at('2026-03-01T10:00', zone), catchUp: false };

  test('none before the first offset; the 48-hour one; then only the 2-hour one; none once it began', () => {
    expect(dueReminder(base, at('2026-03-10T17:59', zone))).toBeNull();
    expect(dueReminder(base, at('2026-03-10T18:00', zone))).toMatchObject({ offsetHours: 48 });
    expect(dueReminder(base, at('2026-03-12T16:05', zone))).toMatchObject({ offsetHours: 2 });
    expect(dueReminder(base, at('2026-03-12T18:00', zone))).toBeNull();
  });

  test('never while the client sleeps: the engine was down through the night, it waits for the morning', () => {
    const early = { ...base, startMs: at('2026-03-12T09:00', zone) };
    // The 2-hour reminder was due at 20:59 the evening before; at 23:00 it is night: nothing.
    expect(dueReminder(early, at('2026-03-11T23:00', zone))).toBeNull();
    expect(dueReminder(early, at('2026-03-12T08:00', zone))).toMatchObject({ offsetHours: 2 });
  });

  test('booked or moved after a reminder time: that one is skipped, unless an earlier reminder named the old time', () => {
    // Booked 30 hours ahead: the 48-hour reminder's time had passed; the 2-hour one still comes.
    const booked = { ...base, since: at('2026-03-11T12:00', zone) };
    expect(dueReminder(booked, at('2026-03-11T12:05', zone))).toBeNull();
    expect(dueReminder(booked, at('2026-03-12T16:00', zone))).toMatchObject({ offsetHours: 2 });
    // Moved to this time after the client had the 48-hour reminder for the old one: they hear of the new time now.
    expect(dueReminder({ ...booked, catchUp: true }, at('2026-03-11T12:05', zone))).toMatchObject({ offsetHours: 48 });
  });
});
