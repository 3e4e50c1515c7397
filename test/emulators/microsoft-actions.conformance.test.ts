// Conformance of the Microsoft emulator's platform actions (events created, changed and deleted with the mail they send
// to attendees; Microsoft To Do lists, tasks and linkedResources; sendMail) through the real Graph client and MSAL as
// the product wires them, against the reference pages' examples (fixtures/README.md) and their documented answers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, RetryHandlerOptions } from '@microsoft/microsoft-graph-client';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { deltaItems, fixture, graphConnect, graphFailure, startGraph } from './conformance.js';
import type { GraphEmulator } from './microsoft/server.js';

type Json = Record<string, unknown>;

const OID = '0b6c2f1e-6a4d-4c3e-8f11-2d9a7e5c4b10';
const TID = '84bd8158-6d4d-4958-8b9f-9d6445542f95';
const UPN = 'dr.hale@contoso.onmicrosoft.com';
const USER = { oid: OID, tid: TID, upn: UPN, displayName: 'Dr Hale', timeZone: 'Europe/London' };
const ALL = ['Calendars.ReadWrite', 'Tasks.ReadWrite', 'Mail.Send', 'User.Read'];
const KEY = 'String {5e8f1b2a-7c3d-4f6e-9a1b-2c3d4e5f6a7b} Name sk.key';
const WINDOW = { startDateTime: '2025-03-01T00:00:00Z', endDateTime: '2025-04-01T00:00:00Z' };

let clock: ManualClock;
let emu: GraphEmulator;
let graph: Client;

/** A Graph client for the user with these scopes: AuthenticationHandler → RetryHandler → graphRedirect → HTTPMessageHandler. */
const connect = async (scopes: string[], retry = new RetryHandlerOptions(0, 0)): Promise<Client> => (await graphConnect(emu, USER, scopes, { retry })).graph;

beforeEach(async () => {
  clock = new ManualClock('2025-03-01T12:00:00Z');
  emu = await startGraph(USER, { clock });
  graph = await connect(ALL);
});

afterEach(async () => {
  await emu.close();
});

function timed(day: string, hh: number, minutes = 50, timeZone = 'UTC'): { start: Json; end: Json } {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const endMin = hh * 60 + minutes;
  return { start: { dateTime: `${day}T${pad(hh)}:00:00`, timeZone }, end: { dateTime: `${day}T${pad(Math.floor(endMin / 60))}:${pad(endMin % 60)}:00`, timeZone } };
}

const jane = { emailAddress: { address: 'jane@example.com', name: 'Jane' }, type: 'required' };
const byKey = (value: string) => `singleValueExtendedProperties/any(ep: ep/id eq '${KEY}' and ep/value eq '${value}')`;

// ---- events -----------------------------------------------------------------------------------------------------

