// Rounds of calendar items in, the whole picture out: each event's decision with reasons, its client,
// its transitions and final state, per-client figures with risk signals, and the practice's figures.
// What `sessionkeeper classify` prints. Pure: the clock is the `now` given.
import { z } from 'zod';
import { parseCalendarItem, type CalendarItem, type ItemError } from '../../connectors/types.js';
import { ianaZone, parseOrThrow, practiceSettingsFields, type PracticeSettings } from '../config.js';
import { normaliseEmail, normaliseName } from './identity.js';
import { clientFigures, practiceFigures, type ClientFigures, type PracticeFigures } from './figures.js';
import { applyRound, createLedger, presumeUntil, type AppointmentState, type LedgerContext, type Transition } from './lifecycle.js';
import type { Decision } from './recognise.js';
import { compileRules, type CalendarInfo } from './rules.js';

const instant = z.string().refine((s) => !Number.isNaN(Date.parse(s)) && /T.*(Z|[+-]\d{2}:\d{2})$/.test(s), 'must be an RFC 3339 instant with an offset');

/** The practice file of `classify`: the practice's settings, plus its calendars and the therapist's links. */
export const practiceFileSchema = practiceSettingsFields.extend({
  calendars: z
    .array(
      z.strictObject({
        id: z.string().min(1),
        name: z.string().default(''),
        role: z.enum(['practice', 'mixed', 'busy_only', 'ignored']).default('mixed'),
        timeZone: ianaZone.optional(),
      }),
    )
    .default([]),
  /** Identities the therapist says are one client: ["Jane D", "jane@example.com"] (names or emails). */
  clientLinks: z.array(z.array(z.string().min(1)).min(2, 'a link joins at least two identities')).default([]),
});
export type PracticeFile = z.output<typeof practiceFileSchema>;

export const roundsSchema = z.array(
  z.strictObject({
    at: instant,
    /** For raw platform items (which do not name their calendar): the calendar they came from. */
    calendarId: z.string().min(1).optional(),
    items: z.array(z.unknown()),
  }),
);

export interface Rejected extends ItemError {
  round: number;
  index: number;
}

export interface EventReport {
  calendarId: string;
  eventId: string;
  appointment: string;
  decision: Decision;
  client: { key: string; label: string } | null;
  type: string | null;
  start: string;
  end: string;
  zone: string;
  state: { status: AppointmentState['status']; presumed: boolean; cancel: AppointmentState['cancel'] } | null;
  sessionNumber: number | null;
  transitions: Transition[];
}

export interface ClassifyReport {
  now: string;
  counts: { rounds: number; items: number; rejected: number; events: number; appointments: number; transitions: number };
  rejected: Rejected[];
  events: EventReport[];
  clients: ClientFigures[];
  practice: PracticeFigures;
}

/**
 * An identity as the therapist writes it → the key recognition uses: "jane@x.com", a couple
 * "alex@x.com, sam@y.com" (or joined by "&"), or a name from titles ("Jane D").
 */
export function identityKey(raw: string): string {
  if (raw.includes('@')) {
    const emails = raw.split(/[,&;\s]+/).map((e) => normaliseEmail(e)).filter((e): e is string => e !== undefined);
    if (emails.length > 0) return `email:${[...new Set(emails)].sort().join('+')}`;
  }
  return `title:${normaliseName(raw)}`;
}

export function ledgerContext(practice: PracticeFile, settings: PracticeSettings = practice): LedgerContext {
  const calendars = new Map<string, CalendarInfo>(
    practice.calendars.map((c) => [c.id, { role: c.role, name: c.name || c.id, timeZone: c.timeZone ?? settings.timeZone }]),
  );
  const links = new Map<string, string>();
  for (const group of practice.clientLinks) {
    const keys = group.map(identityKey);
    for (const k of keys.slice(1)) links.set(k, keys[0]!);
  }
  return { rules: compileRules(settings), calendars, links, defaultZone: settings.timeZone };
}

export interface ClassifyOptions {
  now: string;
  /** Period of the practice figures; by default from the first session to now. */
  from?: string;
  to?: string;
  /** Turns one raw item into a normalised one (a connector's normaliser for --from google). */
  parseItem?: (raw: unknown, round: { calendarId: string | undefined; timeZone: string; at: string }) => { ok: true; item: CalendarItem | null } | { ok: false; error: ItemError };
}

