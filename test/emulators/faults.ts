// Fault injection shared by the emulators: specs queued by a test and consumed, in order, by the
// requests they match. Each emulator says which faults it knows and what "no path given" matches.

export interface FaultSpecOf<F> {
  /** Which requests: a method and/or a path pattern; without a path, the emulator's default. */
  match?: { method?: string; path?: RegExp };
  /** How many matching requests it applies to; default 1. */
  times?: number;
  fault: F;
}

export interface FaultQueue<F = unknown> {
  add(f: FaultSpecOf<F>): void;
  clear(): void;
  /** How many fault applications are still queued (the sum of the remaining `times`). */
  pending(): number;
}

export class FaultList<F, E extends string> implements FaultQueue<F> {
  private entries: { spec: FaultSpecOf<F>; remaining: number }[] = [];

  /** defaultMatch: whether a fault given without a path applies to a request to this endpoint. */
  constructor(private readonly defaultMatch: (fault: F, endpoint: E) => boolean) {}

  add(f: FaultSpecOf<F>): void {
    const times = f.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new Error(`FaultSpec.times must be a positive integer, got ${String(f.times)}`);
    this.entries.push({ spec: f, remaining: times });
  }

  clear(): void {
    this.entries = [];
  }

  pending(): number {
    return this.entries.reduce((n, e) => n + e.remaining, 0);
  }

  /** The first queued fault matching this request, consumed; undefined when none applies. */
  take(method: string, path: string, endpoint: E): F | undefined {
    for (const e of this.entries) {
      if (!this.matches(e.spec, method, path, endpoint)) continue;
      e.remaining -= 1;
      if (e.remaining <= 0) this.entries.splice(this.entries.indexOf(e), 1);
      return e.spec.fault;
    }
    return undefined;
  }

  private matches(spec: FaultSpecOf<F>, method: string, path: string, endpoint: E): boolean {
    const m = spec.match;
    if (m?.method !== undefined && m.method.toUpperCase() !== method.toUpperCase()) return false;
    if (m?.path !== undefined) {
      m.path.lastIndex = 0;
      return m.path.test(path);
    }
    return this.defaultMatch(spec.fault, endpoint);
  }
}