test('POST an event: our key as an extended property, Teams only with isOnlineMeeting, reminders, and an invitation to the attendees', async () => {
  const session = (await graph.api('/me/events').post({
    subject: 'Session',
    body: { contentType: 'html', content: '<p>See you</p>' },
    ...timed('2025-03-10', 18, 50, 'America/New_York'),
    location: { displayName: 'Telehealth' },
    attendees: [jane],
    isOnlineMeeting: true,
    onlineMeetingProvider: 'teamsForBusiness',
    isReminderOn: true,
    reminderMinutesBeforeStart: 30,
    singleValueExtendedProperties: [{ id: KEY, value: 'sk-abc' }],
  })) as Json;
  expect(emu.requests.at(-1)).toMatchObject({ method: 'POST', status: 201, attendeeUpdate: true });
  expect(session).toMatchObject({
    subject: 'Session',
    isOnlineMeeting: true,
    onlineMeetingProvider: 'teamsForBusiness',
    isReminderOn: true,
    reminderMinutesBeforeStart: 30,
    start: { dateTime: '2025-03-10T18:00:00.0000000', timeZone: 'America/New_York' },
    attendees: [{ type: 'required', emailAddress: { address: 'jane@example.com', name: 'Jane' }, status: { response: 'none' } }],
    location: { displayName: 'Telehealth' },
  });
  expect((session['onlineMeeting'] as Json)['joinUrl']).toMatch(/^https:\/\/teams\.microsoft\.com\/l\/meetup-join\//);
  // The answer does not carry the property ("Create single-value extended property").
  expect(session).not.toHaveProperty('singleValueExtendedProperties');

  const plain = (await graph.api('/me/events').post({ subject: 'Hold', ...timed('2025-03-11', 18), isReminderOn: false })) as Json;
  expect(plain).toMatchObject({ isOnlineMeeting: false, onlineMeeting: null, isReminderOn: false });
  // Only the meeting with an attendee sent mail: its invitation, to Jane.
  expect(emu.attendeeUpdates()).toEqual([{ eventId: session['id'], kind: 'invitation', to: ['jane@example.com'], at: '2025-03-01T12:00:00.000Z' }]);
});

test('GET events filtered by our extended property finds the one event, on /me/events and on its calendar', async () => {
  const practice = emu.addCalendar(OID, { name: 'Practice' });
  const a = (await graph.api(`/me/calendars/${practice.id}/events`).post({ subject: 'A', ...timed('2025-03-10', 9), singleValueExtendedProperties: [{ id: KEY, value: 'sk-aaa' }] })) as Json;
  await graph.api(`/me/calendars/${practice.id}/events`).post({ subject: 'B', ...timed('2025-03-10', 11), singleValueExtendedProperties: [{ id: KEY, value: 'sk-bbb' }] });
  await graph.api('/me/events').post({ subject: 'C', ...timed('2025-03-10', 13) });
  const inCalendar = (await graph.api(`/me/calendars/${practice.id}/events`).filter(byKey('sk-aaa')).expand(`singleValueExtendedProperties($filter=id eq '${KEY}')`).get()) as Json;
  expect((inCalendar['value'] as Json[]).map((e) => [e['id'], e['singleValueExtendedProperties']])).toEqual([[a['id'], [{ id: KEY, value: 'sk-aaa' }]]]);
  // The default calendar's /me/events does not hold the practice calendar's events.
  expect(((await graph.api('/me/events').filter(byKey('sk-aaa')).get()) as Json)['value']).toEqual([]);
  // The filter on the value ignores case ("Get singleValueLegacyExtendedProperty"); one on a name that no event has finds none.
  expect(((await graph.api(`/me/calendars/${practice.id}/events`).filter(byKey('SK-AAA')).get()) as Json)['value']).toHaveLength(1);
  expect(((await graph.api(`/me/calendars/${practice.id}/events`).filter(byKey('sk-zzz')).get()) as Json)['value']).toEqual([]);
});

test('PATCH and DELETE of a meeting: each mails the attendees, shows in delta and notifies subscriptions; a second DELETE is 404', async () => {
  const hook = await receiver();
  try {
    await graph.api('/subscriptions').post({
      changeType: 'created,updated,deleted',
      notificationUrl: hook.url,
      resource: '/me/events',
      expirationDateTime: clock.now().plus({ days: 2 }).toISO(),
      clientState: 'sk-state',
    });
    const first = await deltaItems(graph, `/me/calendarView/delta?startDateTime=${WINDOW.startDateTime}&endDateTime=${WINDOW.endDateTime}`);
    expect(first.items).toEqual([]);
    const ev = (await graph.api('/me/events').post({ subject: 'Session', ...timed('2025-03-12', 9), attendees: [jane] })) as Json;
    const id = String(ev['id']);
    clock.advance({ minutes: 1 });
    const patched = (await graph.api(`/me/events/${id}`).patch({
      subject: 'Session (moved)',
      body: { contentType: 'text', content: 'New time' },
      location: { displayName: 'Room 2' },
      ...timed('2025-03-13', 10),
      isReminderOn: true,
      reminderMinutesBeforeStart: 60,
    })) as Json;
    expect(patched).toMatchObject({ subject: 'Session (moved)', body: { contentType: 'text', content: 'New time' }, location: { displayName: 'Room 2' }, reminderMinutesBeforeStart: 60, start: { dateTime: '2025-03-13T10:00:00.0000000' } });
    const round = await deltaItems(graph, first.deltaLink);
    expect(round.items.map((i) => [i['id'], i['subject']])).toEqual([[id, 'Session (moved)']]);
    clock.advance({ minutes: 1 });
    await graph.api(`/me/events/${id}`).delete();
    expect(emu.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 204, attendeeUpdate: true });
    const again = await graphFailure(graph.api(`/me/events/${id}`).delete());
    expect([again.statusCode, again.code]).toEqual([404, 'ErrorItemNotFound']);
    expect(emu.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 404, attendeeUpdate: false });
    expect((await deltaItems(graph, round.deltaLink)).items).toEqual([{ '@odata.type': '#microsoft.graph.event', id, '@removed': { reason: 'deleted' } }]);
    expect(emu.attendeeUpdates().map((u) => [u.kind, u.at])).toEqual([
      ['invitation', '2025-03-01T12:00:00.000Z'],
      ['update', '2025-03-01T12:01:00.000Z'],
      ['cancellation', '2025-03-01T12:02:00.000Z'],
    ]);
    await emu.settled();
    expect(emu.notifications().map((n) => ((n.body as { value: Json[] }).value[0]!)['changeType'])).toEqual(['created', 'updated', 'deleted']);
  } finally {
    await hook.close();
  }
});

