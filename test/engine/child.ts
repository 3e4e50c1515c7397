// The crash tests' product process: a child started from the built code (`dist/`), its clock a file
// the test writes, its tick an HTTP call, killed with SIGKILL where the test says. Either the product
// server itself or the engine child (engine-child.ts, for the Graph emulator's seams).
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ManualClock } from '../../src/clock.js';

export interface ChildProduct {
  /** Starts the process and waits until /healthz answers; returns how long that took. */
  start(): Promise<number>;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<void>;
  /** POST /tick; undefined when the process died meanwhile. */
  tick(): Promise<{ status: number; report: TickJson } | undefined>;
  /** The process's stderr so far (why it died at start). */
  stderr(): string;
}

export interface TickJson {
  synced: number;
  presumed: number;
  actions: { claimed: number; done: number; unknown: number };
  nextDueAt: string | null;
  nextActionAt: string | null;
}

export function childProduct(opts: { script: 'dist/src/server.js' | 'dist/test/engine/engine-child.js'; env: Record<string, string>; port: number; token: string }): ChildProduct {
  let child: ChildProcess | undefined;
  let stderr = '';
  const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));
  return {
    async start() {
      const t0 = performance.now();
      const debug = process.env['SK_DEBUG_CHILD'];
      const c = spawn(process.execPath, [opts.script], { env: opts.env, stdio: ['ignore', debug ? 'pipe' : 'ignore', 'pipe'] });
      if (debug) c.stdout!.on('data', (d: Buffer) => fs.appendFileSync(debug, d));
      stderr = '';
      c.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (process.env['SK_DEBUG_CHILD']) fs.appendFileSync(process.env['SK_DEBUG_CHILD'], d);
      });
      child = c;
      for (let i = 0; ; i++) {
        if (c.exitCode !== null) throw new Error(`the process exited at start: ${stderr}`);
        const ok = await fetch(`http://127.0.0.1:${opts.port}/healthz`).then((r) => r.ok, () => false);
        if (ok) return performance.now() - t0;
        if (i > 600) throw new Error(`the process did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async kill() {
      if (!child) return;
      const c = child;
      const done = exited(c);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await done;
    },
    async stop() {
      if (!child) return;
      const c = child;
      const done = exited(c);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      await done;
    },
    async tick() {
      const res = await fetch(`http://127.0.0.1:${opts.port}/tick`, { method: 'POST', headers: { authorization: `Bearer ${opts.token}` } }).catch(() => undefined);
      if (!res) return undefined;
      const text = await res.text().catch(() => '');
      return { status: res.status, report: (res.status === 200 ? JSON.parse(text) : {}) as TickJson };
    },
    stderr: () => stderr,
  };
}

/**
 * The child's settings: the platform's (emulator) settings, the port, a fresh key, the shared clock,
 * no in-process worker (the test ticks), and a database: a PGlite folder in `dir`, or a PostgreSQL one.
 */
export function childEnv(platform: Record<string, string>, opts: { port: number; clockFile: string; token: string; dir: string; databaseUrl?: string }): Record<string, string> {
  return {
    SESSIONKEEPER_LOG_LEVEL: 'error',
    ...platform,
    PATH: process.env['PATH'] ?? '',
    PORT: String(opts.port),
    SESSIONKEEPER_PUBLIC_URL: `http://127.0.0.1:${opts.port}`,
    SESSIONKEEPER_KEY: crypto.randomBytes(32).toString('base64'),
    SESSIONKEEPER_CLOCK_FILE: opts.clockFile,
    SESSIONKEEPER_WORKER: 'off',
    SESSIONKEEPER_TICK_TOKEN: opts.token,
    ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : { SESSIONKEEPER_DATA_DIR: path.join(opts.dir, 'data') }),
  };
}

/** A clock the test moves and the child reads (SESSIONKEEPER_CLOCK_FILE), written atomically. */
export function sharedClock(clock: ManualClock, dir: string): { file: string; set(iso: string): void } {
  const file = path.join(dir, 'clock');
  const set = (iso: string) => {
    clock.set(iso);
    fs.writeFileSync(`${file}.tmp`, clock.now().toISO()!);
    fs.renameSync(`${file}.tmp`, file);
  };
  set(clock.now().toISO()!);
  return { file, set };
}
