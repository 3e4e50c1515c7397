// Table tests from real calendars: what the domain must decide, and what it must not.
import { describe, expect, test } from 'vitest';
import { classify, type ClassifyReport } from '../../src/domain/classify.js';
import { client, ev, gone, practice, therapist } from './builders.js';

type RoundIn = { at: string; items: Record<string, unknown>[] };

function run(rounds: RoundIn[], now: string, file: Record<string, unknown> = practice): ClassifyReport {
  return classify(file, rounds, { now });
}
const event = (r: ClassifyReport, id: string) => {
  const e = r.events.find((x) => x.eventId === id);
  if (!e) throw new Error(`no event ${id}`);
  return e;
};
const kinds = (r: ClassifyReport, id: string) => event(r, id).transitions.map((t) => t.kind);
const jane = client('jane@example.com', 'accepted', 'Jane Doe');

describe('recognising appointments', () => {
  test('each rule gives its reason; the therapist\'s tag wins both ways', () => {
    const at = '2026-03-02T09:00:00Z';
    const updated = '2026-03-02T08:00:00Z';
    const r = run(
      [
        {
          at,
          items: [
            ev({ id: 'cal', calendar: 'clients', title: 'Jane', start: '2026-03-03T10:00:00-05:00', updated }),
            ev({ id: 'intake', title: 'Intake', start: '2026-03-03T11:00:00-05:00', minutes: 60, updated }),
            ev({ id: 'sup', calendar: 'clients', title: 'Supervision with Dr K', start: '2026-03-03T12:00:00-05:00', updated }),
            ev({ id: 'lunch-tag', title: 'Lunch', start: '2026-03-03T13:00:00-05:00', tags: { 'sk.session': 'yes' }, updated }),
            ev({ id: 'session-tag', title: 'Session prep', start: '2026-03-03T14:00:00-05:00', tags: { 'sk.session': 'no' }, updated }),
            ev({ id: 'family', calendar: 'family', title: 'Couples session', start: '2026-03-03T15:00:00-05:00', updated }),
            ev({ id: 'invited', title: 'Jane Doe', start: '2026-03-03T16:00:00-05:00', attendees: [therapist, jane], updated }),
            ev({ id: 'colleague', title: 'Case review', start: '2026-03-03T17:00:00-05:00', attendees: [therapist, client('sam@brightpath.example')], updated }),
            ev({ id: 'long', title: 'Jane Doe', start: '2026-03-04T09:00:00-05:00', minutes: 240, attendees: [therapist, jane], updated }),
          ],
        },
      ],
      at,
    );
    const reasons = (id: string) => [event(r, id).decision.appointment, event(r, id).decision.reasons];
    expect(reasons('cal')).toEqual([true, ["on practice calendar 'Clients'"]]);
    expect(reasons('intake')).toEqual([true, ["title matches 'Intake'"]]);
    expect(event(r, 'intake').type).toBe('intake');
    expect(reasons('sup')).toEqual([false, ["title matches 'Supervision' (not a session)"]]);
    expect(reasons('lunch-tag')).toEqual([true, ['marked as a session by the therapist']]);
    expect(reasons('session-tag')).toEqual([false, ['marked as not a session by the therapist']]);
    expect(reasons('family')).toEqual([false, ["on calendar 'Family', which counts only as busy time"]]);
    expect(reasons('invited')).toEqual([true, ['one attendee outside brightpath.example, 50 min', 'the title names the attendee']]);
    expect(reasons('colleague')).toEqual([false, ['no rule matched: not on a practice calendar, no session word in the title, no client invited']]);
    expect(reasons('long')).toEqual([false, ['one attendee outside brightpath.example, 240 min, outside 20-120 min']]);
  });

  test('a 50-minute call with a plumber is not a session', () => {
    const r = run(
      [{ at: '2026-03-02T09:00:00Z', items: [ev({ id: 'plumber', title: 'Boiler repair call', start: '2026-03-03T12:00:00-05:00', attendees: [therapist, client('mike@quickfix.example', 'accepted', 'Mike (QuickFix)')], updated: '2026-03-02T08:00:00Z' })] }],
      '2026-03-10T00:00:00Z',
    );
    expect(event(r, 'plumber').decision).toEqual({
      appointment: false,
      reasons: ['one attendee outside brightpath.example, 50 min, but nothing else marks it as a session (title, calendar, known client)'],
      type: null,
    });
    expect(event(r, 'plumber').transitions).toEqual([]);
    expect(r.clients).toEqual([]);
  });

  test('an all-day "Out of office" is not a session, even on the practice calendar', () => {
    const r = run([{ at: '2026-03-02T09:00:00Z', items: [ev({ id: 'ooo', calendar: 'clients', title: 'Out of office', start: '2026-03-05', updated: '2026-03-02T08:00:00Z' })] }], '2026-03-10T00:00:00Z');
    expect(event(r, 'ooo').decision).toEqual({ appointment: false, reasons: ['an all-day event'], type: null });
    expect(event(r, 'ooo').transitions).toEqual([]);
  });

  test('a known client makes an untitled-looking invite a session; a stranger does not', () => {
    const r = run(
      [
        { at: '2026-03-02T09:00:00Z', items: [ev({ id: 's1', title: 'Session', start: '2026-03-03T10:00:00-05:00', attendees: [therapist, jane], updated: '2026-03-02T08:00:00Z' })] },
        { at: '2026-03-09T09:00:00Z', items: [ev({ id: 's2', title: 'Catch-up', start: '2026-03-10T10:00:00-05:00', attendees: [therapist, jane], updated: '2026-03-09T08:00:00Z' })] },
      ],
      '2026-03-09T10:00:00Z',
    );
    expect(event(r, 's2').decision.reasons).toEqual(['one attendee outside brightpath.example, 50 min', 'a known client']);
  });
});

