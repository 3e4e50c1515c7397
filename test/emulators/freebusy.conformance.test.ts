// Conformance of free/busy, the final check before a booking: the emulators' freebusy.query (Google) and getSchedule
// (Graph) through the real client libraries, against the references' examples (google/fixtures/freebusy-query-response.json,
// microsoft/fixtures/getschedule-response.json) and their documented answers; then the connectors' freeBusy through them.
import type { calendar_v3 } from '@googleapis/calendar';
import type { Client, Context, Middleware } from '@microsoft/microsoft-graph-client';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ConnectorError, Forbidden, MissingScope, NotFound, RetryAfter } from '../../connectors/errors.js';
import { GOOGLE_SCOPES } from '../../connectors/google/oauth.js';
import { MICROSOFT_SCOPES } from '../../connectors/microsoft/auth.js';
import type { GraphCalendarConnector } from '../../connectors/microsoft/calendar.js';
import { fixture, googleClients, googleConnector, graphConnect, graphConnector, graphFailure, startGoogle, startGraph } from './conformance.js';
import type { GoogleEmulator } from './google/server.js';
import { graphRedirect, type GraphEmulator } from './microsoft/server.js';

type Json = Record<string, unknown>;
type Busy = { start: Date; end: Date }[];

const caught = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);
/** Busy intervals as ISO strings (UTC), for comparing. */
const iso = (busy: Busy): string[][] => busy.map((b) => [b.start.toISOString(), b.end.toISOString()]);
const d = (s: string): Date => new Date(s);

// =====================================================================================================================
// Google: freebusy.query
// =====================================================================================================================

