// Conformance of the Google emulator (test/emulators/google/server.ts), driven through the real clients the
// product uses: @googleapis/calendar and google-auth-library's OAuth2Client over real HTTP, with a ManualClock.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { calendar, type calendar_v3 } from '@googleapis/calendar';
import { DateTime } from 'luxon';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { fixture, GOOGLE_REDIRECT, googleClients, type GoogleClients, googleOAuth, startGoogle } from './conformance.js';
import type { GoogleEmulator } from './google/server.js';

type Json = Record<string, unknown>;

const SUB = '111';
const EMAIL = 'therapist@example.com';
const PRIMARY = EMAIL;
const TZ = 'America/New_York';
const REDIRECT = GOOGLE_REDIRECT;
const S = (s: string): string => `https://www.googleapis.com/auth/${s}`;
const SCOPES = ['openid', 'email', S('calendar.events'), S('calendar.calendarlist.readonly')];

let clock: ManualClock;
let emu: GoogleEmulator;

beforeEach(async () => {
  clock = new ManualClock('2025-03-01T12:00:00Z');
  emu = await startGoogle({ sub: SUB, email: EMAIL, timeZone: TZ }, { clock });
});

afterEach(async () => {
  await emu.close();
});

/** The account's grant of these scopes (the primary one unless `sub` says), and the real clients on it (./conformance.ts). */
const connect = (scopes: string[] = SCOPES, opts: { sub?: string; forceRefreshOnFailure?: boolean } = {}): Promise<GoogleClients> =>
  googleClients(emu, opts.sub ?? SUB, scopes, { forceRefreshOnFailure: opts.forceRefreshOnFailure });

interface Failure {
  status: number | undefined;
  data: Json;
  headers: Headers | undefined;
  error: Error;
}

/** The rejection of a gaxios call: status, parsed body and headers of the response (if any). */
async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { response?: { status: number; data: unknown; headers: Headers } };
    return { status: err.response?.status, data: (err.response?.data ?? {}) as Json, headers: err.response?.headers, error: err };
  }
  throw new Error('expected the call to fail');
}

function errorReason(f: Failure): unknown {
  const errors = (f.data['error'] as Json | undefined)?.['errors'] as Json[] | undefined;
  return errors?.[0]?.['reason'];
}

/** The key structure of a JSON value: objects by sorted keys, arrays by the distinct shapes of their elements. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return [...new Set(v.map((x) => JSON.stringify(shape(x))))].sort().map((s) => JSON.parse(s) as unknown);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, shape((v as Json)[k])]));
  }
  return typeof v;
}

function timed(day: string, hh: number, minutes = 60, tz = TZ): { start: Json; end: Json } {
  const start = DateTime.fromISO(`${day}T${String(hh).padStart(2, '0')}:00:00`, { zone: tz });
  return {
    start: { dateTime: start.toISO({ suppressMilliseconds: true }), timeZone: tz },
    end: { dateTime: start.plus({ minutes }).toISO({ suppressMilliseconds: true }), timeZone: tz },
  };
}

function seed(n: number, calendarId = PRIMARY): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const day = DateTime.fromISO('2025-03-03').plus({ days: i % 200 }).toISODate() ?? '';
    ids.push(emu.insertEvent(calendarId, { summary: `Session ${i}`, ...timed(day, 9 + (i % 8)) })['id'] as string);
  }
  return ids;
}

/** Runs a listing to its end; returns every item and the final nextSyncToken. */
async function listAll(cal: calendar_v3.Calendar, params: calendar_v3.Params$Resource$Events$List): Promise<{ items: Json[]; syncToken: string; pages: calendar_v3.Schema$Events[] }> {
  const items: Json[] = [];
  const pages: calendar_v3.Schema$Events[] = [];
  let pageToken: string | undefined;
  for (;;) {
    const res = await cal.events.list({ ...params, ...(pageToken ? { pageToken } : {}) });
    pages.push(res.data);
    items.push(...((res.data.items ?? []) as Json[]));
    if (res.data.nextPageToken) pageToken = res.data.nextPageToken;
    else return { items, syncToken: res.data.nextSyncToken ?? '', pages };
  }
}

function decodeJwtPart(part: string | undefined): Json {
  return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Json;
}

// ---- OAuth ---------------------------------------------------------------------------------------

test('code exchange and refresh', async () => {
  const auth = googleOAuth(emu);
  const code = emu.authorize(SUB, SCOPES, REDIRECT);
  const { tokens } = await auth.getToken(code);
  expect(tokens.access_token).toMatch(/^ya29\./);
  expect(tokens.refresh_token).toBeTruthy();
  expect(tokens.token_type).toBe('Bearer');
  expect(tokens.scope?.split(' ')).toEqual(SCOPES);
  expect(tokens.expiry_date).toBeGreaterThan(Date.now() + 3500_000);
  const tokenReq = emu.requests.find((r) => r.path === '/token');
  expect(tokenReq).toMatchObject({ method: 'POST', status: 200 });
  expect(tokenReq!.bodyBytes).toBeGreaterThan(0);

  // id_token: a JWT whose payload names the account, because openid was granted.
  const [h, p, sig] = (tokens.id_token ?? '').split('.');
  expect(decodeJwtPart(h)).toMatchObject({ alg: 'RS256', typ: 'JWT' });
  const payload = decodeJwtPart(p);
  expect(payload).toMatchObject({ iss: 'https://accounts.google.com', aud: emu.clientId, sub: SUB, email: EMAIL, email_verified: true });
  expect(payload['iat']).toBe(clock.now().toSeconds());
  expect((payload['exp'] as number) - (payload['iat'] as number)).toBe(3600);
  expect(sig).toBeTruthy();

  // The code is single-use.
  const reuse = await failure(auth.getToken(code));
  expect(reuse.status).toBe(400);
  expect(reuse.data['error']).toBe('invalid_grant');

  // refresh_token grant: a new access token, no new refresh token.
  auth.setCredentials(tokens);
  const refreshed = await auth.refreshAccessToken();
  expect(refreshed.credentials.access_token).toMatch(/^ya29\./);
  expect(refreshed.credentials.access_token).not.toBe(tokens.access_token);
  expect(refreshed.credentials.refresh_token).toBe(tokens.refresh_token); // kept by the library
  // The library copies the refresh token into the result; the raw answer of the refresh grant has none.
  const raw = await fetch(emu.tokenUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '', client_id: emu.clientId, client_secret: emu.clientSecret }),
  });
  const rawBody = (await raw.json()) as Json;
  expect(Object.keys(rawBody).sort()).toEqual(['access_token', 'expires_in', 'id_token', 'scope', 'token_type']);
  expect(rawBody['expires_in']).toBe(3599);
  const cal = calendar({ version: 'v3', auth, rootUrl: emu.url });
  expect((await cal.calendarList.list()).status).toBe(200);

  // Without openid: no id_token.
  const plain = await googleOAuth(emu).getToken(emu.authorize(SUB, [S('calendar.events')], REDIRECT));
  expect(plain.tokens.id_token).toBeUndefined();

  // Wrong client secret → 401 invalid_client; wrong redirect_uri → 400.
  const badClient = await failure(googleOAuth(emu, { clientSecret: 'nope' }).getToken(emu.authorize(SUB, SCOPES, REDIRECT)));
  expect(badClient.status).toBe(401);
  expect(badClient.data['error']).toBe('invalid_client');
  const mismatch = await failure(auth.getToken({ code: emu.authorize(SUB, SCOPES, 'http://elsewhere/cb'), redirect_uri: REDIRECT }));
  expect(mismatch.status).toBe(400);
  expect(mismatch.data['error']).toBe('redirect_uri_mismatch');
});

