// Push channels (Google) and subscriptions (Graph) per calendar: created when missing, replaced
// before they expire (a calendar has two while one replaces the other), the old one stopped.
import { randomBytes, randomUUID } from 'node:crypto';
import { NotFound } from '../../connectors/errors.js';
import type { CalendarConnector } from '../../connectors/port.js';
import type { Logger } from '../log.js';
import { recordPushChannel } from '../store/calendars.js';
import { requestSync } from '../store/sync-queue.js';
import type { Store } from '../store/store.js';

/** Replace a channel this long before it expires (Google's live at most a week). */
export const RENEW_BEFORE_MS = 24 * 3_600_000;

export interface ChannelChange {
  created: string | null;
  stopped: string[];
}

/**
 * Makes sure the calendar has a live channel that will not expire within RENEW_BEFORE_MS, at
 * `address`. Channels are not renewable on Google: a new one is made and the old one stopped
 * (API-NOTES). There is no API listing channels, so our record is the only one.
 */
export async function ensureChannel(
  store: Store,
  connector: CalendarConnector,
  calendar: { id: string; provider_calendar_id: string },
  opts: { address: string; log: Logger },
): Promise<ChannelChange> {
  // Under the calendar's lock: two upkeeps at once (two instances, the CLI and the server) would
  // otherwise both make a channel.
  return store.withCalendarLock(calendar.id, () => ensureChannelLocked(store, connector, calendar, opts));
}

async function ensureChannelLocked(
  store: Store,
  connector: CalendarConnector,
  calendar: { id: string; provider_calendar_id: string },
  opts: { address: string; log: Logger },
): Promise<ChannelChange> {
  const now = store.now();
  const active = await store.db
    .selectFrom('push_channels')
    .select(['id', 'channel_id', 'resource_id', 'expires_at'])
    .where('calendar_id', '=', calendar.id)
    .where('status', '=', 'active')
    .orderBy('expires_at', 'desc')
    .execute();
  const live = active.filter((c) => c.expires_at.getTime() > now.getTime());
  if (live.some((c) => c.expires_at.getTime() - now.getTime() > RENEW_BEFORE_MS)) return { created: null, stopped: await stopReplaced(store, connector, calendar.id, opts.log) };
  // Where the platform renews in place (Graph: PATCH with a new expiry; it also reauthorizes), do
  // that; a channel that is gone there is made anew below. Google's channels cannot be renewed.
  const renewable = live[0];
  if (renewable && connector.renew) {
    try {
      const expiresAt = await connector.renew(renewable.channel_id, new Date(now.getTime() + 3 * 24 * 3_600_000));
      await store.db.updateTable('push_channels').set({ expires_at: expiresAt }).where('id', '=', renewable.id).execute();
      return { created: null, stopped: await stopReplaced(store, connector, calendar.id, opts.log) };
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
      opts.log.info({ channelId: renewable.channel_id }, 'subscription gone at the platform: making a new one');
    }
  }

  const secret = randomBytes(32).toString('base64url');
  const channelId = randomUUID();
  // Recorded before the platform is asked: its first notification ("sync") may arrive before the
  // answer to events.watch does, and must find the channel.
  const row = await recordPushChannel(store.db, { calendarId: calendar.id, provider: connector.provider, channelId, resourceId: null, secret, expiresAt: new Date(now.getTime() + 7 * 24 * 3_600_000), now });
  let channel: Awaited<ReturnType<CalendarConnector['watch']>>;
  try {
    channel = await connector.watch(calendar.provider_calendar_id, { channelId, address: opts.address, secret });
  } catch (err) {
    await store.db.deleteFrom('push_channels').where('id', '=', row.id).execute();
    throw err;
  }
  // Graph names its subscriptions itself: the record takes the id the platform gave.
  await store.db.updateTable('push_channels').set({ channel_id: channel.channelId, resource_id: channel.resourceId, expires_at: channel.expiresAt }).where('id', '=', row.id).execute();
  // Whatever changed while there was no channel, or between the platform making this one and our
  // record learning its name, sent no notification we kept: sync once.
  await requestSync(store.db, { calendarId: calendar.id, reason: 'channel', now: store.now() });
  for (const old of active) await store.db.updateTable('push_channels').set({ status: 'replaced' }).where('id', '=', old.id).execute();
  return { created: channel.channelId, stopped: await stopReplaced(store, connector, calendar.id, opts.log) };
}

