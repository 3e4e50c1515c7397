// Google calendar sync end to end: the real Google client libraries against the emulator, the real
// sync loop and store. Full and incremental sync, the 410 resync with its id diff, recurring
// series, moves, every fault, forged notifications, and a refresh token that dies.
import { DateTime } from 'luxon';
import { expect, test } from 'vitest';
import { NeedsReauth, RetryAfter } from '../connectors/errors.js';
import type { CalendarItem } from '../connectors/types.js';
import { createLedger, applyRound } from '../src/domain/lifecycle.js';
import { ledgerContext, practiceFileSchema } from '../src/domain/classify.js';
import { syncCalendar, type SyncOutcome } from '../src/engine/sync.js';
import { silentLogger } from '../src/log.js';
import { forEachBackend } from './helpers/db.js';
import { withGoogle, type GoogleWorld } from './helpers/google.js';

const TZ = 'America/New_York';

function timed(day: string, hh: number, minutes = 50): { start: Record<string, unknown>; end: Record<string, unknown> } {
  const start = DateTime.fromISO(`${day}T${String(hh).padStart(2, '0')}:00:00`, { zone: TZ });
  return {
    start: { dateTime: start.toISO({ suppressMilliseconds: true }), timeZone: TZ },
    end: { dateTime: start.plus({ minutes }).toISO({ suppressMilliseconds: true }), timeZone: TZ },
  };
}

async function snapshots(world: { store: import('../src/store/store.js').Store }, calendarId: string) {
  return world.store.db.selectFrom('event_snapshots').select(['event_id', 'status', 'ical_uid', 'series_id', 'version']).where('calendar_id', '=', calendarId).orderBy('event_id').execute();
}

async function sync(t: { store: import('../src/store/store.js').Store }, g: GoogleWorld, conn: { connectionId: string; therapistId: string }, calendarId: string, full = false): Promise<SyncOutcome> {
  const connector = await g.connectors.calendarConnector({ id: conn.connectionId, therapist_id: conn.therapistId, provider: 'google' });
  return syncCalendar(t.store, connector, calendarId, { full, log: silentLogger });
}

