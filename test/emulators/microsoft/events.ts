// Event resources of the Microsoft emulator: validation of request bodies and rendering in the shape of event.md
// (properties, start/end dateTimeTimeZone, type singleInstance|occurrence|exception|seriesMaster) and delta items.
import crypto from 'node:crypto';
import type { DateTime } from 'luxon';
import * as E from './errors.js';
import { RecurrenceError, normalizeRecurrence, renderRecurrence, type Recurrence } from './recurrence.js';
import { formatOffset, formatTimestamp, parseLocal, renderDateTime, resolveZone, type OutputZone } from './timezones.js';

export type Json = Record<string, unknown>;
/** Who writes: the app through Graph, or the mailbox owner in Outlook (may set organizer, responses, isCancelled). */
export type Actor = 'api' | 'user';
export type EventType = 'singleInstance' | 'occurrence' | 'exception' | 'seriesMaster';

export interface Timing {
  /** Start and end, each in its own zone (resolved IANA zone of the name given). */
  start: DateTime;
  end: DateTime;
  /** The time zone names as the writer gave them (originalStartTimeZone / originalEndTimeZone). */
  startTz: string;
  endTz: string;
  isAllDay: boolean;
}

export interface ExtendedProperty {
  id: string;
  value: string;
}

export interface EventRecord {
  id: string;
  oid: string;
  calendarId: string;
  kind: 'singleInstance' | 'seriesMaster' | 'exception';
  /** Content properties; for an exception only the ones it overrides. */
  fields: Json;
  timing: Timing;
  created: DateTime;
  modified: DateTime;
  changeKey: string;
  iCalUId: string;
  /** Global sequence number of the last change of this item (delta tokens compare against it). */
  changeSeq: number;
  // series masters
  recurrence?: Recurrence;
  /** Last change that alters the generated occurrences (content, times, pattern); not an occurrence's cancellation. */
  seriesSeq: number;
  seriesChangeKey: string;
  /** Occurrence keys cancelled from the series → seq of the cancellation. */
  cancelled: Map<string, number>;
  /** Occurrence key → id of the exception that replaced it. */
  exceptions: Map<string, string>;
  // exceptions
  seriesMasterId?: string;
  originalStart?: DateTime;
  occurrenceKey?: string;
}

/** One item of a calendar as Graph shows it: a stored event or a generated occurrence of a series. */
export interface Instance {
  id: string;
  type: EventType;
  calendarId: string;
  record: EventRecord;
  master?: EventRecord;
  fields: Json;
  timing: Timing;
  changeKey: string;
  created: DateTime;
  modified: DateTime;
  iCalUId: string;
  /** Delta version: changes after a token's seq make the item reappear. */
  version: number;
  originalStart?: DateTime;
}

export const ENUMS: Readonly<Record<string, readonly string[]>> = {
  importance: ['low', 'normal', 'high'],
  sensitivity: ['normal', 'personal', 'private', 'confidential'],
  showAs: ['free', 'tentative', 'busy', 'oof', 'workingElsewhere', 'unknown'],
  onlineMeetingProvider: ['unknown', 'teamsForBusiness', 'skypeForBusiness', 'skypeForConsumer'],
  response: ['none', 'organizer', 'tentativelyAccepted', 'accepted', 'declined', 'notResponded'],
  attendeeType: ['required', 'optional', 'resource'],
  contentType: ['text', 'html'],
};

/** Properties an app may write (event.md; read-only ones are listed separately and ignored). */
const WRITABLE = new Set([
  'subject',
  'body',
  'start',
  'end',
  'isAllDay',
  'importance',
  'sensitivity',
  'showAs',
  'isReminderOn',
  'reminderMinutesBeforeStart',
  'responseRequested',
  'allowNewTimeProposals',
  'hideAttendees',
  'categories',
  'location',
  'locations',
  'attendees',
  'isOnlineMeeting',
  'onlineMeetingProvider',
  'recurrence',
  'transactionId',
  'singleValueExtendedProperties',
]);
/** What the mailbox owner can also set in Outlook (or an invitation carries). */
const USER_WRITABLE = new Set(['organizer', 'responseStatus', 'isCancelled']);
const READ_ONLY = new Set([
  'id',
  'changeKey',
  'createdDateTime',
  'lastModifiedDateTime',
  'iCalUId',
  'uid',
  'type',
  'seriesMasterId',
  'webLink',
  'bodyPreview',
  'isOrganizer',
  'originalStart',
  'originalStartTimeZone',
  'originalEndTimeZone',
  'onlineMeeting',
  'onlineMeetingUrl',
  'hasAttachments',
  'isDraft',
  'organizer',
  'responseStatus',
  'isCancelled',
  'occurrenceId',
]);

