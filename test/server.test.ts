// The HTTP entry and `npm start`: /healthz reports the database, unknown paths get clear answers, and
// the built server starts on an empty folder with no account, holds the folder, and stops cleanly.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { startServer, type Running } from '../src/server.js';

const root = path.resolve(import.meta.dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-server-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('routes', () => {
  let running: Running;
  afterAll(async () => running?.stop());

  test('GET /healthz reports the embedded database; unknown paths and methods are refused clearly', async () => {
    running = await startServer({ env: { PORT: '0', SESSIONKEEPER_DATA_DIR: path.join(tmp, 'routes'), SESSIONKEEPER_LOG_LEVEL: 'silent' } });
    const base = `http://127.0.0.1:${running.port}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', database: { ok: true, backend: 'pglite', migrations: 5 } });

    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'no such path: /nope' });

    const wrong = await fetch(`${base}/healthz`, { method: 'POST' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, HEAD');

    // A booking link that is not one: a page a client can read, sent as a bearer token's page is.
    const bogus = await fetch(`${base}/book/not-a-real-link`);
    expect(bogus.status).toBe(404);
    expect(bogus.headers.get('content-type')).toMatch(/^text\/html/);
    expect(bogus.headers.get('referrer-policy')).toBe('no-referrer');
    expect(bogus.headers.get('cache-control')).toBe('no-store');
    expect(bogus.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'nonce-/);
    expect(await bogus.text()).toContain('<h1>This link is not valid</h1>');
    const put = await fetch(`${base}/book/anything`, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
  });

  test('when the database fails, /healthz says so with 503', async () => {
    await running.app.store.db.destroy();
    const res = await fetch(`http://127.0.0.1:${running.port}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'unavailable', database: { ok: false, backend: 'pglite' } });
  });
});

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const m = seen.match(pattern);
      if (m) resolve(m);
    };
    child.stderr!.on('data', onData);
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing ${pattern}: ${seen}`)));
  });
}

describe('the built server (npm start)', () => {
  test('serves /healthz on an empty folder with no account; the CLI is told the folder is in use; SIGTERM stops it cleanly', async () => {
    const dataDir = path.join(tmp, 'start');
    const env = { ...process.env, PORT: '0', SESSIONKEEPER_DATA_DIR: dataDir, SESSIONKEEPER_KEY: '', DATABASE_URL: '' };
    const child = spawn(process.execPath, [path.join(root, 'bin/start.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const [, port] = await waitForLine(child, /serving on http:\/\/localhost:(\d+)\//);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok', database: { backend: 'pglite' } });

      const cli = spawnSync(process.execPath, [path.join(root, 'bin/sessionkeeper.js'), 'status'], { env, encoding: 'utf8' });
      expect(cli.status).toBe(1);
      expect(cli.stderr).toContain(`sessionkeeper status: the data folder ${dataDir} is in use by another SessionKeeper process (pid ${child.pid}`);

      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(fs.existsSync(path.join(dataDir, 'lock'))).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a bad setting stops it with one line naming the variable', () => {
    const run = spawnSync(process.execPath, [path.join(root, 'dist/src/server.js')], {
      env: { ...process.env, PORT: 'eighty', SESSIONKEEPER_DATA_DIR: path.join(tmp, 'bad') },
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe('sessionkeeper: invalid environment\n  PORT: must be a port number');
    expect(fs.existsSync(path.join(tmp, 'bad'))).toBe(false);
  });
});
