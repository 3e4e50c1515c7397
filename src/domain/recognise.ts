// Is an event a therapy appointment, who is the client, and what does the therapist's marking say?
// Each decision carries reasons that name the rule and the value that matched. Pure; no I/O.
import { DateTime } from 'luxon';
import type { Attendee, EventTime, LiveEvent } from '../../connectors/types.js';
import { normaliseName } from './identity.js';
import type { CalendarInfo, Marker, Rules } from './rules.js';

/** Our tags on events (private extended properties on Google, single-value properties on Graph). */
export const TAG_SESSION = 'sk.session'; // "yes" | "no": the therapist's own word, which wins
export const TAG_OUTCOME = 'sk.outcome'; // "attended" | "no_show" | "client_cancelled" | "therapist_cancelled"

/** Shared between events with the same outcome (Rules.decision): never mutate one. */
export interface Decision {
  readonly appointment: boolean;
  readonly reasons: readonly string[];
  /** The appointment type's id, when it is one. */
  readonly type: string | null;
}

/** Shared between events of the same client (Rules.clientRef): never mutate one. */
export interface ClientRef {
  /** Stable identity: "email:a@x.com" (a couple: "email:a@x.com+b@y.com") or "title:jane d". */
  readonly key: string;
  readonly kind: 'email' | 'title';
  /** How the therapist would name them (attendee names, or the name in the title). */
  readonly label: string;
}

export type Mark = 'no_show' | 'attended' | 'client_cancelled' | 'therapist_cancelled' | 'cancelled';

/** What recognition needs of an event, computed once. */
export interface EventView {
  event: LiveEvent;
  startMs: number;
  endMs: number;
  zone: string;
  allDay: boolean;
  minutes: number;
  /** Attendees who could be the client: outside the practice's domains, not the therapist, not rooms. */
  externals: Attendee[];
  /** The title without a marker prefix ("NS Jane - session" → "Jane - session"). */
  titleCore: string;
  /** titleCore in lower case. */
  lowerCore: string;
  mark: { mark: Mark; reason: string } | null;
}

const resolved = new Map<string, number>();

/** Milliseconds of a time: instants as they are; dates and floating times in the calendar's zone. */
export function timeMs(t: EventTime, calendarZone: string): number {
  if (t.kind === 'instant') return Date.parse(t.at);
  const key = `${calendarZone}|${t.kind === 'date' ? t.date : t.local}`;
  let ms = resolved.get(key);
  if (ms === undefined) {
    ms = DateTime.fromISO(t.kind === 'date' ? t.date : t.local, { zone: calendarZone }).toMillis();
    if (resolved.size > 50_000) resolved.clear();
    resolved.set(key, ms);
  }
  return ms;
}

function findMark(title: string, lowerTitle: string, categories: readonly string[], m: Marker): string | null {
  for (const p of m.prefixes) if (lowerTitle.startsWith(p)) return `title starts with '${title.slice(0, p.length)}'`;
  for (const c of categories) if (m.categories.has(c.toLowerCase())) return `category '${c}'`;
  return null;
}

export function viewOf(event: LiveEvent, calendar: CalendarInfo, rules: Rules): EventView {
  const startMs = timeMs(event.start, calendar.timeZone);
  const endMs = timeMs(event.end, calendar.timeZone);
  const zone = event.start.kind === 'instant' ? event.start.zone : calendar.timeZone;
  const externals: Attendee[] = [];
  const organizerSelf = event.organizer?.self === true;
  for (const a of event.attendees) {
    if (a.self || (a.organizer && organizerSelf)) continue;
    if (!rules.outside(a.email)) continue;
    if (organizerSelf && event.organizer!.email.toLowerCase() === a.email.toLowerCase()) continue;
    externals.push(a);
  }
  const title = event.title;
  const lower = title.toLowerCase();
  const categories = event.colorId ? [...event.categories, event.colorId] : event.categories;
  let mark: EventView['mark'] = null;
  let titleCore = title;
  const tagged = event.tags[TAG_OUTCOME];
  if (tagged === 'attended' || tagged === 'no_show' || tagged === 'client_cancelled' || tagged === 'therapist_cancelled') {
    mark = { mark: tagged, reason: `marked ${tagged.replace('_', ' ')} by the therapist` };
  }
  // Most titles carry no marker and most events no category: then there is nothing to look for.
  const mayBeMarked = categories.length > 0 || (rules.anyMarkerPrefix !== null && rules.anyMarkerPrefix.test(lower));
  for (const [kind, marker] of mayBeMarked ? rules.markerList : []) {
    const reason = findMark(title, lower, categories, marker);
    if (reason) {
      mark ??= { mark: kind, reason };
      const prefix = marker.prefixes.find((p) => lower.startsWith(p));
      if (prefix) titleCore = title.slice(prefix.length).trim();
      break;
    }
  }
  return {
    event,
    startMs,
    endMs,
    zone,
    allDay: event.start.kind === 'date',
    minutes: Math.round((endMs - startMs) / 60_000),
    externals,
    titleCore,
    lowerCore: titleCore === title ? lower : titleCore.toLowerCase(),
    mark,
  };
}

export interface RecogniseContext {
  calendar: CalendarInfo;
  /** Identity keys of clients already known (seen in sessions, or linked by the therapist). */
  knownClients: ReadonlySet<string>;
}

