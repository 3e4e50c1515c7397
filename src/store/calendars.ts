// Calendars of a connection: their role, the sync cursor, and their push channels.
import { hashChannelSecret, type StoredChannel } from '../../connectors/port.js';
import type { Kysely } from 'kysely';
import type { CalendarRole, Database, Provider } from './schema.js';

export async function upsertCalendar(
  db: Kysely<Database>,
  input: {
    therapistId: string;
    connectionId: string;
    providerCalendarId: string;
    name?: string | null;
    timeZone?: string | null;
    role?: CalendarRole;
    now: Date;
  },
): Promise<{ id: string }> {
  return db
    .insertInto('calendars')
    .values({
      therapist_id: input.therapistId,
      connection_id: input.connectionId,
      provider_calendar_id: input.providerCalendarId,
      name: input.name ?? null,
      time_zone: input.timeZone ?? null,
      role: input.role ?? 'mixed',
      created_at: input.now,
      updated_at: input.now,
    })
    .onConflict((oc) =>
      oc.columns(['connection_id', 'provider_calendar_id']).doUpdateSet((eb) => ({
        name: eb.ref('excluded.name'),
        time_zone: eb.ref('excluded.time_zone'),
        updated_at: eb.ref('excluded.updated_at'),
      })),
    )
    .returning('id')
    .executeTakeFirstOrThrow();
}

export async function recordPushChannel(
  db: Kysely<Database>,
  input: { calendarId: string; provider: Provider; channelId: string; resourceId?: string | null; secret: string; expiresAt: Date; now: Date },
): Promise<{ id: string }> {
  return db
    .insertInto('push_channels')
    .values({
      calendar_id: input.calendarId,
      provider: input.provider,
      channel_id: input.channelId,
      resource_id: input.resourceId ?? null,
      secret_hash: hashChannelSecret(input.secret),
      expires_at: input.expiresAt,
      created_at: input.now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
}

/** The channel a notification names (not stopped), with what it is checked against. */
export async function findPushChannel(
  db: Kysely<Database>,
  input: { provider: Provider; channelId: string },
): Promise<(StoredChannel & { calendarId: string; rowId: string }) | undefined> {
  const row = await db
    .selectFrom('push_channels')
    .select(['id', 'calendar_id', 'channel_id', 'secret_hash', 'resource_id'])
    .where('provider', '=', input.provider)
    .where('channel_id', '=', input.channelId)
    .where('status', '<>', 'stopped')
    .executeTakeFirst();
  return row ? { rowId: row.id, calendarId: row.calendar_id, channelId: row.channel_id, resourceId: row.resource_id, secretHash: row.secret_hash } : undefined;
}

/**
 * Graph names a subscription only in its answer, and may notify before we have stored that name:
 * such a notification is matched by its clientState (ours is unique per subscription), and the
 * record takes the name. Only records still waiting for one qualify.
 */
export async function claimPushChannelBySecret(
  db: Kysely<Database>,
  input: { provider: Provider; channelId: string; secret: string; since: Date },
): Promise<(StoredChannel & { calendarId: string; rowId: string }) | undefined> {
  const row = await db
    .selectFrom('push_channels')
    .select(['id', 'calendar_id'])
    .where('provider', '=', input.provider)
    .where('secret_hash', '=', hashChannelSecret(input.secret))
    .where('status', '=', 'active')
    .where('created_at', '>=', input.since)
    .executeTakeFirst();
  if (!row) return undefined;
  await db.updateTable('push_channels').set({ channel_id: input.channelId }).where('id', '=', row.id).execute();
  return findPushChannel(db, { provider: input.provider, channelId: input.channelId });
}
