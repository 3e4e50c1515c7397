// Our marks on Outlook events: GraphCalendarConnector.setTag/getTag through MSAL and the Graph client against the
// emulator. Set and read back, a second set sends nothing, a lost reply retried, gone and cancelled events, throttling
// ridden out, a read-only calendar refused.
import { expect, test } from 'vitest';
import { Forbidden, NotFound, RetryAfter } from '../connectors/errors.js';
import { tagPropertyId } from '../connectors/microsoft/calendar.js';
import { TAG_PROPERTY_GUID } from '../connectors/microsoft/normalise.js';
import type { CalendarConnector } from '../connectors/port.js';
import { platformConnectors } from '../src/engine/platforms.js';
import { forEachBackend } from './helpers/db.js';
import { withMicrosoft } from './helpers/microsoft.js';

const at = (day: string, hh: number) => ({
  start: { dateTime: `${day}T${String(hh).padStart(2, '0')}:00:00`, timeZone: 'Eastern Standard Time' },
  end: { dateTime: `${day}T${String(hh).padStart(2, '0')}:50:00`, timeZone: 'Eastern Standard Time' },
});
const jane = [{ emailAddress: { address: 'jane@example.com', name: 'Jane' }, type: 'required' }];

forEachBackend('Microsoft tags', (t) => {
  const m = withMicrosoft(t);

  /** A connected therapist, their connector (retries as given) and their default calendar's Graph id. */
  async function therapist(oid: string, maxRetries?: number): Promise<{ connector: CalendarConnector; calendarId: string }> {
    const me = await m.connect({ oid, upn: `${oid}@contoso.example` });
    const factory = maxRetries === undefined ? m.connectors : platformConnectors(m.config, t.store, { microsoft: { ...m.platform.microsoft, maxRetries } });
    const connector = await factory.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' });
    const calendarId = (await connector.listCalendars()).find((c) => c.primary)!.id;
    return { connector, calendarId };
  }

  const patches = (eventId: string) => m.emu.requests.filter((r) => r.method === 'PATCH' && decodeURIComponent(r.path).endsWith(`/events/${eventId}`));

  test('set and read back; the property is ours, named after the tag; a write to a meeting would reach its attendees', async () => {
    const { connector, calendarId } = await therapist('mt-1');
    expect(connector.writesNotifyAttendees).toBe(true);
    const ev = m.emu.createEvent('mt-1', 'default', { subject: 'Jane - session', ...at('2026-03-10', 10), attendees: jane });
    const id = ev['id'] as string;
    expect(await connector.getTag(calendarId, id, 'sk.session')).toBeNull();
    await connector.setTag(calendarId, id, 'sk.session', 'yes');
    expect(await connector.getTag(calendarId, id, 'sk.session')).toBe('yes');
    expect(await connector.getTag(calendarId, id, 'sk.outcome')).toBeNull();
    expect(tagPropertyId('sk.session')).toBe(`String {${TAG_PROPERTY_GUID}} Name sk.session`);
    // One PATCH (the reads come first), and the emulator counts it as an update sent to Jane.
    expect(patches(id)).toHaveLength(1);
    expect(m.emu.attendeeUpdates().filter((u) => u.eventId === id)).toHaveLength(1);
    // A second tag keeps the first.
    await connector.setTag(calendarId, id, 'sk.outcome', 'attended');
    expect([await connector.getTag(calendarId, id, 'sk.session'), await connector.getTag(calendarId, id, 'sk.outcome')]).toEqual(['yes', 'attended']);
  });

  test('a second set of the same value sends nothing; another value is written', async () => {
    const { connector, calendarId } = await therapist('mt-2');
    const ev = m.emu.createEvent('mt-2', 'default', { subject: 'Jane - session', ...at('2026-03-11', 10), attendees: jane });
    const id = ev['id'] as string;
    await connector.setTag(calendarId, id, 'sk.session', 'yes');
    const updates = m.emu.attendeeUpdates().length;
    await connector.setTag(calendarId, id, 'sk.session', 'yes');
    expect(patches(id)).toHaveLength(1);
    expect(m.emu.attendeeUpdates()).toHaveLength(updates);
    await connector.setTag(calendarId, id, 'sk.session', 'no');
    expect(patches(id)).toHaveLength(2);
    expect(await connector.getTag(calendarId, id, 'sk.session')).toBe('no');
  });

  test('a lost reply: the PATCH took effect, the call fails as transient, and the retry finds the value and sends nothing', async () => {
    const { connector, calendarId } = await therapist('mt-3');
    const ev = m.emu.createEvent('mt-3', 'default', { subject: 'Jane - session', ...at('2026-03-12', 10), attendees: jane });
    const id = ev['id'] as string;
    m.emu.faults.add({ match: { method: 'PATCH' }, fault: { dropAfter: true } });
    const err = await connector.setTag(calendarId, id, 'sk.outcome', 'no_show').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryAfter);
    expect((err as RetryAfter).seconds).toBeNull();
    await connector.setTag(calendarId, id, 'sk.outcome', 'no_show');
    expect(patches(id).map((r) => r.status)).toEqual([0]);
    expect(m.emu.attendeeUpdates().filter((u) => u.eventId === id)).toHaveLength(1);
    expect(await connector.getTag(calendarId, id, 'sk.outcome')).toBe('no_show');
  });

  test('a deleted event is NotFound; so is an attendee copy of a cancelled meeting, which stays in the calendar', async () => {
    const { connector, calendarId } = await therapist('mt-4');
    const gone = m.emu.createEvent('mt-4', 'default', { subject: 'Session', ...at('2026-03-13', 10) });
    await connector.setTag(calendarId, gone['id'] as string, 'sk.session', 'yes');
    m.emu.deleteEvent('mt-4', gone['id'] as string);
    await expect(connector.getTag(calendarId, gone['id'] as string, 'sk.session')).rejects.toBeInstanceOf(NotFound);
    await expect(connector.setTag(calendarId, gone['id'] as string, 'sk.session', 'no')).rejects.toBeInstanceOf(NotFound);
    await expect(connector.setTag(calendarId, 'AAMkAGnever', 'sk.session', 'yes')).rejects.toBeInstanceOf(NotFound);
    const invited = m.emu.createEvent('mt-4', 'default', {
      subject: 'Couples session',
      ...at('2026-03-14', 10),
      organizer: { emailAddress: { address: 'client@example.com', name: 'Client' } },
      attendees: [{ emailAddress: { address: 'mt-4@contoso.example' }, type: 'required' }],
    });
    await connector.setTag(calendarId, invited['id'] as string, 'sk.session', 'yes');
    m.emu.cancelEvent('mt-4', invited['id'] as string);
    await expect(connector.getTag(calendarId, invited['id'] as string, 'sk.session')).rejects.toBeInstanceOf(NotFound);
    await expect(connector.setTag(calendarId, invited['id'] as string, 'sk.session', 'no')).rejects.toBeInstanceOf(NotFound);
    expect(patches(invited['id'] as string)).toHaveLength(1);
  });

  test("a 429 with Retry-After is ridden out by the client's RetryHandler; without retries it is RetryAfter with the seconds", async () => {
    const { connector, calendarId } = await therapist('mt-5', 2);
    const ev = m.emu.createEvent('mt-5', 'default', { subject: 'Session', ...at('2026-03-15', 10) });
    const id = ev['id'] as string;
    m.emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 429, retryAfter: 1 } });
    await connector.setTag(calendarId, id, 'sk.session', 'yes');
    expect(patches(id).map((r) => r.status)).toEqual([429, 200]);
    expect(await connector.getTag(calendarId, id, 'sk.session')).toBe('yes');

    const impatient = await therapist('mt-5b');
    const other = m.emu.createEvent('mt-5b', 'default', { subject: 'Session', ...at('2026-03-15', 12) });
    m.emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 429, retryAfter: 30 } });
    const err = await impatient.connector.setTag(impatient.calendarId, other['id'] as string, 'sk.session', 'yes').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryAfter);
    expect((err as RetryAfter).seconds).toBe(30);
  });

  test('a calendar we may not write to: 403 is Forbidden, and nothing is written', async () => {
    const { connector } = await therapist('mt-6');
    const shared = m.emu.addCalendar('mt-6', { name: 'Shared (read only)', canEdit: false });
    const ev = m.emu.createEvent('mt-6', shared.id, { subject: 'Session', ...at('2026-03-16', 10) });
    const err = await connector.setTag(shared.id, ev['id'] as string, 'sk.session', 'yes').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Forbidden);
    expect(patches(ev['id'] as string).map((r) => r.status)).toEqual([403]);
    expect(await connector.getTag(shared.id, ev['id'] as string, 'sk.session')).toBeNull();
  });

  test('a tag name that normalise.ts would not read back, or too long a value, is refused before any request', async () => {
    const { connector, calendarId } = await therapist('mt-7');
    const ev = m.emu.createEvent('mt-7', 'default', { subject: 'Session', ...at('2026-03-17', 10) });
    const before = m.emu.requests.length;
    for (const name of ['session', 'sk.Session', "sk.it's", 'sk.']) {
      await expect(connector.setTag(calendarId, ev['id'] as string, name, 'yes')).rejects.toBeInstanceOf(RangeError);
    }
    await expect(connector.setTag(calendarId, ev['id'] as string, 'sk.note', 'x'.repeat(1025))).rejects.toBeInstanceOf(RangeError);
    expect(m.emu.requests.length).toBe(before);
  });
});
