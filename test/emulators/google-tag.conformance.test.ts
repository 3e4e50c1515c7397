// Conformance of the Google emulator for event tags and crash tests, through the real @googleapis/calendar
// client: events.patch merging extended properties, sendUpdates recorded, partial responses (fields),
// deleted events on get/patch, the dropAfter fault and the request hook.
import { afterEach, beforeEach, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { googleClients, startGoogle, type GoogleClients } from './conformance.js';
import type { GoogleEmulator, RequestHookInfo } from './google/server.js';

type Json = Record<string, unknown>;

const SUB = '211';
const EMAIL = 'tags@example.com';
const TZ = 'America/New_York';
const SCOPES = ['openid', 'https://www.googleapis.com/auth/calendar.events'];
const WHEN = { start: { dateTime: '2025-03-10T10:00:00-04:00', timeZone: TZ }, end: { dateTime: '2025-03-10T10:50:00-04:00', timeZone: TZ } };

let clock: ManualClock;
let emu: GoogleEmulator;

beforeEach(async () => {
  clock = new ManualClock('2025-03-01T12:00:00Z');
  emu = await startGoogle({ sub: SUB, email: EMAIL, timeZone: TZ }, { clock });
  emu.addAccount({ sub: '212', email: 'colleague@gmail.example' });
});

afterEach(async () => {
  await emu.close();
});

const connect = (opts: { forceRefreshOnFailure?: boolean } = {}): Promise<GoogleClients> => googleClients(emu, SUB, SCOPES, opts);

async function failure(p: Promise<unknown>): Promise<{ status: number | undefined; reason: unknown }> {
  try {
    await p;
  } catch (e) {
    const err = e as { response?: { status: number; data?: { error?: { errors?: { reason?: string }[] } } } };
    return { status: err.response?.status, reason: err.response?.data?.error?.errors?.[0]?.reason };
  }
  throw new Error('expected the call to fail');
}

const lastPatch = () => emu.requests.filter((r) => r.method === 'PATCH').at(-1);

test('events.patch merges extendedProperties.private and .shared key by key; null removes a key', async () => {
  const { cal } = await connect();
  const ev = emu.insertEvent(EMAIL, { summary: 'Session', ...WHEN, extendedProperties: { private: { 'sk.a': '1', 'sk.b': '2', other: 'kept' }, shared: { s: 'x' } } });
  const id = ev['id'] as string;

  const res = await cal.events.patch({ calendarId: 'primary', eventId: id, requestBody: { extendedProperties: { private: { 'sk.b': '3', 'sk.c': '4' } } } });
  expect(res.data.extendedProperties).toEqual({ private: { 'sk.a': '1', 'sk.b': '3', other: 'kept', 'sk.c': '4' }, shared: { s: 'x' } });
  expect(res.data.summary).toBe('Session');

  await cal.events.patch({ calendarId: 'primary', eventId: id, requestBody: { extendedProperties: { shared: { t: 'y' } } } });
  // The client drops undefined, not null: null goes over the wire, as the guide's delete example sends it.
  const removed = await cal.events.patch({ calendarId: 'primary', eventId: id, requestBody: { extendedProperties: { private: { 'sk.a': null as unknown as string } } } });
  expect(removed.data.extendedProperties).toEqual({ private: { 'sk.b': '3', other: 'kept', 'sk.c': '4' }, shared: { s: 'x', t: 'y' } });
  expect((await cal.events.get({ calendarId: 'primary', eventId: id })).data.extendedProperties).toEqual(removed.data.extendedProperties);

  // An event without properties: a null for a key it never had is not stored.
  const bare = emu.insertEvent(EMAIL, { summary: 'Bare', ...WHEN })['id'] as string;
  const first = await cal.events.patch({ calendarId: 'primary', eventId: bare, requestBody: { extendedProperties: { private: { gone: null as unknown as string, 'sk.session': 'yes' } } } });
  expect(first.data.extendedProperties).toEqual({ private: { 'sk.session': 'yes' } });

  // Values are strings (Event.extendedProperties: additionalProperties of type string).
  const bad = await failure(cal.events.patch({ calendarId: 'primary', eventId: bare, requestBody: { extendedProperties: { private: { n: 5 as unknown as string } } } }));
  expect(bad).toEqual({ status: 400, reason: 'invalid' });
});

test('a patch moves etag and updated, keeps sequence, and is seen by the next incremental sync', async () => {
  const { cal } = await connect();
  const id = emu.insertEvent(EMAIL, { summary: 'Session', ...WHEN })['id'] as string;
  emu.insertEvent(EMAIL, { summary: 'Other', ...WHEN });
  const full = await cal.events.list({ calendarId: 'primary', singleEvents: true });
  expect(full.data.items).toHaveLength(2);
  const before = (await cal.events.get({ calendarId: 'primary', eventId: id })).data;

  clock.advance({ minutes: 3 });
  const after = (await cal.events.patch({ calendarId: 'primary', eventId: id, sendUpdates: 'none', requestBody: { extendedProperties: { private: { 'sk.outcome': 'attended' } } } })).data;
  expect(after.etag).not.toBe(before.etag);
  expect(after.updated).toBe('2025-03-01T12:03:00.000Z');
  expect(after.sequence).toBe(before.sequence);
  expect({ ...after, etag: before.etag, updated: before.updated, extendedProperties: undefined }).toEqual({ ...before, extendedProperties: undefined });

  const inc = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: full.data.nextSyncToken! });
  expect(inc.data.items?.map((i) => [i.id, i.extendedProperties?.private])).toEqual([[id, { 'sk.outcome': 'attended' }]]);

  // Writing the same value again is still a write (etag moves), with the same properties.
  const again = (await cal.events.patch({ calendarId: 'primary', eventId: id, sendUpdates: 'none', requestBody: { extendedProperties: { private: { 'sk.outcome': 'attended' } } } })).data;
  expect(again.extendedProperties).toEqual(after.extendedProperties);
  expect(again.etag).not.toBe(after.etag);
});