// ---- Microsoft To Do -------------------------------------------------------------------------------------------

async function lists(): Promise<Json[]> {
  return ((await graph.api('/me/todo/lists').get()) as Json)['value'] as Json[];
}

test("To Do lists: the built-in ones, and the reference's Create todoTaskList example", async () => {
  expect((await lists()).map((l) => [l['displayName'], l['wellknownListName'], l['isOwner'], l['isShared']])).toEqual([
    ['Tasks', 'defaultList', true, false],
    ['Flagged email', 'flaggedEmails', true, false],
  ]);
  const created = (await graph.api('/me/todo/lists').post(fixture('microsoft', 'todotasklist-create-request.json'))) as Json;
  expect(emu.requests.at(-1)!.status).toBe(201);
  const ref = fixture('microsoft', 'todotasklist-create-response.json');
  expect(Object.keys(created)).toEqual(expect.arrayContaining(Object.keys(ref)));
  expect(created).toMatchObject({ displayName: 'Travel items', isOwner: true, isShared: false, wellknownListName: 'none' });
  expect(await graph.api(`/me/todo/lists/${String(created['id'])}`).get()).toMatchObject({ id: created['id'], displayName: 'Travel items' });
  expect((await graphFailure(graph.api('/me/todo/lists').post({}))).statusCode).toBe(400);
  expect((await graphFailure(graph.api('/me/todo/lists/AAMkADnope').get())).statusCode).toBe(404);
});

