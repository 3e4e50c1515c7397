// The engine end to end on Google: synced changes become stored facts (transitions, appointments,
// clients, risk signals) in the sync's transaction, and the tag action runs once per session.
import { DateTime } from 'luxon';
import { expect, test } from 'vitest';
import { tick } from '../../src/engine/worker.js';
import { silentLogger } from '../../src/log.js';
import { requestSync } from '../../src/store/sync-queue.js';
import { forEachBackend } from '../helpers/db.js';
import { withGoogle } from '../helpers/google.js';

const TZ = 'America/New_York';
const slot = (day: string, hh: number) => {
  const start = DateTime.fromISO(`${day}T${String(hh).padStart(2, '0')}:00:00`, { zone: TZ });
  return { start: { dateTime: start.toISO(), timeZone: TZ }, end: { dateTime: start.plus({ minutes: 50 }).toISO(), timeZone: TZ } };
};

forEachBackend('engine facts (Google)', (t) => {
  const g = withGoogle(t);
  const deps = () => ({ store: t.store, connectors: g.connectors, log: silentLogger, clock: t.clock });

  test('sessions become facts and tagged events; a cancellation is one more fact; a second tick adds nothing', async () => {
    t.clock.set('2026-03-02T12:00:00Z');
    const me = await g.connect({ sub: 'e-1', email: 'dr.lee@brightpath.example', calendars: [{ id: 'dr.lee@brightpath.example', role: 'practice' }] });
    const calId = 'dr.lee@brightpath.example';
    const ids: string[] = [];
    for (const day of ['2026-03-03', '2026-03-10', '2026-03-17']) {
      const e = g.emu.insertEvent(calId, { summary: 'Session', ...slot(day, 18), attendees: [{ email: 'jane@client.example', displayName: 'Jane Doe', responseStatus: 'accepted' }, { email: calId, self: true, organizer: true, responseStatus: 'accepted' }], organizer: { email: calId, self: true } });
      ids.push(e['id'] as string);
    }
    const first = await tick(deps(), 'w1');
    expect(first.synced).toBe(1);
    expect(first.actions.done).toBe(3);
    const transitions = await t.store.db.selectFrom('appointment_transitions').select(['kind', 'key', 'detail']).where('therapist_id', '=', me.therapistId).orderBy('id').execute();
    expect(transitions.map((r) => r.kind)).toEqual(['scheduled', 'scheduled', 'scheduled']);
    // What is stored in the clear names no one: the recognition's reasons stay in the sealed ledger.
    expect(JSON.stringify(transitions)).not.toMatch(/jane/i);
    const appts = await t.store.db.selectFrom('appointments').select(['id', 'event_id', 'state', 'client_id']).where('therapist_id', '=', me.therapistId).execute();
    expect(appts).toHaveLength(3);
    expect(new Set(appts.map((a) => a.client_id)).size).toBe(1);
    // Each event at Google carries our tag with its appointment's id, written once.
    const connector = await g.connectors.calendarConnector({ id: me.connectionId, therapist_id: me.therapistId, provider: 'google' });
    for (const a of appts) expect(await connector.getTag(calId, a.event_id, 'sk.ours')).toBe(a.id);
    expect(g.emu.requests.filter((r) => r.method === 'PATCH')).toHaveLength(3);

    // The therapist deletes the second session 34 hours before it (18:00 EDT); the first one, past, is presumed attended.
    t.clock.set('2026-03-09T12:00:00Z');
    g.emu.deleteEvent(calId, ids[1]!);
    await requestSync(t.store.db, { calendarId: me.calendars[calId]!, reason: 'test', now: t.store.now() });
    const second = await tick(deps(), 'w1');
    expect(second.synced).toBe(1);
    const kinds = await t.store.db.selectFrom('appointment_transitions').select(['kind', 'detail']).where('therapist_id', '=', me.therapistId).orderBy('id').execute();
    expect(kinds.map((k) => k.kind)).toEqual(['scheduled', 'scheduled', 'scheduled', 'cancelled', 'attended']);
    expect(kinds[3]!.detail).toMatchObject({ by: 'unknown', late: false, noticeHours: 34 });

    const third = await tick(deps(), 'w1');
    expect(third.synced + third.presumed + third.actions.claimed).toBe(0);
    const actions = await t.store.db.selectFrom('actions').select(['kind', 'status']).where('therapist_id', '=', me.therapistId).execute();
    // Each session tagged once; the cancellation (by someone unknown: perhaps the client, by phone) opened a follow-up.
    expect(actions.map((a) => `${a.kind}:${a.status}`).sort()).toEqual(['followup.open:done', 'tag_session:done', 'tag_session:done', 'tag_session:done']);
  });

  test('a weekly series deleted: one series-ended fact, and every future session of it shows as cancelled', async () => {
    t.clock.set('2026-04-01T12:00:00Z');
    const me = await g.connect({ sub: 'e-series', email: 'dr.kim@brightpath.example', calendars: [{ id: 'dr.kim@brightpath.example', role: 'practice' }] });
    const calId = 'dr.kim@brightpath.example';
    const master = g.emu.insertEvent(calId, { summary: 'Sam R - session', ...slot('2026-04-07', 17), recurrence: ['RRULE:FREQ=WEEKLY;COUNT=4'] });
    await tick(deps(), 'w1');
    const rows = () => t.store.db.selectFrom('appointments').select(['state', 'start_at']).where('therapist_id', '=', me.therapistId).orderBy('start_at').execute();
    expect((await rows()).map((r) => r.state)).toEqual(['scheduled', 'scheduled', 'scheduled', 'scheduled']);
    // The first session happens; then the therapist deletes the whole series.
    t.clock.set('2026-04-10T12:00:00Z');
    g.emu.deleteEvent(calId, master['id'] as string);
    await requestSync(t.store.db, { calendarId: me.calendars[calId]!, reason: 'test', now: t.store.now() });
    await tick(deps(), 'w1');
    expect((await rows()).map((r) => r.state)).toEqual(['attended', 'cancelled', 'cancelled', 'cancelled']);
    const kinds = await t.store.db.selectFrom('appointment_transitions').select('kind').where('therapist_id', '=', me.therapistId).orderBy('id').execute();
    expect(kinds.map((k) => k.kind).filter((k) => k !== 'scheduled')).toEqual(['attended', 'series_ended']);
    // The client has nothing booked after their series ended: a risk signal says so.
    const signals = await t.store.db.selectFrom('client_signals').select(['kind', 'cleared_at']).where('therapist_id', '=', me.therapistId).execute();
    expect(signals).toContainEqual({ kind: 'series_ended', cleared_at: null });
  });
});
