// Free slots and suggestions (src/scheduling/slots.ts): windows, buffers, notice, horizon, caps,
// dated exceptions, modes; ranking by habit, compactness and sooner, spread over days, with reasons;
// wall-clock times across DST in New York and London, and in zones with half-hour offsets (Adelaide)
// and half-hour DST (Lord Howe); properties over random calendars.
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, test } from 'vitest';
import { freeSlots, habitOf, suggest, type Availability, type Busy } from '../../src/scheduling/slots.js';

const NY = 'America/New_York';
const evenings = (zone: string, over: Partial<Availability> = {}): Availability => ({
  zone,
  windows: [
    { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '17:00', end: '21:00', kind: 'flexible' },
    { days: ['sat'], start: '09:00', end: '14:00', kind: 'flexible' },
  ],
  bufferMinutes: 10,
  minNoticeHours: 12,
  horizonDays: 14,
  caps: { perDay: 6, perEvening: 3 },
  ...over,
});
const at = (iso: string, zone = NY) => DateTime.fromISO(iso, { zone }).toMillis();
const local = (ms: number, zone = NY) => DateTime.fromMillis(ms, { zone }).toFormat('ccc yyyy-MM-dd HH:mm');
const session = (iso: string, minutes = 50, zone = NY): Busy => ({ start: at(iso, zone), end: at(iso, zone) + minutes * 60_000, session: true });

describe('free slots', () => {
  const now = at('2026-03-02T08:00'); // a Monday

  test('inside the windows, on the grid, long enough, within notice and horizon', () => {
    const slots = freeSlots(evenings(NY, { minNoticeHours: 0 }), [], { minutes: 50, now });
    const monday = slots.filter((s) => local(s.start).startsWith('Mon 2026-03-02'));
    expect(monday.map((s) => local(s.start).slice(-5))).toEqual(['17:00', '17:15', '17:30', '17:45', '18:00', '18:15', '18:30', '18:45', '19:00', '19:15', '19:30', '19:45', '20:00']);
    expect(slots.every((s) => s.end - s.start === 50 * 60_000)).toBe(true);
    expect(slots.some((s) => local(s.start).startsWith('Sun'))).toBe(false);
    expect(slots.filter((s) => local(s.start).startsWith('Sat 2026-03-07')).map((s) => local(s.start).slice(-5))[0]).toBe('09:00');
    // Twelve hours' notice at 08:00: today's evening starts at 20:00; at 08:30, not today at all.
    const notice = freeSlots(evenings(NY), [], { minutes: 50, now });
    expect(notice.filter((s) => local(s.start).startsWith('Mon 2026-03-02')).map((s) => local(s.start).slice(-5))).toEqual(['20:00']);
    const late = freeSlots(evenings(NY), [], { minutes: 50, now: at('2026-03-02T08:30') });
    expect(late.filter((s) => local(s.start).startsWith('Mon 2026-03-02'))).toEqual([]);
    expect(Math.max(...slots.map((s) => s.start))).toBeLessThanOrEqual(now + 14 * 86_400_000);
  });

  test('busy time and its buffer on both sides; caps per day and per evening count the sessions booked', () => {
    const busy = [session('2026-03-03T18:00')];
    const tuesday = freeSlots(evenings(NY), busy, { minutes: 50, now }).filter((s) => local(s.start).startsWith('Tue 2026-03-03')).map((s) => local(s.start).slice(-5));
    // Must end by 17:50 (18:00 less 10 minutes) and start from 19:00 (18:50 and 10).
    expect(tuesday).toEqual(['17:00', '19:00', '19:15', '19:30', '19:45', '20:00']);
    const full = [session('2026-03-04T17:00'), session('2026-03-04T18:00'), session('2026-03-04T19:00')];
    expect(freeSlots(evenings(NY), full, { minutes: 50, now }).filter((s) => local(s.start).startsWith('Wed 2026-03-04'))).toEqual([]);
    const daytime: Availability = evenings(NY, { windows: [{ days: ['thu'], start: '09:00', end: '21:00', kind: 'regular' }], caps: { perDay: 2, perEvening: 3 } });
    const thursdays = freeSlots(daytime, [session('2026-03-05T09:00'), session('2026-03-05T11:00')], { minutes: 50, now });
    expect(thursdays.filter((s) => local(s.start).startsWith('Thu 2026-03-05'))).toEqual([]);
    expect(thursdays.filter((s) => local(s.start).startsWith('Thu 2026-03-12')).length).toBeGreaterThan(0);
  });

  test('dated exceptions: a holiday closes the day; an extra late window opens one', () => {
    const a = evenings(NY, { exceptions: [{ date: '2026-03-03', closed: true }, { date: '2026-03-08', start: '19:00', end: '21:00', kind: 'flexible' }] });
    const slots = freeSlots(a, [], { minutes: 50, now });
    expect(slots.some((s) => local(s.start).startsWith('Tue 2026-03-03'))).toBe(false);
    expect(slots.filter((s) => local(s.start).startsWith('Sun 2026-03-08')).map((s) => local(s.start).slice(-5))).toEqual(['19:00', '19:15', '19:30', '19:45', '20:00']);
  });

  test('modes: a telehealth-only window offers no in-person slot', () => {
    const a = evenings(NY, { windows: [{ days: ['mon'], start: '19:00', end: '21:00', kind: 'flexible', modes: ['telehealth'] }] });
    expect(freeSlots(a, [], { minutes: 50, now, mode: 'in_person' })).toEqual([]);
    expect(freeSlots(a, [], { minutes: 50, now, mode: 'telehealth' }).length).toBeGreaterThan(0);
  });

  test('a window for some types only, and one at a named location', () => {
    const a = evenings(NY, {
      windows: [
        { days: ['mon'], start: '17:00', end: '21:00', kind: 'flexible', types: ['individual'] },
        { days: ['sat'], start: '09:00', end: '12:00', kind: 'flexible', modes: ['in_person'], location: 'north' },
      ],
    });
    const intake = freeSlots(a, [], { minutes: 60, typeId: 'intake', now });
    expect(intake.some((s) => local(s.start).startsWith('Mon'))).toBe(false);
    expect(intake.filter((s) => local(s.start).startsWith('Sat'))[0]).toMatchObject({ location: 'north', modes: ['in_person'] });
    const individual = freeSlots(a, [], { minutes: 50, typeId: 'individual', now });
    expect(individual.filter((s) => local(s.start).startsWith('Mon 2026-03-09'))[0]).toMatchObject({ location: null, modes: ['in_person', 'telehealth'] });
  });
});

