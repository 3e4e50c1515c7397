// Migrations: every table of the schema exists on both backends, a second run does nothing, a failing
// migration leaves nothing half-applied, and a database from a newer or edited schema is refused.
import { Kysely, sql } from 'kysely';
import { expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { StartupError } from '../../src/errors.js';
import { generateKey, Keyring } from '../../src/secrets.js';
import { migrate } from '../../src/store/migrate.js';
import { migrations } from '../../src/store/migrations/index.js';
import { tableColumns } from '../../src/store/provision.js';
import type { Database } from '../../src/store/schema.js';
import { forEachBackend, openTestStore } from '../helpers/db.js';

const expectedTables = [
  'actions', 'appointment_transitions', 'appointments', 'audit_log', 'booking_links', 'bookings', 'calendars', 'client_identities', 'client_signals',
  'clients', 'connections', 'event_snapshots', 'follow_up_facts', 'follow_ups', 'key_canaries', 'ledgers', 'practices', 'push_channels', 'schema_migrations',
  'sync_requests', 'task_lists', 'tasks', 'therapist_identities', 'therapists',
];

forEachBackend('migrations', (t) => {
  test('the schema has the tables of the flow, and the columns the code names', async () => {
    const columns = await tableColumns(t.store.db);
    expect(Object.keys(columns).sort()).toEqual(expectedTables);
    expect(columns['actions']).toEqual(expect.arrayContaining(['idempotency_key', 'status', 'attempts', 'next_attempt_at', 'external_ref', 'outcome']));
    expect(columns['event_snapshots']).toEqual(expect.arrayContaining(['version', 'payload', 'ical_uid', 'series_id', 'original_start']));
    expect(columns['connections']).toEqual(expect.arrayContaining(['credentials', 'status']));
    expect(columns['ledgers']).toEqual(expect.arrayContaining(['therapist_id', 'state', 'rounds', 'next_presume_at']));
    expect(columns['appointments']).toEqual(expect.arrayContaining(['ledger_key', 'client_id', 'state']));
    expect(columns['clients']).toEqual(expect.arrayContaining(['ledger_key', 'ledger_key_hash']));
    expect(columns['actions']).toEqual(expect.arrayContaining(['fact_key']));
    expect(columns['bookings']).toEqual(expect.arrayContaining(['link_id', 'action_id', 'start_at', 'end_at', 'fact_key', 'moves_appointment_id']));
    expect(columns['booking_links']).toEqual(expect.arrayContaining(['appointment_id']));
    expect(columns['follow_ups']).toEqual(expect.arrayContaining(['client_id', 'key', 'status', 'happenings', 'closed_reason']));
  });

  test('a second run applies nothing', async () => {
    expect(await migrate(t.store.db, { now: t.store.now() })).toEqual({ applied: [], total: migrations.length });
  });

  test('a failing migration is rolled back whole, and the error names it', async () => {
    const store = await openTestStore(t.backend, new Keyring(generateKey()), new ManualClock('2026-03-02T09:00:00Z'));
    try {
      const broken = [
        ...migrations,
        { name: '9001_broken', sql: 'CREATE TABLE half_done (id int); ALTER TABLE no_such_table ADD COLUMN x int;' },
      ];
      const err = await migrate(store.db, { now: store.now(), migrations: broken }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartupError);
      expect((err as Error).message).toMatch(/^migration 9001_broken failed and was rolled back: relation "no_such_table" does not exist\. Nothing was changed/);
      const half = await sql<{ t: string | null }>`SELECT to_regclass('half_done')::text AS t`.execute(store.db);
      expect(half.rows[0]?.t).toBeNull();
      const names = await store.db.selectFrom('schema_migrations').select('name').execute();
      expect(names.map((n) => n.name)).toEqual(migrations.map((m) => m.name));
    } finally {
      await store.close();
    }
  });

  test('a database migrated by a newer version, or with an edited migration, is refused and left alone', async () => {
    const store = await openTestStore(t.backend, new Keyring(generateKey()), new ManualClock('2026-03-02T09:00:00Z'));
    try {
      const db = store.db as Kysely<Database>;
      await db.insertInto('schema_migrations').values({ name: '9999_future', checksum: 'x', applied_at: store.now() }).execute();
      await expect(migrate(db, { now: store.now() })).rejects.toThrow(
        'the database has migration 9999_future, which this version of SessionKeeper does not know: a newer version migrated it. Run that newer version, or restore a backup taken before it',
      );
      await db.deleteFrom('schema_migrations').where('name', '=', '9999_future').execute();
      const edited = migrations.map((m, i) => (i === 0 ? { ...m, sql: m.sql + '\n-- edited' } : m));
      await expect(migrate(db, { now: store.now(), migrations: edited })).rejects.toThrow(/^migration 0001_initial was changed after it was applied to this database/);
      expect((await db.selectFrom('schema_migrations').select('name').execute()).length).toBe(migrations.length);
    } finally {
      await store.close();
    }
  });
});
