// Per-calendar exclusion: one sync of a calendar at a time (advisory lock on PostgreSQL, shared by
// every instance; a mutex on PGlite), while other calendars go on.
import { describe, expect, test } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { forEachBackend, testBackends, withTestDb } from '../helpers/db.js';

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

async function exclusion(a: Store, b: Store) {
  const order: string[] = [];
  const first = gate();
  const entered = gate();
  const one = a.withCalendarLock('cal-1', async () => {
    order.push('one in');
    entered.open();
    await first.opened;
    order.push('one out');
  });
  await entered.opened;
  // Same calendar: refused by try, queued by wait. Other calendar: goes ahead at once.
  expect(await b.tryCalendarLock('cal-1', async () => 'ran')).toEqual({ ran: false });
  const two = b.withCalendarLock('cal-1', async () => order.push('two in'));
  expect(await b.tryCalendarLock('cal-2', async () => 'other calendar')).toEqual({ ran: true, value: 'other calendar' });
  await new Promise((r) => setTimeout(r, 50));
  expect(order).toEqual(['one in']);
  first.open();
  await Promise.all([one, two]);
  expect(order).toEqual(['one in', 'one out', 'two in']);
  // Released after an error too.
  await expect(a.withCalendarLock('cal-1', async () => Promise.reject(new Error('sync failed')))).rejects.toThrow('sync failed');
  expect(await b.tryCalendarLock('cal-1', async () => 'free again')).toEqual({ ran: true, value: 'free again' });
}

forEachBackend('calendar lock', (t) => {
  test('one holder per calendar, others wait or are told it is busy', async () => {
    await exclusion(t.store, t.store);
  });
});

if (testBackends().includes('postgres')) {
  describe('calendar lock across instances [postgres]', () => {
    const t = withTestDb({ backend: 'postgres' });
    test('a second instance on the same database is kept out of a locked calendar', async () => {
      await exclusion(t.store, await t.openAnother());
    });
  });
}
