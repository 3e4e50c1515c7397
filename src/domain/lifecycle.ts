// What happens to each session: from the previous state of an event and its new snapshot (or a
// tombstone), the transitions: scheduled, rescheduled, moved, cancelled (by whom, how late),
// declined, restored, attended, no-show, series ended. Pure: state in, state and transitions out.
import type { CalendarItem, LiveEvent, Tombstone } from '../../connectors/types.js';
import { clientOf, recognise, viewOf, type ClientRef, type Decision, type EventView } from './recognise.js';
import type { CalendarInfo, Rules } from './rules.js';
import { eventTimeText, isoInstant } from './time.js';

export type SessionStatus = 'scheduled' | 'cancelled' | 'declined' | 'attended' | 'no_show';
export type CancelledBy = 'client' | 'therapist' | 'unknown' | 'series';

export interface CancelInfo {
  by: CancelledBy;
  /** When the cancellation was first seen (the round's time), ISO. */
  seenAt: string;
  /** Hours between seenAt and the session's start (negative: seen after it started). */
  noticeHours: number;
  late: boolean;
  reason: string;
}

export interface AppointmentState {
  /** Stable id of the appointment: "calendarId/eventId" of the event it was first seen as. */
  key: string;
  calendarId: string;
  eventId: string;
  iCalUID: string | null;
  seriesId: string | null;
  originalStart: string | null;
  decision: Decision;
  client: ClientRef | null;
  startMs: number;
  endMs: number;
  zone: string;
  status: SessionStatus;
  presumed: boolean;
  cancel: CancelInfo | null;
  organizerSelf: boolean;
  /** The client accepted the invitation at some point (a later decline is timed like a cancellation). */
  clientAccepted: boolean;
  /** It turned out to be the old copy of an event moved to another calendar: that one counts, not this. */
  movedTo: string | null;
  updated: string | null;
  /** `updated` in ms, to order copies without parsing. */
  updatedMs: number | null;
  version: string | null;
  /** When a live copy last changed it (a tombstone from an older round is a replay). */
  seenAtMs: number;
  /** Transitions so far: the next one's key ends in #(seq+1). */
  seq: number;
}

export type TransitionKind =
  | 'scheduled'
  | 'rescheduled'
  | 'moved'
  | 'cancelled'
  | 'declined'
  | 'restored'
  | 'attended'
  | 'no_show'
  | 'not_a_session'
  | 'series_ended'
  | 'series_replaced';

export interface Transition {
  /** Stable: the same input never yields another key; actions are keyed on it. */
  key: string;
  kind: TransitionKind;
  appointment: string;
  calendarId: string;
  eventId: string;
  client: string | null;
  /** When it happened, as far as we can know: when first seen, or the session's end for a presumed attendance. */
  at: string;
  /** The session's start (after the change). */
  start: string;
  detail: Record<string, unknown>;
}

export interface Ledger {
  appointments: Map<string, AppointmentState>;
  /** "calendarId/eventId" → appointment key (an appointment moves between calendars). */
  byEvent: Map<string, string>;
  /** Addresses an appointment moved away from → the last copy's updatedMs there (older copies are replays). */
  retired: Map<string, number>;
  /** "calendarId/seriesId" → the keys of its instances (deleting the series ends them). */
  bySeries: Map<string, string[]>;
  /** iCalUID → key(s) of appointments with it (a move seen across rounds); one key is the usual case. */
  byUid: Map<string, string | string[]>;
  knownClients: Set<string>;
  /** Scheduled sessions by end time, for presuming attendance without scanning everything. */
  ends: EndHeap;
}

export interface LedgerContext {
  rules: Rules;
  calendars: ReadonlyMap<string, CalendarInfo>;
  /** Identity key → the key the therapist linked it to. */
  links?: ReadonlyMap<string, string>;
  /** A calendar not listed is read as "mixed" in this zone. */
  defaultZone: string;
}

export interface Round {
  /** When the round was synced (RFC 3339). */
  at: string;
  items: readonly CalendarItem[];
}