forEachBackend('Google sync', (t) => {
  const g = withGoogle(t);

  test('a 3,000-event calendar: full sync over 12 pages, then an incremental one with only the changes', async () => {
    const me = await g.connect({ sub: 'g-full', email: 'full@brightpath.example', calendars: [{ id: 'full@brightpath.example' }] });
    const cal = me.calendars['full@brightpath.example']!;
    const ids: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const day = DateTime.fromISO('2026-03-02').plus({ days: Math.floor(i / 8) }).toISODate()!;
      ids.push(g.emu.insertEvent('full@brightpath.example', { summary: `Session ${i}`, ...timed(day, 9 + (i % 8)) })['id'] as string);
    }
    const full = await sync(t, g, me, cal);
    expect(full).toMatchObject({ mode: 'full', pages: 12, cursorExpired: false, deletedMeanwhile: 0, rejected: [] });
    expect(full.items).toHaveLength(3000);
    expect(await snapshots(t, cal)).toHaveLength(3000);
    const row = await t.store.db.selectFrom('calendars').select(['cursor', 'last_full_sync_at']).where('id', '=', cal).executeTakeFirstOrThrow();
    expect(row.cursor).toBeTruthy();

    t.clock.advance({ minutes: 5 });
    g.emu.patchEvent('full@brightpath.example', ids[10]!, { summary: 'Intake' });
    g.emu.deleteEvent('full@brightpath.example', ids[20]!);
    const before = g.emu.requests.length;
    const inc = await sync(t, g, me, cal);
    expect(inc).toMatchObject({ mode: 'incremental', pages: 1 });
    expect(inc.items.map((i) => [i.eventId, i.kind])).toEqual(expect.arrayContaining([[ids[10], 'event'], [ids[20], 'tombstone']]));
    expect(inc.items).toHaveLength(2);
    expect(g.emu.requests.length - before).toBe(1);
    const stored = await snapshots(t, cal);
    expect(stored).toHaveLength(3000);
    expect(stored.find((s) => s.event_id === ids[20])?.status).toBe('deleted');
    // The stored copy of the event is sealed, and opens to the new title.
    const { listSnapshots } = await import('../src/store/snapshots.js');
    const opened = await listSnapshots(t.store.db, t.store.keyring, { therapistId: me.therapistId, calendarId: cal });
    expect((opened.find((s) => s.eventId === ids[10])?.payload as { title: string }).title).toBe('Intake');
  });

  test('a deletion during a 410 gap becomes a tombstone through the full resync', async () => {
    const me = await g.connect({ sub: 'g-410', email: 'gap@brightpath.example', calendars: [{ id: 'gap@brightpath.example' }] });
    const cal = me.calendars['gap@brightpath.example']!;
    const a = g.emu.insertEvent('gap@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) })['id'] as string;
    const b = g.emu.insertEvent('gap@brightpath.example', { summary: 'Session', ...timed('2026-03-11', 10) })['id'] as string;
    await sync(t, g, me, cal);
    g.emu.deleteEvent('gap@brightpath.example', a);
    g.emu.expireSyncTokens('gap@brightpath.example');
    const resync = await sync(t, g, me, cal);
    expect(resync).toMatchObject({ mode: 'full', cursorExpired: true, deletedMeanwhile: 1 });
    expect(resync.items.filter((i) => i.kind === 'tombstone').map((i) => i.eventId)).toEqual([a]);
    expect((await snapshots(t, cal)).map((s) => [s.event_id, s.status])).toEqual(
      [
        [a, 'deleted'],
        [b, 'confirmed'],
      ].sort((x, y) => x[0]!.localeCompare(y[0]!)),
    );
    // And the next sync is incremental again, from the new token.
    expect((await sync(t, g, me, cal)).mode).toBe('incremental');
  });

  test('a cancelled occurrence of a weekly series arrives as that instance\'s tombstone', async () => {
    const me = await g.connect({ sub: 'g-series', email: 'series@brightpath.example', calendars: [{ id: 'series@brightpath.example' }] });
    const cal = me.calendars['series@brightpath.example']!;
    const master = g.emu.insertEvent('series@brightpath.example', {
      summary: 'Jane - session',
      ...timed('2026-03-03', 18),
      recurrence: ['RRULE:FREQ=WEEKLY;COUNT=6'],
      attendees: [{ email: 'jane@example.com', responseStatus: 'accepted' }],
    });
    const full = await sync(t, g, me, cal);
    const instances = full.items.filter((i): i is Extract<CalendarItem, { kind: 'event' }> => i.kind === 'event');
    expect(instances).toHaveLength(6);
    expect(new Set(instances.map((i) => i.seriesId))).toEqual(new Set([master['id']]));
    // 18:00 local on both sides of the DST change (8 March 2026).
    expect(instances.map((i) => (i.start.kind === 'instant' ? DateTime.fromISO(i.start.at, { zone: TZ }).toFormat('HH:mm') : ''))).toEqual(Array(6).fill('18:00'));
    const third = instances[2]!;
    g.emu.deleteEvent('series@brightpath.example', third.eventId);
    const inc = await sync(t, g, me, cal);
    const tombstones = inc.items.filter((i) => i.kind === 'tombstone');
    expect(tombstones).toEqual([expect.objectContaining({ eventId: third.eventId, seriesId: master['id'] })]);
  });

  test('an event moved to another calendar: the domain sees a move, not a cancellation', async () => {
    const me = await g.connect({ sub: 'g-move', email: 'move@brightpath.example', calendars: [{ id: 'move@brightpath.example' }, { id: 'clients-move', role: 'practice', primary: false }] });
    const [from, to] = [me.calendars['move@brightpath.example']!, me.calendars['clients-move']!];
    const ev = g.emu.insertEvent('move@brightpath.example', { summary: 'Session', ...timed('2026-03-12', 10), attendees: [{ email: 'jane@example.com', responseStatus: 'accepted' }] });
    const first = [...(await sync(t, g, me, from)).items, ...(await sync(t, g, me, to)).items];
    g.emu.moveEvent('move@brightpath.example', ev['id'] as string, 'clients-move');
    const second = [...(await sync(t, g, me, from)).items, ...(await sync(t, g, me, to)).items];
    expect(second.map((i) => [i.calendarId, i.kind])).toEqual([
      ['move@brightpath.example', 'tombstone'],
      ['clients-move', 'event'],
    ]);
    const practice = practiceFileSchema.parse({ timeZone: TZ, domains: ['brightpath.example'], calendars: [{ id: 'clients-move', name: 'Clients', role: 'practice' }] });
    const ledger = createLedger();
    const ctx = ledgerContext(practice);
    applyRound(ledger, { at: '2026-03-01T10:00:00Z', items: first }, ctx);
    const moved = applyRound(ledger, { at: '2026-03-01T11:00:00Z', items: second }, ctx);
    expect(moved.map((x) => x.kind)).toEqual(['moved']);
  });

  for (const [name, fault] of [
    ['429 with Retry-After', { status: 429, retryAfter: 1 }],
    ['429 without Retry-After', { status: 429 }],
    ['403 rateLimitExceeded', { status: 403, reason: 'rateLimitExceeded' }],
    ['403 quotaExceeded', { status: 403, reason: 'quotaExceeded' }],
    ['403 userRateLimitExceeded with Retry-After', { status: 403, reason: 'userRateLimitExceeded', retryAfter: 2 }],
    ['500', { status: 500 }],
    ['503', { status: 503 }],
    ['a dropped connection', { drop: true }],
    ['a slow answer past the timeout', { delayMs: 4000 }],
  ] as const) {
    test(`${name} in the middle of a sync: retried, nothing lost, nothing stored twice`, async () => {
      const sub = `g-fault-${name.replace(/\W+/g, '-')}`;
      const calId = `${sub}@brightpath.example`;
      const me = await g.connect({ sub, email: calId, calendars: [{ id: calId }] });
      const cal = me.calendars[calId]!;
      for (let i = 0; i < 600; i++) g.emu.insertEvent(calId, { summary: `Session ${i}`, ...timed(DateTime.fromISO('2026-03-02').plus({ days: i % 60 }).toISODate()!, 8 + (i % 10)) });
      // The first page arrives; the second fails once.
      g.emu.faults.add({ match: { method: 'GET', path: /\/events$/ }, fault: { delayMs: 0 } });
      g.emu.faults.add({ match: { method: 'GET', path: /\/events$/ }, fault });
      const calendarCalls = () => g.emu.requests.filter((r) => r.path.includes('/calendar/v3/')).length;
      const before = calendarCalls();
      const outcome = await sync(t, g, me, cal);
      expect(outcome.items).toHaveLength(600);
      expect(outcome.pages).toBe(3);
      expect(calendarCalls() - before).toBe(4); // three pages and one retry
      const stored = await snapshots(t, cal);
      expect(stored).toHaveLength(600);
      expect(new Set(stored.map((s) => s.event_id)).size).toBe(600);
      expect(g.emu.faults.pending()).toBe(0);
    });
  }

  test('a 410 in the middle of a full listing starts the listing again: nothing lost', async () => {
    const me = await g.connect({ sub: 'g-410mid', email: 'mid410@brightpath.example', calendars: [{ id: 'mid410@brightpath.example' }] });
    const cal = me.calendars['mid410@brightpath.example']!;
    for (let i = 0; i < 600; i++) g.emu.insertEvent('mid410@brightpath.example', { summary: `Session ${i}`, ...timed(DateTime.fromISO('2026-03-02').plus({ days: i % 60 }).toISODate()!, 8 + (i % 10)) });
    g.emu.faults.add({ match: { method: 'GET', path: /\/events$/ }, fault: { delayMs: 0 } });
    g.emu.faults.add({ match: { method: 'GET', path: /\/events$/ }, fault: { status: 410 } });
    const out = await sync(t, g, me, cal);
    expect(out).toMatchObject({ mode: 'full', cursorExpired: true });
    expect(out.items).toHaveLength(600);
    expect(await snapshots(t, cal)).toHaveLength(600);
  });

  test('a grant that dies in the middle of a listing stores nothing and marks only that connection', async () => {
    const me = await g.connect({ sub: 'g-midgrant', email: 'midgrant@brightpath.example', calendars: [{ id: 'midgrant@brightpath.example' }] });
    const cal = me.calendars['midgrant@brightpath.example']!;
    for (let i = 0; i < 300; i++) g.emu.insertEvent('midgrant@brightpath.example', { summary: `Session ${i}`, ...timed(DateTime.fromISO('2026-03-02').plus({ days: i % 30 }).toISODate()!, 8 + (i % 10)) });
    g.emu.faults.add({ match: { method: 'GET', path: /\/events$/ }, fault: { delayMs: 0 } });
    g.emu.faults.add({ match: { method: 'GET', path: /\/events$/ }, fault: { status: 401 } });
    g.emu.faults.add({ fault: { invalidGrant: true } });
    const err = await sync(t, g, me, cal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsReauth);
    expect(await snapshots(t, cal)).toHaveLength(0);
    expect((await t.store.db.selectFrom('calendars').select('cursor').where('id', '=', cal).executeTakeFirstOrThrow()).cursor).toBeNull();
    expect((await t.store.db.selectFrom('connections').select('status').where('id', '=', me.connectionId).executeTakeFirstOrThrow()).status).toBe('needs_reauth');
  });

  test('a long Retry-After goes back to the caller, and the next attempt resumes from the stored cursor', async () => {
    const me = await g.connect({ sub: 'g-retry', email: 'retry@brightpath.example', calendars: [{ id: 'retry@brightpath.example' }] });
    const cal = me.calendars['retry@brightpath.example']!;
    g.emu.insertEvent('retry@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) });
    await sync(t, g, me, cal);
    const cursor = (await t.store.db.selectFrom('calendars').select('cursor').where('id', '=', cal).executeTakeFirstOrThrow()).cursor;
    g.emu.insertEvent('retry@brightpath.example', { summary: 'Session', ...timed('2026-03-11', 10) });
    g.emu.faults.add({ match: { method: 'GET', path: /\/events$/ }, fault: { status: 429, retryAfter: 120 } });
    const err = await sync(t, g, me, cal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryAfter);
    expect((err as RetryAfter).seconds).toBe(120);
    expect((await t.store.db.selectFrom('calendars').select('cursor').where('id', '=', cal).executeTakeFirstOrThrow()).cursor).toBe(cursor);
    const again = await sync(t, g, me, cal);
    expect(again).toMatchObject({ mode: 'incremental' });
    expect(again.items).toHaveLength(1);
  });

  test('an expired refresh token leaves that connection needs_reauth and the others syncing', async () => {
    const a = await g.connect({ sub: 'g-dead', email: 'dead@brightpath.example', calendars: [{ id: 'dead@brightpath.example' }] });
    const b = await g.connect({ sub: 'g-alive', email: 'alive@brightpath.example', calendars: [{ id: 'alive@brightpath.example' }] });
    g.emu.insertEvent('alive@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) });
    g.emu.revokeAll('g-dead');
    g.emu.expireAccessTokens('g-dead');
    const err = await sync(t, g, a, a.calendars['dead@brightpath.example']!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsReauth);
    const status = await t.store.db.selectFrom('connections').select(['id', 'status', 'status_reason']).where('id', 'in', [a.connectionId, b.connectionId]).execute();
    expect(status.find((s) => s.id === a.connectionId)).toMatchObject({ status: 'needs_reauth', status_reason: expect.stringContaining('invalid_grant') });
    expect(status.find((s) => s.id === b.connectionId)?.status).toBe('ok');
    expect((await sync(t, g, b, b.calendars['alive@brightpath.example']!)).items).toHaveLength(1);
  });

  test('an access token refused before its time is refreshed and the call goes on', async () => {
    const me = await g.connect({ sub: 'g-401', email: 'refresh@brightpath.example', calendars: [{ id: 'refresh@brightpath.example' }] });
    g.emu.insertEvent('refresh@brightpath.example', { summary: 'Session', ...timed('2026-03-10', 10) });
    g.emu.expireAccessTokens('g-401');
    expect((await sync(t, g, me, me.calendars['refresh@brightpath.example']!)).items).toHaveLength(1);
    const creds = await t.store.db.selectFrom('connections').select(['status']).where('id', '=', me.connectionId).executeTakeFirstOrThrow();
    expect(creds.status).toBe('ok');
  });
});
