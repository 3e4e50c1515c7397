// The one clock of the process: everything that reads the time takes a Clock, so tests (and the
// emulators) can drive a simulated week in seconds. Domain code takes "now" as a plain value.
import fs from 'node:fs';
import { DateTime } from 'luxon';

export interface Clock {
  /** The current instant, in UTC. */
  now(): DateTime;
}

export const systemClock: Clock = {
  now: () => DateTime.utc(),
};

/** A clock that moves only when told to: shared by the engine, the store and the emulators in tests. */
export class ManualClock implements Clock {
  #now: DateTime;

  constructor(start: DateTime | string) {
    const at = typeof start === 'string' ? DateTime.fromISO(start, { zone: 'utc' }) : start.toUTC();
    if (!at.isValid) throw new Error(`ManualClock: invalid start instant ${String(start)}`);
    this.#now = at;
  }

  now(): DateTime {
    return this.#now;
  }

  set(at: DateTime | string): void {
    const next = typeof at === 'string' ? DateTime.fromISO(at, { zone: 'utc' }) : at.toUTC();
    if (!next.isValid) throw new Error(`ManualClock: invalid instant ${String(at)}`);
    this.#now = next;
  }

  advance(by: { milliseconds?: number; seconds?: number; minutes?: number; hours?: number; days?: number }): DateTime {
    this.#now = this.#now.plus(by);
    return this.#now;
  }
}

/**
 * A clock read from a file that holds one RFC 3339 instant: how a test drives the clock of a child
 * process (SESSIONKEEPER_CLOCK_FILE). Read at every call (a few microseconds; tests only).
 */
export class FileClock implements Clock {
  #last: DateTime | undefined;

  constructor(readonly path: string) {
    this.now(); // fail at start-up, not mid-work, on a missing or bad file
  }

  now(): DateTime {
    let text = '';
    try {
      text = fs.readFileSync(this.path, 'utf8').trim();
    } catch {
      // a writer replacing the file: keep the last good value
    }
    const at = DateTime.fromISO(text, { zone: 'utc' });
    if (at.isValid) this.#last = at;
    if (!this.#last) throw new Error(`the clock file ${this.path} does not hold an RFC 3339 instant`);
    return this.#last;
  }
}
