// The outbox: recorded once per idempotency key, claimed by one worker at a time, settled only by
// the worker that holds it; on PostgreSQL, workers of two instances never claim the same action.
import { describe, expect, test } from 'vitest';
import { claimDueActions, completeAction, enqueueAction, failAction, markActionUnknown, parkConnectionActions, resumeConnectionActions, retryAction, startAction } from '../../src/store/actions.js';
import type { Store } from '../../src/store/store.js';
import { forEachBackend, testBackends, withTestDb } from '../helpers/db.js';
import { seedTherapist as therapist } from './fixtures.js';

forEachBackend('actions', (t) => {
  test('an action is recorded once per idempotency key', async () => {
    const { therapistId } = await therapist(t.store, 'idem');
    const now = t.store.now();
    const first = await enqueueAction(t.store.db, { therapistId, kind: 'tag', idempotencyKey: 'tag:e1:v1', payload: { eventId: 'e1' }, notBefore: now, now });
    const again = await enqueueAction(t.store.db, { therapistId, kind: 'tag', idempotencyKey: 'tag:e1:v1', payload: { eventId: 'OTHER' }, notBefore: now, now });
    expect(first.created).toBe(true);
    expect(again).toEqual({ id: first.id, created: false });
    const rows = await t.store.db.selectFrom('actions').select(['payload']).where('idempotency_key', '=', 'tag:e1:v1').execute();
    expect(rows).toEqual([{ payload: { eventId: 'e1' } }]);
  });

  test('only due actions are claimed, each by one worker, and settled only by its holder', async () => {
    const { therapistId } = await therapist(t.store, 'due');
    const now = t.store.now();
    const later = new Date(now.getTime() + 3_600_000);
    await enqueueAction(t.store.db, { therapistId, kind: 'k1', idempotencyKey: 'due:now', notBefore: now, now });
    await enqueueAction(t.store.db, { therapistId, kind: 'k1', idempotencyKey: 'due:later', notBefore: later, now });

    const a = await claimDueActions(t.store.db, { workerId: 'A', now, leaseMs: 60_000, limit: 10, kinds: ['k1'] });
    expect(a.map((x) => x.idempotency_key)).toEqual(['due:now']);
    // A claim is not an attempt: the start of the call is (startAction).
    expect(a[0]).toMatchObject({ status: 'running', attempts: 0, claimed_by: 'A', claimed_from: 'pending', prior_start: null });
    expect(await startAction(t.store.db, { id: a[0]!.id, workerId: 'A', now, leaseMs: 60_000 })).toBe(true);
    expect(await t.store.db.selectFrom('actions').select('attempts').where('id', '=', a[0]!.id).executeTakeFirstOrThrow()).toEqual({ attempts: 1 });
    expect(await claimDueActions(t.store.db, { workerId: 'B', now, leaseMs: 60_000, limit: 10, kinds: ['k1'] })).toEqual([]);

    expect(await completeAction(t.store.db, { id: a[0]!.id, workerId: 'B', now })).toBe(false);
    expect(await completeAction(t.store.db, { id: a[0]!.id, workerId: 'A', now, externalRef: 'evt-1', outcome: { ok: true } })).toBe(true);
    const done = await t.store.db.selectFrom('actions').selectAll().where('id', '=', a[0]!.id).executeTakeFirstOrThrow();
    expect(done).toMatchObject({ status: 'done', external_ref: 'evt-1', outcome: { ok: true } });

    const b = await claimDueActions(t.store.db, { workerId: 'B', now: later, leaseMs: 60_000, limit: 10, kinds: ['k1'] });
    expect(b.map((x) => x.idempotency_key)).toEqual(['due:later']);
  });

  test('a worker that dies loses its lease; the next claim says the action was running', async () => {
    const { therapistId } = await therapist(t.store, 'lease');
    const now = t.store.now();
    await enqueueAction(t.store.db, { therapistId, kind: 'k2', idempotencyKey: 'lease:1', notBefore: now, now });
    const [first] = await claimDueActions(t.store.db, { workerId: 'dead', now, leaseMs: 30_000, limit: 1, kinds: ['k2'] });
    expect(await startAction(t.store.db, { id: first!.id, workerId: 'dead', now, leaseMs: 30_000 })).toBe(true);
    expect(await claimDueActions(t.store.db, { workerId: 'B', now: new Date(now.getTime() + 29_000), leaseMs: 30_000, limit: 1, kinds: ['k2'] })).toEqual([]);
    const [again] = await claimDueActions(t.store.db, { workerId: 'B', now: new Date(now.getTime() + 31_000), leaseMs: 30_000, limit: 1, kinds: ['k2'] });
    // The dead worker's call is in doubt: the claim says when it started.
    expect(again).toMatchObject({ id: first!.id, claimed_from: 'running', attempts: 1, claimed_by: 'B', prior_start: now });
    // The dead worker, back to life, can no longer settle it.
    expect(await markActionUnknown(t.store.db, { id: first!.id, workerId: 'dead', now, reason: 'x' })).toBe(false);
    expect(await markActionUnknown(t.store.db, { id: first!.id, workerId: 'B', now, reason: 'crashed inside send' })).toBe(true);
    const row = await t.store.db.selectFrom('actions').select(['status', 'last_error']).where('id', '=', first!.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'unknown', last_error: 'crashed inside send' });
  });

  test('retry puts an action back for later; a permanent failure stops it', async () => {
    const { therapistId } = await therapist(t.store, 'retry');
    const now = t.store.now();
    await enqueueAction(t.store.db, { therapistId, kind: 'k3', idempotencyKey: 'retry:1', notBefore: now, now });
    const [c1] = await claimDueActions(t.store.db, { workerId: 'A', now, leaseMs: 60_000, limit: 1, kinds: ['k3'] });
    await startAction(t.store.db, { id: c1!.id, workerId: 'A', now, leaseMs: 60_000 });
    const retryAt = new Date(now.getTime() + 120_000);
    expect(await retryAction(t.store.db, { id: c1!.id, workerId: 'A', now, retryAt, error: '503' })).toBe(true);
    expect(await claimDueActions(t.store.db, { workerId: 'A', now: new Date(now.getTime() + 60_000), leaseMs: 60_000, limit: 1, kinds: ['k3'] })).toEqual([]);
    const [c2] = await claimDueActions(t.store.db, { workerId: 'A', now: retryAt, leaseMs: 60_000, limit: 1, kinds: ['k3'] });
    // One attempt so far, answered (503): nothing in doubt.
    expect(c2).toMatchObject({ attempts: 1, last_error: '503', prior_start: null });
    expect(await failAction(t.store.db, { id: c2!.id, workerId: 'A', now: retryAt, error: '400 invalid attendee' })).toBe(true);
    expect(await claimDueActions(t.store.db, { workerId: 'A', now: new Date(retryAt.getTime() + 1e9), leaseMs: 60_000, limit: 1, kinds: ['k3'] })).toEqual([]);
  });

  test("a connection that needs consent parks only its own actions, and they resume after", async () => {
    const one = await therapist(t.store, 'park-1');
    const two = await therapist(t.store, 'park-2');
    const now = t.store.now();
    for (const [who, key] of [[one, 'park:a'], [one, 'park:b'], [two, 'park:c']] as const) {
      await enqueueAction(t.store.db, { therapistId: who.therapistId, connectionId: who.connectionId, kind: 'k4', idempotencyKey: key, notBefore: now, now });
    }
    expect(await parkConnectionActions(t.store.db, { ...one, now, reason: 'needs_reauth' })).toBe(2);
    const claimed = await claimDueActions(t.store.db, { workerId: 'A', now, leaseMs: 60_000, limit: 10, kinds: ['k4'] });
    expect(claimed.map((c) => c.idempotency_key)).toEqual(['park:c']);
    expect(await resumeConnectionActions(t.store.db, { ...one, now })).toBe(2);
    const after = await claimDueActions(t.store.db, { workerId: 'A', now, leaseMs: 60_000, limit: 10, kinds: ['k4'] });
    expect(after.map((c) => c.idempotency_key).sort()).toEqual(['park:a', 'park:b']);
  });
});

