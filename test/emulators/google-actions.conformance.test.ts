// Conformance of the Google emulator for platform actions through the real clients (@googleapis/calendar, tasks,
// gmail): event ids, Meet links, reminders, patch/delete; Tasks lists, filters, paging; Gmail send; scopes; faults.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { tasks_v1 } from '@googleapis/tasks';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { fixture, googleClients, type GoogleClients, startGoogle } from './conformance.js';
import { METHOD_SCOPES, SCOPE_PREFIX } from './google/scopes.js';
import type { GoogleEmulator, RequestHookInfo } from './google/server.js';

type Json = Record<string, unknown>;

const SUB = '411';
const EMAIL = 'actions@example.com';
const TZ = 'America/New_York';
const S = (s: string): string => `https://www.googleapis.com/auth/${s}`;
const ALL = ['openid', S('calendar.events'), S('tasks'), S('gmail.send')];
const WHEN = { start: { dateTime: '2025-03-10T10:00:00-04:00', timeZone: TZ }, end: { dateTime: '2025-03-10T10:50:00-04:00', timeZone: TZ } };

let clock: ManualClock;
let emu: GoogleEmulator;

beforeEach(async () => {
  clock = new ManualClock('2025-03-01T12:00:00Z');
  emu = await startGoogle({ sub: SUB, email: EMAIL, timeZone: TZ }, { clock });
});

afterEach(async () => {
  await emu.close();
});

/** The account's grant of these scopes, and the real Calendar, Tasks and Gmail clients on it (./conformance.ts). */
const connect = (scopes: string[] = ALL, sub = SUB): Promise<GoogleClients> => googleClients(emu, sub, scopes);

interface Failure {
  status: number | undefined;
  reason: unknown;
  message: unknown;
  domain: unknown;
  headers: Headers | undefined;
}

async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (e) {
    const err = e as { response?: { status: number; headers: Headers; data?: { error?: { message?: string; errors?: { reason?: string; domain?: string }[] } } } };
    const first = err.response?.data?.error?.errors?.[0];
    return { status: err.response?.status, reason: first?.reason, domain: first?.domain, message: err.response?.data?.error?.message, headers: err.response?.headers };
  }
  throw new Error('expected the call to fail');
}

const NO_RETRY = { retry: false } as const;

/** Checks a resource against a documented JSON representation (fixtures/README.md): known keys, their types, their order. */
function conforms(resource: Json, representation: Json): void {
  const keys = Object.keys(representation);
  const order = Object.keys(resource).map((k) => keys.indexOf(k));
  expect(order.every((i) => i >= 0), `unknown keys in ${JSON.stringify(Object.keys(resource))}`).toBe(true);
  expect(order).toEqual([...order].sort((a, b) => a - b));
  for (const [k, v] of Object.entries(resource)) {
    const doc = representation[k];
    if (Array.isArray(doc)) {
      expect(Array.isArray(v)).toBe(true);
      continue;
    }
    expect(typeof v, k).toBe(doc);
  }
}

test('the scopes of every method served are the discovery documents\' own', () => {
  const refs = '/work/shared/refs';
  const methods = (file: string): [string, string[]][] => {
    const out: [string, string[]][] = [];
    const walk = (resources: Record<string, { methods?: Record<string, { id: string; scopes: string[] }>; resources?: Record<string, unknown> }>): void => {
      for (const r of Object.values(resources)) {
        for (const m of Object.values(r.methods ?? {})) out.push([m.id, m.scopes]);
        if (r.resources) walk(r.resources as never);
      }
    };
    walk((JSON.parse(fs.readFileSync(path.join(refs, file), 'utf8')) as { resources: never }).resources);
    return out;
  };
  const full = (s: string) => (s.includes('://') ? s : SCOPE_PREFIX + s);
  const served = (id: string) => METHOD_SCOPES[id]?.map(full).sort();
  for (const [id, scopes] of methods('google-tasks-v1-discovery.json')) expect(served(id), id).toEqual([...scopes].sort());
  const send = methods('google-gmail-v1-discovery.json').find(([id]) => id === 'gmail.users.messages.send')!;
  expect(served(send[0])).toEqual([...send[1]].sort());
  for (const [id, scopes] of methods('google-calendar-v3-discovery.json')) {
    const local = id.replace(/^calendar\./, '');
    if (METHOD_SCOPES[local]) expect(served(local), id).toEqual([...scopes].sort());
  }
});

// ---------------------------------------------------------------------------------------------
// Calendar