const NULL_TIME = '0001-01-01T00:00:00Z';
const ICAL_PREFIX = '040000008200E00074C5B7101A82E008';
const OCCURRENCE_PREFIX = 'AAMkOcc';

export function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

export function newEventId(): string {
  return `AAMkAG${crypto.randomBytes(36).toString('base64url')}AAA=`;
}

export function newChangeKey(): string {
  return crypto.randomBytes(16).toString('base64');
}

export function newICalUId(): string {
  return `${ICAL_PREFIX}00000000${crypto.randomBytes(28).toString('hex').toUpperCase()}`;
}

/** Occurrence keys: the original start in UTC, "20250304T230000Z". */
export function occurrenceKey(originalStart: DateTime): string {
  return originalStart.toUTC().toFormat("yyyyMMdd'T'HHmmss'Z'");
}

/** Occurrence ids carry their series and original start (opaque to clients, decodable here). */
export function occurrenceId(masterId: string, key: string): string {
  return `${OCCURRENCE_PREFIX}${Buffer.from(`${masterId}|${key}`).toString('base64url')}`;
}

export function parseOccurrenceId(id: string): { masterId: string; key: string } | undefined {
  if (!id.startsWith(OCCURRENCE_PREFIX)) return undefined;
  const decoded = Buffer.from(id.slice(OCCURRENCE_PREFIX.length), 'base64url').toString('utf8');
  const bar = decoded.lastIndexOf('|');
  if (bar < 0) return undefined;
  return { masterId: decoded.slice(0, bar), key: decoded.slice(bar + 1) };
}

/** An occurrence's iCalUId: the series' with the occurrence date in bytes 16-19, as Exchange writes it. */
export function occurrenceICalUId(seriesUid: string, originalStart: DateTime): string {
  const d = originalStart.toUTC();
  const hex = `${d.year.toString(16).padStart(4, '0')}${d.month.toString(16).padStart(2, '0')}${d.day.toString(16).padStart(2, '0')}`.toUpperCase();
  return `${seriesUid.slice(0, 32)}${hex}${seriesUid.slice(40)}`;
}

export function deriveChangeKey(a: string, b: string): string {
  return crypto.createHash('sha256').update(`${a}|${b}`).digest('base64').slice(0, 24);
}

function badEnum(value: unknown, type: string): E.GraphApiError {
  return E.badBody(`Cannot convert the literal '${String(value)}' to the expected type 'microsoft.graph.${type}'.`);
}

function enumValue(v: unknown, key: string, type = key): string {
  const allowed = ENUMS[key] ?? [];
  const hit = allowed.find((a) => typeof v === 'string' && a.toLowerCase() === v.toLowerCase());
  if (hit === undefined) throw badEnum(v, type);
  return hit;
}

function bool(v: unknown, key: string): boolean {
  if (typeof v !== 'boolean') throw E.badBody(`Cannot convert a value to target type 'Edm.Boolean' because of conflict between input format string/number and parameter 'IEEE754Compatible' false for property '${key}'.`);
  return v;
}

function emailAddress(v: unknown, where: string): { name: string; address: string } {
  if (!isObject(v) || !isObject(v['emailAddress'])) throw E.invalidRequest(`${where} must have an emailAddress.`);
  const ea = v['emailAddress'];
  const address = typeof ea['address'] === 'string' ? ea['address'] : '';
  if (address === '' || !address.includes('@')) throw E.invalidRequest(`${where} has an invalid email address: '${address}'.`);
  const name = typeof ea['name'] === 'string' && ea['name'] !== '' ? ea['name'] : address;
  return { name, address };
}

