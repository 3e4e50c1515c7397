// Cases a review of the domain found wrong at first; each now does what the issue asks.
import { describe, expect, test } from 'vitest';
import { InvalidInput } from '../../src/errors.js';
import { client, ev, event, gone, jane, kinds, practice, run, session, therapist } from './builders.js';


describe('bad input that is not obviously bad', () => {
  test('impossible dates (30 February) are rejected by id and field, not rolled over or crashed on', () => {
    const allDay = ev({ id: 'feb30', title: 'Session', start: '2026-02-30', updated: '2026-02-01T00:00:00Z' });
    const instant = session('feb30i', '2026-02-30T10:00:00Z', '2026-02-01T00:00:00Z', { end: '2026-02-30T10:50:00Z' });
    const floating = { ...session('feb31f', '2026-02-01T10:00:00Z', '2026-02-01T00:00:00Z'), start: { kind: 'floating', local: '2026-02-31T10:00' }, end: { kind: 'floating', local: '2026-02-31T10:50' } };
    const r = run([{ at: '2026-02-01T09:00:00Z', items: [allDay, instant, floating] }], '2026-02-02T00:00:00Z');
    expect(r.rejected.map((x) => [x.eventId, x.field])).toEqual([
      ['feb30', 'start.date'],
      ['feb30i', 'start.at'],
      ['feb31f', 'start.local'],
    ]);
  });

  test('a calendar with an unknown zone in the practice file is refused by its path', () => {
    try {
      run([], '2026-02-02T00:00:00Z', { ...practice, calendars: [{ id: 'c', role: 'practice', timeZone: 'Mars/Olympus' }] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidInput);
      expect((err as InvalidInput).issues[0]!.path).toBe('calendars[0].timeZone');
    }
  });
});

describe('replays and order', () => {
  test('an old copy of a moved event replayed later changes nothing', () => {
    const old = session('m1', '2026-03-05T10:00:00-05:00', '2026-03-01T08:00:00Z', { iCalUID: 'uid-m1' });
    const rounds = [
      { at: '2026-03-01T09:00:00Z', items: [old] },
      { at: '2026-03-02T09:00:00Z', items: [gone('m1'), session('m1-new', '2026-03-05T10:00:00-05:00', '2026-03-02T08:00:00Z', { calendar: 'clients', iCalUID: 'uid-m1' })] },
      { at: '2026-03-03T09:00:00Z', items: [old] },
      { at: '2026-03-03T10:00:00Z', items: [gone('m1')] },
    ];
    const r = run(rounds, '2026-03-04T00:00:00Z');
    expect(r.events.filter((e) => e.decision.appointment)).toHaveLength(1);
    expect(r.clients[0]).toMatchObject({ cancellations: 0, nextBooked: '2026-03-05T15:00:00.000Z' });
  });

  test('the whole input replayed as it was (deleted, then restored) gives the same transitions once', () => {
    const v1 = session('r', '2026-03-09T10:00:00-04:00', '2026-03-01T08:00:00Z');
    const v2 = session('r', '2026-03-09T10:00:00-04:00', '2026-03-03T08:00:00Z');
    const rounds = [
      { at: '2026-03-01T09:00:00Z', items: [v1] },
      { at: '2026-03-02T09:00:00Z', items: [gone('r')] },
      { at: '2026-03-03T09:00:00Z', items: [v2] },
    ];
    const once = run(rounds, '2026-03-04T00:00:00Z');
    // A replay carries its rounds' own times: a deletion seen before the copy we have is old news.
    const twice = run([...rounds, ...rounds], '2026-03-04T00:00:00Z');
    expect(kinds(once, 'r')).toEqual(['scheduled', 'cancelled', 'restored']);
    expect(kinds(twice, 'r')).toEqual(['scheduled', 'cancelled', 'restored']);
    expect(event(twice, 'r').state?.status).toBe('scheduled');
  });

  test('a known client makes an event a session whatever the order of the round', () => {
    const s = session('s', '2026-03-03T10:00:00-05:00', '2026-03-02T08:00:00Z');
    const catchUp = session('c', '2026-03-04T10:00:00-05:00', '2026-03-02T08:00:00Z', { title: 'Catch-up' });
    for (const items of [[s, catchUp], [catchUp, s]]) {
      const r = run([{ at: '2026-03-02T09:00:00Z', items }], '2026-03-02T10:00:00Z');
      expect(event(r, 'c').decision.appointment).toBe(true);
    }
  });
});

describe('cancellations, declines and presumption', () => {
  test('a cancellation in the same round as the session end is not preceded by a presumed attendance', () => {
    const r = run(
      [
        { at: '2026-03-02T09:00:00Z', items: [session('p', '2026-03-02T10:00:00-05:00', '2026-03-02T08:00:00Z')] },
        { at: '2026-03-02T18:00:00Z', items: [session('p', '2026-03-02T10:00:00-05:00', '2026-03-02T17:00:00Z', { title: 'NS Session' })] },
      ],
      '2026-03-03T00:00:00Z',
    );
    expect(kinds(r, 'p')).toEqual(['scheduled', 'no_show']);
  });

  test('deleting a past session is tidying up: never a late cancellation', () => {
    const rounds = [
      { at: '2026-03-01T09:00:00Z', items: [session('t', '2026-03-05T10:00:00-05:00', '2026-03-01T08:00:00Z')] },
      { at: '2026-03-10T09:00:00Z', items: [gone('t')] },
    ];
    const noPresume = run(rounds, '2026-03-11T00:00:00Z', { ...practice, presumeAttended: false });
    expect(event(noPresume, 't').transitions[1]!.detail).toMatchObject({ late: false, afterEnd: true });
    expect(noPresume.practice.sessions).toMatchObject({ lateCancels: 0, otherCancels: 1 });
    const presumed = run(rounds, '2026-03-11T00:00:00Z');
    expect(kinds(presumed, 't')).toEqual(['scheduled', 'attended']);
  });

  test('declining an invitation never accepted is the client\'s cancellation, not a late one', () => {
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [session('d', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z', { attendees: [therapist, client('jane@example.com', 'none')] })] },
        { at: '2026-03-01T20:00:00Z', items: [session('d', '2026-03-02T10:00:00-05:00', '2026-03-01T19:00:00Z', { attendees: [therapist, client('jane@example.com', 'declined')] })] },
      ],
      '2026-03-01T21:00:00Z',
    );
    expect(event(r, 'd').transitions[1]).toMatchObject({ kind: 'declined', detail: { by: 'client', late: false } });
  });

  test('the therapist declining a client-organised session is the therapist\'s cancellation', () => {
    const r = run(
      [{ at: '2026-03-01T09:00:00Z', items: [session('o', '2026-03-03T10:00:00-05:00', '2026-03-01T08:00:00Z', { organizerSelf: false, organizerEmail: 'jane@example.com', attendees: [{ ...therapist, organizer: false, response: 'declined' }, { ...jane, organizer: true }] })] }],
      '2026-03-05T00:00:00Z',
    );
    expect(event(r, 'o').state).toMatchObject({ status: 'cancelled', cancel: { by: 'therapist' } });
  });

  test('a later mark says who cancelled; the timing stays', () => {
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [session('w', '2026-03-05T10:00:00-05:00', '2026-03-01T08:00:00Z')] },
        { at: '2026-03-04T09:00:00Z', items: [session('w', '2026-03-05T10:00:00-05:00', '2026-03-04T08:00:00Z', { title: 'Cancelled: Session' })] },
        { at: '2026-03-04T12:00:00Z', items: [session('w', '2026-03-05T10:00:00-05:00', '2026-03-04T11:00:00Z', { title: 'CX Session' })] },
      ],
      '2026-03-04T13:00:00Z',
    );
    expect(event(r, 'w').state?.cancel).toMatchObject({ by: 'client', seenAt: '2026-03-04T09:00:00.000Z', noticeHours: 30, late: false });
  });

  test('declined, then moved to a new time and accepted: restored at the new time', () => {
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [session('mv', '2026-03-05T10:00:00-05:00', '2026-03-01T08:00:00Z')] },
        { at: '2026-03-02T09:00:00Z', items: [session('mv', '2026-03-05T10:00:00-05:00', '2026-03-02T08:00:00Z', { attendees: [therapist, client('jane@example.com', 'declined')] })] },
        { at: '2026-03-03T09:00:00Z', items: [session('mv', '2026-03-06T10:00:00-05:00', '2026-03-03T08:00:00Z')] },
      ],
      '2026-03-04T00:00:00Z',
    );
    expect(event(r, 'mv').transitions.map((t) => [t.kind, t.detail])).toEqual([
      ['scheduled', expect.anything()],
      ['declined', expect.anything()],
      ['restored', {}],
      ['rescheduled', { from: '2026-03-05T15:00:00.000Z', to: '2026-03-06T15:00:00.000Z' }],
    ]);
  });
});

