// Outcomes and risk: marks for no-shows and cancellations, presumed attendance, series that end,
// dropout signals that clear when the client books again, and bad input that is reported and skipped.
import { describe, expect, test } from 'vitest';
import { classify } from '../../src/domain/classify.js';
import { client, ev, event, gone, jane, kinds, practice, run, session, therapist } from './builders.js';


describe('marks and presumed attendance', () => {
  test('"NS " in the title or a No-show category marks a no-show; removing the mark restores it', () => {
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [session('n1', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z'), session('n2', '2026-03-03T10:00:00-05:00', '2026-03-01T08:00:00Z')] },
        {
          at: '2026-03-03T18:00:00Z',
          items: [
            session('n1', '2026-03-02T10:00:00-05:00', '2026-03-03T17:00:00Z', { title: 'NS Session' }),
            session('n2', '2026-03-03T10:00:00-05:00', '2026-03-03T17:00:00Z', { categories: ['No-show'] }),
          ],
        },
        { at: '2026-03-04T18:00:00Z', items: [session('n2', '2026-03-03T10:00:00-05:00', '2026-03-04T17:00:00Z')] },
      ],
      '2026-03-05T00:00:00Z',
      { ...practice, presumeAttended: false },
    );
    expect(event(r, 'n1').transitions.map((t) => [t.kind, t.detail])).toEqual([
      ['scheduled', expect.anything()],
      ['no_show', { marked: "title starts with 'NS '" }],
    ]);
    expect(kinds(r, 'n2')).toEqual(['scheduled', 'no_show', 'restored']);
    expect(event(r, 'n2').state).toMatchObject({ status: 'scheduled', presumed: false });
  });

  test('without presumption, only marked sessions count as attended; with it, ended sessions are presumed and say so', () => {
    const rounds = [{ at: '2026-03-01T09:00:00Z', items: [session('p1', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z'), session('p2', '2026-03-03T10:00:00-05:00', '2026-03-01T08:00:00Z', { categories: ['Attended'] })] }];
    const marked = run(rounds, '2026-03-10T00:00:00Z', { ...practice, presumeAttended: false });
    expect(kinds(marked, 'p1')).toEqual(['scheduled']);
    expect(kinds(marked, 'p2')).toEqual(['scheduled', 'attended']);
    expect(marked.clients[0]!.sessionsKept).toBe(1);
    const presumed = run(rounds, '2026-03-10T00:00:00Z');
    expect(event(presumed, 'p1').transitions[1]).toMatchObject({ kind: 'attended', at: '2026-03-02T15:50:00.000Z', detail: { presumed: true } });
    expect(presumed.clients[0]!.sessionsKept).toBe(2);
  });

  test('a client-cancel marker is a client cancellation even though the event stays; un-cancelling restores', () => {
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [session('x', '2026-03-05T10:00:00-05:00', '2026-03-01T08:00:00Z')] },
        { at: '2026-03-04T20:00:00Z', items: [session('x', '2026-03-05T10:00:00-05:00', '2026-03-04T19:00:00Z', { title: 'CX Session' })] },
        { at: '2026-03-04T21:00:00Z', items: [session('x', '2026-03-05T10:00:00-05:00', '2026-03-04T20:30:00Z')] },
      ],
      '2026-03-04T22:00:00Z',
    );
    expect(event(r, 'x').transitions.map((t) => [t.kind, t.detail])).toEqual([
      ['scheduled', expect.anything()],
      ['cancelled', { by: 'client', late: true, noticeHours: 19, reason: "title starts with 'CX '" }],
      ['restored', {}],
    ]);
  });

  test('an event the client organised and then cancelled is a client cancellation', () => {
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [session('o', '2026-03-09T10:00:00-04:00', '2026-03-01T08:00:00Z', { organizerSelf: false, organizerEmail: 'jane@example.com', attendees: [{ ...therapist, organizer: false }, { ...jane, organizer: true }] })] },
        { at: '2026-03-02T09:00:00Z', items: [gone('o')] },
      ],
      '2026-03-03T00:00:00Z',
    );
    expect(event(r, 'o').transitions[1]!.detail).toMatchObject({ by: 'client', late: false, reason: 'the event was deleted by its organizer, the client' });
  });
});