test('expired access token answers 401, then works once refreshed', async () => {
  const { auth, cal } = await connect();
  expect((await cal.events.list({ calendarId: 'primary' })).status).toBe(200);

  // Access tokens live 3600 s by the emulator's clock (the library's own expiry_date uses the real clock).
  clock.advance({ minutes: 61 });
  const expired = await failure(cal.events.list({ calendarId: 'primary' }, { retry: false }));
  expect(expired.status).toBe(401);
  expect(expired.data).toEqual({
    error: {
      code: 401,
      message: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      errors: [{ message: 'Invalid Credentials', domain: 'global', reason: 'authError', location: 'Authorization', locationType: 'header' }],
      status: 'UNAUTHENTICATED',
    },
  });
  await auth.refreshAccessToken();
  expect((await cal.events.list({ calendarId: 'primary' })).status).toBe(200);

  // expireAccessTokens(): a client with forceRefreshOnFailure sees the 401, refreshes and retries by itself.
  const forced = googleOAuth(emu, { forceRefreshOnFailure: true });
  forced.setCredentials(auth.credentials);
  const cal2 = calendar({ version: 'v3', auth: forced, rootUrl: emu.url });
  emu.expireAccessTokens(SUB);
  const before = emu.requests.length;
  expect((await cal2.events.list({ calendarId: 'primary' })).status).toBe(200);
  expect(emu.requests.slice(before).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
    'GET /calendar/v3/calendars/primary/events 401',
    'POST /token 200',
    'GET /calendar/v3/calendars/primary/events 200',
  ]);
});

test('invalid_grant after revokeAll; revoke endpoint', async () => {
  const { auth, cal } = await connect();
  emu.revokeAll(SUB);
  const f = await failure(auth.refreshAccessToken());
  expect(f.status).toBe(400);
  expect(f.data).toEqual({ error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
  expect((await failure(cal.events.list({ calendarId: 'primary' }, { retry: false }))).status).toBe(401);

  // The revoke endpoint (POST ?token=…) ends a grant: 200, then its refresh token is invalid_grant.
  const second = await connect();
  const revoked = await second.auth.revokeToken(second.auth.credentials.refresh_token ?? '');
  expect(revoked.status).toBe(200);
  expect(emu.requests.at(-1)).toMatchObject({ method: 'POST', path: '/revoke', status: 200 });
  expect(emu.requests.at(-1)?.query['token']).toBe(second.auth.credentials.refresh_token);
  expect((await failure(second.auth.refreshAccessToken())).data['error']).toBe('invalid_grant');
});

test('scopes are checked per method as in the discovery document (403 insufficientPermissions)', async () => {
  const { cal } = await connect([S('calendar.events')]);
  const f = await failure(cal.calendarList.list({}, { retry: false }));
  expect(f.status).toBe(403);
  expect(errorReason(f)).toBe('insufficientPermissions');
  expect((f.data['error'] as Json)['status']).toBe('PERMISSION_DENIED');
  expect((await cal.events.list({ calendarId: 'primary' })).status).toBe(200);

  const ro = await connect([S('calendar.events.readonly')]);
  const w = await failure(ro.cal.events.insert({ calendarId: 'primary', requestBody: { summary: 'x', ...timed('2025-03-03', 9) } }, { retry: false }));
  expect(w.status).toBe(403);
  expect(errorReason(w)).toBe('insufficientPermissions');
});

// ---- calendar list ---------------------------------------------------------------------------------

test('calendarList.list pages with pageToken/maxResults', async () => {
  emu.addCalendar(SUB, { id: 'practice@group.calendar.google.com', summary: 'Practice', timeZone: TZ, backgroundColor: '#0088aa' });
  emu.addCalendar(SUB, { id: 'holidays@group.v.calendar.google.com', summary: 'Holidays', timeZone: TZ, accessRole: 'reader' });
  const { cal } = await connect();
  const p1 = await cal.calendarList.list({ maxResults: 2 });
  expect(p1.data.items).toHaveLength(2);
  expect(p1.data.nextPageToken).toBeTruthy();
  const p2 = await cal.calendarList.list({ maxResults: 2, pageToken: p1.data.nextPageToken ?? '' });
  expect(p2.data.items).toHaveLength(1);
  expect(p2.data.nextPageToken).toBeUndefined();
  const [primary, practice] = p1.data.items ?? [];
  expect(primary).toEqual({
    kind: 'calendar#calendarListEntry',
    etag: expect.any(String),
    id: PRIMARY,
    summary: EMAIL,
    timeZone: TZ,
    backgroundColor: '#9fe1e7',
    accessRole: 'owner',
    primary: true,
  });
  expect(practice).toMatchObject({ id: 'practice@group.calendar.google.com', backgroundColor: '#0088aa', accessRole: 'owner' });
  expect(practice).not.toHaveProperty('primary');
  expect(p2.data.items?.[0]).toMatchObject({ accessRole: 'reader' });
  const owners = await cal.calendarList.list({ minAccessRole: 'owner' });
  expect(owners.data.items?.map((i) => i.id)).toEqual([PRIMARY, 'practice@group.calendar.google.com']);
});

// ---- events.list paging and sync tokens --------------------------------------------------------------

test('600 events with maxResults 250: 3 pages, nextSyncToken only on the last', async () => {
  seed(600);
  const { cal } = await connect();
  const { items, pages, syncToken } = await listAll(cal, { calendarId: 'primary', maxResults: 250 });
  expect(pages.map((p) => p.items?.length)).toEqual([250, 250, 100]);
  expect(pages.map((p) => Boolean(p.nextPageToken))).toEqual([true, true, false]);
  expect(pages.map((p) => Boolean(p.nextSyncToken))).toEqual([false, false, true]);
  expect(syncToken).toBeTruthy();
  expect(new Set(items.map((i) => i['id'])).size).toBe(600);
  expect(pages[0]).toMatchObject({ kind: 'calendar#events', summary: EMAIL, timeZone: TZ, accessRole: 'owner', defaultReminders: [] });
});

test('maxResults 5000 is capped at 2500; default page size is 250', async () => {
  seed(2600);
  const { cal } = await connect();
  const big = await cal.events.list({ calendarId: 'primary', maxResults: 5000 });
  expect(big.data.items).toHaveLength(2500);
  expect(big.data.nextPageToken).toBeTruthy();
  const rest = await cal.events.list({ calendarId: 'primary', maxResults: 5000, pageToken: big.data.nextPageToken ?? '' });
  expect(rest.data.items).toHaveLength(100);
  expect(rest.data.nextSyncToken).toBeTruthy();
  expect((await cal.events.list({ calendarId: 'primary' })).data.items).toHaveLength(250);
});

test('syncToken with timeMin (or any other forbidden parameter) answers 400', async () => {
  seed(3);
  const { cal } = await connect();
  const { syncToken } = await listAll(cal, { calendarId: 'primary' });
  const forbidden: calendar_v3.Params$Resource$Events$List[] = [
    { timeMin: '2025-03-01T00:00:00Z' },
    { timeMax: '2025-04-01T00:00:00Z' },
    { updatedMin: '2025-03-01T00:00:00Z' },
    { q: 'Session' },
    { orderBy: 'updated' },
    { iCalUID: 'x@google.com' },
    { privateExtendedProperty: ['a=b'] },
    { sharedExtendedProperty: ['a=b'] },
  ];
  for (const extra of forbidden) {
    const f = await failure(cal.events.list({ calendarId: 'primary', syncToken, ...extra }, { retry: false }));
    expect(f.status, JSON.stringify(extra)).toBe(400);
    expect(errorReason(f)).toBe('invalid');
  }
  expect((await cal.events.list({ calendarId: 'primary', syncToken })).status).toBe(200);
});

test('a pageToken reused with different parameters answers 400', async () => {
  seed(5);
  const { cal } = await connect();
  const p1 = await cal.events.list({ calendarId: 'primary', maxResults: 2, singleEvents: true });
  const pageToken = p1.data.nextPageToken ?? '';
  const f = await failure(cal.events.list({ calendarId: 'primary', maxResults: 2, pageToken, showDeleted: true }, { retry: false }));
  expect(f.status).toBe(400);
  expect(errorReason(f)).toBe('invalid');
  const ok = await cal.events.list({ calendarId: 'primary', maxResults: 2, pageToken, singleEvents: true });
  expect(ok.data.items).toHaveLength(2);
});

test('pages of one listing are a snapshot: changes during paging come with the next incremental sync', async () => {
  const ids = seed(10);
  const { cal } = await connect();
  const p1 = await cal.events.list({ calendarId: 'primary', maxResults: 4 });
  const added = emu.insertEvent(PRIMARY, { summary: 'Booked meanwhile', ...timed('2025-03-20', 10) });
  emu.deleteEvent(PRIMARY, ids[9]!);
  const rest = await listAll(cal, { calendarId: 'primary', maxResults: 4, pageToken: p1.data.nextPageToken ?? '' });
  const seen = [...(p1.data.items ?? []).map((i) => i.id), ...rest.items.map((i) => i['id'])];
  expect(seen).toEqual(ids);
  const inc = await cal.events.list({ calendarId: 'primary', syncToken: rest.syncToken });
  expect(inc.data.items?.map((i) => [i.id, i.status])).toEqual([
    [added['id'], 'confirmed'],
    [ids[9], 'cancelled'],
  ]);
});

test('incremental sync after an edit returns only that event', async () => {
  const ids = seed(5);
  const { cal } = await connect();
  const full = await listAll(cal, { calendarId: 'primary', singleEvents: true });
  const before = full.items.find((i) => i['id'] === ids[2])!;
  clock.advance({ minutes: 5 });
  emu.patchEvent(PRIMARY, ids[2]!, { summary: 'Moved by the therapist' });
  const inc = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: full.syncToken });
  expect(inc.data.items).toHaveLength(1);
  const e = inc.data.items![0]!;
  expect(e).toMatchObject({ id: ids[2], summary: 'Moved by the therapist', updated: '2025-03-01T12:05:00.000Z' });
  expect(e.etag).not.toBe(before['etag']);
  expect(inc.data.nextSyncToken).toBeTruthy();
  expect(inc.data.nextPageToken).toBeUndefined();
  // Nothing changed since: an empty page with a fresh token.
  const again = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: inc.data.nextSyncToken ?? '' });
  expect(again.data.items).toEqual([]);
  expect(again.data.nextSyncToken).toBeTruthy();
});