test('events.insert with our id: base32hex 5-1024, a duplicate is 409 "duplicate", a bad id 400; sendUpdates recorded', async () => {
  const { cal } = await connect();
  const id = 'sk0123456789abcdefghijklmnopqrstuv';
  const ins = await cal.events.insert({ calendarId: 'primary', sendUpdates: 'none', requestBody: { id, summary: 'Session', ...WHEN, attendees: [{ email: 'client@else.example' }] } });
  expect(ins.data.id).toBe(id);
  expect(emu.requests.at(-1)).toMatchObject({ method: 'POST', status: 200, sendUpdates: 'none', notifiedGuests: [], api: 'calendar' });
  const dup = await failure(cal.events.insert({ calendarId: 'primary', sendUpdates: 'all', requestBody: { id, summary: 'Again', ...WHEN } }, NO_RETRY));
  expect(dup).toMatchObject({ status: 409, reason: 'duplicate', message: 'The requested identifier already exists.' });
  for (const bad of ['abcd', 'ABCDEF12345', 'sk-session-1', 'wxyz0123', 'a'.repeat(1025)]) {
    expect((await failure(cal.events.insert({ calendarId: 'primary', requestBody: { id: bad, ...WHEN } }, NO_RETRY))).status, bad).toBe(400);
  }
  expect((await cal.events.insert({ calendarId: 'primary', requestBody: { id: 'v'.repeat(1024), ...WHEN } })).data.id).toHaveLength(1024);
  expect((await cal.events.insert({ calendarId: 'primary', requestBody: { id: '0a1b2', ...WHEN } })).data.id).toBe('0a1b2');
});

test('a Meet link is made only with conferenceDataVersion=1; the same requestId on a patch keeps the meeting', async () => {
  const { cal } = await connect();
  const conferenceData = { createRequest: { requestId: 'sk-req-1', conferenceSolutionKey: { type: 'hangoutsMeet' } } };
  const without = await cal.events.insert({ calendarId: 'primary', requestBody: { id: 'nomeet00001', summary: 'A', ...WHEN, conferenceData } });
  expect(without.data.conferenceData).toBeUndefined();
  expect(without.data.hangoutLink).toBeUndefined();
  const zero = await cal.events.insert({ calendarId: 'primary', conferenceDataVersion: 0, requestBody: { id: 'nomeet00002', summary: 'A', ...WHEN, conferenceData } });
  expect(zero.data.hangoutLink).toBeUndefined();

  const made = await cal.events.insert({ calendarId: 'primary', conferenceDataVersion: 1, requestBody: { id: 'meet0000001', summary: 'B', ...WHEN, conferenceData } });
  const link = made.data.hangoutLink!;
  expect(link).toMatch(/^https:\/\/meet\.google\.com\/[a-z]{3}-[a-z]{4}-[a-z]{3}$/);
  expect(made.data.conferenceData).toMatchObject({
    createRequest: { requestId: 'sk-req-1', conferenceSolutionKey: { type: 'hangoutsMeet' }, status: { statusCode: 'success' } },
    entryPoints: [{ entryPointType: 'video', uri: link }],
    conferenceId: link.slice('https://meet.google.com/'.length),
  });
  // A later patch without conferenceDataVersion leaves the conference as it is.
  const p = await cal.events.patch({ calendarId: 'primary', eventId: 'meet0000001', requestBody: { summary: 'B2', conferenceData: { createRequest: { requestId: 'other', conferenceSolutionKey: { type: 'hangoutsMeet' } } } } });
  expect(p.data.hangoutLink).toBe(link);
  // Read back with a partial response, as the connector does.
  const got = await cal.events.get({ calendarId: 'primary', eventId: 'meet0000001', fields: 'id,hangoutLink,conferenceData(entryPoints,createRequest/status)' });
  expect(got.data).toEqual({ id: 'meet0000001', hangoutLink: link, conferenceData: { createRequest: { status: { statusCode: 'success' } }, entryPoints: [expect.objectContaining({ uri: link })] } });
});

