// From synced items to facts: the therapist's ledger (the domain's picture of their sessions) takes
// each sync round; its transitions, the appointments and clients they touch, the clients' risk
// signals and the actions they cause are written in the caller's transaction, the snapshots' one.
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Kysely } from 'kysely';
import type { CalendarItem } from '../../connectors/types.js';
import type { PracticeSettings } from '../config.js';
import { clientFigures, type ClientFigures, type RiskSignal } from '../domain/figures.js';
import { applyRound, nextPresumeMs, presumeUntil, restoreLedger, serializeLedger, type AppointmentState, type Ledger, type LedgerContext, type Transition } from '../domain/lifecycle.js';
import { compileRules, type CalendarInfo } from '../domain/rules.js';
import type { Keyring } from '../secrets.js';
import { enqueueActions } from '../store/actions.js';
import { CLIENT_KEY_PURPOSE, sealContext } from '../store/keys.js';
import { getPracticeSettings } from '../store/practices.js';
import type { CalendarRole, Database } from '../store/schema.js';
import { plannedAction, type ActionPlugin } from './outbox.js';

const LEDGER = sealContext('ledgers', 'state');

/**
 * A ledger as stored: its JSON deflated, then sealed. Compressed it is about a tenth of the size,
 * and every round rewrites the row (bench engine: a 6-month therapist's ledger is ~1 MB of JSON).
 */
function sealLedger(keyring: Keyring, ledger: Ledger): string {
  return keyring.encrypt(`z1:${deflateRawSync(serializeLedger(ledger), { level: 1 }).toString('base64')}`, LEDGER);
}

function openLedger(keyring: Keyring, sealed: string): Ledger {
  const text = keyring.decrypt(sealed, LEDGER);
  return restoreLedger(text.startsWith('z1:') ? inflateRawSync(Buffer.from(text.slice(3), 'base64')).toString('utf8') : text);
}
const CLIENT_NAME = sealContext('clients', 'display_name');
const CLIENT_KEY = sealContext('clients', 'ledger_key');

/** A calendar as the facts need it: its role and zone, and the connection that can write to it. */
export interface FactCalendar extends CalendarInfo {
  id: string;
  connectionId: string;
}

export interface TherapistContext {
  therapistId: string;
  settings: PracticeSettings;
  ledger: LedgerContext;
  calendars: ReadonlyMap<string, FactCalendar>;
}

/** A stored transition, as the action plug-ins see it. */
export interface Fact {
  transition: Transition;
  /** The appointments row (its id is what our tags carry). */
  appointmentId: string;
  /** The session as the ledger has it after the round. */
  state: AppointmentState;
  calendar: FactCalendar | undefined;
  clientId: string | null;
}

/**
 * The facts where a session appears on an event: first recognised, or its event moved to another
 * calendar (not a busy-only one), with the calendar it is on. What an action on the session's event
 * (our tag, the therapist's popup reminders) is planned from.
 */
export function sessionsAppearing(facts: readonly Fact[]): (Fact & { calendar: FactCalendar })[] {
  return facts.filter(
    (f): f is Fact & { calendar: FactCalendar } =>
      (f.transition.kind === 'scheduled' || f.transition.kind === 'moved') && !!f.calendar && f.calendar.role !== 'busy_only' && f.state.decision.appointment && !f.state.movedTo,
  );
}

/** What a round hands the plug-ins that plan from the store and the whole picture (planRound). */
export interface FactRound {
  trx: Kysely<Database>;
  keyring: Keyring;
  ctx: TherapistContext;
  ledger: Ledger;
  facts: readonly Fact[];
  /** Every client's figures as of `at`, with their current risks. */
  figures: readonly ClientFigures[];
  /** Client rows by ledger client key, for the clients with facts or risks. */
  clientIds: ReadonlyMap<string, string>;
  at: Date;
}

export interface FactsResult {
  transitions: Transition[];
  actions: number;
  signalsOpened: number;
  signalsCleared: number;
}

/** The practice's rules and the therapist's calendars, read in the round's transaction. */
export async function therapistContext(db: Kysely<Database>, therapistId: string): Promise<TherapistContext> {
  const therapist = await db.selectFrom('therapists').select(['practice_id', 'time_zone']).where('id', '=', therapistId).executeTakeFirstOrThrow();
  const settings = await getPracticeSettings(db, therapist.practice_id);
  const zone = therapist.time_zone ?? settings.timeZone;
  const rows = await db.selectFrom('calendars').select(['id', 'name', 'role', 'time_zone', 'connection_id']).where('therapist_id', '=', therapistId).execute();
  const calendars = new Map<string, FactCalendar>(
    rows.map((c) => [c.id, { id: c.id, role: c.role as CalendarRole, name: c.name ?? c.id, timeZone: c.time_zone ?? zone, connectionId: c.connection_id }]),
  );
  return { therapistId, settings, calendars, ledger: { rules: compileRules(settings), calendars, defaultZone: zone } };
}