test('deleted events come in incremental results without showDeleted, with only the guaranteed fields', async () => {
  const ids = seed(4);
  const { cal } = await connect();
  const full = await listAll(cal, { calendarId: 'primary' });
  emu.deleteEvent(PRIMARY, ids[0]!);
  const del = await cal.events.delete({ calendarId: 'primary', eventId: ids[1]! });
  expect(del.status).toBe(204);
  const inc = await cal.events.list({ calendarId: 'primary', syncToken: full.syncToken });
  const items = (inc.data.items ?? []) as Json[];
  expect(items.map((i) => i['id'])).toEqual([ids[0], ids[1]]);
  const ref = fixture('google', 'deleted-event-tombstone.json');
  for (const t of items) {
    expect(shape(t)).toEqual(shape(ref));
    expect(t).toMatchObject({ kind: 'calendar#event', status: 'cancelled' });
  }
  // The page has the keys of the captured incremental page (google-examples.md C1).
  expect(Object.keys(inc.data).sort()).toEqual(Object.keys(fixture('google', 'incremental-sync-page.json')).sort());
  // A full listing omits cancelled events unless showDeleted.
  expect((await listAll(cal, { calendarId: 'primary' })).items).toHaveLength(2);
  expect((await listAll(cal, { calendarId: 'primary', showDeleted: true })).items).toHaveLength(4);
  // events.get still returns a deleted event; deleting it again is 410.
  expect((await cal.events.get({ calendarId: 'primary', eventId: ids[1]! })).data.status).toBe('cancelled');
  expect((await failure(cal.events.delete({ calendarId: 'primary', eventId: ids[1]! }, { retry: false }))).status).toBe(410);
});

test('an expired sync token answers 410 fullSyncRequired', async () => {
  seed(2);
  const { cal } = await connect();
  const full = await listAll(cal, { calendarId: 'primary' });
  emu.expireSyncTokens(PRIMARY);
  const f = await failure(cal.events.list({ calendarId: 'primary', syncToken: full.syncToken }, { retry: false }));
  expect(f.status).toBe(410);
  expect(f.data).toEqual({
    error: {
      code: 410,
      message: 'Sync token is no longer valid, a full sync is required.',
      errors: [{ domain: 'global', reason: 'fullSyncRequired', message: 'Sync token is no longer valid, a full sync is required.' }],
      status: 'GONE',
    },
  });
  const again = await listAll(cal, { calendarId: 'primary' });
  expect(again.items).toHaveLength(2);
  expect((await cal.events.list({ calendarId: 'primary', syncToken: again.syncToken })).status).toBe(200);
});

// ---- recurrence -------------------------------------------------------------------------------------

test('a weekly series across the US DST change keeps 18:00 local', async () => {
  const { cal } = await connect();
  const master = await cal.events.insert({
    calendarId: 'primary',
    requestBody: {
      summary: 'Group therapy',
      start: { dateTime: '2025-03-04T18:00:00', timeZone: TZ },
      end: { dateTime: '2025-03-04T19:00:00', timeZone: TZ },
      recurrence: ['RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=6'],
    },
  });
  const id = master.data.id ?? '';
  const { items } = await listAll(cal, { calendarId: 'primary', singleEvents: true, orderBy: 'startTime' });
  expect(items.map((i) => (i['start'] as Json)['dateTime'])).toEqual([
    '2025-03-04T18:00:00-05:00',
    '2025-03-06T18:00:00-05:00',
    '2025-03-11T18:00:00-04:00',
    '2025-03-13T18:00:00-04:00',
    '2025-03-18T18:00:00-04:00',
    '2025-03-20T18:00:00-04:00',
  ]);
  expect(items.map((i) => i['id'])).toEqual(
    ['20250304T230000Z', '20250306T230000Z', '20250311T220000Z', '20250313T220000Z', '20250318T220000Z', '20250320T220000Z'].map((k) => `${id}_${k}`),
  );
  for (const i of items) {
    expect(i).toMatchObject({ recurringEventId: id, iCalUID: master.data.iCalUID, originalStartTime: i['start'] });
    expect(i).not.toHaveProperty('recurrence');
    expect((i['end'] as Json)['dateTime']).toMatch(/T19:00:00-0[45]:00$/);
  }
  // singleEvents=false: the master itself.
  const masters = await listAll(cal, { calendarId: 'primary' });
  expect(masters.items.map((i) => i['id'])).toEqual([id]);
  expect(masters.items[0]!['recurrence']).toEqual(['RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=6']);
  // events.instances agrees.
  const inst = await cal.events.instances({ calendarId: 'primary', eventId: id });
  expect(inst.data.items?.map((i) => i.id)).toEqual(items.map((i) => i['id']));
  // A recurring event needs start.timeZone.
  const noTz = await failure(
    cal.events.insert(
      { calendarId: 'primary', requestBody: { start: { dateTime: '2025-03-04T18:00:00-05:00' }, end: { dateTime: '2025-03-04T19:00:00-05:00' }, recurrence: ['RRULE:FREQ=DAILY'] } },
      { retry: false },
    ),
  );
  expect(noTz.status).toBe(400);
});

