// Fast UTC instant formatting for the hot path: Date#toISOString costs ~0.4 µs, and the lifecycle
// writes an instant into every transition. The date part is cached per day; same output format.

let cachedDay = Number.NaN;
let cachedPrefix = '';

const pad2 = (n: number) => (n < 10 ? '0' : '') + n;

import type { EventTime } from '../../connectors/types.js';

let lastMs = Number.NaN;
let lastText = '';

/** The same text as new Date(ms).toISOString() for years 1970-9999. */
export function isoInstant(ms: number): string {
  // A round stamps many transitions with its own time: the last answer is often the next one.
  if (ms === lastMs) return lastText;
  lastMs = ms;
  lastText = format(ms);
  return lastText;
}

function format(ms: number): string {
  const day = Math.floor(ms / 86_400_000);
  if (day !== cachedDay) {
    cachedDay = day;
    cachedPrefix = new Date(day * 86_400_000).toISOString().slice(0, 11);
  }
  let rest = ms - day * 86_400_000;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.floor(rest / 1000);
  const milli = rest - s * 1000;
  return `${cachedPrefix}${pad2(h)}:${pad2(m)}:${pad2(s)}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/**
 * An event time as text that compares and stores the same way everywhere: an instant in UTC ISO, a
 * date or a floating local time as given (what identifies a recurring instance by its original start).
 */
export function eventTimeText(t: EventTime | null): string | null {
  if (!t) return null;
  return t.kind === 'instant' ? isoInstant(Date.parse(t.at)) : t.kind === 'date' ? t.date : t.local;
}

/** A zone as a person reads it: "New York time" for America/New_York; UTC as is. */
export function zoneLabel(zone: string): string {
  if (zone === 'UTC' || zone === 'Etc/UTC') return 'UTC';
  return `${zone.split('/').pop()!.replace(/_/g, ' ')} time`;
}
