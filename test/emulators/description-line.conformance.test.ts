// Conformance of our one line in an event's description (setDescriptionLine): the emulators' conditional writes (Google
// events.patch and Graph PATCH with If-Match, 412 on a stale version, a new etag on every write, Graph's body kept with its
// contentType) through the real client libraries, then both connectors through them over HTTP: plain and HTML
// descriptions, replace, remove, an edit that lands between our read and our write, a deleted event, faults, and who is
// told (Google's sendUpdates; Graph always tells an organizer's attendees).
import type { calendar_v3 } from '@googleapis/calendar';
import type { Client } from '@microsoft/microsoft-graph-client';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { DEFAULT_LINE_TEXT } from '../../connectors/description-line.js';
import { NotFound, RetryAfter } from '../../connectors/errors.js';
import type { GoogleCalendarConnector } from '../../connectors/google/calendar.js';
import { GOOGLE_SCOPES } from '../../connectors/google/oauth.js';
import { MICROSOFT_SCOPES } from '../../connectors/microsoft/auth.js';
import type { GraphCalendarConnector } from '../../connectors/microsoft/calendar.js';
import { googleClients, googleConnector, graphConnect, graphConnector, graphFailure, startGoogle, startGraph } from './conformance.js';
import type { GoogleEmulator } from './google/server.js';
import type { GraphEmulator } from './microsoft/server.js';

type Json = Record<string, unknown>;

const caught = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);
const LINE = { text: DEFAULT_LINE_TEXT, url: 'https://sk.example/book/AbC123' };
const NEXT = { text: DEFAULT_LINE_TEXT, url: 'https://sk.example/book/XyZ789' };
const plainLine = (url: string): string => `${DEFAULT_LINE_TEXT} ${url}`;
const htmlLine = (url: string): string => `<p data-sk="change-line">${DEFAULT_LINE_TEXT} <a href="${url}">${url}</a></p>`;
/** What the Calendar web editor writes into a description: HTML with <br> lines and links. */
const GOOGLE_HTML = 'Hi <b>Sam</b>,<br>please bring your notes.<br><a href="https://maps.example/room?a=1&amp;b=2">Room 2</a>';
const THERAPIST_TEXT = 'Room 2, second floor.\nNeed to change this time? Call me on 555-0100.';

// =====================================================================================================================
// Google: events.get + events.patch with If-Match
// =====================================================================================================================

