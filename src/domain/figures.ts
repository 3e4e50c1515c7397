// Attendance, retention and risk, computed from the appointments' final states and transitions so
// every figure can be checked by hand: per client, and for the practice over a period. Pure.
import type { PracticeSettings } from '../config.js';
import type { AppointmentState, Ledger, Transition } from './lifecycle.js';

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const date = (ms: number) => iso(ms).slice(0, 10);

export interface RiskSignal {
  kind: 'not_rebooked' | 'gap_beyond_cadence' | 'two_cancellations_in_a_row' | 'no_show' | 'series_ended';
  /** When it became true. */
  since: string;
  reason: string;
  /** not_rebooked: after which session. */
  afterSession?: number;
  /**
   * What it is anchored on, stable while it stays true (unlike `since`, which may move with later
   * cancellations): not_rebooked, the session after which; gap_beyond_cadence, the last kept session;
   * series_ended, the ending's transition.
   */
  ref?: string;
  /** gap_beyond_cadence: the days since the last kept session, and their usual interval. */
  days?: number;
  usualDays?: number;
}

export interface ClientFigures {
  client: string;
  label: string;
  sessionsKept: number;
  noShows: number;
  lateCancels: number;
  cancellations: number;
  therapistCancellations: number;
  firstSession: string | null;
  secondSession: string | null;
  lastKept: string | null;
  nextBooked: string | null;
  usualIntervalDays: number | null;
  risks: RiskSignal[];
  /** When a risk that comes with time (not rebooked, a gap) will next become true if nothing changes. */
  nextRiskAt: string | null;
}