function location(v: unknown): Json {
  if (v === null) return emptyLocation();
  if (!isObject(v)) throw E.badBody('location must be an object.');
  const displayName = typeof v['displayName'] === 'string' ? v['displayName'] : '';
  if (displayName === '') return emptyLocation();
  const out: Json = {
    displayName,
    locationType: typeof v['locationType'] === 'string' ? v['locationType'] : 'default',
    uniqueId: typeof v['uniqueId'] === 'string' ? v['uniqueId'] : displayName,
    uniqueIdType: typeof v['uniqueIdType'] === 'string' ? v['uniqueIdType'] : 'private',
  };
  if (isObject(v['address'])) out['address'] = clone(v['address']);
  if (isObject(v['coordinates'])) out['coordinates'] = clone(v['coordinates']);
  return out;
}

export function emptyLocation(): Json {
  return { displayName: '', locationType: 'default', uniqueIdType: 'unknown', address: {}, coordinates: {} };
}

/**
 * The id formats of an extended property (extended-properties-overview.md, "id formats"): "{type} {guid} Name {name}",
 * "{type} {guid} Id {id}" and "{type} {proptag}", e.g. "String {8ECCC264-6880-4EBE-992F-8888D2EEAA1D} Name TestProperty",
 * "Integer {8ECCC264-6880-4EBE-992F-8888D2EEAA1D} Id 0x8012", "String 0x4001001E". Single-value types only (the
 * "…Array" types are multi-value). The GUID's braces are optional (public issue threads show GUIDs without them
 * accepted).
 */