describe('Google freebusy.query', () => {
  const SUB = '512';
  const EMAIL = 'freebusy@example.com';
  const PRACTICE = 'practice@group.calendar.google.com';
  const TZ = 'America/New_York';
  const S = (s: string): string => `https://www.googleapis.com/auth/${s}`;

  let emu: GoogleEmulator;

  beforeEach(async () => {
    emu = await startGoogle({ sub: SUB, email: EMAIL, timeZone: TZ });
    emu.addCalendar(SUB, { id: PRACTICE, summary: 'Practice', timeZone: TZ });
  });

  afterEach(async () => {
    await emu.close();
  });

  /** The real client, as the product builds it (the emulator as rootUrl). */
  async function client(scopes: readonly string[] = GOOGLE_SCOPES): Promise<calendar_v3.Calendar> {
    return (await googleClients(emu, SUB, scopes)).cal;
  }

  /** The product's connector, with the product's scopes unless told otherwise; retries do not wait. */
  async function connector(opts: { scopes?: readonly string[]; retries?: number } = {}) {
    const marked: string[] = [];
    const cal = await googleConnector(emu, SUB, opts.scopes ?? GOOGLE_SCOPES, { retries: opts.retries ?? 0, markNeedsReauth: async (r: string) => void marked.push(r) });
    return { cal, marked };
  }

  /** A timed event in New York time on `day` from hh:mm, `minutes` long. */
  function timed(day: string, hh: number, mm = 0, minutes = 50): Json {
    const local = (h: number, m: number): string => `${day}T${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:00`;
    const endMin = hh * 60 + mm + minutes;
    return { start: { dateTime: local(hh, mm), timeZone: TZ }, end: { dateTime: local(Math.floor(endMin / 60), endMin % 60), timeZone: TZ } };
  }

  type FailureInfo = { status: number | undefined; reason: unknown; message: unknown; headers: Headers | undefined };
  async function failure(p: Promise<unknown>): Promise<FailureInfo> {
    try {
      await p;
    } catch (e) {
      const err = e as { response?: { status: number; headers: Headers; data?: { error?: { message?: string; errors?: { reason?: string }[] } } } };
      return { status: err.response?.status, reason: err.response?.data?.error?.errors?.[0]?.reason, message: err.response?.data?.error?.message, headers: err.response?.headers };
    }
    throw new Error('expected the call to fail');
  }

  const freeBusyCalls = () => emu.requests.filter((r) => r.method === 'POST' && r.path === '/calendar/v3/freeBusy');

  // ---- the emulator, through @googleapis/calendar --------------------------------------------------------------------

  test('the answer has the reference example\'s keys; busy from an event and a recurring series, in the asked timeZone', async () => {
    emu.insertEvent(EMAIL, { summary: 'Session', ...timed('2025-03-05', 10) });
    emu.insertEvent(EMAIL, { summary: 'Group', ...timed('2025-03-05', 12), recurrence: ['RRULE:FREQ=WEEKLY;COUNT=3'] });
    const cal = await client();
    const prague = await cal.freebusy.query({
      requestBody: { timeMin: '2025-03-03T00:00:00Z', timeMax: '2025-03-17T00:00:00Z', timeZone: 'Europe/Prague', items: [{ id: EMAIL }] },
    });
    const ref = fixture('google', 'freebusy-query-response.json');
    const refCalendar = Object.values(ref['calendars'] as Record<string, Json>)[0]!;
    const refBusy = (refCalendar['busy'] as Json[])[0]!;
    const data = prague.data as Json;
    expect(Object.keys(data).sort()).toEqual(Object.keys(ref).sort());
    const entry = (data['calendars'] as Record<string, Json>)[EMAIL]!;
    expect(Object.keys(entry).sort()).toEqual(Object.keys(refCalendar).sort());
    expect(Object.keys((entry['busy'] as Json[])[0]!).sort()).toEqual(Object.keys(refBusy).sort());
    // timeMin/timeMax in UTC with milliseconds, the busy periods with the asked zone's offset: as in the example.
    expect(data).toMatchObject({ kind: 'calendar#freeBusy', timeMin: '2025-03-03T00:00:00.000Z', timeMax: '2025-03-17T00:00:00.000Z' });
    expect(String(ref['timeMin'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    expect(String(refBusy['start'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+02:00$/);
    expect(entry['busy']).toEqual([
      { start: '2025-03-05T16:00:00+01:00', end: '2025-03-05T16:50:00+01:00' },
      { start: '2025-03-05T18:00:00+01:00', end: '2025-03-05T18:50:00+01:00' },
      // New York is on summer time from 9 March, Prague not yet: an hour closer.
      { start: '2025-03-12T17:00:00+01:00', end: '2025-03-12T17:50:00+01:00' },
    ]);
    // Without timeZone: UTC (FreeBusyRequest.timeZone "The default is UTC"); the window cuts what lies outside it.
    const utc = await cal.freebusy.query({ requestBody: { timeMin: '2025-03-05T15:30:00Z', timeMax: '2025-03-19T16:30:00Z', items: [{ id: 'primary' }] } });
    expect(utc.data.calendars).toEqual({
      primary: {
        busy: [
          { start: '2025-03-05T15:30:00Z', end: '2025-03-05T15:50:00Z' },
          { start: '2025-03-05T17:00:00Z', end: '2025-03-05T17:50:00Z' },
          { start: '2025-03-12T16:00:00Z', end: '2025-03-12T16:50:00Z' },
          { start: '2025-03-19T16:00:00Z', end: '2025-03-19T16:30:00Z' },
        ],
      },
    });
  });

  test('free time is not busy: a transparent all-day event, a deleted event, a cancelled instance, a declined invitation; an opaque all-day event is', async () => {
    emu.insertEvent(EMAIL, { summary: 'Holiday (free)', transparency: 'transparent', start: { date: '2025-03-06' }, end: { date: '2025-03-07' } });
    emu.insertEvent(EMAIL, { summary: 'Away', start: { date: '2025-03-07' }, end: { date: '2025-03-08' } });
    const gone = emu.insertEvent(EMAIL, { summary: 'Gone', ...timed('2025-03-06', 10) });
    emu.deleteEvent(EMAIL, gone['id'] as string);
    emu.insertEvent(EMAIL, { summary: 'Webinar', ...timed('2025-03-06', 14), attendees: [{ email: EMAIL, responseStatus: 'declined' }, { email: 'host@else.example', organizer: true }] });
    const series = emu.insertEvent(EMAIL, { summary: 'Group', ...timed('2025-03-04', 18), recurrence: ['RRULE:FREQ=DAILY;COUNT=2'] });
    const cal = await client();
    const instances = await cal.events.instances({ calendarId: EMAIL, eventId: series['id'] as string });
    await cal.events.delete({ calendarId: EMAIL, eventId: instances.data.items![1]!.id! });
    const res = await cal.freebusy.query({ requestBody: { timeMin: '2025-03-03T00:00:00Z', timeMax: '2025-03-10T00:00:00Z', items: [{ id: EMAIL }] } });
    expect(res.data.calendars?.[EMAIL]?.busy).toEqual([
      { start: '2025-03-04T23:00:00Z', end: '2025-03-04T23:50:00Z' },
      // An all-day event takes the calendar's own day: midnight to midnight in New York.
      { start: '2025-03-07T05:00:00Z', end: '2025-03-08T05:00:00Z' },
    ]);
  });

  test('a calendar that cannot be read is answered inside the 200, in its own entry: notFound, internalError, tooManyCalendarsRequested', async () => {
    emu.insertEvent(PRACTICE, { summary: 'Session', ...timed('2025-03-05', 10) });
    const cal = await client();
    const window = { timeMin: '2025-03-05T00:00:00Z', timeMax: '2025-03-06T00:00:00Z' };
    const res = await cal.freebusy.query({ requestBody: { ...window, items: [{ id: PRACTICE }, { id: 'nobody@example.org' }] } });
    expect(res.status).toBe(200);
    expect(res.data.calendars).toEqual({
      [PRACTICE]: { busy: [{ start: '2025-03-05T15:00:00Z', end: '2025-03-05T15:50:00Z' }] },
      'nobody@example.org': { errors: [{ domain: 'global', reason: 'notFound' }], busy: [] },
    });
    emu.failFreeBusy(PRACTICE, 'internalError');
    const failed = await cal.freebusy.query({ requestBody: { ...window, items: [{ id: PRACTICE }] } });
    expect(failed.data.calendars?.[PRACTICE]).toEqual({ errors: [{ domain: 'global', reason: 'internalError' }], busy: [] });
    emu.failFreeBusy(PRACTICE, null);
    // FreeBusyRequest.calendarExpansionMax (at most 50): the calendars past it are not computed.
    const capped = await cal.freebusy.query({ requestBody: { ...window, calendarExpansionMax: 1, items: [{ id: PRACTICE }, { id: EMAIL }] } });
    expect(capped.data.calendars?.[EMAIL]).toEqual({ errors: [{ domain: 'global', reason: 'tooManyCalendarsRequested' }], busy: [] });
    const many = await cal.freebusy.query({ requestBody: { ...window, items: Array.from({ length: 51 }, (_, i) => ({ id: i === 50 ? PRACTICE : `c${i}@example.org` })) } });
    expect(many.data.calendars?.[PRACTICE]?.errors).toEqual([{ domain: 'global', reason: 'tooManyCalendarsRequested' }]);
    expect((await failure(cal.freebusy.query({ requestBody: { ...window, calendarExpansionMax: 51, items: [] } }, { retry: false }))).status).toBe(400);
  });

  test('a request Google cannot answer is a 400 with the documented reasons; the method needs a free/busy or calendar scope', async () => {
    const cal = await client();
    const q = (body: calendar_v3.Schema$FreeBusyRequest) => failure(cal.freebusy.query({ requestBody: body }, { retry: false }));
    expect(await q({ timeMax: '2025-03-06T00:00:00Z', items: [{ id: EMAIL }] })).toMatchObject({ status: 400, reason: 'required', message: 'Missing timeMin parameter.' });
    expect(await q({ timeMin: 'tomorrow', timeMax: '2025-03-06T00:00:00Z', items: [{ id: EMAIL }] })).toMatchObject({ status: 400, reason: 'invalid' });
    expect(await q({ timeMin: '2025-03-06T00:00:00Z', timeMax: '2025-03-06T00:00:00Z', items: [{ id: EMAIL }] })).toMatchObject({ status: 400, reason: 'timeRangeEmpty' });
    expect(await q({ timeMin: '2025-03-01T00:00:00Z', timeMax: '2025-05-30T00:00:01Z', items: [{ id: EMAIL }] })).toMatchObject({
      status: 400,
      reason: 'timeRangeTooLong',
      message: 'The requested time range is too long.',
    });
    expect(await q({ timeMin: '2025-03-01T00:00:00Z', timeMax: '2025-03-02T00:00:00Z', timeZone: 'Mars/Olympus', items: [{ id: EMAIL }] })).toMatchObject({ status: 400 });
    // Ninety days is still one answer.
    const ninety = await cal.freebusy.query({ requestBody: { timeMin: '2025-03-01T00:00:00Z', timeMax: '2025-05-30T00:00:00Z', items: [{ id: EMAIL }] } });
    expect(ninety.data.calendars?.[EMAIL]).toEqual({ busy: [] });
    // calendar.events alone does not allow freebusy.query (the discovery document's scopes of the method).
    const eventsOnly = await client([S('calendar.events')]);
    expect(await failure(eventsOnly.freebusy.query({ requestBody: { timeMin: '2025-03-01T00:00:00Z', timeMax: '2025-03-02T00:00:00Z', items: [{ id: EMAIL }] } }, { retry: false }))).toMatchObject({
      status: 403,
      reason: 'insufficientPermissions',
    });
    for (const scope of ['calendar.freebusy', 'calendar.events.freebusy', 'calendar.readonly', 'calendar']) {
      const ok = await client([S(scope)]);
      expect((await ok.freebusy.query({ requestBody: { timeMin: '2025-03-01T00:00:00Z', timeMax: '2025-03-02T00:00:00Z', items: [{ id: EMAIL }] } })).status, scope).toBe(200);
    }
  });

  test('faults reach freeBusy like every other route: 429 with Retry-After, 500', async () => {
    const cal = await client();
    const body = { requestBody: { timeMin: '2025-03-05T00:00:00Z', timeMax: '2025-03-06T00:00:00Z', items: [{ id: EMAIL }] } };
    emu.faults.add({ match: { path: /\/freeBusy$/ }, fault: { status: 429, retryAfter: 7 } });
    const limited = await failure(cal.freebusy.query(body, { retry: false }));
    expect(limited).toMatchObject({ status: 429, reason: 'rateLimitExceeded' });
    expect(limited.headers?.get('retry-after')).toBe('7');
    emu.faults.add({ match: { path: /\/freeBusy$/ }, fault: { status: 500 } });
    expect(await failure(cal.freebusy.query(body, { retry: false }))).toMatchObject({ status: 500, reason: 'backendError' });
    expect((await cal.freebusy.query(body)).status).toBe(200);
    expect(freeBusyCalls().map((r) => r.status)).toEqual([429, 500, 200]);
  });

  // ---- the connector -----------------------------------------------------------------------------------------------

  test('freeBusy: both calendars in one request, overlaps merged and sorted; a series expanded; free time left out', async () => {
    emu.insertEvent(EMAIL, { summary: 'Session', ...timed('2025-03-05', 10) });
    emu.insertEvent(PRACTICE, { summary: 'Supervision', ...timed('2025-03-05', 10, 30, 60) });
    emu.insertEvent(EMAIL, { summary: 'Group', ...timed('2025-03-04', 18), recurrence: ['RRULE:FREQ=DAILY;COUNT=3'] });
    emu.insertEvent(PRACTICE, { summary: 'Gym', transparency: 'transparent', ...timed('2025-03-05', 7) });
    emu.insertEvent(EMAIL, { summary: 'Holiday', transparency: 'transparent', start: { date: '2025-03-06' }, end: { date: '2025-03-07' } });
    const gone = emu.insertEvent(PRACTICE, { summary: 'Cancelled', ...timed('2025-03-05', 14) });
    emu.deleteEvent(PRACTICE, gone['id'] as string);
    const { cal } = await connector();
    const busy = await cal.freeBusy([EMAIL, PRACTICE], d('2025-03-04T00:00:00Z'), d('2025-03-06T12:00:00Z'));
    expect(iso(busy)).toEqual([
      ['2025-03-04T23:00:00.000Z', '2025-03-04T23:50:00.000Z'],
      ['2025-03-05T15:00:00.000Z', '2025-03-05T16:30:00.000Z'],
      ['2025-03-05T23:00:00.000Z', '2025-03-05T23:50:00.000Z'],
    ]);
    expect(freeBusyCalls()).toHaveLength(1);
    // Only what lies in [from, to) is busy time of the question.
    expect(iso(await cal.freeBusy(['primary'], d('2025-03-05T15:10:00Z'), d('2025-03-05T15:20:00Z')))).toEqual([['2025-03-05T15:10:00.000Z', '2025-03-05T15:20:00.000Z']]);
    // Nothing to ask: no request.
    expect(await cal.freeBusy([], d('2025-03-04T00:00:00Z'), d('2025-03-05T00:00:00Z'))).toEqual([]);
    expect(await cal.freeBusy([EMAIL], d('2025-03-05T00:00:00Z'), d('2025-03-05T00:00:00Z'))).toEqual([]);
    expect(freeBusyCalls()).toHaveLength(2);
  });

  test('freeBusy: at most 50 calendars and 90 days a request; the parts merged', async () => {
    const ids = [EMAIL, PRACTICE];
    for (let i = 0; i < 50; i++) {
      const id = `room${i}@group.calendar.google.com`;
      emu.addCalendar(SUB, { id, summary: id, timeZone: TZ });
      ids.push(id);
    }
    emu.insertEvent(ids[51]!, { summary: 'Last calendar', ...timed('2025-03-05', 9) });
    emu.insertEvent(EMAIL, { summary: 'Early', ...timed('2025-03-05', 9, 30) });
    emu.insertEvent(EMAIL, { summary: 'Late', ...timed('2025-07-01', 9) });
    const { cal } = await connector();
    const busy = await cal.freeBusy(ids, d('2025-03-01T00:00:00Z'), d('2025-07-15T00:00:00Z'));
    expect(iso(busy)).toEqual([
      ['2025-03-05T14:00:00.000Z', '2025-03-05T15:20:00.000Z'],
      ['2025-07-01T13:00:00.000Z', '2025-07-01T13:50:00.000Z'],
    ]);
    // Two windows (90 days, then the rest) × two groups of calendars (50, then 2): every one answered 200.
    expect(freeBusyCalls().map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  test('freeBusy errors: an unknown calendar is NotFound, internalError RetryAfter; 429 and 500 as every call; a missing scope', async () => {
    const { cal } = await connector();
    const window = [d('2025-03-05T00:00:00Z'), d('2025-03-06T00:00:00Z')] as const;
    const unknown = await caught(cal.freeBusy([EMAIL, 'nobody@example.org'], ...window));
    expect(unknown).toBeInstanceOf(NotFound);
    expect(String((unknown as Error).message)).not.toContain('nobody@example.org');
    emu.failFreeBusy(PRACTICE, 'internalError');
    expect(await caught(cal.freeBusy([PRACTICE], ...window))).toMatchObject({ name: 'RetryAfter', seconds: null, refused: false });
    emu.failFreeBusy(PRACTICE, 'somethingGoogleAddsLater');
    const unknownReason = await caught(cal.freeBusy([PRACTICE], ...window));
    expect(unknownReason).toBeInstanceOf(ConnectorError);
    expect(unknownReason).not.toBeInstanceOf(RetryAfter);
    emu.failFreeBusy(PRACTICE, null);

    // A rate limit with a wait too long to sit out inside the call: Google's own Retry-After, and nothing was done.
    emu.faults.add({ match: { path: /\/freeBusy$/ }, fault: { status: 429, retryAfter: 120 } });
    const limited = await caught(cal.freeBusy([EMAIL], ...window));
    expect(limited).toBeInstanceOf(RetryAfter);
    expect(limited).toMatchObject({ seconds: 120, refused: true });
    emu.faults.add({ match: { path: /\/freeBusy$/ }, fault: { status: 500 } });
    expect(await caught(cal.freeBusy([EMAIL], ...window))).toMatchObject({ name: 'RetryAfter', seconds: null });
    // With retries, a 500 and a short 429 are retried inside the call (a read).
    const patient = (await connector({ retries: 2 })).cal;
    emu.faults.add({ match: { path: /\/freeBusy$/ }, fault: { status: 500 } });
    emu.faults.add({ match: { path: /\/freeBusy$/ }, fault: { status: 429, retryAfter: 1 } });
    expect(await patient.freeBusy([EMAIL], ...window)).toEqual([]);
    expect(freeBusyCalls().slice(-3).map((r) => r.status)).toEqual([500, 429, 200]);

    // A grant without a free/busy scope: MissingScope naming the one the method needs; the connection is marked.
    const narrow = await connector({ scopes: ['openid', S('calendar.events'), S('calendar.calendarlist.readonly')] });
    const missing = await caught(narrow.cal.freeBusy([EMAIL], ...window));
    expect(missing).toBeInstanceOf(MissingScope);
    expect((missing as Error).message).toContain('calendar.freebusy');
    expect(narrow.marked).toHaveLength(1);
  });
});

// =====================================================================================================================
// Microsoft Graph: getSchedule
// =====================================================================================================================

describe('Graph getSchedule', () => {
  const OID = '7d1f0c2e-4b5a-4e3d-9c8b-1a2b3c4d5e6f';
  const TID = '84bd8158-6d4d-4958-8b9f-9d6445542f95';
  const UPN = 'dr.moss@contoso.onmicrosoft.com';
  const USER = { oid: OID, tid: TID, upn: UPN, displayName: 'Dr Moss', timeZone: 'Europe/London' };

  let emu: GraphEmulator;

  beforeEach(async () => {
    emu = await startGraph(USER);
  });

  afterEach(async () => {
    await emu.close();
  });

  /** The real Graph client: AuthenticationHandler → RetryHandler (no retries) → graphRedirect → HTTPMessageHandler. */
  async function client(scopes: readonly string[] = MICROSOFT_SCOPES): Promise<Client> {
    return (await graphConnect(emu, USER, scopes)).graph;
  }

  /** Records what the connector puts on the wire, then hands the request to graphRedirect. */
  class Recorder implements Middleware {
    readonly sent: { url: string; body: unknown }[] = [];
    readonly #inner = graphRedirect(emu);
    async execute(context: Context): Promise<void> {
      const request: unknown = context.request;
      const url = typeof request === 'string' ? request : (request as Request).url;
      const body = context.options?.body;
      this.sent.push({ url, body: typeof body === 'string' ? JSON.parse(body) : undefined });
      await this.#inner.execute(context);
    }
    setNext(next: Middleware): void {
      this.#inner.setNext?.(next);
    }
  }

  /** The product's connector with the product's permissions; the RetryHandler retries nothing, so each answer is seen. */
  async function connector(): Promise<{ cal: GraphCalendarConnector; recorder: Recorder }> {
    const recorder = new Recorder();
    return { cal: await graphConnector(emu, USER, { transport: recorder, maxRetries: 0 }), recorder };
  }

  function timed(day: string, hh: number, minutes = 50, mm = 0): { start: Json; end: Json } {
    const pad = (n: number): string => String(n).padStart(2, '0');
    const endMin = hh * 60 + mm + minutes;
    return { start: { dateTime: `${day}T${pad(hh)}:${pad(mm)}:00`, timeZone: 'UTC' }, end: { dateTime: `${day}T${pad(Math.floor(endMin / 60))}:${pad(endMin % 60)}:00`, timeZone: 'UTC' } };
  }

  const window = (start: string, end: string, interval?: number): Json => ({
    schedules: [UPN],
    startTime: { dateTime: start, timeZone: 'UTC' },
    endTime: { dateTime: end, timeZone: 'UTC' },
    ...(interval === undefined ? {} : { availabilityViewInterval: interval }),
  });

  const scheduleCalls = () => emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/calendar/getSchedule'));

  /** The default calendar's day, every showAs, a series with one occurrence deleted, a meeting its organizer cancelled. */
  async function busyDay(graph: Client): Promise<void> {
    emu.createEvent(OID, 'default', { subject: 'Session', location: { displayName: 'Room 2' }, ...timed('2025-03-05', 9) });
    emu.createEvent(OID, 'default', { subject: 'Maybe', showAs: 'tentative', ...timed('2025-03-05', 10) });
    emu.createEvent(OID, 'default', { subject: 'Leave', showAs: 'oof', ...timed('2025-03-05', 11) });
    emu.createEvent(OID, 'default', { subject: 'Home office', showAs: 'workingElsewhere', ...timed('2025-03-05', 12) });
    emu.createEvent(OID, 'default', { subject: 'Lunch walk', showAs: 'free', ...timed('2025-03-05', 13) });
    const invited = emu.createEvent(OID, 'default', {
      subject: 'Board',
      ...timed('2025-03-05', 14),
      organizer: { emailAddress: { address: 'chair@example.org', name: 'Chair' } },
      attendees: [{ emailAddress: { address: UPN }, type: 'required', status: { response: 'accepted', time: '2025-02-20T10:00:00Z' } }],
    });
    emu.cancelEvent(OID, String(invited['id']));
    const series = emu.createEvent(OID, 'default', {
      subject: 'Group',
      ...timed('2025-03-04', 16),
      recurrence: { pattern: { type: 'daily', interval: 1 }, range: { type: 'numbered', startDate: '2025-03-04', numberOfOccurrences: 3 } },
    });
    const occurrences = (await graph.api(`/me/events/${String(series['id'])}/instances?startDateTime=2025-03-01T00:00:00Z&endDateTime=2025-04-01T00:00:00Z`).get()) as { value: Json[] };
    emu.deleteEvent(OID, String(occurrences.value[1]!['id']));
  }

  // ---- the emulator, through @microsoft/microsoft-graph-client --------------------------------------------------------

  test('the answer has the reference example\'s keys; items in the Prefer outlook.timezone zone, or UTC; a series expanded; cancelled and free left out', async () => {
    const graph = await client();
    await busyDay(graph);
    const pacific = (await graph.api('/me/calendar/getSchedule').header('Prefer', 'outlook.timezone="Pacific Standard Time"').post(window('2025-03-04T00:00:00', '2025-03-07T00:00:00'))) as Json;
    const ref = fixture('microsoft', 'getschedule-response.json');
    const refInfo = (ref['value'] as Json[])[0]!;
    const refItem = (refInfo['scheduleItems'] as Json[])[0]!;
    expect(Object.keys(pacific).sort()).toEqual(Object.keys(ref).sort());
    expect(pacific['@odata.context']).toBe(ref['@odata.context']);
    const info = (pacific['value'] as Json[])[0]!;
    expect(Object.keys(info).sort()).toEqual(Object.keys(refInfo).sort());
    const items = info['scheduleItems'] as Json[];
    for (const it of items) expect(Object.keys(it).sort()).toEqual(Object.keys(refItem).sort());
    expect(Object.keys(info['workingHours'] as Json).sort()).toEqual(Object.keys(refInfo['workingHours'] as Json).sort());
    expect(items.map((i) => [i['subject'], i['status']])).toEqual([
      ['Group', 'busy'],
      ['Session', 'busy'],
      ['Maybe', 'tentative'],
      ['Leave', 'oof'],
      ['Home office', 'workingElsewhere'],
      ['Group', 'busy'],
    ]);
    expect(items[1]).toEqual({
      isPrivate: false,
      status: 'busy',
      subject: 'Session',
      location: 'Room 2',
      start: { dateTime: '2025-03-05T01:00:00.0000000', timeZone: 'Pacific Standard Time' },
      end: { dateTime: '2025-03-05T01:50:00.0000000', timeZone: 'Pacific Standard Time' },
    });
    // Without the header the times are UTC (calendar-getschedule.md: "If not specified, those time values are returned in UTC").
    const utc = (await graph.api('/me/calendar/getSchedule').post(window('2025-03-05T09:00:00', '2025-03-05T15:00:00', 60))) as Json;
    const day = (utc['value'] as Json[])[0]!;
    expect((day['scheduleItems'] as Json[])[0]).toMatchObject({ start: { dateTime: '2025-03-05T09:00:00.0000000', timeZone: 'UTC' } });
    // One digit an hour: busy, tentative, oof, then working elsewhere shown as free (microsoft-graph-docs-contrib#9360), free, the cancelled meeting.
    expect(day['availabilityView']).toBe('213000');
  });

  test('a schedule Graph cannot read is answered inside the 200 with only its error; bad requests are 400s; Calendars.Read is needed', async () => {
    const graph = await client();
    const res = (await graph.api('/me/calendar/getSchedule').post({ ...window('2025-03-05T00:00:00', '2025-03-06T00:00:00'), schedules: [UPN, 'nobody@example.org'] })) as Json;
    const [mine, nobody] = res['value'] as Json[];
    expect(mine).toMatchObject({ scheduleId: UPN, scheduleItems: [] });
    expect(Object.keys(nobody!).sort()).toEqual(['error', 'scheduleId']);
    expect(nobody).toEqual({ scheduleId: 'nobody@example.org', error: { message: expect.any(String), responseCode: 'ErrorMailRecipientNotFound' } });
    emu.failSchedule(UPN, { responseCode: 'ErrorMailboxStoreUnavailable', message: 'The mailbox database is temporarily unavailable.' });
    const failed = (await graph.api('/me/calendar/getSchedule').post(window('2025-03-05T00:00:00', '2025-03-06T00:00:00'))) as Json;
    expect((failed['value'] as Json[])[0]).toEqual({ scheduleId: UPN, error: { responseCode: 'ErrorMailboxStoreUnavailable', message: 'The mailbox database is temporarily unavailable.' } });
    emu.failSchedule(UPN, null);

    const post = (body: Json) => graphFailure(graph.api('/me/calendar/getSchedule').post(body));
    expect(await post(window('2025-03-01T00:00:00', '2025-05-02T00:00:01'))).toMatchObject({ statusCode: 400, code: 'ErrorTimeIntervalTooBig' });
    expect((await post(window('2025-03-01T00:00:00', '2025-05-03T00:00:00'))).message).toBe(
      'The requested time duration specified for FreeBusyViewOptions.TimeWindow is too long. The allowed limit = 62 days; the actual limit = 63 days.',
    );
    expect(((await graph.api('/me/calendar/getSchedule').post(window('2025-03-01T00:00:00', '2025-05-02T00:00:00'))) as Json)['value']).toHaveLength(1);
    expect(await post(window('2025-03-06T00:00:00', '2025-03-05T00:00:00'))).toMatchObject({ statusCode: 400, code: 'ErrorInvalidTimeInterval' });
    expect(await post(window('2025-03-05T00:00:00', '2025-03-06T00:00:00', 4))).toMatchObject({ statusCode: 400 });
    expect(await post(window('2025-03-05T00:00:00', '2025-03-06T00:00:00', 1441))).toMatchObject({ statusCode: 400 });
    expect(await post({ ...window('2025-03-05T00:00:00', '2025-03-06T00:00:00'), schedules: Array.from({ length: 101 }, (_, i) => `u${i}@contoso.onmicrosoft.com`) })).toMatchObject({
      statusCode: 400,
      code: 'ErrorMailboxDataArrayTooBig',
    });
    // calendar-getschedule.md, Permissions: Calendars.Read or Calendars.ReadWrite.
    const noCalendar = await client(['Tasks.ReadWrite', 'User.Read']);
    expect(await graphFailure(noCalendar.api('/me/calendar/getSchedule').post(window('2025-03-05T00:00:00', '2025-03-06T00:00:00')))).toMatchObject({ statusCode: 403 });
    const readOnly = await client(['Calendars.Read']);
    expect(await readOnly.api('/me/calendar/getSchedule').post(window('2025-03-05T00:00:00', '2025-03-06T00:00:00'))).toMatchObject({ value: [{ scheduleId: UPN }] });
  });

  test('faults reach getSchedule like every other route: 429 with Retry-After, 500', async () => {
    const graph = await client();
    const body = window('2025-03-05T00:00:00', '2025-03-06T00:00:00');
    emu.faults.add({ match: { path: /getSchedule$/ }, fault: { status: 429, retryAfter: 9 } });
    const limited = await graphFailure(graph.api('/me/calendar/getSchedule').post(body));
    expect(limited.statusCode).toBe(429);
    expect(limited.headers?.get('retry-after')).toBe('9');
    emu.faults.add({ match: { path: /getSchedule$/ }, fault: { status: 500 } });
    expect((await graphFailure(graph.api('/me/calendar/getSchedule').post(body))).statusCode).toBe(500);
    await graph.api('/me/calendar/getSchedule').post(body);
    expect(scheduleCalls().map((r) => r.status)).toEqual([429, 500, 200]);
  });

  // ---- the connector -----------------------------------------------------------------------------------------------

  test('freeBusy: the mailbox by its own address (getSchedule, UTC), another calendar by its calendarView; busy, oof and tentative take the time', async () => {
    const graph = await client();
    await busyDay(graph);
    const practice = emu.addCalendar(OID, { name: 'Practice' });
    emu.createEvent(OID, practice.id, { subject: 'Overlaps the session', ...timed('2025-03-05', 9, 90, 30) });
    emu.createEvent(OID, practice.id, { subject: 'Free on the practice calendar', showAs: 'free', ...timed('2025-03-05', 17) });
    emu.createEvent(OID, practice.id, { subject: 'Elsewhere', showAs: 'workingElsewhere', ...timed('2025-03-05', 18) });
    emu.createEvent(OID, practice.id, { subject: 'Conference', isAllDay: true, start: { dateTime: '2025-03-06T00:00:00', timeZone: 'UTC' }, end: { dateTime: '2025-03-07T00:00:00', timeZone: 'UTC' } });
    const { cal, recorder } = await connector();
    const busy = await cal.freeBusy(['primary', practice.id], d('2025-03-04T00:00:00Z'), d('2025-03-07T00:00:00Z'));
    expect(iso(busy)).toEqual([
      ['2025-03-04T16:00:00.000Z', '2025-03-04T16:50:00.000Z'],
      // The session, tentative and oof times, and the practice calendar's 09:30-11:00 that overlaps and touches them: one span.
      ['2025-03-05T09:00:00.000Z', '2025-03-05T11:50:00.000Z'],
      // The all-day event, a day of the mailbox's zone (UTC here: without MailboxSettings.Read the connector assumes it), holds the series' third time.
      ['2025-03-06T00:00:00.000Z', '2025-03-07T00:00:00.000Z'],
    ]);
    // The wire: our own address, the window in UTC, the documented default interval; answers asked in UTC.
    const asked = recorder.sent.find((s) => s.url.endsWith('/me/calendar/getSchedule'));
    expect(asked?.body).toEqual({
      schedules: [UPN],
      startTime: { dateTime: '2025-03-04T00:00:00', timeZone: 'UTC' },
      endTime: { dateTime: '2025-03-07T00:00:00', timeZone: 'UTC' },
      availabilityViewInterval: 30,
    });
    expect(scheduleCalls().at(-1)?.headers['prefer']).toContain('outlook.timezone="UTC"');
    expect(recorder.sent.some((s) => s.url.includes(`/me/calendars/${encodeURIComponent(practice.id)}/calendarView?`))).toBe(true);
    // The default calendar by its id is the mailbox too; /me is read once for the address.
    const defaultId = (await cal.listCalendars()).find((c) => c.primary)!.id;
    expect(await cal.freeBusy([defaultId], d('2025-03-05T09:10:00Z'), d('2025-03-05T09:20:00Z'))).toEqual([{ start: d('2025-03-05T09:10:00Z'), end: d('2025-03-05T09:20:00Z') }]);
    expect(emu.requests.filter((r) => r.method === 'GET' && /\/me$/.test(r.path))).toHaveLength(1);
    expect(await cal.freeBusy([], d('2025-03-04T00:00:00Z'), d('2025-03-07T00:00:00Z'))).toEqual([]);
  });

  test('freeBusy: more than 62 days is asked in parts', async () => {
    emu.createEvent(OID, 'default', { subject: 'March', ...timed('2025-03-05', 9) });
    emu.createEvent(OID, 'default', { subject: 'June', ...timed('2025-06-05', 9) });
    const { cal } = await connector();
    expect(iso(await cal.freeBusy(['primary'], d('2025-03-01T00:00:00Z'), d('2025-06-30T00:00:00Z')))).toEqual([
      ['2025-03-05T09:00:00.000Z', '2025-03-05T09:50:00.000Z'],
      ['2025-06-05T09:00:00.000Z', '2025-06-05T09:50:00.000Z'],
    ]);
    expect(scheduleCalls().map((r) => r.status)).toEqual([200, 200]);
  });

  test('freeBusy errors: an unknown calendar, a schedule error by its responseCode, 429 with Retry-After, 500', async () => {
    const { cal } = await connector();
    const span = [d('2025-03-05T00:00:00Z'), d('2025-03-06T00:00:00Z')] as const;
    expect(await caught(cal.freeBusy(['primary', 'AAMkAGI2-no-such-calendar'], ...span))).toBeInstanceOf(NotFound);
    emu.failSchedule(UPN, { responseCode: 'ErrorMailRecipientNotFound', message: `Unable to resolve e-mail address ${UPN} to an Active Directory object.` });
    const notFound = await caught(cal.freeBusy(['primary'], ...span));
    expect(notFound).toBeInstanceOf(NotFound);
    expect((notFound as Error).message).not.toContain(UPN);
    emu.failSchedule(UPN, { responseCode: 'ErrorMailboxStoreUnavailable', message: 'unavailable' });
    expect(await caught(cal.freeBusy(['primary'], ...span))).toMatchObject({ name: 'RetryAfter', seconds: null });
    emu.failSchedule(UPN, { responseCode: 'ErrorNoFreeBusyAccess', message: 'no access' });
    expect(await caught(cal.freeBusy(['primary'], ...span))).toBeInstanceOf(Forbidden);
    emu.failSchedule(UPN, { responseCode: 'ErrorSomethingNew', message: 'new' });
    const unknown = await caught(cal.freeBusy(['primary'], ...span));
    expect(unknown).toBeInstanceOf(ConnectorError);
    expect(unknown).not.toBeInstanceOf(NotFound);
    expect(unknown).not.toBeInstanceOf(RetryAfter);
    emu.failSchedule(UPN, null);

    emu.faults.add({ match: { path: /getSchedule$/ }, fault: { status: 429, retryAfter: 120 } });
    const limited = await caught(cal.freeBusy(['primary'], ...span));
    expect(limited).toBeInstanceOf(RetryAfter);
    expect(limited).toMatchObject({ seconds: 120, refused: true });
    emu.faults.add({ match: { path: /getSchedule$/ }, fault: { status: 500 } });
    expect(await caught(cal.freeBusy(['primary'], ...span))).toMatchObject({ name: 'RetryAfter', seconds: null });
    emu.faults.add({ match: { path: /getSchedule$/ }, fault: { status: 503 } });
    expect(await caught(cal.freeBusy(['primary'], ...span))).toBeInstanceOf(RetryAfter);
    expect(await cal.freeBusy(['primary'], ...span)).toEqual([]);
  });
});
