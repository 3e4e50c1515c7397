// Opening the store as the product does: the embedded data folder (created, locked, reopened,
// refused when foreign or damaged) and a server (unreachable, or without a key). Each refusal is one
// line with what to do, and changes nothing on disk.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { StartupError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createConnection, loadCredentials } from '../../src/store/connections.js';
import { createPractice, createTherapist } from '../../src/store/practices.js';
import { openStore } from '../../src/store/store.js';

const clock = new ManualClock('2026-03-02T09:00:00Z');
const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-open-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function open(env: Record<string, string>, command = 'test') {
  return openStore({ config: loadConfig(env), clock, log: silentLogger, command });
}

/** A digest of every file under a folder: proves a refused start wrote nothing. */
function digest(dir: string): string {
  const h = crypto.createHash('sha256');
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      h.update(p);
      if (e.isDirectory()) walk(p);
      else h.update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StartupError);
  const message = (err as StartupError).message;
  expect(message).not.toContain('\n');
  return message;
}

describe('embedded data folder', () => {
  test('first start creates the folder, a key (0600) and the schema; data survives a reopen', async () => {
    const dataDir = path.join(tmpDir(), 'data');
    const first = await open({ SESSIONKEEPER_DATA_DIR: dataDir });
    expect(first.migrations.applied).toEqual(['0001_initial', '0002_engine', '0003_actions', '0004_booking', '0005_followups']);
    expect(first.keys.createdKeyFile).toBeDefined();
    expect(fs.statSync(first.keys.createdKeyFile!).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dataDir).sort()).toEqual(['keys', 'lock', 'pgdata', 'sessionkeeper.json']);
    const now = clock.now().toJSDate();
    const practice = await createPractice(first.store.db, { name: 'Brightpath', now });
    const therapist = await createTherapist(first.store.db, { practiceId: practice.id, identity: { provider: 'google', subject: 's1' }, now });
    const conn = await createConnection(first.store.db, first.store.keyring, { therapistId: therapist.id, provider: 'google', accountSubject: 's1', credentials: '{"refresh_token":"1//abc"}', now });
    await first.store.close();
    expect(fs.existsSync(path.join(dataDir, 'lock'))).toBe(false);

    const again = await open({ SESSIONKEEPER_DATA_DIR: dataDir });
    expect(again.migrations.applied).toEqual([]);
    expect(again.keys.createdKeyFile).toBeUndefined();
    expect(await loadCredentials(again.store.db, again.store.keyring, { therapistId: therapist.id, connectionId: conn.id })).toBe('{"refresh_token":"1//abc"}');
    await again.store.close();
  });

  test('a second process on the same folder is told it is in use; a lock left by a dead process is taken over', async () => {
    const dataDir = path.join(tmpDir(), 'data');
    const server = await open({ SESSIONKEEPER_DATA_DIR: dataDir }, 'sessionkeeper serve');
    // Another process holds it: simulate with a live pid that is not ours (our parent).
    fs.writeFileSync(path.join(dataDir, 'lock'), JSON.stringify({ pid: process.ppid, hostname: os.hostname(), command: 'sessionkeeper serve', since: '2026-03-02T08:00:00Z' }));
    const message = await refusal(open({ SESSIONKEEPER_DATA_DIR: dataDir }, 'sessionkeeper status'));
    expect(message).toContain(`the data folder ${dataDir} is in use by another SessionKeeper process (pid ${process.ppid}`);
    expect(message).toContain('Stop that process first');
    await server.store.close();

    // A crashed server left its lock behind: its pid is gone.
    fs.writeFileSync(path.join(dataDir, 'lock'), JSON.stringify({ pid: 2 ** 22 + 12345, hostname: os.hostname(), command: 'sessionkeeper serve', since: '2026-03-01T08:00:00Z' }));
    const after = await open({ SESSIONKEEPER_DATA_DIR: dataDir });
    expect(JSON.parse(fs.readFileSync(path.join(dataDir, 'lock'), 'utf8')).pid).toBe(process.pid);
    await after.store.close();
  });

  test('a foreign folder is refused and left untouched', async () => {
    const dataDir = tmpDir();
    fs.writeFileSync(path.join(dataDir, 'thesis.docx'), 'not ours');
    const before = digest(dataDir);
    const message = await refusal(open({ SESSIONKEEPER_DATA_DIR: dataDir }));
    expect(message).toBe(`${dataDir} is not a SessionKeeper data folder: it holds other files (thesis.docx) and no sessionkeeper.json. Set SESSIONKEEPER_DATA_DIR to a new or empty folder`);
    expect(digest(dataDir)).toBe(before);
  });

  test('a damaged database is refused with what to do, and the lock is released', async () => {
    const dataDir = path.join(tmpDir(), 'data');
    (await open({ SESSIONKEEPER_DATA_DIR: dataDir })).store.close();
    await new Promise((r) => setTimeout(r, 50));
    fs.writeFileSync(path.join(dataDir, 'pgdata', 'global', 'pg_control'), Buffer.alloc(8192, 7));
    const before = digest(path.join(dataDir, 'pgdata'));
    const message = await refusal(open({ SESSIONKEEPER_DATA_DIR: dataDir }));
    expect(message).toMatch(new RegExp(`^the database in ${dataDir}/pgdata could not be opened \\(.+\\)\\. It is damaged or was written by another program; restore the data folder from a backup \\(nothing was changed\\)$`));
    expect(digest(path.join(dataDir, 'pgdata'))).toBe(before);
    expect(fs.existsSync(path.join(dataDir, 'lock'))).toBe(false);
  });

  test('a wrong key is refused before anything changes; the right key still opens every secret', async () => {
    const dataDir = path.join(tmpDir(), 'data');
    const keyA = crypto.randomBytes(32).toString('base64');
    const keyB = crypto.randomBytes(32).toString('base64');
    const a = await open({ SESSIONKEEPER_DATA_DIR: dataDir, SESSIONKEEPER_KEY: keyA });
    const now = clock.now().toJSDate();
    const practice = await createPractice(a.store.db, { name: 'Brightpath', now });
    const therapist = await createTherapist(a.store.db, { practiceId: practice.id, identity: { provider: 'google', subject: 's1' }, now });
    const conn = await createConnection(a.store.db, a.store.keyring, { therapistId: therapist.id, provider: 'google', accountSubject: 's1', credentials: 'tokens-A', now });
    const idA = a.store.keyring.current.id;
    await a.store.close();

    const message = await refusal(open({ SESSIONKEEPER_DATA_DIR: dataDir, SESSIONKEEPER_KEY: keyB }));
    expect(message).toContain(`stored secrets were sealed with key ${idA}, which is not configured`);
    expect(message).toContain('nothing was changed');

    // (Opening Postgres writes its own files, so the check is on what we store, not on bytes.)
    const back = await open({ SESSIONKEEPER_DATA_DIR: dataDir, SESSIONKEEPER_KEY: keyA });
    expect(await loadCredentials(back.store.db, back.store.keyring, { therapistId: therapist.id, connectionId: conn.id })).toBe('tokens-A');
    // The wrong key was never recorded as one that may seal values.
    expect((await back.store.db.selectFrom('key_canaries').select('key_id').execute()).map((r) => r.key_id)).toEqual([idA]);
    await back.store.close();
  });

  test('a key that is not 32 bytes of base64 is refused by name', async () => {
    const message = await refusal(open({ SESSIONKEEPER_DATA_DIR: path.join(tmpDir(), 'd'), SESSIONKEEPER_KEY: 'c2hvcnQ=' }));
    expect(message).toBe('SESSIONKEEPER_KEY is not a 32-byte key in base64 (decoded to 5 bytes). Generate one with `openssl rand -base64 32`');
  });

  test('a key file others can read is refused', async () => {
    const dataDir = path.join(tmpDir(), 'data');
    const first = await open({ SESSIONKEEPER_DATA_DIR: dataDir });
    const keyFile = first.keys.createdKeyFile!;
    await first.store.close();
    fs.chmodSync(keyFile, 0o644);
    expect(await refusal(open({ SESSIONKEEPER_DATA_DIR: dataDir }))).toBe(`key file ${keyFile} can be read by other users (mode 644). Run \`chmod 600 ${keyFile}\``);
  });
});

