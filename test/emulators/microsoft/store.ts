// The mailboxes behind the Microsoft emulator: calendars, events, series with occurrences and exceptions, the change
// sequence that delta tokens read (delta-query-events.md, event-delta.md) and the windows of calendarView / instances.
import crypto from 'node:crypto';
import { DateTime } from 'luxon';
import type { Clock } from '../../../src/clock.js';
import * as E from './errors.js';
import {
  defaultFields,
  deriveChangeKey,
  isObject,
  newChangeKey,
  newEventId,
  newICalUId,
  occurrenceICalUId,
  occurrenceId,
  occurrenceKey,
  parseOccurrenceId,
  parseWrite,
  type Actor,
  type EventRecord,
  type Instance,
  type Json,
  type Timing,
} from './events.js';
import { expandRecurrence } from './recurrence.js';
import { resolveZone } from './timezones.js';

export interface Calendar {
  id: string;
  oid: string;
  name: string;
  isDefault: boolean;
  canEdit: boolean;
  color: string;
  hexColor: string;
  changeKey: string;
}

export type ChangeType = 'created' | 'updated' | 'deleted';

/** What subscriptions hear about: one event of one calendar changed. */
export interface Change {
  oid: string;
  calendarId: string;
  eventId: string;
  changeType: ChangeType;
  changeKey: string;
}

interface Tombstone {
  id: string;
  oid: string;
  calendarId: string;
  seq: number;
}

export type DeltaEntry = { removed: string } | { inst: Instance };

export interface DeltaState {
  /** The change sequence the round was computed at. */
  seq: number;
  /** Ids the client holds as live in the window after the round. */
  known: Set<string>;
}

const COLORS: ReadonlyArray<[string, string]> = [
  ['auto', ''],
  ['lightBlue', '#a6d1f5'],
  ['lightGreen', '#87d28e'],
  ['lightOrange', '#fcab73'],
  ['lightGray', '#c0c0c0'],
];

/** Far enough ahead to find a series' first occurrence (yearly patterns included). */
const FIRST_OCCURRENCE_HORIZON = { years: 30 };

export function newCalendarId(): string {
  return `AAMkAGI2${crypto.randomBytes(30).toString('base64url')}AAA=`;
}

function overlaps(t: Timing, from: DateTime, to: DateTime): boolean {
  const s = t.start.toMillis();
  const e = t.end.toMillis();
  if (s >= to.toMillis()) return false;
  return e > from.toMillis() || (e === s && s >= from.toMillis());
}

export class GraphStore {
  readonly calendars = new Map<string, Calendar>();
  readonly records = new Map<string, EventRecord>();
  private readonly tombstones: Tombstone[] = [];
  private seq = 0;
  private readonly clock: Clock;
  private readonly owner: (oid: string) => { name: string; address: string };
  private readonly onChange: (c: Change) => void;

  constructor(clock: Clock, owner: (oid: string) => { name: string; address: string }, onChange: (c: Change) => void) {
    this.clock = clock;
    this.owner = owner;
    this.onChange = onChange;
  }

  currentSeq(): number {
    return this.seq;
  }

  // ---- calendars -------------------------------------------------------------------------------------------

  addCalendar(oid: string, c: { id?: string; name: string; isDefault?: boolean; canEdit?: boolean }): Calendar {
    const id = c.id ?? newCalendarId();
    if (this.calendars.has(id)) throw new Error(`Microsoft emulator: calendar id ${id} already exists`);
    const n = this.calendarsOf(oid).length;
    const [color, hexColor] = COLORS[n % COLORS.length]!;
    if (c.isDefault) for (const other of this.calendarsOf(oid)) other.isDefault = false;
    const cal: Calendar = { id, oid, name: c.name, isDefault: c.isDefault ?? false, canEdit: c.canEdit ?? true, color, hexColor, changeKey: newChangeKey() };
    this.calendars.set(id, cal);
    return cal;
  }

  calendarsOf(oid: string): Calendar[] {
    return [...this.calendars.values()].filter((c) => c.oid === oid);
  }

  defaultCalendar(oid: string): Calendar {
    const c = this.calendarsOf(oid).find((x) => x.isDefault);
    if (!c) throw new Error(`Microsoft emulator: user ${oid} has no default calendar`);
    return c;
  }