test('sendUpdates is recorded on every event write, with the guests it would mail', async () => {
  const { cal } = await connect();
  const attendees = [{ email: EMAIL }, { email: 'client@else.example' }, { email: 'colleague@gmail.example' }];
  const id = emu.insertEvent(EMAIL, { summary: 'Session', ...WHEN, attendees })['id'] as string;
  const patch = (sendUpdates?: string) => cal.events.patch({ calendarId: 'primary', eventId: id, ...(sendUpdates ? { sendUpdates } : {}), requestBody: { extendedProperties: { private: { 'sk.x': 'y' } } } });

  await patch('none');
  expect(lastPatch()).toMatchObject({ status: 200, sendUpdates: 'none', notifiedGuests: [] });
  await patch('all');
  expect(lastPatch()).toMatchObject({ sendUpdates: 'all', notifiedGuests: ['client@else.example', 'colleague@gmail.example'] });
  // externalOnly: only guests who are not Google Calendar users (here: not accounts of the emulator).
  await patch('externalOnly');
  expect(lastPatch()).toMatchObject({ sendUpdates: 'externalOnly', notifiedGuests: ['client@else.example'] });
  await patch();
  expect(lastPatch()?.sendUpdates).toBeUndefined();
  expect(lastPatch()?.notifiedGuests).toEqual([]);
  // The deprecated sendNotifications is read as all/none.
  await cal.events.patch({ calendarId: 'primary', eventId: id, sendNotifications: true, requestBody: { summary: 'Session' } });
  expect(lastPatch()).toMatchObject({ sendUpdates: 'all' });
  expect(await failure(patch('nobody'))).toEqual({ status: 400, reason: 'invalid' });
  expect(lastPatch()?.notifiedGuests).toBeUndefined();

  await cal.events.delete({ calendarId: 'primary', eventId: id, sendUpdates: 'all' });
  expect(emu.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 204, sendUpdates: 'all', notifiedGuests: ['client@else.example', 'colleague@gmail.example'] });
});

