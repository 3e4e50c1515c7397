// The operator's command line, run in-process: help, refusals, status, migrate and rotate-key in
// both key modes (a key kept in the data folder, and SESSIONKEEPER_KEY with the previous key).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { main, type Io } from '../src/cli.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { systemClock } from '../src/clock.js';
import { loadCredentials } from '../src/store/connections.js';
import { openStore } from '../src/store/store.js';
import { seedCalendar, seedTherapist } from './store/fixtures.js';
import { openLink } from '../src/engine/booking.js';
import { sealContext } from '../src/store/keys.js';
import { upsertSnapshots } from '../src/store/snapshots.js';
import { ev, gone, practice, therapist, client } from './domain/builders.js';
import { spawnSync } from 'node:child_process';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(argv: string[], env: NodeJS.ProcessEnv, stdin = '') {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env, stdin: async () => stdin };
  const code = await main(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function withStore<T>(env: NodeJS.ProcessEnv, fn: (s: Awaited<ReturnType<typeof openStore>>['store']) => Promise<T>): Promise<T> {
  const { store } = await openStore({ config: loadConfig(env), clock: systemClock, log: silentLogger, command: 'test' });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

describe('sessionkeeper', () => {
  test('--help lists the commands; an unknown command is refused with the list', async () => {
    const help = await run(['--help'], {});
    expect(help.code).toBe(0);
    for (const c of ['serve', 'migrate', 'status', 'rotate-key']) expect(help.out).toMatch(new RegExp(`^  ${c}\\s+\\S`, 'm'));
    const unknown = await run(['frobnicate'], {});
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('sessionkeeper: unknown command "frobnicate"');
    expect((await run(['status', '--verbose'], {})).err).toContain("sessionkeeper status: Unknown option '--verbose'");
    expect((await run(['rotate-key', '--help'], {})).out).toContain('SESSIONKEEPER_PREVIOUS_KEYS');
  });

  test('suggest: refused without a client, with a bad count or mode, and for a client that does not exist', async () => {
    const env = { SESSIONKEEPER_DATA_DIR: path.join(tmp, 'suggest') };
    expect(await run(['suggest'], env)).toMatchObject({ code: 2, err: expect.stringContaining('suggest needs --client ID') });
    const id = '00000000-0000-4000-8000-000000000000';
    expect((await run(['suggest', '--client', id, '--count', '0'], env)).err).toContain('--count must be a whole number from 1 to 20');
    expect((await run(['suggest', '--client', id, '--mode', 'phone'], env)).err).toContain('--mode must be in_person or telehealth');
    expect(await run(['suggest', '--client', id], env)).toMatchObject({ code: 2, err: expect.stringContaining(`no client ${id}`) });
  });

  test('link: refused without a client, or for one that does not exist', async () => {
    const env = { SESSIONKEEPER_DATA_DIR: path.join(tmp, 'link') };
    expect(await run(['link'], env)).toMatchObject({ code: 2, err: expect.stringContaining('link needs --client ID') });
    const id = '00000000-0000-4000-8000-000000000000';
    expect(await run(['link', '--client', id], env)).toMatchObject({ code: 2, err: expect.stringContaining(`no client ${id}`) });
  });

  test('link --session: a link that moves one of the client\'s sessions, open until it starts; refused for another session', async () => {
    const env = { SESSIONKEEPER_DATA_DIR: path.join(tmp, 'link-session') };
    const start = new Date(Math.ceil((Date.now() + 30 * 86_400_000) / 60_000) * 60_000);
    const seeded = await withStore(env, async (store) => {
      const who = await seedCalendar(store, 'link-session');
      const now = new Date();
      // A client we know the address of, and their upcoming session on an event the therapist organizes.
      const client = await store.db
        .insertInto('clients')
        .values({ therapist_id: who.therapistId, ledger_key: store.keyring.encrypt('email:sam@example.com', sealContext('clients', 'ledger_key')), created_at: now, updated_at: now })
        .returning('id')
        .executeTakeFirstOrThrow();
      const end = new Date(start.getTime() + 50 * 60_000);
      await upsertSnapshots(store.db, store.keyring, who.calendarId, [{ eventId: 'ev-1', status: 'confirmed', startAt: start, endAt: end, payload: { kind: 'event', organizer: { email: 'dr@practice.example', self: true }, onlineMeetingUrl: null, location: null } }], now);
      const session = await store.db
        .insertInto('appointments')
        .values({ therapist_id: who.therapistId, calendar_id: who.calendarId, event_id: 'ev-1', client_id: client.id, state: 'scheduled', start_at: start, end_at: end, created_at: now, updated_at: now })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { clientId: client.id, sessionId: session.id };
    });
    expect(await run(['link', '--client', seeded.clientId, '--session', 'tomorrow'], env)).toMatchObject({ code: 2, err: expect.stringContaining('--session must be an appointment id') });
    const other = '00000000-0000-4000-8000-000000000000';
    expect(await run(['link', '--client', seeded.clientId, '--session', other], env)).toMatchObject({ code: 2, err: expect.stringContaining(`no session ${other}`) });
    const made = await run(['link', '--client', seeded.clientId, '--session', seeded.sessionId, '--json'], env);
    expect(made).toMatchObject({ code: 0, err: '' });
    const printed = JSON.parse(made.out) as { url: string; expiresAt: string; movesSession: string };
    expect(printed.movesSession).toBe(seeded.sessionId);
    // Past the practice's 14 days: until the session.
    expect(Date.parse(printed.expiresAt)).toBe(start.getTime());
    const opened = await withStore(env, (store) => openLink(store.db, store.keyring, printed.url.split('/book/')[1]!, new Date()));
    expect(opened).toMatchObject({ state: 'open', link: { clientId: seeded.clientId, appointmentId: seeded.sessionId } });
  });

  test('reminder-preview renders the template with example values; settings checks a file whole and saves it', async () => {
    const file = path.join(tmp, 'reminder-practice.json');
    fs.writeFileSync(file, JSON.stringify({ timeZone: 'Europe/London', reminderEmail: { subject: 'See you {date}, {client}', text: 'Hi {client}, {therapist} expects you at {time} ({zone}).\n{link}' } }));
    const preview = await run(['reminder-preview', '--settings', file], {});
    expect(preview.code).toBe(0);
    expect(preview.out).toMatch(/^Subject: See you \w+day \d{1,2} \w+, Sam Example\n\nHi Sam Example, Your therapist expects you at 6:00 PM \(London time\)\.\nhttps:\/\/sessionkeeper\.example\/book\/EXAMPLE-LINK$/);
    const bad = path.join(tmp, 'reminder-bad.json');
    fs.writeFileSync(bad, JSON.stringify({ reminderEmail: { subject: 'Hi {name}', text: 'See you {when}' } }));
    const refused = await run(['reminder-preview', '--settings', bad], {});
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('reminderEmail.subject: has an unknown placeholder {name}: use {client}, {therapist}, {practice}, {date}, {time}, {zone}, {place}, {link}, {type}');
    expect(refused.err).toContain('reminderEmail.text: has an unknown placeholder {when}');

    const env = { SESSIONKEEPER_DATA_DIR: path.join(tmp, 'settings') };
    expect(await run(['settings'], env)).toMatchObject({ code: 2, err: expect.stringContaining('no practice yet') });
    await withStore(env, (store) => seedTherapist(store, 'settings-sub'));
    const before = JSON.parse((await run(['settings'], env)).out) as { reminderEmail: { subject: string } };
    expect(before.reminderEmail.subject).toBe('Reminder: your appointment with {therapist} on {date}');
    expect(await run(['settings', '--set', bad], env)).toMatchObject({ code: 2, err: expect.stringContaining('unknown placeholder {name}') });
    expect(JSON.parse((await run(['settings'], env)).out)).toEqual(before);
    const saved = await run(['settings', '--set', file], env);
    expect(saved.code).toBe(0);
    expect(JSON.parse((await run(['settings'], env)).out)).toMatchObject({ timeZone: 'Europe/London', reminderEmail: { subject: 'See you {date}, {client}' } });
    expect((await run(['reminder-preview'], env)).out).toContain('Subject: See you');
  });

  test('migrate and status on a new folder', async () => {
    const env = { SESSIONKEEPER_DATA_DIR: path.join(tmp, 'status') };
    const migrated = await run(['migrate'], env);
    expect(migrated).toMatchObject({ code: 0, out: 'applied 0001_initial, 0002_engine, 0003_actions, 0004_booking, 0005_followups; 5 migrations in place' });
    expect(migrated.err).toContain('created a new encryption key');
    expect((await run(['migrate'], env)).out).toBe('up to date: 5 migrations in place');
    const status = await run(['status', '--json'], env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.out)).toMatchObject({ database: { backend: 'pglite' }, migrations: ['0001_initial', '0002_engine', '0003_actions', '0004_booking', '0005_followups'], connections: {}, actions: {}, pendingSyncs: 0 });
  });

  test('rotate-key with the key in the data folder: a new key, every secret moved, the old key file gone', async () => {
    const env = { SESSIONKEEPER_DATA_DIR: path.join(tmp, 'rotate-folder') };
    const who = await withStore(env, (s) => seedTherapist(s, 'folder', 'tokens-folder'));
    const keysDir = path.join(env.SESSIONKEEPER_DATA_DIR, 'keys');
    const oldId = fs.readFileSync(path.join(keysDir, 'current'), 'utf8').trim();

    const rotated = await run(['rotate-key'], env);
    expect(rotated.code).toBe(0);
    const newId = fs.readFileSync(path.join(keysDir, 'current'), 'utf8').trim();
    expect(newId).not.toBe(oldId);
    expect(rotated.out).toContain(`re-encrypted 1 stored values with key ${newId} (connections.credentials 1`);
    expect(rotated.out).toContain(`no stored value uses key ${oldId} any more`);
    expect(fs.readdirSync(keysDir).sort()).toEqual([`${newId}.key`, 'current'].sort());

    expect(await withStore(env, (s) => loadCredentials(s.db, s.keyring, who))).toBe('tokens-folder');
    expect(await withStore(env, (s) => s.db.selectFrom('audit_log').select(['action', 'actor', 'subject_id']).where('action', '=', 'rotate-key').execute())).toEqual([
      { action: 'rotate-key', actor: 'operator', subject_id: newId },
    ]);
  });

  test('rotate-key with SESSIONKEEPER_KEY: the old key goes in SESSIONKEEPER_PREVIOUS_KEYS, and afterwards is not needed', async () => {
    const dataDir = path.join(tmp, 'rotate-env');
    const oldKey = crypto.randomBytes(32).toString('base64');
    const newKey = crypto.randomBytes(32).toString('base64');
    const who = await withStore({ SESSIONKEEPER_DATA_DIR: dataDir, SESSIONKEEPER_KEY: oldKey }, (s) => seedTherapist(s, 'env', 'tokens-env'));

    // Switching keys without the old one is refused, and nothing is lost.
    const refused = await run(['rotate-key'], { SESSIONKEEPER_DATA_DIR: dataDir, SESSIONKEEPER_KEY: newKey });
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('is not configured');

    const rotated = await run(['rotate-key'], { SESSIONKEEPER_DATA_DIR: dataDir, SESSIONKEEPER_KEY: newKey, SESSIONKEEPER_PREVIOUS_KEYS: oldKey });
    expect(rotated.code).toBe(0);
    expect(rotated.out).toContain('re-encrypted 1 stored values');
    expect(rotated.out).toContain('you can now remove the old key from SESSIONKEEPER_PREVIOUS_KEYS');
    expect(await withStore({ SESSIONKEEPER_DATA_DIR: dataDir, SESSIONKEEPER_KEY: newKey }, (s) => loadCredentials(s.db, s.keyring, who))).toBe('tokens-env');
  });
});

describe('sessionkeeper classify', () => {
  const settingsFile = path.join(tmp, 'practice.json');
  fs.writeFileSync(settingsFile, JSON.stringify({ ...practice, lateCancelHours: 48 }));
  const rounds = [
    { at: '2026-03-02T09:00:00Z', items: [ev({ id: 'a', title: 'Session', start: '2026-03-03T14:00:00-05:00', attendees: [therapist, client('jane@example.com')], updated: '2026-03-02T08:00:00Z' })] },
    { at: '2026-03-02T10:00:00Z', items: [gone('a'), { kind: 'event', eventId: 'broken' }] },
  ];

  test('prints each event with its decision, transitions and state, and the figures; bad items are named on stderr', async () => {
    const r = await run(['classify', '--settings', settingsFile, '--now', '2026-03-05T00:00:00Z'], {}, JSON.stringify(rounds));
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.now).toBe('2026-03-05T00:00:00.000Z');
    expect(report.events[0].transitions.map((t: { kind: string }) => t.kind)).toEqual(['scheduled', 'cancelled']);
    expect(report.events[0].state.cancel).toMatchObject({ late: true, noticeHours: 33 });
    expect(report.clients[0]).toMatchObject({ client: 'email:jane@example.com', lateCancels: 1 });
    expect(r.err).toBe('skipped item 1 of round 1 (event broken): provider: Invalid option: expected one of "google"|"microsoft"');
    // The same input and --now give the same output.
    expect((await run(['classify', '--settings', settingsFile, '--now', '2026-03-05T00:00:00Z'], {}, JSON.stringify(rounds))).out).toBe(r.out);
  });

  test('bad settings, bad JSON and a bad --now are refused with what and where', async () => {
    const bad = path.join(tmp, 'bad-practice.json');
    fs.writeFileSync(bad, JSON.stringify({ lateCancelHours: 'soon' }));
    const r1 = await run(['classify', '--settings', bad], {}, '[]');
    expect(r1.code).toBe(2);
    expect(r1.err).toContain('invalid practice file\n  lateCancelHours: Invalid input: expected number, received string');
    const r2 = await run(['classify', '--settings', settingsFile], {}, '[{"at": ');
    expect(r2.err).toMatch(/^sessionkeeper classify: the rounds on standard input is not valid JSON/);
    const r3 = await run(['classify', '--settings', settingsFile, '--now', 'tomorrow'], {}, '[]');
    expect(r3.err).toContain('--now must be an RFC 3339 instant');
    const r4 = await run(['classify', '--settings', path.join(tmp, 'missing.json')], {}, '[]');
    expect(r4.err).toContain('cannot read the practice file');
  });

  test('--from google takes raw events.list items, normalises them as the connector does, and skips a malformed one by id', async () => {
    const raw = [
      {
        at: '2026-03-02T09:00:00Z',
        calendarId: 'primary',
        items: [
          {
            kind: 'calendar#event', etag: '"3181161784712000"', id: 'g1', status: 'confirmed', summary: 'Intake', iCalUID: 'g1@google.com',
            created: '2026-03-01T10:00:00.000Z', updated: '2026-03-01T10:00:00.000Z',
            start: { dateTime: '2026-03-03T10:00:00-05:00', timeZone: 'America/New_York' }, end: { dateTime: '2026-03-03T11:00:00-05:00', timeZone: 'America/New_York' },
            organizer: { email: 'dr.lee@brightpath.example', self: true },
            attendees: [{ email: 'dr.lee@brightpath.example', organizer: true, self: true, responseStatus: 'accepted' }, { email: 'jane@example.com', responseStatus: 'needsAction' }],
          },
          { kind: 'calendar#event', etag: '"1"', id: 'broken', status: 'confirmed', summary: 'Session', updated: '2026-03-01T10:00:00.000Z', end: { dateTime: '2026-03-03T11:00:00-05:00' } },
        ],
      },
      { at: '2026-03-02T12:00:00Z', calendarId: 'primary', items: [{ kind: 'calendar#event', etag: '"2"', id: 'g1', status: 'cancelled' }] },
    ];
    const r = await run(['classify', '--from', 'google', '--settings', settingsFile, '--now', '2026-03-02T13:00:00Z'], {}, JSON.stringify(raw));
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.events[0]).toMatchObject({ eventId: 'g1', type: 'intake', client: { key: 'email:jane@example.com' } });
    expect(report.events[0].transitions.map((t: { kind: string }) => t.kind)).toEqual(['scheduled', 'cancelled']);
    expect(r.err).toContain('skipped item 1 of round 0 (event broken): start:');
  });

  test('--from microsoft takes raw calendarView delta items, @removed included, and skips a malformed one by id', async () => {
    const raw = [
      {
        at: '2026-03-02T09:00:00Z',
        items: [
          {
            '@odata.type': '#microsoft.graph.event', '@odata.etag': 'W/"EZ9r3czxY0m2jz8c45czkwAALZu97g=="', id: 'AAMkADj1HuAAA=', subject: 'Session',
            start: { dateTime: '2026-03-03T15:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2026-03-03T15:50:00.0000000', timeZone: 'UTC' },
            lastModifiedDateTime: '2026-03-01T10:00:00Z', isOrganizer: true,
            organizer: { emailAddress: { name: 'Samantha Booth', address: 'samanthab@brightpath.example' } },
            attendees: [{ type: 'required', status: { response: 'accepted' }, emailAddress: { name: 'Jane', address: 'jane@example.com' } }],
          },
          { '@odata.type': '#microsoft.graph.event', id: 'broken', subject: 'Session', start: { dateTime: 'soon', timeZone: 'UTC' }, changeKey: 'x' },
        ],
      },
      { at: '2026-03-02T12:00:00Z', items: [{ '@odata.type': '#microsoft.graph.event', id: 'AAMkADj1HuAAA=', '@removed': { reason: 'deleted' } }] },
    ];
    const r = await run(['classify', '--from', 'microsoft', '--settings', settingsFile, '--now', '2026-03-02T13:00:00Z'], {}, JSON.stringify(raw));
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.events[0]).toMatchObject({ eventId: 'AAMkADj1HuAAA=', client: { key: 'email:jane@example.com' } });
    expect(report.events[0].transitions.map((t: { kind: string }) => t.kind)).toEqual(['scheduled', 'cancelled']);
    expect(r.err).toContain('skipped item 1 of round 0 (event broken): start:');
  });

  test('reads standard input when run as a command', () => {
    const root = path.resolve(import.meta.dirname, '..');
    const out = spawnSync(process.execPath, [path.join(root, 'bin/sessionkeeper.js'), 'classify', '--settings', settingsFile, '--now', '2026-03-05T00:00:00Z'], { input: JSON.stringify(rounds), encoding: 'utf8' });
    expect(out.status).toBe(0);
    expect(JSON.parse(out.stdout).counts).toEqual({ rounds: 2, items: 3, rejected: 1, events: 1, appointments: 1, transitions: 2 });
  });
});
