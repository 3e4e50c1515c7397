// A practice's settings compiled once into what recognition needs per event: regular expressions for
// title words and client templates, lower-cased marker lists, domain sets. Pure; no I/O.
import type { PracticeSettings } from '../config.js';
import { normaliseEmail } from './identity.js';
import type { CalendarRole } from '../store/schema.js';

export interface CalendarInfo {
  role: CalendarRole;
  name: string;
  /** The calendar's zone: all-day and floating times are read in it. */
  timeZone: string;
}

export interface Marker {
  prefixes: string[]; // lower-cased
  categories: Set<string>; // lower-cased
}

export interface Rules {
  settings: PracticeSettings;
  include: { re: RegExp; words: string[] } | null;
  exclude: { re: RegExp; words: string[] } | null;
  categories: Set<string>;
  domains: Set<string>;
  templates: { re: RegExp; template: string }[];
  markers: { noShow: Marker; clientCancelled: Marker; therapistCancelled: Marker; cancelled: Marker; attended: Marker };
  /** The markers in the order they are tried, with the mark each gives. */
  markerList: readonly (readonly ['no_show' | 'client_cancelled' | 'therapist_cancelled' | 'cancelled' | 'attended', Marker])[];
  /** Reason texts are few and repeat: made once each. */
  reason(text: string): string;
  /**
   * Decisions repeat too (the same reasons, the same type): one shared, frozen object for each, so
   * a ledger of many events does not hold many copies.
   */
  decision(appointment: boolean, reasons: readonly string[], type: string | null): Readonly<{ appointment: boolean; reasons: readonly string[]; type: string | null }>;
  /** Client references by key and label, shared likewise. */
  clientRef(key: string, kind: 'email' | 'title', label: string): Readonly<{ key: string; kind: 'email' | 'title'; label: string }>;
  /** Normalised emails, remembered (a practice has few clients and sees them often). */
  email(raw: string): string | undefined;
  /** Whether an attendee's address is outside the practice (not a colleague, not a room): remembered. */
  outside(email: string): boolean;
  /** Matches a title (lower-cased) that starts with any marker's prefix: most titles do not. */
  anyMarkerPrefix: RegExp | null;
  lateCancelMs: number;
  /** Appointment types with lower-cased names, to find one named in a title. */
  typeNames: readonly { id: string; re: RegExp }[];
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** One regex for a list of words or phrases, matched as whole words in any case. */
function wordsRegex(words: readonly string[]): { re: RegExp; words: string[] } | null {
  if (words.length === 0) return null;
  const alternatives = words.map((w) => escape(w.toLowerCase()).replace(/\s+/g, '\\s+'));
  return { re: new RegExp(`(?<![\\p{L}\\p{N}])(${alternatives.join('|')})(?![\\p{L}\\p{N}])`, 'iu'), words: [...words] };
}

function marker(m: { prefixes: string[]; categories: string[] }): Marker {
  return { prefixes: m.prefixes.map((p) => p.toLowerCase()), categories: new Set(m.categories.map((c) => c.toLowerCase())) };
}

export function compileRules(settings: PracticeSettings): Rules {
  const markers = {
    noShow: marker(settings.markers.noShow),
    clientCancelled: marker(settings.markers.clientCancelled),
    therapistCancelled: marker(settings.markers.therapistCancelled),
    cancelled: marker(settings.markers.cancelled),
    attended: marker(settings.markers.attended),
  };
  const reasons = new Map<string, string>();
  const domains = new Set(settings.domains);
  const decisions = new Map<string, Readonly<{ appointment: boolean; reasons: readonly string[]; type: string | null }>>();
  const clients = new Map<string, Readonly<{ key: string; kind: 'email' | 'title'; label: string }>>();
  const emails = new Map<string, string | undefined>();
  const outsiders = new Map<string, boolean>();
  const allPrefixes = Object.values(settings.markers).flatMap((m) => m.prefixes.map((p) => escape(p.toLowerCase())));
  // The caches stop growing at a size no practice reaches; past it, values are made each time.
  const LIMIT = 50_000;
  return {
    settings,
    include: wordsRegex(settings.detection.include),
    exclude: wordsRegex(settings.detection.exclude),
    categories: new Set(settings.detection.categories.map((c) => c.toLowerCase())),
    domains,
    templates: settings.clientTitleTemplates.map((template) => {
      const [before, after] = template.split('{client}') as [string, string];
      const part = (s: string) => escape(s.trim()).replace(/\s+/g, '\\s+');
      const pattern = `^\\s*${part(before)}\\s*(.+?)\\s*${part(after)}\\s*$`;
      return { re: new RegExp(pattern, 'iu'), template };
    }),
    markers,
    markerList: [
      ['no_show', markers.noShow],
      ['client_cancelled', markers.clientCancelled],
      ['therapist_cancelled', markers.therapistCancelled],
      ['cancelled', markers.cancelled],
      ['attended', markers.attended],
    ],
    reason(text: string): string {
      const known = reasons.get(text);
      if (known !== undefined) return known;
      if (reasons.size < 10_000) reasons.set(text, text);
      return text;
    },
    decision(appointment, list, type) {
      const k = `${appointment ? 1 : 0}\u0000${type ?? ''}\u0000${list.join('\u0000')}`;
      let d = decisions.get(k);
      if (!d) {
        d = Object.freeze({ appointment, reasons: Object.freeze([...list]), type });
        if (decisions.size < LIMIT) decisions.set(k, d);
      }
      return d;
    },
    clientRef(key, kind, label) {
      const k = `${key}\u0000${label}`;
      let c = clients.get(k);
      if (!c) {
        c = Object.freeze({ key, kind, label });
        if (clients.size < LIMIT) clients.set(k, c);
      }
      return c;
    },
    outside(email) {
      let known = outsiders.get(email);
      if (known === undefined) {
        const lower = email.toLowerCase();
        const domain = lower.slice(lower.lastIndexOf('@') + 1);
        // Google's room and group calendars are attendees too; they are never clients.
        known = !lower.endsWith('resource.calendar.google.com') && !lower.endsWith('group.calendar.google.com') && !domains.has(domain);
        if (outsiders.size < LIMIT) outsiders.set(email, known);
      }
      return known;
    },
    anyMarkerPrefix: allPrefixes.length > 0 ? new RegExp(`^(?:${allPrefixes.join('|')})`) : null,
    email(raw) {
      if (emails.has(raw)) return emails.get(raw);
      const e = normaliseEmail(raw);
      if (emails.size < LIMIT) emails.set(raw, e);
      return e;
    },
    lateCancelMs: settings.lateCancelHours * 3_600_000,
    // A type is named in a title by its id or its name, as whole words ("Intakes" is not "intake").
    typeNames: settings.appointmentTypes.map((t) => ({ id: t.id, re: wordsRegex([t.id, t.name])!.re })),
  };
}
