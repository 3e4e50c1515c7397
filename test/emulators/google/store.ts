// The calendars and events behind the Google emulator: writes, recurrence instances, the change log that
// sync tokens read, and events.list (discovery document events.list parameters; google-examples.md A, B2, C).
import crypto from 'node:crypto';
import { DateTime } from 'luxon';
import type { Clock } from '../../../src/clock.js';
import { asEventDateTime, formatTimestamp, isValidZone, parseRfc3339, renderTime, resolveTime, type EventDateTime, type ResolvedTime } from './datetime.js';
import * as E from './errors.js';
import {
  OWNER_KEYS,
  RESPONSE_STATUSES,
  SYSTEM_KEYS,
  clone,
  createConference,
  generateEventId,
  htmlLink,
  isObject,
  isValidEventId,
  mergePatch,
  orderAttendee,
  orderEvent,
  str,
  tombstone,
  type Json,
} from './events.js';
import { INSTANCE_KEY, RecurrenceError, expandRecurrence, instanceKey, isBounded, parseRecurrence } from './recurrence.js';

export type AccessRole = 'owner' | 'writer' | 'reader' | 'freeBusyReader';

export interface CalendarEntry {
  calendarId: string;
  accessRole: AccessRole;
  primary: boolean;
  backgroundColor: string;
  etag: string;
}

interface RemovedInstance {
  seq: number;
  key: string;
  id: string;
  originalStartTime: EventDateTime;
  startMs: number;
}

interface EventRecord {
  id: string;
  data: Json;
  /** Global sequence number of the last change of this record (what sync tokens compare against). */
  changeSeq: number;
  /** Masters: last change that affects the instances (edits of the master itself, not of one instance). */
  seriesSeq: number;
  /** Masters: etag the generated instances carry. */
  instanceEtag: string;
  /** Masters: instances that left the series (UNTIL truncation, EXDATE, deletion), for incremental singleEvents sync. */
  removed: RemovedInstance[];
}

export interface Calendar {
  id: string;
  summary: string;
  timeZone: string;
  description: string;
  /** Email of the account that owns the calendar: attendees/organizer with it are `self`. */
  ownerEmail: string | undefined;
  /** Set when the calendar is the primary calendar of ownerEmail. */
  primary: boolean;
  events: Map<string, EventRecord>;
  updated: string;
  lastChangeSeq: number;
}

/** Who writes: an API caller (read-only fields ignored, id rules enforced) or the user in the Calendar UI. */
export interface Actor {
  origin: 'api' | 'user';
  email: string | undefined;
  conferenceDataVersion: number;
}

export const USER_ACTOR: Actor = { origin: 'user', email: undefined, conferenceDataVersion: 1 };

interface Series {
  starts: DateTime[];
  allDay: boolean;
  zone: string;
  startTz: string | undefined;
  endTz: string | undefined;
  durationMs: number;
  durationDays: number;
  bounded: boolean;
}

interface Item {
  json: Json;
  /** Data the filters look at (for generated instances: the master's fields with the instance's times). */
  src: Json;
  order: number;
  startMs: number;
  endMs: number;
  updatedMs: number;
  cancelled: boolean;
}

interface ListParams {
  syncToken: string | undefined;
  pageToken: string | undefined;
  maxResults: number;
  showDeleted: boolean;
  singleEvents: boolean;
  timeMin: DateTime | undefined;
  timeMax: DateTime | undefined;
  updatedMin: DateTime | undefined;
  orderBy: 'startTime' | 'updated' | undefined;
  q: string | undefined;
  iCalUID: string | undefined;
  privateExt: string[];
  sharedExt: string[];
  eventTypes: string[];
  maxAttendees: number | undefined;
  timeZone: string | undefined;
  fingerprint: string;
}

interface Listing {
  calendarId: string;
  fingerprint: string;
  items: Json[];
  syncSeq: number | undefined;
}

export type Query = Record<string, string | string[]>;

/** Parameters that may not be combined with syncToken (discovery document, events.list syncToken). */
const NOT_WITH_SYNC_TOKEN = ['iCalUID', 'orderBy', 'privateExtendedProperty', 'q', 'sharedExtendedProperty', 'timeMin', 'timeMax', 'updatedMin'];

const DEFAULT_MAX_RESULTS = 250;
const MAX_RESULTS_CAP = 2500;

function one(q: Query, k: string): string | undefined {
  const v = q[k];
  return Array.isArray(v) ? v[0] : v;
}

function many(q: Query, k: string): string[] {
  const v = q[k];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function bool(q: Query, k: string): boolean {
  const v = one(q, k);
  if (v === undefined) return false;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw E.invalid(`Invalid boolean value for ${k}: ${v}`);
}

function int(q: Query, k: string, min: number): number | undefined {
  const v = one(q, k);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw E.invalid(`Invalid value for ${k}: ${v}`);
  const n = Number.parseInt(v, 10);
  if (n < min) throw E.invalid(`Invalid value for ${k}: ${v}`);
  return n;
}

function time(q: Query, k: string): DateTime | undefined {
  const v = one(q, k);
  if (v === undefined) return undefined;
  const d = parseRfc3339(v);
  if (!d) throw E.invalid(`Bad Request: ${k} must be an RFC3339 timestamp with a time zone offset`, 'badRequest');
  return d;
}

function randomToken(): string {
  return crypto.randomBytes(21).toString('base64');
}

/**
 * Event.reminders as the discovery document describes it: overrides of method "email" or "popup" with minutes
 * "between 0 and 40320 (4 weeks in minutes)", "The maximum number of override reminders is 5". More than 5, or
 * useDefault true with overrides, are refused with the reasons integrations record from Google
 * (errors.ts); a bad method or minutes value is refused as invalid (the emulator's choice: Google may clamp).
 */
function checkReminders(r: unknown): void {
  if (!isObject(r)) throw E.invalid('Invalid value for reminders.');
  if (r['useDefault'] !== undefined && typeof r['useDefault'] !== 'boolean') throw E.invalid('Invalid value for reminders.useDefault.');
  const overrides = r['overrides'];
  if (overrides === undefined) return;
  if (!Array.isArray(overrides)) throw E.invalid('Invalid value for reminders.overrides.');
  if (overrides.length > 5) throw E.tooManyReminders();
  if (r['useDefault'] === true && overrides.length > 0) throw E.defaultRemindersWithOverrides();
  for (const o of overrides) {
    if (!isObject(o) || (o['method'] !== 'popup' && o['method'] !== 'email')) throw E.invalid('Invalid reminder method value.');
    const m = o['minutes'];
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 0 || m > 40320) throw E.invalid('Invalid reminder minutes value.');
  }
}

