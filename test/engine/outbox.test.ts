// The outbox runner with plug-ins of its own: retries with backoff and Retry-After, a lost grant parks
// the connection's actions (and they resume on reconnect), permanent errors stop with their reason, a
// crash inside a call with no way to check becomes `unknown`, a bad payload fails clearly. And POST /tick.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { http as registerFunction } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect, test } from 'vitest';
import { z } from 'zod';
import { Forbidden, NeedsReauth, RetryAfter } from '../../connectors/errors.js';
import type { App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { actionBackoffMs, OutcomeUnknown, recordDueWork, runDueActions, submitAction, type ActionPlugin } from '../../src/engine/outbox.js';
import type { ConnectorFactory } from '../../src/engine/platforms.js';
import { createHandler } from '../../src/http.js';
import { silentLogger } from '../../src/log.js';
import { claimDueActions, enqueueAction, resumeConnectionActions, startAction } from '../../src/store/actions.js';
import { createConnection } from '../../src/store/connections.js';
import { createPractice, createTherapist } from '../../src/store/practices.js';
import { forEachBackend } from '../helpers/db.js';

const noConnectors: ConnectorFactory = {
  calendarConnector: () => Promise.reject(new Error('no platform in this test')),
  taskConnector: () => Promise.reject(new Error('no platform in this test')),
  mailConnector: () => Promise.reject(new Error('no platform in this test')),
};

forEachBackend('outbox', (t) => {
  let script: (Error | 'ok')[] = [];
  const calls: string[] = [];
  const flaky: ActionPlugin<{ n: number }> = {
    kind: 'test_flaky',
    payload: z.strictObject({ n: z.number() }),
    onCrash: 'recover',
    async run(p, r) {
      calls.push(`${p.n}:${r.recovering ? 'recovering' : 'fresh'}`);
      const next = script.shift() ?? 'ok';
      if (next !== 'ok') throw next;
      return { status: 'done', externalRef: `ref-${p.n}` };
    },
  };
  const email: ActionPlugin<{ n: number }> = { kind: 'test_email', payload: z.strictObject({ n: z.number() }), onCrash: 'unknown', run: async () => ({ status: 'done' }) };
  const deps = () => ({ store: t.store, connectors: noConnectors, log: silentLogger, plugins: [flaky as ActionPlugin, email as ActionPlugin], random: () => 0.5 });
  const setup = async (name: string) => {
    const now = t.store.now();
    const practice = await createPractice(t.store.db, { name, now });
    const therapist = await createTherapist(t.store.db, { practiceId: practice.id, identity: { provider: 'google', subject: `sub-${name}` }, now });
    const connection = await createConnection(t.store.db, t.store.keyring, { therapistId: therapist.id, provider: 'google', accountSubject: `sub-${name}`, now });
    const add = (kind: string, key: string, payload: Record<string, unknown>) => enqueueAction(t.store.db, { therapistId: therapist.id, connectionId: connection.id, kind, idempotencyKey: key, payload, notBefore: now, now });
    const status = async (key: string) => t.store.db.selectFrom('actions').selectAll().where('idempotency_key', '=', key).executeTakeFirstOrThrow();
    return { therapistId: therapist.id, connectionId: connection.id, add, status };
  };

  test('backoff doubles from 10 s with jitter, up to 6 h', () => {
    expect(actionBackoffMs(1, () => 1)).toBe(10_000);
    expect(actionBackoffMs(1, () => 0)).toBe(5_000);
    expect(actionBackoffMs(4, () => 1)).toBe(80_000);
    expect(actionBackoffMs(30, () => 1)).toBe(6 * 3_600_000);
  });

  test('transient failures retry later (Retry-After honoured); a permanent one stops with its reason', async () => {
    const s = await setup('retry');
    await s.add('test_flaky', 'flaky-1', { n: 1 });
    script = [new RetryAfter(120, 'Google answered 429'), new RetryAfter(null, 'Google answered 503'), 'ok'];
    expect((await runDueActions(deps(), 'w')).retried).toBe(1);
    const first = await s.status('flaky-1');
    expect(first.status).toBe('pending');
    expect(first.next_attempt_at.getTime() - t.store.now().getTime()).toBe(120_000);
    expect(first.last_error).toContain('429');
    // Not due yet: nothing runs.
    expect((await runDueActions(deps(), 'w')).claimed).toBe(0);
    t.clock.advance({ seconds: 120 });
    expect((await runDueActions(deps(), 'w')).retried).toBe(1);
    expect((await s.status('flaky-1')).next_attempt_at.getTime() - t.store.now().getTime()).toBe(actionBackoffMs(2, () => 0.5));
    t.clock.advance({ minutes: 1 });
    expect((await runDueActions(deps(), 'w')).done).toBe(1);
    expect(await s.status('flaky-1')).toMatchObject({ status: 'done', attempts: 3, external_ref: 'ref-1' });

    await s.add('test_flaky', 'flaky-2', { n: 2 });
    script = [new Forbidden('Google refused the call (403 insufficientPermissions): a scope or permission is missing')];
    expect((await runDueActions(deps(), 'w')).failed).toBe(1);
    expect(await s.status('flaky-2')).toMatchObject({ status: 'failed', last_error: expect.stringContaining('a scope or permission is missing') });
  });

  test('a lost grant parks the connection\'s actions and marks it; reconnecting resumes them', async () => {
    const s = await setup('reauth');
    const other = await setup('reauth-other');
    await s.add('test_flaky', 'park-1', { n: 1 });
    await s.add('test_flaky', 'park-2', { n: 2 });
    await other.add('test_flaky', 'other-1', { n: 3 });
    // Whichever of the connection's actions goes first meets the dead grant (the other therapist's works).
    const grantGone: ActionPlugin<{ n: number }> = {
      ...flaky,
      async run(p) {
        if (p.n !== 3) throw new NeedsReauth('Google refused the refresh token (invalid_grant)');
        return { status: 'done' };
      },
    };
    const report = await runDueActions({ ...deps(), plugins: [grantGone as ActionPlugin] }, 'w');
    expect(report.parked).toBeGreaterThanOrEqual(1);
    expect((await s.status('park-1')).status).toBe('parked');
    expect((await s.status('park-2')).status).toBe('parked');
    // Only that connection: the other therapist's action ran.
    expect((await other.status('other-1')).status).toBe('done');
    const conn = await t.store.db.selectFrom('connections').select(['status', 'status_reason']).where('id', '=', s.connectionId).executeTakeFirstOrThrow();
    expect(conn).toMatchObject({ status: 'needs_reauth', status_reason: expect.stringContaining('invalid_grant') });
    await t.store.db.updateTable('connections').set({ status: 'ok' }).where('id', '=', s.connectionId).execute();
    expect(await resumeConnectionActions(t.store.db, { therapistId: s.therapistId, connectionId: s.connectionId, now: t.store.now() })).toBe(2);
    script = [];
    expect((await runDueActions(deps(), 'w')).done).toBe(2);
  });

  test('a crash inside a call: a checkable action is run again as recovering; an email becomes unknown', async () => {
    const s = await setup('crash');
    await s.add('test_flaky', 'crash-1', { n: 7 });
    await s.add('test_email', 'crash-mail', { n: 8 });
    await s.add('test_flaky', 'crash-unstarted', { n: 9 });
    // A worker claims all three, starts the first two calls and dies.
    const claimed = await claimDueActions(t.store.db, { workerId: 'dead', now: t.store.now(), leaseMs: 60_000, limit: 10 });
    expect(claimed).toHaveLength(3);
    for (const c of claimed.filter((x) => x.idempotency_key !== 'crash-unstarted')) expect(await startAction(t.store.db, { id: c.id, workerId: 'dead', now: t.store.now(), leaseMs: 60_000 })).toBe(true);
    expect((await runDueActions(deps(), 'w')).claimed).toBe(0);
    t.clock.advance({ minutes: 2 });
    calls.length = 0;
    script = [];
    const report = await runDueActions(deps(), 'w');
    // The one never started is a plain retry, not a recovery.
    expect(report).toMatchObject({ done: 2, unknown: 1 });
    expect(calls.sort()).toEqual(['7:recovering', '9:fresh']);
    expect(await s.status('crash-mail')).toMatchObject({ status: 'unknown', last_error: expect.stringContaining('may or may not have been done') });
  });

  test('a call in doubt stays in doubt when the next holder dies before reaching it: the email is never sent again', async () => {
    const s = await setup('doubt');
    await s.add('test_email', 'doubt-mail', { n: 1 });
    // Worker A starts the send and dies inside it.
    const [a] = await claimDueActions(t.store.db, { workerId: 'a', now: t.store.now(), leaseMs: 60_000, limit: 10 });
    expect(await startAction(t.store.db, { id: a!.id, workerId: 'a', now: t.store.now(), leaseMs: 60_000 })).toBe(true);
    t.clock.advance({ minutes: 2 });
    // Worker B claims it in a batch and dies before it gets to it: not an attempt, and no news.
    const [b] = await claimDueActions(t.store.db, { workerId: 'b', now: t.store.now(), leaseMs: 60_000, limit: 10 });
    expect(b).toMatchObject({ idempotency_key: 'doubt-mail', claimed_from: 'running' });
    t.clock.advance({ minutes: 2 });
    expect(await runDueActions(deps(), 'c')).toMatchObject({ claimed: 1, unknown: 1, done: 0 });
    expect(await s.status('doubt-mail')).toMatchObject({ status: 'unknown', attempts: 1 });
  });

  test('work due with time: asked at each tick from state, recorded once per key, carried out once', async () => {
    const s = await setup('due');
    let asked = 0;
    const ran: number[] = [];
    const daily: ActionPlugin<{ day: string }> = {
      kind: 'test_daily',
      payload: z.strictObject({ day: z.string() }),
      onCrash: 'recover',
      async due(store, now) {
        asked++;
        // Due from state: one per day once 09:00 UTC has passed, nothing scheduled ahead.
        if (now.getUTCHours() < 9) return [];
        const day = now.toISOString().slice(0, 10);
        return [{ therapistId: s.therapistId, kind: 'test_daily', key: `test_daily:${s.therapistId}:${day}`, factKey: null, connectionId: s.connectionId, payload: { day } }];
      },
      async run() {
        ran.push(asked);
        return { status: 'done' };
      },
    };
    const d = { ...deps(), plugins: [daily as ActionPlugin] };
    t.clock.set('2026-03-10T08:00:00Z');
    expect(await recordDueWork(d)).toBe(0);
    t.clock.set('2026-03-10T09:30:00Z');
    expect(await recordDueWork(d)).toBe(1);
    expect(await recordDueWork(d)).toBe(0);
    expect((await runDueActions(d, 'w')).done).toBe(1);
    expect(await recordDueWork(d)).toBe(0);
    expect((await runDueActions(d, 'w')).claimed).toBe(0);
    expect(ran).toHaveLength(1);
  });

  test('an action the process keeps dying in waits with a backoff; the rest goes on; it is never given up for that', async () => {
    const s = await setup('crashloop');
    await s.add('test_flaky', 'loop-1', { n: 11 });
    const die = async () => {
      const [c] = await claimDueActions(t.store.db, { workerId: 'doomed', now: t.store.now(), leaseMs: 60_000, limit: 1, kinds: ['test_flaky'] });
      expect(await startAction(t.store.db, { id: c!.id, workerId: 'doomed', now: t.store.now(), leaseMs: 60_000 })).toBe(true);
      t.clock.advance({ minutes: 2 });
    };
    // Three deaths inside it: each later claim is a recovery that runs it again at once...
    await die();
    await die();
    await die();
    // ...the fourth claim puts it off instead of running it.
    calls.length = 0;
    const report = await runDueActions(deps(), 'w');
    expect(report).toMatchObject({ deferred: 1, done: 0 });
    expect(calls).toEqual([]);
    const waiting = await s.status('loop-1');
    expect(waiting).toMatchObject({ status: 'pending', last_error: expect.stringContaining('the process stopped inside this action') });
    expect(waiting.next_attempt_at.getTime() - t.store.now().getTime()).toBe(actionBackoffMs(1, () => 0.5));
    // When the wait is over it is run, as a recovery.
    t.clock.set(waiting.next_attempt_at.toISOString());
    script = [];
    expect((await runDueActions(deps(), 'w')).done).toBe(1);
    expect(calls).toEqual(['11:recovering']);
  });

  test('personal details are sealed at rest and reach the plug-in merged into its payload', async () => {
    const s = await setup('sealed');
    const seen: unknown[] = [];
    const mailer: ActionPlugin<{ n: number; to: string; subject: string }> = {
      kind: 'test_sealed',
      payload: z.strictObject({ n: z.number(), to: z.email(), subject: z.string() }),
      onCrash: 'unknown',
      async run(p) {
        seen.push(p);
        return { status: 'done' };
      },
    };
    const planned = { kind: 'test_sealed', key: 'sealed-1', factKey: null, connectionId: s.connectionId, payload: { n: 1 }, secret: { to: 'jane.doe@client.example', subject: 'Jane, your Tuesday session' } };
    expect((await submitAction(t.store, s.therapistId, planned)).created).toBe(true);
    expect((await submitAction(t.store, s.therapistId, planned)).created).toBe(false);
    const row = await s.status('sealed-1');
    const stored = JSON.stringify(row);
    expect(stored).not.toContain('jane.doe');
    expect(stored).not.toContain('Tuesday');
    expect(row.payload).toEqual({ n: 1 });
    expect(await runDueActions({ ...deps(), plugins: [mailer as ActionPlugin] }, 'w')).toMatchObject({ done: 1 });
    expect(seen).toEqual([{ n: 1, to: 'jane.doe@client.example', subject: 'Jane, your Tuesday session' }]);
  });

  test('a call that may or may not have taken effect (OutcomeUnknown) is never repeated', async () => {
    const s = await setup('unsure');
    let runs = 0;
    const unsure: ActionPlugin<{ n: number }> = {
      kind: 'test_unsure',
      payload: z.strictObject({ n: z.number() }),
      onCrash: 'unknown',
      async run() {
        runs++;
        throw new OutcomeUnknown('Gmail answered 503 to the send');
      },
    };
    await s.add('test_unsure', 'unsure-1', { n: 1 });
    expect(await runDueActions({ ...deps(), plugins: [unsure as ActionPlugin] }, 'w')).toMatchObject({ unknown: 1, retried: 0 });
    t.clock.advance({ hours: 7 });
    expect((await runDueActions({ ...deps(), plugins: [unsure as ActionPlugin] }, 'w')).claimed).toBe(0);
    expect(runs).toBe(1);
    expect(await s.status('unsure-1')).toMatchObject({ status: 'unknown', last_error: expect.stringContaining('503') });
  });

  test('a stored payload that is not valid fails with what is wrong', async () => {
    const s = await setup('payload');
    await s.add('test_flaky', 'bad-1', { n: 'seven' });
    expect((await runDueActions(deps(), 'w')).failed).toBe(1);
    expect((await s.status('bad-1')).last_error).toMatch(/not a valid test_flaky: n: .*number/);
  });

  test('POST /tick: closed without a token, 401 with a wrong one, the report with the right one', async () => {
    const make = async (env: Record<string, string>) => {
      const app: App = { config: loadConfig(env), clock: t.clock, log: silentLogger, store: t.store, opened: undefined as never, close: async () => undefined };
      const name = `sk-tick-${Object.keys(env).length}`;
      registerFunction(name, createHandler(app));
      const server: http.Server = getTestServer(name);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
    };
    const closed = await make({});
    expect((await fetch(`${closed.url}/tick`, { method: 'POST' })).status).toBe(404);
    await closed.close();
    const open = await make({ SESSIONKEEPER_TICK_TOKEN: 'a-long-enough-secret-token' });
    expect((await fetch(`${open.url}/tick`, { method: 'POST', headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${open.url}/tick`, { method: 'GET' })).status).toBe(405);
    const ok = await fetch(`${open.url}/tick`, { method: 'POST', headers: { authorization: 'Bearer a-long-enough-secret-token' } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ synced: 0, presumed: 0, dueRecorded: 0, actions: { claimed: expect.any(Number) } });
    await open.close();
  });
});
