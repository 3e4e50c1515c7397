// Clients and the identities they are recognised by. Names and identity values are sealed; an
// identity is found again by its keyed hash, under the current key or one still being rotated out.
import type { Kysely } from 'kysely';
import { normaliseEmail, normaliseName } from '../domain/identity.js';
import { InvalidInput } from '../errors.js';
import type { Keyring } from '../secrets.js';
import { identityPurpose, sealContext } from './keys.js';
import type { Database } from './schema.js';

const NAME = sealContext('clients', 'display_name');
const VALUE = sealContext('client_identities', 'value');

export type IdentityKind = 'email' | 'title';

function normalise(kind: IdentityKind, raw: string): string {
  if (kind === 'title') return normaliseName(raw);
  const email = normaliseEmail(raw);
  if (!email) throw new InvalidInput('not an email address', [{ path: 'identity', message: 'must be an email address' }]);
  return email;
}

export async function createClient(
  db: Kysely<Database>,
  keyring: Keyring,
  input: { therapistId: string; displayName: string; timeZone?: string | null; identities: { kind: IdentityKind; value: string }[]; now: Date },
): Promise<{ id: string }> {
  return db.transaction().execute(async (trx) => {
    const client = await trx
      .insertInto('clients')
      .values({
        therapist_id: input.therapistId,
        display_name: keyring.encrypt(input.displayName, NAME),
        time_zone: input.timeZone ?? null,
        created_at: input.now,
        updated_at: input.now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    for (const identity of input.identities) {
      await addIdentity(trx, keyring, { therapistId: input.therapistId, clientId: client.id, ...identity, linkedBy: 'auto', now: input.now });
    }
    return client;
  });
}

export async function addIdentity(
  db: Kysely<Database>,
  keyring: Keyring,
  input: { therapistId: string; clientId: string; kind: IdentityKind; value: string; linkedBy: 'auto' | 'therapist'; now: Date },
): Promise<void> {
  const value = normalise(input.kind, input.value);
  await db
    .insertInto('client_identities')
    .values({
      client_id: input.clientId,
      therapist_id: input.therapistId,
      kind: input.kind,
      value: keyring.encrypt(value, VALUE),
      value_hash: keyring.blindIndex(value, identityPurpose(input.kind)),
      linked_by: input.linkedBy,
      created_at: input.now,
    })
    .execute();
}

/** The therapist's client recognised by this email or title name, if any. */
export async function findClientByIdentity(
  db: Kysely<Database>,
  keyring: Keyring,
  input: { therapistId: string; kind: IdentityKind; value: string },
): Promise<{ id: string; displayName: string } | undefined> {
  const value = input.kind === 'email' ? normaliseEmail(input.value) : normaliseName(input.value);
  if (!value) return undefined;
  const row = await db
    .selectFrom('client_identities as i')
    .innerJoin('clients as c', 'c.id', 'i.client_id')
    .select(['c.id', 'c.display_name'])
    .where('i.therapist_id', '=', input.therapistId)
    .where('i.kind', '=', input.kind)
    .where('i.value_hash', 'in', keyring.blindIndexCandidates(value, identityPurpose(input.kind)))
    .executeTakeFirst();
  return row ? { id: row.id, displayName: row.display_name ? keyring.decrypt(row.display_name, NAME) : '' } : undefined;
}