  calendarFor(oid: string, id: string): Calendar | undefined {
    const c = this.calendars.get(id);
    return c && c.oid === oid ? c : undefined;
  }

  // ---- instances -------------------------------------------------------------------------------------------

  private seriesZone(master: EventRecord): string {
    const rz = master.recurrence ? resolveZone(master.recurrence.range.recurrenceTimeZone) : undefined;
    return rz ?? master.timing.start.zoneName ?? 'UTC';
  }

  /** Occurrence starts of a series (in the series zone), before `until`. */
  private occurrenceStarts(master: EventRecord, until: DateTime, limit?: number): DateTime[] {
    if (!master.recurrence) return [];
    return expandRecurrence(master.recurrence, master.timing.start.setZone(this.seriesZone(master)), until, limit);
  }

  private occurrenceTiming(master: EventRecord, start: DateTime): Timing {
    const t = master.timing;
    const startInZone = start.setZone(t.start.zoneName ?? 'UTC');
    const end = t.isAllDay
      ? startInZone.plus({ days: Math.round(t.end.diff(t.start, 'days').days) })
      : startInZone.plus({ milliseconds: t.end.toMillis() - t.start.toMillis() });
    return { start: startInZone, end: end.setZone(t.end.zoneName ?? 'UTC'), startTz: t.startTz, endTz: t.endTz, isAllDay: t.isAllDay };
  }

  private occurrence(master: EventRecord, start: DateTime): Instance {
    const key = occurrenceKey(start);
    return {
      id: occurrenceId(master.id, key),
      type: 'occurrence',
      calendarId: master.calendarId,
      record: master,
      master,
      fields: master.fields,
      timing: this.occurrenceTiming(master, start),
      changeKey: master.seriesChangeKey,
      created: master.created,
      modified: master.modified,
      iCalUId: occurrenceICalUId(master.iCalUId, start),
      version: master.seriesSeq,
      originalStart: start.toUTC(),
    };
  }

  private instanceOfRecord(rec: EventRecord): Instance {
    if (rec.kind === 'exception') {
      const master = this.records.get(rec.seriesMasterId ?? '');
      if (!master) throw new Error(`Microsoft emulator: exception ${rec.id} without its series`);
      const fresh = rec.changeSeq >= master.seriesSeq;
      const inst: Instance = {
        id: rec.id,
        type: 'exception',
        calendarId: rec.calendarId,
        record: rec,
        master,
        fields: { ...master.fields, ...rec.fields },
        timing: rec.timing,
        changeKey: fresh ? rec.changeKey : deriveChangeKey(rec.changeKey, master.seriesChangeKey),
        created: rec.created,
        modified: fresh ? rec.modified : master.modified,
        iCalUId: rec.iCalUId,
        version: Math.max(rec.changeSeq, master.seriesSeq),
      };
      if (rec.originalStart) inst.originalStart = rec.originalStart;
      return inst;
    }
    return {
      id: rec.id,
      type: rec.kind,
      calendarId: rec.calendarId,
      record: rec,
      fields: rec.fields,
      timing: rec.timing,
      changeKey: rec.changeKey,
      created: rec.created,
      modified: rec.modified,
      iCalUId: rec.iCalUId,
      version: rec.changeSeq,
    };
  }

  /** Any event of the user by id: stored events, exceptions and generated occurrences (not cancelled ones). */
  resolve(oid: string, id: string): Instance | undefined {
    const rec = this.records.get(id);
    if (rec) return rec.oid === oid ? this.instanceOfRecord(rec) : undefined;
    const occ = parseOccurrenceId(id);
    if (!occ) return undefined;
    const master = this.records.get(occ.masterId);
    if (!master || master.oid !== oid || master.kind !== 'seriesMaster') return undefined;
    if (master.cancelled.has(occ.key)) return undefined;
    const at = DateTime.fromFormat(occ.key, "yyyyMMdd'T'HHmmss'Z'", { zone: 'utc' });
    if (!at.isValid) return undefined;
    const start = this.occurrenceStarts(master, at.plus({ milliseconds: 1 })).find((s) => occurrenceKey(s) === occ.key);
    return start ? this.occurrence(master, start) : undefined;
  }

