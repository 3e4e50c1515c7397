// Runs the schema migrations in order, each in its own transaction with its record, so none is ever
// half-applied; refuses a database migrated by a newer version or a landed migration since edited.
import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { StartupError } from '../errors.js';
import { migrations as allMigrations, type Migration } from './migrations/index.js';
import type { Database } from './schema.js';

export interface MigrationReport {
  applied: string[];
  total: number;
}

export function checksum(m: Migration): string {
  return crypto.createHash('sha256').update(m.sql).digest('hex');
}

/**
 * Brings the schema up to date. On a server, a Postgres advisory lock makes instances that start
 * together take turns; on PGlite the single connection does the same.
 */
export async function migrate(
  db: Kysely<Database>,
  opts: { now: Date; migrations?: readonly Migration[] },
): Promise<MigrationReport> {
  const list = opts.migrations ?? allMigrations;
  return db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(hashtextextended('sessionkeeper:migrate', 0))`.execute(conn);
    try {
      await sql`CREATE TABLE IF NOT EXISTS schema_migrations (
        name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL)`.execute(conn);
      const rows = await conn.selectFrom('schema_migrations').select(['name', 'checksum']).orderBy('name').execute();
      const pending = plan(list, rows);
      const applied: string[] = [];
      for (const m of pending) {
        try {
          await conn.transaction().execute(async (trx) => {
            await sql.raw(m.sql).execute(trx);
            await trx
              .insertInto('schema_migrations')
              .values({ name: m.name, checksum: checksum(m), applied_at: opts.now })
              .execute();
          });
        } catch (err) {
          throw new StartupError(
            `migration ${m.name} failed and was rolled back: ${(err as Error).message}`,
            applied.length > 0
              ? `The migrations before it (${applied.join(', ')}) are in place; fix the cause and start again`
              : 'Nothing was changed; fix the cause and start again',
          );
        }
        applied.push(m.name);
      }
      return { applied, total: list.length };
    } finally {
      await sql`SELECT pg_advisory_unlock(hashtextextended('sessionkeeper:migrate', 0))`.execute(conn);
    }
  });
}

/** The migrations still to run, after checking that what was applied is a prefix of `list`. */
function plan(list: readonly Migration[], applied: readonly { name: string; checksum: string }[]): Migration[] {
  const known = new Map(list.map((m, i) => [m.name, { m, i }]));
  applied.forEach((row, i) => {
    const entry = known.get(row.name);
    if (!entry) {
      throw new StartupError(
        `the database has migration ${row.name}, which this version of SessionKeeper does not know: a newer version migrated it`,
        'Run that newer version, or restore a backup taken before it',
      );
    }
    if (entry.i !== i) {
      throw new StartupError(
        `the database's migrations are out of order: ${row.name} was applied without ${list[i]?.name ?? 'its predecessors'}`,
        'Restore the database from a backup',
      );
    }
    if (checksum(entry.m) !== row.checksum) {
      throw new StartupError(
        `migration ${row.name} was changed after it was applied to this database`,
        `Restore src/store/migrations/${row.name}.ts as it landed; changes go into a new migration`,
      );
    }
  });
  return list.slice(applied.length);
}

/** The names of the migrations applied to a database, in order. */
export async function appliedMigrations(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('schema_migrations').select('name').orderBy('name').execute();
  return rows.map((r) => r.name);
}
