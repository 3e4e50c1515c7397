// A practice's settings as the slot finder's Availability: regular hours and flexible windows, dated
// exceptions, buffer, notice, horizon and caps, read in the therapist's zone. Pure.
import type { PracticeSettings } from '../config.js';
import type { Availability } from './slots.js';

export function availabilityOf(settings: PracticeSettings, zone: string): Availability {
  return {
    zone,
    windows: [
      ...settings.regularHours.map((w) => ({ days: w.days, start: w.start, end: w.end, kind: 'regular' as const })),
      ...settings.flexibleWindows.map((w) => ({ days: w.days, start: w.start, end: w.end, kind: 'flexible' as const })),
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
