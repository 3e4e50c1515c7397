// Google's event resources into our items, on the reference's own example payloads
// (test/emulators/google/fixtures, sources in its README) and on the fields the product relies on.
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { normaliseGoogleEvent } from '../connectors/google/normalise.js';

const fixture = (name: string) => JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'emulators/google/fixtures', name), 'utf8')) as Record<string, unknown>;

test('a deleted event and a cancelled instance become tombstones with what Google guarantees', () => {
  expect(normaliseGoogleEvent(fixture('deleted-event-tombstone.json'), 'cal', 'UTC')).toEqual({
    ok: true,
    item: { kind: 'tombstone', provider: 'google', calendarId: 'cal', eventId: '6pbua6vjeic3e73gvponeo1qp6', seriesId: null, originalStart: null },
  });
  expect(normaliseGoogleEvent(fixture('cancelled-instance-tombstone.json'), 'cal', 'UTC')).toEqual({
    ok: true,
    item: {
      kind: 'tombstone',
      provider: 'google',
      calendarId: 'cal',
      eventId: '5hni4sj3ql1669otmjg7sn1mok_20250325T130000Z',
      seriesId: '5hni4sj3ql1669otmjg7sn1mok',
      originalStart: { kind: 'instant', at: '2025-03-25T08:00:00-05:00', zone: 'America/Chicago' },
    },
  });
});

test('an event with attendees: zoned times, responses, the organizer, the version', () => {
  const result = normaliseGoogleEvent(fixture('event-with-attendees.json'), 'cal', 'UTC');
  expect(result.ok).toBe(true);
  if (!result.ok || result.item.kind !== 'event') throw new Error('expected an event');
  expect(result.item).toMatchObject({
    eventId: '3if6lf59tove1e037baa75l54t',
    iCalUID: '3if6lf59tove1e037baa75l54t@google.com',
    start: { kind: 'instant', at: '2018-04-01T10:30:00+02:00', zone: 'Europe/Prague' },
    end: { kind: 'instant', at: '2018-04-01T11:30:00+02:00', zone: 'Europe/Prague' },
    title: 'Cool Meeting about stuff',
    organizer: { email: 'konqui@kde.test', name: 'Konqui', self: true },
    version: '"3044897856406000"',
  });
  expect(result.item.attendees.map((a) => [a.email, a.response])).toEqual([
    ['attendee1@kde.test', 'none'],
    ['attendee2@kde.test', 'none'],
  ]);
  // The description is health text we do not keep.
  expect(JSON.stringify(result.item)).not.toContain('We shall meet');
});

test('an all-day recurring master: dates, not instants', () => {
  const result = normaliseGoogleEvent(fixture('recurring-all-day-master.json'), 'cal', 'Europe/Prague');
  expect(result.ok && result.item.kind === 'event' && [result.item.start, result.item.end]).toEqual([
    { kind: 'date', date: '2018-04-20' },
    { kind: 'date', date: '2018-04-23' },
  ]);
});

test('our tags, the Meet link, the colour; an instance knows its series; resources are not attendees', () => {
  const result = normaliseGoogleEvent(
    {
      id: 'abc_20260310T150000Z',
      etag: '"1"',
      status: 'tentative',
      summary: 'Session',
      updated: '2026-03-01T10:00:00.000Z',
      recurringEventId: 'abc',
      originalStartTime: { dateTime: '2026-03-10T10:00:00-05:00', timeZone: 'America/New_York' },
      start: { dateTime: '2026-03-10T10:00:00-05:00' },
      end: { dateTime: '2026-03-10T10:50:00-05:00' },
      colorId: '5',
      conferenceData: { entryPoints: [{ entryPointType: 'video', uri: 'https://meet.google.com/abc-defg-hij' }] },
      extendedProperties: { private: { 'sk.session': 'yes', unrelated: 'x' }, shared: { 'sk.outcome': 'no_show' } },
      attendees: [
        { email: 'room-1@resource.calendar.google.com', resource: true, responseStatus: 'accepted' },
        { email: 'jane@example.com', displayName: 'Jane', responseStatus: 'declined' },
      ],
    },
    'cal',
    'America/New_York',
  );
  if (!result.ok || result.item.kind !== 'event') throw new Error('expected an event');
  expect(result.item).toMatchObject({
    status: 'tentative',
    seriesId: 'abc',
    originalStart: { kind: 'instant', at: '2026-03-10T10:00:00-05:00', zone: 'America/New_York' },
    start: { kind: 'instant', zone: 'America/New_York' },
    colorId: '5',
    onlineMeetingUrl: 'https://meet.google.com/abc-defg-hij',
    // Only private properties are ours: shared ones can be edited by attendees.
    tags: { 'sk.session': 'yes' },
    attendees: [{ email: 'jane@example.com', name: 'Jane', response: 'declined', self: false, organizer: false }],
  });
});

test('a malformed item is named by id and field', () => {
  expect(normaliseGoogleEvent({ id: 'bad1', etag: '"1"', status: 'confirmed', updated: '2026-03-01T10:00:00Z', end: { dateTime: '2026-03-10T10:50:00-05:00' } }, 'cal', 'UTC')).toEqual({
    ok: false,
    error: { eventId: 'bad1', field: 'start', reason: expect.any(String) },
  });
  expect(normaliseGoogleEvent({ status: 'confirmed' }, 'cal', 'UTC')).toEqual({ ok: false, error: { eventId: '(no id)', field: 'id', reason: 'the event has no id' } });
});
