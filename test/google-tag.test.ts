// Our tags on Google events end to end: GoogleCalendarConnector.setTag/getTag through the real
// @googleapis/calendar client against the emulator. Private extended properties written with
// sendUpdates=none, read back with a partial response, deleted events, transient faults, a lost
// reply, a missing scope, and the tag arriving with the next incremental sync.
import { DateTime } from 'luxon';
import { expect, test } from 'vitest';
import { CursorExpired, Forbidden, MissingScope, NotFound, RetryAfter } from '../connectors/errors.js';
import { GoogleCalendarConnector } from '../connectors/google/calendar.js';
import { oauthClient } from '../connectors/google/oauth.js';
import type { CalendarConnector } from '../connectors/port.js';
import { syncCalendar } from '../src/engine/sync.js';
import { silentLogger } from '../src/log.js';
import { forEachBackend } from './helpers/db.js';
import { REDIRECT, withGoogle } from './helpers/google.js';

const TZ = 'America/New_York';
const timed = (day: string, hh: number) => {
  const start = DateTime.fromISO(`${day}T${String(hh).padStart(2, '0')}:00:00`, { zone: TZ });
  return { start: { dateTime: start.toISO(), timeZone: TZ }, end: { dateTime: start.plus({ minutes: 50 }).toISO(), timeZone: TZ } };
};