/**
 * Applies one round to the therapist's ledger under a row lock (two engines never interleave on one
 * ledger) and stores what came of it. `items` carry our calendar ids. With no items, the round only
 * presumes attendance up to `at` (a tick's work when sessions ended).
 */
export async function applyFacts(
  trx: Kysely<Database>,
  keyring: Keyring,
  input: { therapistId: string; items: readonly CalendarItem[]; at: Date; plugins: readonly ActionPlugin[]; refresh?: boolean },
): Promise<FactsResult> {
  const { therapistId, at } = input;
  if (input.items.length === 0 && !input.refresh) {
    // Nothing new and no session ended: the ledger is not even read (an idle sync stays cheap).
    const due = await trx.selectFrom('ledgers').select('next_presume_at').where('therapist_id', '=', therapistId).executeTakeFirst();
    if (!due?.next_presume_at || due.next_presume_at > at) return { transitions: [], actions: 0, signalsOpened: 0, signalsCleared: 0 };
  }
  await trx
    .insertInto('ledgers')
    .values({ therapist_id: therapistId, state: sealLedger(keyring, restoreLedger(undefined)), updated_at: at })
    .onConflict((oc) => oc.column('therapist_id').doNothing())
    .execute();
  const row = await trx.selectFrom('ledgers').select(['state']).where('therapist_id', '=', therapistId).forUpdate().executeTakeFirstOrThrow();
  const ledger = openLedger(keyring, row.state);
  const ctx = await therapistContext(trx, therapistId);
  const atIso = at.toISOString();
  // What the appointments table shows of each session, before the round: a row is written for every
  // session whose picture changed (a series ended cancels sessions no item named; a longer session
  // changes without a transition).
  const before = new Map<string, string>();
  for (const a of ledger.appointments.values()) if (a.decision.appointment) before.set(a.key, rowSignature(a));
  const transitions = input.items.length > 0 ? applyRound(ledger, { at: atIso, items: input.items }, ctx.ledger) : presumeUntil(ledger, atIso, ctx.ledger);
  const touched = new Set<string>(transitions.map((t) => t.appointment));
  for (const a of ledger.appointments.values()) {
    if ((a.decision.appointment || before.has(a.key)) && before.get(a.key) !== rowSignature(a)) touched.add(a.key);
  }
  const clientIds = await upsertClients(trx, keyring, therapistId, [...touched].map((k) => ledger.appointments.get(k)!), at);
  const appointmentIds = await upsertAppointments(trx, therapistId, [...touched].map((k) => ledger.appointments.get(k)!), clientIds, at);

  const facts: Fact[] = [];
  // In batches: a therapist's first sync can make tens of thousands of transitions, and one statement
  // takes at most 65,535 parameters.
  for (let i = 0; i < transitions.length; i += 1000) {
    await trx
      .insertInto('appointment_transitions')
      .values(
        transitions.slice(i, i + 1000).map((t) => ({
          appointment_id: appointmentIds.get(t.appointment)!,
          therapist_id: therapistId,
          key: t.key,
          kind: t.kind,
          occurred_at: t.at,
          recorded_at: at,
          detail: JSON.stringify(storedDetail(t)),
        })),
      )
      // The ledger lock makes a second copy impossible; the key keeps it so even if that changes.
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
  }
  if (transitions.length > 0) {
    for (const t of transitions) {
      const state = ledger.appointments.get(t.appointment)!;
      facts.push({ transition: t, appointmentId: appointmentIds.get(t.appointment)!, state, calendar: ctx.calendars.get(state.calendarId), clientId: state.client ? (clientIds.get(state.client.key) ?? null) : null });
    }
  }

  const planned = input.plugins.flatMap((plugin) => plugin.plan?.(facts, ctx) ?? []);

  // Signals change with facts and with time (not rebooked N days after a session): worked out
  // again whenever the ledger is read, which happens when the next one is due (next_presume_at).
  const signals = await refreshSignals(trx, keyring, ledger, ctx, at);
  const round: FactRound = { trx, keyring, ctx, ledger, facts, figures: signals.figures, clientIds: new Map([...clientIds, ...signals.clientIds]), at };
  for (const plugin of input.plugins) if (plugin.planRound) planned.push(...(await plugin.planRound(round)));
  const actions = await enqueueActions(trx, planned.map((p) => plannedAction(keyring, therapistId, p, at)));

  // The ledger is read again when a session ends (attendance presumed) or a risk comes with time.
  const presume = nextPresumeMs(ledger, ctx.ledger);
  const risk = signals.figures.reduce((min, f) => (f.nextRiskAt ? Math.min(min, Date.parse(f.nextRiskAt)) : min), Infinity);
  const next = presume === null && risk === Infinity ? null : Math.min(presume ?? Infinity, risk);
  await trx
    .updateTable('ledgers')
    .set((eb) => ({
      state: sealLedger(keyring, ledger),
      rounds: eb('rounds', '+', 1),
      next_presume_at: next === null ? null : new Date(next),
      updated_at: at,
    }))
    .where('therapist_id', '=', therapistId)
    .execute();
  return { transitions, actions, signalsOpened: signals.opened, signalsCleared: signals.cleared };
}