export function createLedger(known: Iterable<string> = []): Ledger {
  return {
    appointments: new Map(),
    byEvent: new Map(),
    retired: new Map(),
    bySeries: new Map(),
    byUid: new Map(),
    knownClients: new Set(known),
    ends: new EndHeap(),
  };
}

/**
 * A ledger as plain JSON, to keep between rounds (the engine stores it sealed). The presumption
 * heap is not kept: restoreLedger rebuilds it from the scheduled sessions, which is what it holds.
 */
export function serializeLedger(ledger: Ledger): string {
  return JSON.stringify({
    v: 1,
    // A decision's reasons are read only when it is made (the transition of that round): a kept
    // ledger does without them, which makes it much smaller.
    appointments: [...ledger.appointments.values()].map((a) => (a.decision.reasons.length === 0 ? a : { ...a, decision: { appointment: a.decision.appointment, type: a.decision.type, reasons: [] } })),
    byEvent: [...ledger.byEvent],
    retired: [...ledger.retired],
    bySeries: [...ledger.bySeries],
    byUid: [...ledger.byUid],
    knownClients: [...ledger.knownClients],
  });
}

/** The ledger serializeLedger wrote (an empty one for undefined). */
export function restoreLedger(text: string | undefined): Ledger {
  const ledger = createLedger();
  if (text === undefined) return ledger;
  const data = JSON.parse(text) as {
    v: number;
    appointments: AppointmentState[];
    byEvent: [string, string][];
    retired: [string, number][];
    bySeries: [string, string[]][];
    byUid: [string, string | string[]][];
    knownClients: string[];
  };
  if (data.v !== 1) throw new Error(`unknown ledger format ${String(data.v)}`);
  for (const a of data.appointments) {
    ledger.appointments.set(a.key, a);
    if (a.status === 'scheduled' && a.decision.appointment && !a.movedTo) ledger.ends.push(a.key, a.endMs);
  }
  for (const [k, v] of data.byEvent) ledger.byEvent.set(k, v);
  for (const [k, v] of data.retired) ledger.retired.set(k, v);
  for (const [k, v] of data.bySeries) ledger.bySeries.set(k, v);
  for (const [k, v] of data.byUid) ledger.byUid.set(k, v);
  for (const k of data.knownClients) ledger.knownClients.add(k);
  return ledger;
}

/**
 * When the next attendance would be presumed (the earliest end of a session still scheduled), or
 * null: what the engine stores so a tick finds due presumptions without reading every ledger.
 * Drops stale heap entries on the way (sessions since moved or settled).
 */
export function nextPresumeMs(ledger: Ledger, ctx: LedgerContext): number | null {
  if (!ctx.rules.settings.presumeAttended) return null;
  for (;;) {
    const endMs = ledger.ends.peekEnd();
    if (endMs === Infinity) return null;
    const key = ledger.ends.peekKey()!;
    const state = ledger.appointments.get(key);
    if (state && state.endMs === endMs && state.status === 'scheduled' && state.decision.appointment && !state.movedTo) return endMs;
    ledger.ends.popKey();
  }
}

const iso = isoInstant;
const eventKey = (calendarId: string, eventId: string) => `${calendarId}/${eventId}`;

const timeText = eventTimeText;

function calendarOf(ctx: LedgerContext, calendarId: string): CalendarInfo {
  return ctx.calendars.get(calendarId) ?? { role: 'mixed', name: calendarId, timeZone: ctx.defaultZone };
}

function addTo(index: Map<string, string[]>, k: string, key: string): void {
  const list = index.get(k);
  if (!list) index.set(k, [key]);
  else if (!list.includes(key)) list.push(key);
}

/** Like addTo, without an array for the (usual) single key. */
function addUid(index: Map<string, string | string[]>, k: string, key: string): void {
  const found = index.get(k);
  if (found === undefined) index.set(k, key);
  else if (typeof found === 'string') {
    if (found !== key) index.set(k, [found, key]);
  } else if (!found.includes(key)) found.push(key);
}

function uidKeys(index: Map<string, string | string[]>, k: string): readonly string[] {
  const found = index.get(k);
  return found === undefined ? [] : typeof found === 'string' ? [found] : found;
}


