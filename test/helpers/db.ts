// withTestDb(): a fresh migrated database for each test file (a copy of the run's template), on
// PGlite in memory, or on the PostgreSQL of TEST_DATABASE_URL. forEachBackend runs a suite on both.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { ManualClock, type Clock } from '../../src/clock.js';
import { generateKey, Keyring } from '../../src/secrets.js';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { databaseUrl, pgliteStoreFromTemplate, pgStoreFromTemplate } from '../../src/store/provision.js';
import type { Database } from '../../src/store/schema.js';
import { createPool, Store, type Backend } from '../../src/store/store.js';

export interface TestDb {
  readonly store: Store;
  readonly clock: ManualClock;
  readonly backend: Backend;
  /** Another store on the same database (a second engine instance); closed with the first. */
  openAnother(): Promise<Store>;
}

let counter = 0;

export function newTestDbName(): string {
  return `sk_t_${inject('runId')}_${process.pid}_${++counter}_${crypto.randomBytes(2).toString('hex')}`;
}

/** Opens a fresh database now (for tests that need several); the caller closes it. */
export async function openTestStore(backend: Backend, keyring: Keyring, clock: Clock): Promise<Store> {
  if (backend === 'pglite') {
    const dump = new Blob([fs.readFileSync(inject('pgliteTemplate'))]);
    return pgliteStoreFromTemplate(dump, keyring, clock);
  }
  const url = process.env['TEST_DATABASE_URL'];
  const template = inject('pgTemplate');
  if (!url || !template) throw new Error('PostgreSQL tests need TEST_DATABASE_URL');
  return pgStoreFromTemplate(url, template, newTestDbName(), keyring, clock);
}

/** A fresh migrated PostgreSQL database (a copy of the run's template) for a child process; returns its URL. */
export async function freshPgDatabase(): Promise<string> {
  const url = process.env['TEST_DATABASE_URL'];
  const template = inject('pgTemplate');
  if (!url || !template) throw new Error('PostgreSQL tests need TEST_DATABASE_URL');
  const name = newTestDbName();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  return databaseUrl(url, name);
}

/** The test run's databases for the engine's worlds (test/engine/world.ts). */
export const testStores = {
  open: (backend: Backend, keyring: Keyring, clock: Clock) => openTestStore(backend, keyring, clock),
  another: (store: Store) => openSecondStore(store),
};

/** The backends this run covers: PGlite always, PostgreSQL when TEST_DATABASE_URL is set. */
export function testBackends(): Backend[] {
  return inject('pgTemplate') ? ['pglite', 'postgres'] : ['pglite'];
}

export function withTestDb(opts: { backend?: Backend; start?: string } = {}): TestDb {
  const backend = opts.backend ?? 'pglite';
  const clock = new ManualClock(opts.start ?? '2026-03-02T09:00:00Z');
  const keyring = new Keyring(generateKey());
  let store: Store | undefined;
  const others: Store[] = [];
  beforeAll(async () => {
    store = await openTestStore(backend, keyring, clock);
  });
  afterAll(async () => {
    for (const o of others) await o.db.destroy();
    await store?.close();
  });
  return {
    get store() {
      if (!store) throw new Error('the test database is opened in beforeAll');
      return store;
    },
    clock,
    backend,
    async openAnother() {
      if (!store) throw new Error('the test database is opened in beforeAll');
      const another = await openSecondStore(store);
      others.push(another);
      return another;
    },
  };
}

/** A second store on the PostgreSQL database of `store` (a second engine instance); the caller closes it. */
export async function openSecondStore(store: Store): Promise<Store> {
  if (store.backend === 'pglite') throw new Error('PGlite has one connection per process: no second store');
  const url = await currentUrl(store);
  return new Store({ db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: createPool(url, 10) }) }), backend: store.backend, keyring: store.keyring, clock: store.clock });
}

async function currentUrl(store: Store): Promise<string> {
  const row = await sql<{ db: string }>`SELECT current_database() AS db`.execute(store.db);
  return databaseUrl(process.env['TEST_DATABASE_URL']!, row.rows[0]!.db);
}

/** Defines the suite once per backend of this run, each with its own fresh database. */
export function forEachBackend(name: string, suite: (t: TestDb) => void): void {
  for (const backend of testBackends()) {
    describe(`${name} [${backend}]`, () => {
      suite(withTestDb({ backend }));
    });
  }
}