const EXT_PROP_ID =
  /^(String|Integer|Boolean|SystemTime|ApplicationTime|Double|Binary|Currency|Short|Long|Float|Object|CLSID)\s+(?:(\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s+(?:(Name)\s+(\S.*)|(Id)\s+(0x[0-9a-f]{1,4}|\d{1,5}))|(0x[0-9a-f]{1,8}))$/i;

/**
 * The key that tells extended properties apart: the type, GUID and keywords without case; a string Name as written
 * ("Get singleValueLegacyExtendedProperty": "Filtering the string name (Name) in the id of an extended property is
 * case-sensitive"); numeric ids and tags by value. Undefined for an id in none of the formats.
 */
export function extPropKey(id: string): string | undefined {
  const m = EXT_PROP_ID.exec(id.trim());
  if (!m) return undefined;
  const type = m[1]!.toLowerCase();
  if (m[7] !== undefined) return `${type} tag ${Number.parseInt(m[7], 16)}`;
  const guid = m[2]!.replace(/[{}]/g, '').toLowerCase();
  if (m[3] !== undefined) return `${type} ${guid} name ${m[4]!}`;
  const num = m[6]!.toLowerCase().startsWith('0x') ? Number.parseInt(m[6]!, 16) : Number.parseInt(m[6]!, 10);
  return `${type} ${guid} id ${num}`;
}

/** The key of a valid id; a malformed one is Graph's 400 ErrorInvalidProperty. */
export function requireExtPropKey(id: unknown): string {
  const key = typeof id === 'string' ? extPropKey(id) : undefined;
  if (key === undefined) throw E.invalidPropertyId();
  return key;
}

/**
 * singleValueExtendedProperties of a POST/PATCH ("Create single-value extended property"): each creates the property,
 * or updates the one with the same id; properties not named are kept.
 */
function extendedProperties(v: unknown, existing: ExtendedProperty[]): ExtendedProperty[] {
  if (!Array.isArray(v)) throw E.badBody('singleValueExtendedProperties must be an array.');
  const out = existing.map((p) => ({ ...p }));
  for (const p of v) {
    if (!isObject(p)) throw E.invalidPropertyId();
    const key = requireExtPropKey(p['id']);
    const id = String(p['id']).trim();
    const value = p['value'] === null || p['value'] === undefined ? '' : String(p['value']);
    const at = out.findIndex((x) => extPropKey(x.id) === key);
    // The property keeps the id it was created with; only its value changes.
    if (at >= 0) out[at] = { id: out[at]!.id, value };
    else out.push({ id, value });
  }
  return out;
}

/** A start/end dateTimeTimeZone from a request: Windows or IANA timeZone, dateTime without (or with) an offset. */
function parseTime(v: unknown, which: 'start' | 'end'): { at: DateTime; tz: string } {
  if (!isObject(v)) throw E.invalidRequest(`Your request can't be completed. The ${which} time of the event must be specified.`);
  const tz = typeof v['timeZone'] === 'string' ? v['timeZone'] : '';
  const zone = resolveZone(tz);
  if (zone === undefined) {
    throw new E.GraphApiError(400, 'TimeZoneNotSupportedException', `A valid TimeZone value must be specified. The following TimeZone value is not supported: '${tz}'.`);
  }
  const dt = typeof v['dateTime'] === 'string' ? v['dateTime'] : '';
  const at = parseLocal(dt, zone);
  if (!at) throw E.badBody(`Cannot convert the literal '${dt}' to the expected type 'Edm.DateTime'.`);
  return { at, tz };
}

export interface ParsedWrite {
  /** Content fields to set (merged over the existing ones). */
  fields: Json;
  timing?: Timing;
  /** A new pattern, null to remove it, undefined when untouched. */
  recurrence?: Recurrence | null;
}

export interface WriteContext {
  actor: Actor;
  create: boolean;
  owner: { name: string; address: string };
  existingFields: Json;
  existingTiming?: Timing;
  allowRecurrence: boolean;
}

/** Validates a POST/PATCH body (or an Outlook edit) against event.md; throws GraphApiError 400 on bad input. */
export function parseWrite(body: Json, ctx: WriteContext): ParsedWrite {
  const fields: Json = {};
  const out: ParsedWrite = { fields };
  for (const key of Object.keys(body)) {
    if (key.startsWith('@odata.')) continue;
    if (WRITABLE.has(key) || (ctx.actor === 'user' && USER_WRITABLE.has(key))) continue;
    if (READ_ONLY.has(key)) continue;
    throw E.unknownProperty(key);
  }
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(body, k);
  if (has('subject')) fields['subject'] = body['subject'] === null ? '' : String(body['subject']);
  if (has('body')) {
    const b = body['body'];
    if (b !== null && !isObject(b)) throw E.badBody('body must be an itemBody.');
    const contentType = b && b['contentType'] !== undefined ? enumValue(b['contentType'], 'contentType', 'bodyType') : 'text';
    fields['body'] = { contentType, content: b && typeof b['content'] === 'string' ? b['content'] : '' };
  }
  for (const k of ['importance', 'sensitivity', 'showAs', 'onlineMeetingProvider'] as const) {
    if (has(k)) fields[k] = enumValue(body[k], k);
  }
  for (const k of ['isReminderOn', 'responseRequested', 'allowNewTimeProposals', 'hideAttendees', 'isOnlineMeeting'] as const) {
    if (has(k)) fields[k] = bool(body[k], k);
  }
  if (has('reminderMinutesBeforeStart')) {
    const n = body['reminderMinutesBeforeStart'];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw E.badBody(`Invalid reminderMinutesBeforeStart: ${String(n)}`);
    fields['reminderMinutesBeforeStart'] = n;
  }
  if (has('categories')) {
    const c = body['categories'];
    if (!Array.isArray(c) || c.some((x) => typeof x !== 'string')) throw E.badBody('categories must be an array of strings.');
    fields['categories'] = [...c];
  }
  if (has('locations')) {
    const l = body['locations'];
    if (!Array.isArray(l)) throw E.badBody('locations must be an array.');
    const locs = l.map(location).filter((x) => x['displayName'] !== '');
    fields['locations'] = locs;
    if (!has('location')) fields['location'] = locs[0] ? clone(locs[0]) : emptyLocation();
  }
  if (has('location')) {
    const loc = location(body['location']);
    fields['location'] = loc;
    if (!has('locations')) fields['locations'] = loc['displayName'] === '' ? [] : [clone(loc)];
  }
  if (has('attendees')) {
    const a = body['attendees'];
    if (!Array.isArray(a)) throw E.badBody('attendees must be an array.');
    fields['attendees'] = a.map((x, i) => {
      const ea = emailAddress(x, `attendees[${i}]`);
      const att = x as Json;
      const type = att['type'] === undefined ? 'required' : enumValue(att['type'], 'attendeeType', 'attendeeType');
      let status: Json = { response: 'none', time: NULL_TIME };
      if (ctx.actor === 'user' && isObject(att['status'])) {
        status = {
          response: enumValue(att['status']['response'] ?? 'none', 'response', 'responseType'),
          time: typeof att['status']['time'] === 'string' ? att['status']['time'] : NULL_TIME,
        };
      }
      return { type, status, emailAddress: ea };
    });
  }
  if (has('transactionId')) {
    if (!ctx.create) throw E.invalidRequest('transactionId cannot be changed after the event is created.');
    if (body['transactionId'] !== null) fields['transactionId'] = String(body['transactionId']);
  }
  if (has('singleValueExtendedProperties')) {
    const existing = Array.isArray(ctx.existingFields['singleValueExtendedProperties']) ? (ctx.existingFields['singleValueExtendedProperties'] as ExtendedProperty[]) : [];
    fields['singleValueExtendedProperties'] = extendedProperties(body['singleValueExtendedProperties'], existing);
  }
  if (ctx.actor === 'user') {
    if (has('organizer')) {
      const org = emailAddress(body['organizer'], 'organizer');
      fields['organizer'] = { emailAddress: org };
      fields['isOrganizer'] = org.address.toLowerCase() === ctx.owner.address.toLowerCase();
    }
    if (has('responseStatus') && isObject(body['responseStatus'])) {
      const rs = body['responseStatus'];
      fields['responseStatus'] = { response: enumValue(rs['response'] ?? 'none', 'response', 'responseType'), time: typeof rs['time'] === 'string' ? rs['time'] : NULL_TIME };
    }
    if (has('isCancelled')) fields['isCancelled'] = bool(body['isCancelled'], 'isCancelled');
  }
  // Online meeting: once on, it stays on (event.md isOnlineMeeting / onlineMeetingProvider).
  const wasOnline = ctx.existingFields['isOnlineMeeting'] === true;
  if (wasOnline) {
    delete fields['isOnlineMeeting'];
    delete fields['onlineMeetingProvider'];
  } else if (fields['isOnlineMeeting'] === true || (fields['onlineMeetingProvider'] !== undefined && fields['onlineMeetingProvider'] !== 'unknown')) {
    fields['isOnlineMeeting'] = true;
    if (fields['onlineMeetingProvider'] === undefined || fields['onlineMeetingProvider'] === 'unknown') fields['onlineMeetingProvider'] = 'teamsForBusiness';
    const thread = crypto.randomBytes(24).toString('base64url');
    fields['onlineMeeting'] = { joinUrl: `https://teams.microsoft.com/l/meetup-join/19%3ameeting_${thread}%40thread.v2/0?context=%7b%22Tid%22%3a%22emulator%22%7d` };
  }

  // Times.
  const touchesTime = has('start') || has('end') || has('isAllDay');
  if (ctx.create && (!has('start') || !has('end'))) throw E.invalidRequest("Your request can't be completed. The start and end of the event must be specified.");
  if (touchesTime) {
    const prev = ctx.existingTiming;
    const s = has('start') ? parseTime(body['start'], 'start') : prev ? { at: prev.start, tz: prev.startTz } : undefined;
    const e = has('end') ? parseTime(body['end'], 'end') : prev ? { at: prev.end, tz: prev.endTz } : undefined;
    if (!s || !e) throw E.invalidRequest("Your request can't be completed. The start and end of the event must be specified.");
    const isAllDay = has('isAllDay') ? bool(body['isAllDay'], 'isAllDay') : (prev?.isAllDay ?? false);
    if (isAllDay) {
      const midnight = (d: DateTime): boolean => d.hour === 0 && d.minute === 0 && d.second === 0 && d.millisecond === 0;
      if (!midnight(s.at) || !midnight(e.at)) {
        throw E.invalidRequest("Your request can't be completed. If the event is an all-day event, the start and end time must be set to midnight.");
      }
      if (e.at.toISODate()! <= s.at.toISODate()!) throw E.invalidRequest("Your request can't be completed. An all-day event must last at least one day.");
    }
    if (e.at.toMillis() < s.at.toMillis()) throw E.invalidRequest("Your request can't be completed. The end time of the event must be later than its start time.");
    out.timing = { start: s.at, end: e.at, startTz: s.tz, endTz: e.tz, isAllDay };
  }

  if (has('recurrence')) {
    if (!ctx.allowRecurrence) throw E.invalidRequest("Your request can't be completed. An occurrence or exception of a series cannot have a recurrence.");
    if (body['recurrence'] === null) out.recurrence = null;
    else {
      const timing = out.timing ?? ctx.existingTiming;
      if (!timing) throw E.invalidRequest("Your request can't be completed. The start and end of the event must be specified.");
      try {
        out.recurrence = normalizeRecurrence(body['recurrence'], timing.start, timing.startTz);
      } catch (err) {
        if (err instanceof RecurrenceError) throw E.invalidRequest(err.message);
        throw err;
      }
    }
  }
  return out;
}

/** The content properties of a new event before the request's own values are applied. */
export function defaultFields(owner: { name: string; address: string }): Json {
  return {
    subject: '',
    body: { contentType: 'html', content: '' },
    importance: 'normal',
    sensitivity: 'normal',
    showAs: 'busy',
    isReminderOn: true,
    reminderMinutesBeforeStart: 15,
    responseRequested: true,
    allowNewTimeProposals: true,
    hideAttendees: false,
    categories: [],
    location: emptyLocation(),
    locations: [],
    attendees: [],
    organizer: { emailAddress: { ...owner } },
    isOrganizer: true,
    responseStatus: { response: 'organizer', time: NULL_TIME },
    isOnlineMeeting: false,
    onlineMeetingProvider: 'unknown',
    onlineMeeting: null,
    isCancelled: false,
    singleValueExtendedProperties: [],
  };
}

export function bodyPreview(body: unknown): string {
  if (!isObject(body) || typeof body['content'] !== 'string') return '';
  const text = body['contentType'] === 'html' ? body['content'].replace(/<style[\s\S]*?<\/style>|<script[\s\S]*?<\/script>/gi, '').replace(/<[^>]*>/g, ' ') : body['content'];
  return text
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 255);
}