describe('wall-clock times across DST and odd offsets', () => {
  const eighteen = (zone: string, from: string, days: number) =>
    freeSlots(evenings(zone, { windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '18:00', end: '18:50', kind: 'flexible' }], minNoticeHours: 0, horizonDays: days }), [], { minutes: 50, now: at(`${from}T00:00`, zone) });

  test.each([
    ['America/New_York', '2026-03-06', 'UTC-5 then UTC-4'],
    ['Europe/London', '2026-03-27', 'UTC+0 then UTC+1'],
    ['Australia/Adelaide', '2026-10-02', '+9:30 then +10:30'],
    ['Australia/Lord_Howe', '2026-10-02', '+10:30 then +11 (half-hour DST)'],
  ])('%s: 18:00 stays 18:00 on both sides of the change (%s)', (zone, from) => {
    const slots = eighteen(zone, from, 4);
    expect(slots.length).toBeGreaterThanOrEqual(4);
    for (const s of slots) expect(DateTime.fromMillis(s.start, { zone }).toFormat('HH:mm')).toBe('18:00');
    // And the instant moves with the offset: the UTC times are not all the same.
    expect(new Set(slots.map((s) => DateTime.fromMillis(s.start, { zone: 'utc' }).toFormat('HH:mm'))).size).toBe(2);
  });

  test('a time the change skips is never offered (02:00-03:00 on the New York spring-forward night)', () => {
    const a = evenings(NY, { windows: [{ days: ['sun'], start: '01:00', end: '04:00', kind: 'flexible' }], minNoticeHours: 0 });
    const slots = freeSlots(a, [], { minutes: 30, now: at('2026-03-07T12:00') }).filter((s) => local(s.start).startsWith('Sun 2026-03-08'));
    // 01:45 exists and its half hour ends at 03:15 (the clock jumps at 02:00); 02:xx does not exist.
    expect(slots.map((s) => local(s.start).slice(-5))).toEqual(['01:00', '01:15', '01:30', '01:45', '03:00', '03:15', '03:30']);
    expect(slots.every((s) => s.end - s.start === 30 * 60_000)).toBe(true);
  });

  test('shown in the client\'s zone: 18:00 in New York is 23:00 in London before the change, 22:00 in the week between', () => {
    const slots = eighteen(NY, '2026-03-06', 12);
    const london = slots.map((s) => DateTime.fromMillis(s.start, { zone: 'Europe/London' }).toFormat('MM-dd HH:mm'));
    expect(london).toContain('03-06 23:00');
    expect(london).toContain('03-09 22:00');
    expect(london).toContain('03-16 22:00');
  });
});

