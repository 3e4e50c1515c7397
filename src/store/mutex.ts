// A small async mutex: PGlite's one connection and the embedded per-calendar locks are shared by
// every caller in the process, one at a time, in arrival order.

export class Mutex {
  #tail: Promise<void> = Promise.resolve();
  #held = false;

  get locked(): boolean {
    return this.#held;
  }

  /** Waits for the mutex; the returned function releases it (call it exactly once). */
  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.#tail;
    this.#tail = previous.then(() => next);
    await previous;
    this.#held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#held = false;
      release();
    };
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** Mutexes by key, created on demand and dropped when nobody holds or waits for them. */
export class KeyedMutex {
  readonly #entries = new Map<string, { mutex: Mutex; users: number }>();

  /** Runs fn holding the key's mutex; with wait=false, returns `busy` at once if it is held. */
  async run<T>(key: string, fn: () => Promise<T>, wait = true): Promise<T | typeof busy> {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { mutex: new Mutex(), users: 0 };
      this.#entries.set(key, entry);
    }
    if (!wait && entry.users > 0) return busy;
    entry.users++;
    try {
      return await entry.mutex.run(fn);
    } finally {
      entry.users--;
      if (entry.users === 0) this.#entries.delete(key);
    }
  }
}

export const busy: unique symbol = Symbol('busy');
