// The embedded data folder: checks that it is ours (not a foreign or newer folder), and holds a
// lock file so that a second process using the same folder is told clearly that it is in use.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StartupError } from '../errors.js';

const MARKER = 'sessionkeeper.json';
const FORMAT = 1;

export interface DataDirLayout {
  root: string;
  /** PGlite's own data directory. */
  pgdata: string;
  lockFile: string;
  keysDir: string;
}

export function layoutOf(root: string): DataDirLayout {
  return {
    root,
    pgdata: path.join(root, 'pgdata'),
    lockFile: path.join(root, 'lock'),
    keysDir: path.join(root, 'keys'),
  };
}

/**
 * Makes sure `root` is a SessionKeeper data folder, creating it when it is missing or empty.
 * A folder with other files and no marker is refused, and nothing is written into it.
 */
export function prepareDataDir(root: string, now: Date): { layout: DataDirLayout; created: boolean } {
  const layout = layoutOf(root);
  const markerPath = path.join(root, MARKER);
  if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) {
    throw new StartupError(`the data folder ${root} is a file, not a folder`, 'Set SESSIONKEEPER_DATA_DIR to a folder');
  }
  const entries = fs.existsSync(root) ? fs.readdirSync(root) : [];
  if (entries.includes(MARKER)) {
    let marker: { format?: unknown };
    try {
      marker = JSON.parse(fs.readFileSync(markerPath, 'utf8')) as { format?: unknown };
    } catch (err) {
      throw new StartupError(
        `${markerPath} is damaged (${(err as Error).message})`,
        'Restore the data folder from a backup',
      );
    }
    if (marker.format !== FORMAT) {
      throw new StartupError(
        `${root} was written by a different version of SessionKeeper (folder format ${JSON.stringify(marker.format)}, this version reads ${FORMAT})`,
        'Run the version that wrote it, or restore a backup',
      );
    }
    return { layout, created: false };
  }
  if (entries.length > 0) {
    throw new StartupError(
      `${root} is not a SessionKeeper data folder: it holds other files (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}) and no ${MARKER}`,
      'Set SESSIONKEEPER_DATA_DIR to a new or empty folder',
    );
  }
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  fs.writeFileSync(markerPath, JSON.stringify({ format: FORMAT, createdAt: now.toISOString() }, null, 2) + '\n', { mode: 0o600 });
  return { layout, created: true };
}

interface LockInfo {
  pid: number;
  hostname: string;
  command: string;
  since: string;
}

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/**
 * Takes the folder's lock file (created exclusively). A lock left by a process that is gone is
 * taken over; one held by a live process is refused with who holds it.
 */
export function lockDataDir(layout: DataDirLayout, command: string, now: Date): DataDirLock {
  const info: LockInfo = { pid: process.pid, hostname: os.hostname(), command, since: now.toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(layout.lockFile, JSON.stringify(info) + '\n', { flag: 'wx', mode: 0o600 });
      return makeLock(layout.lockFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(layout.lockFile);
    if (holder && isAlive(holder)) {
      throw new StartupError(
        `the data folder ${layout.root} is in use by another SessionKeeper process (pid ${holder.pid} on ${holder.hostname}, "${holder.command}", since ${holder.since})`,
        holder.hostname === os.hostname()
          ? 'Stop that process first (the CLI cannot share the embedded database with a running server), or use DATABASE_URL for a server database'
          : `If that host no longer runs it, delete ${layout.lockFile}`,
      );
    }
    // Stale (its process is gone) or unreadable (a crash while writing it): take it over.
    fs.rmSync(layout.lockFile, { force: true });
  }
  throw new StartupError(`could not take the lock ${layout.lockFile}`, 'Another process keeps taking it; stop the others and retry');
}

function readLock(file: string): LockInfo | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockInfo>;
    if (typeof parsed.pid !== 'number' || typeof parsed.hostname !== 'string') return undefined;
    return { pid: parsed.pid, hostname: parsed.hostname, command: String(parsed.command ?? '?'), since: String(parsed.since ?? '?') };
  } catch {
    return undefined;
  }
}

function isAlive(holder: LockInfo): boolean {
  if (holder.hostname !== os.hostname()) return true; // cannot tell: assume it is
  if (holder.pid === process.pid) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function makeLock(file: string): DataDirLock {
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    try {
      const holder = readLock(file);
      if (holder?.pid === process.pid) fs.rmSync(file, { force: true });
    } catch {
      // The folder may be gone already; nothing to release.
    }
  };
  process.on('exit', release);
  return { path: file, release };
}