interface Pending {
  state: AppointmentState;
  kind: TransitionKind;
  at: string;
  detail: Record<string, unknown>;
}

const isCancelled = (s: SessionStatus) => s === 'cancelled' || s === 'declined';
const hasAccepted = (a: { response: string }) => a.response === 'accepted' || a.response === 'tentative';
/** An older copy than the one we have (replays and duplicates arrive out of order). */
const isOlder = (updatedMs: number, than: number | null | undefined) => than !== null && than !== undefined && updatedMs < than;

/**
 * Applies one sync round: its items (a tombstone and a new event with the same iCalUID in the
 * round are a move), then attendance presumed up to the round's time, so a presumption never
 * precedes news in the same round. Returns the round's transitions in order. The same round
 * applied again yields nothing; the order of items within a round does not change the outcome.
 */
export function applyRound(ledger: Ledger, round: Round, ctx: LedgerContext): Transition[] {
  const atMs = Date.parse(round.at);
  const at = iso(atMs);
  const pending: Pending[] = [];

  // The last word on each event in the round wins (duplicates and replays happen).
  const items = round.items;
  const lastIndex = new Map<string, number>();
  const addresses: string[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const k = eventKey(items[i]!.calendarId, items[i]!.eventId);
    addresses[i] = k;
    lastIndex.set(k, i);
  }
  // Then in a fixed order (by address), so the order a platform happened to list them in never
  // changes the outcome (which copy of an event moved where, which key a new appointment gets).
  const order = [...lastIndex.values()].sort((a, b) => (addresses[a]! < addresses[b]! ? -1 : 1));
  const lives: LiveEvent[] = [];
  const gone: (Tombstone | LiveEvent)[] = [];
  for (const i of order) {
    const item = items[i]!;
    if (item.kind === 'tombstone' || item.status === 'cancelled') gone.push(item);
    else lives.push(item);
  }

  // Moves: the old copy goes, a new copy with the same iCalUID (and instance) comes, in one round.
  // Only the iCalUIDs of appointments that went in this round are worth looking for.
  const goneUids = new Set<string>();
  for (const g of gone) {
    const key = ledger.byEvent.get(eventKey(g.calendarId, g.eventId));
    const uid = key ? ledger.appointments.get(key)?.iCalUID : undefined;
    if (uid) goneUids.add(uid);
  }
  const newByUid = new Map<string, LiveEvent>();
  if (goneUids.size > 0) {
    for (const e of lives) {
      if (e.iCalUID && goneUids.has(e.iCalUID) && !ledger.byEvent.has(eventKey(e.calendarId, e.eventId))) newByUid.set(`${e.iCalUID}|${timeText(e.originalStart)}`, e);
    }
  }
  const movedAway = new Set<string>();
  for (const g of gone) {
    const address = eventKey(g.calendarId, g.eventId);
    const key = ledger.byEvent.get(address);
    const state = key ? ledger.appointments.get(key) : undefined;
    if (!state?.iCalUID || !state.decision.appointment) continue;
    const target = newByUid.get(`${state.iCalUID}|${state.originalStart}`);
    if (!target) continue;
    newByUid.delete(`${state.iCalUID}|${state.originalStart}`);
    ledger.byEvent.delete(address);
    ledger.retired.set(address, state.updatedMs ?? 0);
    const from = state.calendarId;
    state.calendarId = target.calendarId;
    state.eventId = target.eventId;
    ledger.byEvent.set(eventKey(target.calendarId, target.eventId), state.key);
    movedAway.add(address);
    pending.push({ state, kind: 'moved', at, detail: { fromCalendar: from, toCalendar: target.calendarId } });
  }

  // Live copies first, then what went: a deletion is judged against the round's final picture
  // (a move whose new copy came earlier). A client becomes known by a session in this round; an event that only that would have made a
  // session is looked at again, so the order of items in the round does not matter.
  const reconsider: LiveEvent[] = [];
  for (const e of lives) {
    if (applyLive(ledger, e, atMs, ctx, pending) === 'needs-known-client') reconsider.push(e);
  }
  for (const e of reconsider) {
    const state = ledger.appointments.get(ledger.byEvent.get(eventKey(e.calendarId, e.eventId))!)!;
    if (!state.client || !ledger.knownClients.has(state.client.key)) continue;
    state.version = null; // look at it again
    applyLive(ledger, e, atMs, ctx, pending);
  }
  const seriesCancels = new Map<string, Pending[]>();
  const noteSeries = (p: Pending) => {
    if (p.kind === 'cancelled' && p.state.seriesId && p.state.startMs > atMs) {
      const k = `${p.state.calendarId}/${p.state.seriesId}`;
      seriesCancels.set(k, [...(seriesCancels.get(k) ?? []), p]);
    }
  };
  for (const g of gone) {
    const address = eventKey(g.calendarId, g.eventId);
    if (movedAway.has(address)) continue;
    if (!ledger.byEvent.has(address)) {
      // Not an event we know: perhaps the series itself (its master) was deleted.
      for (const p of endSeries(ledger, address, atMs, ctx)) {
        pending.push(p);
        noteSeries(p);
      }
      continue;
    }
    const p = applyGone(ledger, g, atMs, ctx, pending);
    if (!p) continue;
    pending.push(p);
    noteSeries(p);
  }

  collapseSeries(ledger, seriesCancels, atMs, pending);
  presume(ledger, atMs, ctx, pending);
  return finish(pending);
}