test('fields gives a partial response (nested paths, sub-selections); a malformed one is a 400', async () => {
  const { cal } = await connect();
  const id = emu.insertEvent(EMAIL, { summary: 'Session', ...WHEN, extendedProperties: { private: { 'sk.session': 'yes' }, shared: { s: 'x' } } })['id'] as string;
  const got = await cal.events.get({ calendarId: 'primary', eventId: id, fields: 'id,status,extendedProperties/private' });
  expect(got.data).toEqual({ id, status: 'confirmed', extendedProperties: { private: { 'sk.session': 'yes' } } });
  const patched = await cal.events.patch({ calendarId: 'primary', eventId: id, fields: 'id,status', requestBody: { extendedProperties: { private: { 'sk.outcome': 'attended' } } } });
  expect(patched.data).toEqual({ id, status: 'confirmed' });
  // Only the answer is partial: the write is whole.
  expect((await cal.events.get({ calendarId: 'primary', eventId: id })).data.extendedProperties?.private).toEqual({ 'sk.session': 'yes', 'sk.outcome': 'attended' });

  const list = await cal.events.list({ calendarId: 'primary', fields: 'items(id,start/dateTime),nextSyncToken' });
  expect(Object.keys(list.data).sort()).toEqual(['items', 'nextSyncToken']);
  expect(list.data.items).toEqual([{ id, start: { dateTime: '2025-03-10T10:00:00-04:00' } }]);
  expect((await cal.events.get({ calendarId: 'primary', eventId: id, fields: 'start/*' })).data).toEqual({ start: WHEN.start });
  // A field the event lacks is left out, not invented.
  expect((await cal.events.get({ calendarId: 'primary', eventId: id, fields: 'id,description' })).data).toEqual({ id });

  for (const fields of ['items(id', 'id,,status', 'a/(b)', 'id)']) {
    expect(await failure(cal.events.get({ calendarId: 'primary', eventId: id, fields }))).toEqual({ status: 400, reason: 'invalidParameter' });
  }
  // Errors are never filtered.
  expect(await failure(cal.events.get({ calendarId: 'primary', eventId: 'nosuchevent1', fields: 'id' }))).toEqual({ status: 404, reason: 'notFound' });
});

test('a deleted event: get answers it with status cancelled, patch leaves it cancelled, a second delete is 410', async () => {
  const { cal } = await connect();
  const id = emu.insertEvent(EMAIL, { summary: 'Session', ...WHEN })['id'] as string;
  emu.deleteEvent(EMAIL, id);
  const got = await cal.events.get({ calendarId: 'primary', eventId: id, fields: 'id,status,extendedProperties/private' });
  expect(got.data).toEqual({ id, status: 'cancelled' });
  const patched = await cal.events.patch({ calendarId: 'primary', eventId: id, sendUpdates: 'none', fields: 'id,status', requestBody: { extendedProperties: { private: { 'sk.x': 'y' } } } });
  expect(patched.data).toEqual({ id, status: 'cancelled' });
  expect(await failure(cal.events.delete({ calendarId: 'primary', eventId: id }))).toEqual({ status: 410, reason: 'deleted' });
});