describe('Google', () => {
  const SUB = '7001';
  const EMAIL = 'dr.lane@example.com';
  const TZ = 'America/New_York';
  const CLIENT = 'client@example.org';

  let emu: GoogleEmulator;

  beforeEach(async () => {
    emu = await startGoogle({ sub: SUB, email: EMAIL, timeZone: TZ });
  });

  afterEach(async () => {
    await emu.close();
  });

  async function client(): Promise<calendar_v3.Calendar> {
    return (await googleClients(emu, SUB, GOOGLE_SCOPES)).cal;
  }

  /** The product's connector; retries inside a call do not wait. */
  async function connector(retries = 0): Promise<GoogleCalendarConnector> {
    return googleConnector(emu, SUB, GOOGLE_SCOPES, { retries });
  }

  /** A session on the therapist's calendar, with this description (none when undefined) and the client invited. */
  function session(description?: string): string {
    const e = emu.insertEvent(EMAIL, {
      summary: 'Session',
      start: { dateTime: '2025-03-05T10:00:00', timeZone: TZ },
      end: { dateTime: '2025-03-05T10:50:00', timeZone: TZ },
      attendees: [{ email: CLIENT }],
      ...(description === undefined ? {} : { description }),
    });
    return e['id'] as string;
  }

  const description = (id: string): unknown => emu.getEvent(EMAIL, id)?.['description'];
  const eventCalls = (id: string) => emu.requests.filter((r) => r.path.endsWith(`/events/${id}`));
  const patches = (id: string) => eventCalls(id).filter((r) => r.method === 'PATCH');

  // ---- the emulator, through @googleapis/calendar ---------------------------------------------------------------------

  test('events.patch with If-Match: the current etag writes and moves it; a stale one is 412 with Google\'s body; "*" matches', async () => {
    const id = session('Room 2');
    const cal = await client();
    const read = await cal.events.get({ calendarId: EMAIL, eventId: id });
    const etag = read.data.etag!;
    expect(etag).toMatch(/^"\d+"$/);
    const ok = await cal.events.patch({ calendarId: EMAIL, eventId: id, requestBody: { description: 'Room 3' } }, { headers: { 'If-Match': etag } });
    expect(ok.data.etag).not.toBe(etag);
    expect(emu.requests.at(-1)).toMatchObject({ method: 'PATCH', status: 200, ifMatch: etag });
    // The same etag again: the event changed since (our own write), so the precondition fails and nothing is written.
    const stale = await caught(cal.events.patch({ calendarId: EMAIL, eventId: id, requestBody: { description: 'lost' } }, { headers: { 'If-Match': etag }, retry: false }));
    const res = (stale as { response?: { status: number; data: unknown } }).response;
    expect(res?.status).toBe(412);
    expect(res?.data).toEqual({
      error: { code: 412, message: 'Precondition Failed', errors: [{ domain: 'global', reason: 'conditionNotMet', message: 'Precondition Failed', locationType: 'header', location: 'If-Match' }] },
    });
    expect(description(id)).toBe('Room 3');
    // The user's own edit in the Calendar UI moves the etag too; update and delete are conditional as well.
    const before = emu.getEvent(EMAIL, id)!['etag'];
    emu.patchEvent(EMAIL, id, { location: 'Room 4' });
    expect(emu.getEvent(EMAIL, id)!['etag']).not.toBe(before);
    expect((await caught(cal.events.delete({ calendarId: EMAIL, eventId: id }, { headers: { 'If-Match': String(before) }, retry: false })) as { response?: { status: number } }).response?.status).toBe(412);
    await cal.events.patch({ calendarId: EMAIL, eventId: id, requestBody: { description: 'Room 5' } }, { headers: { 'If-Match': '*' } });
    expect(description(id)).toBe('Room 5');
    // Without If-Match a write is unconditional, as before.
    await cal.events.patch({ calendarId: EMAIL, eventId: id, requestBody: { description: 'Room 6' } });
    expect(description(id)).toBe('Room 6');
  });

  // ---- the connector ------------------------------------------------------------------------------------------------

  test('plain text: the line after a blank line; replaced by a new link; the same again writes nothing; removal gives the text back', async () => {
    const id = session(THERAPIST_TEXT);
    const cal = await connector();
    expect(await cal.setDescriptionLine(EMAIL, id, LINE, { notifyAttendees: false })).toEqual({ changed: true });
    expect(description(id)).toBe(`${THERAPIST_TEXT}\n\n${plainLine(LINE.url)}`);
    // One read, one conditional write on the etag read.
    const [get, patch] = eventCalls(id);
    expect(get).toMatchObject({ method: 'GET', status: 200 });
    expect(patch).toMatchObject({ method: 'PATCH', status: 200, sendUpdates: 'none', notifiedGuests: [] });
    expect(patch?.ifMatch).toMatch(/^"\d+"$/);

    expect(await cal.setDescriptionLine(EMAIL, id, NEXT, { notifyAttendees: false })).toEqual({ changed: true });
    expect(description(id)).toBe(`${THERAPIST_TEXT}\n\n${plainLine(NEXT.url)}`);
    const etag = emu.getEvent(EMAIL, id)!['etag'];
    expect(await cal.setDescriptionLine(EMAIL, id, NEXT, { notifyAttendees: true })).toEqual({ changed: false });
    expect(emu.getEvent(EMAIL, id)!['etag']).toBe(etag);
    expect(patches(id)).toHaveLength(2);

    expect(await cal.setDescriptionLine(EMAIL, id, null, { notifyAttendees: false })).toEqual({ changed: true });
    expect(description(id)).toBe(THERAPIST_TEXT);
    expect(await cal.setDescriptionLine(EMAIL, id, null, { notifyAttendees: false })).toEqual({ changed: false });
    expect(patches(id)).toHaveLength(3);
  });

  test('HTML (as the web editor writes it): a marked paragraph at the end, replaced, removed byte for byte', async () => {
    const id = session(GOOGLE_HTML);
    const cal = await connector();
    await cal.setDescriptionLine(EMAIL, id, LINE, { notifyAttendees: false });
    expect(description(id)).toBe(GOOGLE_HTML + htmlLine(LINE.url));
    await cal.setDescriptionLine(EMAIL, id, NEXT, { notifyAttendees: false });
    expect(description(id)).toBe(GOOGLE_HTML + htmlLine(NEXT.url));
    // The editor drops our attribute and makes lines of <br>: the line is still found by its text.
    emu.patchEvent(EMAIL, id, { description: `${GOOGLE_HTML}<br><br>${DEFAULT_LINE_TEXT} <a href="${NEXT.url}">${NEXT.url}</a>` });
    expect(await cal.setDescriptionLine(EMAIL, id, NEXT, { notifyAttendees: false })).toEqual({ changed: false });
    expect(await cal.setDescriptionLine(EMAIL, id, null, { notifyAttendees: false })).toEqual({ changed: true });
    expect(description(id)).toBe(GOOGLE_HTML);
  });

  test('an event without a description gets just the line; removing it clears the field again', async () => {
    const id = session();
    const cal = await connector();
    await cal.setDescriptionLine(EMAIL, id, LINE, { notifyAttendees: false });
    expect(description(id)).toBe(plainLine(LINE.url));
    await cal.setDescriptionLine(EMAIL, id, null, { notifyAttendees: false });
    expect(emu.getEvent(EMAIL, id)).not.toHaveProperty('description');
  });

  test('the therapist edits between our read and our write: 412, read again, both kept', async () => {
    const id = session(THERAPIST_TEXT);
    const cal = await connector();
    let edits = 0;
    emu.setRequestHook((info) => {
      // Just before our first PATCH is processed, the therapist saves a new description in the Calendar UI.
      if (info.method === 'PATCH' && info.phase === 'before' && edits++ === 0) emu.patchEvent(EMAIL, id, { description: `${THERAPIST_TEXT}\nBring the forms.` });
    });
    expect(await cal.setDescriptionLine(EMAIL, id, LINE, { notifyAttendees: false })).toEqual({ changed: true });
    emu.setRequestHook(null);
    expect(description(id)).toBe(`${THERAPIST_TEXT}\nBring the forms.\n\n${plainLine(LINE.url)}`);
    expect(eventCalls(id).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 200', 'PATCH 412', 'GET 200', 'PATCH 200']);
    const [first, second] = patches(id);
    expect(first?.ifMatch).not.toBe(second?.ifMatch);
  });

  test('an event that keeps changing: 3 more tries, then RetryAfter (refused: nothing was written)', async () => {
    const id = session('Room 2');
    const cal = await connector();
    let n = 0;
    emu.setRequestHook((info) => {
      if (info.method === 'PATCH' && info.phase === 'before') emu.patchEvent(EMAIL, id, { description: `Room 2 (edit ${++n})` });
    });
    const err = await caught(cal.setDescriptionLine(EMAIL, id, LINE, { notifyAttendees: false }));
    emu.setRequestHook(null);
    expect(err).toBeInstanceOf(RetryAfter);
    expect(err).toMatchObject({ refused: true, seconds: null });
    expect(patches(id).map((r) => r.status)).toEqual([412, 412, 412, 412]);
    expect(description(id)).toBe('Room 2 (edit 4)');
  });

  test('a deleted event is NotFound: deleted before, deleted between our read and our write, never there', async () => {
    const cal = await connector();
    const gone = session('Room 2');
    emu.deleteEvent(EMAIL, gone);
    expect(await caught(cal.setDescriptionLine(EMAIL, gone, LINE, { notifyAttendees: false }))).toBeInstanceOf(NotFound);
    expect(patches(gone)).toHaveLength(0);
    const racing = session('Room 2');
    emu.setRequestHook((info) => {
      if (info.method === 'PATCH' && info.phase === 'before') emu.deleteEvent(EMAIL, racing);
    });
    expect(await caught(cal.setDescriptionLine(EMAIL, racing, LINE, { notifyAttendees: false }))).toBeInstanceOf(NotFound);
    emu.setRequestHook(null);
    expect(patches(racing).map((r) => r.status)).toEqual([412]);
    expect(await caught(cal.setDescriptionLine(EMAIL, 'nosucheventid0', LINE, { notifyAttendees: false }))).toBeInstanceOf(NotFound);
  });

  test('faults: a long 429 and a 500 surface as RetryAfter; retried inside the call they write once; a lost answer is not written twice', async () => {
    const id = session('Room 2');
    const strict = await connector(0);
    emu.faults.add({ match: { method: 'GET', path: /\/events\// }, fault: { status: 429, retryAfter: 120 } });
    expect(await caught(strict.setDescriptionLine(EMAIL, id, LINE, { notifyAttendees: false }))).toMatchObject({ name: 'RetryAfter', seconds: 120, refused: true });
    emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 500 } });
    expect(await caught(strict.setDescriptionLine(EMAIL, id, LINE, { notifyAttendees: false }))).toMatchObject({ name: 'RetryAfter', seconds: null });
    expect(description(id)).toBe('Room 2');

    const patient = await connector(2);
    emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 503 } });
    emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 429, retryAfter: 1 } });
    expect(await patient.setDescriptionLine(EMAIL, id, LINE, { notifyAttendees: false })).toEqual({ changed: true });
    expect(patches(id).slice(-3).map((r) => r.status)).toEqual([503, 429, 200]);
    expect(description(id)).toBe(`Room 2\n\n${plainLine(LINE.url)}`);

    // The write happens and its answer is lost: the repeat is refused (the etag moved), the read after it finds the line.
    emu.faults.add({ match: { method: 'PATCH' }, fault: { dropAfter: true } });
    expect(await patient.setDescriptionLine(EMAIL, id, NEXT, { notifyAttendees: false })).toEqual({ changed: true });
    expect(patches(id).slice(-2).map((r) => r.status)).toEqual([0, 412]);
    expect(description(id)).toBe(`Room 2\n\n${plainLine(NEXT.url)}`);
  });

  test('sendUpdates: none mails no guest, all mails the client (as the emulator records Google would)', async () => {
    const quiet = session('Room 2');
    const told = session('Room 2');
    const cal = await connector();
    await cal.setDescriptionLine(EMAIL, quiet, LINE, { notifyAttendees: false });
    await cal.setDescriptionLine(EMAIL, told, LINE, { notifyAttendees: true });
    expect(patches(quiet)).toEqual([expect.objectContaining({ status: 200, sendUpdates: 'none', notifiedGuests: [] })]);
    expect(patches(told)).toEqual([expect.objectContaining({ status: 200, sendUpdates: 'all', notifiedGuests: [CLIENT] })]);
    // The read asks for what it needs only (a partial response).
    expect(eventCalls(told)[0]?.query['fields']).toBe('id,status,etag,description');
  });
});

