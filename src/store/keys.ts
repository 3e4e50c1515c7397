// Which stored values are sealed, the start-up check that the configured keys can open them, and
// the re-encryption behind `sessionkeeper rotate-key`.
import { sql, type Kysely } from 'kysely';
import { StartupError } from '../errors.js';
import type { Keyring } from '../secrets.js';
import type { Database } from './schema.js';

interface SealedColumn {
  table: keyof Database;
  column: string;
  /** The primary key columns of the table. */
  key: readonly string[];
  /** A keyed hash kept beside the value, recomputed when the key changes. */
  hash?: { column: string; purpose: (row: Record<string, unknown>) => string; needs: readonly string[] };
}

/** Every column that holds sealed values (secrets.ts). A new sealed column must be listed here. */
export const sealedColumns: readonly SealedColumn[] = [
  { table: 'connections', column: 'credentials', key: ['id'] },
  { table: 'clients', column: 'display_name', key: ['id'] },
  {
    table: 'client_identities',
    column: 'value',
    key: ['id'],
    hash: { column: 'value_hash', purpose: (row) => identityPurpose(row['kind'] as string), needs: ['kind'] },
  },
  { table: 'event_snapshots', column: 'payload', key: ['calendar_id', 'event_id'] },
  { table: 'clients', column: 'ledger_key', key: ['id'], hash: { column: 'ledger_key_hash', purpose: () => CLIENT_KEY_PURPOSE, needs: [] } },
  { table: 'ledgers', column: 'state', key: ['therapist_id'] },
  { table: 'actions', column: 'secret', key: ['id'] },
];

/** The purpose of the keyed hash that finds a client again by the ledger's client key. */
export const CLIENT_KEY_PURPOSE = 'client_ledger_key';

/** The context a sealed value is bound to (associated data): its table and column. */
export function sealContext(table: string, column: string): string {
  return `${table}.${column}`;
}

export function identityPurpose(kind: string): string {
  return `client_identity:${kind}`;
}

const CANARY_CONTEXT = sealContext('key_canaries', 'canary');
const CANARY_TEXT = 'sessionkeeper key canary';

/**
 * Refuses to go on when the database holds values sealed with a key that is not configured (a wrong
 * SESSIONKEEPER_KEY, a lost key file). Reads only; runs before migrations so nothing is changed.
 */
export async function verifyKeys(db: Kysely<Database>, keyring: Keyring): Promise<void> {
  const exists = await sql<{ t: string | null }>`SELECT to_regclass('key_canaries')::text AS t`.execute(db);
  if (!exists.rows[0]?.t) return;
  const rows = await db.selectFrom('key_canaries').select(['key_id', 'canary']).execute();
  const missing = rows.filter((r) => !keyring.has(r.key_id)).map((r) => r.key_id);
  if (missing.length > 0) {
    throw new StartupError(
      `stored secrets were sealed with key ${missing.join(', ')}, which is not configured (the configured key is ${keyring.current.id}${keyring.ids.length > 1 ? `, also ${keyring.ids.filter((i) => i !== keyring.current.id).join(', ')}` : ''})`,
      'Set SESSIONKEEPER_KEY to the key used before (or restore the data folder\'s keys/), or add it to SESSIONKEEPER_PREVIOUS_KEYS and run `sessionkeeper rotate-key`; nothing was changed',
    );
  }
  for (const row of rows) {
    if (keyring.decrypt(row.canary, CANARY_CONTEXT) !== CANARY_TEXT) {
      throw new StartupError(`the key canary of key ${row.key_id} is wrong`, 'Restore the database from a backup');
    }
  }
}

/** Notes that the current key may now seal values (after migrations). */
export async function recordCurrentKey(db: Kysely<Database>, keyring: Keyring, now: Date): Promise<void> {
  await db
    .insertInto('key_canaries')
    .values({ key_id: keyring.current.id, canary: keyring.encrypt(CANARY_TEXT, CANARY_CONTEXT), created_at: now })
    .onConflict((oc) => oc.column('key_id').doNothing())
    .execute();
}

export interface RotationReport {
  keyId: string;
  /** Values moved to the current key, per "table.column". */
  resealed: Record<string, number>;
  /** Keys that no stored value uses any more. */
  retired: string[];
}

/**
 * Re-seals every value not sealed with the keyring's current key, and recomputes keyed hashes, in
 * one transaction: a crash leaves either the old state or the new one, and both open.
 */
export async function rotateKeys(db: Kysely<Database>, keyring: Keyring, now: Date): Promise<RotationReport> {
  const current = keyring.current.id;
  return db.transaction().execute(async (trx) => {
    const resealed: Record<string, number> = {};
    for (const col of sealedColumns) {
      const name = sealContext(col.table, col.column);
      const fields = [...col.key, col.column, ...(col.hash?.needs ?? [])];
      let count = 0;
      for (;;) {
        // Rows already moved drop out of the filter, so each batch is the next one.
        const rows = await sql<Record<string, unknown>>`
          SELECT ${sql.join(fields.map((f) => sql.ref(f)))} FROM ${sql.table(col.table)}
          WHERE ${sql.ref(col.column)} IS NOT NULL AND split_part(${sql.ref(col.column)}, '.', 2) <> ${current}
          LIMIT 500`.execute(trx);
        if (rows.rows.length === 0) break;
        for (const row of rows.rows) {
          const plain = keyring.decrypt(row[col.column] as string, name);
          const sets = [sql`${sql.ref(col.column)} = ${keyring.encrypt(plain, name)}`];
          if (col.hash) sets.push(sql`${sql.ref(col.hash.column)} = ${keyring.blindIndex(plain, col.hash.purpose(row))}`);
          // Only if unchanged since read: an engine may have written a newer value meanwhile (already
          // under the current key), which must not be overwritten with this older one.
          const where = sql.join([...col.key.map((k) => sql`${sql.ref(k)} = ${row[k]}`), sql`${sql.ref(col.column)} = ${row[col.column]}`], sql` AND `);
          await sql`UPDATE ${sql.table(col.table)} SET ${sql.join(sets)} WHERE ${where}`.execute(trx);
          count++;
        }
      }
      resealed[name] = count;
    }
    const retired = await trx.deleteFrom('key_canaries').where('key_id', '<>', current).returning('key_id').execute();
    await recordCurrentKey(trx, keyring, now);
    return { keyId: current, resealed, retired: retired.map((r) => r.key_id) };
  });
}