/** Presumes attendance for sessions that ended by `nowMs` (when the practice chose presumption). */
export function presumeUntil(ledger: Ledger, now: string, ctx: LedgerContext): Transition[] {
  const pending: Pending[] = [];
  presume(ledger, Date.parse(now), ctx, pending);
  return finish(pending);
}

function presume(ledger: Ledger, nowMs: number, ctx: LedgerContext, pending: Pending[]): void {
  if (!ctx.rules.settings.presumeAttended) return;
  while (ledger.ends.peekEnd() <= nowMs) {
    const endMs = ledger.ends.peekEnd();
    const state = ledger.appointments.get(ledger.ends.popKey()!);
    // Entries go stale when a session moves or changes state: only a live match counts.
    if (!state || state.endMs !== endMs) continue;
    presumeOne(state, pending);
  }
}

/** The detail of a scheduled transition, shared like the decision it comes from. */
const scheduledDetails = new WeakMap<Decision, Record<string, unknown>>();
function scheduledDetail(decision: Decision): Record<string, unknown> {
  let d = scheduledDetails.get(decision);
  if (!d) {
    d = Object.freeze({ reasons: decision.reasons, type: decision.type });
    scheduledDetails.set(decision, d);
  }
  return d;
}

/** The detail of every presumed attendance: one frozen object. */
const PRESUMED: Record<string, unknown> = Object.freeze({ presumed: true });

function presumeOne(state: AppointmentState, pending: Pending[]): boolean {
  if (state.status !== 'scheduled' || !state.decision.appointment || state.movedTo) return false;
  state.status = 'attended';
  state.presumed = true;
  pending.push({ state, kind: 'attended', at: iso(state.endMs), detail: PRESUMED });
  return true;
}

function finish(pending: Pending[]): Transition[] {
  return pending.map((p) => {
    const s = p.state;
    s.seq += 1;
    return {
      key: `${s.key}#${s.seq}:${p.kind}`,
      kind: p.kind,
      appointment: s.key,
      calendarId: s.calendarId,
      eventId: s.eventId,
      client: s.client?.key ?? null,
      at: p.at,
      start: iso(s.startMs),
      detail: p.detail,
    };
  });
}

function cancelInfo(state: AppointmentState, atMs: number, by: CancelledBy, reason: string, lateCancelMs: number, timed = true): CancelInfo {
  const noticeMs = state.startMs - atMs;
  return { by, seenAt: iso(atMs), noticeHours: Math.round((noticeMs / 3_600_000) * 100) / 100, late: timed && noticeMs < lateCancelMs, reason };
}

function cancelDetail(c: CancelInfo): Record<string, unknown> {
  return { by: c.by, late: c.late, noticeHours: c.noticeHours, reason: c.reason };
}

