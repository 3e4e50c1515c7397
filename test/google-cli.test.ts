// The operator's Google commands against the emulator: `connect google` prints the consent URL and
// finishes on the callback; `calendars` lists and sets roles; `sync` pulls the watched calendars.
import fs from 'node:fs';
import { freePort } from './helpers/net.js';
import os from 'node:os';
import path from 'node:path';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { GOOGLE_SCOPES } from '../connectors/google/oauth.js';
import { main, type Io } from '../src/cli.js';
import { ManualClock } from '../src/clock.js';
import { startGoogleEmulator, type GoogleEmulator } from './emulators/google/server.js';
import { googleEnv } from './helpers/google.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-gcli-'));
let emu: GoogleEmulator;
let env: Record<string, string>;
let redirect: string;

beforeAll(async () => {
  emu = await startGoogleEmulator({ clock: new ManualClock(DateTime.utc()) });
  emu.addAccount({ sub: 'cli-1', email: 'dr.lee@brightpath.example' });
  emu.addCalendar('cli-1', { id: 'dr.lee@brightpath.example', summary: 'Dr Lee', timeZone: 'America/New_York', primary: true });
  emu.addCalendar('cli-1', { id: 'clients-cal', summary: 'Clients', timeZone: 'America/New_York' });
  redirect = `http://127.0.0.1:${await freePort()}/oauth/google/callback`;
  env = googleEnv(emu, { GOOGLE_REDIRECT_URI: redirect, SESSIONKEEPER_DATA_DIR: path.join(tmp, 'data') });
});
afterAll(async () => {
  await emu.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function io(out: string[], err: string[]): Io {
  return { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env };
}

test('connect google: the consent URL, then the callback with a code finishes the connection', { timeout: 90_000 }, async () => {
  const out: string[] = [];
  const err: string[] = [];
  const running = main(['connect', 'google', '--timeout', '30'], io(out, err));
  let consent: URL | undefined;
  for (let i = 0; i < 200 && !consent; i++) {
    await new Promise((r) => setTimeout(r, 25));
    const line = out.join('\n').split('\n').find((l) => l.startsWith('http'));
    if (line) consent = new URL(line);
  }
  expect(consent).toBeDefined();
  expect(consent!.searchParams.get('access_type')).toBe('offline');
  expect(consent!.searchParams.get('scope')!.split(' ')).toEqual([...GOOGLE_SCOPES]);
  // A callback with another state is refused and the command keeps waiting.
  expect((await fetch(`${redirect}?code=x&state=forged`)).status).toBe(400);
  const code = emu.authorize('cli-1', [...GOOGLE_SCOPES], redirect);
  const callback = await fetch(`${redirect}?code=${encodeURIComponent(code)}&state=${encodeURIComponent(consent!.searchParams.get('state')!)}`);
  expect(callback.status).toBe(200);
  expect(await running).toBe(0);
  expect(out.join('\n')).toMatch(/connected: therapist [0-9a-f-]+ \(new\), connection [0-9a-f-]+/);
  expect(out.join('\n')).toContain('mixed      Dr Lee');
  expect(out.join('\n')).toContain('ignored    Clients');
});

test('calendars --set gives a role; sync pulls the watched calendars and says what it did', { timeout: 90_000 }, async () => {
  emu.insertEvent('clients-cal', { summary: 'Jane', start: { dateTime: '2026-12-01T10:00:00-05:00' }, end: { dateTime: '2026-12-01T10:50:00-05:00' } });
  emu.insertEvent('dr.lee@brightpath.example', { summary: 'Lunch', start: { dateTime: '2026-12-01T12:00:00-05:00' }, end: { dateTime: '2026-12-01T13:00:00-05:00' } });
  const out: string[] = [];
  const err: string[] = [];
  expect(await main(['calendars', '--set', 'clients-cal=practice'], io(out, err))).toBe(0);
  expect(out.join('\n')).toMatch(/practice\s+google:dr\.lee@brightpath\.example\s+Clients \[not synced yet\]/);
  const synced: string[] = [];
  expect(await main(['sync'], io(synced, err))).toBe(0);
  // The practice calendar's event is a session (a fact and its tag action); lunch on the other is not.
  expect(synced.sort()).toEqual(['Clients: full, 1 changes in 1 pages; 1 transitions, 1 actions queued', 'Dr Lee: full, 1 changes in 1 pages; 0 transitions, 0 actions queued']);
  const again: string[] = [];
  expect(await main(['sync', '--calendar', 'clients-cal'], io(again, err))).toBe(0);
  expect(again).toEqual(['Clients: incremental, 0 changes in 1 pages; 0 transitions, 0 actions queued']);
  // One tick carries the tag out at Google; the operator's view then has nothing to show.
  const ticked: string[] = [];
  expect(await main(['tick'], io(ticked, err))).toBe(0);
  expect(ticked.join('\n')).toContain('actions: 1 done, 0 to retry, 0 failed, 0 unknown, 0 parked, 0 no longer needed');
  const listed: string[] = [];
  expect(await main(['actions'], io(listed, err))).toBe(0);
  expect(listed).toEqual(['nothing needs a look: no failed, unknown, parked, retrying or stuck actions']);
  const all: string[] = [];
  expect(await main(['actions', '--all', '--json'], io(all, err))).toBe(0);
  expect(JSON.parse(all.join('\n'))).toMatchObject([{ kind: 'tag_session', status: 'done', attempts: 1 }]);
  expect((await main(['calendars', '--set', 'nope=practice'], io([], err)))).toBe(2);
  expect(err.at(-1)).toContain('--set: no calendar nope');
});