describe('series', () => {
  const weekly = (d: string, series: string, updated: string, attendees = [therapist, jane]) =>
    ev({ id: `${series}_${d.replace(/-/g, '')}`, seriesId: series, originalStart: `${d}T18:00:00-04:00`, title: 'Jane - session', start: `${d}T18:00:00-04:00`, attendees, updated });
  const days = ['2026-04-06', '2026-04-13', '2026-04-20', '2026-04-27', '2026-05-04'];

  test('"this and following" cut short with nothing booked after: one series_ended, and a risk signal', () => {
    const r = run(
      [
        { at: '2026-04-01T09:00:00Z', items: days.map((d) => weekly(d, 's', '2026-04-01T08:00:00Z')) },
        { at: '2026-04-15T09:00:00Z', items: days.slice(2).map((d) => gone(`s_${d.replace(/-/g, '')}`, 'primary', { seriesId: 's' })) },
      ],
      '2026-04-16T00:00:00Z',
    );
    const all = r.events.flatMap((e) => e.transitions);
    expect(all.filter((t) => t.kind === 'cancelled')).toEqual([]);
    expect(all.filter((t) => t.kind === 'series_ended')).toEqual([
      expect.objectContaining({ appointment: 'primary/s_20260420', detail: { seriesId: 's', occurrences: 3, from: '2026-04-20T22:00:00.000Z' } }),
    ]);
    expect(r.clients[0]!.risks).toEqual([expect.objectContaining({ kind: 'series_ended', since: '2026-04-15T09:00:00.000Z' })]);
    expect(r.clients[0]).toMatchObject({ sessionsKept: 2, cancellations: 0, lateCancels: 0, nextBooked: null });
    const april = classify(practice, [{ at: '2026-04-01T09:00:00Z', items: days.map((d) => weekly(d, 's', '2026-04-01T08:00:00Z')) }, { at: '2026-04-15T09:00:00Z', items: days.slice(2).map((d) => gone(`s_${d.replace(/-/g, '')}`, 'primary', { seriesId: 's' })) }], { now: '2026-04-16T00:00:00Z', from: '2026-04-01T00:00:00Z', to: '2026-05-31T00:00:00Z' });
    expect(april.practice.sessions).toMatchObject({ attended: 2, lateCancels: 0, otherCancels: 0, therapistCancels: 3 });
  });

  test('a series moved to another weekday (old one cut, new one booked) is replaced, not ended', () => {
    const r = run(
      [
        { at: '2026-04-01T09:00:00Z', items: days.map((d) => weekly(d, 's', '2026-04-01T08:00:00Z')) },
        {
          at: '2026-04-15T09:00:00Z',
          items: [
            ...days.slice(2).map((d) => gone(`s_${d.replace(/-/g, '')}`, 'primary', { seriesId: 's' })),
            ...['2026-04-23', '2026-04-30'].map((d) => weekly(d, 't', '2026-04-15T08:00:00Z')),
          ],
        },
      ],
      '2026-04-16T00:00:00Z',
    );
    const all = r.events.flatMap((e) => e.transitions).map((t) => t.kind);
    expect(all.filter((k) => k.startsWith('series'))).toEqual(['series_replaced']);
    expect(r.clients[0]!.risks).toEqual([]);
  });
});