/**
 * A tombstone, or a live copy with status cancelled: the event was deleted or cancelled. A deletion
 * of a session that had already ended is tidying up, not a cancellation: with presumption it was
 * attended; without, it is recorded as cancelled after the fact, never as late.
 */
function applyGone(ledger: Ledger, item: Tombstone | LiveEvent, atMs: number, ctx: LedgerContext, pending: Pending[]): Pending | null {
  const key = ledger.byEvent.get(eventKey(item.calendarId, item.eventId));
  const state = key ? ledger.appointments.get(key) : undefined;
  if (!state || !state.decision.appointment || state.movedTo) return null;
  if (item.kind === 'event' && isOlder(Date.parse(item.updated), state.updatedMs)) return null; // stale replay
  if (item.kind === 'tombstone' && atMs < state.seenAtMs) return null; // a replay from before the copy we have
  if (isCancelled(state.status)) return null; // a decline, then the therapist deleted it: one cancellation
  if (item.kind === 'event') {
    state.updated = item.updated;
    state.updatedMs = Date.parse(item.updated);
    state.version = item.version;
  }
  // The old copy of a move whose new copy came in an earlier round: a move, not a cancellation.
  const twin = movedTwin(ledger, state);
  if (twin) {
    state.movedTo = twin.key;
    return { state, kind: 'moved', at: iso(atMs), detail: { fromCalendar: state.calendarId, toCalendar: twin.calendarId, to: twin.key } };
  }
  if (state.endMs <= atMs) {
    if (state.status !== 'scheduled') return null;
    if (ctx.rules.settings.presumeAttended) {
      presumeOne(state, pending);
      return null;
    }
    state.status = 'cancelled';
    state.cancel = { ...cancelInfo(state, atMs, 'unknown', 'the event was deleted after the session time', ctx.rules.lateCancelMs, false) };
    return { state, kind: 'cancelled', at: iso(atMs), detail: { ...cancelDetail(state.cancel), afterEnd: true } };
  }
  const by: CancelledBy = !state.organizerSelf ? 'client' : 'unknown';
  const reason = item.kind === 'tombstone' ? 'the event was deleted' : 'the event was cancelled';
  state.cancel = cancelInfo(state, atMs, by, by === 'client' ? `${reason} by its organizer, the client` : reason, ctx.rules.lateCancelMs);
  state.status = 'cancelled';
  return { state, kind: 'cancelled', at: iso(atMs), detail: cancelDetail(state.cancel) };
}

/** Another live appointment with the same iCalUID and instance on another calendar. */
function movedTwin(ledger: Ledger, state: AppointmentState): AppointmentState | undefined {
  if (!state.iCalUID) return undefined;
  for (const other of uidKeys(ledger.byUid, state.iCalUID)) {
    if (other === state.key) continue;
    const o = ledger.appointments.get(other);
    if (o && o.originalStart === state.originalStart && o.calendarId !== state.calendarId && o.decision.appointment && !o.movedTo && !isCancelled(o.status)) return o;
  }
  return undefined;
}

/** The master of a series was deleted: its future instances that are still booked end with it. */
function endSeries(ledger: Ledger, seriesAddress: string, atMs: number, ctx: LedgerContext): Pending[] {
  const out: Pending[] = [];
  for (const key of ledger.bySeries.get(seriesAddress) ?? []) {
    const state = ledger.appointments.get(key);
    if (!state || !state.decision.appointment || state.status !== 'scheduled' || state.startMs <= atMs || state.movedTo) continue;
    state.status = 'cancelled';
    state.cancel = cancelInfo(state, atMs, 'unknown', 'the series was deleted', ctx.rules.lateCancelMs);
    out.push({ state, kind: 'cancelled', at: iso(atMs), detail: cancelDetail(state.cancel) });
  }
  return out;
}

interface Outcome {
  status: SessionStatus;
  by?: CancelledBy;
  reason: string;
  marked: boolean;
}

