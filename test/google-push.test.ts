// Push for Google: the webhook checks channel and token and only queues work; a change at the
// emulator reaches our store through its notification; channels are replaced before they expire;
// the sync worker parks a dead connection and backs off on rate limits.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { http as registerFunction } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { DateTime } from 'luxon';
import { expect, test } from 'vitest';
import type { App } from '../src/app.js';
import { ensureChannel } from '../src/engine/channels.js';
import { disconnectConnection } from '../src/engine/connect.js';
import { NeedsReauth } from '../connectors/errors.js';
import { runQueuedSyncs } from '../src/engine/worker.js';
import { createHandler } from '../src/http.js';
import { silentLogger } from '../src/log.js';
import { recordPushChannel } from '../src/store/calendars.js';
import { requestSync } from '../src/store/sync-queue.js';
import { forEachBackend, type TestDb } from './helpers/db.js';
import { withGoogle } from './helpers/google.js';

const TZ = 'America/New_York';
const timed = (day: string, hh: number) => {
  const start = DateTime.fromISO(`${day}T${String(hh).padStart(2, '0')}:00:00`, { zone: TZ });
  return { start: { dateTime: start.toISO(), timeZone: TZ }, end: { dateTime: start.plus({ minutes: 50 }).toISO(), timeZone: TZ } };
};

