// Microsoft 365 sync end to end: real MSAL and the real Graph client against the Graph emulator, the
// real sync loop and store. The default calendar by delta, occurrences completed from their series,
// a silently cancelled occurrence noticed, other calendars by windowed reads, 410, a dead grant.
import { DateTime } from 'luxon';
import { expect, test } from 'vitest';
import { NeedsReauth } from '../connectors/errors.js';
import type { CalendarItem } from '../connectors/types.js';
import { syncCalendar } from '../src/engine/sync.js';
import { silentLogger } from '../src/log.js';
import { forEachBackend } from './helpers/db.js';
import { withMicrosoft } from './helpers/microsoft.js';

const at = (day: string, hh: number, minutes = 50) => {
  const start = DateTime.fromISO(`${day}T${String(hh).padStart(2, '0')}:00:00`);
  return { start: { dateTime: start.toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: 'Eastern Standard Time' }, end: { dateTime: start.plus({ minutes }).toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: 'Eastern Standard Time' } };
};

forEachBackend('Microsoft sync', (t) => {
  const m = withMicrosoft(t);
  const sync = async (me: { connectionId: string; therapistId: string }, cal: string, full = false) =>
    syncCalendar(t.store, await m.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' }), cal, { full, log: silentLogger });
  const stored = (cal: string) => t.store.db.selectFrom('event_snapshots').select(['event_id', 'status', 'series_id']).where('calendar_id', '=', cal).orderBy('event_id').execute();

  test('connect, then a 3,000-event default calendar by delta: full over pages, then only the changes, deletions as tombstones', async () => {
    const me = await m.connect({ oid: 'ms-1', upn: 'dr.bell@contoso.example' });
    const cal = me.calendars['Calendar']!;
    const ids: string[] = [];
    for (let i = 0; i < 3000; i++) ids.push(m.emu.createEvent('ms-1', 'default', { subject: `Session ${i}`, ...at(DateTime.fromISO('2026-03-02').plus({ days: i % 150 }).toISODate()!, 8 + (i % 10)), attendees: [{ emailAddress: { address: `client${i % 20}@example.com` }, type: 'required' }] })['id'] as string);
    const full = await sync(me, cal);
    expect(full).toMatchObject({ mode: 'full', cursorExpired: false, rejected: [] });
    expect(full.pages).toBeGreaterThan(2);
    expect(full.items).toHaveLength(3000);
    expect(new Set(full.items.map((i) => i.eventId)).size).toBe(3000);
    m.emu.updateEvent('ms-1', ids[3]!, { subject: 'Intake' });
    m.emu.deleteEvent('ms-1', ids[4]!);
    const inc = await sync(me, cal);
    expect(inc.mode).toBe('incremental');
    expect(inc.items.map((i) => [i.eventId, i.kind]).sort()).toEqual([[ids[3], 'event'], [ids[4], 'tombstone']].sort());
    expect((await stored(cal)).filter((r) => r.status === 'deleted').map((r) => r.event_id)).toEqual([ids[4]]);
  });

  test('a weekly series: occurrences completed from the master; one cancelled without a delta item is noticed', async () => {
    const me = await m.connect({ oid: 'ms-2', upn: 'dr.cole@contoso.example' });
    const cal = me.calendars['Calendar']!;
    const master = m.emu.createEvent('ms-2', 'default', {
      subject: 'Jane - session',
      ...at('2026-03-03', 18),
      recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['tuesday'] }, range: { type: 'numbered', startDate: '2026-03-03', numberOfOccurrences: 5 } },
      attendees: [{ emailAddress: { address: 'jane@example.com', name: 'Jane' }, type: 'required' }],
    });
    const full = await sync(me, cal);
    const occurrences = full.items.filter((i): i is Extract<CalendarItem, { kind: 'event' }> => i.kind === 'event' && i.seriesId === master['id']);
    expect(occurrences).toHaveLength(5);
    expect(occurrences.every((o) => o.title === 'Jane - session' && o.attendees.some((a) => a.email === 'jane@example.com'))).toBe(true);
    // 18:00 in New York on both sides of the DST change.
    expect(occurrences.map((o) => (o.start.kind === 'instant' ? DateTime.fromISO(o.start.at, { zone: 'America/New_York' }).toFormat('HH:mm') : ''))).toEqual(Array(5).fill('18:00'));
    const third = occurrences[2]!;
    m.emu.deleteEvent('ms-2', third.eventId);
    const inc = await sync(me, cal);
    expect(inc.items.filter((i) => i.kind === 'tombstone').map((i) => i.eventId)).toEqual([third.eventId]);
    expect((await stored(cal)).find((r) => r.event_id === third.eventId)?.status).toBe('deleted');
  });

  test('another calendar is read as a window; what it no longer lists is gone', async () => {
    const me = await m.connect({ oid: 'ms-3', upn: 'dr.dunn@contoso.example' });
    const other = m.emu.addCalendar('ms-3', { name: 'Clients' });
    const refreshed = await (await import('../src/engine/connect.js')).refreshCalendars(t.store, m.connectors, { id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' });
    const cal = refreshed.find((c) => c.name === 'Clients')!.id;
    const a = m.emu.createEvent('ms-3', other.id, { subject: 'Session', ...at('2026-03-10', 10) });
    m.emu.createEvent('ms-3', other.id, { subject: 'Session', ...at('2026-03-11', 10) });
    expect((await sync(me, cal)).items).toHaveLength(2);
    m.emu.deleteEvent('ms-3', a['id'] as string);
    const again = await sync(me, cal);
    expect(again.deletedMeanwhile).toBe(1);
    expect((await stored(cal)).map((r) => r.status).sort()).toEqual(['confirmed', 'deleted']);
  });

  test('an expired delta link: full resync with the id diff', async () => {
    const me = await m.connect({ oid: 'ms-4', upn: 'dr.eng@contoso.example' });
    const cal = me.calendars['Calendar']!;
    const a = m.emu.createEvent('ms-4', 'default', { subject: 'Session', ...at('2026-03-10', 10) });
    m.emu.createEvent('ms-4', 'default', { subject: 'Session', ...at('2026-03-11', 10) });
    await sync(me, cal);
    m.emu.deleteEvent('ms-4', a['id'] as string);
    m.emu.expireDeltaLinks('ms-4');
    const resync = await sync(me, cal);
    expect(resync).toMatchObject({ mode: 'full', cursorExpired: true });
    expect((await stored(cal)).find((r) => r.event_id === a['id'])?.status).toBe('deleted');
  });

  test('a refresh token Microsoft refuses leaves only that connection needs_reauth', async () => {
    const dead = await m.connect({ oid: 'ms-dead', upn: 'dead@contoso.example' });
    const alive = await m.connect({ oid: 'ms-alive', upn: 'alive@contoso.example' });
    m.emu.revokeAll('ms-dead');
    m.emu.expireAccessTokens('ms-dead');
    t.clock.advance({ hours: 2 });
    const err = await sync(dead, dead.calendars['Calendar']!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsReauth);
    expect((await t.store.db.selectFrom('connections').select('status').where('id', '=', dead.connectionId).executeTakeFirstOrThrow()).status).toBe('needs_reauth');
    m.emu.createEvent('ms-alive', 'default', { subject: 'Session', ...at('2026-03-10', 10) });
    expect((await sync(alive, alive.calendars['Calendar']!)).items.length).toBeGreaterThan(0);
  });

  for (const [name, fault] of [
    ['429 with Retry-After', { status: 429, retryAfter: 30 }],
    ['503', { status: 503 }],
    ['504', { status: 504 }],
    ['a dropped connection', { drop: true }],
  ] as const) {
    test(`${name} in the middle of a delta listing: the attempt fails whole, the next one loses nothing`, async () => {
      const oid = `ms-fault-${name.replace(/\W+/g, '-')}`;
      const me = await m.connect({ oid, upn: `${oid}@contoso.example` });
      const cal = me.calendars['Calendar']!;
      for (let i = 0; i < 250; i++) m.emu.createEvent(oid, 'default', { subject: `Session ${i}`, ...at(DateTime.fromISO('2026-03-02').plus({ days: i % 50 }).toISODate()!, 8 + (i % 9)) });
      m.emu.faults.add({ match: { method: 'GET', path: /delta/ }, fault: { delayMs: 0 } });
      m.emu.faults.add({ match: { method: 'GET', path: /delta/ }, fault });
      const err = await sync(me, cal).catch((e: unknown) => e);
      expect((err as Error).name).toBe('RetryAfter');
      if (fault.status === 429) expect((err as { seconds: number }).seconds).toBe(30);
      expect(await stored(cal)).toHaveLength(0);
      const again = await sync(me, cal);
      expect(again.items).toHaveLength(250);
      expect(await stored(cal)).toHaveLength(250);
    });
  }
});
