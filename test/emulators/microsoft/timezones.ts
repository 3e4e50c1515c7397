// Graph's dateTimeTimeZone {dateTime (no offset), timeZone (Windows or IANA name)} for the Microsoft emulator:
// parsing request times, rendering response times in UTC or the `Prefer: outlook.timezone` zone (event.md start/end).
import { DateTime, IANAZone } from 'luxon';

/** Windows time zone ids → IANA (CLDR windowsZones.xml, territory 001), the ones a practice is likely to meet. */
export const WINDOWS_TO_IANA: Readonly<Record<string, string>> = {
  'Dateline Standard Time': 'Etc/GMT+12',
  'UTC-11': 'Etc/GMT+11',
  'Hawaiian Standard Time': 'Pacific/Honolulu',
  'Alaskan Standard Time': 'America/Anchorage',
  'Pacific Standard Time (Mexico)': 'America/Tijuana',
  'Pacific Standard Time': 'America/Los_Angeles',
  'US Mountain Standard Time': 'America/Phoenix',
  'Mountain Standard Time (Mexico)': 'America/Mazatlan',
  'Mountain Standard Time': 'America/Denver',
  'Central America Standard Time': 'America/Guatemala',
  'Central Standard Time': 'America/Chicago',
  'Central Standard Time (Mexico)': 'America/Mexico_City',
  'Canada Central Standard Time': 'America/Regina',
  'SA Pacific Standard Time': 'America/Bogota',
  'Eastern Standard Time': 'America/New_York',
  'Eastern Standard Time (Mexico)': 'America/Cancun',
  'US Eastern Standard Time': 'America/Indiana/Indianapolis',
  'Venezuela Standard Time': 'America/Caracas',
  'Atlantic Standard Time': 'America/Halifax',
  'SA Western Standard Time': 'America/La_Paz',
  'Pacific SA Standard Time': 'America/Santiago',
  'Newfoundland Standard Time': 'America/St_Johns',
  'E. South America Standard Time': 'America/Sao_Paulo',
  'Argentina Standard Time': 'America/Argentina/Buenos_Aires',
  'Greenland Standard Time': 'America/Nuuk',
  'UTC-02': 'Etc/GMT+2',
  'Azores Standard Time': 'Atlantic/Azores',
  'Cape Verde Standard Time': 'Atlantic/Cape_Verde',
  UTC: 'UTC',
  'GMT Standard Time': 'Europe/London',
  'Greenwich Standard Time': 'Atlantic/Reykjavik',
  'Morocco Standard Time': 'Africa/Casablanca',
  'W. Europe Standard Time': 'Europe/Berlin',
  'Central Europe Standard Time': 'Europe/Budapest',
  'Romance Standard Time': 'Europe/Paris',
  'Central European Standard Time': 'Europe/Warsaw',
  'W. Central Africa Standard Time': 'Africa/Lagos',
  'GTB Standard Time': 'Europe/Bucharest',
  'Middle East Standard Time': 'Asia/Beirut',
  'Egypt Standard Time': 'Africa/Cairo',
  'E. Europe Standard Time': 'Europe/Chisinau',
  'South Africa Standard Time': 'Africa/Johannesburg',
  'FLE Standard Time': 'Europe/Kyiv',
  'Israel Standard Time': 'Asia/Jerusalem',
  'Jordan Standard Time': 'Asia/Amman',
  'Turkey Standard Time': 'Europe/Istanbul',
  'Arabic Standard Time': 'Asia/Baghdad',
  'Arab Standard Time': 'Asia/Riyadh',
  'Russian Standard Time': 'Europe/Moscow',
  'E. Africa Standard Time': 'Africa/Nairobi',
  'Iran Standard Time': 'Asia/Tehran',
  'Arabian Standard Time': 'Asia/Dubai',
  'Afghanistan Standard Time': 'Asia/Kabul',
  'Pakistan Standard Time': 'Asia/Karachi',
  'West Asia Standard Time': 'Asia/Tashkent',
  'India Standard Time': 'Asia/Kolkata',
  'Sri Lanka Standard Time': 'Asia/Colombo',
  'Nepal Standard Time': 'Asia/Kathmandu',
  'Central Asia Standard Time': 'Asia/Almaty',
  'Bangladesh Standard Time': 'Asia/Dhaka',
  'Myanmar Standard Time': 'Asia/Yangon',
  'SE Asia Standard Time': 'Asia/Bangkok',
  'China Standard Time': 'Asia/Shanghai',
  'Singapore Standard Time': 'Asia/Singapore',
  'W. Australia Standard Time': 'Australia/Perth',
  'Taipei Standard Time': 'Asia/Taipei',
  'Tokyo Standard Time': 'Asia/Tokyo',
  'Korea Standard Time': 'Asia/Seoul',
  'Cen. Australia Standard Time': 'Australia/Adelaide',
  'AUS Central Standard Time': 'Australia/Darwin',
  'E. Australia Standard Time': 'Australia/Brisbane',
  'AUS Eastern Standard Time': 'Australia/Sydney',
  'West Pacific Standard Time': 'Pacific/Port_Moresby',
  'Tasmania Standard Time': 'Australia/Hobart',
  'New Zealand Standard Time': 'Pacific/Auckland',
  'Fiji Standard Time': 'Pacific/Fiji',
  'Tonga Standard Time': 'Pacific/Tongatapu',
  'Samoa Standard Time': 'Pacific/Apia',
};