describe('series and risk', () => {
  const days = ['2026-04-06', '2026-04-13', '2026-04-20', '2026-04-27'];
  const weekly = (d: string, updated: string) =>
    ev({ id: `s_${d.replace(/-/g, '')}`, seriesId: 's', originalStart: `${d}T18:00:00-04:00`, title: 'Jane - session', start: `${d}T18:00:00-04:00`, attendees: [therapist, jane], updated });

  test('deleting the series itself ends its future sessions', () => {
    const r = run(
      [
        { at: '2026-04-01T09:00:00Z', items: days.map((d) => weekly(d, '2026-04-01T08:00:00Z')) },
        { at: '2026-04-15T09:00:00Z', items: [gone('s')] },
      ],
      '2026-04-16T00:00:00Z',
    );
    const all = r.events.flatMap((e) => e.transitions.map((t) => t.kind));
    expect(all.filter((k) => k.startsWith('series') || k === 'cancelled')).toEqual(['series_ended']);
    expect(r.clients[0]!.risks.map((x) => x.kind)).toContain('series_ended');
  });

  test('"not rebooked" became true when the booking after session 1 fell through, if that was later', () => {
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [session('a', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z'), session('b', '2026-03-30T10:00:00-04:00', '2026-03-01T08:00:00Z')] },
        { at: '2026-03-20T09:00:00Z', items: [gone('b')] },
      ],
      '2026-03-25T00:00:00Z',
    );
    expect(r.clients[0]!.risks).toEqual([expect.objectContaining({ kind: 'not_rebooked', afterSession: 1, since: '2026-03-20T09:00:00.000Z' })]);
  });

  test('a couple and one partner alone are two clients unless the therapist links them', () => {
    const sam = client('sam@example.com', 'accepted', 'Sam');
    const rounds = [
      {
        at: '2026-03-01T09:00:00Z',
        items: [session('c1', '2026-03-02T10:00:00-05:00', '2026-03-01T08:00:00Z', { attendees: [therapist, jane, sam], minutes: 80 }), session('c2', '2026-03-09T10:00:00-04:00', '2026-03-01T08:00:00Z')],
      },
    ];
    expect(run(rounds, '2026-03-10T00:00:00Z').clients).toHaveLength(2);
    const linked = run(rounds, '2026-03-10T00:00:00Z', { ...practice, clientLinks: [['jane@example.com & sam@example.com', 'jane@example.com']] });
    expect(linked.clients.map((c) => [c.client, c.sessionsKept])).toEqual([['email:jane@example.com+sam@example.com', 2]]);
  });

  test('a type is named by whole words only', () => {
    const r = run([{ at: '2026-03-01T09:00:00Z', items: [ev({ id: 'x', title: 'Jane Intakes - session', start: '2026-03-02T10:00:00-05:00', updated: '2026-03-01T08:00:00Z' })] }], '2026-03-01T10:00:00Z');
    expect(event(r, 'x').type).toBe('individual');
  });
});