test("To Do tasks: the reference's Create example; linkedResources come back only with $expand; externalId round trip", async () => {
  const listId = String((await lists())[0]!['id']);
  const created = (await graph.api(`/me/todo/lists/${listId}/tasks`).post(fixture('microsoft', 'todotask-create-request.json'))) as Json;
  expect(emu.requests.at(-1)!.status).toBe(201);
  const ref = fixture('microsoft', 'todotask-create-response.json');
  expect(Object.keys(created)).toEqual(expect.arrayContaining(Object.keys(ref)));
  expect(Object.keys((created['linkedResources'] as Json[])[0]!)).toEqual(expect.arrayContaining(Object.keys((ref['linkedResources'] as Json[])[0]!)));
  expect(created).toMatchObject({ title: 'A new task', status: 'notStarted', isReminderOn: false, body: { content: '', contentType: 'text' } });
  expect(created['createdDateTime']).toBe('2025-03-01T12:00:00.0000000Z');
  const id = String(created['id']);
  // A GET without $expand has no linkedResources.
  expect(await graph.api(`/me/todo/lists/${listId}/tasks/${id}`).get()).not.toHaveProperty('linkedResources');

  const ours = (await graph.api(`/me/todo/lists/${listId}/tasks`).post({
    title: 'Call Jane back',
    body: { content: 'No rebooking after session 2', contentType: 'text' },
    dueDateTime: { dateTime: '2025-03-05T00:00:00', timeZone: 'UTC' },
    linkedResources: [{ applicationName: 'SessionKeeper', displayName: 'Open in SessionKeeper', webUrl: 'https://sk.example/f/1', externalId: 'sk-abcdef' }],
  })) as Json;
  const expanded = (await graph.api(`/me/todo/lists/${listId}/tasks/${String(ours['id'])}`).expand('linkedResources').get()) as Json;
  expect(expanded['linkedResources']).toEqual([{ id: expect.any(String), webUrl: 'https://sk.example/f/1', applicationName: 'SessionKeeper', displayName: 'Open in SessionKeeper', externalId: 'sk-abcdef' }]);
  expect(expanded['dueDateTime']).toEqual({ dateTime: '2025-03-05T00:00:00.0000000', timeZone: 'UTC' });
  const listed = ((await graph.api(`/me/todo/lists/${listId}/tasks`).expand('linkedResources').get()) as Json)['value'] as Json[];
  expect(listed.map((t) => ((t['linkedResources'] as Json[])[0] ?? {})['externalId'])).toEqual([undefined, 'sk-abcdef']);
  // The linkedResources collection of a task.
  const lr = (await graph.api(`/me/todo/lists/${listId}/tasks/${id}/linkedResources`).post({ applicationName: 'App', displayName: 'Item', externalId: 'x-1' })) as Json;
  expect(emu.requests.at(-1)!.status).toBe(201);
  expect(lr).toMatchObject({ id: expect.any(String), applicationName: 'App', displayName: 'Item', externalId: 'x-1' });
  expect((((await graph.api(`/me/todo/lists/${listId}/tasks/${id}/linkedResources`).get()) as Json)['value'] as Json[]).map((r) => r['displayName'])).toEqual(['Microsoft', 'Item']);
  // More than one linked resource on create is refused (microsoft-graph-docs-contrib#654).
  const two = await graphFailure(graph.api(`/me/todo/lists/${listId}/tasks`).post({ title: 'x', linkedResources: [{ displayName: 'a' }, { displayName: 'b' }] }));
  expect([two.statusCode, two.code, two.message]).toEqual([400, 'invalidRequest', 'Only one item in linkedResources is allowed.']);
  expect((await graphFailure(graph.api(`/me/todo/lists/${listId}/tasks`).post({ title: 'x', colour: 'red' }))).statusCode).toBe(400);
});

test("To Do: the reference's Update example keeps the due date at midnight of the zone given, answered in UTC", async () => {
  const listId = String((await lists())[0]!['id']);
  const t = (await graph.api(`/me/todo/lists/${listId}/tasks`).post({ title: 'Shop for dinner' })) as Json;
  const updated = (await graph.api(`/me/todo/lists/${listId}/tasks/${String(t['id'])}`).patch(fixture('microsoft', 'todotask-update-request.json'))) as Json;
  const ref = fixture('microsoft', 'todotask-update-response.json');
  expect(Object.keys(updated)).toEqual(expect.arrayContaining(Object.keys(ref)));
  // 16:00 Eastern on 25 July: the date, at midnight Eastern (EDT), is 04:00 UTC.
  expect(updated['dueDateTime']).toEqual({ dateTime: '2020-07-25T04:00:00.0000000', timeZone: 'UTC' });
});