const IANA_TO_WINDOWS: ReadonlyMap<string, string> = new Map(
  Object.entries(WINDOWS_TO_IANA)
    .filter(([w]) => w !== 'UTC')
    .map(([w, iana]) => [iana, w] as const),
);

const WINDOWS_LOWER: ReadonlyMap<string, string> = new Map(Object.entries(WINDOWS_TO_IANA).map(([w, iana]) => [w.toLowerCase(), iana] as const));

/** The IANA zone for a Windows or IANA name ("Pacific Standard Time", "America/Los_Angeles", "UTC"); undefined if unknown. */
export function resolveZone(name: string): string | undefined {
  const trimmed = name.trim();
  if (trimmed === '') return undefined;
  const win = WINDOWS_LOWER.get(trimmed.toLowerCase());
  if (win !== undefined) return win;
  if (/^(utc|gmt|etc\/utc|z)$/i.test(trimmed)) return 'UTC';
  return IANAZone.isValidZone(trimmed) ? trimmed : undefined;
}

/** The Windows name of an IANA zone (for workingHours), else the name itself. */
export function windowsName(zone: string): string {
  if (WINDOWS_LOWER.has(zone.toLowerCase())) return zone;
  if (zone === 'UTC' || zone === 'Etc/UTC') return 'UTC';
  return IANA_TO_WINDOWS.get(zone) ?? zone;
}

const LOCAL = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$/;
const WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** Parses an ISO 8601 local date-time (Graph writes 7 fractional digits) in `zone`, or one with its own offset. */
export function parseLocal(dateTime: string, zone: string): DateTime | undefined {
  if (WITH_OFFSET.test(dateTime)) {
    const d = DateTime.fromISO(dateTime.replace(/(\.\d{3})\d+/, '$1'), { setZone: true });
    return d.isValid ? d.setZone(zone) : undefined;
  }
  const m = LOCAL.exec(dateTime);
  if (!m) return undefined;
  const frac = (m[5] ?? '').padEnd(3, '0').slice(0, 3);
  const d = DateTime.fromISO(`${m[1]}T${m[2]}:${m[3]}:${m[4] ?? '00'}.${frac === '' ? '000' : frac}`, { zone });
  return d.isValid ? d : undefined;
}

/** A query-string instant (startDateTime/endDateTime): with offset, or local time taken as UTC. */
export function parseQueryInstant(value: string): DateTime | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const d = DateTime.fromISO(value, { zone: 'utc' });
    return d.isValid ? d : undefined;
  }
  return parseLocal(value, 'UTC')?.toUTC();
}

/** Graph's rendering of a local time: "2016-12-09T20:30:00.0000000" (no offset, 7 fractional digits). */
export function formatLocal(at: DateTime): string {
  return `${at.toFormat("yyyy-MM-dd'T'HH:mm:ss")}.${String(at.millisecond).padStart(3, '0')}0000`;
}

/** createdDateTime / lastModifiedDateTime: UTC with 7 fractional digits and Z, as Graph returns them. */
export function formatTimestamp(at: DateTime): string {
  return `${formatLocal(at.toUTC())}Z`;
}

/** originalStart and similar DateTimeOffset values: "2025-03-04T23:00:00Z". */
export function formatOffset(at: DateTime): string {
  return at.toUTC().toISO({ suppressMilliseconds: true }) ?? '';
}

/** The zone responses are rendered in: the Prefer outlook.timezone value (label as given) or UTC. */
export interface OutputZone {
  label: string;
  zone: string;
}

export const UTC_OUTPUT: OutputZone = { label: 'UTC', zone: 'UTC' };

/** Renders an event time: all-day times are floating dates (midnight labelled with the output zone). */
export function renderDateTime(at: DateTime, out: OutputZone, allDayDate?: string): { dateTime: string; timeZone: string } {
  if (allDayDate !== undefined) return { dateTime: `${allDayDate}T00:00:00.0000000`, timeZone: out.label };
  return { dateTime: formatLocal(at.setZone(out.zone)), timeZone: out.label };
}
