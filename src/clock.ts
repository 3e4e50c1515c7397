// The one clock of the process: everything that reads the time takes a Clock, so tests (and the
// emulators) can drive a simulated week in seconds. Domain code takes "now" as a plain value.
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
