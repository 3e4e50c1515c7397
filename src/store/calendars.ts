// Calendars of a connection: their role, the sync cursor, and their push channels.
import crypto from 'node:crypto';
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

/** A channel token or clientState is checked by its hash: the database never holds the secret. */
export function hashChannelSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret).digest('hex');
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

/**
 * The calendar of an active channel whose secret matches, or undefined: an unknown channel and a
 * wrong secret look the same to the caller (and to whoever forged the request).
 */
export async function verifyPushChannel(
  db: Kysely<Database>,
  input: { provider: Provider; channelId: string; secret: string },
): Promise<{ calendarId: string; channelRowId: string; resourceId: string | null } | undefined> {
  const row = await db
    .selectFrom('push_channels')
    .select(['id', 'calendar_id', 'secret_hash', 'resource_id'])
    .where('provider', '=', input.provider)
    .where('channel_id', '=', input.channelId)
    .where('status', '<>', 'stopped')
    .executeTakeFirst();
  if (!row) return undefined;
  const given = Buffer.from(hashChannelSecret(input.secret), 'hex');
  const stored = Buffer.from(row.secret_hash, 'hex');
  if (given.length !== stored.length || !crypto.timingSafeEqual(given, stored)) return undefined;
  return { calendarId: row.calendar_id, channelRowId: row.id, resourceId: row.resource_id };
}
