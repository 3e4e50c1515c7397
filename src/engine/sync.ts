// The calendar sync loop every platform uses: under the calendar's lock, pull the pages since the
// stored cursor; when the cursor expired, resync fully and turn stored events the platform no longer
// has into tombstones; then store the snapshots, the new cursor and the facts they make (facts.ts)
// in one transaction, so a crash never leaves snapshots whose facts were not drawn.
import { CursorExpired } from '../../connectors/errors.js';
import type { CalendarConnector } from '../../connectors/port.js';
import type { CalendarItem, ItemError, Tombstone } from '../../connectors/types.js';
import { timeMs } from '../domain/recognise.js';
import { eventTimeText } from '../domain/time.js';
import type { Logger } from '../log.js';
import { upsertSnapshots, type SnapshotInput } from '../store/snapshots.js';
import type { Store } from '../store/store.js';
import { applyFacts, type FactsResult } from './facts.js';
import type { ActionPlugin } from './outbox.js';
import { defaultPlugins } from './plugins.js';

export interface SyncOutcome {
  calendarId: string;
  mode: 'full' | 'incremental';
  /** The stored cursor had expired (410): this was a full resync with the id diff. */
  cursorExpired: boolean;
  pages: number;
  /** Every item stored this round, tombstones from the diff included, in order. */
  items: CalendarItem[];
  /** Events stored before that the full resync no longer found (deleted meanwhile). */
  deletedMeanwhile: number;
  rejected: ItemError[];
  /** What the round made of them (null for a busy-only calendar: it keeps no facts). */
  facts: FactsResult | null;
}

/** A normalised item as a snapshot row: busy-only calendars keep the interval and nothing else. */
export function snapshotOf(item: CalendarItem, calendarZone: string, busyOnly: boolean): SnapshotInput {
  if (item.kind === 'tombstone') {
    return { eventId: item.eventId, seriesId: item.seriesId, originalStart: eventTimeText(item.originalStart), status: 'deleted', busy: false, payload: null };
  }
  return {
    eventId: item.eventId,
    icalUid: item.iCalUID,
    seriesId: item.seriesId,
    originalStart: eventTimeText(item.originalStart),
    status: item.status,
    version: item.version,
    platformUpdatedAt: new Date(item.updated),
    startAt: new Date(timeMs(item.start, calendarZone)),
    endAt: new Date(timeMs(item.end, calendarZone)),
    busy: item.status !== 'cancelled' && item.showAs === 'busy',
    payload: busyOnly ? null : item,
  };
}

/**
 * Syncs one calendar (our id). Nothing is stored unless every page arrived: a failure part-way
 * leaves the old cursor, and the next attempt starts again from it.
 */
