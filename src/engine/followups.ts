// Follow-up tasks for the therapist: opened at once when a client cancels without rebooking, misses a
// session, is not rebooked after an early session, passes their usual gap or sees their series end;
// one per fact, later facts added to the open one, closed by us when the client books again. The task's
// words (the client as the therapist knows them, what happened, what to do, evening and weekend times
// with a booking link, a message to send) are made when the action runs, from the store as it is then.
import { DateTime } from 'luxon';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import type { ClientFigures } from '../domain/figures.js';
import type { Suggestion } from '../scheduling/slots.js';
import type { Database, FollowUpKind, Happening } from '../store/schema.js';
import { createBookingLink } from './booking.js';
import { clientContact } from './contacts.js';
import type { Fact, FactRound, TherapistContext } from './facts.js';
import { suggestForClient, therapistClock } from './suggestions.js';
import { enqueueAction } from '../store/actions.js';
import { findTask } from '../store/tasks.js';
import { plannedAction, type ActionPlugin, type ActionResult, type ActionRun, type PlannedAction } from './outbox.js';
import { closeTaskOf, openTask, updateTask } from './tasks.js';

export const FOLLOWUP_OPEN = 'followup.open';
export const FOLLOWUP_UPDATE = 'followup.update';
export const FOLLOWUP_CLOSE = 'followup.close';

const DAY = 86_400_000;

/** A fact that calls for a follow-up, before it is taken up. */
interface Trigger {
  /** Stable across runs: a transition's key, or the session a time-based signal is anchored on. */
  key: string;
  clientId: string;
  /** The calendar whose connection keeps the therapist's tasks (the session's). */
  calendarId: string | null;
  happening: Happening;
}

/** The kinds after which a client may be leaving: their task carries a message that asks how they are. */
const DROPOUT: ReadonlySet<FollowUpKind> = new Set(['not_rebooked', 'gap_beyond_cadence', 'series_ended']);

/** The follow-up's key (its task's): the fact that opened it. */
const followUpKey = (trigger: string) => `followup:${trigger}`;

// ---------------------------------------------------------------------------------------------
// Planning, in the facts' transaction

/** The facts of this round that call for a follow-up, and the clients who booked a session in it. */
function roundTriggers(round: FactRound): { triggers: Trigger[]; booked: Map<string, { start: number; calendarId: string }> } {
  const { facts, at, ctx } = round;
  const atMs = at.getTime();
  const recentFrom = atMs - ctx.settings.followUps.recentDays * DAY;
  // A new session in the future, or a cancelled one back on: the client booked again.
  const booked = new Map<string, { start: number; calendarId: string }>();
  for (const f of facts) {
    if (!f.clientId || !f.state.decision.appointment || f.state.movedTo) continue;
    if ((f.transition.kind === 'scheduled' || f.transition.kind === 'restored') && f.state.status === 'scheduled' && f.state.startMs > atMs) {
      const seen = booked.get(f.clientId);
      if (!seen || f.state.startMs < seen.start) booked.set(f.clientId, { start: f.state.startMs, calendarId: f.state.calendarId });
    }
  }
  const triggers: Trigger[] = [];
  for (const f of facts) {
    // A client who booked in the same change (a cancellation made as a new booking) needs no follow-up.
    if (!f.clientId || booked.has(f.clientId) || !f.state.decision.appointment || f.state.movedTo) continue;
    const t = f.transition;
    const startMs = Date.parse(t.start);
    if (startMs < recentFrom) continue;
    if (t.kind === 'cancelled' || t.kind === 'declined') {
      const d = t.detail as { by?: string; late?: boolean; afterEnd?: boolean };
      // The therapist's own cancellations and a series they ended are theirs to follow; a deletion
      // after the session ended is tidying up.
      if (d.by === 'therapist' || d.by === 'series' || d.afterEnd) continue;
      triggers.push(trigger(f, t.kind, { at: t.at, sessionStart: t.start, late: d.late === true }));
    } else if (t.kind === 'no_show') {
      triggers.push(trigger(f, 'no_show', { at: t.at, sessionStart: t.start }));
    }
  }
  for (const fig of round.figures) triggers.push(...riskTriggers(round, fig, recentFrom));
  return { triggers: triggers.filter((t) => !booked.has(t.clientId)), booked };
}

