// Event snapshots: the latest version of each event per calendar, written in batches by the sync
// loop. The normalised event is sealed; times and status stay in the clear for busy-time queries.
import { sql, type Kysely } from 'kysely';
import type { Keyring } from '../secrets.js';
import { sealContext } from './keys.js';
import type { Database } from './schema.js';

const CONTEXT = sealContext('event_snapshots', 'payload');

export interface SnapshotInput {
  eventId: string;
  icalUid?: string | null;
  seriesId?: string | null;
  originalStart?: string | null;
  status: 'confirmed' | 'tentative' | 'cancelled' | 'deleted';
  version?: string | null;
  platformUpdatedAt?: Date | null;
  startAt?: Date | null;
  endAt?: Date | null;
  busy?: boolean;
  /** The normalised event; null for a tombstone or a busy-only calendar. */
  payload: unknown;
}

/** Writes snapshots of one calendar (insert or replace by event id), a few hundred rows a statement. */
export async function upsertSnapshots(
  db: Kysely<Database>,
  keyring: Keyring,
  calendarId: string,
  items: readonly SnapshotInput[],
  now: Date,
): Promise<void> {
  const BATCH = 500;
  for (let i = 0; i < items.length; i += BATCH) {
    const rows = items.slice(i, i + BATCH).map((s) => ({
      calendar_id: calendarId,
      event_id: s.eventId,
      ical_uid: s.icalUid ?? null,
      series_id: s.seriesId ?? null,
      original_start: s.originalStart ?? null,
      status: s.status,
      version: s.version ?? null,
      platform_updated_at: s.platformUpdatedAt ?? null,
      start_at: s.startAt ?? null,
      end_at: s.endAt ?? null,
      busy: s.busy ?? true,
      payload: s.payload === null || s.payload === undefined ? null : keyring.encrypt(JSON.stringify(s.payload), CONTEXT),
      synced_at: now,
    }));
    await db
      .insertInto('event_snapshots')
      .values(rows)
      .onConflict((oc) =>
        // A tombstone carries little (Google guarantees only the id): what we knew of the event stays,
        // so a move can still be matched by its iCalUID and a deleted interval is still placed.
        oc.columns(['calendar_id', 'event_id']).doUpdateSet({
          ical_uid: sql`COALESCE(excluded.ical_uid, event_snapshots.ical_uid)`,
          series_id: sql`COALESCE(excluded.series_id, event_snapshots.series_id)`,
          original_start: sql`COALESCE(excluded.original_start, event_snapshots.original_start)`,
          status: sql`excluded.status`,
          version: sql`COALESCE(excluded.version, event_snapshots.version)`,
          platform_updated_at: sql`COALESCE(excluded.platform_updated_at, event_snapshots.platform_updated_at)`,
          start_at: sql`COALESCE(excluded.start_at, event_snapshots.start_at)`,
          end_at: sql`COALESCE(excluded.end_at, event_snapshots.end_at)`,
          busy: sql`excluded.busy`,
          payload: sql`excluded.payload`,
          synced_at: sql`excluded.synced_at`,
        }),
      )
      .execute();
  }
}

/** The snapshots of a calendar of the given therapist, payloads opened. */
export async function listSnapshots(
  db: Kysely<Database>,
  keyring: Keyring,
  scope: { therapistId: string; calendarId: string },
): Promise<(SnapshotInput & { syncedAt: Date })[]> {
  const rows = await db
    .selectFrom('event_snapshots as s')
    .innerJoin('calendars as c', 'c.id', 's.calendar_id')
    .selectAll('s')
    .where('c.therapist_id', '=', scope.therapistId)
    .where('s.calendar_id', '=', scope.calendarId)
    .orderBy('s.event_id')
    .execute();
  return rows.map((r) => ({
    eventId: r.event_id,
    icalUid: r.ical_uid,
    seriesId: r.series_id,
    originalStart: r.original_start,
    status: r.status,
    version: r.version,
    platformUpdatedAt: r.platform_updated_at,
    startAt: r.start_at,
    endAt: r.end_at,
    busy: r.busy,
    payload: r.payload === null ? null : (JSON.parse(keyring.decrypt(r.payload, CONTEXT)) as unknown),
    syncedAt: r.synced_at,
  }));
}

/** One event's snapshot (status and opened payload), or undefined when we never stored it. */
export async function readSnapshot(
  db: Kysely<Database>,
  keyring: Keyring,
  at: { calendarId: string; eventId: string },
): Promise<{ status: SnapshotInput['status']; payload: unknown } | undefined> {
  const row = await db.selectFrom('event_snapshots').select(['status', 'payload']).where('calendar_id', '=', at.calendarId).where('event_id', '=', at.eventId).executeTakeFirst();
  if (!row) return undefined;
  return { status: row.status, payload: row.payload === null ? null : (JSON.parse(keyring.decrypt(row.payload, CONTEXT)) as unknown) };
}