describe('server database', () => {
  const key = crypto.randomBytes(32).toString('base64');

  test('an unreachable DATABASE_URL is one line, without the password', async () => {
    const message = await refusal(open({ DATABASE_URL: 'postgres://sk:s3cret@127.0.0.1:1/sessionkeeper', SESSIONKEEPER_KEY: key }));
    expect(message).toMatch(/^cannot reach the database at postgres:\/\/sk:\*\*\*@127\.0\.0\.1:1\/sessionkeeper \(.*ECONNREFUSED.*\)\. Check DATABASE_URL/);
    expect(message).not.toContain('s3cret');
  });

  test('DATABASE_URL without SESSIONKEEPER_KEY refuses to start', async () => {
    const message = await refusal(open({ DATABASE_URL: 'postgres://127.0.0.1:1/x' }));
    expect(message).toMatch(/^DATABASE_URL is set but SESSIONKEEPER_KEY is not/);
  });

  const url = process.env['TEST_DATABASE_URL'];
  if (url) {
    test('a reachable server is migrated and reports its health', async () => {
      const { makePgTemplate, dropDatabase, databaseUrl } = await import('../../src/store/provision.js');
      const name = `sk_t_${crypto.randomBytes(4).toString('hex')}_open`;
      await makePgTemplate(url, name); // a fresh database, already migrated once
      try {
        const opened = await open({ DATABASE_URL: databaseUrl(url, name), SESSIONKEEPER_KEY: key });
        expect(opened.migrations.applied).toEqual([]);
        expect(await opened.store.health()).toMatchObject({ ok: true, backend: 'postgres', migrations: 5 });
        await opened.store.close();
      } finally {
        await dropDatabase(url, name);
      }
    });
  }
});