function trigger(f: Fact, kind: FollowUpKind, h: Omit<Happening, 'kind'>): Trigger {
  return { key: `${kind}:${f.transition.key}`, clientId: f.clientId!, calendarId: f.state.calendarId, happening: { kind, ...h } };
}

/** The client's signals that come with time (not rebooked, a gap, a series ended), when recent. */
function riskTriggers(round: FactRound, fig: ClientFigures, recentFrom: number): Trigger[] {
  const clientId = round.clientIds.get(fig.client);
  if (!clientId) return [];
  const out: Trigger[] = [];
  for (const r of fig.risks) {
    if ((r.kind !== 'not_rebooked' && r.kind !== 'gap_beyond_cadence' && r.kind !== 'series_ended') || !r.ref) continue;
    if (Date.parse(r.since) < recentFrom) continue;
    // The session it is anchored on (a series ending's: the ending's appointment) gives the calendar.
    const anchor = round.ledger.appointments.get(r.ref.split('#')[0]!);
    out.push({
      key: `${r.kind}:${r.ref}`,
      clientId,
      calendarId: anchor?.calendarId ?? null,
      happening: {
        kind: r.kind,
        at: r.since,
        ...(anchor ? { sessionStart: new Date(anchor.startMs).toISOString() } : {}),
        ...(r.afterSession !== undefined ? { afterSession: r.afterSession } : {}),
        ...(r.days !== undefined ? { days: r.days } : {}),
        ...(r.usualDays !== undefined ? { usualDays: r.usualDays } : {}),
      },
    });
  }
  return out;
}