export class CalendarStore {
  readonly calendars = new Map<string, Calendar>();
  /** Per account (sub): its calendar list entries, in insertion order. */
  readonly entries = new Map<string, Map<string, CalendarEntry>>();
  private seq = 0;
  private readonly syncTokens = new Map<string, { calendarId: string; seq: number; expired: boolean }>();
  private readonly pageTokens = new Map<string, { listing: Listing; offset: number }>();
  private readonly clock: Clock;
  private readonly onChange: (calendarId: string) => void;

  constructor(clock: Clock, onChange: (calendarId: string) => void) {
    this.clock = clock;
    this.onChange = onChange;
  }

  // ---- calendars -------------------------------------------------------------------------------

  addCalendar(
    sub: string,
    email: string,
    c: { id: string; summary: string; timeZone: string; primary?: boolean; accessRole?: AccessRole; backgroundColor?: string },
  ): void {
    if (!isValidZone(c.timeZone)) throw new Error(`addCalendar: invalid time zone ${c.timeZone}`);
    const role = c.accessRole ?? 'owner';
    let cal = this.calendars.get(c.id);
    if (!cal) {
      cal = {
        id: c.id,
        summary: c.summary,
        timeZone: c.timeZone,
        description: '',
        ownerEmail: undefined,
        primary: false,
        events: new Map(),
        updated: formatTimestamp(this.clock.now()),
        lastChangeSeq: this.seq,
      };
      this.calendars.set(c.id, cal);
    }
    if (role === 'owner' && cal.ownerEmail === undefined) {
      cal.ownerEmail = email;
      if (c.primary) cal.primary = true;
    }
    let list = this.entries.get(sub);
    if (!list) {
      list = new Map();
      this.entries.set(sub, list);
    }
    if (c.primary) for (const e of list.values()) e.primary = false;
    list.set(c.id, {
      calendarId: c.id,
      accessRole: role,
      primary: c.primary ?? false,
      backgroundColor: c.backgroundColor ?? '#9fe1e7',
      etag: `"${this.clock.now().toMillis()}${String(list.size).padStart(3, '0')}"`,
    });
  }

  /** The account's entry for a calendar id or "primary"; undefined when the account cannot see it. */
  entryFor(sub: string, calendarId: string): CalendarEntry | undefined {
    const list = this.entries.get(sub);
    if (!list) return undefined;
    if (calendarId === 'primary') {
      for (const e of list.values()) if (e.primary) return e;
      return undefined;
    }
    return list.get(calendarId);
  }

  calendar(id: string): Calendar {
    const cal = this.calendars.get(id);
    if (!cal) throw E.notFound();
    return cal;
  }

  // ---- change log ------------------------------------------------------------------------------

  private nextSeq(cal: Calendar): number {
    this.seq += 1;
    cal.lastChangeSeq = this.seq;
    cal.updated = formatTimestamp(this.clock.now());
    return this.seq;
  }

  /** Event etags are quoted decimal strings ("3485815948352798"), unique per change even with a stopped clock. */
  private etag(seq: number): string {
    return `"${(BigInt(this.clock.now().toMillis()) * 1000n + BigInt(seq % 1000)).toString()}"`;
  }

  expireSyncTokens(calendarId: string): void {
    for (const t of this.syncTokens.values()) if (t.calendarId === calendarId) t.expired = true;
  }

  private windowEnd(): DateTime {
    return this.clock.now().plus({ years: 1 });
  }

  // ---- series ----------------------------------------------------------------------------------

  private isMaster(d: Json): boolean {
    return Array.isArray(d['recurrence']) && d['recurrence'].length > 0 && d['recurringEventId'] === undefined;
  }

  /** The series of a master, expanded up to `until` (default: one year after now) or to its end when bounded. */
  private series(cal: Calendar, d: Json, until?: DateTime): Series | undefined {
    if (!this.isMaster(d)) return undefined;
    const startEdt = asEventDateTime(d['start']);
    const endEdt = asEventDateTime(d['end']);
    if (!startEdt || !endEdt) return undefined;
    const s = resolveTime(startEdt, cal.timeZone);
    const e = resolveTime(endEdt, s.zone);
    const parsed = parseRecurrence(d['recurrence'] as string[], s.zone);
    const bounded = isBounded(parsed);
    const windowEnd = until ?? (bounded ? this.clock.now().plus({ years: 50 }) : this.windowEnd());
    const starts = expandRecurrence(parsed, s.at, s.allDay, { windowEnd, max: 5000 });
    return {
      starts,
      allDay: s.allDay,
      zone: s.zone,
      startTz: startEdt.timeZone,
      endTz: endEdt.timeZone,
      durationMs: e.at.toMillis() - s.at.toMillis(),
      durationDays: Math.round(e.at.startOf('day').diff(s.at.startOf('day'), 'days').days),
      bounded,
    };
  }

  private instanceTimes(series: Series, at: DateTime): { start: EventDateTime; end: EventDateTime; endAt: DateTime } {
    if (series.allDay) {
      const endAt = at.plus({ days: series.durationDays });
      return { start: renderTime(at, true, undefined), end: renderTime(endAt, true, undefined), endAt };
    }
    const endAt = at.plus({ milliseconds: series.durationMs }).setZone(series.endTz ?? series.zone);
    return { start: renderTime(at, false, series.startTz), end: renderTime(endAt, false, series.endTz), endAt };
  }

  /** A generated (unmodified) instance of a master, as events.list with singleEvents=true returns it. */
  private makeInstance(cal: Calendar, master: EventRecord, series: Series, at: DateTime): Json {
    const key = instanceKey(at, series.allDay);
    const id = `${master.id}_${key}`;
    const t = this.instanceTimes(series, at);
    const data = clone(master.data);
    delete data['recurrence'];
    return orderEvent({
      ...data,
      etag: master.instanceEtag,
      id,
      htmlLink: htmlLink(id, cal.id),
      start: t.start,
      end: t.end,
      recurringEventId: master.id,
      originalStartTime: clone(t.start),
    });
  }