forEachBackend('Google tags', (t) => {
  const g = withGoogle(t);
  const connectorOf = (me: { connectionId: string; therapistId: string }): Promise<CalendarConnector> =>
    g.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'google' });
  const patches = (eventId: string) => g.emu.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/events/${eventId}`));
  const caught = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

  test('a tag is set and read back; setting it again changes nothing visible; no guest is mailed', async () => {
    const me = await g.connect({ sub: 't-set', email: 'set@brightpath.example', calendars: [{ id: 'set@brightpath.example' }] });
    const ev = g.emu.insertEvent('set@brightpath.example', {
      summary: 'Session',
      ...timed('2026-03-10', 10),
      attendees: [{ email: 'set@brightpath.example' }, { email: 'client@else.example' }],
      extendedProperties: { private: { 'sk.session': 'yes', 'other.app': 'theirs' } },
    });
    const id = ev['id'] as string;
    const connector = await connectorOf(me);
    expect(connector.writesNotifyAttendees).toBe(false);
    expect(await connector.getTag('set@brightpath.example', id, 'sk.outcome')).toBeNull();

    await connector.setTag('set@brightpath.example', id, 'sk.outcome', 'attended');
    expect(await connector.getTag('set@brightpath.example', id, 'sk.outcome')).toBe('attended');
    // Other properties, ours and someone else's, stay.
    expect(await connector.getTag('set@brightpath.example', id, 'sk.session')).toBe('yes');
    expect(await connector.getTag('set@brightpath.example', id, 'other.app')).toBe('theirs');
    const once = g.emu.requests.filter((r) => r.path.endsWith(`/events/${id}`)).map((r) => [r.method, r.query['fields'], r.query['sendUpdates'] ?? null]);
    expect(once).toEqual([
      ['GET', 'id,status,extendedProperties/private', null],
      ['PATCH', 'id,status', 'none'],
      ['GET', 'id,status,extendedProperties/private', null],
      ['GET', 'id,status,extendedProperties/private', null],
      ['GET', 'id,status,extendedProperties/private', null],
    ]);
    expect(patches(id)).toEqual([expect.objectContaining({ status: 200, sendUpdates: 'none', notifiedGuests: [] })]);

    // An empty patch from the user's side answers the stored event as it is.
    const before = g.emu.patchEvent('set@brightpath.example', id, {});
    await connector.setTag('set@brightpath.example', id, 'sk.outcome', 'attended');
    expect(await connector.getTag('set@brightpath.example', id, 'sk.outcome')).toBe('attended');
    const after = g.emu.patchEvent('set@brightpath.example', id, {});
    const visible = (e: Record<string, unknown>) => ({ ...e, etag: undefined, updated: undefined });
    expect(visible(after)).toEqual(visible(before));
    expect(after['extendedProperties']).toEqual({ private: { 'sk.session': 'yes', 'other.app': 'theirs', 'sk.outcome': 'attended' } });
    expect(patches(id).map((r) => r.notifiedGuests)).toEqual([[], []]);
  });

  test('a tag on a deleted or unknown event is NotFound, also when Google answers 410', async () => {
    const me = await g.connect({ sub: 't-gone', email: 'gone@brightpath.example', calendars: [{ id: 'gone@brightpath.example' }] });
    const id = g.emu.insertEvent('gone@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) })['id'] as string;
    const connector = await connectorOf(me);
    await connector.setTag('gone@brightpath.example', id, 'sk.session', 'yes');
    g.emu.deleteEvent('gone@brightpath.example', id);
    // Google still answers a deleted event, with status "cancelled": for us it is gone.
    expect(await caught(connector.getTag('gone@brightpath.example', id, 'sk.session'))).toBeInstanceOf(NotFound);
    expect(await caught(connector.setTag('gone@brightpath.example', id, 'sk.session', 'no'))).toBeInstanceOf(NotFound);
    expect(await caught(connector.getTag('gone@brightpath.example', 'nosuchevent123', 'sk.session'))).toBeInstanceOf(NotFound);
    expect(await caught(connector.setTag('gone@brightpath.example', 'nosuchevent123', 'sk.session', 'no'))).toBeInstanceOf(NotFound);

    const live = g.emu.insertEvent('gone@brightpath.example', { summary: 'Session', ...timed('2026-03-11', 10) })['id'] as string;
    for (const method of ['PATCH', 'GET']) {
      g.emu.faults.add({ match: { method, path: /\/events\/[^/]+$/ }, fault: { status: 410 } });
      const err = method === 'PATCH' ? await caught(connector.setTag('gone@brightpath.example', live, 'sk.session', 'yes')) : await caught(connector.getTag('gone@brightpath.example', live, 'sk.session'));
      expect(err).toBeInstanceOf(NotFound);
      expect(err).not.toBeInstanceOf(CursorExpired);
    }
  });

  test('a 429 with Retry-After is ridden out; a 503 or a lost reply on a write goes back to the caller, which reads first', async () => {
    const me = await g.connect({ sub: 't-faults', email: 'faults@brightpath.example', calendars: [{ id: 'faults@brightpath.example' }] });
    const id = g.emu.insertEvent('faults@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) })['id'] as string;
    const connector = await connectorOf(me);
    g.emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 429, retryAfter: 1 } });
    await connector.setTag('faults@brightpath.example', id, 'sk.outcome', 'no_show');
    expect(patches(id).map((r) => r.status)).toEqual([429, 200]);
    // A 503 may come after the write: not retried blindly (the engine reads the tag back, then decides).
    g.emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 503 } });
    await expect(connector.setTag('faults@brightpath.example', id, 'sk.outcome', 'no_show')).rejects.toBeInstanceOf(RetryAfter);
    expect(patches(id).map((r) => r.status)).toEqual([429, 200, 503]);

    g.emu.faults.add({ match: { method: 'GET' }, fault: { status: 503 } });
    g.emu.faults.add({ match: { method: 'GET' }, fault: { status: 429, retryAfter: 2 } });
    expect(await connector.getTag('faults@brightpath.example', id, 'sk.outcome')).toBe('no_show');

    // The write is applied and its answer lost: the caller hears of a failure, and reading shows the write.
    g.emu.faults.add({ match: { method: 'PATCH' }, fault: { dropAfter: true } });
    await expect(connector.setTag('faults@brightpath.example', id, 'sk.outcome', 'attended')).rejects.toBeInstanceOf(RetryAfter);
    expect(patches(id).slice(3).map((r) => [r.status, r.dropped ?? null])).toEqual([[0, 'after']]);
    expect(await connector.getTag('faults@brightpath.example', id, 'sk.outcome')).toBe('attended');
  });

  test('a grant without write access to events: MissingScope, the connection marked for consent; a calendar we may only read gives Forbidden', async () => {
    g.emu.addAccount({ sub: 't-ro', email: 'ro@brightpath.example' });
    g.emu.addCalendar('t-ro', { id: 'ro@brightpath.example', summary: 'ro', timeZone: TZ, primary: true });
    g.emu.addCalendar('t-ro', { id: 'shared-ro', summary: 'shared', timeZone: TZ, accessRole: 'reader' });
    const id = g.emu.insertEvent('ro@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10), extendedProperties: { private: { 'sk.session': 'yes' } } })['id'] as string;
    const other = g.emu.insertEvent('shared-ro', { summary: 'Session', ...timed('2026-03-10', 12) })['id'] as string;
    const auth = oauthClient({ clientId: g.emu.clientId, clientSecret: g.emu.clientSecret, redirectUri: REDIRECT, endpoints: { oauth2TokenUrl: g.emu.tokenUrl, oauth2RevokeUrl: g.emu.revokeUrl } });
    const readOnly = ['openid', 'https://www.googleapis.com/auth/calendar.events.readonly'];
    auth.setCredentials((await auth.getToken(g.emu.authorize('t-ro', readOnly, REDIRECT))).tokens);
    const marked: string[] = [];
    const connector = new GoogleCalendarConnector({
      auth,
      credentials: { load: async () => JSON.stringify(auth.credentials), save: async () => undefined, markNeedsReauth: async (r) => void marked.push(r) },
      rootUrl: g.emu.url,
      sleep: async () => undefined,
    });
    expect(await connector.getTag('ro@brightpath.example', id, 'sk.session')).toBe('yes');
    const err = await caught(connector.setTag('ro@brightpath.example', id, 'sk.outcome', 'attended'));
    expect(err).toBeInstanceOf(MissingScope);
    expect((err as Error).message).toContain('insufficientPermissions');
    // google-auth-library refreshes the token once after a 401 or 403 and tries again (forceRefreshOnFailure);
    // our own retries add nothing to that. Nothing written; the connection is marked for the therapist
    // to consent again, with the reason.
    expect(patches(id).map((r) => r.status)).toEqual([403, 403]);
    expect(await connector.getTag('ro@brightpath.example', id, 'sk.outcome')).toBeNull();
    expect(marked).toHaveLength(1);
    expect(marked[0]).toContain('connect again');

    auth.setCredentials((await auth.getToken(g.emu.authorize('t-ro', ['openid', 'https://www.googleapis.com/auth/calendar.events'], REDIRECT))).tokens);
    expect(await caught(connector.setTag('shared-ro', other, 'sk.outcome', 'attended'))).toBeInstanceOf(Forbidden);
  });

  test('only our own well-formed tag names are written', async () => {
    const me = await g.connect({ sub: 't-names', email: 'names@brightpath.example', calendars: [{ id: 'names@brightpath.example' }] });
    const id = g.emu.insertEvent('names@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) })['id'] as string;
    const connector = await connectorOf(me);
    for (const name of ['outcome', 'Sk.outcome', 'sk.Outcome', `sk.${'x'.repeat(64)}`]) {
      expect(await caught(connector.setTag('names@brightpath.example', id, name, 'x'))).toBeInstanceOf(Error);
    }
    expect(await caught(connector.setTag('names@brightpath.example', id, 'sk.note', 'x'.repeat(1025)))).toBeInstanceOf(Error);
    expect(patches(id)).toEqual([]);
  });

  test('the tag arrives with the next incremental sync, as one of the event’s tags', async () => {
    const me = await g.connect({ sub: 't-sync', email: 'sync@brightpath.example', calendars: [{ id: 'sync@brightpath.example' }] });
    const cal = me.calendars['sync@brightpath.example']!;
    const id = g.emu.insertEvent('sync@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10), extendedProperties: { private: { 'sk.session': 'yes' } } })['id'] as string;
    g.emu.insertEvent('sync@brightpath.example', { summary: 'Other session', ...timed('2026-03-11', 10) });
    const connector = await connectorOf(me);
    const full = await syncCalendar(t.store, connector, cal, { log: silentLogger });
    expect(full.mode).toBe('full');
    expect(full.items).toHaveLength(2);

    t.clock.advance({ minutes: 2 });
    await connector.setTag('sync@brightpath.example', id, 'sk.outcome', 'attended');
    const inc = await syncCalendar(t.store, connector, cal, { log: silentLogger });
    expect(inc.mode).toBe('incremental');
    expect(inc.items.map((i) => [i.eventId, i.kind === 'event' ? i.tags : null])).toEqual([[id, { 'sk.session': 'yes', 'sk.outcome': 'attended' }]]);
    await t.store.db.deleteFrom('sync_requests').execute();
  });
});
