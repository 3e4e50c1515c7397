// The store: one Postgres schema behind Kysely, embedded (PGlite in the data folder, one serialised
// connection) or on a server (a pg pool). Opening it migrates, checks the keys, and takes the locks.
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import { loadKeyring, type Keyring, type LoadedKeyring } from '../secrets.js';
import { lockDataDir, prepareDataDir, type DataDirLock } from './datadir.js';
import { recordCurrentKey, verifyKeys } from './keys.js';
import { migrate, type MigrationReport } from './migrate.js';
import type { Migration } from './migrations/index.js';
import { busy, KeyedMutex } from './mutex.js';
import { PGliteDialect } from './pglite-dialect.js';
import type { Database } from './schema.js';

export type Backend = 'pglite' | 'postgres';

export interface Health {
  ok: boolean;
  backend: Backend;
  migrations?: number;
  latencyMs?: number;
  error?: string;
}

export interface StoreParts {
  db: Kysely<Database>;
  backend: Backend;
  keyring: Keyring;
  clock: Clock;
  /** Called by close() after the database is closed (PGlite close, lock release). */
  onClose?: () => Promise<void>;
}

export class Store {
  readonly db: Kysely<Database>;
  readonly backend: Backend;
  readonly keyring: Keyring;
  readonly clock: Clock;
  readonly #calendarLocks = new KeyedMutex();
  readonly #onClose: (() => Promise<void>) | undefined;
  #closed = false;

  constructor(parts: StoreParts) {
    this.db = parts.db;
    this.backend = parts.backend;
    this.keyring = parts.keyring;
    this.clock = parts.clock;
    this.#onClose = parts.onClose;
  }

  /** The current instant of the store's clock, as the Date the drivers take. */
  now(): Date {
    return this.clock.now().toJSDate();
  }

  transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  /**
   * Runs fn while holding the calendar's lock: a Postgres advisory lock on a server (shared by every
   * instance on the database), an in-process mutex on PGlite (one process owns the folder).
   * fn must use `store.db`, not a connection of its own choosing: the lock holds one pool connection.
   */
  async withCalendarLock<T>(calendarId: string, fn: () => Promise<T>): Promise<T> {
    const result = await this.#lock(calendarId, fn, true);
    return result as T;
  }

  /** As withCalendarLock, but returns { ran: false } at once when another worker holds the lock. */
  async tryCalendarLock<T>(calendarId: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    const result = await this.#lock(calendarId, fn, false);
    return result === busy ? { ran: false } : { ran: true, value: result as T };
  }

