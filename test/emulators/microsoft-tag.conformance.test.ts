// Conformance of the Microsoft emulator's single-value extended properties (the reference pages "Create single-value
// extended property", "Get singleValueLegacyExtendedProperty", "Update event"), its record of meeting updates, and the
// crash-test faults (dropAfter, the request hook), through the real Graph client and MSAL as the product wires them.
import { GraphError, type Client } from '@microsoft/microsoft-graph-client';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { deltaItems, fixture, graphConnect, graphFailure, rejection, startGraph } from './conformance.js';
import type { GraphEmulator, RequestInfo } from './microsoft/server.js';

type Json = Record<string, unknown>;

const OID = '3f1c6a0e-2b7d-4d7e-9a51-6c0d2f8e4b19';
const TID = '84bd8158-6d4d-4958-8b9f-9d6445542f95';
const UPN = 'dr.ames@contoso.onmicrosoft.com';
const USER = { oid: OID, tid: TID, upn: UPN, displayName: 'Dr Ames', timeZone: 'Europe/London' };
const SCOPES = ['Calendars.ReadWrite', 'User.Read'];
const WINDOW = { startDateTime: '2025-03-01T00:00:00Z', endDateTime: '2025-04-01T00:00:00Z' };
/** The ids of the reference's examples. */
const COLOR = 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color';
const FUN = 'String {66f5a359-4659-4830-9070-00040ec6ac6e} Name Fun';
const INVALID_ID_MESSAGE =
  "PropertyId values may only be in one of the following formats: 'MapiPropertyType namespaceGuid Name propertyName', 'MapiPropertyType namespaceGuid Id propertyId' or 'MapiPropertyType propertyTag'.";

let clock: ManualClock;
let emu: GraphEmulator;
let graph: Client;
let accessToken: () => Promise<string>;

beforeEach(async () => {
  clock = new ManualClock('2025-03-01T12:00:00Z');
  emu = await startGraph(USER, { clock });
  ({ graph, getAccessToken: accessToken } = await graphConnect(emu, USER, SCOPES));
});

afterEach(async () => {
  await emu.close();
});

function timed(day: string, hh: number, minutes = 50): { start: Json; end: Json } {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const endMin = hh * 60 + minutes;
  return { start: { dateTime: `${day}T${pad(hh)}:00:00`, timeZone: 'UTC' }, end: { dateTime: `${day}T${pad(Math.floor(endMin / 60))}:${pad(endMin % 60)}:00`, timeZone: 'UTC' } };
}

const client = (address: string) => ({ emailAddress: { address, name: address.split('@')[0] }, type: 'required' });

/** The event expanded with the properties of these ids (the reference's only way to read them). */
async function expanded(id: string, ...props: string[]): Promise<Json> {
  const filter = props.map((p) => `id eq '${p}'`).join(' or ');
  return (await graph.api(`/me/events/${id}`).expand(`singleValueExtendedProperties($filter=${filter})`).get()) as Json;
}

async function post(body: Json): Promise<Json> {
  return (await graph.api('/me/events').post(body)) as Json;
}

// ---- create, update, expand ----------------------------------------------------------------------------------

test("the reference's Create example: POST with a property answers 201 without it; $expand reads it, nothing else does", async () => {
  const created = await post(fixture('microsoft', 'singlevalue-create-event-request.json'));
  expect(emu.requests.at(-1)!.status).toBe(201);
  expect(created).toMatchObject({ subject: 'Celebrate Thanksgiving', attendees: [{ emailAddress: { address: 'Terrie@contoso.com' }, type: 'required' }] });
  // "The response does not include any newly created extended properties."
  expect(created).not.toHaveProperty('singleValueExtendedProperties');
  const id = String(created['id']);
  expect(await graph.api(`/me/events/${id}`).get()).not.toHaveProperty('singleValueExtendedProperties');
  expect((await expanded(id, FUN))['singleValueExtendedProperties']).toEqual([{ id: FUN, value: 'Food' }]);
  // With $select=id only the id (and the annotations) come with the expanded property.
  const slim = (await graph.api(`/me/events/${id}`).select('id').expand(`singleValueExtendedProperties($filter=id eq '${FUN}')`).get()) as Json;
  expect(slim).toEqual({ '@odata.context': expect.any(String), '@odata.etag': expect.any(String), id, singleValueExtendedProperties: [{ id: FUN, value: 'Food' }] });
  // An id that the event does not have: no list at all.
  expect(await expanded(id, COLOR)).not.toHaveProperty('singleValueExtendedProperties');
});