test('reminders: at most 5 popup/email overrides of 0..40320 minutes, not together with useDefault; patch merges them', async () => {
  const { cal } = await connect();
  const o = (...m: number[]) => m.map((minutes) => ({ method: 'popup', minutes }));
  const six = await failure(cal.events.insert({ calendarId: 'primary', requestBody: { ...WHEN, reminders: { useDefault: false, overrides: o(5, 10, 15, 20, 25, 30) } } }, NO_RETRY));
  expect(six).toMatchObject({ status: 400, reason: 'eventRemindersCountExceedsLimit', domain: 'calendar' });
  const both = await failure(cal.events.insert({ calendarId: 'primary', requestBody: { ...WHEN, reminders: { useDefault: true, overrides: o(10) } } }, NO_RETRY));
  expect(both).toMatchObject({ status: 400, reason: 'cannotUseDefaultRemindersAndSpecifyOverride', domain: 'calendar' });
  for (const bad of [{ method: 'sms', minutes: 10 }, { method: 'popup', minutes: -1 }, { method: 'popup', minutes: 40321 }]) {
    expect((await failure(cal.events.insert({ calendarId: 'primary', requestBody: { ...WHEN, reminders: { useDefault: false, overrides: [bad] } } }, NO_RETRY))).status).toBe(400);
  }
  expect(emu.requests.filter((r) => r.api === 'calendar').map((r) => r.status)).toEqual([400, 400, 400, 400, 400]);

  const five = await cal.events.insert({ calendarId: 'primary', requestBody: { id: 'remind00001', ...WHEN, reminders: { useDefault: false, overrides: [...o(0, 10, 60), { method: 'email', minutes: 40320 }, ...o(1440)] } } });
  expect(five.data.reminders?.overrides).toHaveLength(5);
  expect((await cal.events.insert({ calendarId: 'primary', requestBody: { ...WHEN } })).data.reminders).toEqual({ useDefault: true });
  // A patch replaces the overrides array; an empty one leaves no reminder.
  const none = await cal.events.patch({ calendarId: 'primary', eventId: 'remind00001', requestBody: { reminders: { useDefault: false, overrides: [] } } });
  expect(none.data.reminders).toEqual({ useDefault: false, overrides: [] });
  // The patch merges the reminders object: useDefault true over stored overrides is the conflict.
  await cal.events.patch({ calendarId: 'primary', eventId: 'remind00001', requestBody: { reminders: { overrides: o(30) } } });
  const clash = await failure(cal.events.patch({ calendarId: 'primary', eventId: 'remind00001', requestBody: { reminders: { useDefault: true } } }, NO_RETRY));
  expect(clash.reason).toBe('cannotUseDefaultRemindersAndSpecifyOverride');
  const back = await cal.events.patch({ calendarId: 'primary', eventId: 'remind00001', requestBody: { reminders: { useDefault: true, overrides: null as unknown as [] } } });
  expect(back.data.reminders).toEqual({ useDefault: true });
});

test('inserted, patched and deleted events come with the incremental sync and push; a second delete is 410 "deleted"', async () => {
  const got: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    got.push(req.headers);
    req.resume();
    res.writeHead(200).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const { cal } = await connect();
    const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    await cal.events.watch({ calendarId: 'primary', requestBody: { id: 'chan-actions', type: 'web_hook', address, token: 't' } });
    const full = await cal.events.list({ calendarId: 'primary', singleEvents: true });
    const token = full.data.nextSyncToken!;

    await cal.events.insert({ calendarId: 'primary', sendUpdates: 'all', requestBody: { id: 'booked00001', summary: 'Booked', ...WHEN, attendees: [{ email: 'client@else.example' }] } });
    clock.advance({ minutes: 5 });
    // Partial start/end: the patch merges into the stored EventDateTime.
    const moved = await cal.events.patch({
      calendarId: 'primary',
      eventId: 'booked00001',
      sendUpdates: 'all',
      requestBody: { summary: 'Moved', description: 'Room 2', location: 'Office', start: { dateTime: '2025-03-10T11:00:00-04:00' }, end: { dateTime: '2025-03-10T11:50:00-04:00' } },
    });
    expect(moved.data).toMatchObject({ summary: 'Moved', description: 'Room 2', location: 'Office', start: { dateTime: '2025-03-10T11:00:00-04:00', timeZone: TZ }, sequence: 1 });
    expect(emu.requests.at(-1)).toMatchObject({ method: 'PATCH', sendUpdates: 'all', notifiedGuests: ['client@else.example'] });
    const cleared = await cal.events.patch({ calendarId: 'primary', eventId: 'booked00001', sendUpdates: 'none', requestBody: { description: null as unknown as string } });
    expect(cleared.data.description).toBeUndefined();
    const inc = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: token });
    expect(inc.data.items?.map((i) => [i.id, i.status, i.summary])).toEqual([['booked00001', 'confirmed', 'Moved']]);

    await cal.events.delete({ calendarId: 'primary', eventId: 'booked00001', sendUpdates: 'all' });
    expect(emu.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 204, sendUpdates: 'all', notifiedGuests: ['client@else.example'] });
    const again = await failure(cal.events.delete({ calendarId: 'primary', eventId: 'booked00001' }, NO_RETRY));
    expect(again).toMatchObject({ status: 410, reason: 'deleted' });
    const inc2 = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: inc.data.nextSyncToken! });
    expect(inc2.data.items).toEqual([{ kind: 'calendar#event', etag: expect.any(String), id: 'booked00001', status: 'cancelled' }]);
    // Kept as cancelled: get answers it.
    expect((await cal.events.get({ calendarId: 'primary', eventId: 'booked00001' })).data.status).toBe('cancelled');
    expect(emu.getEvent(EMAIL, 'booked00001')).toMatchObject({ id: 'booked00001', status: 'cancelled', summary: 'Moved' });
    expect(emu.getEvent(EMAIL, 'nosuchevent0')).toBeUndefined();

    await emu.settled();
    // sync, then one per change: insert, two patches, delete (the refused second delete changes nothing).
    expect(got.map((h) => h['x-goog-resource-state'])).toEqual(['sync', 'exists', 'exists', 'exists', 'exists']);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('calendar writes need a scope of the method (403 insufficientPermissions with calendar.events.readonly)', async () => {
  const { cal } = await connect(['openid', S('calendar.events.readonly')]);
  expect((await cal.events.list({ calendarId: 'primary' })).status).toBe(200);
  const ins = await failure(cal.events.insert({ calendarId: 'primary', requestBody: { id: 'noscope0001', ...WHEN } }, NO_RETRY));
  expect(ins).toMatchObject({ status: 403, reason: 'insufficientPermissions' });
  emu.insertEvent(EMAIL, { id: 'mine0000001', ...WHEN });
  expect((await failure(cal.events.patch({ calendarId: 'primary', eventId: 'mine0000001', requestBody: { summary: 'x' } }, NO_RETRY))).status).toBe(403);
  expect((await failure(cal.events.delete({ calendarId: 'primary', eventId: 'mine0000001' }, NO_RETRY))).status).toBe(403);
});