describe('clients', () => {
  test('a couples session: both partners are one client unit, and one partner declining is not a cancellation', () => {
    const a = client('alex@example.com', 'accepted', 'Alex');
    const b = client('Sam+Therapy@Example.com', 'accepted', 'Sam');
    const r = run(
      [
        { at: '2026-03-02T09:00:00Z', items: [ev({ id: 'c1', title: 'Alex & Sam', start: '2026-03-04T18:00:00-05:00', minutes: 80, attendees: [therapist, a, b], updated: '2026-03-02T08:00:00Z' })] },
        { at: '2026-03-03T09:00:00Z', items: [ev({ id: 'c1', title: 'Alex & Sam', start: '2026-03-04T18:00:00-05:00', minutes: 80, attendees: [therapist, a, { ...b, response: 'declined' }], updated: '2026-03-03T08:00:00Z' })] },
      ],
      '2026-03-03T10:00:00Z',
    );
    expect(event(r, 'c1').client).toEqual({ key: 'email:alex@example.com+sam@example.com', label: 'Alex & Sam' });
    expect(event(r, 'c1').type).toBe('couples');
    // Two people make it a couples session whatever its length.
    const short = run([{ at: '2026-03-02T09:00:00Z', items: [ev({ id: 'c2', title: 'Alex & Sam', start: '2026-03-04T18:00:00-05:00', minutes: 50, attendees: [therapist, a, b], updated: '2026-03-02T08:00:00Z' })] }], '2026-03-02T10:00:00Z');
    expect(event(short, 'c2').type).toBe('couples');
    expect(kinds(r, 'c1')).toEqual(['scheduled']);
  });

  test('title-only clients with initials are recognised by template, and numbered', () => {
    const r = run(
      [
        {
          at: '2026-03-01T09:00:00Z',
          items: [
            ev({ id: 't1', title: 'J.D. - session', start: '2026-03-02T10:00:00-05:00', updated: '2026-03-01T08:00:00Z' }),
            ev({ id: 't2', title: 'j.d. – Session', start: '2026-03-09T10:00:00-04:00', updated: '2026-03-01T08:00:00Z' }),
            ev({ id: 't3', title: 'Intake: M K', start: '2026-03-09T12:00:00-04:00', minutes: 60, updated: '2026-03-01T08:00:00Z' }),
          ],
        },
      ],
      '2026-03-10T00:00:00Z',
    );
    expect(event(r, 't1').client).toEqual({ key: 'title:j.d.', label: 'J.D.' });
    expect(event(r, 't2').client?.key).toBe('title:j.d.');
    expect(event(r, 't3').client).toEqual({ key: 'title:m k', label: 'M K' });
    expect([event(r, 't1').sessionNumber, event(r, 't2').sessionNumber]).toEqual([1, 2]);
    expect(r.clients.find((c) => c.client === 'title:j.d.')).toMatchObject({ sessionsKept: 2, firstSession: '2026-03-02T15:00:00.000Z', secondSession: '2026-03-09T14:00:00.000Z' });
  });

  test('a client seen by name and later by email is two clients until the therapist links them', () => {
    const rounds = [
      {
        at: '2026-03-01T09:00:00Z',
        items: [
          ev({ id: 'n1', title: 'Jane Doe - session', start: '2026-03-02T10:00:00-05:00', updated: '2026-03-01T08:00:00Z' }),
          ev({ id: 'e1', title: 'Session', start: '2026-03-05T10:00:00-05:00', attendees: [therapist, jane], updated: '2026-03-01T08:00:00Z' }),
        ],
      },
    ];
    const apart = run(rounds, '2026-03-10T00:00:00Z');
    expect(apart.clients.map((c) => [c.client, c.sessionsKept])).toEqual([['email:jane@example.com', 1], ['title:jane doe', 1]]);
    const linked = run(rounds, '2026-03-10T00:00:00Z', { ...practice, clientLinks: [['jane@example.com', 'Jane Doe']] });
    expect(linked.clients.map((c) => [c.client, c.sessionsKept])).toEqual([['email:jane@example.com', 2]]);
  });
});

