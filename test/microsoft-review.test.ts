// What a review of the Microsoft sync found, each now covered: past sessions survive a window move,
// a session moved out of the window is not a cancellation, all-day dates stay put west of UTC, and a
// notification that beats our record of its subscription is still matched.
import { DateTime } from 'luxon';
import { expect, test } from 'vitest';
import { normaliseGraphEvent } from '../connectors/microsoft/normalise.js';
import { syncCalendar } from '../src/engine/sync.js';
import { silentLogger } from '../src/log.js';
import { claimPushChannelBySecret, recordPushChannel } from '../src/store/calendars.js';
import { forEachBackend } from './helpers/db.js';
import { withMicrosoft } from './helpers/microsoft.js';

forEachBackend('Microsoft sync, reviewed', (t) => {
  const m = withMicrosoft(t);
  const iso = (d: DateTime) => d.toUTC().toFormat("yyyy-MM-dd'T'HH:mm:ss");

  test('a session long past survives the window moving ahead; one moved beyond the window stays, at its new time', async () => {
    const me = await m.connect({ oid: 'mr-1', upn: 'window@contoso.example' });
    const cal = me.calendars['Calendar']!;
    const now = DateTime.fromJSDate(t.store.now());
    const past = m.emu.createEvent('mr-1', 'default', { subject: 'Session', start: { dateTime: iso(now.minus({ days: 30 })), timeZone: 'UTC' }, end: { dateTime: iso(now.minus({ days: 30 }).plus({ minutes: 50 })), timeZone: 'UTC' } });
    const soon = m.emu.createEvent('mr-1', 'default', { subject: 'Session', start: { dateTime: iso(now.plus({ days: 10 })), timeZone: 'UTC' }, end: { dateTime: iso(now.plus({ days: 10, minutes: 50 })), timeZone: 'UTC' } });
    const connector = () => m.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' });
    await syncCalendar(t.store, await connector(), cal, { log: silentLogger });
    // Moved ten months ahead: out of the window, so delta reports it "removed".
    m.emu.updateEvent('mr-1', soon['id'] as string, { start: { dateTime: iso(now.plus({ days: 300 })), timeZone: 'UTC' }, end: { dateTime: iso(now.plus({ days: 300, minutes: 50 })), timeZone: 'UTC' } });
    const inc = await syncCalendar(t.store, await connector(), cal, { log: silentLogger });
    expect(inc.items.map((i) => [i.eventId, i.kind])).toEqual([[soon['id'], 'event']]);
    t.clock.advance({ days: 70 });
    const moved = await syncCalendar(t.store, await connector(), cal, { log: silentLogger });
    expect(moved).toMatchObject({ mode: 'full', cursorExpired: true, deletedMeanwhile: 0 });
    const rows = await t.store.db.selectFrom('event_snapshots').select(['event_id', 'status']).where('calendar_id', '=', cal).orderBy('event_id').execute();
    expect(rows.map((r) => r.status)).toEqual(['confirmed', 'confirmed']);
    expect(rows.map((r) => r.event_id).sort()).toEqual([past['id'], soon['id']].sort());
  });

  test('an all-day event keeps its date whatever zone Graph labels it with', () => {
    const r = normaliseGraphEvent(
      { id: 'ad', subject: 'Holiday', isAllDay: true, originalStartTimeZone: 'Pacific Standard Time', start: { dateTime: '2026-03-10T00:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2026-03-11T00:00:00.0000000', timeZone: 'UTC' }, lastModifiedDateTime: '2026-03-01T00:00:00Z', changeKey: 'k' },
      'primary',
      { calendarZone: 'America/Los_Angeles', ownerEmail: null },
    );
    expect(r.ok && r.item?.kind === 'event' && [r.item.start, r.item.end]).toEqual([{ kind: 'date', date: '2026-03-10' }, { kind: 'date', date: '2026-03-11' }]);
  });

  test('a notification that arrives before our record knows the subscription\'s name is matched by its clientState', async () => {
    const me = await m.connect({ oid: 'mr-2', upn: 'early@contoso.example' });
    const cal = me.calendars['Calendar']!;
    await recordPushChannel(t.store.db, { calendarId: cal, provider: 'microsoft', channelId: 'our-placeholder', secret: 'state-xyz', expiresAt: new Date(t.store.now().getTime() + 86_400_000), now: t.store.now() });
    expect(await claimPushChannelBySecret(t.store.db, { provider: 'microsoft', channelId: 'graph-sub-1', secret: 'wrong', since: new Date(0) })).toBeUndefined();
    const claimed = await claimPushChannelBySecret(t.store.db, { provider: 'microsoft', channelId: 'graph-sub-1', secret: 'state-xyz', since: new Date(0) });
    expect(claimed).toMatchObject({ calendarId: cal, channelId: 'graph-sub-1' });
  });

  test('the daily reconciliation queues calendars not synced for a day, and leaves one already waiting alone', async () => {
    const me = await m.connect({ oid: 'mr-3', upn: 'daily@contoso.example' });
    const cal = me.calendars['Calendar']!;
    await syncCalendar(t.store, await m.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' }), cal, { log: silentLogger });
    await t.store.db.deleteFrom('sync_requests').execute();
    const { queueReconciliation } = await import('../src/engine/worker.js');
    const { requestSync } = await import('../src/store/sync-queue.js');
    await queueReconciliation(t.store);
    expect(await t.store.db.selectFrom('sync_requests').select('reason').where('calendar_id', '=', cal).execute()).toEqual([]);
    t.clock.advance({ hours: 25 });
    expect(await queueReconciliation(t.store)).toBeGreaterThanOrEqual(1);
    expect(await t.store.db.selectFrom('sync_requests').select('reason').where('calendar_id', '=', cal).execute()).toEqual([{ reason: 'reconcile' }]);
    // Backing off after failures: not pulled forward.
    await t.store.db.deleteFrom('sync_requests').execute();
    await requestSync(t.store.db, { calendarId: cal, reason: 'push', now: t.store.now(), notBefore: new Date(t.store.now().getTime() + 3_600_000) });
    await queueReconciliation(t.store);
    expect(await t.store.db.selectFrom('sync_requests').select(['reason', 'not_before']).where('calendar_id', '=', cal).execute()).toEqual([{ reason: 'push', not_before: new Date(t.store.now().getTime() + 3_600_000) }]);
    await t.store.db.deleteFrom('sync_requests').execute();
  });

  test("the Graph client's RetryHandler rides out a 429 with Retry-After inside the call", async () => {
    const me = await m.connect({ oid: 'mr-4', upn: 'throttle@contoso.example' });
    const cal = me.calendars['Calendar']!;
    const soon = DateTime.fromJSDate(t.store.now()).plus({ days: 3 });
    m.emu.createEvent('mr-4', 'default', { subject: 'Session', start: { dateTime: iso(soon), timeZone: 'UTC' }, end: { dateTime: iso(soon.plus({ minutes: 50 })), timeZone: 'UTC' } });
    const { platformConnectors } = await import('../src/engine/platforms.js');
    const patient = platformConnectors(m.config, t.store, { microsoft: { ...m.platform.microsoft, maxRetries: 2 } });
    m.emu.faults.add({ match: { method: 'GET', path: /delta/ }, fault: { status: 429, retryAfter: 1 } });
    const out = await syncCalendar(t.store, await patient.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'microsoft' }), cal, { log: silentLogger });
    expect(out.items).toHaveLength(1);
    expect(m.emu.requests.filter((r) => r.path.includes('delta') && r.status === 429)).toHaveLength(1);
  });
});
