// The .ics a client adds to their own calendar (src/engine/ics.ts): RFC 5545 text escaping, lines
// folded at 75 octets without splitting a UTF-8 character, times in UTC, CRLF line ends.
import { expect, test } from 'vitest';
import { icsFile } from '../../src/engine/ics.js';

test('one VEVENT with UTC times, escaped text and folded lines that unfold to the original', () => {
  const description = 'Video call; the link is in your invitation, and the address is: Straße 9 — Zürich. '.repeat(3);
  const ics = icsFile({
    uid: 'b1@sessionkeeper',
    start: new Date('2026-03-03T23:00:00Z'),
    end: new Date('2026-03-03T23:50:00Z'),
    stamp: new Date('2026-03-02T14:00:00Z'),
    summary: 'Individual session with Dr Lee',
    description,
    location: '1 Main St, Springfield',
  });
  expect(ics.endsWith('\r\n')).toBe(true);
  const lines = ics.split('\r\n').slice(0, -1);
  for (const line of lines) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(75);
  const unfolded = ics.replace(/\r\n /g, '');
  expect(unfolded).toContain('DTSTART:20260303T230000Z\r\nDTEND:20260303T235000Z');
  expect(unfolded).toContain('LOCATION:1 Main St\\, Springfield');
  expect(unfolded).toContain(`DESCRIPTION:${description.replace(/;/g, '\\;').replace(/,/g, '\\,')}`);
  expect(unfolded).toMatch(/^BEGIN:VCALENDAR\r\nVERSION:2\.0\r\n.*METHOD:PUBLISH\r\nBEGIN:VEVENT\r\nUID:b1@sessionkeeper\r\n/s);
  // No character is cut in two by a fold.
  expect(Buffer.from(ics, 'utf8').toString('utf8')).toBe(ics);
  expect(lines.every((l) => !l.includes('\uFFFD'))).toBe(true);
});