describe('what happens to a session', () => {
  test('a client declines, then the therapist deletes the event: one late client cancellation', () => {
    const r = run(
      [
        { at: '2026-03-02T09:00:00Z', items: [ev({ id: 'a', title: 'Session', start: '2026-03-03T14:00:00-05:00', attendees: [therapist, jane], updated: '2026-03-02T08:00:00Z' })] },
        { at: '2026-03-03T09:00:00Z', items: [ev({ id: 'a', title: 'Session', start: '2026-03-03T14:00:00-05:00', attendees: [therapist, { ...jane, response: 'declined' }], updated: '2026-03-03T08:55:00Z' })] },
        { at: '2026-03-03T09:30:00Z', items: [gone('a')] },
      ],
      '2026-03-10T00:00:00Z',
    );
    expect(kinds(r, 'a')).toEqual(['scheduled', 'declined']);
    expect(event(r, 'a').transitions[1]!.detail).toEqual({ by: 'client', late: true, noticeHours: 10, reason: 'the client declined' });
    expect(r.clients[0]).toMatchObject({ lateCancels: 1, cancellations: 1, sessionsKept: 0 });
  });

  test('a weekly series with one occurrence cancelled 3 hours before: that session only, late', () => {
    const weeks = [2, 9, 16, 23].map((d) => `2026-03-${String(d).padStart(2, '0')}`);
    const instance = (d: string, updated: string) =>
      ev({ id: `w_${d.replace(/-/g, '')}`, seriesId: 'w', originalStart: `${d}T18:00:00-05:00`, title: 'Jane - session', start: `${d}T18:00:00-0${d < '2026-03-08' ? 5 : 4}:00`, attendees: [therapist, jane], updated });
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: weeks.map((d) => instance(d, '2026-03-01T08:00:00Z')) },
        { at: '2026-03-09T19:00:00Z', items: [gone('w_20260309', 'primary', { seriesId: 'w', originalStart: '2026-03-09T18:00:00-04:00' })] },
      ],
      '2026-03-24T00:00:00Z',
    );
    expect(kinds(r, 'w_20260309')).toEqual(['scheduled', 'cancelled']);
    expect(event(r, 'w_20260309').transitions[1]!.detail).toMatchObject({ by: 'unknown', late: true, noticeHours: 3 });
    for (const d of ['w_20260302', 'w_20260316', 'w_20260323']) expect(kinds(r, d)).toEqual(['scheduled', 'attended']);
    expect(r.events.flatMap((e) => e.transitions).filter((t) => t.kind.startsWith('series'))).toEqual([]);
  });

  test('moved across the DST change: 18:00 local stays 18:00 local (New York, and London floating times)', () => {
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [ev({ id: 'ny', title: 'Session', start: '2026-03-05T18:00:00-05:00', updated: '2026-03-01T08:00:00Z' })] },
        { at: '2026-03-02T09:00:00Z', items: [ev({ id: 'ny', title: 'Session', start: '2026-03-12T18:00:00-04:00', updated: '2026-03-02T08:00:00Z' })] },
      ],
      '2026-03-03T00:00:00Z',
    );
    expect(event(r, 'ny').transitions[1]).toMatchObject({ kind: 'rescheduled', detail: { from: '2026-03-05T23:00:00.000Z', to: '2026-03-12T22:00:00.000Z' } });

    const london = { ...practice, timeZone: 'Europe/London', calendars: [{ id: 'uk', name: 'Clinic', role: 'practice', timeZone: 'Europe/London' }] };
    const floating = (local: string, updated: string) => ({ ...ev({ id: 'ldn', calendar: 'uk', title: 'Client', start: '2026-03-26T18:00:00Z', updated }), start: { kind: 'floating', local }, end: { kind: 'floating', local: local.replace('18:00', '18:50') } });
    const uk = run(
      [
        { at: '2026-03-20T09:00:00Z', items: [floating('2026-03-26T18:00', '2026-03-20T08:00:00Z')] },
        { at: '2026-03-21T09:00:00Z', items: [floating('2026-04-02T18:00', '2026-03-21T08:00:00Z')] },
      ],
      '2026-03-22T00:00:00Z',
      london,
    );
    expect(event(uk, 'ldn').transitions[1]).toMatchObject({ kind: 'rescheduled', detail: { from: '2026-03-26T18:00:00.000Z', to: '2026-04-02T17:00:00.000Z' } });
    expect(event(uk, 'ldn').zone).toBe('Europe/London');
  });

  test('moved to another calendar: a move, not a cancellation and a new booking', () => {
    const r = run(
      [
        { at: '2026-03-01T09:00:00Z', items: [ev({ id: 'm1', title: 'Session', iCalUID: 'uid-m1', start: '2026-03-05T10:00:00-05:00', attendees: [therapist, jane], updated: '2026-03-01T08:00:00Z' })] },
        {
          at: '2026-03-02T09:00:00Z',
          items: [gone('m1'), ev({ id: 'm1-new', calendar: 'clients', title: 'Session', iCalUID: 'uid-m1', start: '2026-03-05T10:00:00-05:00', attendees: [therapist, jane], updated: '2026-03-02T08:00:00Z' })],
        },
      ],
      '2026-03-03T00:00:00Z',
    );
    const moved = event(r, 'm1-new');
    expect(moved.appointment).toBe('primary/m1');
    expect(moved.transitions.map((t) => [t.kind, t.detail])).toEqual([
      ['scheduled', expect.anything()],
      ['moved', { fromCalendar: 'primary', toCalendar: 'clients' }],
    ]);
    expect(r.events.filter((e) => e.decision.appointment)).toHaveLength(1);
    expect(r.clients[0]).toMatchObject({ cancellations: 0, nextBooked: '2026-03-05T15:00:00.000Z' });
  });

  test('late or not: notice measured from when the cancellation was first seen, against the window', () => {
    const r = run(
      [
        {
          at: '2026-03-01T09:00:00Z',
          items: [
            ev({ id: 'early', title: 'Session', start: '2026-03-05T10:00:00-05:00', updated: '2026-03-01T08:00:00Z' }),
            ev({ id: 'edge', title: 'Session', start: '2026-03-03T11:00:00-05:00', updated: '2026-03-01T08:00:00Z' }),
            ev({ id: 'late', title: 'Session', start: '2026-03-03T10:00:00-05:00', updated: '2026-03-01T08:00:00Z' }),
          ],
        },
        { at: '2026-03-02T16:00:00Z', items: [gone('early'), gone('edge'), gone('late')] },
      ],
      '2026-03-02T17:00:00Z',
    );
    expect(event(r, 'early').transitions[1]!.detail).toMatchObject({ late: false, noticeHours: 71 });
    expect(event(r, 'edge').transitions[1]!.detail).toMatchObject({ late: false, noticeHours: 24 });
    expect(event(r, 'late').transitions[1]!.detail).toMatchObject({ late: true, noticeHours: 23 });
  });
});
