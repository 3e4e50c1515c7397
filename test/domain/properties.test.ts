// Properties of the lifecycle over generated calendars (fast-check): replays change nothing, lateness
// is exactly notice < window, non-appointments never yield transitions, and batching does not matter.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { classify } from '../../src/domain/classify.js';
import { client, ev, gone, practice, therapist } from './builders.js';

const BASE = Date.parse('2026-03-02T09:00:00Z');
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

const titles = ['Session', 'Jane - session', 'NS Session', 'CX Session', 'Lunch', 'Intake', 'Call'];
const itemArb = (roundMs: number) =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        id: fc.constantFrom('e0', 'e1', 'e2', 'e3', 'e4'),
        title: fc.constantFrom(...titles),
        startHours: fc.integer({ min: -48, max: 240 }),
        response: fc.constantFrom('accepted', 'declined', 'none', null),
        calendar: fc.constantFrom('primary', 'primary', 'clients'),
      }).map((x) =>
        ev({
          id: x.id,
          calendar: x.calendar,
          iCalUID: `${x.id}@uid`,
          title: x.title,
          start: iso(BASE + x.startHours * HOUR),
          attendees: x.response ? [therapist, client('jane@example.com', x.response as 'accepted')] : [],
          updated: iso(roundMs - 60_000),
        }),
      ),
    },
    { weight: 1, arbitrary: fc.record({ id: fc.constantFrom('e0', 'e1', 'e2', 'e3', 'e4'), calendar: fc.constantFrom('primary', 'clients') }).map((x) => gone(x.id, x.calendar)) },
  );

const roundsArb = fc
  .array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 8 })
  .chain((gaps) => {
    let t = BASE;
    const times = gaps.map((g) => (t += g * HOUR));
    return fc.tuple(...times.map((ms) => fc.array(itemArb(ms), { minLength: 1, maxLength: 6 }).map((items) => ({ at: iso(ms), items }))));
  });

const NOW = iso(BASE + 400 * HOUR);
const noPresume = { ...practice, presumeAttended: false };
const facts = (r: ReturnType<typeof classify>) => ({ events: r.events, clients: r.clients, practice: r.practice });

describe('lifecycle properties', () => {
  test('a round replayed right after itself yields no new transitions', () => {
    fc.assert(
      fc.property(roundsArb, (rounds) => {
        const once = classify(noPresume, rounds, { now: NOW });
        const replayed = rounds.flatMap((r) => [r, { at: iso(Date.parse(r.at) + 1000), items: r.items }]);
        const twice = classify(noPresume, replayed, { now: NOW });
        expect(twice.events.map((e) => e.transitions.map((t) => t.key))).toEqual(once.events.map((e) => e.transitions.map((t) => t.key)));
      }),
      { numRuns: 150 },
    );
  });

  test('a round replayed right after itself yields nothing new with presumed attendance too', () => {
    fc.assert(
      fc.property(roundsArb, (rounds) => {
        const once = classify(practice, rounds, { now: NOW });
        const replayed = rounds.flatMap((r) => [r, { at: r.at, items: r.items }]);
        expect(facts(classify(practice, replayed, { now: NOW }))).toEqual(facts(once));
      }),
      { numRuns: 150 },
    );
  });

  test('the order of the events within a round does not change the facts', () => {
    fc.assert(
      fc.property(
        roundsArb.map((rounds) =>
          // One copy per event in a round (with two copies of one event, the last one wins by design).
          rounds.map((r) => ({ at: r.at, items: r.items.filter((x, i) => r.items.findIndex((y) => y['calendarId'] === x['calendarId'] && y['eventId'] === x['eventId']) === i) })),
        ),
        fc.infiniteStream(fc.nat()),
        (rounds, seeds) => {
          const shuffled = rounds.map((r) => {
            const items = [...r.items];
            for (let i = items.length - 1; i > 0; i--) {
              const j = seeds.next().value % (i + 1);
              [items[i], items[j]] = [items[j]!, items[i]!];
            }
            return { at: r.at, items };
          });
          expect(facts(classify(practice, shuffled, { now: NOW }))).toEqual(facts(classify(practice, rounds, { now: NOW })));
        },
      ),
      { numRuns: 200 },
    );
  });

  test('however a round is cut into pages, the facts are the same', () => {
    fc.assert(
      fc.property(roundsArb, fc.integer({ min: 1, max: 4 }), (rounds, pages) => {
        const cut = rounds.flatMap((r) => {
          const size = Math.ceil(r.items.length / pages);
          const parts = [];
          for (let i = 0; i < r.items.length; i += size) parts.push({ at: r.at, items: r.items.slice(i, i + size) });
          return parts;
        });
        expect(facts(classify(practice, cut, { now: NOW }))).toEqual(facts(classify(practice, rounds, { now: NOW })));
      }),
      { numRuns: 150 },
    );
  });

  test('a cancellation is late exactly when its notice is shorter than the window', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 72 }), fc.integer({ min: -600, max: 200 * 60 }), (windowHours, noticeMinutes) => {
        const seen = BASE + 48 * HOUR;
        const start = seen + noticeMinutes * 60_000;
        const rounds = [
          { at: iso(BASE), items: [ev({ id: 'x', title: 'Session', start: iso(start), updated: iso(BASE - 1000) })] },
          { at: iso(seen), items: [gone('x')] },
        ];
        const r = classify({ ...practice, lateCancelHours: windowHours, presumeAttended: false }, rounds, { now: iso(seen) });
        const cancel = r.events[0]!.transitions.find((t) => t.kind === 'cancelled');
        if (start <= BASE) return; // began before we first saw it: nothing to cancel
        if (start + 50 * 60_000 <= seen) {
          // Deleted after the session's end: tidying up, recorded after the fact and never late.
          expect(cancel?.detail).toMatchObject({ afterEnd: true, late: false });
          return;
        }
        expect(cancel?.detail['late']).toBe(noticeMinutes < windowHours * 60);
      }),
      { numRuns: 300 },
    );
  });

  test('an event that is not an appointment never yields a transition', () => {
    const notSessions = ['Lunch', 'Dentist', 'Team meeting', 'Pick up kids', 'Supervision', 'Admin block', ''];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ id: fc.constantFrom('n0', 'n1', 'n2'), title: fc.constantFrom(...notSessions), startHours: fc.integer({ min: -24, max: 200 }), del: fc.boolean() }),
          { minLength: 1, maxLength: 12 },
        ),
        (steps) => {
          const rounds = steps.map((s, i) => ({
            at: iso(BASE + (i + 1) * HOUR),
            items: [s.del ? gone(s.id) : ev({ id: s.id, title: s.title, start: iso(BASE + s.startHours * HOUR), attendees: [therapist, client('colleague@brightpath.example')], updated: iso(BASE + (i + 1) * HOUR - 1000) })],
          }));
          const r = classify(practice, rounds, { now: NOW });
          expect(r.events.flatMap((e) => e.transitions)).toEqual([]);
          expect(r.clients).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });
});