  async #lock<T>(calendarId: string, fn: () => Promise<T>, wait: boolean): Promise<T | typeof busy> {
    if (this.backend === 'pglite') return this.#calendarLocks.run(calendarId, fn, wait);
    const key = `sessionkeeper:calendar:${calendarId}`;
    return this.db.connection().execute(async (conn) => {
      if (wait) {
        await sql`SELECT pg_advisory_lock(hashtextextended(${key}, 0))`.execute(conn);
      } else {
        const got = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(hashtextextended(${key}, 0)) AS ok`.execute(conn);
        if (!got.rows[0]?.ok) return busy;
      }
      try {
        return await fn();
      } finally {
        await sql`SELECT pg_advisory_unlock(hashtextextended(${key}, 0))`.execute(conn);
      }
    });
  }

  async health(): Promise<Health> {
    const started = performance.now();
    try {
      const row = await sql<{ n: number }>`SELECT count(*)::int AS n FROM schema_migrations`.execute(this.db);
      return {
        ok: true,
        backend: this.backend,
        migrations: row.rows[0]?.n ?? 0,
        latencyMs: Math.round((performance.now() - started) * 10) / 10,
      };
    } catch (err) {
      return { ok: false, backend: this.backend, error: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.db.destroy();
    await this.#onClose?.();
  }
}

// ---------------------------------------------------------------------------------------------
// Opening

export interface OpenOptions {
  config: Config;
  clock: Clock;
  log: Logger;
  /** What this process is, for the data folder's lock ("server", "sessionkeeper migrate", ...). */
  command: string;
  /** Replaces the migration list (tests of failing migrations). */
  migrations?: readonly Migration[];
  /** A keyring to use instead of the configured one (tests). */
  keyring?: Keyring;
}

export interface OpenedStore {
  store: Store;
  migrations: MigrationReport;
  keys: LoadedKeyring;
}

/** Opens the configured store; every failure is a StartupError and leaves what is stored untouched. */
export async function openStore(opts: OpenOptions): Promise<OpenedStore> {
  return opts.config.mode === 'server' ? openServerStore(opts) : openEmbeddedStore(opts);
}

async function openEmbeddedStore(opts: OpenOptions): Promise<OpenedStore> {
  const now = opts.clock.now().toJSDate();
  const { layout, created } = prepareDataDir(opts.config.dataDir, now);
  const lock = lockDataDir(layout, opts.command, now);
  let pglite: PGlite | undefined;
  try {
    const keys = opts.keyring ? { keyring: opts.keyring } : loadKeyring(opts.config);
    if (keys.createdKeyFile) {
      opts.log.warn({ keyFile: keys.createdKeyFile }, 'created a new encryption key in the data folder; back it up with the folder, stored credentials cannot be read without it');
    }
    try {
      pglite = await PGlite.create(layout.pgdata);
    } catch (err) {
      throw new StartupError(
        `the database in ${layout.pgdata} could not be opened (${(err as Error).message})`,
        created
          ? 'Check that the folder is writable and has free space'
          : 'It is damaged or was written by another program; restore the data folder from a backup (nothing was changed)',
      );
    }
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
    const opened = pglite;
    const store = new Store({
      db,
      backend: 'pglite',
      keyring: keys.keyring,
      clock: opts.clock,
      onClose: async () => {
        await opened.close();
        lock.release();
      },
    });
    return await finishOpening(store, opts, keys);
  } catch (err) {
    await pglite?.close().catch(() => undefined);
    lock.release();
    throw err;
  }
}

async function openServerStore(opts: OpenOptions): Promise<OpenedStore> {
  const url = opts.config.databaseUrl!;
  const keys = opts.keyring ? { keyring: opts.keyring } : loadKeyring(opts.config);
  const pool = createPool(url, opts.config.poolMax);
  pool.on('error', (err) => opts.log.error({ err }, 'idle database connection failed'));
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new StartupError(
      `cannot reach the database at ${safeUrl(url)} (${describePgError(err)})`,
      'Check DATABASE_URL, and that the server is running and accepts this user',
    );
  }
  const store = new Store({ db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), backend: 'postgres', keyring: keys.keyring, clock: opts.clock });
  try {
    return await finishOpening(store, opts, keys);
  } catch (err) {
    await store.close();
    throw err;
  }
}

async function finishOpening(store: Store, opts: OpenOptions, keys: LoadedKeyring): Promise<OpenedStore> {
  await verifyKeys(store.db, store.keyring);
  const migrations = await migrate(store.db, { now: store.now(), ...(opts.migrations ? { migrations: opts.migrations } : {}) });
  await recordCurrentKey(store.db, store.keyring, store.now());
  return { store, migrations, keys };
}

/** A pg pool whose bigint columns come back as numbers, as PGlite gives them (our ids fit). */
export function createPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 10_000,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // A server that drops a connection while it is idle or closing (restart, failover, a dropped
  // database) makes pg emit 'error' on the client and on the pool; an 'error' event nobody listens
  // to kills the process. The next query gets a new connection; openServerStore also logs these.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** The URL without its password, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

function describePgError(err: unknown): string {
  const e = err as { code?: string; message?: string; errors?: { code?: string; message?: string }[] };
  // An AggregateError (IPv4 and IPv6 both refused) hides its cause in .errors.
  const first = e.errors?.[0];
  const code = e.code ?? first?.code;
  const message = e.message || first?.message || String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