  /** Splits "<masterId>_<key>" when masterId is a master of this calendar. */
  private parseInstanceId(cal: Calendar, eventId: string): { master: EventRecord; key: string } | undefined {
    const us = eventId.lastIndexOf('_');
    if (us <= 0) return undefined;
    const master = cal.events.get(eventId.slice(0, us));
    const key = eventId.slice(us + 1);
    if (!master || !this.isMaster(master.data) || !INSTANCE_KEY.test(key)) return undefined;
    return { master, key };
  }

  /** The generated instance for an instance id, or undefined when the series has no such occurrence. */
  private findInstance(cal: Calendar, master: EventRecord, key: string): Json | undefined {
    const m = INSTANCE_KEY.exec(key);
    if (!m) return undefined;
    const probe = DateTime.fromFormat(m[1]!, 'yyyyMMdd', { zone: 'utc' }).plus({ days: 2 });
    const until = DateTime.max(this.windowEnd(), probe);
    const series = this.series(cal, master.data, until);
    if (!series) return undefined;
    const at = series.starts.find((s) => instanceKey(s, series.allDay) === key);
    return at ? this.makeInstance(cal, master, series, at) : undefined;
  }

  private keysOf(cal: Calendar, d: Json | undefined): Map<string, { at: DateTime; allDay: boolean; series: Series }> {
    const out = new Map<string, { at: DateTime; allDay: boolean; series: Series }>();
    if (!d || d['status'] === 'cancelled') return out;
    const series = this.series(cal, d);
    if (!series) return out;
    for (const at of series.starts) out.set(instanceKey(at, series.allDay), { at, allDay: series.allDay, series });
    return out;
  }

  /**
   * After a master changed (RRULE truncated with UNTIL, EXDATE, time moved, deleted): remembers the instances
   * that left the series so incremental singleEvents=true syncs return them as cancelled instances, and cancels
   * exceptions of instances that no longer exist.
   */
  private diffSeries(cal: Calendar, rec: EventRecord, before: Json | undefined, seq: number): void {
    const oldKeys = this.keysOf(cal, before);
    const newKeys = this.keysOf(cal, rec.data);
    for (const [key, { at, series }] of oldKeys) {
      if (newKeys.has(key)) continue;
      const id = `${rec.id}_${key}`;
      const ex = cal.events.get(id);
      if (ex) {
        if (ex.data['status'] !== 'cancelled') {
          ex.data = orderEvent({ ...ex.data, status: 'cancelled', etag: rec.data['etag'], updated: rec.data['updated'] });
          ex.changeSeq = seq;
        }
        continue;
      }
      const originalStartTime = this.instanceTimes(series, at).start;
      rec.removed.push({ seq, key, id, originalStartTime, startMs: at.toMillis() });
    }
    if (rec.data['status'] === 'cancelled') {
      for (const ex of cal.events.values()) {
        if (ex.data['recurringEventId'] === rec.id && ex.data['status'] !== 'cancelled') {
          ex.data = orderEvent({ ...ex.data, status: 'cancelled', etag: rec.data['etag'], updated: rec.data['updated'] });
          ex.changeSeq = seq;
        }
      }
    }
  }

  // ---- composing resources -----------------------------------------------------------------------

  private isSelf(cal: Calendar, email: unknown): boolean {
    if (typeof email !== 'string') return false;
    const e = email.toLowerCase();
    return e === cal.id.toLowerCase() || (cal.ownerEmail !== undefined && e === cal.ownerEmail.toLowerCase());
  }

  /** The organizer Google sets for events created on a calendar: the owner on a primary calendar, else the calendar. */
  private calendarOrganizer(cal: Calendar): Json {
    if (cal.primary && cal.ownerEmail) return { email: cal.ownerEmail, self: true };
    return { email: cal.id, displayName: cal.summary, self: true };
  }

  private person(cal: Calendar, p: Json): Json {
    const out: Json = { ...p };
    delete out['self'];
    if (this.isSelf(cal, p['email'])) out['self'] = true;
    return out;
  }

  private attendees(cal: Calendar, list: unknown, organizerEmail: string | undefined, strict: boolean): Json[] {
    if (!Array.isArray(list)) throw E.invalid('Invalid attendees value.');
    return list.map((a: unknown) => {
      if (!isObject(a) || typeof a['email'] !== 'string' || a['email'] === '') {
        if (strict) throw E.required('Missing attendee email.');
        throw new Error('insertEvent/patchEvent: every attendee needs an email');
      }
      const status = a['responseStatus'] ?? 'needsAction';
      if (typeof status !== 'string' || !RESPONSE_STATUSES.has(status)) throw E.invalid(`Invalid attendee responseStatus: ${String(status)}`);
      const out: Json = { ...a, responseStatus: status };
      delete out['self'];
      delete out['organizer'];
      if (organizerEmail !== undefined && a['email'].toLowerCase() === organizerEmail.toLowerCase()) out['organizer'] = true;
      if (this.isSelf(cal, a['email'])) out['self'] = true;
      return orderAttendee(out);
    });
  }

