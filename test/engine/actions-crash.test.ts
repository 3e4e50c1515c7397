// Platform actions when the process dies: the engine runs in its own process (engine-child.ts, the
// built code) and is killed with SIGKILL right after a platform call took effect and before its
// answer came back (and so before the action's record), or right before the call. After a restart
// each event and task exists once (found again by our id or marker), and the email that may have
// gone out is `unknown`, sent once, never again.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { GOOGLE_SCOPES } from '../../connectors/google/oauth.js';
import { MICROSOFT_SCOPES } from '../../connectors/microsoft/auth.js';
import { openApp } from '../../src/app.js';
import { ManualClock } from '../../src/clock.js';
import { completeGoogleConnect, completeMicrosoftConnect } from '../../src/engine/connect.js';
import { MAIL_SEND } from '../../src/engine/mail.js';
import { submitAction, type PlannedAction } from '../../src/engine/outbox.js';
import { platformConnectors, type PlatformOptions } from '../../src/engine/platforms.js';
import { TASK_OPEN } from '../../src/engine/tasks.js';
import { EVENT_CREATE } from '../../src/engine/writes.js';
import { silentLogger } from '../../src/log.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/server.js';
import { graphRedirect, msalNetworkClient, startGraphEmulator, type GraphEmulator } from '../emulators/microsoft/server.js';
import { freshPgDatabase, testBackends } from '../helpers/db.js';
import { googleEnv, REDIRECT } from '../helpers/google.js';
import { MS_REDIRECT, TENANT } from '../helpers/microsoft.js';
import { freePort } from '../helpers/net.js';
import { childEnv, childProduct, sharedClock } from './child.js';

const FROM = '2026-03-02T09:00:00-05:00';
const LEASE_MS = 5 * 60_000;
const TOKEN = crypto.randomBytes(24).toString('base64url');
const CLIENT = { email: 'jo.client@example.com', name: 'Jo Client' };

type Hook = (info: { method: string; path: string; phase: 'before' | 'after' }) => 'drop' | void | Promise<'drop' | void>;

interface Platform {
  emu: { setRequestHook(h: Hook | null): void; settled(): Promise<void>; close(): Promise<void> };
  env: Record<string, string>;
  connect(env: Record<string, string>, clock: ManualClock): Promise<{ therapistId: string; connectionId: string; calendarId: string }>;
  paths: { eventInsert: RegExp; taskInsert: RegExp; send: RegExp };
  /** Events that the client was invited to (each one an event made at the platform). */
  invitations(): number;
  taskTitles(): string[];
  sent(): string[];
  /** The video link of one of our events, as the client sees it in the invite. */
  meetingUrl(eventId: string): string | null;
}

async function google(clock: ManualClock): Promise<Platform> {
  const emu: GoogleEmulator = await startGoogleEmulator({ clock });
  const calendar = 'dr0@practice.example';
  const eventInsert = /^\/calendar\/v3\/calendars\/[^/]+\/events$/;
  return {
    emu,
    env: googleEnv(emu),
    async connect(env) {
      const app = await openApp({ env, clock, log: silentLogger, command: 'test setup' });
      try {
        emu.addAccount({ sub: 'sub-0', email: calendar });
        emu.addCalendar('sub-0', { id: calendar, summary: 'Practice', timeZone: 'America/New_York', primary: true });
        const c = await completeGoogleConnect(app.store, app.config, platformConnectors(app.config, app.store), emu.authorize('sub-0', [...GOOGLE_SCOPES], REDIRECT));
        return { therapistId: c.therapistId, connectionId: c.connectionId, calendarId: c.calendars[0]!.id };
      } finally {
        await app.close();
      }
    },
    paths: { eventInsert, taskInsert: /^\/tasks\/v1\/lists\/[^/]+\/tasks$/, send: /^\/gmail\/v1\/users\/[^/]+\/messages\/send$/ },
    // Each insert that took effect made an event (sendUpdates=all: the client is mailed by Google).
    invitations: () => emu.requests.filter((r) => r.method === 'POST' && eventInsert.test(r.path.split('?')[0]!) && ((r.status >= 200 && r.status < 300) || r.dropped === 'after')).length,
    taskTitles: () => emu.taskLists('sub-0').flatMap((l) => emu.tasks('sub-0', l['id'] as string)).filter((t) => !t['deleted']).map((t) => t['title'] as string),
    sent: () => emu.sentMessages().map((m) => m.subject ?? ''),
    meetingUrl: (eventId) => (emu.getEvent(calendar, eventId)?.['hangoutLink'] as string | undefined) ?? null,
  };
}