describe('risk', () => {
  test('not rebooked 7 days after session 1 is flagged, and clears when the client books again', () => {
    const first = { at: '2026-03-01T09:00:00Z', items: [session('s1', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z')] };
    const flagged = run([first], '2026-03-10T12:00:00Z');
    expect(flagged.clients[0]!.risks).toEqual([
      { kind: 'not_rebooked', afterSession: 1, ref: expect.stringContaining('s1'), since: '2026-03-09T15:50:00.000Z', reason: 'no session booked 7 days after session 1 on 2026-03-02' },
    ]);
    // Before it is true, the figures say when it will be (the engine reads the ledger again then).
    expect(run([first], '2026-03-05T12:00:00Z').clients[0]).toMatchObject({ risks: [], nextRiskAt: '2026-03-09T15:50:00.000Z' });
    const rebooked = run([first, { at: '2026-03-10T13:00:00Z', items: [session('s2', '2026-03-12T10:00:00-04:00', '2026-03-10T12:30:00Z')] }], '2026-03-10T14:00:00Z');
    expect(rebooked.clients[0]).toMatchObject({ risks: [], nextBooked: '2026-03-12T14:00:00.000Z' });
  });

  test("a regular client's gap beyond twice their usual interval, two cancellations in a row, a no-show", () => {
    const weekly = ['2026-01-05', '2026-01-12', '2026-01-19', '2026-01-26'].map((d, i) => session(`k${i}`, `${d}T10:00:00-05:00`, '2026-01-01T08:00:00Z'));
    const gap = run([{ at: '2026-01-02T09:00:00Z', items: weekly }], '2026-02-20T00:00:00Z');
    expect(gap.clients[0]).toMatchObject({ usualIntervalDays: 7, sessionsKept: 4 });
    expect(gap.clients[0]!.risks).toEqual([expect.objectContaining({ kind: 'gap_beyond_cadence', since: '2026-02-16T15:00:00.000Z', reason: 'no session for 24 days since 2026-01-26; usually every 7 days' })]);

    const twice = run(
      [
        { at: '2026-01-02T09:00:00Z', items: [...weekly, session('c1', '2026-02-02T10:00:00-05:00', '2026-01-02T08:00:00Z'), session('c2', '2026-02-09T10:00:00-05:00', '2026-01-02T08:00:00Z'), session('c3', '2026-02-16T10:00:00-05:00', '2026-01-02T08:00:00Z')] },
        { at: '2026-02-01T09:00:00Z', items: [gone('c1')] },
        { at: '2026-02-08T09:00:00Z', items: [gone('c2')] },
      ],
      '2026-02-08T10:00:00Z',
    );
    expect(twice.clients[0]!.risks.map((x) => x.kind)).toEqual(['two_cancellations_in_a_row']);

    const missed = run(
      [{ at: '2026-01-02T09:00:00Z', items: [...weekly, session('ns', '2026-02-02T10:00:00-05:00', '2026-01-02T08:00:00Z', { tags: { 'sk.outcome': 'no_show' } }), session('next', '2026-02-09T10:00:00-05:00', '2026-01-02T08:00:00Z')] }],
      '2026-02-03T00:00:00Z',
    );
    expect(missed.clients[0]!.risks).toEqual([{ kind: 'no_show', since: '2026-02-02T15:00:00.000Z', reason: 'did not come to the session of 2026-02-02' }]);
    expect(missed.clients[0]).toMatchObject({ noShows: 1, nextBooked: '2026-02-09T15:00:00.000Z' });
  });

  test('practice figures can be checked by hand', () => {
    const r = run(
      [
        {
          at: '2026-03-01T09:00:00Z',
          items: [
            session('a1', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z'),
            session('a2', '2026-03-09T10:00:00-04:00', '2026-03-01T08:00:00Z'),
            session('a3', '2026-03-16T10:00:00-04:00', '2026-03-01T08:00:00Z', { tags: { 'sk.outcome': 'no_show' } }),
            ev({ id: 'b1', title: 'Bo - session', start: '2026-03-03T10:00:00-05:00', updated: '2026-03-01T08:00:00Z' }),
            ev({ id: 'b2', title: 'Bo - session', start: '2026-03-10T10:00:00-04:00', updated: '2026-03-01T08:00:00Z' }),
          ],
        },
        { at: '2026-03-09T20:00:00Z', items: [gone('b2')] },
      ],
      '2026-03-20T00:00:00Z',
    );
    expect(r.practice.sessions).toEqual({ booked: 5, attended: 3, noShows: 1, lateCancels: 1, otherCancels: 0, therapistCancels: 0, upcoming: 0 });
    expect(r.practice.attendanceRate).toEqual({ value: 0.6, numerator: 3, denominator: 5 });
    expect(r.practice.noShowRate).toEqual({ value: 0.2, numerator: 1, denominator: 5 });
    expect(r.practice.lateCancelRate).toEqual({ value: 0.2, numerator: 1, denominator: 5 });
    expect(r.practice.returningAfterSession1).toEqual({ value: 0.5, numerator: 1, denominator: 2 });
    expect(r.practice.returningAfterSession2).toEqual({ value: 0, numerator: 0, denominator: 1 });
    expect(r.practice.meanSessionsPerClient).toEqual({ value: 1.5, numerator: 3, denominator: 2 });
  });
});

describe('bad input', () => {
  test('each bad item is reported by id and field, and the rest of the batch goes on', () => {
    const good = session('ok', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z');
    const noStart = { ...session('nostart', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z') };
    delete (noStart as Record<string, unknown>)['start'];
    const badZone = session('zone', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z', { zone: 'America/Gotham' });
    const backwards = session('back', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z', { end: '2026-03-02T09:00:00-05:00' });
    const absurd = session('absurd', '3026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z', { end: '3026-03-02T11:00:00-05:00' });
    const r = run([{ at: '2026-03-01T09:00:00Z', items: [noStart, good, badZone, backwards, absurd, 'not even an object'] }], '2026-03-01T10:00:00Z');
    expect(r.rejected.map((x) => [x.eventId, x.field, x.index])).toEqual([
      ['nostart', 'start', 0],
      ['zone', 'start.zone', 2],
      ['back', 'end', 3],
      ['absurd', 'start.at', 4],
      ['(no id)', '(item)', 5],
    ]);
    expect(r.rejected[2]!.reason).toBe('must not be before start');
    expect(r.rejected[1]!.reason).toBe('must be an IANA time zone (got "America/Gotham")');
    expect(r.counts).toMatchObject({ items: 6, rejected: 5, appointments: 1 });
    expect(kinds(r, 'ok')).toEqual(['scheduled']);
  });

  test('the same rounds twice, duplicates and stale replays change nothing', () => {
    const v1 = session('d', '2026-03-05T10:00:00-05:00', '2026-03-01T08:00:00Z');
    const v2 = session('d', '2026-03-06T10:00:00-05:00', '2026-03-02T08:00:00Z');
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [v1, v1] },
        { at: '2026-03-02T09:00:00Z', items: [v2] },
        { at: '2026-03-02T10:00:00Z', items: [v1, v2] },
        { at: '2026-03-02T11:00:00Z', items: [v1] },
      ],
      '2026-03-03T00:00:00Z',
    );
    expect(kinds(r, 'd')).toEqual(['scheduled', 'rescheduled']);
    expect(event(r, 'd').start).toBe('2026-03-06T15:00:00.000Z');
  });
});