function outcomeOf(view: EventView, client: ClientRef | null): Outcome {
  if (view.mark) {
    const m = view.mark;
    switch (m.mark) {
      case 'no_show':
        return { status: 'no_show', reason: m.reason, marked: true };
      case 'attended':
        return { status: 'attended', reason: m.reason, marked: true };
      case 'client_cancelled':
        return { status: 'cancelled', by: 'client', reason: m.reason, marked: true };
      case 'therapist_cancelled':
        return { status: 'cancelled', by: 'therapist', reason: m.reason, marked: true };
      case 'cancelled':
        return { status: 'cancelled', by: 'unknown', reason: m.reason, marked: true };
    }
  }
  const e = view.event;
  // The client organised it and the therapist declined: the therapist's cancellation.
  if (e.organizer && !e.organizer.self && e.attendees.some((a) => a.self && a.response === 'declined')) {
    return { status: 'cancelled', by: 'therapist', reason: 'the therapist declined', marked: false };
  }
  if (client?.kind === 'email' && view.externals.length > 0 && view.externals.every((a) => a.response === 'declined')) {
    return { status: 'declined', by: 'client', reason: view.externals.length > 1 ? 'every client attendee declined' : 'the client declined', marked: false };
  }
  return { status: 'scheduled', reason: '', marked: false };
}

/** Applies a live copy. Returns "needs-known-client" when only an unknown client kept it from being a session. */
function applyLive(ledger: Ledger, e: LiveEvent, atMs: number, ctx: LedgerContext, pending: Pending[]): 'needs-known-client' | void {
  const k = eventKey(e.calendarId, e.eventId);
  const existingKey = ledger.byEvent.get(k);
  let state = existingKey ? ledger.appointments.get(existingKey) : undefined;
  const updatedMs = Date.parse(e.updated);
  const retired = ledger.retired.get(k);
  if (!state && retired !== undefined && updatedMs <= retired) return; // an old copy of an event that moved away
  if (state && isOlder(updatedMs, state.updatedMs)) return; // stale replay
  if (state && state.version === e.version && state.updatedMs === updatedMs && state.calendarId === e.calendarId) return; // seen

  const calendar = calendarOf(ctx, e.calendarId);
  const view = viewOf(e, calendar, ctx.rules);
  const client = clientOf(view, ctx.rules, ctx.links);
  const decision = recognise(view, ctx.rules, { calendar, knownClients: ledger.knownClients }, client);
  const at = iso(atMs);
  const accepted = view.externals.some(hasAccepted);
  const waitsForClient = !decision.appointment && client !== null && view.externals.length > 0 && decision.reasons[0]!.includes('but nothing else marks it');

  if (!state) {
    // The key is the event's first address; an address reused after its appointment moved away
    // (same id back on the old calendar) gets a suffix, so two appointments never share a key.
    let key = k;
    for (let n = 2; ledger.appointments.has(key); n++) key = `${k}~${n}`;
    state = {
      key,
      calendarId: e.calendarId,
      eventId: e.eventId,
      iCalUID: e.iCalUID,
      seriesId: e.seriesId,
      originalStart: timeText(e.originalStart),
      decision,
      client,
      startMs: view.startMs,
      endMs: view.endMs,
      zone: view.zone,
      status: 'scheduled',
      presumed: false,
      cancel: null,
      organizerSelf: e.organizer ? e.organizer.self : true,
      clientAccepted: accepted,
      movedTo: null,
      updated: e.updated,
      updatedMs,
      version: e.version,
      seenAtMs: atMs,
      seq: 0,
    };
    ledger.appointments.set(key, state);
    ledger.byEvent.set(k, key);
    if (e.seriesId) addTo(ledger.bySeries, `${e.calendarId}/${e.seriesId}`, key);
    // Only appointments can be the two copies of a move; other events need no place in the index.
    if (e.iCalUID && decision.appointment) addUid(ledger.byUid, e.iCalUID, key);
    if (!decision.appointment) return waitsForClient ? 'needs-known-client' : undefined;
    if (client) ledger.knownClients.add(client.key);
    pending.push({ state, kind: 'scheduled', at, detail: scheduledDetail(decision) });
    settle(ledger, state, view, client, atMs, ctx, pending, true, true, false);
    return;
  }

  const wasAppointment = state.decision.appointment;
  const previousStart = state.startMs;
  const previousEnd = state.endMs;
  const acceptedBefore = state.clientAccepted;
  if (e.iCalUID && (e.iCalUID !== state.iCalUID || (decision.appointment && !state.decision.appointment))) {
    state.iCalUID = e.iCalUID;
    if (decision.appointment) addUid(ledger.byUid, e.iCalUID, state.key);
  }
  state.decision = decision;
  state.client = client;
  state.organizerSelf = e.organizer ? e.organizer.self : state.organizerSelf;
  state.clientAccepted = acceptedBefore || accepted;
  state.updated = e.updated;
  state.updatedMs = updatedMs;
  state.version = e.version;
  state.seenAtMs = atMs;
  state.zone = view.zone;
  if (!decision.appointment) {
    state.startMs = view.startMs;
    state.endMs = view.endMs;
    if (wasAppointment) pending.push({ state, kind: 'not_a_session', at, detail: { reasons: decision.reasons } });
    return waitsForClient ? 'needs-known-client' : undefined;
  }
  if (client) ledger.knownClients.add(client.key);
  if (!wasAppointment) {
    state.startMs = view.startMs;
    state.endMs = view.endMs;
    state.status = 'scheduled';
    state.presumed = false;
    state.cancel = null;
    state.movedTo = null;
    pending.push({ state, kind: 'scheduled', at, detail: scheduledDetail(decision) });
    settle(ledger, state, view, client, atMs, ctx, pending, true, true, acceptedBefore);
    return;
  }
  let movedWhileCancelled = false;
  if (view.startMs !== previousStart) {
    state.startMs = view.startMs;
    state.endMs = view.endMs;
    if (isCancelled(state.status)) movedWhileCancelled = true;
    else {
      if (state.status === 'attended' && state.presumed) {
        state.status = 'scheduled'; // moved after it was presumed: the new time decides
        state.presumed = false;
      }
      pending.push({ state, kind: 'rescheduled', at, detail: { from: iso(previousStart), to: iso(view.startMs) } });
    }
  } else if (view.endMs !== state.endMs) {
    state.endMs = view.endMs;
  }
  settle(ledger, state, view, client, atMs, ctx, pending, false, state.endMs !== previousEnd, acceptedBefore);
  // Declined (or cancelled), then moved to a new time and back on: restored, and at the new time.
  if (movedWhileCancelled && !isCancelled(state.status)) {
    pending.push({ state, kind: 'rescheduled', at, detail: { from: iso(previousStart), to: iso(view.startMs) } });
  }
}