describe('suggestions', () => {
  const now = at('2026-03-02T08:00');
  const past = [1, 2, 3, 4, 5, 6].map((w) => at('2026-03-03T18:00') - w * 7 * 86_400_000);

  test('the client\'s habit first, with the reason naming it; spread over days; sooner over later', () => {
    const top = suggest(evenings(NY), [], { minutes: 50, now, k: 3, habit: { starts: past } });
    expect(local(top[0]!.start)).toBe('Tue 2026-03-03 18:00');
    expect(top[0]!.reasons).toContain('Tuesdays 18:00 like the last 6 sessions');
    expect(new Set(top.map((s) => local(s.start).slice(0, 14))).size).toBe(3);
    expect(habitOf(NY, { starts: past })).toEqual({ day: 'tue', time: '18:00', count: 6, of: 6 });
  });

  test('a compact evening: next to a session before an isolated time, with the reason', () => {
    const busy = [session('2026-03-02T19:00')];
    const [best] = suggest(evenings(NY), busy, { minutes: 50, now, k: 1 });
    expect(local(best!.start)).toMatch(/^Mon 2026-03-02 (18:00|20:00)$/);
    expect(best!.reasons.join('; ')).toMatch(/right (before|after) your 19:00 session/);
  });

  test('eight for the booking page, each on its own day while days last', () => {
    const top = suggest(evenings(NY), [], { minutes: 50, now, k: 8 });
    expect(top).toHaveLength(8);
    expect(new Set(top.map((s) => local(s.start).slice(0, 14))).size).toBe(8);
  });
});

describe('properties', () => {
  const now = at('2026-03-02T08:00');
  const busyArb = fc.array(
    fc.record({ day: fc.integer({ min: 0, max: 13 }), minute: fc.integer({ min: 16 * 60, max: 21 * 60 }), length: fc.integer({ min: 15, max: 120 }), session: fc.boolean() }),
    { maxLength: 25 },
  );
  const toBusy = (b: { day: number; minute: number; length: number; session: boolean }): Busy => {
    const start = DateTime.fromMillis(now, { zone: NY }).startOf('day').plus({ days: b.day }).set({ hour: Math.floor(b.minute / 60), minute: b.minute % 60 }).toMillis();
    return { start, end: start + b.length * 60_000, session: b.session };
  };

  test('no suggestion overlaps busy time or breaks a buffer; each lies inside a window; the same input gives the same list', () => {
    fc.assert(
      fc.property(busyArb, fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 8 }), (raw, buffer, k) => {
        const a = evenings(NY, { bufferMinutes: buffer });
        const busy = raw.map(toBusy);
        const top = suggest(a, busy, { minutes: 50, now, k });
        for (const s of top) {
          for (const b of busy) expect(s.start < b.end + buffer * 60_000 && s.end > b.start - buffer * 60_000).toBe(false);
          const t = DateTime.fromMillis(s.start, { zone: NY });
          const e = DateTime.fromMillis(s.end, { zone: NY });
          const inside = a.windows.some((w) => w.days.includes((['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const)[t.weekday - 1]!) && t.toFormat('HH:mm') >= w.start && e.toFormat('HH:mm') <= w.end && t.hasSame(e, 'day'));
          expect(inside).toBe(true);
        }
        expect(suggest(a, [...busy].reverse(), { minutes: 50, now, k })).toEqual(top);
      }),
      { numRuns: 150 },
    );
  });
});
