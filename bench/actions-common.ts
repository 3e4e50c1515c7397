// The platform-actions benchmark for either platform (google-actions, graph-actions): how many
// actions a second the engine carries out against the emulator (events with the client invited,
// follow-up tasks, emails), and how many requests the sparse check of a follow-up list with 10
// open tasks makes in an hour of ticks, one a minute.
import { DateTime } from 'luxon';
import { ManualClock } from '../src/clock.js';
import { submitAction } from '../src/engine/outbox.js';
import { tick } from '../src/engine/worker.js';
import { EVENT_CREATE } from '../src/engine/writes.js';
import { TASK_OPEN } from '../src/engine/tasks.js';
import { MAIL_SEND } from '../src/engine/mail.js';
import { makePGliteTemplate, pgliteStoreFromTemplate } from '../src/store/provision.js';
import { googleWorld, graphWorld, type World, type WorldStores } from '../test/engine/world.js';
import { report } from './report.js';

const ACTIONS = Number(process.env['BENCH_ACTIONS'] ?? 300);
const OPEN_TASKS = 10;

async function drainActions(world: World): Promise<number> {
  let done = 0;
  for (;;) {
    const r = await tick(world.engines[0]!, 'bench', { upkeep: false });
    done += r.actions.done;
    if (r.actions.claimed === 0 && r.synced === 0) return done;
  }
}

export async function runActionsBench(bench: string, provider: 'google' | 'microsoft', taskPath: RegExp): Promise<void> {
  const clock = new ManualClock(DateTime.fromISO('2026-03-02T09:00:00', { zone: 'America/New_York' }));
  const template = await makePGliteTemplate();
  const stores: WorldStores = {
    open: (_backend, keyring, c) => pgliteStoreFromTemplate(template, keyring, c),
    another: () => Promise.reject(new Error('one engine in this bench')),
  };
  const opts = { stores, backend: 'pglite' as const, clock, therapists: 1 };
  const world = provider === 'google' ? await googleWorld(opts) : await graphWorld(opts);
  try {
    const me = await world.store.db
      .selectFrom('calendars as c')
      .innerJoin('connections as k', 'k.id', 'c.connection_id')
      .select(['c.id as calendarId', 'k.id as connectionId', 'k.therapist_id as therapistId'])
      .where('c.role', '=', 'practice')
      .executeTakeFirstOrThrow();
    // Whatever the first sync and push set-up cost is not part of the figure.
    await drainActions(world);

    // A mix as a practice makes it: mostly tasks and emails, some events with the client invited.
    const base = clock.now().plus({ days: 2 }).set({ hour: 18, minute: 0 });
    for (let i = 0; i < ACTIONS; i++) {
      const key = `bench:${i}`;
      if (i % 3 === 0) {
        const start = base.plus({ days: Math.floor(i / 3) % 60, minutes: 0 });
        await submitAction(world.store, me.therapistId, {
          kind: EVENT_CREATE,
          key,
          factKey: null,
          connectionId: me.connectionId,
          payload: { calendarId: me.calendarId, start: start.toISO()!, end: start.plus({ minutes: 50 }).toISO()!, timeZone: 'America/New_York', onlineMeeting: i % 2 === 0, notifyAttendees: true },
          secret: { summary: 'Session', attendees: [{ email: `client${i}@example.com` }] },
        });
      } else if (i % 3 === 1) {
        await submitAction(world.store, me.therapistId, { kind: TASK_OPEN, key, factKey: key, connectionId: me.connectionId, payload: { key, due: null }, secret: { title: `Follow up ${i}`, notes: 'Call back' } });
      } else {
        await submitAction(world.store, me.therapistId, {
          kind: MAIL_SEND,
          key,
          factKey: null,
          connectionId: me.connectionId,
          payload: {},
          secret: { to: [{ email: `client${i}@example.com` }], subject: 'Your appointment', text: 'See you on Tuesday.', html: '<p>See you on Tuesday.</p>', attachments: [{ filename: 'invite.ics', contentType: 'text/calendar; method=REQUEST', content: 'BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n' }] },
        });
      }
    }
    const started = performance.now();
    const done = await drainActions(world);
    const ms = performance.now() - started;
    report(bench, 'actions_per_s', done / (ms / 1000), 'actions/s', { actions: done, of: ACTIONS });
    if (done !== ACTIONS) throw new Error(`${bench}: ${done} of ${ACTIONS} actions were done`);

    // The sparse check: close all but 10 of our tasks in our record, then an hour of ticks.
    const open = await world.store.db.selectFrom('tasks').select('id').where('status', '=', 'open').orderBy('created_at').execute();
    const keep = new Set(open.slice(0, OPEN_TASKS).map((t) => t.id));
    for (const t of open) if (!keep.has(t.id)) await world.store.db.updateTable('tasks').set({ status: 'completed', closed_by: 'sessionkeeper' }).where('id', '=', t.id).execute();
    // Not counted: requests answered 401. The emulator's tokens expire on the bench's clock, MSAL's
    // cache on the real one; in production both agree and MSAL refreshes a token before it is refused.
    const taskCalls = () => world.emu.requests.filter((r) => taskPath.test(r.path) && r.status !== 401).length;
    const hour = async () => {
      const before = taskCalls();
      for (let minute = 0; minute < 60; minute++) {
        clock.advance({ minutes: 1 });
        await tick(world.engines[0]!, 'bench', { upkeep: false });
      }
      return taskCalls() - before;
    };
    // The first hour's looks also read back our own new tasks (on Graph, the delta's extra page);
    // the figure is the steady state that follows: 10 open tasks the therapist has not touched.
    const first = await hour();
    const steady = await hour();
    report(bench, 'task_reconcile_requests_per_hour', steady, 'requests', { openTasks: OPEN_TASKS, goal: 2, firstHour: first });
  } finally {
    await world.close();
  }
}