  /**
   * Builds the stored resource from the desired writable fields (`desired`), the previous version (`prev`) and
   * the system fields (`sys`). Validates times and recurrence as events.insert does.
   */
  private compose(cal: Calendar, prev: Json | undefined, desired: Json, actor: Actor, sys: Json): Json {
    const strict = actor.origin === 'api';
    const out: Json = {};
    for (const [k, v] of Object.entries(desired)) {
      if (SYSTEM_KEYS.has(k) || OWNER_KEYS.has(k) || k === 'conferenceData') continue;
      out[k] = clone(v);
    }
    const isInstance = typeof sys['recurringEventId'] === 'string';
    if (isInstance) delete out['recurrence'];
    if (Array.isArray(out['recurrence']) && out['recurrence'].length === 0) delete out['recurrence'];

    const status = out['status'] ?? 'confirmed';
    if (status !== 'confirmed' && status !== 'tentative' && status !== 'cancelled') throw E.invalid(`Invalid status value: ${String(status)}`);
    out['status'] = status;

    // start / end (EventDateTime): both required; recurring events need start.timeZone.
    const startEdt = asEventDateTime(out['start']);
    const endEdt = asEventDateTime(out['end']);
    if (!startEdt || (startEdt.date === undefined && startEdt.dateTime === undefined)) throw E.required('Missing start time.');
    if (!endEdt || (endEdt.date === undefined && endEdt.dateTime === undefined)) throw E.required('Missing end time.');
    const recurrence = out['recurrence'];
    if (recurrence !== undefined) {
      if (!Array.isArray(recurrence) || !recurrence.every((l) => typeof l === 'string')) throw E.invalid('Invalid recurrence rule.');
      if (startEdt.dateTime !== undefined && !startEdt.timeZone) {
        if (strict) throw E.required('Missing time zone definition for start time.');
        startEdt.timeZone = cal.timeZone;
      }
      if (endEdt.dateTime !== undefined && !endEdt.timeZone) endEdt.timeZone = startEdt.timeZone;
    }
    let s: ResolvedTime;
    let e: ResolvedTime;
    try {
      s = resolveTime(startEdt, cal.timeZone);
      e = resolveTime(endEdt, cal.timeZone, 'end');
    } catch (err) {
      throw E.invalid((err as Error).message);
    }
    if (s.allDay !== e.allDay) throw E.invalid('Invalid start time.');
    if (e.at.toMillis() < s.at.toMillis()) throw E.timeRangeEmpty();
    out['start'] = renderTime(s.at, s.allDay, s.explicitZone ? s.zone : undefined);
    out['end'] = renderTime(e.at, e.allDay, e.explicitZone ? e.zone : undefined);
    if (recurrence !== undefined) {
      try {
        parseRecurrence(recurrence as string[], s.zone);
      } catch (err) {
        if (err instanceof RecurrenceError) throw E.invalid('Invalid recurrence rule.');
        throw err;
      }
    }

    // organizer / creator / hangoutLink: Google's (the user's own edits may name them; API callers may not).
    const owner = (k: string): unknown => (actor.origin === 'user' && desired[k] !== undefined ? desired[k] : prev?.[k]);
    const organizer = owner('organizer');
    out['organizer'] = this.person(cal, isObject(organizer) ? organizer : this.calendarOrganizer(cal));
    const creator = owner('creator');
    const defaultCreatorEmail = actor.email ?? cal.ownerEmail ?? cal.id;
    out['creator'] = this.person(cal, isObject(creator) ? creator : { email: defaultCreatorEmail });
    const hangoutLink = owner('hangoutLink');
    if (typeof hangoutLink === 'string') out['hangoutLink'] = hangoutLink;

    if (out['attendees'] !== undefined) {
      out['attendees'] = this.attendees(cal, out['attendees'], str((out['organizer'] as Json)['email']), strict);
    }

    // conferenceData: ignored from API callers unless conferenceDataVersion=1 (events.insert conferenceDataVersion).
    const conf = actor.origin === 'api' && actor.conferenceDataVersion < 1 ? prev?.['conferenceData'] : desired['conferenceData'];
    if (isObject(conf)) {
      const cr = conf['createRequest'];
      if (isObject(cr) && !isObject(cr['status']) && !Array.isArray(conf['entryPoints'])) {
        const created = createConference(cr);
        out['conferenceData'] = created.conferenceData;
        if (created.hangoutLink) out['hangoutLink'] = created.hangoutLink;
      } else out['conferenceData'] = clone(conf);
    }

    // extendedProperties.private/.shared are maps of strings (Event schema: additionalProperties type string).
    const ext = out['extendedProperties'];
    if (ext !== undefined) {
      if (!isObject(ext)) throw E.invalid('Invalid value for extendedProperties.');
      for (const kind of ['private', 'shared']) {
        const props = ext[kind];
        if (props === undefined) continue;
        if (!isObject(props) || !Object.values(props).every((v) => typeof v === 'string')) throw E.invalid(`Invalid value for extendedProperties.${kind}.`);
      }
    }

    if (out['reminders'] === undefined) out['reminders'] = { useDefault: true };
    checkReminders(out['reminders']);
    if (out['eventType'] === undefined) out['eventType'] = prev?.['eventType'] ?? 'default';

    let sequence = typeof sys['sequence'] === 'number' ? sys['sequence'] : 0;
    if (prev) {
      const timing = (d: Json): string => JSON.stringify([d['start'], d['end'], d['recurrence'] ?? null]);
      if (timing(prev) !== timing(out)) sequence += 1;
    }
    return orderEvent({ kind: 'calendar#event', ...out, ...sys, sequence });
  }

  /** Stores a new version of a record and stamps etag/updated from the clock. */
  private commit(cal: Calendar, id: string, data: Json, opts: { seriesChange: boolean }): EventRecord {
    const seq = this.nextSeq(cal);
    const etag = this.etag(seq);
    data['etag'] = etag;
    data['updated'] = formatTimestamp(this.clock.now());
    data['htmlLink'] = htmlLink(id, cal.id);
    let rec = cal.events.get(id);
    const before = rec ? rec.data : undefined;
    if (!rec) {
      rec = { id, data, changeSeq: seq, seriesSeq: seq, instanceEtag: etag, removed: [] };
      cal.events.set(id, rec);
    }
    rec.data = orderEvent(data);
    rec.changeSeq = seq;
    if (opts.seriesChange) {
      rec.seriesSeq = seq;
      rec.instanceEtag = etag;
      if (before !== undefined || this.isMaster(rec.data)) this.diffSeries(cal, rec, before, seq);
    }
    return rec;
  }

  /** Bumps a master when one of its instances changed (google-examples.md C1: the master comes back "updated"). */
  private touchMaster(cal: Calendar, master: EventRecord): void {
    const seq = this.nextSeq(cal);
    master.data = orderEvent({ ...master.data, etag: this.etag(seq), updated: formatTimestamp(this.clock.now()) });
    master.changeSeq = seq;
  }