/**
 * What a transition keeps in the clear: its kind's figures (who cancelled, how late, the times of a
 * reschedule), never the recognition's reasons, which quote titles and names.
 */
function storedDetail(t: Transition): Record<string, unknown> {
  const { reasons: _reasons, ...rest } = t.detail as { reasons?: unknown };
  return rest;
}

/** The fields of an appointments row, to tell whether a round changed it. */
function rowSignature(a: AppointmentState): string {
  return `${appointmentStatus(a)}|${a.calendarId}|${a.eventId}|${a.startMs}|${a.endMs}|${a.client?.key ?? ''}|${a.decision.type ?? ''}|${a.zone}`;
}

function appointmentStatus(a: AppointmentState): string {
  if (!a.decision.appointment) return 'not_a_session';
  if (a.movedTo) return 'moved';
  return a.status;
}

/** Finds or creates the client row of each ledger client key (sealed key, keyed hash to find it). */
async function upsertClients(trx: Kysely<Database>, keyring: Keyring, therapistId: string, states: Iterable<AppointmentState>, now: Date): Promise<Map<string, string>> {
  const clients = new Map<string, { key: string; label: string }>();
  for (const s of states) if (s.client && !clients.has(s.client.key)) clients.set(s.client.key, s.client);
  const byKey = new Map<string, string>();
  if (clients.size === 0) return byKey;
  // One query for all: each key's hash under every key of the ring (a rotation may be under way).
  const hashes = new Map<string, string>();
  for (const key of clients.keys()) for (const h of keyring.blindIndexCandidates(key, CLIENT_KEY_PURPOSE)) hashes.set(h, key);
  const all = [...hashes.keys()];
  for (let i = 0; i < all.length; i += 500) {
    const found = await trx.selectFrom('clients').select(['id', 'ledger_key_hash']).where('therapist_id', '=', therapistId).where('ledger_key_hash', 'in', all.slice(i, i + 500)).execute();
    for (const f of found) byKey.set(hashes.get(f.ledger_key_hash!)!, f.id);
  }
  const missing = [...clients.values()].filter((c) => !byKey.has(c.key));
  for (let i = 0; i < missing.length; i += 200) {
    const created = await trx
      .insertInto('clients')
      .values(
        missing.slice(i, i + 200).map((client) => ({
          therapist_id: therapistId,
          display_name: keyring.encrypt(client.label, CLIENT_NAME),
          ledger_key: keyring.encrypt(client.key, CLIENT_KEY),
          ledger_key_hash: keyring.blindIndex(client.key, CLIENT_KEY_PURPOSE),
          created_at: now,
          updated_at: now,
        })),
      )
      .returning(['id', 'ledger_key_hash'])
      .execute();
    for (const c of created) byKey.set(hashes.get(c.ledger_key_hash!)!, c.id);
  }
  return byKey;
}