test('DAILY/MONTHLY rules, INTERVAL, UNTIL and EXDATE expand as RFC 5545 says', async () => {
  const { auth, cal } = await connect();
  const mk = async (recurrence: string[], day = '2025-03-03'): Promise<string[]> => {
    const ev = emu.insertEvent(PRIMARY, { summary: recurrence.join(' '), ...timed(day, 10), recurrence });
    const r = await cal.events.instances({ calendarId: 'primary', eventId: ev['id'] as string, maxResults: 50 });
    return (r.data.items ?? []).map((i) => (i.start?.dateTime ?? '').slice(0, 10));
  };
  expect(await mk(['RRULE:FREQ=DAILY;INTERVAL=2;COUNT=4'])).toEqual(['2025-03-03', '2025-03-05', '2025-03-07', '2025-03-09']);
  expect(await mk(['RRULE:FREQ=DAILY;UNTIL=20250306T150000Z'])).toEqual(['2025-03-03', '2025-03-04', '2025-03-05', '2025-03-06']);
  expect(await mk(['RRULE:FREQ=WEEKLY;COUNT=3', 'EXDATE;TZID=America/New_York:20250310T100000'])).toEqual(['2025-03-03', '2025-03-17']);
  expect(await mk(['RRULE:FREQ=MONTHLY;BYMONTHDAY=31;COUNT=3'], '2025-01-31')).toEqual(['2025-01-31', '2025-03-31', '2025-05-31']);
  expect(await mk(['RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;COUNT=4'])).toEqual(['2025-03-03', '2025-03-07', '2025-03-17', '2025-03-21']);
  // Unbounded series are expanded up to one year after the clock's now.
  const open = await mk(['RRULE:FREQ=MONTHLY;BYMONTHDAY=3']);
  expect(open[0]).toBe('2025-03-03');
  expect(open.at(-1)).toBe('2026-02-03'); // now is 2025-03-01T12:00Z: the window ends 2026-03-01T12:00Z
  clock.advance({ days: 31 });
  await auth.refreshAccessToken(); // the access token expired meanwhile
  expect((await mk(['RRULE:FREQ=MONTHLY;BYMONTHDAY=3'])).at(-1)).toBe('2026-03-03');
});

test('a cancelled instance appears as a cancelled-instance tombstone', async () => {
  const CHI = 'America/Chicago';
  const master = emu.insertEvent(PRIMARY, {
    summary: 'Breakfast',
    start: { dateTime: '2025-03-03T08:00:00', timeZone: CHI },
    end: { dateTime: '2025-03-03T09:00:00', timeZone: CHI },
    recurrence: ['RRULE:FREQ=DAILY;COUNT=10'],
  });
  const id = master['id'] as string;
  // The emulator's master has the keys of the captured master (google-examples.md C1, first item).
  expect(shape(master)).toEqual(shape((fixture('google', 'incremental-sync-page.json')['items'] as Json[])[0]));
  const { cal } = await connect();
  const single = await listAll(cal, { calendarId: 'primary', singleEvents: true });
  const grouped = await listAll(cal, { calendarId: 'primary' });
  expect(single.items).toHaveLength(10);

  emu.deleteEvent(PRIMARY, `${id}_20250305T140000Z`);
  const inc = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: single.syncToken });
  expect(inc.data.items).toHaveLength(1);
  const t = inc.data.items![0] as Json;
  expect(shape(t)).toEqual(shape(fixture('google', 'cancelled-instance-tombstone.json')));
  expect(t).toMatchObject({
    id: `${id}_20250305T140000Z`,
    status: 'cancelled',
    recurringEventId: id,
    originalStartTime: { dateTime: '2025-03-05T08:00:00-06:00', timeZone: CHI },
  });
  // singleEvents=false: the (touched) master plus the tombstone, as in the captured response C1.
  const incGrouped = await cal.events.list({ calendarId: 'primary', syncToken: grouped.syncToken });
  expect(incGrouped.data.items?.map((i) => [i.id, i.status])).toEqual([
    [`${id}_20250305T140000Z`, 'cancelled'],
    [id, 'confirmed'],
  ]);
  // Full listings: omitted without showDeleted, a tombstone with it.
  expect((await listAll(cal, { calendarId: 'primary', singleEvents: true })).items).toHaveLength(9);
  const withDeleted = await listAll(cal, { calendarId: 'primary', singleEvents: true, showDeleted: true });
  expect(withDeleted.items.filter((i) => i['status'] === 'cancelled').map((i) => i['id'])).toEqual([`${id}_20250305T140000Z`]);
  // Cancelling an instance over the API works the same way.
  expect((await cal.events.delete({ calendarId: 'primary', eventId: `${id}_20250306T140000Z` })).status).toBe(204);
  const inc2 = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: inc.data.nextSyncToken ?? '' });
  expect(inc2.data.items?.map((i) => [i.id, i.status])).toEqual([[`${id}_20250306T140000Z`, 'cancelled']]);
});

test('singleEvents=false returns the master and its exceptions; an exception replaces its instance', async () => {
  const master = emu.insertEvent(PRIMARY, { summary: 'Weekly', ...timed('2025-03-04', 18), recurrence: ['RRULE:FREQ=WEEKLY;COUNT=4'] });
  const id = master['id'] as string;
  const { cal } = await connect();
  const instanceId = `${id}_20250311T220000Z`;
  const patched = await cal.events.patch({
    calendarId: 'primary',
    eventId: instanceId,
    requestBody: { summary: 'Moved one', start: { dateTime: '2025-03-12T18:00:00', timeZone: TZ }, end: { dateTime: '2025-03-12T19:00:00', timeZone: TZ } },
  });
  expect(patched.data).toMatchObject({ id: instanceId, recurringEventId: id, originalStartTime: { dateTime: '2025-03-11T18:00:00-04:00', timeZone: TZ } });
  const grouped = await listAll(cal, { calendarId: 'primary' });
  expect(grouped.items.map((i) => i['id']).sort()).toEqual([id, instanceId]);
  const single = await listAll(cal, { calendarId: 'primary', singleEvents: true, orderBy: 'startTime' });
  expect(single.items.map((i) => [i['summary'], (i['start'] as Json)['dateTime']])).toEqual([
    ['Weekly', '2025-03-04T18:00:00-05:00'],
    ['Moved one', '2025-03-12T18:00:00-04:00'],
    ['Weekly', '2025-03-18T18:00:00-04:00'],
    ['Weekly', '2025-03-25T18:00:00-04:00'],
  ]);
  // Changing the master marks all its instances changed.
  emu.patchEvent(PRIMARY, id, { location: 'Room 2' });
  const inc = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: single.syncToken });
  expect(inc.data.items).toHaveLength(4);
  expect(inc.data.items?.filter((i) => i.location === 'Room 2')).toHaveLength(3);
});