  /** Occurrences and exceptions of a series overlapping [from, to), by start (cancelled occurrences excluded). */
  seriesInstances(master: EventRecord, from: DateTime, to: DateTime): Instance[] {
    const out: Instance[] = [];
    for (const s of this.occurrenceStarts(master, to)) {
      const key = occurrenceKey(s);
      if (master.cancelled.has(key) || master.exceptions.has(key)) continue;
      const inst = this.occurrence(master, s);
      if (overlaps(inst.timing, from, to)) out.push(inst);
    }
    for (const exId of master.exceptions.values()) {
      const ex = this.records.get(exId);
      if (ex && overlaps(ex.timing, from, to)) out.push(this.instanceOfRecord(ex));
    }
    return out.sort(byStart);
  }

  /** calendarView: single instances, occurrences and exceptions of a calendar overlapping [from, to). */
  window(oid: string, calendarId: string, from: DateTime, to: DateTime): Instance[] {
    const out: Instance[] = [];
    for (const rec of this.records.values()) {
      if (rec.oid !== oid || rec.calendarId !== calendarId) continue;
      if (rec.kind === 'singleInstance' && overlaps(rec.timing, from, to)) out.push(this.instanceOfRecord(rec));
      if (rec.kind === 'seriesMaster') out.push(...this.seriesInstances(rec, from, to));
    }
    return out.sort(byStart);
  }

  /** /me/events: single instances and series masters (event.md "List events"). */
  list(oid: string, calendarId: string): Instance[] {
    return [...this.records.values()]
      .filter((r) => r.oid === oid && r.calendarId === calendarId && r.kind !== 'exception')
      .map((r) => this.instanceOfRecord(r));
  }

  private isCancelledInstance(id: string): boolean {
    const occ = parseOccurrenceId(id);
    if (!occ) return false;
    const master = this.records.get(occ.masterId);
    return master?.kind === 'seriesMaster' && master.cancelled.has(occ.key);
  }