test('PATCH creates a property, then updates it, keeps the other properties and the event, and shows in delta', async () => {
  const ev = await post({ subject: 'Session', ...timed('2025-03-05', 9), singleValueExtendedProperties: [{ id: FUN, value: 'Food' }] });
  const id = String(ev['id']);
  const round = await deltaItems(graph, `/me/calendarView/delta?startDateTime=${WINDOW.startDateTime}&endDateTime=${WINDOW.endDateTime}`);
  expect(round.items.map((i) => i['id'])).toEqual([id]);

  clock.advance({ minutes: 5 });
  // The reference's Request 2 body (it PATCHes a message; an event takes the same body).
  const patched = (await graph.api(`/me/events/${id}`).patch(fixture('microsoft', 'singlevalue-update-request.json'))) as Json;
  expect(emu.requests.at(-1)!.status).toBe(200);
  expect(patched).not.toHaveProperty('singleValueExtendedProperties');
  expect(patched).toMatchObject({ id, subject: 'Session', lastModifiedDateTime: '2025-03-01T12:05:00.0000000Z' });
  expect(patched['changeKey']).not.toBe(ev['changeKey']);
  // The reference's Response 1: the item expanded with Color.
  expect((await expanded(id, COLOR))['singleValueExtendedProperties']).toEqual(fixture('microsoft', 'singlevalue-get-expanded-response.json')['singleValueExtendedProperties']);
  expect((await expanded(id, COLOR, FUN))['singleValueExtendedProperties']).toEqual([
    { id: FUN, value: 'Food' },
    { id: COLOR, value: 'Green' },
  ]);

  const next = await deltaItems(graph, round.deltaLink);
  expect(next.items.map((i) => [i['id'], i['changeKey']])).toEqual([[id, patched['changeKey']]]);

  clock.advance({ minutes: 5 });
  const again = (await graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Red' }] })) as Json;
  expect(again['changeKey']).not.toBe(patched['changeKey']);
  expect(again['lastModifiedDateTime']).toBe('2025-03-01T12:10:00.0000000Z');
  expect((await expanded(id, COLOR, FUN))['singleValueExtendedProperties']).toEqual([
    { id: FUN, value: 'Food' },
    { id: COLOR, value: 'Red' },
  ]);
  expect((await deltaItems(graph, next.deltaLink)).items.map((i) => i['id'])).toEqual([id]);
});

test('PATCH through /me/calendars/{id}/events/{id} and /me/calendar/events/{id}; an event of another calendar is 404 there', async () => {
  const practice = emu.addCalendar(OID, { name: 'Practice' });
  const ev = emu.createEvent(OID, practice.id, { subject: 'Session', ...timed('2025-03-06', 10) });
  const id = String(ev['id']);
  await graph.api(`/me/calendars/${practice.id}/events/${id}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Blue' }] });
  const read = (await graph.api(`/me/calendars/${practice.id}/events/${id}`).expand(`singleValueExtendedProperties($filter=id eq '${COLOR}')`).get()) as Json;
  expect(read['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Blue' }]);
  const elsewhere = await graphFailure(graph.api(`/me/calendar/events/${id}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Red' }] }));
  expect(elsewhere.statusCode).toBe(404);
  expect(elsewhere.code).toBe('ErrorItemNotFound');
  expect((await expanded(id, COLOR))['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Blue' }]);
  const own = await post({ subject: 'Default', ...timed('2025-03-06', 12) });
  await graph.api(`/me/calendar/events/${String(own['id'])}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Red' }] });
  expect((await expanded(String(own['id']), COLOR))['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Red' }]);
});

test('ids: type, GUID and keywords match without case, the Name with its case; the three formats of the overview are accepted', async () => {
  const ev = await post({ subject: 'Session', ...timed('2025-03-07', 9), singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  const id = String(ev['id']);
  const shouted = 'STRING {66F5A359-4659-4830-9070-00047EC6AC6E} name Color';
  // The same property: updated in place, keeping the id it was made with.
  await graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: [{ id: shouted, value: 'Teal' }] });
  expect((await expanded(id, COLOR))['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Teal' }]);
  expect((await expanded(id, shouted))['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Teal' }]);
  // "Filtering the string name (Name) in the id of an extended property is case-sensitive": Name color is another one.
  const lower = 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name color';
  expect(await expanded(id, lower)).not.toHaveProperty('singleValueExtendedProperties');
  await graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: [{ id: lower, value: 'grey' }] });
  expect((await expanded(id, COLOR, lower))['singleValueExtendedProperties']).toEqual([
    { id: COLOR, value: 'Teal' },
    { id: lower, value: 'grey' },
  ]);
  // extended-properties-overview.md, "Valid id formats for single-value extended properties".
  const formats = ['String {8ECCC264-6880-4EBE-992F-8888D2EEAA1D} Name TestProperty', 'Integer {8ECCC264-6880-4EBE-992F-8888D2EEAA1D} Id 0x8012', 'String 0x4001001E'];
  await graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: formats.map((f, i) => ({ id: f, value: String(i) })) });
  expect((await expanded(id, ...formats))['singleValueExtendedProperties']).toEqual(formats.map((f, i) => ({ id: f, value: String(i) })));
  // A numeric id is the same property however it is written.
  expect((await expanded(id, 'Integer {8eccc264-6880-4ebe-992f-8888d2eeaa1d} Id 32786'))['singleValueExtendedProperties']).toEqual([{ id: formats[1], value: '1' }]);
});

test('a malformed id is 400 ErrorInvalidProperty with Graph\'s error body, and changes nothing', async () => {
  const ev = await post({ subject: 'Session', ...timed('2025-03-08', 9), singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  const id = String(ev['id']);
  const innerError = { date: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/), 'request-id': expect.any(String), 'client-request-id': expect.any(String) };
  for (const bad of ['String {66f5a359-4659-4830-9070-00047ec6ac6e} Color', 'nonsense', 'StringArray {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color', 'String {not-a-guid} Name Color', '']) {
    const e = await graphFailure(graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Red' }, { id: bad, value: 'x' }] }));
    expect(e.statusCode).toBe(400);
    expect(e.code).toBe('ErrorInvalidProperty');
    expect(JSON.parse(String(e.body))).toEqual({ code: 'ErrorInvalidProperty', message: INVALID_ID_MESSAGE, innerError });
  }
  // On the wire: Graph's {"error": {code, message, innerError}}.
  const raw = await fetch(`${emu.url}v1.0/me/events/${id}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${await accessToken()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ singleValueExtendedProperties: [{ id: 'Color', value: 'x' }] }),
  });
  expect(raw.status).toBe(400);
  expect(await raw.json()).toEqual({ error: { code: 'ErrorInvalidProperty', message: INVALID_ID_MESSAGE, innerError } });
  const after = await expanded(id, COLOR);
  expect(after['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Green' }]);
  expect(after['changeKey']).toBe(ev['changeKey']);
  // The same in an $expand filter and in a collection $filter.
  expect((await graphFailure(expanded(id, 'String Color'))).code).toBe('ErrorInvalidProperty');
  expect((await graphFailure(graph.api('/me/events').filter("singleValueExtendedProperties/Any(ep: ep/id eq 'Color' and ep/value eq 'Green')").get())).code).toBe('ErrorInvalidProperty');
});