test('a "this and following" UNTIL patch yields cancelled instances in the next incremental sync', async () => {
  const CHI = 'America/Chicago';
  const { cal } = await connect();
  const master = await cal.events.insert({
    calendarId: 'primary',
    requestBody: {
      summary: 'Breakfast',
      start: { dateTime: '2025-03-03T08:00:00', timeZone: CHI },
      end: { dateTime: '2025-03-03T09:00:00', timeZone: CHI },
      recurrence: ['RRULE:FREQ=DAILY'],
    },
  });
  const id = master.data.id ?? '';
  const single = await listAll(cal, { calendarId: 'primary', singleEvents: true, maxResults: 2500 });
  const grouped = await listAll(cal, { calendarId: 'primary' });
  const before = single.items.length;
  expect(before).toBeGreaterThan(360); // unbounded: expanded for a year after now

  await cal.events.patch({ calendarId: 'primary', eventId: id, requestBody: { recurrence: ['RRULE:FREQ=DAILY;UNTIL=20250306T045959Z'] } });
  const inc = await listAll(cal, { calendarId: 'primary', singleEvents: true, syncToken: single.syncToken, maxResults: 2500 });
  const kept = inc.items.filter((i) => i['status'] !== 'cancelled');
  const gone = inc.items.filter((i) => i['status'] === 'cancelled');
  expect(kept.map((i) => i['id'])).toEqual([`${id}_20250303T140000Z`, `${id}_20250304T140000Z`, `${id}_20250305T140000Z`]);
  expect(gone).toHaveLength(before - 3);
  expect(gone[0]).toEqual({
    kind: 'calendar#event',
    etag: expect.any(String),
    id: `${id}_20250306T140000Z`,
    status: 'cancelled',
    recurringEventId: id,
    originalStartTime: { dateTime: '2025-03-06T08:00:00-06:00', timeZone: CHI },
  });
  for (const g of gone) expect(shape(g)).toEqual(shape(fixture('google', 'cancelled-instance-tombstone.json')));
  expect((await listAll(cal, { calendarId: 'primary', singleEvents: true })).items).toHaveLength(3);
  // singleEvents=false: the master with its new RRULE (google-examples.md C3).
  const incGrouped = await cal.events.list({ calendarId: 'primary', syncToken: grouped.syncToken });
  expect(incGrouped.data.items?.map((i) => [i.id, i.recurrence])).toEqual([[id, ['RRULE:FREQ=DAILY;UNTIL=20250306T045959Z']]]);
});

test('an EXDATE added to a master, then the recurrence removed, show up as cancelled instances', async () => {
  const master = emu.insertEvent(PRIMARY, { summary: 'Weekly', ...timed('2025-03-04', 18), recurrence: ['RRULE:FREQ=WEEKLY;COUNT=3'] });
  const id = master['id'] as string;
  const { cal } = await connect();
  const full = await listAll(cal, { calendarId: 'primary', singleEvents: true });
  expect(full.items).toHaveLength(3);
  emu.patchEvent(PRIMARY, id, { recurrence: ['RRULE:FREQ=WEEKLY;COUNT=3', 'EXDATE;TZID=America/New_York:20250311T180000'] });
  const inc = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: full.syncToken });
  const byId = (x: calendar_v3.Schema$Event[] | undefined): string[][] => (x ?? []).map((i) => [i.id ?? '', i.status ?? '']).sort();
  expect(byId(inc.data.items)).toEqual([
    [`${id}_20250304T230000Z`, 'confirmed'],
    [`${id}_20250311T220000Z`, 'cancelled'],
    [`${id}_20250318T220000Z`, 'confirmed'],
  ]);
  // The series becomes a single event: its remaining instances are cancelled, the event itself comes back.
  emu.patchEvent(PRIMARY, id, { recurrence: null });
  const inc2 = await cal.events.list({ calendarId: 'primary', singleEvents: true, syncToken: inc.data.nextSyncToken ?? '' });
  expect(byId(inc2.data.items)).toEqual([
    [id, 'confirmed'],
    [`${id}_20250304T230000Z`, 'cancelled'],
    [`${id}_20250318T220000Z`, 'cancelled'],
  ]);
});

test('moveEvent leaves a cancelled item on the source calendar', async () => {
  const PRACTICE = 'practice@group.calendar.google.com';
  emu.addCalendar(SUB, { id: PRACTICE, summary: 'Practice', timeZone: TZ });
  const [a, b] = seed(2);
  const { cal } = await connect();
  const src = await listAll(cal, { calendarId: 'primary' });
  const dst = await listAll(cal, { calendarId: PRACTICE });
  const moved = emu.moveEvent(PRIMARY, a!, PRACTICE);
  expect(moved).toMatchObject({ id: a, organizer: { email: PRACTICE, displayName: 'Practice', self: true } });
  const viaApi = await cal.events.move({ calendarId: 'primary', eventId: b!, destination: PRACTICE });
  expect(viaApi.data.id).toBe(b);

  const incSrc = await cal.events.list({ calendarId: 'primary', syncToken: src.syncToken });
  expect(incSrc.data.items).toEqual([
    { kind: 'calendar#event', etag: expect.any(String), id: a, status: 'cancelled' },
    { kind: 'calendar#event', etag: expect.any(String), id: b, status: 'cancelled' },
  ]);
  const incDst = await cal.events.list({ calendarId: PRACTICE, syncToken: dst.syncToken });
  expect(incDst.data.items?.map((i) => [i.id, i.status])).toEqual([
    [a, 'confirmed'],
    [b, 'confirmed'],
  ]);
});

// ---- writes over HTTP -------------------------------------------------------------------------------