/** The connection that keeps the therapist's tasks: the session's calendar's, else their first practice calendar's. */
function taskConnection(ctx: TherapistContext, calendarId: string | null): string | null {
  const own = calendarId ? ctx.calendars.get(calendarId) : undefined;
  if (own) return own.connectionId;
  const cals = [...ctx.calendars.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  return (cals.find((c) => c.role === 'practice') ?? cals[0])?.connectionId ?? null;
}

/** An open follow-up as planning needs it. */
interface OpenFollowUp {
  id: string;
  key: string;
  connectionId: string | null;
  happenings: Happening[];
}

/**
 * The follow-ups still open of these clients. One whose task the therapist completed or deleted is
 * theirs, and one whose task could not be made (its opening failed or was given up) holds nothing:
 * both are closed here, so a new fact opens a new task rather than go into one nobody sees.
 */
async function openFollowUps(trx: Kysely<Database>, therapistId: string, clientIds: string[], at: Date): Promise<Map<string, OpenFollowUp>> {
  const open = new Map<string, OpenFollowUp>();
  if (clientIds.length === 0) return open;
  const rows = await trx
    .selectFrom('follow_ups as f')
    .leftJoin('tasks as t', (j) => j.onRef('t.key', '=', 'f.key').onRef('t.therapist_id', '=', 'f.therapist_id'))
    .select(['f.id', 'f.key', 'f.client_id', 'f.connection_id', 'f.happenings', 't.status as task_status'])
    .where('f.therapist_id', '=', therapistId)
    .where('f.client_id', 'in', clientIds)
    .where('f.status', '=', 'open')
    .orderBy('f.opened_at', 'desc')
    .execute();
  const untasked = rows.filter((r) => !r.task_status).map((r) => r.key);
  const opening = new Set(
    untasked.length === 0
      ? []
      : (
          await trx
            .selectFrom('actions')
            .select('idempotency_key')
            .where('therapist_id', '=', therapistId)
            .where('kind', '=', FOLLOWUP_OPEN)
            .where('idempotency_key', 'in', untasked)
            .where('status', 'in', ['pending', 'running', 'parked', 'unknown'])
            .execute()
        ).map((r) => r.idempotency_key),
  );
  const theirs: string[] = [];
  const empty: string[] = [];
  for (const r of rows) {
    if (r.task_status && r.task_status !== 'open') theirs.push(r.id);
    else if (!r.task_status && !opening.has(r.key)) empty.push(r.id);
    else if (!open.has(r.client_id)) open.set(r.client_id, { id: r.id, key: r.key, connectionId: r.connection_id, happenings: r.happenings });
  }
  if (theirs.length > 0) await trx.updateTable('follow_ups').set({ status: 'closed', closed_reason: 'therapist', closed_at: at, updated_at: at }).where('id', 'in', theirs).execute();
  if (empty.length > 0) await trx.updateTable('follow_ups').set({ status: 'closed', closed_reason: 'no task', closed_at: at, updated_at: at }).where('id', 'in', empty).execute();
  return open;
}

/** A follow-up opened by its first facts; its id, or undefined when one with that key exists already. */
async function insertFollowUp(
  trx: Kysely<Database>,
  f: { therapistId: string; clientId: string; key: string; connectionId: string | null; happenings: Happening[]; at: Date },
): Promise<string | undefined> {
  const made = await trx
    .insertInto('follow_ups')
    .values({ therapist_id: f.therapistId, client_id: f.clientId, key: f.key, kind: f.happenings[0]!.kind, connection_id: f.connectionId, happenings: JSON.stringify(f.happenings), opened_at: f.at, updated_at: f.at })
    .onConflict((oc) => oc.column('key').doNothing())
    .returning('id')
    .executeTakeFirst();
  return made?.id;
}

/** Later facts added to an open follow-up, after those it has. */
async function addHappenings(trx: Kysely<Database>, id: string, happenings: Happening[], at: Date): Promise<void> {
  await trx.updateTable('follow_ups').set({ happenings: sql`happenings || ${JSON.stringify(happenings)}::jsonb`, updated_at: at }).where('id', '=', id).execute();
}

/**
 * The follow-ups a round opens, adds to or closes. Every fact taken up is recorded, so asking again
 * (each time the ledger is read) takes up only what is new, and a task the therapist completed is
 * never opened again for its fact.
 */
export async function planFollowUps(round: FactRound): Promise<PlannedAction[]> {
  const { trx, ctx, at } = round;
  if (!ctx.settings.followUps.enabled) return [];
  const { triggers, booked } = roundTriggers(round);
  if (triggers.length === 0 && booked.size === 0) return [];
  const therapistId = ctx.therapistId;
  let fresh = triggers;
  if (triggers.length > 0) {
    const known = new Set(
      (await trx.selectFrom('follow_up_facts').select('fact_key').where('therapist_id', '=', therapistId).where('fact_key', 'in', triggers.map((t) => t.key)).execute()).map((r) => r.fact_key),
    );
    const seen = new Set<string>();
    fresh = triggers.filter((t) => !known.has(t.key) && !seen.has(t.key) && seen.add(t.key));
  }
  const clients = [...new Set([...fresh.map((t) => t.clientId), ...booked.keys()])];
  const open = await openFollowUps(trx, therapistId, clients, at);
  const planned: PlannedAction[] = [];

  // Booked again: each open follow-up of theirs closes, and its task says so.
  for (const [clientId, b] of booked) {
    const fu = open.get(clientId);
    if (!fu) continue;
    await trx.updateTable('follow_ups').set({ status: 'closed', closed_reason: 'booked', closed_at: at, updated_at: at }).where('id', '=', fu.id).execute();
    planned.push({
      kind: FOLLOWUP_CLOSE,
      key: `${fu.key}~close`,
      factKey: fu.key,
      connectionId: fu.connectionId ?? taskConnection(ctx, b.calendarId),
      payload: { followUpId: fu.id, key: fu.key, bookedStart: new Date(b.start).toISOString() },
    });
  }

  const byClient = new Map<string, Trigger[]>();
  for (const t of fresh) byClient.set(t.clientId, [...(byClient.get(t.clientId) ?? []), t]);
  for (const [clientId, list] of byClient) {
    list.sort((a, b) => (a.happening.at < b.happening.at ? -1 : a.happening.at > b.happening.at ? 1 : a.key < b.key ? -1 : 1));
    let fu = open.get(clientId);
    let rest = list;
    if (!fu) {
      const first = list[0]!;
      const key = followUpKey(first.key);
      const connectionId = taskConnection(ctx, first.calendarId);
      const happenings = list.map((t) => t.happening);
      const id = await insertFollowUp(trx, { therapistId, clientId, key, connectionId, happenings, at });
      if (!id) continue;
      fu = { id, key, connectionId, happenings };
      planned.push({ kind: FOLLOWUP_OPEN, key, factKey: key, connectionId, payload: { followUpId: id, key } });
      rest = [];
    } else {
      await addHappenings(trx, fu.id, list.map((t) => t.happening), at);
    }
    for (const t of rest) {
      planned.push({
        kind: FOLLOWUP_UPDATE,
        key: `${fu.key}~${t.key}`,
        factKey: fu.key,
        connectionId: fu.connectionId ?? taskConnection(ctx, t.calendarId),
        payload: { followUpId: fu.id, key: fu.key, fact: t.key, happening: t.happening },
      });
    }
    await trx
      .insertInto('follow_up_facts')
      .values(list.map((t) => ({ fact_key: t.key, therapist_id: therapistId, follow_up_id: fu.id, recorded_at: at })))
      .onConflict((oc) => oc.column('fact_key').doNothing())
      .execute();
  }
  return planned;
}

// ---------------------------------------------------------------------------------------------
// The task's words

interface FollowUpRow {
  id: string;
  key: string;
  client_id: string;
  kind: FollowUpKind;
  status: 'open' | 'closed';
  happenings: Happening[];
}

async function followUpOf(run: Pick<ActionRun, 'store' | 'action'>, id: string): Promise<FollowUpRow | undefined> {
  return run.store.db
    .selectFrom('follow_ups')
    .select(['id', 'key', 'client_id', 'kind', 'status', 'happenings'])
    .where('id', '=', id)
    .where('therapist_id', '=', run.action.therapist_id)
    .executeTakeFirst();
}

/** A time as the therapist reads it: "Tue 3 Mar, 6:00 PM". */
const when = (iso: string | number, zone: string) => (typeof iso === 'number' ? DateTime.fromMillis(iso) : DateTime.fromISO(iso)).setZone(zone).setLocale('en').toFormat('ccc d LLL, h:mm a');
const day = (iso: string, zone: string) => DateTime.fromISO(iso).setZone(zone).setLocale('en').toFormat('ccc d LLL');

/** One line of what happened. */
export function happeningLine(h: Happening, zone: string): string {
  const session = h.sessionStart ? when(h.sessionStart, zone) : 'a session';
  switch (h.kind) {
    case 'cancelled':
      return `Cancelled the session of ${session}${h.late ? ' late' : ''} (seen ${when(h.at, zone)}).`;
    case 'declined':
      return `Declined the session of ${session}${h.late ? ' late' : ''} (seen ${when(h.at, zone)}).`;
    case 'no_show':
      return `Did not come to the session of ${session}.`;
    case 'not_rebooked':
      return `Nothing booked since session ${h.afterSession ?? ''} on ${h.sessionStart ? day(h.sessionStart, zone) : 'record'} (as of ${day(h.at, zone)}).`.replace('session  on', 'their session on');
    case 'gap_beyond_cadence':
      return `No session for ${h.days ?? 'many'} days since ${h.sessionStart ? day(h.sessionStart, zone) : 'the last one'}; usually every ${h.usualDays ?? '?'} days.`;
    case 'series_ended':
      return `Their regular sessions were ended${h.sessionStart ? ` from ${day(h.sessionStart, zone)}` : ''} with nothing booked after (${day(h.at, zone)}).`;
  }
}

/** The task's title: who, and what the first fact was. */
export function followUpTitle(name: string, first: Happening, zone: string): string {
  const session = first.sessionStart ? when(first.sessionStart, zone) : '';
  switch (first.kind) {
    case 'cancelled':
      return `${name} cancelled ${session}${first.late ? ' (late)' : ''}: offer another time`;
    case 'declined':
      return `${name} declined ${session}: offer another time`;
    case 'no_show':
      return `${name} missed ${session}: check in`;
    case 'not_rebooked':
      return `${name} has not rebooked after session ${first.afterSession ?? ''}: check in`.replace('session :', 'their session:');
    case 'gap_beyond_cadence':
      return `Check in with ${name}: no session for ${first.days ?? 'many'} days`;
    case 'series_ended':
      return `${name}'s regular sessions ended with nothing booked: check in`;
  }
}

/** What to do, for the first fact. */
function advice(first: Happening, nextBooked: boolean): string {
  if (first.kind === 'cancelled' || first.kind === 'declined') {
    return nextBooked ? 'Offer a make-up time if they would like one.' : 'Offer them another time: send the link below, or one of these times.';
  }
  if (first.kind === 'no_show') return 'Check in with them, and offer another time.';
  return 'Reach out to ask how they are, and offer a time that suits them.';
}

const isWeekend = (s: Suggestion) => s.local.weekday === 'sat' || s.local.weekday === 'sun';

/** A time to offer, with how and why it ranked (the task is the therapist's own: their other sessions may be named). */
function suggestionLine(s: Suggestion, zone: string): string {
  const how = s.modes.includes('telehealth') ? (s.modes.includes('in_person') ? 'in person or video' : 'video') : 'in person';
  const labels = [isWeekend(s) ? 'weekend' : 'evening', how, ...s.reasons.filter((r) => r !== 'a weekend time' && r !== 'an evening time')];
  return `- ${when(s.start, zone)} (${labels.join('; ')})`;
}

/** Their first name as a message opens with it (the name as the therapist knows them: "Jane D." → "Jane"). */
const firstName = (name: string) => name.split(/\s+/)[0]!.replace(/[.,]$/, '') || name;

export interface FollowUpContent {
  title: string;
  notes: string;
  /** The day it is due (YYYY-MM-DD on the therapist's clock). */
  due: string;
  link?: { url: string; label: string };
}

/**
 * The follow-up's task as it should read now: the client's name, what happened and when, what is
 * booked, what to do, up to three evening or weekend times with a booking link, and for a client who
 * seems to be leaving, a message the therapist may send.
 */
export async function followUpContent(run: ActionRun, fu: FollowUpRow): Promise<FollowUpContent> {
  const db = run.store.db;
  const therapistId = run.action.therapist_id;
  const clock = await therapistClock(db, therapistId);
  const { zone } = clock;
  const settings = clock.ctx.settings;
  const contact = await clientContact(db, run.store.keyring, therapistId, fu.client_id);
  const name = contact.name || contact.emails[0] || 'A client';
  const happenings = fu.happenings;
  const first = happenings[0]!;
  const next = await db
    .selectFrom('appointments')
    .select('start_at')
    .where('therapist_id', '=', therapistId)
    .where('client_id', '=', fu.client_id)
    .where('state', '=', 'scheduled')
    .where('start_at', '>', run.now)
    .orderBy('start_at')
    .limit(1)
    .executeTakeFirst();
  const lines: string[] = ['What happened:', ...happenings.map((h) => `- ${happeningLine(h, zone)}`), ''];
  lines.push(next ? `Next booked: ${when(next.start_at.getTime(), zone)}.` : 'Nothing is booked.');
  lines.push('', `What to do: ${advice(first, !!next)}`);
  let link: FollowUpContent['link'];
  if (contact.emails.length === 0) {
    lines.push('', `No email address is known for ${name}, so no booking link could be made.`);
  } else {
    const made = await createBookingLink(run.store, { therapistId, clientId: fu.client_id, factKey: fu.key, now: run.now, publicUrl: run.publicUrl });
    if (settings.followUps.suggestions > 0) {
      // Evening and weekend times only: what a client who could not come in working hours needs.
      const offered = await suggestForClient(run.store, { therapistId, clientId: fu.client_id, now: run.now, k: settings.followUps.suggestions, outOfHours: true });
      const outOfHours = offered.suggestions;
      if (outOfHours.length > 0) lines.push('', 'Evening and weekend times you could offer:', ...outOfHours.map((s) => suggestionLine(s, zone)));
    }
    lines.push('', `Booking link to send (${name} picks a time; valid until ${day(made.expiresAt.toISOString(), zone)}):`, made.url);
    link = { url: made.url, label: 'Booking link to send' };
    const leaving = happenings.some((h) => DROPOUT.has(h.kind)) || happenings.filter((h) => h.kind !== 'not_rebooked').length >= 2;
    if (leaving) {
      lines.push(
        '',
        'A message you could send:',
        `Hi ${firstName(name)}, I wanted to check in and see how you are doing. If finding a time has been hard, I have some evening and weekend times, and you can pick one that suits you here: ${made.url}. And if something about our sessions isn't working for you, I'd really like to hear it, so we can change what would help.`,
      );
    }
  }
  return {
    title: followUpTitle(name, first, zone).slice(0, 1024),
    notes: lines.join('\n').slice(0, 7000),
    // Due the day it is made, on the therapist's clock.
    due: DateTime.fromJSDate(run.now).setZone(zone).toISODate()!,
    ...(link ? { link } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// The actions

const payload = z.strictObject({ followUpId: z.uuid(), key: z.string().min(1).max(500) });
const happeningSchema = z.strictObject({
  kind: z.enum(['cancelled', 'declined', 'no_show', 'not_rebooked', 'gap_beyond_cadence', 'series_ended']),
  at: z.string(),
  sessionStart: z.string().optional(),
  late: z.boolean().optional(),
  afterSession: z.number().optional(),
  days: z.number().optional(),
  usualDays: z.number().optional(),
});
/** An update names the fact it adds, so that fact can go to a new task if the therapist closed this one. */
const updatePayload = payload.extend({ fact: z.string().min(1).max(500), happening: happeningSchema });
const closePayload = payload.extend({ bookedStart: z.iso.datetime({ offset: true }) });

export const followUpOpenPlugin: ActionPlugin<z.output<typeof payload>> = {
  kind: FOLLOWUP_OPEN,
  payload,
  onCrash: 'recover',
  planRound: planFollowUps,
  async run(p, run): Promise<ActionResult> {
    const fu = await followUpOf(run, p.followUpId);
    if (!fu) return { status: 'cancelled', reason: 'the follow-up is gone (its client was deleted)' };
    // Booked again before the task could be made (its opening waited on a retry or a reconnection).
    if (fu.status === 'closed') return { status: 'cancelled', reason: 'the client booked again before the task was made' };
    const content = await followUpContent(run, fu);
    return openTask(run, { key: p.key, ...content });
  },
};

/**
 * The therapist completed or deleted the task before this fact reached it: the fact goes to the
 * client's other open follow-up, or opens a new one (under the ledger's lock, as planning does, so a
 * round and this never make two).
 */
async function moveFact(run: ActionRun, from: FollowUpRow, p: z.output<typeof updatePayload>): Promise<ActionResult> {
  const therapistId = run.action.therapist_id;
  const now = run.store.now();
  return run.store.transaction(async (trx) => {
    await trx.selectFrom('ledgers').select('therapist_id').where('therapist_id', '=', therapistId).forUpdate().executeTakeFirst();
    await trx.updateTable('follow_ups').set({ status: 'closed', closed_reason: 'therapist', closed_at: now, updated_at: now }).where('id', '=', from.id).where('status', '=', 'open').execute();
    const other = await trx
      .selectFrom('follow_ups')
      .select(['id', 'key', 'connection_id'])
      .where('therapist_id', '=', therapistId)
      .where('client_id', '=', from.client_id)
      .where('status', '=', 'open')
      .orderBy('opened_at', 'desc')
      .executeTakeFirst();
    let planned: PlannedAction;
    let to: string;
    if (other) {
      await addHappenings(trx, other.id, [p.happening], now);
      to = other.id;
      planned = { kind: FOLLOWUP_UPDATE, key: `${other.key}~${p.fact}`, factKey: other.key, connectionId: other.connection_id ?? run.action.connection_id, payload: { followUpId: other.id, key: other.key, fact: p.fact, happening: p.happening } };
    } else {
      const key = followUpKey(p.fact);
      const made = await insertFollowUp(trx, { therapistId, clientId: from.client_id, key, connectionId: run.action.connection_id, happenings: [p.happening], at: now });
      if (!made) return { status: 'cancelled', reason: 'the fact has its own follow-up already' } as ActionResult;
      to = made;
      planned = { kind: FOLLOWUP_OPEN, key, factKey: key, connectionId: run.action.connection_id, payload: { followUpId: made, key } };
    }
    await trx.updateTable('follow_up_facts').set({ follow_up_id: to }).where('fact_key', '=', p.fact).where('therapist_id', '=', therapistId).execute();
    await enqueueAction(trx, plannedAction(run.store.keyring, therapistId, planned, now));
    return { status: 'done', outcome: { movedTo: planned.key } } as ActionResult;
  });
}

export const followUpUpdatePlugin: ActionPlugin<z.output<typeof updatePayload>> = {
  kind: FOLLOWUP_UPDATE,
  payload: updatePayload,
  onCrash: 'recover',
  async run(p, run): Promise<ActionResult> {
    const fu = await followUpOf(run, p.followUpId);
    if (!fu) return { status: 'cancelled', reason: 'the follow-up is gone (its client was deleted)' };
    const task = await findTask(run.store.db, run.action.therapist_id, p.key);
    if (task && task.status !== 'open') return moveFact(run, fu, p);
    if (fu.status === 'closed') return { status: 'cancelled', reason: 'the follow-up was closed meanwhile' };
    // The whole task as it reads now (every fact so far): an update that runs late writes the latest.
    const content = await followUpContent(run, fu);
    const result = await updateTask(run, p.key, { title: content.title, notes: content.notes });
    // The platform said the therapist had just completed or deleted it: this fact goes to a new task.
    const after = await findTask(run.store.db, run.action.therapist_id, p.key);
    if (after && after.status !== 'open' && after.closedBy === 'therapist') return moveFact(run, fu, p);
    return result;
  },
};

export const followUpClosePlugin: ActionPlugin<z.output<typeof closePayload>> = {
  kind: FOLLOWUP_CLOSE,
  payload: closePayload,
  onCrash: 'recover',
  async run(p, run): Promise<ActionResult> {
    const fu = await followUpOf(run, p.followUpId);
    if (!fu) return { status: 'cancelled', reason: 'the follow-up is gone (its client was deleted)' };
    const { zone } = await therapistClock(run.store.db, run.action.therapist_id);
    const notes = [`Closed by SessionKeeper: booked again for ${when(p.bookedStart, zone)}.`, '', 'What happened:', ...fu.happenings.map((h) => `- ${happeningLine(h, zone)}`)].join('\n');
    return closeTaskOf(run, p.key, notes);
  },
};