// ---------------------------------------------------------------------------------------------
// Tasks

test('task lists: the default list, insert, get, paging (default 20, at most 100), delete; resources as documented', async () => {
  const { tk } = await connect();
  const first = await tk.tasklists.list();
  expect(first.data).toMatchObject({ kind: 'tasks#taskLists', etag: expect.any(String) });
  expect(first.data.items?.map((l) => l.title)).toEqual(['My Tasks']);
  conforms(first.data as Json, { ...fixture('google', 'tasks-list-response.json') });
  conforms(first.data.items![0] as Json, fixture('google', 'tasklist-resource.json'));

  clock.advance({ minutes: 1 });
  const made = await tk.tasklists.insert({ requestBody: { title: 'Follow-ups' } });
  expect(made.data).toMatchObject({ kind: 'tasks#taskList', title: 'Follow-ups', updated: '2025-03-01T12:01:00.000Z', selfLink: `${emu.url}tasks/v1/users/@me/lists/${made.data.id}` });
  expect((await tk.tasklists.get({ tasklist: made.data.id! })).data).toEqual(made.data);
  expect((await tk.tasklists.get({ tasklist: '@default' })).data.title).toBe('My Tasks');
  expect((await failure(tk.tasklists.insert({ requestBody: { title: 'x'.repeat(1025) } }, NO_RETRY))).status).toBe(400);

  for (let i = 0; i < 24; i++) await tk.tasklists.insert({ requestBody: { title: `List ${i}` } });
  const page1 = await tk.tasklists.list();
  expect(page1.data.items).toHaveLength(20);
  const page2 = await tk.tasklists.list({ pageToken: page1.data.nextPageToken! });
  expect(page2.data.items).toHaveLength(6);
  expect(page2.data.nextPageToken).toBeUndefined();
  expect((await tk.tasklists.list({ maxResults: 500 })).data.items).toHaveLength(26);
  expect((await failure(tk.tasklists.list({ pageToken: 'bogus' }, NO_RETRY))).status).toBe(400);

  await tk.tasklists.delete({ tasklist: made.data.id! });
  expect((await failure(tk.tasklists.get({ tasklist: made.data.id! }, NO_RETRY))).status).toBe(404);
});

