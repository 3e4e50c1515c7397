// What a review of the Google sync found, each now covered: nothing readable is lost or left stale,
// push and connecting start a sync, roles are honoured, the operator's mistakes do not lock out
// therapists, and only invited people become therapists.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { http as registerFunction } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { DateTime } from 'luxon';
import { expect, test } from 'vitest';
import { Forbidden } from '../connectors/errors.js';
import { GOOGLE_SCOPES } from '../connectors/google/oauth.js';
import type { CalendarConnector } from '../connectors/port.js';
import type { App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { ensureChannel } from '../src/engine/channels.js';
import { disconnectConnection, setCalendarRole } from '../src/engine/connect.js';
import { platformConnectors, signInvite } from '../src/engine/platforms.js';
import { syncCalendar } from '../src/engine/sync.js';
import { createHandler } from '../src/http.js';
import { silentLogger } from '../src/log.js';
import { forEachBackend } from './helpers/db.js';
import { googleEnv, REDIRECT, withGoogle } from './helpers/google.js';

const TZ = 'America/New_York';
const timed = (day: string, hh: number) => {
  const start = DateTime.fromISO(`${day}T${String(hh).padStart(2, '0')}:00:00`, { zone: TZ });
  return { start: { dateTime: start.toISO(), timeZone: TZ }, end: { dateTime: start.plus({ minutes: 50 }).toISO(), timeZone: TZ } };
};

forEachBackend('Google sync, reviewed', (t) => {
  const g = withGoogle(t);
  const connectorOf = (me: { connectionId: string; therapistId: string }) => g.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'google' });
  const rows = (cal: string) => t.store.db.selectFrom('event_snapshots').select(['event_id', 'status', 'ical_uid', 'busy', 'payload']).where('calendar_id', '=', cal).orderBy('event_id').execute();

  test('connecting queues the first sync of each watched calendar; a first push channel queues one too', async () => {
    const me = await g.connect({ sub: 'r-first', email: 'first@brightpath.example', calendars: [{ id: 'first@brightpath.example' }, { id: 'other-first', role: 'ignored', primary: false }] });
    const queued = await t.store.db.selectFrom('sync_requests').select(['calendar_id', 'reason']).where('calendar_id', 'in', Object.values(me.calendars)).execute();
    expect(queued).toEqual([{ calendar_id: me.calendars['first@brightpath.example'], reason: 'connect' }]);
    await t.store.db.deleteFrom('sync_requests').execute();
    const cal = { id: me.calendars['first@brightpath.example']!, provider_calendar_id: 'first@brightpath.example' };
    await ensureChannel(t.store, await connectorOf(me), cal, { address: 'http://127.0.0.1:9/webhooks/google', log: silentLogger });
    expect(await t.store.db.selectFrom('sync_requests').select('reason').where('calendar_id', '=', cal.id).execute()).toEqual([{ reason: 'channel' }]);
    await t.store.db.deleteFrom('sync_requests').execute();
  });

  test('an event we cannot read survives a full resync; a bad tag is dropped, not the event', async () => {
    const me = await g.connect({ sub: 'r-bad', email: 'bad@brightpath.example', calendars: [{ id: 'bad@brightpath.example' }] });
    const cal = me.calendars['bad@brightpath.example']!;
    const ev = g.emu.insertEvent('bad@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10), extendedProperties: { private: { 'sk.clientId': 'x', 'sk.session': 'yes' } } });
    const broken = g.emu.insertEvent('bad@brightpath.example', { summary: 'Session', ...timed('2026-03-11', 10) });
    const connector = await connectorOf(me);
    const first = await syncCalendar(t.store, connector, cal, { log: silentLogger });
    const tagged = first.items.find((i) => i.eventId === ev['id']);
    expect(tagged?.kind === 'event' && tagged.tags).toEqual({ 'sk.session': 'yes' });
    // Now one event comes back malformed (a connector that cannot read it), in a full resync.
    const flaky: CalendarConnector = {
      ...connector,
      provider: 'google',
      listCalendars: () => connector.listCalendars(),
      watch: (...a) => connector.watch(...a),
      stopChannel: (...a) => connector.stopChannel(...a),
      writesNotifyAttendees: connector.writesNotifyAttendees,
      setTag: (...a) => connector.setTag(...a),
      getTag: (...a) => connector.getTag(...a),
      setDescriptionLine: (...a) => connector.setDescriptionLine(...a),
      async syncPage(id, opts) {
        const page = await connector.syncPage(id, opts);
        return { ...page, items: page.items.filter((i) => i.eventId !== broken['id']), rejected: [...page.rejected, { eventId: broken['id'] as string, field: 'start', reason: 'unreadable' }] };
      },
    };
    const resync = await syncCalendar(t.store, flaky, cal, { full: true, log: silentLogger });
    expect(resync.deletedMeanwhile).toBe(0);
    expect((await rows(cal)).map((r) => r.status)).toEqual(['confirmed', 'confirmed']);
  });

  test('a tombstone keeps what we knew (the iCalUID for a move); free time and declined events are not busy; duplicates in one listing are one', async () => {
    const me = await g.connect({ sub: 'r-keep', email: 'keep@brightpath.example', calendars: [{ id: 'keep@brightpath.example' }] });
    const cal = me.calendars['keep@brightpath.example']!;
    const a = g.emu.insertEvent('keep@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) });
    g.emu.insertEvent('keep@brightpath.example', { summary: 'Gym', transparency: 'transparent', ...timed('2026-03-10', 12) });
    g.emu.insertEvent('keep@brightpath.example', { summary: 'Webinar', ...timed('2026-03-10', 14), attendees: [{ email: 'keep@brightpath.example', responseStatus: 'declined' }, { email: 'host@else.example', organizer: true }] });
    const connector = await connectorOf(me);
    await syncCalendar(t.store, connector, cal, { log: silentLogger });
    expect((await rows(cal)).map((r) => r.busy).sort()).toEqual([false, false, true]);
    g.emu.deleteEvent('keep@brightpath.example', a['id'] as string);
    await syncCalendar(t.store, connector, cal, { log: silentLogger });
    const gone = (await rows(cal)).find((r) => r.event_id === a['id']);
    expect(gone).toMatchObject({ status: 'deleted', ical_uid: a['iCalUID'], busy: false, payload: null });

    const twice: CalendarConnector = { ...connector, provider: 'google', listCalendars: () => connector.listCalendars(), watch: (...x) => connector.watch(...x), stopChannel: (...x) => connector.stopChannel(...x), writesNotifyAttendees: connector.writesNotifyAttendees, setTag: (...x) => connector.setTag(...x), getTag: (...x) => connector.getTag(...x), setDescriptionLine: (...x) => connector.setDescriptionLine(...x), async syncPage(id, opts) {
      const page = await connector.syncPage(id, opts);
      return { ...page, items: [...page.items, ...page.items] };
    } };
    const dup = await syncCalendar(t.store, twice, cal, { full: true, log: silentLogger });
    expect(new Set(dup.items.map((i) => i.eventId)).size).toBe(dup.items.length);
  });

  test('a new role: busy-only drops the stored copies at once, and any change resyncs the calendar fully', async () => {
    const me = await g.connect({ sub: 'r-role', email: 'role@brightpath.example', calendars: [{ id: 'role@brightpath.example' }] });
    const cal = me.calendars['role@brightpath.example']!;
    g.emu.insertEvent('role@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) });
    await syncCalendar(t.store, await connectorOf(me), cal, { log: silentLogger });
    await t.store.db.deleteFrom('sync_requests').execute();
    expect(await setCalendarRole(t.store, cal, 'busy_only', 'operator')).toEqual({ changed: true });
    expect((await rows(cal)).map((r) => r.payload)).toEqual([null]);
    expect(await t.store.db.selectFrom('sync_requests').select(['reason', 'full_resync']).where('calendar_id', '=', cal).execute()).toEqual([{ reason: 'role', full_resync: true }]);
    await setCalendarRole(t.store, cal, 'mixed', 'operator');
    await syncCalendar(t.store, await connectorOf(me), cal, { full: true, log: silentLogger });
    expect((await rows(cal)).map((r) => r.payload !== null)).toEqual([true]);
    await t.store.db.deleteFrom('sync_requests').execute();
  });

  test("a wrong client secret is the operator's error: no connection is marked", async () => {
    const me = await g.connect({ sub: 'r-secret', email: 'secret@brightpath.example', calendars: [{ id: 'secret@brightpath.example' }] });
    const wrong = platformConnectors(loadConfig(googleEnv(g.emu, { GOOGLE_CLIENT_SECRET: 'rotated-away' })), t.store, { sleep: async () => undefined });
    g.emu.expireAccessTokens('r-secret');
    const connector = await wrong.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'google' });
    const err = await connector.listCalendars().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Forbidden);
    expect((err as Error).message).toContain('GOOGLE_CLIENT_SECRET');
    expect((await t.store.db.selectFrom('connections').select('status').where('id', '=', me.connectionId).executeTakeFirstOrThrow()).status).toBe('ok');
  });

  test('disconnecting a connection whose grant already died still finishes', async () => {
    const me = await g.connect({ sub: 'r-dead', email: 'deadd@brightpath.example', calendars: [{ id: 'deadd@brightpath.example' }] });
    await ensureChannel(t.store, await connectorOf(me), { id: me.calendars['deadd@brightpath.example']!, provider_calendar_id: 'deadd@brightpath.example' }, { address: 'http://127.0.0.1:9/webhooks/google', log: silentLogger });
    g.emu.revokeAll('r-dead');
    g.emu.expireAccessTokens('r-dead');
    expect(await disconnectConnection(t.store, g.config, g.connectors, me.connectionId, 'operator')).toEqual({ channelsStopped: 1 });
    expect(await t.store.db.selectFrom('connections').select(['status', 'credentials']).where('id', '=', me.connectionId).executeTakeFirstOrThrow()).toEqual({ status: 'revoked', credentials: null });
  });

  test('only invited people become therapists through the server; therapists reconnect freely', async () => {
    await g.connect({ sub: 'r-owner', email: 'owner@brightpath.example', calendars: [{ id: 'owner@brightpath.example' }] });
    const app: App = { config: g.config, clock: t.clock, log: silentLogger, store: t.store, opened: undefined as never, close: async () => undefined };
    registerFunction('sessionkeeper-invite-test', createHandler(app));
    const server: http.Server = getTestServer('sessionkeeper-invite-test');
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const consent = async (query: string) => {
      const res = await fetch(`${base}/oauth/google/start${query}`, { redirect: 'manual' });
      return res.status === 302 ? new URL(res.headers.get('location')!).searchParams.get('state')! : null;
    };
    const callback = (state: string, sub: string) => fetch(`${base}/oauth/google/callback?code=${encodeURIComponent(g.emu.authorize(sub, [...GOOGLE_SCOPES], REDIRECT))}&state=${encodeURIComponent(state)}`);
    try {
      g.emu.addAccount({ sub: 'r-stranger', email: 'stranger@else.example' });
      g.emu.addCalendar('r-stranger', { id: 'stranger@else.example', summary: 'S', timeZone: TZ, primary: true });
      const uninvited = await callback((await consent(''))!, 'r-stranger');
      expect(uninvited.status).toBe(403);
      expect(await t.store.db.selectFrom('therapist_identities').select('subject').where('subject', '=', 'r-stranger').execute()).toEqual([]);
      expect(await consent('?invite=forged')).toBeNull();
      const invited = await callback((await consent(`?invite=${signInvite(t.store.keyring, t.store.now(), 7)}`))!, 'r-stranger');
      expect(invited.status).toBe(200);
      expect(await t.store.db.selectFrom('therapist_identities').select('subject').where('subject', '=', 'r-stranger').execute()).toEqual([{ subject: 'r-stranger' }]);
      expect((await callback((await consent(''))!, 'r-owner')).status).toBe(200);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await t.store.db.deleteFrom('sync_requests').execute();
    }
  });
});