export function webLink(id: string): string {
  return `https://outlook.office365.com/owa/?itemid=${encodeURIComponent(id)}&exvsurl=1&path=/calendar/item`;
}

export interface RenderOptions {
  out: OutputZone;
  /** `$expand=singleValueExtendedProperties($filter=id eq '…')`: the ids asked for (valid ones: extPropKey). */
  extPropIds?: string[];
  /** Delta items carry "@odata.type" first (delta-query-events.md). */
  odataType?: boolean;
  /** POST/PATCH answers: start and end in the event's own zones (as written) instead of `out`. */
  ownZones?: boolean;
}

function allDayDate(t: DateTime, isAllDay: boolean): string | undefined {
  return isAllDay ? (t.toISODate() ?? undefined) : undefined;
}

/** The full event resource (event.md): every property, times in UTC or the preferred zone. */
export function renderEvent(inst: Instance, opts: RenderOptions): Json {
  const f = inst.fields;
  const t = inst.timing;
  const o: Json = {};
  if (opts.odataType) o['@odata.type'] = '#microsoft.graph.event';
  o['@odata.etag'] = `W/"${inst.changeKey}"`;
  o['id'] = inst.id;
  o['createdDateTime'] = formatTimestamp(inst.created);
  o['lastModifiedDateTime'] = formatTimestamp(inst.modified);
  o['changeKey'] = inst.changeKey;
  o['categories'] = clone(f['categories'] ?? []);
  if (typeof f['transactionId'] === 'string') o['transactionId'] = f['transactionId'];
  o['originalStartTimeZone'] = t.startTz;
  o['originalEndTimeZone'] = t.endTz;
  o['iCalUId'] = inst.iCalUId;
  o['reminderMinutesBeforeStart'] = f['reminderMinutesBeforeStart'];
  o['isReminderOn'] = f['isReminderOn'];
  o['hasAttachments'] = false;
  o['subject'] = f['subject'];
  o['bodyPreview'] = bodyPreview(f['body']);
  o['importance'] = f['importance'];
  o['sensitivity'] = f['sensitivity'];
  o['isAllDay'] = t.isAllDay;
  o['isCancelled'] = f['isCancelled'];
  o['isOrganizer'] = f['isOrganizer'];
  o['responseRequested'] = f['responseRequested'];
  o['seriesMasterId'] = inst.type === 'occurrence' || inst.type === 'exception' ? (inst.master?.id ?? null) : null;
  o['showAs'] = f['showAs'];
  o['type'] = inst.type;
  o['webLink'] = webLink(inst.id);
  o['onlineMeetingUrl'] = null;
  o['isOnlineMeeting'] = f['isOnlineMeeting'];
  o['onlineMeetingProvider'] = f['onlineMeetingProvider'];
  o['allowNewTimeProposals'] = f['allowNewTimeProposals'];
  o['isDraft'] = false;
  o['hideAttendees'] = f['hideAttendees'];
  if (inst.originalStart) o['originalStart'] = formatOffset(inst.originalStart);
  o['responseStatus'] = clone(f['responseStatus']);
  o['body'] = clone(f['body']);
  const startOut = opts.ownZones ? { label: t.startTz, zone: t.start.zoneName ?? 'UTC' } : opts.out;
  const endOut = opts.ownZones ? { label: t.endTz, zone: t.end.zoneName ?? 'UTC' } : opts.out;
  o['start'] = renderDateTime(t.start, startOut, allDayDate(t.start, t.isAllDay));
  o['end'] = renderDateTime(t.end, endOut, allDayDate(t.end, t.isAllDay));
  o['location'] = clone(f['location']);
  o['locations'] = clone(f['locations']);
  o['recurrence'] = inst.type === 'seriesMaster' && inst.record.recurrence ? renderRecurrence(inst.record.recurrence) : null;
  o['attendees'] = clone(f['attendees']);
  o['organizer'] = clone(f['organizer']);
  o['onlineMeeting'] = clone(f['onlineMeeting'] ?? null);
  if (opts.extPropIds !== undefined) {
    const wanted = new Set(opts.extPropIds.map((x) => extPropKey(x)));
    const props = ((f['singleValueExtendedProperties'] as ExtendedProperty[] | undefined) ?? []).filter((p) => wanted.has(extPropKey(p.id)));
    if (props.length > 0) o['singleValueExtendedProperties'] = props.map((p) => ({ id: p.id, value: p.value }));
  }
  return o;
}