test('events insert/get/patch/update/delete over HTTP', async () => {
  const { cal } = await connect();
  const id = 'sk0session00001';
  const ins = await cal.events.insert({
    calendarId: 'primary',
    sendUpdates: 'none',
    conferenceDataVersion: 1,
    requestBody: {
      id,
      summary: 'Session with A.',
      ...timed('2025-03-05', 17),
      attendees: [{ email: 'client@example.org', displayName: 'Alice Example' }, { email: EMAIL }],
      extendedProperties: { private: { sk: 'session', client: 'c1' }, shared: { kind: 'therapy' } },
      colorId: '5',
      conferenceData: { createRequest: { requestId: 'req-1', conferenceSolutionKey: { type: 'hangoutsMeet' } } },
    },
  });
  const e = ins.data;
  expect(e).toMatchObject({
    kind: 'calendar#event',
    id,
    status: 'confirmed',
    iCalUID: `${id}@google.com`,
    sequence: 0,
    created: '2025-03-01T12:00:00.000Z',
    updated: '2025-03-01T12:00:00.000Z',
    colorId: '5',
    organizer: { email: EMAIL, self: true },
    creator: { email: EMAIL, self: true },
    start: { dateTime: '2025-03-05T17:00:00-05:00', timeZone: TZ },
    extendedProperties: { private: { sk: 'session', client: 'c1' }, shared: { kind: 'therapy' } },
  });
  expect(e.htmlLink).toMatch(/^https:\/\/www\.google\.com\/calendar\/event\?eid=/);
  expect(e.etag).toMatch(/^"\d+"$/);
  expect(e.hangoutLink).toMatch(/^https:\/\/meet\.google\.com\/[a-z]{3}-[a-z]{4}-[a-z]{3}$/);
  expect(e.conferenceData?.entryPoints?.[0]?.uri).toBe(e.hangoutLink);
  expect(e.attendees).toEqual([
    { email: 'client@example.org', displayName: 'Alice Example', responseStatus: 'needsAction' },
    { email: EMAIL, organizer: true, self: true, responseStatus: 'needsAction' },
  ]);

  // Client-chosen ids: base32hex, unique per calendar.
  const dup = await failure(cal.events.insert({ calendarId: 'primary', requestBody: { id, ...timed('2025-03-05', 9) } }, { retry: false }));
  expect(dup.status).toBe(409);
  expect(dup.data).toEqual({
    error: {
      code: 409,
      message: 'The requested identifier already exists.',
      errors: [{ domain: 'global', reason: 'duplicate', message: 'The requested identifier already exists.' }],
    },
  });
  const badId = await failure(cal.events.insert({ calendarId: 'primary', requestBody: { id: 'Not_Base32!', ...timed('2025-03-05', 9) } }, { retry: false }));
  expect(badId.status).toBe(400);

  // patch: merges, changes etag and updated (from the clock), keeps the rest.
  clock.advance({ minutes: 1 });
  const p = await cal.events.patch({
    calendarId: 'primary',
    eventId: id,
    sendUpdates: 'all',
    requestBody: { extendedProperties: { private: { reminderSent: '1' } }, attendees: [{ email: 'client@example.org', responseStatus: 'accepted' }] },
  });
  expect(p.data.etag).not.toBe(e.etag);
  expect(p.data.updated).toBe('2025-03-01T12:01:00.000Z');
  expect(p.data.summary).toBe('Session with A.');
  expect(p.data.extendedProperties?.private).toEqual({ sk: 'session', client: 'c1', reminderSent: '1' });
  expect(p.data.attendees).toEqual([{ email: 'client@example.org', responseStatus: 'accepted' }]);
  expect(p.data.sequence).toBe(0);
  const found = await cal.events.list({ calendarId: 'primary', privateExtendedProperty: ['sk=session', 'reminderSent=1'] });
  expect(found.data.items?.map((i) => i.id)).toEqual([id]);
  expect((await cal.events.list({ calendarId: 'primary', sharedExtendedProperty: ['kind=other'] })).data.items).toEqual([]);
  expect((await cal.events.list({ calendarId: 'primary', q: 'alice' })).data.items).toHaveLength(0); // the patch replaced the attendees
  expect((await cal.events.list({ calendarId: 'primary', q: 'session' })).data.items).toHaveLength(1);

  // update: replaces the writable fields; a time change bumps sequence.
  const u = await cal.events.update({ calendarId: 'primary', eventId: id, requestBody: { summary: 'Rescheduled', ...timed('2025-03-06', 17) } });
  expect(u.data).toMatchObject({ summary: 'Rescheduled', sequence: 1, id, created: '2025-03-01T12:00:00.000Z' });
  expect(u.data.extendedProperties).toBeUndefined();
  expect((await cal.events.get({ calendarId: 'primary', eventId: id })).data).toEqual(u.data);

  // Errors: unknown event / calendar → 404 notFound; end before start → 400.
  const missing = await failure(cal.events.get({ calendarId: 'primary', eventId: 'nosuchevent' }, { retry: false }));
  expect(missing.status).toBe(404);
  expect(errorReason(missing)).toBe('notFound');
  const noCal = await failure(cal.events.list({ calendarId: 'nobody@example.com' }, { retry: false }));
  expect(noCal.status).toBe(404);
  expect(errorReason(noCal)).toBe('notFound');
  const backwards = await failure(
    cal.events.insert({ calendarId: 'primary', requestBody: { start: { dateTime: '2025-03-05T10:00:00Z' }, end: { dateTime: '2025-03-05T09:00:00Z' } } }, { retry: false }),
  );
  expect(backwards.status).toBe(400);

  expect((await cal.events.delete({ calendarId: 'primary', eventId: id, sendUpdates: 'all' })).status).toBe(204);
});

test('events from the reference have exactly the keys of the fixtures (attendees; all-day recurring master)', async () => {
  // google-examples.md D1: an event with attendees and responseStatus, on Konqui's calendar.
  emu.addAccount({ sub: '333', email: 'konqui@kde.test' });
  emu.addCalendar('333', { id: 'konqui@kde.test', summary: 'Konqui', timeZone: 'Europe/Prague', primary: true });
  const d1 = fixture('google', 'event-with-attendees.json');
  const readOnly = ['kind', 'etag', 'id', 'created', 'updated', 'htmlLink', 'iCalUID', 'sequence'];
  const body1 = Object.fromEntries(Object.entries(d1).filter(([k]) => !readOnly.includes(k)));
  const e1 = emu.insertEvent('konqui@kde.test', body1);
  expect(shape(e1)).toEqual(shape(d1));
  const konqui = await connect(SCOPES, { sub: '333' });
  const got = await konqui.cal.events.get({ calendarId: 'primary', eventId: e1['id'] as string });
  expect(shape(got.data)).toEqual(shape(d1));
  expect(got.data.attendees?.map((a) => a.responseStatus)).toEqual(['needsAction', 'needsAction']);

  // google-examples.md D2: an all-day yearly master where the attendee is `self`.
  emu.addAccount({ sub: '222', email: 'hacker1@kde.test' });
  emu.addCalendar('222', { id: 'hacker1@kde.test', summary: 'KDE', timeZone: 'Europe/Prague', primary: true });
  const d2 = fixture('google', 'recurring-all-day-master.json');
  const body2 = Object.fromEntries(Object.entries(d2).filter(([k]) => !readOnly.includes(k)));
  body2['creator'] = { displayName: 'KDE Hacker 1', email: 'hacker1@kde.test' };
  const e2 = emu.insertEvent('hacker1@kde.test', body2);
  expect(shape(e2)).toEqual(shape(d2));
  expect(e2['attendees']).toEqual([{ id: '1029384756', email: 'hacker1@kde.test', displayName: 'KDE Hacker 1', self: true, responseStatus: 'needsAction' }]);
  const hacker = await connect(SCOPES, { sub: '222' });
  const inst = await listAll(hacker.cal, { calendarId: 'primary', singleEvents: true });
  expect(inst.items.map((i) => i['start'])).toEqual(['2018', '2019', '2020', '2021', '2022', '2023', '2024', '2025'].map((y) => ({ date: `${y}-04-20` })));
  expect(inst.items[0]).toMatchObject({ id: `${e2['id'] as string}_20180420`, originalStartTime: { date: '2018-04-20' }, end: { date: '2018-04-23' } });
});