test('To Do listings: $filter on lastModifiedDateTime and status, $top paging with nextLink, unsupported filters refused', async () => {
  const listId = String((await lists())[0]!['id']);
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) ids.push(String(((await graph.api(`/me/todo/lists/${listId}/tasks`).post({ title: `T${i}` })) as Json)['id']));
  // Ten a page by default.
  const page1 = (await graph.api(`/me/todo/lists/${listId}/tasks`).get()) as Json;
  expect((page1['value'] as Json[]).length).toBe(10);
  const page2 = (await graph.api(String(page1['@odata.nextLink'])).get()) as Json;
  expect((page2['value'] as Json[]).length).toBe(2);
  expect(page2).not.toHaveProperty('@odata.nextLink');

  clock.advance({ minutes: 30 });
  const since = clock.now().toUTC().toISO()!;
  await graph.api(`/me/todo/lists/${listId}/tasks/${ids[3]!}`).patch({ status: 'completed' });
  clock.advance({ minutes: 5 });
  await graph.api(`/me/todo/lists/${listId}/tasks/${ids[7]!}`).patch({ title: 'T7 renamed' });
  const changed = ((await graph.api(`/me/todo/lists/${listId}/tasks?$filter=${encodeURIComponent(`lastModifiedDateTime ge ${since}`)}`).get()) as Json)['value'] as Json[];
  expect(changed.map((t) => [t['id'], t['status']])).toEqual([
    [ids[3], 'completed'],
    [ids[7], 'notStarted'],
  ]);
  expect(changed[0]!['completedDateTime']).toEqual({ dateTime: '2025-03-01T00:00:00.0000000', timeZone: 'UTC' });
  const completed = ((await graph.api(`/me/todo/lists/${listId}/tasks`).filter("status eq 'completed'").get()) as Json)['value'] as Json[];
  expect(completed.map((t) => t['id'])).toEqual([ids[3]]);
  const open = ((await graph.api(`/me/todo/lists/${listId}/tasks`).filter("status ne 'completed'").top(50).get()) as Json)['value'] as Json[];
  expect(open).toHaveLength(11);
  // A quoted DateTimeOffset is a string: refused. No page documents a lambda on linkedResources: refused.
  expect((await graphFailure(graph.api(`/me/todo/lists/${listId}/tasks`).filter(`lastModifiedDateTime ge '${since}'`).get())).statusCode).toBe(400);
  expect((await graphFailure(graph.api(`/me/todo/lists/${listId}/tasks`).filter("linkedResources/any(l:l/externalId eq 'sk-1')").get())).statusCode).toBe(400);
});

