// Connected accounts and their sealed credentials. Every read and write names the verified
// therapist, so one therapist's id can never reach another's tokens.
import type { Kysely } from 'kysely';
import type { CredentialStore } from '../../connectors/port.js';
import type { Keyring } from '../secrets.js';
import { audit } from './audit.js';
import { sealContext } from './keys.js';
import type { ConnectionStatus, Database, Provider } from './schema.js';

const CONTEXT = sealContext('connections', 'credentials');

export interface ConnectionRef {
  therapistId: string;
  connectionId: string;
}

export async function createConnection(
  db: Kysely<Database>,
  keyring: Keyring,
  input: {
    therapistId: string;
    provider: Provider;
    accountSubject: string;
    accountEmail?: string;
    scopes?: string[];
    credentials?: string;
    now: Date;
  },
): Promise<{ id: string }> {
  const row = await db
    .insertInto('connections')
    .values({
      therapist_id: input.therapistId,
      provider: input.provider,
      account_subject: input.accountSubject,
      account_email: input.accountEmail ?? null,
      scopes: input.scopes ?? [],
      credentials: input.credentials === undefined ? null : keyring.encrypt(input.credentials, CONTEXT),
      status_changed_at: input.now,
      created_at: input.now,
      updated_at: input.now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await audit(db, {
    at: input.now,
    therapistId: input.therapistId,
    actor: `therapist:${input.therapistId}`,
    action: 'connect',
    subjectType: 'connection',
    subjectId: row.id,
    detail: { provider: input.provider },
  });
  return row;
}

export async function loadCredentials(db: Kysely<Database>, keyring: Keyring, ref: ConnectionRef): Promise<string | undefined> {
  const row = await db
    .selectFrom('connections')
    .select('credentials')
    .where('id', '=', ref.connectionId)
    .where('therapist_id', '=', ref.therapistId)
    .executeTakeFirst();
  return row?.credentials ? keyring.decrypt(row.credentials, CONTEXT) : undefined;
}

export async function saveCredentials(db: Kysely<Database>, keyring: Keyring, ref: ConnectionRef, credentials: string, now: Date): Promise<void> {
  const result = await db
    .updateTable('connections')
    .set({ credentials: keyring.encrypt(credentials, CONTEXT), updated_at: now })
    .where('id', '=', ref.connectionId)
    .where('therapist_id', '=', ref.therapistId)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) throw new Error(`no connection ${ref.connectionId} for therapist ${ref.therapistId}`);
}

export async function setConnectionStatus(
  db: Kysely<Database>,
  ref: ConnectionRef,
  status: ConnectionStatus,
  reason: string | null,
  now: Date,
): Promise<void> {
  await db
    .updateTable('connections')
    .set({ status, status_reason: reason, status_changed_at: now, updated_at: now })
    .where('id', '=', ref.connectionId)
    .where('therapist_id', '=', ref.therapistId)
    .where('status', '<>', status)
    .execute();
}

/** The port that a connector is handed for one connection (connectors/port.ts). */
export function credentialStoreFor(db: Kysely<Database>, keyring: Keyring, ref: ConnectionRef, now: () => Date): CredentialStore {
  return {
    load: () => loadCredentials(db, keyring, ref),
    save: (credentials) => saveCredentials(db, keyring, ref, credentials, now()),
    markNeedsReauth: (reason) => setConnectionStatus(db, ref, 'needs_reauth', reason, now()),
  };
}