/** A session counted against the client: cancelled or declined by the client or by nobody known. */
function clientCancellation(a: AppointmentState): boolean {
  return (a.status === 'cancelled' || a.status === 'declined') && a.cancel?.by !== 'therapist' && a.cancel?.by !== 'series';
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function clientFigures(ledger: Ledger, transitions: readonly Transition[], nowMs: number, settings: PracticeSettings): ClientFigures[] {
  const byClient = new Map<string, AppointmentState[]>();
  for (const a of ledger.appointments.values()) {
    if (!a.decision.appointment || !a.client || a.movedTo) continue;
    const list = byClient.get(a.client.key);
    if (list) list.push(a);
    else byClient.set(a.client.key, [a]);
  }
  const seriesEnds = new Map<string, Transition[]>();
  for (const t of transitions) {
    if (t.kind === 'series_ended' && t.client) seriesEnds.set(t.client, [...(seriesEnds.get(t.client) ?? []), t]);
  }
  const out: ClientFigures[] = [];
  for (const [client, list] of byClient) {
    list.sort((a, b) => a.startMs - b.startMs || (a.key < b.key ? -1 : 1));
    const kept = list.filter((a) => a.status === 'attended');
    const next = list.find((a) => a.status === 'scheduled' && a.startMs > nowMs) ?? null;
    const gaps: number[] = [];
    for (let i = 1; i < kept.length; i++) gaps.push((kept[i]!.startMs - kept[i - 1]!.startMs) / DAY);
    const usual = gaps.length >= 2 ? Math.round(median(gaps) * 10) / 10 : null;
    const lastKept = kept.at(-1) ?? null;
    const risks: RiskSignal[] = [];
    let nextRisk = Infinity;

    if (!next) {
      // The sessions after which most clients who leave do leave.
      for (const n of settings.dropoutWatch.afterSessions) {
        const session = kept[n - 1];
        if (kept.length !== n || !session) continue;
        // It became true N days after the session, or when the last booking after it fell through.
        let since = session.endMs + settings.dropoutWatch.days * DAY;
        for (const later of list) {
          if (later.startMs > session.startMs && later.cancel) since = Math.max(since, Date.parse(later.cancel.seenAt));
        }
        if (nowMs < since) nextRisk = Math.min(nextRisk, since);
        else {
          risks.push({
            kind: 'not_rebooked',
            afterSession: n,
            ref: session.key,
            since: iso(since),
            reason: `no session booked ${Math.floor((nowMs - session.endMs) / DAY)} days after session ${n} on ${date(session.startMs)}`,
          });
        }
      }
    }
    if (usual !== null && lastKept) {
      const thresholdDays = Math.max(settings.cadence.factor * usual, settings.cadence.minDays);
      const since = lastKept.startMs + thresholdDays * DAY;
      // Unless a session is booked within the gap: true from `since`, watched for until then.
      if (!next || next.startMs > since) {
        if (nowMs < since) nextRisk = Math.min(nextRisk, since);
        else {
          const days = Math.floor((nowMs - lastKept.startMs) / DAY);
          risks.push({
            kind: 'gap_beyond_cadence',
            ref: lastKept.key,
            days,
            usualDays: usual,
            since: iso(since),
            reason: `no session for ${days} days since ${date(lastKept.startMs)}; usually every ${usual} days`,
          });
        }
      }
    }
    // Patterns, cleared by a kept session after them: the last concluded sessions.
    const concluded = list.filter((a) => a.startMs <= nowMs || a.status === 'cancelled' || a.status === 'declined').filter((a) => a.cancel?.by !== 'therapist' && a.cancel?.by !== 'series');
    const lastTwo = concluded.slice(-2);
    if (lastTwo.length === 2 && lastTwo.every(clientCancellation)) {
      const seen = lastTwo.map((a) => Date.parse(a.cancel!.seenAt));
      risks.push({
        kind: 'two_cancellations_in_a_row',
        since: iso(Math.max(...seen)),
        reason: `two cancellations in a row (sessions of ${lastTwo.map((a) => date(a.startMs)).join(' and ')})`,
      });
    }
    const lastConcluded = concluded.filter((a) => a.startMs <= nowMs).at(-1);
    if (lastConcluded?.status === 'no_show') {
      risks.push({ kind: 'no_show', since: iso(lastConcluded.startMs), reason: `did not come to the session of ${date(lastConcluded.startMs)}` });
    }
    if (!next) {
      const ended = (seriesEnds.get(client) ?? []).filter((t) => !lastKept || Date.parse(t.start) > lastKept.startMs || Date.parse(t.at) > lastKept.startMs).at(-1);
      if (ended) risks.push({ kind: 'series_ended', ref: ended.key, since: ended.at, reason: `their regular series was ended from ${date(Date.parse(ended.start))} with nothing booked after it` });
    }

    out.push({
      client,
      label: list.at(-1)!.client!.label,
      sessionsKept: kept.length,
      noShows: list.filter((a) => a.status === 'no_show').length,
      lateCancels: list.filter((a) => clientCancellation(a) && a.cancel!.late).length,
      cancellations: list.filter(clientCancellation).length,
      therapistCancellations: list.filter((a) => (a.status === 'cancelled' || a.status === 'declined') && a.cancel?.by === 'therapist').length,
      firstSession: kept[0] ? iso(kept[0].startMs) : null,
      secondSession: kept[1] ? iso(kept[1].startMs) : null,
      lastKept: lastKept ? iso(lastKept.startMs) : null,
      nextBooked: next ? iso(next.startMs) : null,
      usualIntervalDays: usual,
      risks,
      nextRiskAt: nextRisk === Infinity ? null : iso(nextRisk),
    });
  }
  return out.sort((a, b) => a.client.localeCompare(b.client));
}

export interface Ratio {
  value: number | null;
  numerator: number;
  denominator: number;
}

const ratio = (numerator: number, denominator: number): Ratio => ({
  value: denominator === 0 ? null : Math.round((numerator / denominator) * 10_000) / 10_000,
  numerator,
  denominator,
});

export interface PracticeFigures {
  from: string;
  to: string;
  sessions: { booked: number; attended: number; noShows: number; lateCancels: number; otherCancels: number; therapistCancels: number; upcoming: number };
  /** Of the sessions that were due (attended + no-shows + late cancellations). */
  attendanceRate: Ratio;
  noShowRate: Ratio;
  lateCancelRate: Ratio;
  /** Of clients whose session 1 (2) fell in the period: those with a later session kept or booked. */
  returningAfterSession1: Ratio;
  returningAfterSession2: Ratio;
  meanSessionsPerClient: Ratio;
  /** The appointments behind each count, to check the figures by hand against the events. */
  sessionKeys: { attended: string[]; noShows: string[]; lateCancels: string[]; otherCancels: string[]; therapistCancels: string[]; upcoming: string[] };
}

/** The practice's figures for sessions starting in [from, to). */
export function practiceFigures(ledger: Ledger, fromMs: number, toMs: number, nowMs: number): PracticeFigures {
  const inPeriod = (ms: number) => ms >= fromMs && ms < toMs;
  const sessions = { booked: 0, attended: 0, noShows: 0, lateCancels: 0, otherCancels: 0, therapistCancels: 0, upcoming: 0 };
  const keys: PracticeFigures['sessionKeys'] = { attended: [], noShows: [], lateCancels: [], otherCancels: [], therapistCancels: [], upcoming: [] };
  const byClient = new Map<string, AppointmentState[]>();
  const attendedBy = new Map<string, number>();
  for (const a of ledger.appointments.values()) {
    if (!a.decision.appointment || a.movedTo) continue;
    if (a.client) byClient.set(a.client.key, [...(byClient.get(a.client.key) ?? []), a]);
    if (!inPeriod(a.startMs)) continue;
    sessions.booked++;
    let bucket: keyof PracticeFigures['sessionKeys'] | null = null;
    if (a.status === 'attended') {
      bucket = 'attended';
      if (a.client) attendedBy.set(a.client.key, (attendedBy.get(a.client.key) ?? 0) + 1);
    } else if (a.status === 'no_show') bucket = 'noShows';
    else if (a.status === 'cancelled' || a.status === 'declined') {
      if (a.cancel?.by === 'therapist' || a.cancel?.by === 'series') bucket = 'therapistCancels';
      else if (a.cancel?.late) bucket = 'lateCancels';
      else bucket = 'otherCancels';
    } else if (a.startMs > nowMs) bucket = 'upcoming';
    if (bucket) {
      sessions[bucket]++;
      keys[bucket].push(a.key);
    }
  }
  for (const list of Object.values(keys)) list.sort();
  const due = sessions.attended + sessions.noShows + sessions.lateCancels;
  const returning = (n: number) => {
    let clients = 0;
    let returned = 0;
    for (const list of byClient.values()) {
      const sorted = [...list].sort((a, b) => a.startMs - b.startMs || (a.key < b.key ? -1 : 1));
      const kept = sorted.filter((a) => a.status === 'attended');
      const nth = kept[n - 1];
      if (!nth || !inPeriod(nth.startMs)) continue;
      clients++;
      if (sorted.some((a) => a.startMs > nth.startMs && (a.status === 'attended' || (a.status === 'scheduled' && a.startMs > nowMs)))) returned++;
    }
    return ratio(returned, clients);
  };
  return {
    from: iso(fromMs),
    to: iso(toMs),
    sessions,
    attendanceRate: ratio(sessions.attended, due),
    noShowRate: ratio(sessions.noShows, due),
    lateCancelRate: ratio(sessions.lateCancels, due),
    returningAfterSession1: returning(1),
    returningAfterSession2: returning(2),
    meanSessionsPerClient: ratio([...attendedBy.values()].reduce((a, b) => a + b, 0), attendedBy.size),
    sessionKeys: keys,
  };
}
