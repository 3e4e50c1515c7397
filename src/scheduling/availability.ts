// A practice's settings as the slot finder's Availability: regular hours and flexible windows, dated
// exceptions, buffer, notice, horizon and caps, read in the therapist's zone; a window's modes, types
// and location as the practice set them. Pure.
import type { PracticeSettings } from '../config.js';
import type { Availability, WeeklyWindow } from './slots.js';

type SettingsWindow = PracticeSettings['regularHours'][number];

function windowOf(w: SettingsWindow, kind: 'regular' | 'flexible'): WeeklyWindow {
  return {
    days: w.days,
    start: w.start,
    end: w.end,
    kind,
    ...(w.modes ? { modes: w.modes } : {}),
    ...(w.types ? { types: w.types } : {}),
    ...(w.location !== undefined ? { location: w.location } : {}),
  };
}

export function availabilityOf(settings: PracticeSettings, zone: string): Availability {
  return {
    zone,
    windows: [
      ...settings.regularHours.map((w) => windowOf(w, 'regular')),
      ...settings.flexibleWindows.map((w) => windowOf(w, 'flexible')),
    ],
    exceptions: settings.availabilityExceptions.map((e) =>
      'closed' in e ? { date: e.date, closed: true as const } : { date: e.date, start: e.start, end: e.end, kind: e.flexible ? ('flexible' as const) : ('regular' as const) },
    ),
    bufferMinutes: settings.bufferMinutes,
    minNoticeHours: settings.minNoticeHours,
    horizonDays: settings.horizonDays,
    caps: settings.sessionCaps,
  };
}