test('writes need owner or writer access (403 requiredAccessLevel); freeBusyReader sees only times', async () => {
  const SHARED = 'colleague@example.com';
  emu.addAccount({ sub: '444', email: SHARED });
  emu.addCalendar('444', { id: SHARED, summary: SHARED, timeZone: TZ, primary: true });
  emu.insertEvent(SHARED, { summary: 'Private matter', description: 'details', ...timed('2025-03-05', 10) });
  emu.addCalendar(SUB, { id: SHARED, summary: SHARED, timeZone: TZ, accessRole: 'freeBusyReader' });
  const { cal } = await connect();
  const f = await failure(cal.events.insert({ calendarId: SHARED, requestBody: { summary: 'x', ...timed('2025-03-05', 12) } }, { retry: false }));
  expect(f.status).toBe(403);
  expect(errorReason(f)).toBe('requiredAccessLevel');
  const listed = await cal.events.list({ calendarId: SHARED });
  expect(listed.data.accessRole).toBe('freeBusyReader');
  expect(Object.keys(listed.data.items?.[0] ?? {}).sort()).toEqual(['end', 'etag', 'eventType', 'id', 'kind', 'start', 'status']);
});

test('freebusy.query merges busy intervals, skipping transparent, cancelled and declined events', async () => {
  emu.insertEvent(PRIMARY, { summary: 'a', ...timed('2025-03-05', 9, 60) });
  emu.insertEvent(PRIMARY, { summary: 'b', ...timed('2025-03-05', 9, 90) });
  emu.insertEvent(PRIMARY, { summary: 'free', transparency: 'transparent', ...timed('2025-03-05', 12) });
  const gone = emu.insertEvent(PRIMARY, { summary: 'gone', ...timed('2025-03-05', 14) });
  emu.deleteEvent(PRIMARY, gone['id'] as string);
  emu.insertEvent(PRIMARY, {
    summary: 'declined',
    organizer: { email: 'someone@example.org' },
    attendees: [{ email: EMAIL, responseStatus: 'declined' }],
    ...timed('2025-03-05', 16),
  });
  const { cal } = await connect([S('calendar.freebusy')]);
  const res = await cal.freebusy.query({
    requestBody: { timeMin: '2025-03-05T00:00:00Z', timeMax: '2025-03-06T00:00:00Z', items: [{ id: PRIMARY }, { id: 'unknown@example.com' }] },
  });
  expect(res.data.calendars?.[PRIMARY]?.busy).toEqual([{ start: '2025-03-05T14:00:00Z', end: '2025-03-05T15:30:00Z' }]);
  expect(res.data.calendars?.['unknown@example.com']).toEqual({ errors: [{ domain: 'global', reason: 'notFound' }], busy: [] });
  const tooLong = await failure(cal.freebusy.query({ requestBody: { timeMin: '2025-03-01T00:00:00Z', timeMax: '2025-07-01T00:00:00Z', items: [{ id: PRIMARY }] } }, { retry: false }));
  expect(tooLong.status).toBe(400);
});

test('the consent page (authUrl) redirects back with a code the token endpoint accepts', async () => {
  const auth = googleOAuth(emu);
  const url = auth.generateAuthUrl({ access_type: 'offline', scope: SCOPES, state: 'xyz', login_hint: EMAIL, prompt: 'consent' });
  expect(url.startsWith(emu.authUrl)).toBe(true);
  const res = await fetch(url, { redirect: 'manual' });
  expect(res.status).toBe(302);
  const back = new URL(res.headers.get('location') ?? '');
  expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
  expect(back.searchParams.get('state')).toBe('xyz');
  const { tokens } = await auth.getToken(back.searchParams.get('code') ?? '');
  expect(tokens.refresh_token).toBeTruthy();
});