test('tasks: due keeps only the date; updated moves on each change; completed follows the status; limits of title and notes', async () => {
  const { tk } = await connect();
  const list = (await tk.tasklists.insert({ requestBody: { title: 'Follow-ups' } })).data.id!;
  const t = await tk.tasks.insert({ tasklist: list, requestBody: { title: 'Call A.', notes: 'about Monday', due: '2025-03-10T15:45:12.345Z', status: 'needsAction' } });
  expect(t.data).toMatchObject({
    kind: 'tasks#task',
    title: 'Call A.',
    notes: 'about Monday',
    status: 'needsAction',
    due: '2025-03-10T00:00:00.000Z',
    updated: '2025-03-01T12:00:00.000Z',
    selfLink: `${emu.url}tasks/v1/lists/${list}/tasks/${t.data.id}`,
    position: '00000000000000000000',
    links: [],
  });
  expect(t.data.completed).toBeUndefined();
  expect(t.data.deleted).toBeUndefined();
  conforms(t.data as Json, fixture('google', 'task-resource.json'));

  clock.advance({ minutes: 2 });
  const done = await tk.tasks.patch({ tasklist: list, task: t.data.id!, requestBody: { status: 'completed' } });
  expect(done.data).toMatchObject({ status: 'completed', completed: '2025-03-01T12:02:00.000Z', updated: '2025-03-01T12:02:00.000Z', title: 'Call A.', due: '2025-03-10T00:00:00.000Z' });
  expect(done.data.etag).not.toBe(t.data.etag);
  expect(done.data.hidden).toBeUndefined();
  clock.advance({ minutes: 1 });
  // Completing again keeps the completion time.
  expect((await tk.tasks.patch({ tasklist: list, task: t.data.id!, requestBody: { status: 'completed' } })).data.completed).toBe('2025-03-01T12:02:00.000Z');
  const reopened = await tk.tasks.patch({ tasklist: list, task: t.data.id!, requestBody: { status: 'needsAction', due: null as unknown as string } });
  expect(reopened.data.completed).toBeUndefined();
  expect(reopened.data.due).toBeUndefined();
  expect(reopened.data.updated).toBe('2025-03-01T12:03:00.000Z');

  // update (PUT) replaces the writable fields.
  const put = await tk.tasks.update({ tasklist: list, task: t.data.id!, requestBody: { id: t.data.id!, title: 'Only this' } });
  expect(put.data.notes).toBeUndefined();
  expect(put.data.status).toBe('needsAction');

  // A new task goes first among its siblings.
  const second = await tk.tasks.insert({ tasklist: list, requestBody: { title: 'Second' } });
  expect(second.data.position).toBe('00000000000000000000');
  expect((await tk.tasks.get({ tasklist: list, task: t.data.id! })).data.position).toBe('00000000000000000001');

  expect((await failure(tk.tasks.insert({ tasklist: list, requestBody: { title: 'x'.repeat(1025) } }, NO_RETRY))).status).toBe(400);
  expect((await failure(tk.tasks.insert({ tasklist: list, requestBody: { title: 'ok', notes: 'n'.repeat(8193) } }, NO_RETRY))).status).toBe(400);
  expect((await tk.tasks.insert({ tasklist: list, requestBody: { title: 'x'.repeat(1024), notes: 'n'.repeat(8192) } })).status).toBe(200);
  expect((await failure(tk.tasks.insert({ tasklist: list, requestBody: { title: 'bad', status: 'done' } }, NO_RETRY))).status).toBe(400);
  expect((await failure(tk.tasks.insert({ tasklist: list, requestBody: { title: 'bad', due: 'next week' } }, NO_RETRY))).status).toBe(400);
  const missing = await failure(tk.tasks.get({ tasklist: list, task: 'nosuchtask' }, NO_RETRY));
  expect(missing).toMatchObject({ status: 404, reason: 'notFound' });
  expect((await failure(tk.tasks.list({ tasklist: 'nosuchlist' }, NO_RETRY))).status).toBe(404);
});

