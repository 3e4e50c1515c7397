// Graph change notifications: subscriptions made through the validation handshake with our own
// server, notifications checked by clientState and queued, lifecycle events acted on, subscriptions
// replaced before they expire.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { http as registerFunction } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { DateTime } from 'luxon';
import { expect, test } from 'vitest';
import type { App } from '../src/app.js';
import { ensureChannel } from '../src/engine/channels.js';
import { runQueuedSyncs } from '../src/engine/worker.js';
import { createHandler } from '../src/http.js';
import { silentLogger } from '../src/log.js';
import { forEachBackend } from './helpers/db.js';
import { withMicrosoft } from './helpers/microsoft.js';

let served = 0;

forEachBackend('Microsoft push', (t) => {
  const m = withMicrosoft(t);

  async function serve(): Promise<{ url: string; app: App; close(): Promise<void> }> {
    const app: App = { config: m.config, clock: t.clock, log: silentLogger, store: t.store, opened: undefined as never, close: async () => undefined };
    let running = Promise.resolve();
    app.kick = () => {
      running = running.then(() => runQueuedSyncs({ store: t.store, connectors: m.connectors, log: silentLogger, clock: t.clock }, 'ms-worker').then(() => undefined));
    };
    const name = `sessionkeeper-ms-${++served}`;
    registerFunction(name, createHandler(app));
    const server: http.Server = getTestServer(name);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, app, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  test('a subscription is made through our validation handshake; a change reaches the store; forged notifications change nothing', async () => {
    const me = await m.connect({ oid: 'mp-1', upn: 'push1@contoso.example' });
    const cal = me.calendars['Calendar']!;
    const srv = await serve();
    try {
      const provider = await t.store.db.selectFrom('calendars').select('provider_calendar_id').where('id', '=', cal).executeTakeFirstOrThrow();
      const connector = await m.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' });
      const made = await ensureChannel(t.store, connector, { id: cal, provider_calendar_id: provider.provider_calendar_id }, { address: `${srv.url}/webhooks/microsoft`, log: silentLogger });
      const sub = m.emu.subscriptions().find((s) => s.id === made.created)!;
      expect(sub).toMatchObject({ resource: '/me/events', notificationUrl: `${srv.url}/webhooks/microsoft`, lifecycleNotificationUrl: `${srv.url}/webhooks/microsoft/lifecycle`, removed: false });
      expect((await t.store.db.selectFrom('push_channels').select(['channel_id', 'status']).where('calendar_id', '=', cal).execute())).toEqual([{ channel_id: made.created, status: 'active' }]);

      // The validation handshake itself, as Graph sends it.
      const echo = await fetch(`${srv.url}/webhooks/microsoft?validationToken=${encodeURIComponent('Validation: Token-1 <&>')}`, { method: 'POST' });
      expect([echo.status, echo.headers.get('content-type')?.split(';')[0], await echo.text()]).toEqual([200, 'text/plain', 'Validation: Token-1 <&>']);

      // A forged notification (wrong clientState) and an unknown subscription: 404, nothing queued.
      await t.store.db.deleteFrom('sync_requests').execute();
      const forged = await fetch(`${srv.url}/webhooks/microsoft`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: [{ subscriptionId: made.created, clientState: 'guess', changeType: 'updated', resource: 'x' }] }) });
      expect(forged.status).toBe(404);
      const unknown = await fetch(`${srv.url}/webhooks/microsoft`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: [{ subscriptionId: 'nope', clientState: 'x' }] }) });
      expect(unknown.status).toBe(404);
      expect(await t.store.db.selectFrom('sync_requests').select('calendar_id').execute()).toEqual([]);

      // A real change: Graph notifies, we answer 202 and the worker syncs it into the store.
      const ev = m.emu.createEvent('mp-1', 'default', { subject: 'Session', start: { dateTime: '2026-03-10T10:00:00', timeZone: 'UTC' }, end: { dateTime: '2026-03-10T10:50:00', timeZone: 'UTC' } });
      await m.emu.settled();
      expect(m.emu.notifications().filter((n) => n.subscriptionId === made.created).at(-1)?.status).toBe(202);
      let rows: { event_id: string }[] = [];
      for (let i = 0; i < 500 && rows.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        rows = await t.store.db.selectFrom('event_snapshots').select('event_id').where('calendar_id', '=', cal).where('event_id', '=', ev['id'] as string).execute();
      }
      expect(rows).toHaveLength(1);
    } finally {
      await srv.close();
    }
  });

  test('lifecycle events: missed resyncs, subscriptionRemoved stops ours and resyncs in full, reauthorizationRequired renews early', async () => {
    const me = await m.connect({ oid: 'mp-2', upn: 'push2@contoso.example' });
    const cal = me.calendars['Calendar']!;
    const srv = await serve();
    srv.app.kick = undefined; // keep the queue to look at it
    try {
      const provider = await t.store.db.selectFrom('calendars').select('provider_calendar_id').where('id', '=', cal).executeTakeFirstOrThrow();
      const connector = await m.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' });
      const made = await ensureChannel(t.store, connector, { id: cal, provider_calendar_id: provider.provider_calendar_id }, { address: `${srv.url}/webhooks/microsoft`, log: silentLogger });
      await t.store.db.deleteFrom('sync_requests').execute();
      const queued = () => t.store.db.selectFrom('sync_requests').select(['reason', 'full_resync']).where('calendar_id', '=', cal).execute();

      await m.emu.sendLifecycle(made.created!, 'missed');
      expect(await queued()).toEqual([{ reason: 'lifecycle:missed', full_resync: false }]);
      await t.store.db.deleteFrom('sync_requests').execute();

      await m.emu.sendLifecycle(made.created!, 'reauthorizationRequired');
      expect(await queued()).toEqual([{ reason: 'lifecycle:reauthorizationRequired', full_resync: false }]);
      // Upkeep renews it in place (PATCH), which reauthorizes it: the same subscription, a later expiry.
      const renewed = await ensureChannel(t.store, connector, { id: cal, provider_calendar_id: provider.provider_calendar_id }, { address: `${srv.url}/webhooks/microsoft`, log: silentLogger });
      expect(renewed).toEqual({ created: null, stopped: [] });
      const row = await t.store.db.selectFrom('push_channels').select(['status', 'expires_at']).where('channel_id', '=', made.created!).executeTakeFirstOrThrow();
      expect(row.status).toBe('active');
      expect(row.expires_at.getTime()).toBeGreaterThan(t.store.now().getTime() + 2 * 86_400_000);
      expect(Date.parse(m.emu.subscriptions().find((s) => s.id === made.created)!.expirationDateTime)).toBe(row.expires_at.getTime());
      await t.store.db.deleteFrom('sync_requests').execute();

      await m.emu.sendLifecycle(made.created!, 'subscriptionRemoved');
      expect(await queued()).toEqual([{ reason: 'lifecycle:subscriptionRemoved', full_resync: true }]);
      expect((await t.store.db.selectFrom('push_channels').select('status').where('channel_id', '=', made.created!).executeTakeFirstOrThrow()).status).toBe('stopped');
      // And upkeep makes a new one.
      const again = await ensureChannel(t.store, connector, { id: cal, provider_calendar_id: provider.provider_calendar_id }, { address: `${srv.url}/webhooks/microsoft`, log: silentLogger });
      expect(again.created).not.toBeNull();
    } finally {
      await srv.close();
      await t.store.db.deleteFrom('sync_requests').execute();
    }
  });

  test('the synced window moves ahead by a planned full resync', async () => {
    const me = await m.connect({ oid: 'mp-3', upn: 'push3@contoso.example' });
    const cal = me.calendars['Calendar']!;
    const connector = await m.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' });
    const { syncCalendar } = await import('../src/engine/sync.js');
    const far = DateTime.fromJSDate(t.store.now()).plus({ days: 170 }).toFormat("yyyy-MM-dd'T'10:00:00");
    m.emu.createEvent('mp-3', 'default', { subject: 'Session', start: { dateTime: far, timeZone: 'UTC' }, end: { dateTime: far.replace('10:00', '10:50'), timeZone: 'UTC' } });
    await syncCalendar(t.store, connector, cal, { log: silentLogger });
    t.clock.advance({ days: 70 });
    const moved = await syncCalendar(t.store, await m.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' }), cal, { log: silentLogger });
    expect(moved).toMatchObject({ mode: 'full', cursorExpired: true, deletedMeanwhile: 0 });
    const cursor = JSON.parse((await t.store.db.selectFrom('calendars').select('cursor').where('id', '=', cal).executeTakeFirstOrThrow()).cursor!) as { end: string };
    expect(Date.parse(cursor.end)).toBeGreaterThan(t.store.now().getTime() + 170 * 86_400_000);
  });
});
