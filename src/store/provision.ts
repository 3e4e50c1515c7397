// Making databases quickly, for tests and benchmarks: a migrated template made once (a PGlite dump,
// or a Postgres template database), then one fresh copy per test file, since creating one costs seconds.
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Clock } from '../clock.js';
import type { Keyring } from '../secrets.js';
import { recordCurrentKey } from './keys.js';
import { migrate } from './migrate.js';
import { PGliteDialect } from './pglite-dialect.js';
import type { Database } from './schema.js';
import { createPool, Store } from './store.js';

/** A migrated, empty embedded database, as an uncompressed dump to load copies from. */
export async function makePGliteTemplate(): Promise<Blob> {
  const pglite = await PGlite.create();
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  await migrate(db, { now: new Date() });
  const dump = await pglite.dumpDataDir('none');
  await db.destroy();
  await pglite.close();
  return dump;
}

/** A store on a fresh in-memory copy of the template. */
export async function pgliteStoreFromTemplate(template: Blob, keyring: Keyring, clock: Clock): Promise<Store> {
  const pglite = await PGlite.create({ loadDataDir: template });
  const store = new Store({
    db: new Kysely<Database>({ dialect: new PGliteDialect(pglite) }),
    backend: 'pglite',
    keyring,
    clock,
    onClose: () => pglite.close(),
  });
  await recordCurrentKey(store.db, keyring, store.now());
  return store;
}

export function databaseUrl(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a safe database name: ${name}`);
  return `"${name}"`;
}

/** Creates (or recreates) a migrated template database on the server of `url`. */
export async function makePgTemplate(url: string, name: string): Promise<void> {
  await admin(url, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${ident(name)}`);
    await c.query(`CREATE DATABASE ${ident(name)}`);
  });
  const pool = createPool(databaseUrl(url, name), 2);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrate(db, { now: new Date() });
  } finally {
    await db.destroy();
  }
}

/** A store on a new database copied from the template; closing it drops the database. */
export async function pgStoreFromTemplate(url: string, template: string, name: string, keyring: Keyring, clock: Clock, poolMax = 10): Promise<Store> {
  await admin(url, (c) => c.query(`CREATE DATABASE ${ident(name)} TEMPLATE ${ident(template)}`));
  const pool = createPool(databaseUrl(url, name), poolMax);
  const store = new Store({
    db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
    backend: 'postgres',
    keyring,
    clock,
    onClose: () => dropDatabase(url, name),
  });
  await recordCurrentKey(store.db, keyring, store.now());
  return store;
}

export async function dropDatabase(url: string, name: string): Promise<void> {
  await admin(url, (c) => c.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
}

/** Names of databases on the server that start with a prefix (to clean up after a run). */
export async function databasesWithPrefix(url: string, prefix: string): Promise<string[]> {
  return admin(url, async (c) => {
    const r = await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [prefix]);
    return r.rows.map((row) => row.datname);
  });
}

/** Whether the server at url answers, for benchmarks that run on it when it is there. */
export async function reachable(url: string): Promise<boolean> {
  try {
    await admin(url, (c) => c.query('SELECT 1'));
    return true;
  } catch {
    return false;
  }
}

/** Lists a database's own tables and columns (for the schema test). */
export async function tableColumns(db: Kysely<Database>): Promise<Record<string, string[]>> {
  const rows = await sql<{ table_name: string; column_name: string }>`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`.execute(db);
  const out: Record<string, string[]> = {};
  for (const r of rows.rows) (out[r.table_name] ??= []).push(r.column_name);
  return out;
}
