// Who is named in what we send a client: the client as the practice knows them (their name and every
// email address we know, sealed in the store and opened only here, for the message being made, and their
// zone), and the therapist and practice by the names the client knows.
import type { Kysely } from 'kysely';
import type { Keyring } from '../secrets.js';
import { sealContext } from '../store/keys.js';
import type { Database } from '../store/schema.js';

const CLIENT_NAME = sealContext('clients', 'display_name');
const IDENTITY = sealContext('client_identities', 'value');
const CLIENT_KEY = sealContext('clients', 'ledger_key');

/**
 * The client as the practice knows them: their name, every email we know (their identities, and the
 * addresses in their ledger key: "email:a@x.com", a couple "email:a@x.com+b@y.com"; normalised
 * emails carry no +tag, so the plus only joins), and their zone. No email: they could not be invited.
 */
export async function clientContact(db: Kysely<Database>, keyring: Keyring, therapistId: string, clientId: string): Promise<{ name: string; emails: string[]; zone: string | null }> {
  const client = await db.selectFrom('clients').select(['display_name', 'time_zone', 'ledger_key']).where('id', '=', clientId).where('therapist_id', '=', therapistId).executeTakeFirstOrThrow();
  const identities = await db
    .selectFrom('client_identities')
    .select('value')
    .where('client_id', '=', clientId)
    .where('therapist_id', '=', therapistId)
    .where('kind', '=', 'email')
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  const emails = new Set(identities.map((r) => keyring.decrypt(r.value, IDENTITY)));
  const key = client.ledger_key ? keyring.decrypt(client.ledger_key, CLIENT_KEY) : '';
  if (key.startsWith('email:')) for (const e of key.slice('email:'.length).split('+')) if (e.includes('@')) emails.add(e);
  return { name: client.display_name ? keyring.decrypt(client.display_name, CLIENT_NAME) : '', emails: [...emails], zone: client.time_zone };
}

/** The therapist's name as the client sees it (their display name, else the practice's) and the practice's. */
export async function practiceNames(db: Kysely<Database>, therapistId: string): Promise<{ therapistName: string; practiceName: string }> {
  const row = await db
    .selectFrom('therapists as t')
    .innerJoin('practices as p', 'p.id', 't.practice_id')
    .select(['t.display_name', 'p.name'])
    .where('t.id', '=', therapistId)
    .executeTakeFirstOrThrow();
  return { therapistName: row.display_name ?? row.name, practiceName: row.name };
}
