// Graph's event resources into our items, on the reference's own delta payloads
// (refs/graph-docs/delta-query-events.md) and on the fields the product relies on.
import { expect, test } from 'vitest';
import { normaliseGraphEvent, TAG_PROPERTY_GUID } from '../connectors/microsoft/normalise.js';
import { toIana } from '../connectors/microsoft/zones.js';

const opts = { calendarZone: 'America/New_York', ownerEmail: 'samanthab@contoso.onmicrosoft.com', listedAt: '2016-12-12T10:00:00Z' };

test('the reference\'s delta items: an event in UTC times, and an @removed tombstone', () => {
  const rest = {
    '@odata.type': '#microsoft.graph.event',
    '@odata.etag': 'W/"EZ9r3czxY0m2jz8c45czkwAALZu97g=="',
    subject: 'Rest!',
    body: { contentType: 'html', content: '' },
    start: { dateTime: '2016-12-12T02:00:00.0000000', timeZone: 'UTC' },
    end: { dateTime: '2016-12-12T07:30:00.0000000', timeZone: 'UTC' },
    location: { displayName: 'Home' },
    attendees: [],
    organizer: { emailAddress: { name: 'Samantha Booth', address: 'samanthab@contoso.onmicrosoft.com' } },
    id: 'AAMkADj1HuAAA=',
  };
  expect(normaliseGraphEvent(rest, 'primary', opts)).toMatchObject({
    ok: true,
    item: {
      kind: 'event',
      provider: 'microsoft',
      eventId: 'AAMkADj1HuAAA=',
      title: 'Rest!',
      start: { kind: 'instant', at: '2016-12-12T02:00:00.000Z', zone: 'America/New_York' },
      end: { kind: 'instant', at: '2016-12-12T07:30:00.000Z' },
      location: 'Home',
      version: 'W/"EZ9r3czxY0m2jz8c45czkwAALZu97g=="',
      updated: '2016-12-12T10:00:00Z',
    },
  });
  expect(normaliseGraphEvent({ '@odata.type': '#microsoft.graph.event', id: 'AAMkADk0MGFkODE3LWE4MmYtNDRhOS04OGQLkRkXbBznTvAADb6ytyAAA=', '@removed': { reason: 'deleted' } } as never, 'primary', opts)).toEqual({
    ok: true,
    item: { kind: 'tombstone', provider: 'microsoft', calendarId: 'primary', eventId: 'AAMkADk0MGFkODE3LWE4MmYtNDRhOS04OGQLkRkXbBznTvAADb6ytyAAA=', seriesId: null, originalStart: null },
  });
});

test('Windows zone names, attendee responses, our tags, an occurrence of a series, Teams, cancelled', () => {
  const r = normaliseGraphEvent(
    {
      id: 'occ-1',
      type: 'occurrence',
      seriesMasterId: 'master-1',
      originalStart: '2026-03-10T23:00:00Z',
      originalStartTimeZone: 'Eastern Standard Time',
      iCalUId: 'uid-1',
      subject: 'Session',
      start: { dateTime: '2026-03-10T18:00:00.0000000', timeZone: 'Eastern Standard Time' },
      end: { dateTime: '2026-03-10T18:50:00.0000000', timeZone: 'Eastern Standard Time' },
      isCancelled: true,
      isOrganizer: true,
      organizer: { emailAddress: { address: 'samanthab@contoso.onmicrosoft.com' } },
      attendees: [
        { type: 'required', status: { response: 'tentativelyAccepted' }, emailAddress: { name: 'Jane', address: 'jane@example.com' } },
        { type: 'resource', status: { response: 'accepted' }, emailAddress: { address: 'room@contoso.com' } },
      ],
      onlineMeeting: { joinUrl: 'https://teams.microsoft.com/l/meetup-join/x' },
      categories: ['Client'],
      singleValueExtendedProperties: [{ id: `String {${TAG_PROPERTY_GUID}} Name sk.session`, value: 'yes' }, { id: 'String {00000000-0000-0000-0000-000000000000} Name other', value: 'x' }],
      lastModifiedDateTime: '2026-03-01T10:00:00Z',
      changeKey: 'ck1',
    },
    'primary',
    opts,
  );
  expect(r).toMatchObject({
    ok: true,
    item: {
      seriesId: 'master-1',
      originalStart: { kind: 'instant', at: '2026-03-10T23:00:00.000Z' },
      start: { kind: 'instant', at: '2026-03-10T22:00:00.000Z', zone: 'America/New_York' },
      status: 'cancelled',
      attendees: [{ email: 'jane@example.com', name: 'Jane', response: 'tentative', self: false, organizer: false }],
      onlineMeetingUrl: 'https://teams.microsoft.com/l/meetup-join/x',
      categories: ['Client'],
      tags: { 'sk.session': 'yes' },
    },
  });
  expect(normaliseGraphEvent({ id: 'm', type: 'seriesMaster' }, 'primary', opts)).toEqual({ ok: true, item: null });
  expect(toIana('W. Europe Standard Time')).toBe('Europe/Berlin');
  expect(toIana('Europe/London')).toBe('Europe/London');
  expect(toIana('Mars Standard Time')).toBeUndefined();
  // The whole CLDR table, not only the common zones.
  expect(['Arab Standard Time', 'Egypt Standard Time', 'Iran Standard Time', 'Pakistan Standard Time', 'Taipei Standard Time', 'Pacific SA Standard Time', 'Morocco Standard Time', 'Fiji Standard Time', 'Chatham Islands Standard Time'].map(toIana)).toEqual([
    'Asia/Riyadh', 'Africa/Cairo', 'Asia/Tehran', 'Asia/Karachi', 'Asia/Taipei', 'America/Santiago', 'Africa/Casablanca', 'Pacific/Fiji', 'Pacific/Chatham',
  ]);
});

test('an all-day event is a date; a declined or free event does not block time', () => {
  const r = normaliseGraphEvent(
    {
      id: 'ooo',
      subject: 'Out of office',
      isAllDay: true,
      showAs: 'oof',
      start: { dateTime: '2026-03-10T00:00:00.0000000', timeZone: 'UTC' },
      end: { dateTime: '2026-03-11T00:00:00.0000000', timeZone: 'UTC' },
      originalStartTimeZone: 'UTC',
      lastModifiedDateTime: '2026-03-01T10:00:00Z',
      changeKey: 'ck',
    },
    'primary',
    opts,
  );
  expect(r.ok && r.item?.kind === 'event' && [r.item.start, r.item.end, r.item.showAs]).toEqual([{ kind: 'date', date: '2026-03-10' }, { kind: 'date', date: '2026-03-11' }, 'busy']);
  const declined = normaliseGraphEvent({ id: 'd', subject: 'Webinar', responseStatus: { response: 'declined' }, isOrganizer: false, start: { dateTime: '2026-03-10T15:00:00', timeZone: 'UTC' }, end: { dateTime: '2026-03-10T16:00:00', timeZone: 'UTC' }, lastModifiedDateTime: '2026-03-01T10:00:00Z', changeKey: 'c' }, 'primary', opts);
  expect(declined.ok && declined.item?.kind === 'event' && declined.item.showAs).toBe('free');
  expect(normaliseGraphEvent({ id: 'bad', subject: 'x', start: { dateTime: 'not a time', timeZone: 'UTC' }, end: { dateTime: '2026-03-10T16:00:00', timeZone: 'UTC' }, changeKey: 'c' }, 'primary', { calendarZone: 'UTC', ownerEmail: null })).toMatchObject({ ok: false, error: { eventId: 'bad', field: 'start' } });
});