// ---- push -------------------------------------------------------------------------------------------

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function receiver(): Promise<{ url: string; got: Received[]; close: () => Promise<void> }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/google`;
  return {
    url,
    got,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('watch sends `sync` then `exists` with the right headers', async () => {
  const hook = await receiver();
  try {
    const { cal } = await connect();
    const ch = await cal.events.watch({
      calendarId: 'primary',
      requestBody: { id: 'chan-0001', type: 'web_hook', address: hook.url, token: 'target=sk', expiration: String(clock.now().plus({ days: 30 }).toMillis()) },
    });
    const expiration = clock.now().plus({ days: 7 }).toMillis(); // capped at 7 days
    expect(ch.data).toEqual({
      kind: 'api#channel',
      id: 'chan-0001',
      resourceId: expect.any(String),
      resourceUri: `${emu.url}calendar/v3/calendars/primary/events?alt=json`,
      token: 'target=sk',
      expiration: String(expiration),
    });
    await emu.settled();
    expect(hook.got).toHaveLength(1);
    emu.insertEvent(PRIMARY, { summary: 'New booking', ...timed('2025-03-10', 9) });
    await cal.events.insert({ calendarId: 'primary', requestBody: { summary: 'Via API', ...timed('2025-03-11', 9) } });
    await emu.settled();
    expect(hook.got.map((g) => [g.headers['x-goog-resource-state'], g.headers['x-goog-message-number']])).toEqual([
      ['sync', '1'],
      ['exists', '2'],
      ['exists', '3'],
    ]);
    for (const g of hook.got) {
      expect(g.body).toBe('');
      expect(g.headers).toMatchObject({
        'x-goog-channel-id': 'chan-0001',
        'x-goog-channel-token': 'target=sk',
        'x-goog-channel-expiration': new Date(expiration).toUTCString(),
        'x-goog-resource-id': ch.data.resourceId,
        'x-goog-resource-uri': ch.data.resourceUri,
      });
    }
    expect(emu.notifications().map((n) => n.status)).toEqual([200, 200, 200]);
    expect(emu.channels()).toEqual([
      { id: 'chan-0001', resourceId: ch.data.resourceId, calendarId: PRIMARY, address: hook.url, token: 'target=sk', expiration, stopped: false },
    ]);
    // resourceId is stable per calendar; no token → no X-Goog-Channel-Token; expired channels get nothing.
    const ch2 = await cal.events.watch({
      calendarId: PRIMARY,
      requestBody: { id: 'chan-0002', type: 'web_hook', address: hook.url, expiration: String(clock.now().plus({ minutes: 15 }).toMillis()) },
    });
    expect(ch2.data.resourceId).toBe(ch.data.resourceId);
    expect(ch2.data.token).toBeUndefined();
    await emu.settled();
    expect(hook.got.at(-1)?.headers).not.toHaveProperty('x-goog-channel-token');
    clock.advance({ minutes: 30 });
    const n = hook.got.length;
    emu.patchEvent(PRIMARY, (await cal.events.list({ calendarId: 'primary' })).data.items![0]!.id!, { summary: 'Changed' });
    await emu.settled();
    expect(hook.got.slice(n).map((g) => g.headers['x-goog-channel-id'])).toEqual(['chan-0001']);
    // Duplicate channel ids are refused.
    const dup = await failure(cal.events.watch({ calendarId: 'primary', requestBody: { id: 'chan-0001', type: 'web_hook', address: hook.url } }, { retry: false }));
    expect(dup.status).toBe(400);
  } finally {
    await hook.close();
  }
});

test('channels.stop stops notifications; an unknown channel answers 404', async () => {
  const hook = await receiver();
  try {
    const { cal } = await connect();
    const ch = await cal.events.watch({ calendarId: 'primary', requestBody: { id: 'chan-stop', type: 'web_hook', address: hook.url } });
    await emu.settled();
    const stopped = await cal.channels.stop({ requestBody: { id: 'chan-stop', resourceId: ch.data.resourceId ?? '' } });
    expect(stopped.status).toBe(204);
    emu.insertEvent(PRIMARY, { summary: 'After stop', ...timed('2025-03-10', 9) });
    await emu.settled();
    expect(hook.got.map((g) => g.headers['x-goog-resource-state'])).toEqual(['sync']);
    expect(emu.channels()[0]?.stopped).toBe(true);
    const unknown = await failure(cal.channels.stop({ requestBody: { id: 'no-such-channel', resourceId: 'x' } }, { retry: false }));
    expect(unknown.status).toBe(404);
    expect(errorReason(unknown)).toBe('notFound');
    const again = await failure(cal.channels.stop({ requestBody: { id: 'chan-stop', resourceId: ch.data.resourceId ?? '' } }, { retry: false }));
    expect(again.status).toBe(404);
  } finally {
    await hook.close();
  }
});

// ---- faults -----------------------------------------------------------------------------------------

test('fault: 429 with and without Retry-After', async () => {
  const { cal } = await connect();
  emu.faults.add({ fault: { status: 429, retryAfter: 7 } });
  const a = await failure(cal.events.list({ calendarId: 'primary' }, { retry: false }));
  expect(a.status).toBe(429);
  expect(a.headers?.get('retry-after')).toBe('7');
  expect(errorReason(a)).toBe('rateLimitExceeded');
  emu.faults.add({ fault: { status: 429 } });
  const b = await failure(cal.events.list({ calendarId: 'primary' }, { retry: false }));
  expect(b.status).toBe(429);
  expect(b.headers?.get('retry-after')).toBeNull();
  // gaxios retries a 429 GET by itself: two faults, then success, three requests.
  emu.faults.add({ fault: { status: 429 }, times: 2 });
  const before = emu.requests.length;
  const ok = await cal.events.list({ calendarId: 'primary' }, { retryConfig: { retryDelay: 1, retryDelayMultiplier: 1 } });
  expect(ok.status).toBe(200);
  expect(emu.requests.slice(before).map((r) => r.status)).toEqual([429, 429, 200]);
  expect(emu.faults.pending()).toBe(0);
});

test('fault: 403 rateLimitExceeded (not retried by gaxios)', async () => {
  const { cal } = await connect();
  emu.faults.add({ fault: { status: 403, reason: 'rateLimitExceeded', retryAfter: 3 } });
  const before = emu.requests.length;
  const f = await failure(cal.events.list({ calendarId: 'primary' }, { retryConfig: { retryDelay: 1 } }));
  expect(f.status).toBe(403);
  expect(errorReason(f)).toBe('rateLimitExceeded');
  expect(f.headers?.get('retry-after')).toBe('3');
  expect((f.data['error'] as Json)['errors']).toEqual([{ domain: 'usageLimits', reason: 'rateLimitExceeded', message: 'Rate Limit Exceeded' }]);
  expect(emu.requests.length - before).toBe(1);
  emu.faults.add({ fault: { status: 403, reason: 'quotaExceeded' } });
  const q = await failure(cal.events.insert({ calendarId: 'primary', requestBody: { ...timed('2025-03-05', 9) } }));
  expect(errorReason(q)).toBe('quotaExceeded');
  expect(q.headers?.get('retry-after')).toBeNull();
});

test('fault: 500 and 503 (observed as such; retried by gaxios for GET)', async () => {
  const { cal } = await connect();
  emu.faults.add({ fault: { status: 500 } });
  const a = await failure(cal.events.list({ calendarId: 'primary' }, { retry: false }));
  expect(a.status).toBe(500);
  expect(errorReason(a)).toBe('backendError');
  emu.faults.add({ fault: { status: 503 } });
  const b = await failure(cal.events.list({ calendarId: 'primary' }, { retry: false }));
  expect(b.status).toBe(503);
  expect((b.data['error'] as Json)['status']).toBe('UNAVAILABLE');
  // POST is not retried by default: one 503 ends the insert.
  emu.faults.add({ match: { method: 'POST', path: /\/events$/ }, fault: { status: 503 } });
  const before = emu.requests.length;
  expect((await failure(cal.events.insert({ calendarId: 'primary', requestBody: { ...timed('2025-03-05', 9) } }))).status).toBe(503);
  expect(emu.requests.length - before).toBe(1);
  // A GET is retried: 500 then 502 then 200.
  emu.faults.add({ fault: { status: 500 } });
  emu.faults.add({ fault: { status: 502 } });
  const r0 = emu.requests.length;
  expect((await cal.events.list({ calendarId: 'primary' }, { retryConfig: { retryDelay: 1, retryDelayMultiplier: 1 } })).status).toBe(200);
  expect(emu.requests.slice(r0).map((r) => r.status)).toEqual([500, 502, 200]);
});

test('fault: dropped connection and delay', async () => {
  const { cal } = await connect();
  emu.faults.add({ fault: { drop: true } });
  const d = await failure(cal.events.list({ calendarId: 'primary' }, { retry: false }));
  expect(d.status).toBeUndefined();
  expect(emu.requests.at(-1)?.status).toBe(0);
  // gaxios retries a dropped GET (noResponseRetries): one drop, then success.
  emu.faults.add({ fault: { drop: true } });
  expect((await cal.events.list({ calendarId: 'primary' }, { retryConfig: { retryDelay: 1, retryDelayMultiplier: 1 } })).status).toBe(200);

  emu.faults.add({ match: { path: /\/events$/ }, fault: { delayMs: 300 } });
  const t0 = Date.now();
  const res = await cal.events.list({ calendarId: 'primary' });
  expect(res.status).toBe(200);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  // A timeout shorter than the delay is seen by the client as a failure without response.
  emu.faults.add({ fault: { delayMs: 500 } });
  const slow = await failure(cal.events.list({ calendarId: 'primary' }, { retry: false, timeout: 100 }));
  expect(slow.status).toBeUndefined();
});

test('fault: 410 and 401', async () => {
  const { cal } = await connect();
  emu.faults.add({ match: { path: /\/events$/ }, fault: { status: 410 } });
  const f = await failure(cal.events.list({ calendarId: 'primary', syncToken: 'anything' }, { retry: false }));
  expect(f.status).toBe(410);
  expect(errorReason(f)).toBe('fullSyncRequired');
  emu.faults.add({ fault: { status: 401 } });
  const u = await failure(cal.events.list({ calendarId: 'primary' }, { retry: false }));
  expect(u.status).toBe(401);
  expect(errorReason(u)).toBe('authError');
  expect((await cal.events.list({ calendarId: 'primary' })).status).toBe(200);
});

test('fault: invalid_grant on the token endpoint', async () => {
  const { auth, cal } = await connect();
  emu.faults.add({ fault: { invalidGrant: true } });
  // Calendar requests are not matched by default: the fault waits for the token endpoint.
  expect((await cal.events.list({ calendarId: 'primary' })).status).toBe(200);
  expect(emu.faults.pending()).toBe(1);
  const f = await failure(auth.refreshAccessToken());
  expect(f.status).toBe(400);
  expect(f.data).toEqual({ error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
  expect((await auth.refreshAccessToken()).credentials.access_token).toBeTruthy();
  // faults.clear() drops what is queued.
  emu.faults.add({ fault: { status: 500 }, times: 3 });
  expect(emu.faults.pending()).toBe(3);
  emu.faults.clear();
  expect(emu.faults.pending()).toBe(0);
});