async function graph(clock: ManualClock): Promise<Platform> {
  const emu: GraphEmulator = await startGraphEmulator({ clock });
  const oid = '00000000-1111-2222-3333-444444444444';
  return {
    emu,
    env: { MICROSOFT_CLIENT_ID: emu.clientId, MICROSOFT_CLIENT_SECRET: emu.clientSecret, MICROSOFT_TENANT: TENANT, MICROSOFT_REDIRECT_URI: MS_REDIRECT, SK_TEST_GRAPH_EMULATOR_URL: emu.url },
    async connect(env) {
      const app = await openApp({ env, clock, log: silentLogger, command: 'test setup' });
      try {
        emu.addUser({ oid, tid: TENANT, upn: 'dr0@practice.example', displayName: 'Dr 0', timeZone: 'Eastern Standard Time' });
        const platform: PlatformOptions = { microsoft: { networkClient: msalNetworkClient(emu) as never, transport: graphRedirect(emu), maxRetries: 0 } };
        const c = await completeMicrosoftConnect(app.store, app.config, platformConnectors(app.config, app.store, platform), emu.authorize(oid, [...MICROSOFT_SCOPES], MS_REDIRECT), { allowNewTherapist: true, platform });
        const cal = await app.store.db.selectFrom('calendars').select('id').where('connection_id', '=', c.connectionId).where('name', '=', 'Calendar').executeTakeFirstOrThrow();
        return { therapistId: c.therapistId, connectionId: c.connectionId, calendarId: cal.id };
      } finally {
        await app.close();
      }
    },
    paths: {
      eventInsert: /^\/v1\.0\/(me|users\/[^/]+)\/(calendars\/[^/]+\/)?events$/,
      taskInsert: /^\/v1\.0\/(me|users\/[^/]+)\/todo\/lists\/[^/]+\/tasks$/,
      send: /^\/v1\.0\/(me|users\/[^/]+)\/sendMail$/,
    },
    invitations: () => emu.attendeeUpdates('invitation').length,
    taskTitles: () => emu.todo.lists(oid).flatMap((l) => emu.todo.tasks(oid, l['id'] as string)).map((t) => t['title'] as string),
    sent: () => emu.sentMail(oid).map((m) => m.subject),
    meetingUrl: (eventId) => (emu.getEvent(oid, eventId)?.['onlineMeeting'] as { joinUrl?: string } | null | undefined)?.joinUrl ?? null,
  };
}