  private present(d: Json, maxAttendees?: number, role?: AccessRole): Json {
    let out = clone(d);
    if (maxAttendees !== undefined && Array.isArray(out['attendees']) && out['attendees'].length > maxAttendees) {
      out['attendees'] = (out['attendees'] as Json[]).filter((a) => a['self'] === true);
      out['attendeesOmitted'] = true;
      out = orderEvent(out);
    }
    if (role === 'freeBusyReader' && out['status'] !== 'cancelled') {
      const keep = ['kind', 'etag', 'id', 'status', 'start', 'end', 'recurringEventId', 'originalStartTime', 'eventType'];
      out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.includes(k)));
    }
    return out;
  }

  // ---- writes ----------------------------------------------------------------------------------

  insert(calendarId: string, body: Json, actor: Actor): Json {
    const cal = this.calendar(calendarId);
    let id = str(body['id']);
    if (id !== undefined) {
      if (!isValidEventId(id)) {
        if (actor.origin === 'api') throw E.invalid('Invalid resource id value.');
        throw new Error(`insertEvent: invalid event id ${id} (base32hex [a-v0-9], 5-1024 characters)`);
      }
      if (cal.events.has(id)) throw E.duplicate();
    } else {
      do id = generateEventId();
      while (cal.events.has(id));
    }
    const now = formatTimestamp(this.clock.now());
    const iCalUID = str(body['iCalUID']) ?? `${id}@google.com`;
    const data = this.compose(cal, undefined, body, actor, { id, created: now, iCalUID, sequence: 0 });
    const rec = this.commit(cal, id, data, { seriesChange: true });
    this.onChange(cal.id);
    return this.present(rec.data);
  }

  /**
   * events.get. A deleted (cancelled) event is answered 200 with status "cancelled", not 404 or 410: "The get
   * method always returns them" (Event.status in the discovery document; google-examples.md A), as callers see
   * (googleapis/google-api-java-client#1535: get succeeds after delete). On the organizer's calendar it keeps its
   * details ("cancelled events continue to expose event details … so that they can be restored").
   */
  get(calendarId: string, eventId: string, maxAttendees?: number, role?: AccessRole): Json {
    const cal = this.calendar(calendarId);
    const rec = cal.events.get(eventId);
    if (rec) return this.present(rec.data, maxAttendees, role);
    const inst = this.parseInstanceId(cal, eventId);
    if (inst && inst.master.data['status'] !== 'cancelled') {
      const generated = this.findInstance(cal, inst.master, inst.key);
      if (generated) return this.present(generated, maxAttendees, role);
    }
    throw E.notFound();
  }

  /**
   * events.patch with patch semantics (mergePatch). Every patch is a change: etag and updated move on and an
   * incremental sync returns the event again, even when the values given equal the stored ones (the emulator
   * does not guess that Google skips no-op writes). sequence moves only with the timing (compose). A deleted
   * event can still be written: Google keeps it with status cancelled ("cancelled events continue to expose
   * event details … so that they can be restored": Event.status), and a patch that does not set status leaves
   * it cancelled; only events.delete answers 410 "deleted" (derekantrican/GAS-ICS-Sync#297).
   */
  patch(calendarId: string, eventId: string, patch: Json, actor: Actor): Json {
    return this.write(calendarId, eventId, (prev) => mergePatch(prev, patch), actor);
  }

  /** events.update: the body replaces every writable field. */
  update(calendarId: string, eventId: string, body: Json, actor: Actor): Json {
    return this.write(calendarId, eventId, () => body, actor);
  }

  private write(calendarId: string, eventId: string, desiredOf: (prev: Json) => Json, actor: Actor): Json {
    const cal = this.calendar(calendarId);
    const rec = cal.events.get(eventId);
    if (rec) {
      const prev = rec.data;
      const desired = desiredOf(prev);
      const sys: Json = { id: rec.id, created: prev['created'], iCalUID: prev['iCalUID'], sequence: prev['sequence'] };
      if (typeof prev['recurringEventId'] === 'string') {
        sys['recurringEventId'] = prev['recurringEventId'];
        sys['originalStartTime'] = prev['originalStartTime'];
      }
      const data = this.compose(cal, prev, desired, actor, sys);
      const isException = typeof prev['recurringEventId'] === 'string';
      const updated = this.commit(cal, rec.id, data, { seriesChange: !isException });
      if (isException) {
        const master = cal.events.get(prev['recurringEventId'] as string);
        if (master) this.touchMaster(cal, master);
      }
      this.onChange(cal.id);
      return this.present(updated.data);
    }
    const inst = this.parseInstanceId(cal, eventId);
    const generated = inst && inst.master.data['status'] !== 'cancelled' ? this.findInstance(cal, inst.master, inst.key) : undefined;
    if (!inst || !generated) throw E.notFound();
    const desired = desiredOf(generated);
    const sys: Json = {
      id: eventId,
      created: inst.master.data['created'],
      iCalUID: inst.master.data['iCalUID'],
      sequence: inst.master.data['sequence'],
      recurringEventId: inst.master.id,
      originalStartTime: generated['originalStartTime'],
    };
    const data = this.compose(cal, generated, desired, actor, sys);
    const created = this.commit(cal, eventId, data, { seriesChange: false });
    this.touchMaster(cal, inst.master);
    this.onChange(cal.id);
    return this.present(created.data);
  }

  delete(calendarId: string, eventId: string): void {
    const cal = this.calendar(calendarId);
    const rec = cal.events.get(eventId);
    if (rec) {
      if (rec.data['status'] === 'cancelled') throw E.deleted();
      const isException = typeof rec.data['recurringEventId'] === 'string';
      this.commit(cal, rec.id, { ...rec.data, status: 'cancelled' }, { seriesChange: !isException });
      if (isException) {
        const master = cal.events.get(rec.data['recurringEventId'] as string);
        if (master) this.touchMaster(cal, master);
      }
      this.onChange(cal.id);
      return;
    }
    const inst = this.parseInstanceId(cal, eventId);
    const generated = inst && inst.master.data['status'] !== 'cancelled' ? this.findInstance(cal, inst.master, inst.key) : undefined;
    if (!inst || !generated) throw E.notFound();
    this.commit(cal, eventId, { ...generated, status: 'cancelled' }, { seriesChange: false });
    this.touchMaster(cal, inst.master);
    this.onChange(cal.id);
  }

  /**
   * events.move: the event (with its exceptions) goes to the destination with a new organizer and leaves a
   * cancelled item behind (Event.status: "If an event changes its organizer (for example via the move operation) …").
   */
  move(calendarId: string, eventId: string, destinationId: string): Json {
    const src = this.calendar(calendarId);
    const dst = this.calendar(destinationId);
    const rec = src.events.get(eventId);
    if (!rec || rec.data['status'] === 'cancelled') {
      if (!rec && this.parseInstanceId(src, eventId)) {
        throw E.invalid('Cannot change the organizer of an instance.', 'cannotChangeOrganizerOfInstance');
      }
      throw E.notFound();
    }
    if (typeof rec.data['recurringEventId'] === 'string') throw E.invalid('Cannot change the organizer of an instance.', 'cannotChangeOrganizerOfInstance');
    if (src === dst) return this.present(rec.data);
    const existing = dst.events.get(eventId);
    if (existing && existing.data['status'] !== 'cancelled') throw E.duplicate();
    const exceptions = [...src.events.values()].filter((r) => r.data['recurringEventId'] === rec.id);
    const movedData = (d: Json): Json => {
      const out = clone(d);
      out['organizer'] = this.calendarOrganizer(dst);
      if (isObject(out['creator'])) out['creator'] = this.person(dst, out['creator']);
      if (Array.isArray(out['attendees'])) {
        out['attendees'] = this.attendees(dst, out['attendees'], str((out['organizer'] as Json)['email']), false);
      }
      return out;
    };
    if (existing) dst.events.delete(eventId);
    const moved = this.commit(dst, rec.id, movedData(rec.data), { seriesChange: true });
    for (const ex of exceptions) {
      dst.events.delete(ex.id);
      this.commit(dst, ex.id, movedData(ex.data), { seriesChange: false });
    }
    for (const ex of exceptions) if (ex.data['status'] !== 'cancelled') this.commit(src, ex.id, { ...ex.data, status: 'cancelled' }, { seriesChange: false });
    this.commit(src, rec.id, { ...rec.data, status: 'cancelled' }, { seriesChange: true });
    this.onChange(src.id);
    this.onChange(dst.id);
    return this.present(moved.data);
  }

  // ---- reads -----------------------------------------------------------------------------------

  private parseListParams(calendarId: string, q: Query): ListParams {
    const syncToken = one(q, 'syncToken');
    if (syncToken !== undefined) {
      for (const k of NOT_WITH_SYNC_TOKEN) {
        if (q[k] !== undefined) throw E.invalid(`The parameter ${k} cannot be used together with syncToken.`);
      }
    }
    const maxResults = Math.min(int(q, 'maxResults', 1) ?? DEFAULT_MAX_RESULTS, MAX_RESULTS_CAP);
    const singleEvents = bool(q, 'singleEvents');
    const orderByRaw = one(q, 'orderBy');
    if (orderByRaw !== undefined && orderByRaw !== 'startTime' && orderByRaw !== 'updated') throw E.invalid(`Invalid value for orderBy: ${orderByRaw}`);
    if (orderByRaw === 'startTime' && !singleEvents) throw E.invalid('The requested ordering is not available for the particular query.');
    const timeMin = time(q, 'timeMin');
    const timeMax = time(q, 'timeMax');
    if (timeMin && timeMax && timeMax.toMillis() <= timeMin.toMillis()) throw E.timeRangeEmpty();
    const timeZone = one(q, 'timeZone');
    if (timeZone !== undefined && !isValidZone(timeZone)) throw E.invalid(`Invalid time zone: ${timeZone}`);
    const fp = Object.keys(q)
      .filter((k) => k !== 'pageToken' && k !== 'maxResults')
      .sort()
      .map((k) => `${k}=${JSON.stringify(q[k])}`);
    return {
      syncToken,
      pageToken: one(q, 'pageToken'),
      maxResults,
      showDeleted: bool(q, 'showDeleted'),
      singleEvents,
      timeMin,
      timeMax,
      updatedMin: time(q, 'updatedMin'),
      orderBy: orderByRaw as ListParams['orderBy'],
      q: one(q, 'q'),
      iCalUID: one(q, 'iCalUID'),
      privateExt: many(q, 'privateExtendedProperty'),
      sharedExt: many(q, 'sharedExtendedProperty'),
      eventTypes: many(q, 'eventTypes'),
      maxAttendees: int(q, 'maxAttendees', 1),
      timeZone,
      fingerprint: `${calendarId}?${fp.join('&')}`,
    };
  }

  private interval(cal: Calendar, d: Json): { startMs: number; endMs: number } {
    const s = asEventDateTime(d['start']);
    const e = asEventDateTime(d['end']);
    try {
      const startMs = s ? resolveTime(s, cal.timeZone).at.toMillis() : 0;
      const endMs = e ? resolveTime(e, cal.timeZone).at.toMillis() : startMs;
      return { startMs, endMs };
    } catch {
      return { startMs: 0, endMs: 0 };
    }
  }

  private updatedMs(d: Json): number {
    const u = str(d['updated']);
    return u ? DateTime.fromISO(u).toMillis() : 0;
  }

  /** Everything the listing would return, in a stable order (by change sequence, then start), before paging. */
  private collect(cal: Calendar, p: ListParams, since: number | undefined, role: AccessRole): Item[] {
    const items: Item[] = [];
    const seen = new Set<string>();
    const incremental = since !== undefined;
    // Incremental results always include deletions (events.list syncToken); so does updatedMin.
    const includeDeleted = incremental || p.showDeleted || p.updatedMin !== undefined;
    const changed = (seq: number): boolean => since === undefined || seq > since;
    const add = (json: Json, src: Json, order: number, times?: { startMs: number; endMs: number }): void => {
      const id = json['id'] as string;
      if (seen.has(id)) return;
      seen.add(id);
      const cancelled = json['status'] === 'cancelled';
      const t = times ?? this.interval(cal, src);
      items.push({
        json: cancelled ? tombstone(json) : this.present(json, p.maxAttendees, role),
        src,
        order,
        startMs: t.startMs,
        endMs: t.endMs,
        updatedMs: this.updatedMs(json),
        cancelled,
      });
    };
    const exceptionsOf = new Map<string, EventRecord[]>();
    for (const r of cal.events.values()) {
      const m = str(r.data['recurringEventId']);
      if (m === undefined) continue;
      const list = exceptionsOf.get(m) ?? [];
      list.push(r);
      exceptionsOf.set(m, list);
    }

    for (const r of cal.events.values()) {
      const d = r.data;
      const cancelled = d['status'] === 'cancelled';
      const masterId = str(d['recurringEventId']);
      if (masterId !== undefined) {
        const master = cal.events.get(masterId);
        if (p.singleEvents && master) continue; // emitted with its master below
        if (!changed(r.changeSeq)) continue;
        const masterGone = !master || master.data['status'] === 'cancelled';
        // showDeleted: "Cancelled instances of recurring events … will still be included if showDeleted and
        // singleEvents are both False."
        if (cancelled && !includeDeleted && (p.singleEvents || masterGone)) continue;
        add(d, d, r.changeSeq);
        continue;
      }
      if (this.isMaster(d) && p.singleEvents) {
        this.collectInstances(cal, r, exceptionsOf.get(r.id) ?? [], since, includeDeleted, add);
        continue;
      }
      if (p.singleEvents && (r.removed.length > 0 || exceptionsOf.has(r.id))) {
        // A former master (its recurrence was removed): its old instances are gone.
        this.collectInstances(cal, r, exceptionsOf.get(r.id) ?? [], since, includeDeleted, add, true);
      }
      if (!changed(r.changeSeq)) continue;
      if (cancelled && !includeDeleted) continue;
      if (this.isMaster(d) && !cancelled) {
        add(d, d, r.changeSeq, this.seriesRange(cal, d));
        continue;
      }
      add(d, d, r.changeSeq);
    }
    return this.filterAndSort(items, p);
  }

  private seriesRange(cal: Calendar, d: Json): { startMs: number; endMs: number } {
    try {
      const series = this.series(cal, d);
      const first = series?.starts[0];
      const last = series?.starts[series.starts.length - 1];
      if (!series || !first || !last) return this.interval(cal, d);
      return {
        startMs: first.toMillis(),
        endMs: series.bounded ? this.instanceTimes(series, last).endAt.toMillis() : Number.POSITIVE_INFINITY,
      };
    } catch {
      return this.interval(cal, d);
    }
  }

  private collectInstances(
    cal: Calendar,
    master: EventRecord,
    exceptions: EventRecord[],
    since: number | undefined,
    includeDeleted: boolean,
    add: (json: Json, src: Json, order: number, times?: { startMs: number; endMs: number }) => void,
    noLongerRecurring = false,
  ): void {
    const changed = (seq: number): boolean => since === undefined || seq > since;
    const exById = new Map(exceptions.map((x) => [x.id, x]));
    const masterCancelled = noLongerRecurring || master.data['status'] === 'cancelled';
    if (!changed(master.seriesSeq)) {
      // Only the instances edited or cancelled one by one since the token.
      for (const ex of exceptions) if (changed(ex.changeSeq)) add(ex.data, ex.data, ex.changeSeq);
      return;
    }
    if (!masterCancelled) {
      let series: Series | undefined;
      try {
        series = this.series(cal, master.data);
      } catch {
        series = undefined;
      }
      for (const at of series?.starts ?? []) {
        const id = `${master.id}_${instanceKey(at, series!.allDay)}`;
        const ex = exById.get(id);
        if (ex) {
          if (ex.data['status'] === 'cancelled' && !includeDeleted) continue;
          add(ex.data, ex.data, master.seriesSeq);
          continue;
        }
        const inst = this.makeInstance(cal, master, series!, at);
        add(inst, inst, master.seriesSeq);
      }
      for (const ex of exceptions) {
        if (ex.data['status'] === 'cancelled' && !includeDeleted) continue;
        add(ex.data, ex.data, master.seriesSeq);
      }
    } else if (includeDeleted) {
      // "If showDeleted and singleEvents are both True, only single instances of deleted events … are returned."
      for (const ex of exceptions) if (changed(ex.changeSeq)) add(ex.data, ex.data, master.seriesSeq);
    }
    if (includeDeleted) {
      // Instances that left the series ("this and following" UNTIL truncation, deletion of the series).
      for (const r of master.removed) {
        if (since !== undefined && r.seq <= since) continue;
        if (since === undefined && !masterCancelled) continue;
        const json: Json = {
          kind: 'calendar#event',
          etag: master.instanceEtag,
          id: r.id,
          status: 'cancelled',
          recurringEventId: master.id,
          originalStartTime: r.originalStartTime,
          updated: master.data['updated'],
        };
        add(json, json, r.seq, { startMs: r.startMs, endMs: r.startMs });
      }
    }
  }

  private filterAndSort(items: Item[], p: ListParams): Item[] {
    const lower = (v: unknown): string => (typeof v === 'string' ? v.toLowerCase() : '');
    const terms = p.q ? p.q.toLowerCase().split(/\s+/).filter(Boolean) : [];
    const out = items.filter((it) => {
      if (p.timeMin && !(it.endMs > p.timeMin.toMillis() || (it.endMs === it.startMs && it.startMs >= p.timeMin.toMillis()))) return false;
      if (p.timeMax && !(it.startMs < p.timeMax.toMillis())) return false;
      if (p.updatedMin && it.updatedMs < p.updatedMin.toMillis()) return false;
      const s = it.src;
      if (p.iCalUID !== undefined && s['iCalUID'] !== p.iCalUID) return false;
      if (p.eventTypes.length > 0 && !it.cancelled && !p.eventTypes.includes(str(s['eventType']) ?? 'default')) return false;
      const ext = isObject(s['extendedProperties']) ? s['extendedProperties'] : {};
      const match = (kind: 'private' | 'shared', constraints: string[]): boolean => {
        const props = isObject(ext[kind]) ? ext[kind] : {};
        return constraints.every((c) => {
          const eq = c.indexOf('=');
          return eq > 0 && props[c.slice(0, eq)] === c.slice(eq + 1);
        });
      };
      if (!match('private', p.privateExt) || !match('shared', p.sharedExt)) return false;
      if (terms.length > 0) {
        const people = [s['organizer'], ...(Array.isArray(s['attendees']) ? s['attendees'] : [])].filter(isObject);
        const hay = [s['summary'], s['description'], s['location'], ...people.flatMap((a) => [a['displayName'], a['email']])].map(lower).join('\n');
        if (!terms.every((t) => hay.includes(t))) return false;
      }
      return true;
    });
    const byId = (a: Item, b: Item): number => ((a.json['id'] as string) < (b.json['id'] as string) ? -1 : 1);
    if (p.orderBy === 'startTime') out.sort((a, b) => a.startMs - b.startMs || byId(a, b));
    else if (p.orderBy === 'updated') out.sort((a, b) => a.updatedMs - b.updatedMs || byId(a, b));
    else out.sort((a, b) => a.order - b.order || a.startMs - b.startMs || byId(a, b));
    return out;
  }

  /** events.list: one page of a listing; the listing is a snapshot taken at its first page. */
  list(calendarId: string, q: Query, role: AccessRole): Json {
    const cal = this.calendar(calendarId);
    const p = this.parseListParams(cal.id, q);
    let listing: Listing;
    let offset = 0;
    if (p.pageToken !== undefined) {
      const entry = this.pageTokens.get(p.pageToken);
      if (!entry) throw E.invalid('Invalid page token value.');
      if (entry.listing.fingerprint !== p.fingerprint) throw E.invalid('The page token does not belong to this query: the other parameters changed.');
      listing = entry.listing;
      offset = entry.offset;
    } else {
      let since: number | undefined;
      if (p.syncToken !== undefined) {
        const t = this.syncTokens.get(p.syncToken);
        if (!t || t.expired || t.calendarId !== cal.id) throw E.fullSyncRequired();
        since = t.seq;
      }
      const items = this.collect(cal, p, since, role).map((it) => it.json);
      listing = { calendarId: cal.id, fingerprint: p.fingerprint, items, syncSeq: this.seq };
    }
    const page = listing.items.slice(offset, offset + p.maxResults);
    const next = offset + page.length;
    const res: Json = {
      kind: 'calendar#events',
      etag: `"p3${(listing.syncSeq ?? 0).toString(32).padStart(6, '0')}0g"`,
      summary: cal.summary,
      description: cal.description,
      updated: cal.updated,
      timeZone: p.timeZone ?? cal.timeZone,
      accessRole: role,
      defaultReminders: [],
    };
    if (next < listing.items.length) {
      const token = randomToken();
      this.pageTokens.set(token, { listing, offset: next });
      res['nextPageToken'] = token;
    } else if (listing.syncSeq !== undefined) {
      // "nextSyncToken … Omitted if further results are available" — so only on the last page.
      const token = randomToken();
      this.syncTokens.set(token, { calendarId: cal.id, seq: listing.syncSeq, expired: false });
      res['nextSyncToken'] = token;
    }
    res['items'] = page;
    return res;
  }

  /** events.instances: the instances of one recurring event. */
  instances(calendarId: string, eventId: string, q: Query, role: AccessRole): Json {
    const cal = this.calendar(calendarId);
    const master = cal.events.get(eventId);
    if (!master || !this.isMaster(master.data)) throw E.notFound();
    const p = this.parseListParams(cal.id, { ...q, singleEvents: 'true', eventId });
    let listing: Listing;
    let offset = 0;
    if (p.pageToken !== undefined) {
      const entry = this.pageTokens.get(p.pageToken);
      if (!entry || entry.listing.fingerprint !== p.fingerprint) throw E.invalid('Invalid page token value.');
      listing = entry.listing;
      offset = entry.offset;
    } else {
      const items: Item[] = [];
      const seen = new Set<string>();
      const exceptions = [...cal.events.values()].filter((r) => r.data['recurringEventId'] === master.id);
      this.collectInstances(cal, master, exceptions, undefined, p.showDeleted, (json, src, order, times) => {
        const id = json['id'] as string;
        if (seen.has(id)) return;
        seen.add(id);
        const t = times ?? this.interval(cal, src);
        const cancelled = json['status'] === 'cancelled';
        items.push({
          json: cancelled ? tombstone(json) : this.present(json, p.maxAttendees, role),
          src,
          order,
          ...t,
          updatedMs: this.updatedMs(json),
          cancelled,
        });
      });
      const sorted = this.filterAndSort(items, { ...p, orderBy: 'startTime' });
      listing = { calendarId: cal.id, fingerprint: p.fingerprint, items: sorted.map((i) => i.json), syncSeq: undefined };
    }
    const page = listing.items.slice(offset, offset + p.maxResults);
    const res: Json = {
      kind: 'calendar#events',
      etag: master.data['etag'],
      summary: cal.summary,
      description: cal.description,
      updated: cal.updated,
      timeZone: p.timeZone ?? cal.timeZone,
      accessRole: role,
      defaultReminders: [],
    };
    if (offset + page.length < listing.items.length) {
      const token = randomToken();
      this.pageTokens.set(token, { listing, offset: offset + page.length });
      res['nextPageToken'] = token;
    }
    res['items'] = page;
    return res;
  }

  /**
   * Busy intervals of one calendar in [timeMin, timeMax), in epoch milliseconds, sorted, overlapping ones merged: events
   * (recurring ones expanded) that are opaque, not cancelled, not declined by the calendar's owner.
   */
  busy(calendarId: string, timeMin: DateTime, timeMax: DateTime): { s: number; e: number }[] {
    const cal = this.calendar(calendarId);
    const p = this.parseListParams(cal.id, {
      singleEvents: 'true',
      timeMin: timeMin.toUTC().toISO() ?? '',
      timeMax: timeMax.toUTC().toISO() ?? '',
    });
    const spans = this.collect(cal, p, undefined, 'owner')
      .filter((it) => !it.cancelled && it.src['transparency'] !== 'transparent')
      .filter((it) => {
        const att = Array.isArray(it.src['attendees']) ? (it.src['attendees'] as Json[]) : [];
        return !att.some((a) => a['self'] === true && a['responseStatus'] === 'declined');
      })
      .map((it) => ({ s: Math.max(it.startMs, timeMin.toMillis()), e: Math.min(it.endMs, timeMax.toMillis()) }))
      .filter((x) => x.e > x.s)
      .sort((a, b) => a.s - b.s);
    const merged: { s: number; e: number }[] = [];
    for (const x of spans) {
      const last = merged[merged.length - 1];
      if (last && x.s <= last.e) last.e = Math.max(last.e, x.e);
      else merged.push({ ...x });
    }
    return merged;
  }
}