/** The client of an event: its external attendees, or else the name in its title by a template. */
export function clientOf(view: EventView, rules: Rules, links?: ReadonlyMap<string, string>): ClientRef | null {
  const max = rules.settings.detection.externalAttendees.maxClients;
  let ref: ClientRef | null = null;
  if (view.externals.length === 1) {
    const a = view.externals[0]!;
    const email = rules.email(a.email);
    if (email) ref = rules.clientRef(`email:${email}`, 'email', a.name?.trim() || a.email);
  } else if (view.externals.length > 0 && view.externals.length <= max) {
    const emails = [...new Set(view.externals.map((a) => rules.email(a.email)).filter((e): e is string => e !== undefined))].sort();
    if (emails.length > 0) {
      const label = view.externals.map((a) => a.name?.trim() || a.email).join(' & ');
      ref = rules.clientRef(`email:${emails.join('+')}`, 'email', label);
    }
  }
  if (!ref) {
    const name = nameFromTitle(view.titleCore, rules);
    if (name) ref = rules.clientRef(`title:${normaliseName(name.name)}`, 'title', name.name);
  }
  if (ref && links) {
    const canonical = links.get(ref.key);
    if (canonical) ref = rules.clientRef(canonical, ref.kind, ref.label);
  }
  return ref;
}

function nameFromTitle(title: string, rules: Rules): { name: string; template: string } | null {
  for (const t of rules.templates) {
    const m = t.re.exec(title);
    const name = m?.[1]?.trim();
    // A template must name someone: "Session - Session" or a lone word of the include list is not a name.
    if (name && !(rules.include?.re.test(name) && name.split(/\s+/).length === 1)) return { name, template: t.template };
  }
  return null;
}

function typeOf(view: EventView, rules: Rules, clientCount: number): string | null {
  const types = rules.settings.appointmentTypes;
  const lower = view.lowerCore;
  for (const t of rules.typeNames) if (t.re.test(lower)) return t.id;
  if (clientCount >= 2) {
    const couples = types.find((t) => t.id === 'couples');
    if (couples) return couples.id;
  }
  let best: { id: string; diff: number } | null = null;
  for (const t of types) {
    const diff = Math.abs(t.minutes - view.minutes);
    if (!best || diff < best.diff) best = { id: t.id, diff };
  }
  return best?.id ?? null;
}

function describeExternals(view: EventView, rules: Rules): string {
  const n = view.externals.length;
  const who = n === 1 ? 'one attendee' : `${n} attendees`;
  const where = rules.settings.domains.length > 0 ? rules.settings.domains.join(', ') : 'the practice';
  return `${who} outside ${where}, ${view.minutes} min`;
}

/** The decision for one live event, by the rules in order: the therapist's tag always wins. */
function yes(view: EventView, rules: Rules, client: ClientRef | null, reasons: string[]): Decision {
  // How many people the client unit is ("email:a@x+b@y" is two), without splitting the key.
  let people = client ? 1 : 0;
  if (client) for (let i = client.key.indexOf('+'); i !== -1; i = client.key.indexOf('+', i + 1)) people++;
  return rules.decision(true, reasons, typeOf(view, rules, people));
}

function no(rules: Rules, reason: string): Decision {
  return rules.decision(false, [reason], null);
}

export function recognise(view: EventView, rules: Rules, ctx: RecogniseContext, client: ClientRef | null): Decision {
  const e = view.event;

  const tag = e.tags[TAG_SESSION];
  if (tag === 'yes') return yes(view, rules, client, ['marked as a session by the therapist']);
  if (tag === 'no') return no(rules, 'marked as not a session by the therapist');

  const cal = ctx.calendar;
  if (cal.role === 'busy_only') return no(rules, `on calendar '${cal.name}', which counts only as busy time`);
  if (cal.role === 'ignored') return no(rules, `on calendar '${cal.name}', which is not watched`);
  if (view.allDay) return no(rules, 'an all-day event');

  const excluded = rules.exclude?.re.exec(view.titleCore);
  if (excluded) return no(rules, `title matches '${excluded[1]}' (not a session)`);

  if (cal.role === 'practice') return yes(view, rules, client, [`on practice calendar '${cal.name}'`]);

  const reasons: string[] = [];
  const included = rules.include?.re.exec(view.titleCore);
  if (included) reasons.push(`title matches '${included[1]}'`);
  const categories = e.colorId ? [...e.categories, `colour ${e.colorId}`] : e.categories;
  const category = categories.find((c) => rules.categories.has(c.toLowerCase()) || (c.startsWith('colour ') && rules.categories.has(c.slice(7))));
  if (category) reasons.push(category.startsWith('colour ') ? `${category}, a session colour` : `category '${category}'`);
  if (client?.kind === 'title') reasons.push(`title names a client ('${client.label}')`);
  if (reasons.length > 0) return yes(view, rules, client, reasons);

  const ext = rules.settings.detection.externalAttendees;
  if (ext.enabled && view.externals.length > 0 && view.externals.length <= ext.maxClients) {
    const described = describeExternals(view, rules);
    if (view.minutes < ext.minMinutes || view.minutes > ext.maxMinutes) {
      return no(rules, `${described}, outside ${ext.minMinutes}-${ext.maxMinutes} min`);
    }
    // An outside attendee and a session's length are not enough alone (a plumber, a webinar): some
    // second sign is needed.
    if (client && ctx.knownClients.has(client.key)) return yes(view, rules, client, [described, 'a known client']);
    const core = view.lowerCore.trim();
    if (core === '') return yes(view, rules, client, [described, 'untitled']);
    const named = view.externals.find((a) => {
      const name = a.name?.trim().toLowerCase();
      const local = a.email.slice(0, a.email.indexOf('@')).toLowerCase();
      return (name && name.length >= 3 && core.includes(name)) || (local.length >= 3 && core.includes(local));
    });
    if (named) return yes(view, rules, client, [described, 'the title names the attendee']);
    return no(rules, `${described}, but nothing else marks it as a session (title, calendar, known client)`);
  }
  return no(rules, 'no rule matched: not on a practice calendar, no session word in the title, no client invited');
}