test('tasks.list: showCompleted, showHidden (the user’s own completions, tasks.clear), showDeleted, updatedMin, due and completed bounds', async () => {
  const { tk } = await connect();
  const list = (await tk.tasklists.insert({ requestBody: { title: 'Follow-ups' } })).data.id!;
  const add = async (title: string, extra: tasks_v1.Schema$Task = {}) => (await tk.tasks.insert({ tasklist: list, requestBody: { title, ...extra } })).data.id!;
  const open = await add('open', { due: '2025-03-05T00:00:00.000Z' });
  const apiDone = await add('api-done');
  const userDone = await add('user-done', { due: '2025-03-20T00:00:00.000Z' });
  const gone = await add('gone');
  clock.advance({ minutes: 30 });
  const mark = clock.now().toUTC().toISO()!;
  await tk.tasks.patch({ tasklist: list, task: apiDone, requestBody: { status: 'completed' } });
  // The therapist ticks one off in Google's app: completed and hidden at once.
  const ticked = emu.completeTask(SUB, list, userDone);
  expect(ticked).toMatchObject({ status: 'completed', hidden: true, completed: expect.any(String) });
  await tk.tasks.delete({ tasklist: list, task: gone });
  expect(emu.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 204, api: 'tasks' });

  const titles = async (params: Omit<tasks_v1.Params$Resource$Tasks$List, 'tasklist'> = {}) =>
    ((await tk.tasks.list({ tasklist: list, ...params })).data.items ?? []).map((t) => t.title).sort();
  expect(await titles()).toEqual(['api-done', 'open']);
  expect(await titles({ showCompleted: false })).toEqual(['open']);
  expect(await titles({ showHidden: true })).toEqual(['api-done', 'open', 'user-done']);
  expect(await titles({ showDeleted: true })).toEqual(['api-done', 'gone', 'open']);
  expect(await titles({ showCompleted: true, showHidden: true, showDeleted: true })).toEqual(['api-done', 'gone', 'open', 'user-done']);
  expect(await titles({ updatedMin: mark, showHidden: true, showDeleted: true })).toEqual(['api-done', 'gone', 'user-done']);
  expect(await titles({ dueMin: '2025-03-10T00:00:00Z', showHidden: true })).toEqual(['user-done']);
  expect(await titles({ dueMax: '2025-03-10T00:00:00Z', showHidden: true })).toEqual(['open']);
  expect(await titles({ completedMin: mark, showHidden: true })).toEqual(['api-done', 'user-done']);
  expect(await titles({ completedMax: '2025-03-01T12:20:00Z', showHidden: true })).toEqual([]);
  const del = (await tk.tasks.get({ tasklist: list, task: gone })).data;
  expect(del).toMatchObject({ deleted: true, updated: '2025-03-01T12:30:00.000Z' });
  expect((await failure(tk.tasks.list({ tasklist: list, updatedMin: 'yesterday' }, NO_RETRY))).status).toBe(400);

  // tasks.clear hides the completed ones (those we completed too).
  await tk.tasks.clear({ tasklist: list });
  expect(await titles()).toEqual(['open']);
  expect(await titles({ showHidden: true })).toEqual(['api-done', 'open', 'user-done']);
  expect((await tk.tasks.get({ tasklist: list, task: apiDone })).data.hidden).toBe(true);
  // Reopened, a task is no longer hidden.
  await tk.tasks.patch({ tasklist: list, task: apiDone, requestBody: { status: 'needsAction' } });
  expect(await titles()).toEqual(['api-done', 'open']);
  expect(open).toBeTruthy();
});

test('tasks.list pages: 20 by default, at most 100, a snapshot per listing; an empty page has no items', async () => {
  const { tk } = await connect();
  const list = (await tk.tasklists.insert({ requestBody: { title: 'Many' } })).data.id!;
  const empty = await tk.tasks.list({ tasklist: list });
  expect(empty.data).toEqual({ kind: 'tasks#tasks', etag: expect.any(String) });
  for (let i = 0; i < 130; i++) emu.insertTask(SUB, list, { title: `t${i}` });
  const p1 = await tk.tasks.list({ tasklist: list });
  expect(p1.data.items).toHaveLength(20);
  const big = await tk.tasks.list({ tasklist: list, maxResults: 1000 });
  expect(big.data.items).toHaveLength(100);
  emu.insertTask(SUB, list, { title: 'late' });
  const big2 = await tk.tasks.list({ tasklist: list, maxResults: 100, pageToken: big.data.nextPageToken! });
  expect(big2.data.items).toHaveLength(30);
  expect(big2.data.nextPageToken).toBeUndefined();
  // The page token belongs to its query.
  expect((await failure(tk.tasks.list({ tasklist: list, showHidden: true, pageToken: big.data.nextPageToken! }, NO_RETRY))).status).toBe(400);
});

test('tasks scopes per the discovery document: tasks.readonly reads, only tasks writes; calendar scopes give 403', async () => {
  const owner = await connect();
  const list = (await owner.tk.tasklists.insert({ requestBody: { title: 'L' } })).data.id!;
  const ro = await connect(['openid', S('tasks.readonly')]);
  expect((await ro.tk.tasks.list({ tasklist: list })).status).toBe(200);
  expect((await ro.tk.tasklists.list()).status).toBe(200);
  expect(await failure(ro.tk.tasks.insert({ tasklist: list, requestBody: { title: 'x' } }, NO_RETRY))).toMatchObject({ status: 403, reason: 'insufficientPermissions' });
  const cal = await connect(['openid', S('calendar.events')]);
  expect(await failure(cal.tk.tasklists.list({}, NO_RETRY))).toMatchObject({ status: 403, reason: 'insufficientPermissions' });
  expect((await failure(cal.tk.tasks.list({ tasklist: list }, NO_RETRY))).status).toBe(403);
});