test('To Do: a deleted task is gone (404) and leaves no trace in listings; the tasks delta reports it as @removed', async () => {
  const listId = String((await lists())[0]!['id']);
  const keep = String(((await graph.api(`/me/todo/lists/${listId}/tasks`).post({ title: 'keep' })) as Json)['id']);
  const gone = String(((await graph.api(`/me/todo/lists/${listId}/tasks`).post({ title: 'gone', linkedResources: [{ displayName: 'SK', externalId: 'sk-x' }] })) as Json)['id']);
  const round1 = (await graph.api(`/me/todo/lists/${listId}/tasks/delta`).expand('linkedResources').get()) as Json;
  expect((round1['value'] as Json[]).map((t) => t['id'])).toEqual([keep, gone]);
  const ref = fixture('microsoft', 'todotask-delta-response.json');
  expect(Object.keys(round1)).toEqual(expect.arrayContaining(Object.keys(ref).concat(['value'])));
  expect(Object.keys((round1['value'] as Json[])[0]!)).toEqual(expect.arrayContaining(Object.keys((ref['value'] as Json[])[0]!)));
  clock.advance({ minutes: 1 });
  // The therapist deletes one in the To Do app and completes the other.
  emu.todo.deleteTask(OID, listId, gone);
  emu.todo.completeTask(OID, listId, keep);
  const get = await graphFailure(graph.api(`/me/todo/lists/${listId}/tasks/${gone}`).get());
  expect([get.statusCode, get.code]).toEqual([404, 'ErrorItemNotFound']);
  expect((((await graph.api(`/me/todo/lists/${listId}/tasks`).get()) as Json)['value'] as Json[]).map((t) => t['id'])).toEqual([keep]);
  const round2 = (await graph.api(String(round1['@odata.deltaLink'])).get()) as Json;
  expect(round2['value']).toEqual([
    { '@odata.type': '#microsoft.graph.todoTask', id: gone, '@removed': { reason: 'deleted' } },
    expect.objectContaining({ id: keep, status: 'completed', linkedResources: [] }),
  ]);
  // A delta state the service dropped is 410 syncStateNotFound (delta-query-overview: start a new round).
  emu.todo.expireDelta(OID);
  const expired = await graphFailure(graph.api(String(round2['@odata.deltaLink'])).get());
  expect([expired.statusCode, expired.code]).toEqual([410, 'syncStateNotFound']);
  // API deletes: 204, then 404.
  await graph.api(`/me/todo/lists/${listId}/tasks/${keep}`).delete();
  expect(emu.requests.at(-1)!.status).toBe(204);
  expect((await graphFailure(graph.api(`/me/todo/lists/${listId}/tasks/${keep}`).delete())).statusCode).toBe(404);
});

test('To Do permissions: without Tasks.* 403; Tasks.Read reads but does not write', async () => {
  const listId = String((await lists())[0]!['id']);
  const none = await connect(['Calendars.ReadWrite', 'User.Read']);
  const denied = await graphFailure(none.api('/me/todo/lists').get());
  expect([denied.statusCode, denied.code]).toEqual([403, 'ErrorAccessDenied']);
  const reader = await connect(['Tasks.Read', 'User.Read']);
  expect(((await reader.api(`/me/todo/lists/${listId}/tasks`).get()) as Json)['value']).toEqual([]);
  expect((await graphFailure(reader.api(`/me/todo/lists/${listId}/tasks`).post({ title: 'x' }))).statusCode).toBe(403);
  expect(emu.todo.tasks(OID, listId)).toEqual([]);
});

// ---- sendMail ----------------------------------------------------------------------------------------------------

test("sendMail: the reference's examples answer 202 with no body and are kept, the attachment decoded", async () => {
  for (const name of ['sendmail-request.json', 'sendmail-headers-request.json', 'sendmail-attachment-request.json']) {
    await graph.api('/me/sendMail').post(fixture('microsoft', name));
    expect(emu.requests.at(-1)).toMatchObject({ method: 'POST', path: '/v1.0/me/sendMail', status: 202, responseBytes: 0 });
  }
  const sent = emu.sentMail(OID);
  expect(sent.map((m) => [m.subject, m.body.contentType, m.toRecipients.map((r) => r.address), m.saveToSentItems])).toEqual([
    ['Meet for lunch?', 'text', ['frannis@contoso.com'], false],
    ['9/9/2018: concert', 'html', ['AlexW@contoso.com'], true],
    ['Meet for lunch?', 'text', ['meganb@contoso.com'], true],
  ]);
  expect(sent[0]!.ccRecipients.map((r) => r.address)).toEqual(['danas@contoso.com']);
  expect(sent[0]!.from).toEqual({ name: 'Dr Hale', address: UPN });
  expect(sent[1]!.internetMessageHeaders).toEqual([
    { name: 'x-custom-header-group-name', value: 'Nevada' },
    { name: 'x-custom-header-group-id', value: 'NV001' },
  ]);
  expect(sent[2]!.attachments.map((a) => [a.name, a.contentType, a.content.toString('utf8')])).toEqual([['attachment.txt', 'text/plain', 'Hello World!']]);
});