if (testBackends().includes('postgres')) {
  describe('actions shared by two instances [postgres]', () => {
    const t = withTestDb({ backend: 'postgres' });

    test('workers of two instances claiming at once never claim the same action', async () => {
      const { therapistId } = await therapist(t.store, 'race');
      const now = t.store.now();
      const total = 400;
      await t.store.db
        .insertInto('actions')
        .values(
          Array.from({ length: total }, (_, i) => ({
            therapist_id: therapistId,
            kind: 'race',
            idempotency_key: `race:${i}`,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
          })),
        )
        .execute();
      const other = await t.openAnother();
      const claimedBy = new Map<string, string[]>();
      const worker = async (store: Store, id: string) => {
        for (;;) {
          const batch = await claimDueActions(store.db, { workerId: id, now, leaseMs: 600_000, limit: 7, kinds: ['race'] });
          if (batch.length === 0) return;
          for (const a of batch) claimedBy.set(a.id, [...(claimedBy.get(a.id) ?? []), id]);
        }
      };
      await Promise.all([worker(t.store, 'a1'), worker(t.store, 'a2'), worker(other, 'b1'), worker(other, 'b2')]);
      expect(claimedBy.size).toBe(total);
      const doubles = [...claimedBy.values()].filter((ids) => ids.length > 1);
      expect(doubles).toEqual([]);
      // The work really was shared: both instances got some.
      const perWorker = new Map<string, number>();
      for (const [id] of [...claimedBy.values()]) perWorker.set(id!, (perWorker.get(id!) ?? 0) + 1);
      expect((perWorker.get('a1') ?? 0) + (perWorker.get('a2') ?? 0)).toBeGreaterThan(0);
      expect((perWorker.get('b1') ?? 0) + (perWorker.get('b2') ?? 0)).toBeGreaterThan(0);
    });
  });
}