// ---------------------------------------------------------------------------------------------
// Gmail

const RAW = [
  'From: "Dr. Example" <actions@example.com>',
  'To: =?UTF-8?B?SsO8cmdlbg==?= <client@else.example>',
  'Subject: =?UTF-8?Q?R=C3=BCckfrage?=',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain; charset=UTF-8',
  '',
  'Hello',
  '--b1',
  'Content-Type: text/calendar; method=REQUEST; charset=UTF-8',
  'Content-Disposition: attachment; filename="invite.ics"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n').toString('base64'),
  '--b1--',
  '',
].join('\r\n');

test('users.messages.send takes base64url raw, answers {id, threadId, labelIds: [SENT]}; the message is kept, parsed', async () => {
  const { gm } = await connect();
  const res = await gm.users.messages.send({ userId: 'me', requestBody: { raw: Buffer.from(RAW).toString('base64url') } });
  expect(res.data).toEqual({ id: expect.stringMatching(/^[0-9a-f]{16}$/), threadId: res.data.id, labelIds: ['SENT'] });
  expect(emu.requests.at(-1)).toMatchObject({ method: 'POST', path: '/gmail/v1/users/me/messages/send', status: 200, api: 'gmail' });
  const [m] = emu.sentMessages();
  expect(m).toMatchObject({
    id: res.data.id,
    account: EMAIL,
    from: [{ name: 'Dr. Example', address: EMAIL }],
    to: [{ name: 'Jürgen', address: 'client@else.example' }],
    subject: 'Rückfrage',
    text: 'Hello',
    raw: RAW,
  });
  expect(m!.attachments).toEqual([
    expect.objectContaining({ filename: 'invite.ics', contentType: 'text/calendar', contentTypeHeader: expect.stringContaining('method=REQUEST'), content: Buffer.from('BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n') }),
  ]);
  expect(m!.headerLines.map((h) => h.key)).toEqual(['from', 'to', 'subject', 'mime-version', 'content-type']);

  // The own address as userId works; the standard base64 alphabet too; a reply in the thread keeps it.
  const again = await gm.users.messages.send({ userId: EMAIL, requestBody: { raw: Buffer.from(RAW).toString('base64'), threadId: res.data.threadId! } });
  expect(again.data.threadId).toBe(res.data.threadId);
  expect(again.data.id).not.toBe(res.data.id);
  // Without From, Gmail fills in the account.
  await gm.users.messages.send({ userId: 'me', requestBody: { raw: Buffer.from('To: a@b.example\r\nSubject: x\r\n\r\nhi').toString('base64url') } });
  expect(emu.sentMessages().at(-1)?.from).toEqual([{ name: '', address: EMAIL }]);
});

test('users.messages.send refuses a missing or bad raw, no recipient, another user (and nothing is sent)', async () => {
  const { gm } = await connect();
  expect(await failure(gm.users.messages.send({ userId: 'me', requestBody: {} }, NO_RETRY))).toMatchObject({ status: 400, reason: 'invalidArgument' });
  expect((await failure(gm.users.messages.send({ userId: 'me', requestBody: { raw: 'not base64!' } }, NO_RETRY))).status).toBe(400);
  const noTo = await failure(gm.users.messages.send({ userId: 'me', requestBody: { raw: Buffer.from('Subject: x\r\n\r\nhi').toString('base64url') } }, NO_RETRY));
  expect(noTo).toMatchObject({ status: 400, reason: 'invalidArgument', message: 'Recipient address required' });
  const other = await failure(gm.users.messages.send({ userId: 'someone@else.example', requestBody: { raw: Buffer.from(RAW).toString('base64url') } }, NO_RETRY));
  expect(other.status).toBe(403);
  expect(emu.sentMessages()).toEqual([]);
});

test('users.messages.send needs gmail.send (or a wider Gmail scope): 403 insufficientPermissions otherwise', async () => {
  const { gm } = await connect(['openid', S('calendar.events'), S('tasks')]);
  expect(await failure(gm.users.messages.send({ userId: 'me', requestBody: { raw: Buffer.from(RAW).toString('base64url') } }, NO_RETRY))).toMatchObject({
    status: 403,
    reason: 'insufficientPermissions',
  });
  const wide = await connect(['https://mail.google.com/']);
  expect((await wide.gm.users.messages.send({ userId: 'me', requestBody: { raw: Buffer.from(RAW).toString('base64url') } })).status).toBe(200);
  expect(emu.sentMessages()).toHaveLength(1);
});

