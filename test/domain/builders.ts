// Builders of normalised calendar items for the domain tests: a live event with sensible defaults
// (a 50-minute session on the therapist's own calendar), a tombstone, and a round.
import type { Attendee } from '../../connectors/types.js';
import { classify, type ClassifyReport } from '../../src/domain/classify.js';

let version = 0;

export interface EventInput {
  id: string;
  calendar?: string;
  title?: string;
  start: string; // instant with offset, or YYYY-MM-DD for all-day
  minutes?: number;
  end?: string;
  zone?: string;
  status?: 'confirmed' | 'tentative' | 'cancelled';
  attendees?: Partial<Attendee>[];
  organizerSelf?: boolean;
  organizerEmail?: string;
  iCalUID?: string;
  seriesId?: string;
  originalStart?: string;
  tags?: Record<string, string>;
  categories?: string[];
  colorId?: string;
  updated: string;
}

export function ev(i: EventInput): Record<string, unknown> {
  const allDay = /^\d{4}-\d{2}-\d{2}$/.test(i.start);
  const zone = i.zone ?? 'America/New_York';
  const start = allDay ? { kind: 'date', date: i.start } : { kind: 'instant', at: i.start, zone };
  let end: Record<string, unknown>;
  if (i.end) end = allDay ? { kind: 'date', date: i.end } : { kind: 'instant', at: i.end, zone };
  else if (allDay) end = { kind: 'date', date: new Date(Date.parse(`${i.start}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10) };
  else end = { kind: 'instant', at: new Date(Date.parse(i.start) + (i.minutes ?? 50) * 60_000).toISOString(), zone };
  return {
    kind: 'event',
    provider: 'google',
    calendarId: i.calendar ?? 'primary',
    eventId: i.id,
    iCalUID: i.iCalUID ?? `${i.seriesId ?? i.id}@google.com`,
    seriesId: i.seriesId ?? null,
    originalStart: i.originalStart ? { kind: 'instant', at: i.originalStart, zone } : null,
    start,
    end,
    status: i.status ?? 'confirmed',
    title: i.title ?? '',
    organizer: { email: i.organizerEmail ?? 'dr.lee@brightpath.example', self: i.organizerSelf ?? true },
    attendees: (i.attendees ?? []).map((a) => ({ response: 'none', self: false, organizer: false, ...a })),
    tags: i.tags ?? {},
    categories: i.categories ?? [],
    colorId: i.colorId ?? null,
    updated: i.updated,
    version: `"v${++version}"`,
  };
}

export function gone(id: string, calendar = 'primary', extra: { seriesId?: string; originalStart?: string } = {}): Record<string, unknown> {
  return {
    kind: 'tombstone',
    provider: 'google',
    calendarId: calendar,
    eventId: id,
    seriesId: extra.seriesId ?? null,
    originalStart: extra.originalStart ? { kind: 'instant', at: extra.originalStart, zone: 'America/New_York' } : null,
  };
}

export const client = (email: string, response: Attendee['response'] = 'accepted', name?: string): Partial<Attendee> => ({
  email,
  response,
  ...(name ? { name } : {}),
});
export const therapist = { email: 'dr.lee@brightpath.example', response: 'accepted' as const, self: true, organizer: true };

export const practice = {
  timeZone: 'America/New_York',
  domains: ['brightpath.example'],
  calendars: [
    { id: 'primary', name: 'Dr Lee', role: 'mixed' },
    { id: 'clients', name: 'Clients', role: 'practice' },
    { id: 'family', name: 'Family', role: 'busy_only' },
  ],
};

/** classify with the test practice (or another file) and a fixed now. */
export type RoundIn = { at: string; items: unknown[] };
export const run = (rounds: RoundIn[], now: string, file: Record<string, unknown> = practice): ClassifyReport => classify(file, rounds, { now });
export const event = (r: ClassifyReport, id: string) => r.events.find((x) => x.eventId === id)!;
export const kinds = (r: ClassifyReport, id: string) => event(r, id).transitions.map((t) => t.kind);
export const jane = client('jane@example.com', 'accepted', 'Jane Doe');
/** A session with Jane on the therapist's own calendar. */
export const session = (id: string, start: string, updated: string, extra: Partial<EventInput> = {}) =>
  ev({ id, title: 'Session', start, attendees: [therapist, jane], updated, ...extra });