/** Stops channels that a newer one replaced (again, for any an earlier attempt could not stop). */
async function stopReplaced(store: Store, connector: CalendarConnector, calendarId: string, log: Logger): Promise<string[]> {
  const replaced = await store.db.selectFrom('push_channels').select(['id', 'channel_id', 'resource_id', 'expires_at']).where('calendar_id', '=', calendarId).where('status', '=', 'replaced').execute();
  const stopped: string[] = [];
  for (const old of replaced) {
    try {
      // One that expired meanwhile is gone at the platform already.
      if (old.expires_at.getTime() > store.now().getTime()) await connector.stopChannel({ channelId: old.channel_id, resourceId: old.resource_id });
      await store.db.updateTable('push_channels').set({ status: 'stopped', stopped_at: store.now() }).where('id', '=', old.id).execute();
      stopped.push(old.channel_id);
    } catch (err) {
      // Left "replaced": the next upkeep tries again; it expires by itself anyway.
      log.warn({ err, channelId: old.channel_id }, 'could not stop a replaced push channel');
    }
  }
  return stopped;
}

/**
 * Keeps push alive for every watched calendar of every working connection: a channel for each,
 * renewed before it expires. Failures are logged per calendar; the rest go on.
 */
export async function upkeepChannels(
  store: Store,
  connectors: { calendarConnector(c: { id: string; therapist_id: string; provider: 'google' | 'microsoft' }): Promise<CalendarConnector> },
  opts: { publicUrl: string; log: Logger },
): Promise<{ created: number; stopped: number; failed: number }> {
  const calendars = await store.db
    .selectFrom('calendars as c')
    .innerJoin('connections as k', 'k.id', 'c.connection_id')
    .select(['c.id', 'c.provider_calendar_id', 'k.id as connection_id', 'k.therapist_id', 'k.provider'])
    .where('c.role', '<>', 'ignored')
    .where('k.status', '=', 'ok')
    // Only those with work to do: no channel that outlives the renewal margin, or an old one to stop.
    // The rest cost nothing (no connector, no lock): an idle tick stays a few queries.
    .where(({ or, not, exists, selectFrom }) =>
      or([
        not(
          exists(
            selectFrom('push_channels as p')
              .select('p.id')
              .whereRef('p.calendar_id', '=', 'c.id')
              .where('p.status', '=', 'active')
              .where('p.expires_at', '>', new Date(store.now().getTime() + RENEW_BEFORE_MS)),
          ),
        ),
        exists(selectFrom('push_channels as p').select('p.id').whereRef('p.calendar_id', '=', 'c.id').where('p.status', '=', 'replaced')),
      ]),
    )
    .execute();
  const totals = { created: 0, stopped: 0, failed: 0 };
  // Channels of calendars no longer watched (ignored, or their connection lost) are stopped.
  const orphans = await store.db
    .selectFrom('push_channels as p')
    .innerJoin('calendars as c', 'c.id', 'p.calendar_id')
    .innerJoin('connections as k', 'k.id', 'c.connection_id')
    .select(['p.id', 'p.channel_id', 'p.resource_id', 'k.id as connection_id', 'k.therapist_id', 'k.provider', 'k.status'])
    .where('p.status', '<>', 'stopped')
    .where((eb) => eb.or([eb('c.role', '=', 'ignored'), eb('k.status', '<>', 'ok')]))
    .execute();
  for (const o of orphans) {
    try {
      if (o.status === 'ok') {
        const connector = await connectors.calendarConnector({ id: o.connection_id, therapist_id: o.therapist_id, provider: o.provider });
        await connector.stopChannel({ channelId: o.channel_id, resourceId: o.resource_id });
      }
      // Without a working grant it cannot be stopped at the platform: it lapses by itself there.
      await store.db.updateTable('push_channels').set({ status: 'stopped', stopped_at: store.now() }).where('id', '=', o.id).execute();
      totals.stopped++;
    } catch (err) {
      totals.failed++;
      opts.log.warn({ err, channelId: o.channel_id }, 'could not stop the push channel of an unwatched calendar');
    }
  }
  for (const cal of calendars) {
    try {
      const connector = await connectors.calendarConnector({ id: cal.connection_id, therapist_id: cal.therapist_id, provider: cal.provider });
      const change = await ensureChannel(store, connector, cal, { address: `${opts.publicUrl}/webhooks/${cal.provider}`, log: opts.log });
      if (change.created) totals.created++;
      totals.stopped += change.stopped.length;
    } catch (err) {
      totals.failed++;
      opts.log.warn({ err, calendarId: cal.id }, 'could not keep push alive for a calendar');
    }
  }
  return totals;
}