for (const [provider, make] of [['google', google], ['microsoft', graph]] as const) {
  for (const backend of testBackends()) {
    describe(`platform actions killed with SIGKILL on ${provider} [${backend}]`, () => {
      const cleanups: (() => Promise<void>)[] = [];
      afterAll(async () => {
        for (const c of cleanups.reverse()) await c();
      });

      test('after a restart: one event, one Meet/Teams link, one task each; the email that may have gone is unknown and sent once', { timeout: 180_000 }, async () => {
        const clock = new ManualClock(FROM);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-actions-crash-'));
        const shared = sharedClock(clock, dir);
        const p = await make(clock);
        cleanups.push(() => p.emu.close());
        const port = await freePort();
        const env = childEnv(process.env['SK_DEBUG_CHILD'] ? { ...p.env, SESSIONKEEPER_LOG_LEVEL: 'debug' } : p.env, { port, clockFile: shared.file, token: TOKEN, dir, ...(backend === 'postgres' ? { databaseUrl: await freshPgDatabase() } : {}) });
        const me = await p.connect(env, clock);

        // The actions, recorded before the engine runs (the store is the engine's, one process at a time on PGlite).
        const setup = await openApp({ env, clock, log: silentLogger, command: 'test setup' });
        const start = clock.now().plus({ days: 2 }).set({ hour: 18, minute: 0 });
        const event = (key: string, days: number): PlannedAction => ({
          kind: EVENT_CREATE,
          key,
          factKey: null,
          connectionId: me.connectionId,
          payload: { calendarId: me.calendarId, start: start.plus({ days }).toISO()!, end: start.plus({ days, minutes: 50 }).toISO()!, timeZone: 'America/New_York', onlineMeeting: true, notifyAttendees: true },
          secret: { summary: `Appointment ${key}`, attendees: [CLIENT] },
        });
        const task = (key: string): PlannedAction => ({ kind: TASK_OPEN, key: `task.open:${key}`, factKey: key, connectionId: me.connectionId, payload: { key }, secret: { title: `Follow up ${key}`, notes: 'Offer an evening.' } });
        const planned = [
          event('event-after', 0),
          task('task-after'),
          { kind: MAIL_SEND, key: 'mail-after', factKey: null, connectionId: me.connectionId, payload: {}, secret: { to: [CLIENT], subject: 'Reminder mail-after', text: 'See you.', html: '<p>See you.</p>' } },
          event('event-before', 1),
          task('task-before'),
        ];
        for (const a of planned) await submitAction(setup.store, me.therapistId, a);
        await setup.close();

        // Kill points: each of these calls, once, after it took effect (its answer never comes) or before.
        const plans = [
          { path: p.paths.eventInsert, phase: 'after' },
          { path: p.paths.taskInsert, phase: 'after' },
          { path: p.paths.send, phase: 'after' },
          { path: p.paths.eventInsert, phase: 'before' },
          { path: p.paths.taskInsert, phase: 'before' },
        ] as const;
        const fired = new Set<number>();
        const child = childProduct({ script: 'dist/test/engine/engine-child.js', env, port, token: TOKEN });
        cleanups.push(() => child.kill());
        let down = false;
        p.emu.setRequestHook(async ({ method, path: reqPath, phase }) => {
          if (down || method !== 'POST') return;
          const i = plans.findIndex((k, n) => !fired.has(n) && k.phase === phase && k.path.test(reqPath.split('?')[0]!));
          if (i < 0) return;
          // One kill per action: the next plan for the same call waits for the restart.
          fired.add(i);
          down = true;
          await child.kill();
          return 'drop';
        });

        await child.start();
        for (let rounds = 0; ; rounds++) {
          if (rounds > 200) throw new Error(`the actions never settled: ${child.stderr()}`);
          if (down) {
            // The lease of what the dead process held runs out; then a new process.
            shared.set(clock.now().plus({ milliseconds: LEASE_MS + 1000 }).toISO()!);
            down = false;
            await child.start();
          }
          await p.emu.settled();
          const res = await child.tick();
          if (!res || res.status !== 200) {
            if (!down) throw new Error(`tick failed without a kill: ${res ? res.status : 'no answer'} ${child.stderr()}`);
            continue;
          }
          if (res.report.actions.claimed > 0 || res.report.synced > 0) continue;
          if (res.report.nextActionAt === null) break;
          shared.set(new Date(Math.max(Date.parse(res.report.nextActionAt), clock.now().toMillis())).toISOString());
        }
        p.emu.setRequestHook(null);
        await child.stop();
        expect(fired.size).toBe(plans.length);

        const after = await openApp({ env, clock, log: silentLogger, command: 'test check' });
        cleanups.push(() => after.close());
        const rows = await after.store.db.selectFrom('actions').select(['idempotency_key', 'status', 'external_ref']).execute();
        const status = Object.fromEntries(rows.map((a) => [a.idempotency_key, a.status]));
        for (const key of ['event-after', 'event-before']) expect(p.meetingUrl(rows.find((r) => r.idempotency_key === key)!.external_ref!)).toMatch(/^https:\/\//);
        expect(status).toMatchObject({ 'event-after': 'done', 'event-before': 'done', 'task.open:task-after': 'done', 'task.open:task-before': 'done', 'mail-after': 'unknown' });
        // Two events, each the client was invited to once; one task each; the mail sent once.
        expect(p.invitations()).toBe(2);
        expect(p.taskTitles().filter((t) => t === 'Follow up task-after')).toHaveLength(1);
        expect(p.taskTitles().filter((t) => t === 'Follow up task-before')).toHaveLength(1);
        expect(p.sent().filter((s) => s === 'Reminder mail-after')).toHaveLength(1);
        const tasks = await after.store.db.selectFrom('tasks').select(['key', 'status']).orderBy('key').execute();
        expect(tasks).toEqual([
          { key: 'task-after', status: 'open' },
          { key: 'task-before', status: 'open' },
        ]);
      });
    });
  }
}