export function classify(practiceInput: unknown, roundsInput: unknown, opts: ClassifyOptions): ClassifyReport {
  const practice = parseOrThrow(practiceFileSchema, practiceInput, 'practice file');
  const rounds = parseOrThrow(roundsSchema, roundsInput, 'rounds');
  const nowMs = Date.parse(opts.now);
  const ctx = ledgerContext(practice);
  const ledger = createLedger(practice.clientLinks.flat().map(identityKey));
  const parse = opts.parseItem ?? ((raw: unknown) => parseCalendarItem(raw));
  const rejected: Rejected[] = [];
  const transitions: Transition[] = [];
  let items = 0;

  // Rounds with the same time are one round however they were cut (a sync's pages).
  const merged: { at: string; items: CalendarItem[] }[] = [];
  rounds.forEach((round, r) => {
    const parsed: CalendarItem[] = [];
    const zone = (round.calendarId ? ctx.calendars.get(round.calendarId)?.timeZone : undefined) ?? ctx.defaultZone;
    round.items.forEach((raw, index) => {
      items++;
      const result = parse(raw, { calendarId: round.calendarId, timeZone: zone, at: round.at });
      if (!result.ok) rejected.push({ round: r, index, ...result.error });
      else if (result.item) parsed.push(result.item);
    });
    const prev = merged.at(-1);
    if (prev && Date.parse(prev.at) === Date.parse(round.at)) prev.items.push(...parsed);
    else merged.push({ at: round.at, items: parsed });
  });
  for (const round of merged) {
    if (Date.parse(round.at) > nowMs) break; // the future has not happened yet
    transitions.push(...applyRound(ledger, round, ctx));
  }
  transitions.push(...presumeUntil(ledger, opts.now, ctx));

  const byAppointment = new Map<string, Transition[]>();
  for (const t of transitions) byAppointment.set(t.appointment, [...(byAppointment.get(t.appointment) ?? []), t]);
  const numbers = sessionNumbers(ledger.appointments.values());
  const events: EventReport[] = [...ledger.appointments.values()]
    .sort((a, b) => a.startMs - b.startMs || a.key.localeCompare(b.key))
    .map((a) => ({
      calendarId: a.calendarId,
      eventId: a.eventId,
      appointment: a.key,
      decision: a.decision,
      client: a.client && a.decision.appointment ? { key: a.client.key, label: a.client.label } : null,
      type: a.decision.type,
      start: new Date(a.startMs).toISOString(),
      end: new Date(a.endMs).toISOString(),
      zone: a.zone,
      state: a.decision.appointment ? { status: a.status, presumed: a.presumed, cancel: a.cancel } : null,
      sessionNumber: numbers.get(a.key) ?? null,
      transitions: byAppointment.get(a.key) ?? [],
    }));
  const appointments = events.filter((e) => e.decision.appointment);
  const firstMs = appointments.length > 0 ? Math.min(...appointments.map((e) => Date.parse(e.start))) : nowMs;
  return {
    now: new Date(nowMs).toISOString(),
    counts: { rounds: rounds.length, items, rejected: rejected.length, events: events.length, appointments: appointments.length, transitions: transitions.length },
    rejected,
    events,
    clients: clientFigures(ledger, transitions, nowMs, practice),
    practice: practiceFigures(ledger, opts.from ? Date.parse(opts.from) : firstMs, opts.to ? Date.parse(opts.to) : nowMs, nowMs),
  };
}

/** Each kept session's number in its client's history (1 for the first kept session, ...). */
function sessionNumbers(appointments: Iterable<AppointmentState>): Map<string, number> {
  const byClient = new Map<string, AppointmentState[]>();
  for (const a of appointments) {
    if (!a.decision.appointment || !a.client || a.status !== 'attended') continue;
    byClient.set(a.client.key, [...(byClient.get(a.client.key) ?? []), a]);
  }
  const out = new Map<string, number>();
  for (const list of byClient.values()) {
    list.sort((a, b) => a.startMs - b.startMs || (a.key < b.key ? -1 : 1)).forEach((a, i) => out.set(a.key, i + 1));
  }
  return out;
}