test('fault dropAfter: the write takes effect and the answer is lost; drop: nothing happens', async () => {
  const { cal } = await connect();
  const id = emu.insertEvent(EMAIL, { summary: 'Session', ...WHEN })['id'] as string;
  const patch = (value: string) => cal.events.patch({ calendarId: 'primary', eventId: id, requestBody: { extendedProperties: { private: { 'sk.step': value } } } }, { retry: false });

  emu.faults.add({ match: { method: 'PATCH' }, fault: { dropAfter: true } });
  expect((await failure(patch('one'))).status).toBeUndefined();
  expect(lastPatch()).toMatchObject({ status: 0, dropped: 'after', responseBytes: 0 });
  expect((await cal.events.get({ calendarId: 'primary', eventId: id })).data.extendedProperties?.private).toEqual({ 'sk.step': 'one' });

  emu.faults.add({ match: { method: 'PATCH' }, fault: { drop: true } });
  expect((await failure(patch('two'))).status).toBeUndefined();
  expect(lastPatch()).toMatchObject({ status: 0, dropped: 'before' });
  expect((await cal.events.get({ calendarId: 'primary', eventId: id })).data.extendedProperties?.private).toEqual({ 'sk.step': 'one' });

  // The default match covers calendar requests: a dropped-after insert still made the event.
  emu.faults.add({ fault: { dropAfter: true } });
  expect((await failure(cal.events.insert({ calendarId: 'primary', requestBody: { summary: 'Made', ...WHEN } }, { retry: false }))).status).toBeUndefined();
  expect((await cal.events.list({ calendarId: 'primary', q: 'Made' })).data.items).toHaveLength(1);
});

test('the request hook: both phases of every API request (here calendar), counted from 1; drop before or after the effect', async () => {
  const { cal } = await connect({ forceRefreshOnFailure: true });
  const id = emu.insertEvent(EMAIL, { summary: 'Session', ...WHEN })['id'] as string;
  const seen: RequestHookInfo[] = [];
  emu.setRequestHook((info) => {
    seen.push(info);
  });
  emu.expireAccessTokens(SUB);
  // 401, then the client refreshes at the token endpoint (not seen by the hook) and tries again.
  await cal.events.get({ calendarId: 'primary', eventId: id });
  expect(emu.requests.slice(-3).map((r) => `${r.path === '/token' ? 'token' : r.method} ${r.status}`)).toEqual(['GET 401', 'token 200', 'GET 200']);
  const path = `/calendar/v3/calendars/primary/events/${id}`;
  expect(seen).toEqual([
    { seq: 1, method: 'GET', path, api: 'calendar', phase: 'before' },
    { seq: 1, method: 'GET', path, api: 'calendar', phase: 'after' },
    { seq: 2, method: 'GET', path, api: 'calendar', phase: 'before' },
    { seq: 2, method: 'GET', path, api: 'calendar', phase: 'after' },
  ]);

  const tag = (value: string) => cal.events.patch({ calendarId: 'primary', eventId: id, requestBody: { extendedProperties: { private: { 'sk.step': value } } } }, { retry: false });
  const read = async () => (await cal.events.get({ calendarId: 'primary', eventId: id })).data.extendedProperties?.private?.['sk.step'];

  // An async hook that drops the first request before anything happens: no effect.
  emu.setRequestHook(async (info) => {
    await new Promise((r) => setTimeout(r, 5));
    if (info.seq === 1 && info.phase === 'before') return 'drop';
  });
  expect((await failure(tag('before'))).status).toBeUndefined();
  expect(await read()).toBeUndefined();

  // Dropped after: the effect stays, the answer is lost.
  emu.setRequestHook((info) => (info.method === 'PATCH' && info.phase === 'after' ? 'drop' : undefined));
  expect((await failure(tag('after'))).status).toBeUndefined();
  expect(lastPatch()).toMatchObject({ status: 0, dropped: 'after' });
  expect(await read()).toBe('after');

  // The hook also sees requests a fault answers; with no hook, nothing is dropped.
  const phases: string[] = [];
  emu.setRequestHook((info) => {
    phases.push(`${info.seq}:${info.phase}`);
  });
  emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 503 } });
  expect((await failure(tag('x'))).status).toBe(503);
  expect(phases).toEqual(['1:before', '1:after']);
  emu.setRequestHook(null);
  await tag('last');
  expect(await read()).toBe('last');
  expect(phases).toHaveLength(2);
});