  /**
   * One round of calendarView delta over [from, to). Without `since`: everything in the window (series masters in full,
   * their occurrences and exceptions, single instances). With `since`: items new to the client or changed after since.seq,
   * @removed for items the client held that left the window, and @removed for anything changed outside the window
   * (event-delta.md "Response"). A cancelled occurrence gives no item (API-NOTES): only its series master changes.
   */
  deltaRound(oid: string, calendarId: string, from: DateTime, to: DateTime, since?: DeltaState): { entries: DeltaEntry[]; state: DeltaState } {
    const instances = this.window(oid, calendarId, from, to);
    const masterIds = new Set(instances.filter((i) => i.master).map((i) => i.master!.id));
    const current: Instance[] = [];
    for (const id of masterIds) current.push(this.instanceOfRecord(this.records.get(id)!));
    current.push(...instances);
    current.sort(
      (a, b) =>
        a.timing.start.toMillis() - b.timing.start.toMillis() ||
        (a.type === 'seriesMaster' ? 0 : 1) - (b.type === 'seriesMaster' ? 0 : 1) ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    const currentIds = new Set(current.map((i) => i.id));
    const state: DeltaState = { seq: this.seq, known: currentIds };
    if (!since) return { entries: current.map((inst) => ({ inst })), state };

    const removed: string[] = [];
    const seen = new Set<string>();
    const remove = (id: string): void => {
      if (seen.has(id) || currentIds.has(id)) return;
      seen.add(id);
      removed.push(id);
    };
    for (const id of since.known) if (!this.isCancelledInstance(id)) remove(id);
    for (const rec of this.records.values()) {
      if (rec.oid === oid && rec.calendarId === calendarId && rec.changeSeq > since.seq) remove(rec.id);
    }
    for (const t of this.tombstones) if (t.oid === oid && t.calendarId === calendarId && t.seq > since.seq) remove(t.id);
    const changed = current.filter((i) => !since.known.has(i.id) || i.version > since.seq);
    return { entries: [...removed.map((id) => ({ removed: id })), ...changed.map((inst) => ({ inst }))], state };
  }

  // ---- writes ----------------------------------------------------------------------------------------------

  private touch(rec: EventRecord): void {
    this.seq += 1;
    rec.changeSeq = this.seq;
    rec.modified = this.clock.now().toUTC();
    rec.changeKey = newChangeKey();
  }

  private emit(rec: { oid: string; calendarId: string; id: string; changeKey: string }, changeType: ChangeType): void {
    this.onChange({ oid: rec.oid, calendarId: rec.calendarId, eventId: rec.id, changeType, changeKey: rec.changeKey });
  }

  private writable(oid: string, calendarId: string, actor: Actor): Calendar {
    const cal = this.calendarFor(oid, calendarId);
    if (!cal) throw E.itemNotFound();
    if (!cal.canEdit && actor === 'api') throw E.accessDenied();
    return cal;
  }

  /** Moves a series' first start onto its first occurrence (Outlook does so when the start is not a pattern date). */
  private alignSeries(rec: EventRecord): void {
    const first = this.occurrenceStarts(rec, rec.timing.start.plus(FIRST_OCCURRENCE_HORIZON), 1)[0];
    if (!first) throw E.invalidRequest("Your request can't be completed. The recurrence pattern has no occurrences.");
    rec.timing = this.occurrenceTiming(rec, first);
  }

  private dropExceptions(master: EventRecord): void {
    for (const exId of master.exceptions.values()) this.records.delete(exId);
    master.exceptions.clear();
    master.cancelled.clear();
  }

  create(oid: string, calendarId: string, body: Json, actor: Actor): Instance {
    const cal = this.writable(oid, calendarId, actor);
    const owner = this.owner(oid);
    if (typeof body['transactionId'] === 'string') {
      const same = [...this.records.values()].find((r) => r.oid === oid && r.fields['transactionId'] === body['transactionId']);
      if (same) return this.instanceOfRecord(same);
    }
    const parsed = parseWrite(body, { actor, create: true, owner, existingFields: {}, allowRecurrence: true });
    const fields: Json = { ...defaultFields(owner), ...parsed.fields };
    if (fields['isOrganizer'] === false && !isObject(parsed.fields['responseStatus'])) fields['responseStatus'] = { response: 'notResponded', time: '0001-01-01T00:00:00Z' };
    const now = this.clock.now().toUTC();
    const rec: EventRecord = {
      id: newEventId(),
      oid,
      calendarId: cal.id,
      kind: parsed.recurrence ? 'seriesMaster' : 'singleInstance',
      fields,
      timing: parsed.timing!,
      created: now,
      modified: now,
      changeKey: newChangeKey(),
      iCalUId: newICalUId(),
      changeSeq: 0,
      seriesSeq: 0,
      seriesChangeKey: '',
      cancelled: new Map(),
      exceptions: new Map(),
    };
    if (parsed.recurrence) {
      rec.recurrence = parsed.recurrence;
      this.alignSeries(rec);
    }
    this.touch(rec);
    rec.seriesSeq = rec.changeSeq;
    rec.seriesChangeKey = rec.changeKey;
    this.records.set(rec.id, rec);
    this.emit(rec, 'created');
    return this.instanceOfRecord(rec);
  }

  update(oid: string, id: string, body: Json, actor: Actor): Instance {
    const inst = this.resolve(oid, id);
    if (!inst) throw E.itemNotFound();
    this.writable(oid, inst.calendarId, actor);
    const owner = this.owner(oid);
    if (inst.type === 'occurrence' || inst.type === 'exception') {
      const master = inst.master!;
      const parsed = parseWrite(body, { actor, create: false, owner, existingFields: inst.fields, existingTiming: inst.timing, allowRecurrence: false });
      let ex = this.records.get(inst.id);
      if (!ex) {
        const key = occurrenceKey(inst.originalStart!);
        ex = {
          id: inst.id,
          oid,
          calendarId: master.calendarId,
          kind: 'exception',
          fields: {},
          timing: inst.timing,
          created: this.clock.now().toUTC(),
          modified: this.clock.now().toUTC(),
          changeKey: '',
          iCalUId: inst.iCalUId,
          changeSeq: 0,
          seriesSeq: 0,
          seriesChangeKey: '',
          cancelled: new Map(),
          exceptions: new Map(),
          seriesMasterId: master.id,
          originalStart: inst.originalStart!,
          occurrenceKey: key,
        };
        master.exceptions.set(key, ex.id);
        this.records.set(ex.id, ex);
      }
      ex.fields = { ...ex.fields, ...parsed.fields };
      if (parsed.timing) ex.timing = parsed.timing;
      this.touch(ex);
      this.emit(ex, 'updated');
      return this.instanceOfRecord(ex);
    }
    const rec = inst.record;
    const parsed = parseWrite(body, { actor, create: false, owner, existingFields: rec.fields, existingTiming: rec.timing, allowRecurrence: true });
    rec.fields = { ...rec.fields, ...parsed.fields };
    let seriesReset = false;
    if (parsed.timing) {
      rec.timing = parsed.timing;
      seriesReset = true;
    }
    if (parsed.recurrence === null) {
      if (rec.kind === 'seriesMaster') this.dropExceptions(rec);
      delete rec.recurrence;
      rec.kind = 'singleInstance';
    } else if (parsed.recurrence !== undefined) {
      rec.recurrence = parsed.recurrence;
      rec.kind = 'seriesMaster';
      seriesReset = true;
    } else if (rec.kind === 'seriesMaster' && parsed.timing && rec.recurrence) {
      // A new series start moves the range start with it (as Outlook does).
      const zone = this.seriesZone(rec);
      rec.recurrence = { ...rec.recurrence, range: { ...rec.recurrence.range, startDate: rec.timing.start.setZone(zone).toISODate() ?? rec.recurrence.range.startDate } };
    }
    if (rec.kind === 'seriesMaster' && seriesReset) {
      // Changing a series' times or pattern discards its exceptions and cancellations (Outlook's rule).
      this.dropExceptions(rec);
      this.alignSeries(rec);
    }
    this.touch(rec);
    if (rec.kind === 'seriesMaster') {
      rec.seriesSeq = rec.changeSeq;
      rec.seriesChangeKey = rec.changeKey;
    }
    this.emit(rec, 'updated');
    return this.instanceOfRecord(rec);
  }

  /** Deletes an event; on an occurrence or exception, cancels that instance of the series (only the master changes). */
  remove(oid: string, id: string, actor: Actor): void {
    const inst = this.resolve(oid, id);
    if (!inst) throw E.itemNotFound();
    this.writable(oid, inst.calendarId, actor);
    if (inst.type === 'occurrence' || inst.type === 'exception') {
      const master = inst.master!;
      const key = occurrenceKey(inst.originalStart!);
      if (inst.type === 'exception') {
        this.records.delete(inst.id);
        master.exceptions.delete(key);
      }
      this.touch(master);
      master.cancelled.set(key, master.changeSeq);
      this.emit(master, 'updated');
      return;
    }
    const rec = inst.record;
    this.records.delete(rec.id);
    this.seq += 1;
    this.tombstones.push({ id: rec.id, oid, calendarId: rec.calendarId, seq: this.seq });
    for (const exId of rec.exceptions.values()) {
      this.records.delete(exId);
      this.tombstones.push({ id: exId, oid, calendarId: rec.calendarId, seq: this.seq });
    }
    this.emit(rec, 'deleted');
  }

  /**
   * POST /events/{id}/cancel (organizer) and Outlook's "Cancel meeting": the organizer's copy turns isCancelled and is
   * then removed (an instance of a series is cancelled from it). An attendee's copy (the user is not the organizer)
   * stays, with isCancelled true and "Canceled: " before the subject, until the user deletes it.
   */
  cancel(oid: string, id: string, actor: Actor): void {
    const inst = this.resolve(oid, id);
    if (!inst) throw E.itemNotFound();
    const organizer = inst.fields['isOrganizer'] === true;
    if (!organizer && actor === 'api') {
      throw E.invalidRequest("Your request can't be completed. You need to be an organizer to cancel a meeting.");
    }
    if (organizer) {
      if (inst.type === 'occurrence' || inst.type === 'exception') return this.remove(oid, id, actor);
      this.update(oid, id, { isCancelled: true }, 'user');
      this.remove(oid, id, actor);
      return;
    }
    const subject = String(inst.fields['subject'] ?? '');
    this.update(oid, id, { isCancelled: true, subject: subject.startsWith('Canceled: ') ? subject : `Canceled: ${subject}` }, 'user');
  }
}

function byStart(a: Instance, b: Instance): number {
  return a.timing.start.toMillis() - b.timing.start.toMillis() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