async function upsertAppointments(trx: Kysely<Database>, therapistId: string, states: AppointmentState[], clientIds: Map<string, string>, now: Date): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (let i = 0; i < states.length; i += 200) {
    const rows = states.slice(i, i + 200).map((a) => ({
      therapist_id: therapistId,
      calendar_id: a.calendarId,
      event_id: a.eventId,
      ical_uid: a.iCalUID,
      series_id: a.seriesId,
      original_start: a.originalStart,
      client_id: a.client ? (clientIds.get(a.client.key) ?? null) : null,
      appointment_type: a.decision.type,
      state: appointmentStatus(a),
      start_at: new Date(a.startMs),
      end_at: new Date(a.endMs),
      time_zone: a.zone,
      session_number: null,
      ledger_key: a.key,
      created_at: now,
      updated_at: now,
    }));
    if (rows.length === 0) continue;
    const result = await trx
      .insertInto('appointments')
      .values(rows)
      .onConflict((oc) =>
        oc.columns(['therapist_id', 'ledger_key']).doUpdateSet((eb) => ({
          calendar_id: eb.ref('excluded.calendar_id'),
          event_id: eb.ref('excluded.event_id'),
          ical_uid: eb.ref('excluded.ical_uid'),
          series_id: eb.ref('excluded.series_id'),
          original_start: eb.ref('excluded.original_start'),
          client_id: eb.ref('excluded.client_id'),
          appointment_type: eb.ref('excluded.appointment_type'),
          state: eb.ref('excluded.state'),
          start_at: eb.ref('excluded.start_at'),
          end_at: eb.ref('excluded.end_at'),
          time_zone: eb.ref('excluded.time_zone'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .returning(['id', 'ledger_key'])
      .execute();
    for (const r of result) ids.set(r.ledger_key!, r.id);
  }
  return ids;
}

/**
 * Works out the therapist's clients' risk signals again and records the change: a signal that is
 * new gets a row (its key: client, kind, since); one no longer true is cleared.
 */
async function refreshSignals(
  trx: Kysely<Database>,
  keyring: Keyring,
  ledger: Ledger,
  ctx: TherapistContext,
  at: Date,
): Promise<{ opened: number; cleared: number; figures: ClientFigures[]; clientIds: Map<string, string> }> {
  // Series endings are the one input figures need from history: read back from the stored facts.
  const ended = await trx
    .selectFrom('appointment_transitions as t')
    .innerJoin('appointments as a', 'a.id', 't.appointment_id')
    .select(['t.key', 't.occurred_at', 'a.ledger_key'])
    .where('t.therapist_id', '=', ctx.therapistId)
    .where('t.kind', '=', 'series_ended')
    .execute();
  const history: Transition[] = ended.flatMap((r) => {
    const state = ledger.appointments.get(r.ledger_key!);
    if (!state?.client) return [];
    return [{ key: r.key, kind: 'series_ended' as const, appointment: state.key, calendarId: state.calendarId, eventId: state.eventId, client: state.client.key, at: new Date(r.occurred_at).toISOString(), start: new Date(state.startMs).toISOString(), detail: {} }];
  });
  const figures = clientFigures(ledger, history, at.getTime(), ctx.settings);
  const risky = new Set(figures.filter((f) => f.risks.length > 0).map((f) => f.client));
  const clientIds = await upsertClients(trx, keyring, ctx.therapistId, [...ledger.appointments.values()].filter((a) => a.client && risky.has(a.client.key)), at);
  const current = new Map<string, { clientId: string; risk: RiskSignal }>();
  for (const f of figures) {
    const clientId = clientIds.get(f.client);
    if (!clientId) continue;
    for (const risk of f.risks) current.set(`${clientId}:${risk.kind}:${risk.since}`, { clientId, risk });
  }
  const open = await trx.selectFrom('client_signals').select(['id', 'key']).where('therapist_id', '=', ctx.therapistId).where('cleared_at', 'is', null).execute();
  const openKeys = new Set(open.map((o) => o.key));
  const fresh = [...current].filter(([key]) => !openKeys.has(key));
  if (fresh.length > 0) {
    await trx
      .insertInto('client_signals')
      .values(
        fresh.map(([key, { clientId, risk }]) => ({
          therapist_id: ctx.therapistId,
          client_id: clientId,
          key,
          kind: risk.kind,
          since: risk.since,
          // The reason names dates and counts, never the client.
          detail: JSON.stringify({ reason: risk.reason, ...(risk.afterSession !== undefined ? { afterSession: risk.afterSession } : {}) }),
          recorded_at: at,
        })),
      )
      // True again after it was cleared (a no-show mark removed, then put back): open again.
      .onConflict((oc) => oc.column('key').doUpdateSet({ cleared_at: null, recorded_at: at }))
      .execute();
  }
  const gone = open.filter((o) => !current.has(o.key)).map((o) => o.id);
  if (gone.length > 0) await trx.updateTable('client_signals').set({ cleared_at: at }).where('id', 'in', gone).execute();
  return { opened: fresh.length, cleared: gone.length, figures, clientIds };
}