// ---------------------------------------------------------------------------------------------
// Faults on the new routes

test('faults apply to Tasks and Gmail: 429 with Retry-After, 403 rate limit, 5xx, drop, dropAfter, delay and timeout; all recorded', async () => {
  const { tk, gm } = await connect();
  const list = (await tk.tasklists.insert({ requestBody: { title: 'F' } })).data.id!;
  const raw = Buffer.from(RAW).toString('base64url');

  emu.faults.add({ match: { path: /^\/tasks\/v1\// }, fault: { status: 429, retryAfter: 4 } });
  const r429 = await failure(tk.tasks.list({ tasklist: list }, NO_RETRY));
  expect(r429).toMatchObject({ status: 429, reason: 'rateLimitExceeded' });
  expect(r429.headers?.get('retry-after')).toBe('4');
  emu.faults.add({ fault: { status: 403, reason: 'userRateLimitExceeded' } });
  expect(await failure(tk.tasks.list({ tasklist: list }, NO_RETRY))).toMatchObject({ status: 403, reason: 'userRateLimitExceeded' });

  // A 503 on a send: nothing sent; gaxios does not retry a POST.
  emu.faults.add({ match: { path: /\/messages\/send$/ }, fault: { status: 503 } });
  expect((await failure(gm.users.messages.send({ userId: 'me', requestBody: { raw } }))).status).toBe(503);
  expect(emu.sentMessages()).toHaveLength(0);
  // dropAfter: sent, the answer lost.
  emu.faults.add({ match: { path: /\/messages\/send$/ }, fault: { dropAfter: true } });
  expect((await failure(gm.users.messages.send({ userId: 'me', requestBody: { raw } }, NO_RETRY))).status).toBeUndefined();
  expect(emu.sentMessages()).toHaveLength(1);
  expect(emu.requests.at(-1)).toMatchObject({ status: 0, dropped: 'after', api: 'gmail' });

  // drop: no effect; dropAfter on an insert: the task exists.
  emu.faults.add({ match: { method: 'POST', path: /\/tasks$/ }, fault: { drop: true } });
  expect((await failure(tk.tasks.insert({ tasklist: list, requestBody: { title: 'dropped' } }, NO_RETRY))).status).toBeUndefined();
  emu.faults.add({ match: { method: 'POST', path: /\/tasks$/ }, fault: { dropAfter: true } });
  expect((await failure(tk.tasks.insert({ tasklist: list, requestBody: { title: 'kept' } }, NO_RETRY))).status).toBeUndefined();
  expect(emu.tasks(SUB, list).map((t) => t['title'])).toEqual(['kept']);

  // A delay longer than the client's timeout is a failure without an answer.
  emu.faults.add({ match: { path: /^\/tasks\/v1\// }, fault: { delayMs: 400 } });
  expect((await failure(tk.tasks.list({ tasklist: list }, { retry: false, timeout: 100 }))).status).toBeUndefined();
  emu.faults.add({ match: { path: /^\/tasks\/v1\// }, fault: { status: 500 } });
  expect(await failure(tk.tasks.get({ tasklist: list, task: 'x' }, NO_RETRY))).toMatchObject({ status: 500, reason: 'backendError' });
  expect(emu.faults.pending()).toBe(0);
  expect(emu.requests.filter((r) => r.api === 'tasks').map((r) => r.status)).toEqual([200, 429, 403, 0, 0, 0, 500]);
});

test('the request hook sees Tasks and Gmail requests with their api, and can drop them before or after the effect', async () => {
  const { tk, gm } = await connect();
  const list = (await tk.tasklists.insert({ requestBody: { title: 'H' } })).data.id!;
  const seen: RequestHookInfo[] = [];
  emu.setRequestHook((info) => {
    seen.push(info);
    if (info.api === 'tasks' && info.method === 'POST' && info.phase === 'after') return 'drop';
  });
  expect((await failure(tk.tasks.insert({ tasklist: list, requestBody: { title: 'made' } }, NO_RETRY))).status).toBeUndefined();
  await gm.users.messages.send({ userId: 'me', requestBody: { raw: Buffer.from(RAW).toString('base64url') } });
  emu.setRequestHook(null);
  expect(seen.map((s) => `${s.seq} ${s.api} ${s.method} ${s.phase}`)).toEqual(['1 tasks POST before', '1 tasks POST after', '2 gmail POST before', '2 gmail POST after']);
  expect(emu.tasks(SUB, list).map((t) => t['title'])).toEqual(['made']);
});