let served = 0;
/** Our HTTP function (the real router) on a local port, with a kick that runs the queue at once. */
async function serve(t: TestDb, g: ReturnType<typeof withGoogle>): Promise<{ url: string; close(): Promise<void>; app: App }> {
  const app: App = {
    config: g.config,
    clock: t.clock,
    log: silentLogger,
    store: t.store,
    opened: undefined as never,
    close: async () => undefined,
  };
  let running = Promise.resolve();
  app.kick = () => {
    running = running.then(() => runQueuedSyncs({ store: t.store, connectors: g.connectors, log: silentLogger, clock: t.clock }, 'test-worker').then(() => undefined));
  };
  const name = `sessionkeeper-push-${++served}`;
  registerFunction(name, createHandler(app));
  const server: http.Server = getTestServer(name);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, app, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const post = (url: string, headers: Record<string, string>) => fetch(`${url}/webhooks/google`, { method: 'POST', headers });

forEachBackend('Google push', (t) => {
  const g = withGoogle(t);

  test('forged, unknown and malformed notifications change nothing; real ones queue one sync per calendar', async () => {
    const me = await g.connect({ sub: 'p-verify', email: 'verify@brightpath.example', calendars: [{ id: 'verify@brightpath.example' }] });
    const cal = me.calendars['verify@brightpath.example']!;
    await t.store.db.deleteFrom('sync_requests').execute(); // the first sync that connecting queued
    await recordPushChannel(t.store.db, { calendarId: cal, provider: 'google', channelId: 'chan-1', resourceId: 'res-1', secret: 'the-real-token', expiresAt: new Date(t.store.now().getTime() + 86_400_000), now: t.store.now() });
    const srv = await serve(t, g);
    try {
      const queued = () => t.store.db.selectFrom('sync_requests').select(['calendar_id', 'seq', 'reason']).execute();
      const base = { 'X-Goog-Channel-ID': 'chan-1', 'X-Goog-Resource-ID': 'res-1', 'X-Goog-Resource-State': 'exists', 'X-Goog-Message-Number': '2' };
      expect((await post(srv.url, { ...base, 'X-Goog-Channel-Token': 'a-guess' })).status).toBe(404);
      expect((await post(srv.url, { ...base, 'X-Goog-Channel-ID': 'chan-unknown', 'X-Goog-Channel-Token': 'the-real-token' })).status).toBe(404);
      expect((await post(srv.url, { ...base, 'X-Goog-Channel-Token': 'the-real-token', 'X-Goog-Resource-ID': 'res-other' })).status).toBe(404);
      expect((await post(srv.url, { 'X-Goog-Channel-ID': 'chan-1' })).status).toBe(400);
      expect((await post(srv.url, { ...base, 'X-Goog-Channel-Token': 'the-real-token', 'X-Goog-Resource-State': 'sync' })).status).toBe(200);
      expect(await queued()).toEqual([]);
      srv.app.kick = undefined; // keep the queue to look at it
      for (let i = 0; i < 3; i++) expect((await post(srv.url, { ...base, 'X-Goog-Channel-Token': 'the-real-token' })).status).toBe(200);
      expect(await queued()).toEqual([{ calendar_id: cal, seq: 3, reason: 'push' }]);
    } finally {
      await srv.close();
      await t.store.db.deleteFrom('sync_requests').execute();
    }
  });

  test('a change at Google reaches the store through its push notification', async () => {
    const me = await g.connect({ sub: 'p-e2e', email: 'push@brightpath.example', calendars: [{ id: 'push@brightpath.example' }] });
    const cal = me.calendars['push@brightpath.example']!;
    const srv = await serve(t, g);
    try {
      const connector = await g.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'google' });
      const change = await ensureChannel(t.store, connector, { id: cal, provider_calendar_id: 'push@brightpath.example' }, { address: `${srv.url}/webhooks/google`, log: silentLogger });
      expect(change.created).toBeTruthy();
      await g.emu.settled();
      expect(g.emu.notifications().map((n) => [n.state, n.status])).toEqual([['sync', 200]]);

      const ev = g.emu.insertEvent('push@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) });
      await g.emu.settled();
      let stored: { event_id: string }[] = [];
      for (let i = 0; i < 500 && stored.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        stored = await t.store.db.selectFrom('event_snapshots').select('event_id').where('calendar_id', '=', cal).execute();
      }
      expect(stored).toEqual([{ event_id: ev['id'] }]);
      expect(g.emu.notifications().at(-1)).toMatchObject({ state: 'exists', status: 200 });
    } finally {
      await srv.close();
    }
  });

  test('a channel is replaced a day before it expires, and the old one is stopped', async () => {
    const me = await g.connect({ sub: 'p-renew', email: 'renew@brightpath.example', calendars: [{ id: 'renew@brightpath.example' }] });
    const cal = { id: me.calendars['renew@brightpath.example']!, provider_calendar_id: 'renew@brightpath.example' };
    const connector = await g.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'google' });
    const address = 'http://127.0.0.1:9/webhooks/google';
    const first = await ensureChannel(t.store, connector, cal, { address, log: silentLogger });
    expect((await ensureChannel(t.store, connector, cal, { address, log: silentLogger })).created).toBeNull();
    t.clock.advance({ days: 6, hours: 1 });
    const second = await ensureChannel(t.store, connector, cal, { address, log: silentLogger });
    expect(second.created).not.toBe(first.created);
    expect(second.stopped).toEqual([first.created]);
    const atGoogle = g.emu.channels().filter((c) => c.calendarId === 'renew@brightpath.example');
    expect(atGoogle.map((c) => [c.id, c.stopped])).toEqual([
      [first.created, true],
      [second.created, false],
    ]);
    const ours = await t.store.db.selectFrom('push_channels').select(['channel_id', 'status']).where('calendar_id', '=', cal.id).orderBy('created_at').execute();
    expect(ours).toEqual([
      { channel_id: first.created, status: 'stopped' },
      { channel_id: second.created, status: 'active' },
    ]);
  });

  test('the worker: a dead connection stops asking, a rate limit comes back later, the others sync', async () => {
    const dead = await g.connect({ sub: 'p-dead', email: 'deadw@brightpath.example', calendars: [{ id: 'deadw@brightpath.example' }] });
    const slow = await g.connect({ sub: 'p-slow', email: 'sloww@brightpath.example', calendars: [{ id: 'sloww@brightpath.example' }] });
    const fine = await g.connect({ sub: 'p-fine', email: 'finew@brightpath.example', calendars: [{ id: 'finew@brightpath.example' }] });
    g.emu.revokeAll('p-dead');
    g.emu.expireAccessTokens('p-dead');
    await t.store.db.deleteFrom('sync_requests').execute(); // the first syncs that connecting queued
    const now = t.store.now();
    for (const c of [dead.calendars['deadw@brightpath.example']!, slow.calendars['sloww@brightpath.example']!, fine.calendars['finew@brightpath.example']!]) {
      await requestSync(t.store.db, { calendarId: c, reason: 'cli', now });
    }
    g.emu.faults.add({ match: { method: 'GET', path: /sloww%40brightpath\.example\/events$/ }, fault: { status: 429, retryAfter: 600 } });
    const { synced } = await runQueuedSyncs({ store: t.store, connectors: g.connectors, log: silentLogger, clock: t.clock }, 'w1');
    expect(synced).toBe(1);
    const left = await t.store.db.selectFrom('sync_requests').select(['calendar_id', 'not_before']).execute();
    expect(left).toEqual([{ calendar_id: slow.calendars['sloww@brightpath.example'], not_before: new Date(now.getTime() + 600_000) }]);
    const conn = await t.store.db.selectFrom('connections').select('status').where('id', '=', dead.connectionId).executeTakeFirstOrThrow();
    expect(conn.status).toBe('needs_reauth');
    t.clock.advance({ minutes: 11 });
    expect((await runQueuedSyncs({ store: t.store, connectors: g.connectors, log: silentLogger, clock: t.clock }, 'w1')).synced).toBe(1);
  });

  test('disconnecting stops push, revokes the grant at Google and deletes our copy of the tokens', async () => {
    const me = await g.connect({ sub: 'p-bye', email: 'bye@brightpath.example', calendars: [{ id: 'bye@brightpath.example' }] });
    const cal = { id: me.calendars['bye@brightpath.example']!, provider_calendar_id: 'bye@brightpath.example' };
    const connector = await g.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'google' });
    const channel = await ensureChannel(t.store, connector, cal, { address: 'http://127.0.0.1:9/webhooks/google', log: silentLogger });
    const tokensBefore = g.emu.requests.filter((r) => r.path.endsWith('/revoke')).length;
    expect(await disconnectConnection(t.store, g.config, g.connectors, me.connectionId, 'operator')).toEqual({ channelsStopped: 1 });
    expect(g.emu.channels().find((c) => c.id === channel.created)?.stopped).toBe(true);
    expect(g.emu.requests.filter((r) => r.path.endsWith('/revoke')).length - tokensBefore).toBe(1);
    const row = await t.store.db.selectFrom('connections').select(['status', 'credentials']).where('id', '=', me.connectionId).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'revoked', credentials: null });
    await expect(g.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'google' })).rejects.toThrow(NeedsReauth);
  });
});