export async function syncCalendar(
  store: Store,
  connector: CalendarConnector,
  calendarId: string,
  opts: { full?: boolean; log: Logger; plugins?: readonly ActionPlugin[] },
): Promise<SyncOutcome> {
  return store.withCalendarLock(calendarId, async () => {
    const cal = await store.db
      .selectFrom('calendars')
      .select(['id', 'therapist_id', 'provider_calendar_id', 'cursor', 'role', 'time_zone'])
      .where('id', '=', calendarId)
      .executeTakeFirst();
    if (!cal) throw new Error(`no calendar ${calendarId}`);
    const zone = cal.time_zone ?? 'UTC';
    let cursorExpired = false;
    let mode: SyncOutcome['mode'] = opts.full || !cal.cursor ? 'full' : 'incremental';
    let pulled: Awaited<ReturnType<typeof pull>>;
    try {
      pulled = await pull(connector, cal.provider_calendar_id, mode === 'incremental' ? cal.cursor : null);
    } catch (err) {
      if (!(err instanceof CursorExpired)) throw err;
      cursorExpired = true;
      mode = 'full';
      opts.log.info({ calendarId }, 'sync token expired: full resync');
      pulled = await pull(connector, cal.provider_calendar_id, null);
    }
    let items = pulled.items;
    let deletedMeanwhile = 0;
    // An event the platform still lists but we could not read is not deleted: it keeps its snapshot.
    const seen = new Set([...items.map((i) => i.eventId), ...pulled.rejected.map((r) => r.eventId)]);
    const gone = (row: { event_id: string; series_id: string | null }) => {
      const tombstone: Tombstone = { kind: 'tombstone', provider: connector.provider, calendarId: cal.provider_calendar_id, eventId: row.event_id, seriesId: row.series_id, originalStart: null };
      items.push(tombstone);
      seen.add(row.event_id);
      deletedMeanwhile++;
    };
    // What a listing covers: a window (Graph), or the whole calendar (Google). Events we stored
    // outside it (sessions long past, or far ahead) are not judged by it.
    const bounds = pulled.window ?? pulled.syncedWindow;
    if (mode === 'full' || pulled.window) {
      // A complete listing has no tombstones for what was deleted since the last sync: what we
      // stored and it no longer lists is gone (API-NOTES: Google after a 410; Graph's windowed
      // reads and delta resyncs, within their window).
      let query = store.db.selectFrom('event_snapshots').select(['event_id', 'series_id']).where('calendar_id', '=', calendarId).where('status', '<>', 'deleted');
      if (bounds) query = query.where('start_at', '>=', bounds.start).where('start_at', '<', bounds.end);
      for (const row of await query.execute()) if (!seen.has(row.event_id)) gone(row);
    }
    for (const series of pulled.seriesSnapshots) {
      // A series read again in full (within the window): its stored instances it no longer has were cancelled.
      const listed = new Set(series.eventIds);
      let query = store.db.selectFrom('event_snapshots').select(['event_id', 'series_id']).where('calendar_id', '=', calendarId).where('series_id', '=', series.seriesId).where('status', '<>', 'deleted');
      if (bounds) query = query.where('start_at', '>=', bounds.start).where('start_at', '<', bounds.end);
      for (const row of await query.execute()) if (!listed.has(row.event_id) && !seen.has(row.event_id)) gone(row);
    }
    // Tombstones of events we never stored (Graph sends them for the whole mailbox) are dropped.
    const tombstoneIds = items.filter((i) => i.kind === 'tombstone').map((i) => i.eventId);
    if (tombstoneIds.length > 0) {
      const known = new Set<string>();
      for (let i = 0; i < tombstoneIds.length; i += 500) {
        const rows = await store.db.selectFrom('event_snapshots').select('event_id').where('calendar_id', '=', calendarId).where('event_id', 'in', tombstoneIds.slice(i, i + 500)).execute();
        for (const r of rows) known.add(r.event_id);
      }
      items = items.filter((i) => i.kind !== 'tombstone' || known.has(i.eventId));
    }
    const now = store.now();
    const busyOnly = cal.role === 'busy_only';
    const facts = await store.transaction(async (trx) => {
      await upsertSnapshots(trx, store.keyring, calendarId, items.map((i) => snapshotOf(i, zone, busyOnly)), now);
      await trx
        .updateTable('calendars')
        .set({
          cursor: pulled.cursor,
          last_sync_at: now,
          ...(mode === 'full' ? { last_full_sync_at: now } : {}),
          last_error: null,
          last_error_at: null,
          updated_at: now,
        })
        .where('id', '=', calendarId)
        .execute();
      if (busyOnly) return null;
      // The ledger knows calendars by our id: the platform's ids may repeat across accounts.
      const ours = items.map((i) => ({ ...i, calendarId }));
      return applyFacts(trx, store.keyring, { therapistId: cal.therapist_id, items: ours, at: now, plugins: opts.plugins ?? defaultPlugins });
    });
    if (pulled.rejected.length > 0) {
      // Ids and fields only: no titles or addresses reach the log.
      opts.log.warn({ calendarId, rejected: pulled.rejected.map((r) => ({ eventId: r.eventId, field: r.field, reason: r.reason })) }, 'skipped malformed events');
    }
    return { calendarId, mode, cursorExpired, pages: pulled.pages, items, deletedMeanwhile, rejected: pulled.rejected, facts };
  });
}

async function pull(connector: CalendarConnector, providerCalendarId: string, cursor: string | null) {
  const items: CalendarItem[] = [];
  const rejected: ItemError[] = [];
  const seriesSnapshots: { seriesId: string; eventIds: string[] }[] = [];
  let pageToken: string | null = null;
  let pages = 0;
  for (;;) {
    const page = await connector.syncPage(providerCalendarId, { cursor, pageToken });
    pages++;
    items.push(...page.items);
    rejected.push(...page.rejected);
    seriesSnapshots.push(...(page.seriesSnapshots ?? []));
    if (page.nextPageToken) {
      pageToken = page.nextPageToken;
      continue;
    }
    if (!page.nextCursor) throw new Error('the platform ended a listing without a cursor for the next sync');
    // An event that changed while we paged can be listed twice: its last copy is the one that counts.
    const last = new Map<string, number>();
    items.forEach((item, i) => last.set(item.eventId, i));
    const unique = last.size === items.length ? items : items.filter((item, i) => last.get(item.eventId) === i);
    return { items: unique, rejected, pages, cursor: page.nextCursor, window: page.window ?? null, syncedWindow: page.syncedWindow ?? null, seriesSnapshots };
  }
}

/** Records why a calendar's sync failed (for the operator); no event data. */
export async function recordSyncError(store: Store, calendarId: string, err: unknown): Promise<void> {
  const now = store.now();
  await store.db
    .updateTable('calendars')
    .set({ last_error: `${(err as Error).name}: ${(err as Error).message}`.slice(0, 500), last_error_at: now, updated_at: now })
    .where('id', '=', calendarId)
    .execute();
}