/** Moves the state to what the event now says, with the transition that says so. */
function settle(
  ledger: Ledger,
  state: AppointmentState,
  view: EventView,
  client: ClientRef | null,
  atMs: number,
  ctx: LedgerContext,
  pending: Pending[],
  fresh: boolean,
  /** The end moved (or is new): a scheduled session needs a new place in the presumption heap. */
  endChanged: boolean,
  /** The client had accepted before this copy (a decline is then timed like a cancellation). */
  acceptedBefore: boolean,
): void {
  const next = outcomeOf(view, client);
  const at = iso(atMs);
  const prev = state.status;
  if (next.status === 'scheduled') {
    if (prev === 'scheduled' || (prev === 'attended' && state.presumed)) {
      if (prev === 'scheduled' && endChanged) ledger.ends.push(state.key, state.endMs);
      return;
    }
    state.status = 'scheduled';
    state.presumed = false;
    state.cancel = null;
    ledger.ends.push(state.key, state.endMs);
    if (!fresh) pending.push({ state, kind: 'restored', at, detail: {} });
    return;
  }
  if (next.status === 'cancelled' || next.status === 'declined') {
    if (isCancelled(prev)) {
      // Already a cancellation: its timing stands, but the therapist's mark may say who it was.
      if (next.marked && state.cancel && next.by && next.by !== state.cancel.by) state.cancel = { ...state.cancel, by: next.by, reason: next.reason };
      return;
    }
    // A decline of an invitation never accepted is the client's cancellation, but not timed as one.
    const timed = next.status !== 'declined' || acceptedBefore;
    state.status = next.status;
    state.presumed = false;
    state.cancel = cancelInfo(state, atMs, next.by ?? 'unknown', timed ? next.reason : `${next.reason} (the invitation was never accepted)`, ctx.rules.lateCancelMs, timed);
    pending.push({ state, kind: next.status, at, detail: cancelDetail(state.cancel) });
    return;
  }
  // attended or no_show, marked by the therapist
  if (prev === next.status) {
    state.presumed = false;
    return;
  }
  state.status = next.status;
  state.presumed = false;
  state.cancel = null;
  pending.push({ state, kind: next.status, at, detail: { marked: next.reason } });
}

