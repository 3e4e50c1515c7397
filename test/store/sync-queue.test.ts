// The "sync calendar X" queue: a burst of requests is one sync, a request made during a sync is not
// swallowed when that sync finishes, failures come back after their back-off.
import { expect, test } from 'vitest';
import { claimSyncRequests, finishSyncRequest, pendingSyncCount, releaseSyncRequest, requestSync } from '../../src/store/sync-queue.js';
import { forEachBackend } from '../helpers/db.js';
import { seedCalendar } from './fixtures.js';

forEachBackend('sync queue', (t) => {
  const lease = { leaseMs: 60_000, limit: 10 };

  test('eight notifications for one calendar make one request; a full resync request wins', async () => {
    const { calendarId } = await seedCalendar(t.store, 'burst');
    const now = t.store.now();
    await Promise.all(Array.from({ length: 8 }, () => requestSync(t.store.db, { calendarId, reason: 'push', now })));
    await requestSync(t.store.db, { calendarId, reason: 'lifecycle:missed', full: true, now });
    await requestSync(t.store.db, { calendarId, reason: 'push', now });
    const claimed = await claimSyncRequests(t.store.db, { workerId: 'w', now, ...lease });
    expect(claimed).toEqual([{ calendarId, seq: 10, full: true, reason: 'push', attempts: 1 }]);
    expect(await finishSyncRequest(t.store.db, { calendarId, seq: 10, workerId: 'w' })).toBe('done');
    expect(await pendingSyncCount(t.store.db)).toBe(0);
  });

  test('a request that arrives during the sync survives it and is claimed next', async () => {
    const { calendarId } = await seedCalendar(t.store, 'during');
    const now = t.store.now();
    await requestSync(t.store.db, { calendarId, reason: 'push', now });
    const [claim] = await claimSyncRequests(t.store.db, { workerId: 'w', now, ...lease });
    // While syncing: nobody else may take the calendar, and a new notification comes in.
    expect(await claimSyncRequests(t.store.db, { workerId: 'other', now, ...lease })).toEqual([]);
    await requestSync(t.store.db, { calendarId, reason: 'push', now });
    expect(await finishSyncRequest(t.store.db, { calendarId, seq: claim!.seq, workerId: 'w' })).toBe('requeued');
    const [next] = await claimSyncRequests(t.store.db, { workerId: 'other', now, ...lease });
    expect(next).toMatchObject({ calendarId, seq: claim!.seq + 1 });
    expect(await finishSyncRequest(t.store.db, { calendarId, seq: next!.seq, workerId: 'other' })).toBe('done');
  });

  test('a failed sync comes back after its back-off, and a dead worker\'s claim expires', async () => {
    const { calendarId } = await seedCalendar(t.store, 'fail');
    const now = t.store.now();
    const at = (ms: number) => new Date(now.getTime() + ms);
    await requestSync(t.store.db, { calendarId, reason: 'push', now });
    await claimSyncRequests(t.store.db, { workerId: 'w', now, ...lease });
    await releaseSyncRequest(t.store.db, { calendarId, workerId: 'w', retryAt: at(30_000) });
    expect(await claimSyncRequests(t.store.db, { workerId: 'w', now: at(29_000), ...lease })).toEqual([]);
    const [again] = await claimSyncRequests(t.store.db, { workerId: 'dies', now: at(30_000), ...lease });
    expect(again).toMatchObject({ calendarId, attempts: 2 });
    expect(await claimSyncRequests(t.store.db, { workerId: 'w', now: at(30_000 + 59_000), ...lease })).toEqual([]);
    const [taken] = await claimSyncRequests(t.store.db, { workerId: 'w', now: at(30_000 + 61_000), ...lease });
    expect(taken).toMatchObject({ calendarId, attempts: 3 });
    // The dead worker cannot finish what it no longer holds.
    expect(await finishSyncRequest(t.store.db, { calendarId, seq: taken!.seq, workerId: 'dies' })).toBe('requeued');
    expect(await finishSyncRequest(t.store.db, { calendarId, seq: taken!.seq, workerId: 'w' })).toBe('done');
  });
});
