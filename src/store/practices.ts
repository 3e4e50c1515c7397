// Practices, their settings (validated on the way in and out) and their therapists, who are found
// by their verified platform identity (Google sub, Microsoft oid + tid), never by email.
import type { Kysely } from 'kysely';
import { parsePracticeSettings, type PracticeSettings } from '../config.js';
import { InvalidInput } from '../errors.js';
import { audit } from './audit.js';
import type { Database, Provider } from './schema.js';

export interface PlatformIdentity {
  provider: Provider;
  /** Google: the ID token's `sub`. Microsoft: the token's `oid`. */
  subject: string;
  /** Microsoft: the token's `tid`. Google: absent. */
  tenantId?: string;
}

export async function createPractice(
  db: Kysely<Database>,
  input: { name: string; settings?: unknown; now: Date },
): Promise<{ id: string; settings: PracticeSettings }> {
  const settings = parsePracticeSettings(input.settings ?? {});
  const row = await db
    .insertInto('practices')
    .values({ name: input.name, settings: JSON.stringify(settings), created_at: input.now, updated_at: input.now })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { id: row.id, settings };
}

/** The settings of the practice a therapist belongs to. */
export async function therapistSettings(db: Kysely<Database>, therapistId: string): Promise<PracticeSettings> {
  const therapist = await db.selectFrom('therapists').select('practice_id').where('id', '=', therapistId).executeTakeFirstOrThrow();
  return getPracticeSettings(db, therapist.practice_id);
}

/** A practice's settings, checked again on the way out (a row written by hand or by an older version). */
export async function getPracticeSettings(db: Kysely<Database>, practiceId: string): Promise<PracticeSettings> {
  const row = await db.selectFrom('practices').select('settings').where('id', '=', practiceId).executeTakeFirst();
  if (!row) throw new InvalidInput(`no practice ${practiceId}`);
  return parsePracticeSettings(row.settings);
}

/** Replaces a practice's settings; refused as a whole (nothing stored) when any field is invalid. */
export async function updatePracticeSettings(
  db: Kysely<Database>,
  input: { practiceId: string; settings: unknown; actor: string; therapistId: string | null; now: Date },
): Promise<PracticeSettings> {
  const settings = parsePracticeSettings(input.settings);
  const updated = await db
    .updateTable('practices')
    .set({ settings: JSON.stringify(settings), updated_at: input.now })
    .where('id', '=', input.practiceId)
    .executeTakeFirst();
  if (updated.numUpdatedRows === 0n) throw new InvalidInput(`no practice ${input.practiceId}`);
  // The engine looks at each therapist's sessions again at its next tick (presumption turned on,
  // thresholds of risk signals changed).
  await db
    .updateTable('ledgers')
    .set({ next_presume_at: input.now })
    .where('therapist_id', 'in', (eb) => eb.selectFrom('therapists').select('id').where('practice_id', '=', input.practiceId))
    .execute();
  await audit(db, {
    at: input.now,
    therapistId: input.therapistId,
    actor: input.actor,
    action: 'update',
    subjectType: 'practice_settings',
    subjectId: input.practiceId,
  });
  return settings;
}

export async function createTherapist(
  db: Kysely<Database>,
  input: {
    practiceId: string;
    identity: PlatformIdentity;
    role?: 'owner' | 'admin' | 'therapist';
    displayName?: string;
    email?: string;
    timeZone?: string;
    now: Date;
  },
): Promise<{ id: string }> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('therapists')
      .values({
        practice_id: input.practiceId,
        role: input.role ?? 'therapist',
        display_name: input.displayName ?? null,
        email: input.email ?? null,
        time_zone: input.timeZone ?? null,
        created_at: input.now,
        updated_at: input.now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await trx
      .insertInto('therapist_identities')
      .values({
        provider: input.identity.provider,
        tenant_id: input.identity.tenantId ?? '',
        subject: input.identity.subject,
        therapist_id: row.id,
        created_at: input.now,
      })
      .execute();
    return { id: row.id };
  });
}

/** The therapist behind a verified identity, if they have signed up. */
export async function findTherapistByIdentity(db: Kysely<Database>, identity: PlatformIdentity): Promise<{ id: string; practiceId: string } | undefined> {
  const row = await db
    .selectFrom('therapist_identities as i')
    .innerJoin('therapists as t', 't.id', 'i.therapist_id')
    .select(['t.id', 't.practice_id'])
    .where('i.provider', '=', identity.provider)
    .where('i.tenant_id', '=', identity.tenantId ?? '')
    .where('i.subject', '=', identity.subject)
    .executeTakeFirst();
  return row ? { id: row.id, practiceId: row.practice_id } : undefined;
}