test('sendMail: invalid requests are 400 and send nothing; without Mail.Send 403', async () => {
  const base = fixture('microsoft', 'sendmail-attachment-request.json');
  const message = base['message'] as Json;
  const cases: [Json, number, string][] = [
    [{ message: { ...message, toRecipients: [] } }, 400, 'ErrorInvalidRecipients'],
    [{ message: { ...message, toRecipients: [{ emailAddress: { address: 'not-an-address' } }] } }, 400, 'ErrorInvalidRecipients'],
    [{ message: { ...message, attachments: [{ ...(message['attachments'] as Json[])[0]!, contentBytes: '%%%' }] } }, 400, 'RequestBodyRead'],
    // The page's Example 5 puts the message's properties at the top level (marked "ignored" by the docs' tests).
    [{ subject: 'Please respond by Friday', toRecipients: message['toRecipients'] }, 400, 'RequestBodyRead'],
    [{ message: { ...message, internetMessageHeaders: [{ name: 'Reply-To', value: 'x@example.com' }] } }, 400, 'InvalidInternetMessageHeader'],
  ];
  for (const [body, status, code] of cases) {
    const e = await graphFailure(graph.api('/me/sendMail').post(body));
    expect([e.statusCode, e.code]).toEqual([status, code]);
  }
  expect(emu.sentMail()).toEqual([]);
  const noSend = await connect(['Calendars.ReadWrite', 'Tasks.ReadWrite', 'User.Read']);
  const denied = await graphFailure(noSend.api('/me/sendMail').post(base));
  expect([denied.statusCode, denied.code]).toEqual([403, 'ErrorAccessDenied']);
  expect(emu.sentMail()).toEqual([]);
});

// ---- faults -----------------------------------------------------------------------------------------------------

test('faults apply to the new routes: 429 with Retry-After ridden out by the RetryHandler, 503 answered, dropAfter keeps the effect', async () => {
  const patient = await connect(ALL, new RetryHandlerOptions(0, 2));
  const listId = String((await lists())[0]!['id']);
  emu.faults.add({ match: { method: 'POST', path: /\/todo\/lists\/[^/]+\/tasks$/ }, fault: { status: 429, retryAfter: 1 } });
  await patient.api(`/me/todo/lists/${listId}/tasks`).post({ title: 'after a 429' });
  const posts = () => emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/tasks'));
  expect(posts().map((r) => r.status)).toEqual([429, 201]);
  expect(posts()[1]!.headers['retry-attempt']).toBe('1');

  emu.faults.add({ match: { path: /\/sendMail$/ }, fault: { status: 503 } });
  const e503 = await graphFailure(graph.api('/me/sendMail').post(fixture('microsoft', 'sendmail-request.json')));
  expect(e503.statusCode).toBe(503);
  expect(emu.sentMail()).toEqual([]);

  emu.faults.add({ match: { path: /\/sendMail$/ }, fault: { dropAfter: true } });
  const lost = await graphFailure(graph.api('/me/sendMail').post(fixture('microsoft', 'sendmail-request.json')));
  expect(lost.statusCode).toBe(-1);
  // The answer was lost, the message was sent.
  expect(emu.sentMail()).toHaveLength(1);
  expect(emu.requests.filter((r) => r.path.endsWith('/sendMail')).map((r) => r.status)).toEqual([503, 0]);

  emu.faults.add({ match: { method: 'POST', path: /\/tasks$/ }, fault: { dropAfter: true } });
  expect((await graphFailure(graph.api(`/me/todo/lists/${listId}/tasks`).post({ title: 'lost answer' }))).statusCode).toBe(-1);
  expect(emu.todo.tasks(OID, listId).map((t) => t['title'])).toEqual(['after a 429', 'lost answer']);
  expect(emu.faults.pending()).toBe(0);
});

// ---- a webhook receiver -----------------------------------------------------------------------------------------

async function receiver(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('validationToken');
      if (token !== null) res.writeHead(200, { 'Content-Type': 'text/plain' }).end(token);
      else res.writeHead(202).end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/graph`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