/** An occurrence in calendarView delta: only id, seriesMasterId, type, start, end (API-NOTES: what real Graph sends). */
export function renderStub(inst: Instance, opts: RenderOptions): Json {
  const t = inst.timing;
  return {
    '@odata.type': '#microsoft.graph.event',
    id: inst.id,
    seriesMasterId: inst.master?.id ?? null,
    type: inst.type,
    start: renderDateTime(t.start, opts.out, allDayDate(t.start, t.isAllDay)),
    end: renderDateTime(t.end, opts.out, allDayDate(t.end, t.isAllDay)),
  };
}

/** A deletion in delta (delta-query-events.md, "The next round: sample first response"). */
export function removedItem(id: string): Json {
  return { '@odata.type': '#microsoft.graph.event', id, '@removed': { reason: 'deleted' } };
}

/**
 * What an update can change, as a stable string: content fields (extended properties included), times and pattern.
 * Two equal snapshots mean a write changed nothing (no meeting update would go out for it).
 */
export function contentSnapshot(inst: Instance): string {
  const t = inst.timing;
  return stableJson({
    fields: inst.fields,
    timing: [t.start.toMillis(), t.end.toMillis(), t.startTz, t.endTz, t.isAllDay],
    recurrence: inst.type === 'seriesMaster' ? (inst.record.recurrence ?? null) : null,
  });
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Json;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** `$select`: keeps @odata.* annotations and id, then the named properties (case-insensitive). */
export function project(item: Json, select: string[] | undefined): Json {
  if (select === undefined || select.length === 0) return item;
  const wanted = new Set(select.map((s) => s.toLowerCase()));
  const out: Json = {};
  for (const [k, v] of Object.entries(item)) {
    if (k.startsWith('@odata.') || k === 'id' || wanted.has(k.toLowerCase()) || k === 'singleValueExtendedProperties') out[k] = v;
  }
  return out;
}
