// A practice's settings compiled once into what recognition needs per event: regular expressions for
// title words and client templates, lower-cased marker lists, domain sets. Pure; no I/O.
import type { PracticeSettings } from '../config.js';
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
  return {
    settings,
    include: wordsRegex(settings.detection.include),
    exclude: wordsRegex(settings.detection.exclude),
    categories: new Set(settings.detection.categories.map((c) => c.toLowerCase())),
    domains: new Set(settings.domains),
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
    lateCancelMs: settings.lateCancelHours * 3_600_000,
    // A type is named in a title by its id or its name, as whole words ("Intakes" is not "intake").
    typeNames: settings.appointmentTypes.map((t) => ({ id: t.id, re: wordsRegex([t.id, t.name])!.re })),
  };
}
