// The store's figures: embedded first start and reopen, cloning a test database from the template,
// and snapshot writes per second on each backend (PostgreSQL when one is reachable).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { generateKey, Keyring } from '../src/secrets.js';
import { upsertCalendar } from '../src/store/calendars.js';
import { createConnection } from '../src/store/connections.js';
import { createPractice, createTherapist } from '../src/store/practices.js';
import { dropDatabase, makePGliteTemplate, makePgTemplate, pgliteStoreFromTemplate, pgStoreFromTemplate, reachable } from '../src/store/provision.js';
import { upsertSnapshots, type SnapshotInput } from '../src/store/snapshots.js';
import { openStore, type Store } from '../src/store/store.js';
import { median, report, timed } from './report.js';

const BENCH = 'store';
const ROWS = 20_000;

export async function run(): Promise<void> {
  await embeddedStarts();
  const keyring = new Keyring(generateKey());
  const template = await makePGliteTemplate();
  const pgliteClone = await cloneTimes(() => pgliteStoreFromTemplate(template, keyring, systemClock));
  report(BENCH, 'test_db_clone_ms', pgliteClone, 'ms', { backend: 'pglite' });
  const pglite = await pgliteStoreFromTemplate(template, keyring, systemClock);
  report(BENCH, 'snapshot_rows_per_s', await snapshotRate(pglite), 'rows/s', { backend: 'pglite', rows: ROWS });
  await pglite.close();

  const url = process.env['BENCH_DATABASE_URL'] ?? process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  if (!(await reachable(url))) {
    process.stderr.write(`bench store: no PostgreSQL at ${new URL(url).host}; postgres figures skipped (set BENCH_DATABASE_URL)\n`);
    return;
  }
  const prefix = `sk_bench_${crypto.randomBytes(3).toString('hex')}`;
  await makePgTemplate(url, `${prefix}_tpl`);
  try {
    let n = 0;
    const pgClone = await cloneTimes(() => pgStoreFromTemplate(url, `${prefix}_tpl`, `${prefix}_${++n}`, keyring, systemClock));
    report(BENCH, 'test_db_clone_ms', pgClone, 'ms', { backend: 'postgres' });
    const pg = await pgStoreFromTemplate(url, `${prefix}_tpl`, `${prefix}_rows`, keyring, systemClock);
    report(BENCH, 'snapshot_rows_per_s', await snapshotRate(pg), 'rows/s', { backend: 'postgres', rows: ROWS });
    await pg.close();
  } finally {
    await dropDatabase(url, `${prefix}_tpl`);
  }
}

async function embeddedStarts(): Promise<void> {
  const first: number[] = [];
  const reopen: number[] = [];
  for (let i = 0; i < 3; i++) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-bench-'));
    const config = loadConfig({ SESSIONKEEPER_DATA_DIR: dataDir });
    const open = () => openStore({ config, clock: systemClock, log: silentLogger, command: 'bench' });
    let store!: Store;
    first.push(await timed(async () => (store = (await open()).store)));
    await store.close();
    reopen.push(await timed(async () => (store = (await open()).store)));
    await store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  report(BENCH, 'embedded_first_start_ms', median(first), 'ms', { runs: first.length });
  report(BENCH, 'embedded_reopen_ms', median(reopen), 'ms', { runs: reopen.length });
}

async function cloneTimes(make: () => Promise<Store>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    let store!: Store;
    times.push(await timed(async () => (store = await make())));
    await store.close();
  }
  return median(times);
}

/** Rows per second written by the sync loop's path: sealed payloads, batches, one transaction per page. */
async function snapshotRate(store: Store): Promise<number> {
  const now = new Date('2026-03-02T09:00:00Z');
  const practice = await createPractice(store.db, { name: 'Bench', now });
  const t = await createTherapist(store.db, { practiceId: practice.id, identity: { provider: 'google', subject: 'bench' }, now });
  const c = await createConnection(store.db, store.keyring, { therapistId: t.id, provider: 'google', accountSubject: 'bench', now });
  const cal = await upsertCalendar(store.db, { therapistId: t.id, connectionId: c.id, providerCalendarId: 'primary', now });
  const rows: SnapshotInput[] = Array.from({ length: ROWS }, (_, i) => {
    const start = new Date(now.getTime() + i * 3_600_000);
    return {
      eventId: `evt${i.toString(36).padStart(6, '0')}`,
      icalUid: `evt${i}@google.com`,
      status: 'confirmed',
      version: `"${3000000000000000 + i}"`,
      startAt: start,
      endAt: new Date(start.getTime() + 50 * 60_000),
      payload: {
        title: `Session - Client ${i % 200}`,
        attendees: [{ email: `client${i % 200}@example.com`, response: 'accepted' }],
        start: { instant: start.toISOString(), zone: 'America/New_York' },
      },
    };
  });
  const PAGE = 250; // a Google events.list page
  const elapsed = await timed(async () => {
    for (let i = 0; i < rows.length; i += PAGE) {
      await store.transaction((trx) => upsertSnapshots(trx, store.keyring, cal.id, rows.slice(i, i + PAGE), now));
    }
  });
  return ROWS / (elapsed / 1000);
}