// =====================================================================================================================
// Microsoft Graph: GET body + @odata.etag, PATCH body with If-Match
// =====================================================================================================================

describe('Graph', () => {
  const OID = '5b2e9c1a-3d4f-4a6b-8c7d-9e0f1a2b3c4d';
  const TID = '84bd8158-6d4d-4958-8b9f-9d6445542f95';
  const UPN = 'dr.lane@contoso.onmicrosoft.com';
  const USER = { oid: OID, tid: TID, upn: UPN, displayName: 'Dr Lane', timeZone: 'Europe/London' };
  const CLIENT = 'client@example.org';
  /** A body as Exchange answers it: a whole HTML document. */
  const EXCHANGE_HTML =
    '<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n<body>\r\n<div>Room 2, second floor.</div>\r\n<div>Need to change this time? Call me.</div>\r\n</body>\r\n</html>\r\n';

  let emu: GraphEmulator;

  beforeEach(async () => {
    emu = await startGraph(USER);
  });

  afterEach(async () => {
    await emu.close();
  });

  async function client(): Promise<Client> {
    return (await graphConnect(emu, USER, MICROSOFT_SCOPES)).graph;
  }

  /** The product's connector; the RetryHandler retries nothing unless told, so each answer is seen. */
  async function connector(maxRetries = 0): Promise<GraphCalendarConnector> {
    return graphConnector(emu, USER, { maxRetries });
  }

  /** A meeting the therapist organises with the client, with this body (Graph's default, an empty HTML body, when undefined). */
  function session(body?: { contentType: 'html' | 'text'; content: string }, attendees = true): string {
    const e = emu.createEvent(OID, 'default', {
      subject: 'Session',
      start: { dateTime: '2025-03-05T10:00:00', timeZone: 'UTC' },
      end: { dateTime: '2025-03-05T10:50:00', timeZone: 'UTC' },
      ...(attendees ? { attendees: [{ emailAddress: { address: CLIENT }, type: 'required' }] } : {}),
      ...(body ? { body } : {}),
    });
    return e['id'] as string;
  }

  const body = (id: string): unknown => emu.getEvent(OID, id)?.['body'];
  const eventCalls = (id: string) => emu.requests.filter((r) => r.path.endsWith(`/events/${encodeURIComponent(id)}`) || r.path.endsWith(`/events/${id}`));
  const patches = (id: string) => eventCalls(id).filter((r) => r.method === 'PATCH');

  // ---- the emulator, through @microsoft/microsoft-graph-client -------------------------------------------------------

  test('PATCH with If-Match: the @odata.etag read writes and moves it; a stale one is 412 ErrorIrresolvableConflict; the body keeps its contentType', async () => {
    const id = session({ contentType: 'text', content: 'Room 2' }, false);
    const graph = await client();
    const read = (await graph.api(`/me/events/${id}?$select=id,body,changeKey`).get()) as Json;
    const etag = read['@odata.etag'] as string;
    expect(etag).toBe(`W/"${String(read['changeKey'])}"`);
    expect(read['body']).toEqual({ contentType: 'text', content: 'Room 2' });
    const ok = (await graph.api(`/me/events/${id}`).header('If-Match', etag).patch({ body: { contentType: 'text', content: 'Room 3' } })) as Json;
    expect(ok['@odata.etag']).not.toBe(etag);
    expect(ok['body']).toEqual({ contentType: 'text', content: 'Room 3' });
    expect(emu.requests.at(-1)?.headers['if-match']).toBe(etag);
    const stale = await graphFailure(graph.api(`/me/events/${id}`).header('If-Match', etag).patch({ body: { contentType: 'text', content: 'lost' } }));
    expect(stale).toMatchObject({ statusCode: 412, code: 'ErrorIrresolvableConflict' });
    expect(stale.message).toBe('The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.');
    expect(body(id)).toEqual({ contentType: 'text', content: 'Room 3' });
    // The user's edit in Outlook moves the version too; DELETE is conditional as well; "*" matches.
    const now = emu.getEvent(OID, id)!['@odata.etag'] as string;
    emu.updateEvent(OID, id, { location: { displayName: 'Room 4' } });
    expect(emu.getEvent(OID, id)!['@odata.etag']).not.toBe(now);
    expect((await graphFailure(graph.api(`/me/events/${id}`).header('If-Match', now).delete())).statusCode).toBe(412);
    await graph.api(`/me/events/${id}`).header('If-Match', '*').patch({ body: { contentType: 'html', content: '<p>Room 5</p>' } });
    expect(body(id)).toEqual({ contentType: 'html', content: '<p>Room 5</p>' });
  });

  // ---- the connector ------------------------------------------------------------------------------------------------

  test('an HTML body (a whole document, as Exchange answers): the marked paragraph inside <body>; replaced; the same again writes nothing; removed byte for byte', async () => {
    const id = session({ contentType: 'html', content: EXCHANGE_HTML });
    const cal = await connector();
    expect(await cal.setDescriptionLine('primary', id, LINE, { notifyAttendees: false })).toEqual({ changed: true });
    expect(body(id)).toEqual({ contentType: 'html', content: EXCHANGE_HTML.replace('</body>', `${htmlLine(LINE.url)}</body>`) });
    const [get, patch] = eventCalls(id);
    expect(get).toMatchObject({ method: 'GET', status: 200 });
    expect(get?.query['$select']).toBe('id,isCancelled,changeKey,body');
    // Not converted to text on the way (Prefer outlook.body-content-type would).
    expect(get?.headers['prefer'] ?? '').not.toContain('body-content-type');
    expect(patch).toMatchObject({ method: 'PATCH', status: 200 });
    expect(patch?.headers['if-match']).toMatch(/^W\/"/);

    await cal.setDescriptionLine('primary', id, NEXT, { notifyAttendees: false });
    expect((body(id) as Json)['content']).toBe(EXCHANGE_HTML.replace('</body>', `${htmlLine(NEXT.url)}</body>`));
    expect(await cal.setDescriptionLine('primary', id, NEXT, { notifyAttendees: false })).toEqual({ changed: false });
    expect(patches(id)).toHaveLength(2);
    expect(await cal.setDescriptionLine('primary', id, null, { notifyAttendees: false })).toEqual({ changed: true });
    expect(body(id)).toEqual({ contentType: 'html', content: EXCHANGE_HTML });
  });

  test('a text body stays text: a plain line, removed to the original; an event with no body gets just the element', async () => {
    const text = session({ contentType: 'text', content: THERAPIST_TEXT });
    const cal = await connector();
    await cal.setDescriptionLine('primary', text, LINE, { notifyAttendees: false });
    expect(body(text)).toEqual({ contentType: 'text', content: `${THERAPIST_TEXT}\n\n${plainLine(LINE.url)}` });
    await cal.setDescriptionLine('primary', text, null, { notifyAttendees: false });
    expect(body(text)).toEqual({ contentType: 'text', content: THERAPIST_TEXT });

    const empty = session();
    expect(body(empty)).toEqual({ contentType: 'html', content: '' });
    await cal.setDescriptionLine('primary', empty, LINE, { notifyAttendees: false });
    expect(body(empty)).toEqual({ contentType: 'html', content: htmlLine(LINE.url) });
    await cal.setDescriptionLine('primary', empty, null, { notifyAttendees: false });
    expect(body(empty)).toEqual({ contentType: 'html', content: '' });
  });

  test('the therapist edits between our read and our write: 412, read again, both kept; an event that keeps changing is RetryAfter', async () => {
    const id = session({ contentType: 'html', content: '<div>Room 2</div>' });
    const cal = await connector();
    let edits = 0;
    emu.setRequestHook((info) => {
      if (info.method === 'PATCH' && info.phase === 'before' && edits++ === 0) emu.updateEvent(OID, id, { body: { contentType: 'html', content: '<div>Room 2</div><div>Bring the forms.</div>' } });
    });
    expect(await cal.setDescriptionLine('primary', id, LINE, { notifyAttendees: false })).toEqual({ changed: true });
    emu.setRequestHook(null);
    expect(body(id)).toEqual({ contentType: 'html', content: `<div>Room 2</div><div>Bring the forms.</div>${htmlLine(LINE.url)}` });
    expect(eventCalls(id).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 200', 'PATCH 412', 'GET 200', 'PATCH 200']);

    const busy = session({ contentType: 'text', content: 'Room 2' });
    let n = 0;
    emu.setRequestHook((info) => {
      if (info.method === 'PATCH' && info.phase === 'before') emu.updateEvent(OID, busy, { body: { contentType: 'text', content: `Room 2 (edit ${++n})` } });
    });
    const err = await caught(cal.setDescriptionLine('primary', busy, LINE, { notifyAttendees: false }));
    emu.setRequestHook(null);
    expect(err).toBeInstanceOf(RetryAfter);
    expect(err).toMatchObject({ refused: true });
    expect(patches(busy).map((r) => r.status)).toEqual([412, 412, 412, 412]);
    expect(body(busy)).toEqual({ contentType: 'text', content: 'Room 2 (edit 4)' });
  });

  test('a deleted event is NotFound, and so is a cancelled one kept on an attendee\'s calendar', async () => {
    const cal = await connector();
    const gone = session({ contentType: 'text', content: 'Room 2' });
    emu.deleteEvent(OID, gone);
    expect(await caught(cal.setDescriptionLine('primary', gone, LINE, { notifyAttendees: false }))).toBeInstanceOf(NotFound);
    const invited = emu.createEvent(OID, 'default', {
      subject: 'Case conference',
      start: { dateTime: '2025-03-06T10:00:00', timeZone: 'UTC' },
      end: { dateTime: '2025-03-06T11:00:00', timeZone: 'UTC' },
      organizer: { emailAddress: { address: 'chair@example.org', name: 'Chair' } },
      attendees: [{ emailAddress: { address: UPN }, type: 'required', status: { response: 'accepted', time: '2025-02-20T10:00:00Z' } }],
    });
    emu.cancelEvent(OID, String(invited['id']));
    expect(await caught(cal.setDescriptionLine('primary', String(invited['id']), LINE, { notifyAttendees: false }))).toBeInstanceOf(NotFound);
    expect(emu.requests.filter((r) => r.method === 'PATCH')).toHaveLength(0);
  });

  test('faults: 429 with a long Retry-After and 503 surface as RetryAfter; a short one is retried by the client; a lost answer is not written twice', async () => {
    const id = session({ contentType: 'text', content: 'Room 2' });
    const strict = await connector(0);
    emu.faults.add({ match: { method: 'GET', path: /\/events\// }, fault: { status: 429, retryAfter: 120 } });
    expect(await caught(strict.setDescriptionLine('primary', id, LINE, { notifyAttendees: false }))).toMatchObject({ name: 'RetryAfter', seconds: 120, refused: true });
    emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 503 } });
    expect(await caught(strict.setDescriptionLine('primary', id, LINE, { notifyAttendees: false }))).toMatchObject({ name: 'RetryAfter' });
    expect(body(id)).toEqual({ contentType: 'text', content: 'Room 2' });

    const patient = await connector(1);
    emu.faults.add({ match: { method: 'PATCH' }, fault: { status: 429, retryAfter: 0 } });
    expect(await patient.setDescriptionLine('primary', id, LINE, { notifyAttendees: false })).toEqual({ changed: true });
    expect(patches(id).slice(-2).map((r) => r.status)).toEqual([429, 200]);

    // Written, answer lost: RetryAfter (unsure); the outbox's next try reads the line in place and writes nothing.
    emu.faults.add({ match: { method: 'PATCH' }, fault: { dropAfter: true } });
    expect(await caught(strict.setDescriptionLine('primary', id, NEXT, { notifyAttendees: false }))).toMatchObject({ name: 'RetryAfter', refused: false });
    expect(await strict.setDescriptionLine('primary', id, NEXT, { notifyAttendees: false })).toEqual({ changed: false });
    expect(body(id)).toEqual({ contentType: 'text', content: `Room 2\n\n${plainLine(NEXT.url)}` });
  });

  test('Graph tells an organizer\'s attendees whatever notifyAttendees says; a call that changes nothing tells no one', async () => {
    const id = session({ contentType: 'text', content: 'Room 2' });
    const cal = await connector();
    await cal.setDescriptionLine('primary', id, LINE, { notifyAttendees: false });
    expect(emu.attendeeUpdates('update')).toEqual([expect.objectContaining({ eventId: id, to: [CLIENT] })]);
    expect(await cal.setDescriptionLine('primary', id, LINE, { notifyAttendees: true })).toEqual({ changed: false });
    expect(emu.attendeeUpdates('update')).toHaveLength(1);
    expect(cal.writesNotifyAttendees).toBe(true);
  });
});