// ---- $filter --------------------------------------------------------------------------------------------------

test("$filter on the events collection: the reference's Any(ep: ep/id eq … and ep/value …) forms, values without case", async () => {
  const a = await post({ subject: 'A', ...timed('2025-03-10', 9), singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  const b = await post({ subject: 'B', ...timed('2025-03-10', 11), singleValueExtendedProperties: [{ id: COLOR, value: 'Light green' }, { id: FUN, value: 'Food' }] });
  await post({ subject: 'C', ...timed('2025-03-10', 13) });
  const practice = emu.addCalendar(OID, { name: 'Practice' });
  const d = emu.createEvent(OID, practice.id, { subject: 'D', ...timed('2025-03-10', 15), singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  const subjects = async (filter: string, base = '/me/events'): Promise<string[]> =>
    (((await graph.api(base).filter(filter).get()) as Json)['value'] as Json[]).map((e) => String(e['subject'])).sort();
  // Request 2 of the Get page (on events, as its syntax lines list them).
  expect(await subjects(`singleValueExtendedProperties/Any(ep: ep/id eq '${COLOR}' and ep/value eq 'Green')`)).toEqual(['A']);
  expect(await subjects(`singleValueExtendedProperties/Any(ep: ep/id eq '${COLOR}' and ep/value eq 'GREEN')`)).toEqual(['A']);
  // Request 3: lower-case any, ep/Id, contains(ep/Value, 'green').
  expect(await subjects(`singleValueExtendedProperties/any(ep:ep/Id eq '${COLOR}' and contains(ep/Value, 'green'))`)).toEqual(['A', 'B']);
  expect(await subjects(`singleValueExtendedProperties/Any(ep: ep/id eq '${COLOR}' and startswith(ep/value, 'light'))`)).toEqual(['B']);
  expect(await subjects(`singleValueExtendedProperties/Any(ep: ep/id eq '${COLOR}' and ep/value ne 'green')`)).toEqual(['B']);
  expect(await subjects(`singleValueExtendedProperties/Any(ep: ep/id eq '${FUN}')`)).toEqual(['B']);
  expect(await subjects(`singleValueExtendedProperties/Any(ep: ep/id eq '${COLOR.replace('Color', 'color')}' and ep/value eq 'Green')`)).toEqual([]);
  // Combined with another clause, and per calendar.
  expect(await subjects(`singleValueExtendedProperties/Any(ep: ep/id eq '${COLOR}' and ep/value eq 'Green') and subject eq 'A'`)).toEqual(['A']);
  expect(await subjects(`singleValueExtendedProperties/Any(ep: ep/id eq '${COLOR}' and ep/value eq 'Green')`, `/me/calendars/${practice.id}/events`)).toEqual(['D']);
  // The answer does not include the property ("The response body does not include the extended property").
  const found = (await graph.api('/me/events').filter(`singleValueExtendedProperties/Any(ep: ep/id eq '${COLOR}' and ep/value eq 'Green')`).get()) as Json;
  expect((found['value'] as Json[])[0]).not.toHaveProperty('singleValueExtendedProperties');
  expect([a['id'], b['id'], d['id']].every(Boolean)).toBe(true);
});

// ---- meeting updates ----------------------------------------------------------------------------------------

test('attendeeUpdates: each organizer PATCH that changes a meeting; not a no-op, a solo event, an attendee copy or an Outlook edit', async () => {
  const meeting = await post({ subject: 'Jane - session', ...timed('2025-03-12', 9), attendees: [client('jane@example.com')] });
  const solo = await post({ subject: 'Notes', ...timed('2025-03-12', 11) });
  const invited = emu.createEvent(OID, 'default', {
    subject: 'Supervision',
    ...timed('2025-03-12', 13),
    organizer: { emailAddress: { address: 'supervisor@example.org', name: 'Supervisor' } },
    attendees: [{ emailAddress: { address: UPN }, type: 'required' }],
  });
  const mid = String(meeting['id']);
  clock.advance({ minutes: 1 });
  await graph.api(`/me/events/${mid}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  expect(emu.requests.at(-1)).toMatchObject({ method: 'PATCH', status: 200, attendeeUpdate: true });
  clock.advance({ minutes: 1 });
  // The same value again changes nothing: nothing to send.
  await graph.api(`/me/events/${mid}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  expect(emu.requests.at(-1)).toMatchObject({ method: 'PATCH', status: 200, attendeeUpdate: false });
  await graph.api(`/me/events/${mid}`).patch({ reminderMinutesBeforeStart: 30 });
  await graph.api(`/me/events/${String(solo['id'])}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  await graph.api(`/me/events/${String(invited['id'])}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  emu.updateEvent(OID, mid, { subject: 'Jane - intake' });
  // Adding attendees to an event that had none invites them.
  await graph.api(`/me/events/${String(solo['id'])}`).patch({ attendees: [client('sam@example.com')] });
  expect(emu.attendeeUpdates('update')).toEqual([
    { eventId: mid, kind: 'update', to: ['jane@example.com'], at: '2025-03-01T12:01:00.000Z' },
    { eventId: mid, kind: 'update', to: ['jane@example.com'], at: '2025-03-01T12:02:00.000Z' },
    { eventId: solo['id'], kind: 'update', to: ['sam@example.com'], at: '2025-03-01T12:02:00.000Z' },
  ]);
  // The POST of the meeting itself was its invitation (kind 'invitation'); the solo event and the attendee copy sent none.
  expect(emu.attendeeUpdates().map((u) => [u.kind, u.eventId])).toEqual([['invitation', mid], ['update', mid], ['update', mid], ['update', solo['id']]]);
  expect(emu.requests.filter((r) => r.method === 'PATCH').map((r) => r.attendeeUpdate)).toEqual([true, false, true, false, false, true]);
});

test('attendeeUpdates: a PATCH of one occurrence of a series with attendees is an update too', async () => {
  const master = await post({
    subject: 'Weekly',
    ...timed('2025-03-04', 18),
    attendees: [client('jane@example.com')],
    recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['tuesday'] }, range: { type: 'numbered', startDate: '2025-03-04', numberOfOccurrences: 3 } },
  });
  const instances = ((await graph.api(`/me/events/${String(master['id'])}/instances`).query(WINDOW).get()) as Json)['value'] as Json[];
  const second = String(instances[1]!['id']);
  await graph.api(`/me/events/${second}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  expect((await expanded(second, COLOR))['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Green' }]);
  expect(emu.attendeeUpdates('update').map((u) => u.eventId)).toEqual([second]);
});

// ---- crash-test faults ------------------------------------------------------------------------------------------

test('fault dropAfter: the PATCH takes effect and its answer is lost; drop (before) has no effect', async () => {
  const ev = await post({ subject: 'Session', ...timed('2025-03-14', 9), attendees: [client('jane@example.com')] });
  const id = String(ev['id']);
  emu.faults.add({ match: { method: 'PATCH' }, fault: { drop: true } });
  expect(await rejection(graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Blue' }] }))).toBeInstanceOf(Error);
  expect(await expanded(id, COLOR)).not.toHaveProperty('singleValueExtendedProperties');
  emu.faults.add({ match: { method: 'PATCH' }, fault: { dropAfter: true } });
  const lost = await rejection(graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] }));
  // No HTTP answer at all: the client reports status -1 (what classifyGraphError takes for "no answer").
  expect(lost).toBeInstanceOf(GraphError);
  expect((lost as GraphError).statusCode).toBe(-1);
  const patches = emu.requests.filter((r) => r.method === 'PATCH');
  expect(patches.map((r) => [r.status, r.attendeeUpdate])).toEqual([
    [0, false],
    [0, true],
  ]);
  const after = await expanded(id, COLOR);
  expect(after['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Green' }]);
  expect(after['changeKey']).not.toBe(ev['changeKey']);
  expect(emu.attendeeUpdates('update').map((u) => u.eventId)).toEqual([id]);
  expect(emu.faults.pending()).toBe(0);
});

test('the request hook: seq from 1, before and after every Graph request; drop before loses the request, drop after only the answer', async () => {
  const ev = emu.createEvent(OID, 'default', { subject: 'Session', ...timed('2025-03-15', 9) });
  const id = String(ev['id']);
  const seen: RequestInfo[] = [];
  emu.setRequestHook((info) => {
    seen.push(info);
  });
  const first = emu.requests.length;
  await graph.api('/me').get();
  await graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Green' }] });
  // Graph requests made before the hook (none here: MSAL's token requests are not Graph) count too.
  expect(seen).toEqual([
    { seq: 1, method: 'GET', path: '/v1.0/me', phase: 'before' },
    { seq: 1, method: 'GET', path: '/v1.0/me', phase: 'after' },
    { seq: 2, method: 'PATCH', path: `/v1.0/me/events/${id}`, phase: 'before' },
    { seq: 2, method: 'PATCH', path: `/v1.0/me/events/${id}`, phase: 'after' },
  ]);
  expect(emu.requests.slice(first).map((r) => r.seq)).toEqual([1, 2]);

  // An answer that is an error (and a fault's error) is still 'after' its (lack of) effect.
  seen.length = 0;
  emu.faults.add({ fault: { status: 503 } });
  expect((await graphFailure(graph.api('/me/calendar').get())).statusCode).toBe(503);
  expect((await graphFailure(graph.api('/me/events/nope').get())).statusCode).toBe(404);
  expect(seen.map((s) => `${s.seq} ${s.phase}`)).toEqual(['3 before', '3 after', '4 before', '4 after']);

  // 'drop' before: nothing happens. An async hook is awaited.
  emu.setRequestHook(async (info) => {
    await new Promise((r) => setTimeout(r, 5));
    return info.method === 'PATCH' && info.phase === 'before' ? 'drop' : undefined;
  });
  expect(await rejection(graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Red' }] }))).toBeInstanceOf(Error);
  expect(emu.requests.at(-1)).toMatchObject({ method: 'PATCH', status: 0, seq: 5 });
  expect((await expanded(id, COLOR))['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Green' }]);

  // 'drop' after: the effect stays, the answer is lost.
  emu.setRequestHook((info) => (info.method === 'PATCH' && info.phase === 'after' ? 'drop' : undefined));
  expect(await rejection(graph.api(`/me/events/${id}`).patch({ singleValueExtendedProperties: [{ id: COLOR, value: 'Red' }] }))).toBeInstanceOf(Error);
  expect(emu.requests.at(-1)).toMatchObject({ method: 'PATCH', status: 0, seq: 7 });
  emu.setRequestHook(null);
  expect((await expanded(id, COLOR))['singleValueExtendedProperties']).toEqual([{ id: COLOR, value: 'Red' }]);
  expect(emu.requests.at(-1)).toMatchObject({ status: 200, seq: 8 });
});