/**
 * Several future occurrences of one series cancelled in one round ("this and following" ended it,
 * or its master was deleted): one series transition instead of a cancellation each. Ended when the
 * client has nothing booked after; replaced when they do (the series was moved to another time).
 */
function collapseSeries(ledger: Ledger, groups: Map<string, Pending[]>, atMs: number, pending: Pending[]): void {
  for (const [seriesAddress, cancels] of groups) {
    if (cancels.length < 2) continue;
    const seriesId = cancels[0]!.state.seriesId;
    const client = cancels[0]!.state.client?.key ?? null;
    let stillBooked = false;
    let bookedAfter = false;
    for (const key of ledger.bySeries.get(seriesAddress) ?? []) {
      const s = ledger.appointments.get(key);
      if (s && s.decision.appointment && s.status === 'scheduled' && s.startMs > atMs) stillBooked = true;
    }
    if (stillBooked) continue; // some occurrences remain: these are single cancellations
    if (client) {
      for (const s of ledger.appointments.values()) {
        if (s.decision.appointment && s.status === 'scheduled' && s.startMs > atMs && s.client?.key === client && !s.movedTo) bookedAfter = true;
      }
    }
    const dropped = new Set(cancels);
    for (let i = pending.length - 1; i >= 0; i--) if (dropped.has(pending[i]!)) pending.splice(i, 1);
    const first = cancels.reduce((a, b) => (a.state.startMs <= b.state.startMs ? a : b));
    for (const c of cancels) {
      c.state.cancel = { ...c.state.cancel!, by: 'series', late: false, reason: 'the series was ended' };
    }
    pending.push({
      state: first.state,
      kind: bookedAfter ? 'series_replaced' : 'series_ended',
      at: iso(atMs),
      detail: { seriesId, occurrences: cancels.length, from: iso(first.state.startMs) },
    });
  }
}

/** A binary min-heap of (endMs, appointment key), in two parallel arrays: no object per entry. */
export class EndHeap {
  readonly #ends: number[] = [];
  readonly #keys: string[] = [];

  get size(): number {
    return this.#ends.length;
  }

  push(key: string, endMs: number): void {
    const e = this.#ends;
    const k = this.#keys;
    let i = e.length;
    e.push(endMs);
    k.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (e[p]! <= endMs) break;
      e[i] = e[p]!;
      k[i] = k[p]!;
      i = p;
    }
    e[i] = endMs;
    k[i] = key;
  }

  /** The earliest end, without making an object (Infinity when empty). */
  peekEnd(): number {
    return this.#ends.length === 0 ? Infinity : this.#ends[0]!;
  }

  /** The key of the earliest entry (undefined when empty). */
  peekKey(): string | undefined {
    return this.#keys[0];
  }

  /** Removes the earliest entry and returns its key. */
  popKey(): string | undefined {
    const e = this.#ends;
    const k = this.#keys;
    if (e.length === 0) return undefined;
    const top = k[0];
    const lastEnd = e.pop()!;
    const lastKey = k.pop()!;
    const n = e.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && e[r]! < e[l]! ? r : l;
        if (e[m]! >= lastEnd) break;
        e[i] = e[m]!;
        k[i] = k[m]!;
        i = m;
      }
      e[i] = lastEnd;
      k[i] = lastKey;
    }
    return top;
  }
}
