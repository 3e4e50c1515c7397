// The Google Calendar connector: calendar list, full and incremental sync with the sync token
// (singleEvents, paging, 410 → CursorExpired), push channels (events.watch, channels.stop), our
// tags as private extended properties (events.patch / events.get), the events we create, change
// and delete (sessions booked from a link, holds), our one line in an event's description (a conditional
// events.patch), free/busy before a booking (freebusy.query), and Google's errors turned into the typed
// errors every platform shares (call.ts).
import { createHash } from 'node:crypto';
import { calendar, type calendar_v3 } from '@googleapis/calendar';
import { DateTime } from 'luxon';
import { ConnectorError, CursorExpired, Invalid, NotFound, RetryAfter } from '../errors.js';
import {
  busyQuestion,
  mergeBusy,
  secretMatches,
  type CalendarConnector,
  type ChannelRecord,
  type CreatedEvent,
  type EventPatch,
  type NewEvent,
  type RemoteCalendar,
  type StoredChannel,
  type SyncPage,
} from '../port.js';
import { looksLikeHtml, writeLineConditionally } from '../description-line.js';
import type { CalendarItem, ItemError } from '../types.js';
import { GoogleCaller, GoogleRefused, type CallOptions, type GoogleConnectorOptions, type RetryPolicy } from './call.js';
import { normaliseGoogleEvent, TAG_PREFIX } from './normalise.js';

export { classifyGoogleError } from './call.js';

export interface GoogleCalendarOptions extends GoogleConnectorOptions {
  /** Page size of events.list (Google: default 250, at most 2500). */
  pageSize?: number;
}

/** The scope our calendar writes need (the discovery document's scopes of events.insert/patch/delete). */
const EVENTS_SCOPE = 'https://www.googleapis.com/auth/calendar.events';
/** A tag name the sync reads back as a tag (the rule normaliseGoogleEvent applies: "sk." prefix, ≤ 64 characters). */
const TAG_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;
/** Longest tag value the sync reads back (normaliseGoogleEvent drops longer ones). */
const MAX_TAG_VALUE = 1024;
/** Fields of an event our writes read back (a partial response: none of the event's details). */
const WRITE_FIELDS = 'id,status,hangoutLink,conferenceData(entryPoints,createRequest/status)';
/**
 * How often setDescriptionLine reads the event again after Google answered 412 (another write came between our read and
 * our write) before it gives up with RetryAfter.
 */
const DESCRIPTION_CONFLICT_RETRIES = 3;
/** The scope freebusy.query is called under (GOOGLE_SCOPES asks for it; calendar.events does not allow the method). */
const FREEBUSY_SCOPE = 'https://www.googleapis.com/auth/calendar.freebusy';
/** Calendars per freebusy.query (FreeBusyRequest.calendarExpansionMax in the discovery document: "Maximum value is 50"). */
const FREEBUSY_MAX_CALENDARS = 50;
/**
 * Longest range of one freebusy.query. The discovery document names no limit; Google refuses longer ranges with 400
 * "The requested time range is too long." (API-NOTES: ~90 days; calcom/cal.com#11696, and #11962 which splits the range
 * at Google's "maximum time span of 90 days").
 */
const FREEBUSY_MAX_MS = 90 * 86_400_000;

export class GoogleCalendarConnector implements CalendarConnector {
  readonly provider = 'google' as const;
  /** We write with sendUpdates=none: Google mails no guest about our tags. */
  readonly writesNotifyAttendees = false;
  readonly #api: calendar_v3.Calendar;
  readonly #caller: GoogleCaller;
  /** freebusy.query's own caller: a missing scope then names calendar.freebusy, the one it needs. */
  readonly #freeBusyCaller: GoogleCaller;
  readonly #pageSize: number;

  constructor(opts: GoogleCalendarOptions) {
    this.#api = calendar({ version: 'v3', auth: opts.auth, ...(opts.rootUrl ? { rootUrl: opts.rootUrl } : {}) });
    this.#caller = new GoogleCaller(opts, EVENTS_SCOPE);
    this.#freeBusyCaller = new GoogleCaller(opts, FREEBUSY_SCOPE);
    this.#pageSize = Math.min(opts.pageSize ?? 250, 2500);
  }

  /** Requests made (tests and benchmarks count them). */
  get requests(): number {
    return this.#caller.requests + this.#freeBusyCaller.requests;
  }

  /** One API call under the shared policy (call.ts): transient failures retried unless the policy says otherwise. */
  #call<T>(fn: (options: CallOptions) => Promise<{ data: T }>, policy: RetryPolicy = 'transient'): Promise<T> {
    return this.#caller.call(fn, policy);
  }

  async listCalendars(): Promise<RemoteCalendar[]> {
    const out: RemoteCalendar[] = [];
    let pageToken: string | undefined;
    do {
      const page: calendar_v3.Schema$CalendarList = await this.#call((o) => this.#api.calendarList.list({ maxResults: 250, ...(pageToken ? { pageToken } : {}) }, o));
      for (const c of page.items ?? []) {
        if (!c.id) continue;
        out.push({
          id: c.id,
          name: c.summaryOverride ?? c.summary ?? c.id,
          timeZone: c.timeZone ?? 'UTC',
          primary: c.primary ?? false,
          canRead: c.accessRole === 'owner' || c.accessRole === 'writer' || c.accessRole === 'reader',
          canWrite: c.accessRole === 'owner' || c.accessRole === 'writer',
        });
      }
      pageToken = page.nextPageToken ?? undefined;
    } while (pageToken);
    return out;
  }

  /**
   * A page of events.list. Full and incremental requests keep the same parameters (singleEvents),
   * and the incremental one adds only syncToken: it may not be combined with timeMin and the like.
   */
  async syncPage(calendarId: string, opts: { cursor: string | null; pageToken: string | null }): Promise<SyncPage> {
    const params: calendar_v3.Params$Resource$Events$List = {
      calendarId,
      singleEvents: true,
      maxResults: this.#pageSize,
      ...(opts.cursor ? { syncToken: opts.cursor } : {}),
      ...(opts.pageToken ? { pageToken: opts.pageToken } : {}),
    };
    const page: calendar_v3.Schema$Events = await this.#call((o) => this.#api.events.list(params, o));
    const zone = page.timeZone ?? 'UTC';
    const items: CalendarItem[] = [];
    const rejected: ItemError[] = [];
    for (const raw of page.items ?? []) {
      const result = normaliseGoogleEvent(raw, calendarId, zone, page.updated ?? undefined);
      if (result.ok) items.push(result.item);
      else rejected.push(result.error);
    }
    return { items, rejected, nextPageToken: page.nextPageToken ?? null, nextCursor: page.nextSyncToken ?? null };
  }

  async watch(calendarId: string, opts: { channelId: string; address: string; secret: string; expiresAt?: Date }): Promise<ChannelRecord> {
    const channel: calendar_v3.Schema$Channel = await this.#call((o) =>
      this.#api.events.watch(
        {
          calendarId,
          requestBody: {
            id: opts.channelId,
            type: 'web_hook',
            address: opts.address,
            token: opts.secret,
            ...(opts.expiresAt ? { expiration: String(opts.expiresAt.getTime()) } : {}),
          },
        },
        o,
      ),
      // events.watch is not idempotent: a retry after a lost answer would make a second channel.
      'never',
    );
    if (!channel.id || !channel.expiration) throw new Error('Google answered events.watch without a channel id or expiration');
    return { channelId: channel.id, resourceId: channel.resourceId ?? null, expiresAt: new Date(Number(channel.expiration)) };
  }

  /**
   * A call about one event (the tag reads and writes). A 410 here means the event was deleted, not an expired
   * sync token: Google answers 410 "Resource has been deleted" to a write to an event already deleted (seen on
   * events.delete in derekantrican/GAS-ICS-Sync#297), while classifyGoogleError reads 410 as CursorExpired,
   * which is right only for listings.
   */
  async #eventCall<T>(fn: (options: CallOptions) => Promise<{ data: T }>, policy: RetryPolicy = 'transient'): Promise<T> {
    try {
      return await this.#call(fn, policy);
    } catch (err) {
      if (err instanceof CursorExpired) throw new NotFound('Google answered 410: the event was deleted');
      throw err;
    }
  }

  /**
   * Sets a private extended property on this calendar's copy of the event (API-NOTES: private properties are
   * this calendar's only; refs discovery document, Event.extendedProperties.private). events.patch merges maps
   * key by key, so our other tags and anyone else's properties stay (Calendar guide "Extended properties":
   * patch "allows you to manipulate some properties while leaving others untouched"). sendUpdates=none: no
   * guest is mailed. A lost reply is not retried here (see #call): the caller reads the tag back first.
   * The partial response (fields) brings back only id and status, none of the event's details.
   */
  async setTag(calendarId: string, eventId: string, name: string, value: string): Promise<void> {
    checkTag(name, value);
    const event = await this.#eventCall<calendar_v3.Schema$Event>((o) =>
      this.#api.events.patch(
        {
          calendarId,
          eventId,
          sendUpdates: 'none',
          fields: 'id,status',
          requestBody: { extendedProperties: { private: { [name]: value } } },
        },
        o,
      ),
      // Each write that takes effect is a new version of the event, and a sync round for its
      // calendar: after an unsure failure the engine reads the tag back before writing again.
      'refused',
    );
    // Google keeps a deleted event, with status "cancelled" (Event.status: "cancelled events continue to expose
    // event details … so that they can be restored"), and may take the write; for us it is gone.
    if (event.status === 'cancelled') throw new NotFound('the event was deleted (Google keeps it as cancelled)');
  }

  /**
   * Reads one tag back with a partial response (only id, status and the private properties). events.get
   * answers a deleted event with status "cancelled" ("The get method always returns them": Event.status in the
   * discovery document), which is NotFound here, as are 404 and 410.
   */
  async getTag(calendarId: string, eventId: string, name: string): Promise<string | null> {
    const event = await this.#eventCall<calendar_v3.Schema$Event>((o) =>
      this.#api.events.get({ calendarId, eventId, fields: 'id,status,extendedProperties/private' }, o),
    );
    if (event.status === 'cancelled') throw new NotFound('the event was deleted (Google keeps it as cancelled)');
    const v = event.extendedProperties?.private?.[name];
    return typeof v === 'string' ? v : null;
  }

  /**
   * Creates the event once per key: its id is derived from the key (googleEventId), so a second insert is
   * refused with 409 "duplicate" (Event.id in the discovery document: "the ID must be unique per calendar")
   * and the one made earlier is returned with created:false. That makes the insert idempotent: it is
   * retried inline after a 5xx or a lost answer like a read, and `mayExist` needs no extra request.
   * A Meet link is asked for with conferenceData.createRequest, which Google reads only with
   * conferenceDataVersion=1 (events.insert parameters); its requestId comes from the key too.
   */
  async createEvent(calendarId: string, event: NewEvent, _opts: { mayExist: boolean }): Promise<CreatedEvent> {
    for (const [name, value] of Object.entries(event.tags ?? {})) checkTag(name, value);
    if (event.end.getTime() < event.start.getTime()) throw new Error('createEvent: the event ends before it starts');
    const eventId = googleEventId(event.key);
    const requestBody: calendar_v3.Schema$Event = {
      id: eventId,
      summary: event.summary,
      ...(event.description !== undefined ? { description: event.description } : {}),
      ...(event.location !== undefined ? { location: event.location } : {}),
      start: zoned(event.start, event.timeZone),
      end: zoned(event.end, event.timeZone),
      ...(event.attendees.length > 0 ? { attendees: event.attendees.map((a) => ({ email: a.email, ...(a.name ? { displayName: a.name } : {}) })) } : {}),
      ...(event.reminderMinutes !== undefined ? { reminders: popupReminders(event.reminderMinutes) } : {}),
      ...(event.tags && Object.keys(event.tags).length > 0 ? { extendedProperties: { private: { ...event.tags } } } : {}),
      ...(event.onlineMeeting
        ? { conferenceData: { createRequest: { requestId: conferenceRequestId(event.key), conferenceSolutionKey: { type: 'hangoutsMeet' } } } }
        : {}),
    };
    try {
      const made = await this.#eventCall<calendar_v3.Schema$Event>((o) =>
        this.#api.events.insert(
          {
            calendarId,
            sendUpdates: event.notifyAttendees ? 'all' : 'none',
            ...(event.onlineMeeting ? { conferenceDataVersion: 1 } : {}),
            fields: WRITE_FIELDS,
            requestBody,
          },
          o,
        ),
      );
      return { eventId: checkedId(made, eventId), meetingUrl: meetingUrlOf(made), created: true };
    } catch (err) {
      if (!(err instanceof GoogleRefused && err.status === 409)) throw err;
    }
    // 409: an event with our id exists, made by an earlier attempt (of this call, whose answer was lost,
    // or of an earlier one). It is ours: return it as it is, even when it has been deleted since.
    const existing = await this.#eventCall<calendar_v3.Schema$Event>((o) => this.#api.events.get({ calendarId, eventId, fields: WRITE_FIELDS }, o));
    return { eventId: checkedId(existing, eventId), meetingUrl: meetingUrlOf(existing), created: false };
  }

  /**
   * Changes only the fields given, with events.patch (fields absent from the body are left as they are;
   * null clears one). Reminders replace the therapist's own ones: useDefault false with the popup overrides
   * (an empty list: no reminder at all). Writing the same values again changes nothing the attendees see,
   * so the patch is retried inline after an unsure failure. A deleted event (410, or kept by Google with
   * status "cancelled") is NotFound.
   */
  async patchEvent(calendarId: string, eventId: string, patch: EventPatch, opts: { notifyAttendees: boolean }): Promise<void> {
    const body: calendar_v3.Schema$Event = {};
    if (patch.summary !== undefined) body.summary = patch.summary;
    if (patch.description !== undefined) body.description = patch.description;
    if (patch.location !== undefined) body.location = patch.location;
    if (patch.start !== undefined || patch.end !== undefined) {
      if (!patch.timeZone) throw new Error('patchEvent: a new start or end needs its time zone');
      if (patch.start !== undefined) body.start = zoned(patch.start, patch.timeZone);
      if (patch.end !== undefined) body.end = zoned(patch.end, patch.timeZone);
    }
    if (patch.reminderMinutes !== undefined) body.reminders = popupReminders(patch.reminderMinutes);
    if (Object.keys(body).length === 0) return;
    const event = await this.#eventCall<calendar_v3.Schema$Event>((o) =>
      this.#api.events.patch({ calendarId, eventId, sendUpdates: opts.notifyAttendees ? 'all' : 'none', fields: 'id,status', requestBody: body }, o),
    );
    if (event.status === 'cancelled') throw new NotFound('the event was deleted (Google keeps it as cancelled)');
  }

  /**
   * Our one line at the end of the description (connectors/description-line.ts does the text), written without losing
   * an edit made meanwhile: events.get reads the description and the etag, and events.patch writes the new description
   * with `If-Match: <etag>`. The Calendar guide "Get specific versions of resources" (developers.google.com/calendar/api/
   * guides/version-resources) documents it: "specify an If-Match header that contains the value of the etag from the
   * previous retrieval … Otherwise, you will get a 412 (Precondition failed) response code" (the discovery document in
   * refs/ only says Event.etag is the "ETag of the resource"; client logs quote the 412's reason conditionNotMet at the
   * If-Match header, and show it now and then with no edit in between: googleapis/google-api-dotnet-client#222). On 412
   * the event is read again and the line applied to what is there now, DESCRIPTION_CONFLICT_RETRIES times, then
   * RetryAfter (refused: a 412 wrote nothing).
   * The description stays in its own format: HTML (Event.description "Can contain HTML"; the web editor writes HTML)
   * gets an HTML element, plain text a plain line. Nothing is written when the line is already as asked (no etag moves,
   * no guest is mailed). sendUpdates all/none as `notifyAttendees` says (events.patch sendUpdates). Safe to retry inside
   * the call after a 5xx or a lost answer: a write that did happen moved the etag, so its repeat is refused with 412, and
   * the read after it finds the line in place. A deleted event (404, 410, or kept with status "cancelled") is NotFound.
   */
  async setDescriptionLine(calendarId: string, eventId: string, line: { text: string; url: string } | null, opts: { notifyAttendees: boolean }): Promise<{ changed: boolean }> {
    return writeLineConditionally(
      {
        read: async () => {
          const event = await this.#eventCall<calendar_v3.Schema$Event>((o) => this.#api.events.get({ calendarId, eventId, fields: 'id,status,etag,description' }, o));
          if (event.status === 'cancelled') throw new NotFound('the event was deleted (Google keeps it as cancelled)');
          if (!event.etag) throw new ConnectorError('Google answered events.get without the event\'s etag');
          const description = event.description ?? '';
          return { description, format: looksLikeHtml(description) ? 'html' : 'text', version: event.etag };
        },
        write: async (description, etag) => {
          const written = await this.#eventCall<calendar_v3.Schema$Event>((o) =>
            this.#api.events.patch(
              {
                calendarId,
                eventId,
                sendUpdates: opts.notifyAttendees ? 'all' : 'none',
                fields: 'id,status,etag',
                // Nothing left (a line removed from an event that had no description): the field is cleared.
                requestBody: { description: description === '' ? null : description },
              },
              { ...o, headers: { 'If-Match': etag } },
            ),
          );
          if (written.status === 'cancelled') throw new NotFound('the event was deleted (Google keeps it as cancelled)');
        },
        isConflict: (err) => err instanceof GoogleRefused && err.status === 412,
      },
      line,
      DESCRIPTION_CONFLICT_RETRIES,
    );
  }


  /**
   * Deletes the event (Google keeps it as status "cancelled", which incremental syncs return). One already
   * gone is fine: 404, or 410 "deleted" for an event deleted before (also what a retry after a lost answer
   * gets), so the delete is retried inline.
   */
  async deleteEvent(calendarId: string, eventId: string, opts: { notifyAttendees: boolean }): Promise<void> {
    try {
      await this.#eventCall((o) => this.#api.events.delete({ calendarId, eventId, sendUpdates: opts.notifyAttendees ? 'all' : 'none' }, o));
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
    }
  }

  /**
   * Busy time of these calendars in [from, to), merged and sorted: freebusy.query (POST …/calendar/v3/freeBusy) with
   * timeMin/timeMax as RFC 3339 instants and timeZone UTC (FreeBusyRequest), at most 50 calendars and 90 days a request
   * (FREEBUSY_MAX_CALENDARS, FREEBUSY_MAX_MS). Google answers a calendar it cannot read inside the 200, as the entry's
   * `errors` (FreeBusyCalendar.errors: "if computation for the calendar failed"; Error.reason notFound, internalError,
   * tooManyCalendarsRequested, …): such a calendar is never taken as free, its error is thrown (freeBusyError).
   */
  async freeBusy(calendarIds: readonly string[], from: Date, to: Date): Promise<{ start: Date; end: Date }[]> {
    const question = busyQuestion(calendarIds, from, to);
    if (!question) return [];
    const { ids, start, end } = question;
    const spans: { start: number; end: number }[] = [];
    for (let t = start; t < end; t += FREEBUSY_MAX_MS) {
      const windowEnd = Math.min(end, t + FREEBUSY_MAX_MS);
      for (let i = 0; i < ids.length; i += FREEBUSY_MAX_CALENDARS) {
        const chunk = ids.slice(i, i + FREEBUSY_MAX_CALENDARS);
        const requestBody: calendar_v3.Schema$FreeBusyRequest = {
          timeMin: new Date(t).toISOString(),
          timeMax: new Date(windowEnd).toISOString(),
          timeZone: 'UTC',
          items: chunk.map((id) => ({ id })),
        };
        // A read: every transient failure is retried inside the call (call.ts).
        const res = await this.#freeBusyCaller.call<calendar_v3.Schema$FreeBusyResponse>((o) => this.#api.freebusy.query({ requestBody }, o));
        for (const id of chunk) {
          // The answer is keyed by the ids as asked (FreeBusyResponse.calendars); one missing is not "free".
          const entry = res.calendars?.[id];
          if (!entry) throw new ConnectorError('Google answered freebusy.query without one of the calendars asked');
          if (entry.errors && entry.errors.length > 0) throw freeBusyError(entry.errors);
          for (const b of entry.busy ?? []) {
            const s = Date.parse(b.start ?? '');
            const e = Date.parse(b.end ?? '');
            if (!Number.isFinite(s) || !Number.isFinite(e)) throw new ConnectorError('Google answered freebusy.query with a busy period that is not a time range');
            // TimePeriod: start inclusive, end exclusive; kept inside what was asked.
            const clipped = { start: Math.max(s, t), end: Math.min(e, windowEnd) };
            if (clipped.end > clipped.start) spans.push(clipped);
          }
        }
      }
    }
    return mergeBusy(spans);
  }

  async stopChannel(channel: { channelId: string; resourceId: string | null }): Promise<void> {
    try {
      await this.#call((o) => this.#api.channels.stop({ requestBody: { id: channel.channelId, ...(channel.resourceId ? { resourceId: channel.resourceId } : {}) } }, o));
    } catch (err) {
      if (!(err instanceof NotFound)) throw err; // already gone: that is what we wanted
    }
  }
}

/**
 * A calendar's free/busy errors as one of our errors (Error.reason in the discovery document; Google adds reasons
 * without notice, "clients should gracefully handle additional error statuses"). Only the reason is kept: no calendar
 * id, which may be an address.
 */
function freeBusyError(errors: calendar_v3.Schema$Error[]): Error {
  const reasons = errors.map((e) => e.reason ?? 'unknown');
  const said = `Google could not give the free/busy time of a calendar (${reasons.join(', ')})`;
  if (reasons.includes('notFound')) return new NotFound(`${said}: it is gone, or this account cannot see it`);
  // "The API service has encountered an internal error": worth asking again later.
  if (reasons.every((r) => r === 'internalError' || r === 'backendError')) return new RetryAfter(null, said);
  // Our request was too large for one query: repeating it cannot help.
  if (reasons.some((r) => r === 'tooManyCalendarsRequested' || r === 'groupTooBig')) return new Invalid(said);
  return new ConnectorError(said);
}

const BASE32HEX = '0123456789abcdefghijklmnopqrstuv';

/**
 * Our event id for a key: the SHA-256 of the key in lowercase base32hex, 52 characters (Event.id: "characters
 * allowed in the ID are those used in base32hex encoding, i.e. lowercase letters a-v and digits 0-9 … the
 * length of the ID must be between 5 and 1024 characters"). The same key always gives the same id.
 */
export function googleEventId(key: string): string {
  const bytes = createHash('sha256').update(`sessionkeeper:event:${key}`).digest();
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32HEX[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32HEX[(value << (5 - bits)) & 31];
  return out;
}

/** The conference create request's id for a key: the same for every attempt, so a retry makes no second meeting. */
export function conferenceRequestId(key: string): string {
  return `sk-${createHash('sha256').update(`sessionkeeper:meet:${key}`).digest('base64url').slice(0, 32)}`;
}

/** An instant as Google's EventDateTime: the local time with its offset, and the IANA zone. */
function zoned(at: Date, timeZone: string): calendar_v3.Schema$EventDateTime {
  const local = DateTime.fromJSDate(at, { zone: timeZone });
  if (!local.isValid) throw new Error(`not a valid time or IANA time zone: ${timeZone}`);
  return { dateTime: local.toISO({ suppressMilliseconds: true }), timeZone };
}

/** The therapist's popup reminders (Event.reminders: at most 5 overrides, minutes 0 to 40320; checked by Google). */
function popupReminders(minutes: readonly number[]): calendar_v3.Schema$Event['reminders'] {
  return { useDefault: false, overrides: minutes.map((m) => ({ method: 'popup', minutes: m })) };
}

function meetingUrlOf(e: calendar_v3.Schema$Event): string | null {
  if (typeof e.hangoutLink === 'string' && e.hangoutLink.startsWith('https://')) return e.hangoutLink;
  const video = e.conferenceData?.entryPoints?.find((p) => p.entryPointType === 'video');
  return typeof video?.uri === 'string' && video.uri.startsWith('https://') ? video.uri : null;
}

function checkedId(e: calendar_v3.Schema$Event, expected: string): string {
  if (e.id !== expected) throw new Error('Google answered an event write with another event id than ours');
  return expected;
}

/** Only tags the sync can read back are written: anything else would be lost silently. */
function checkTag(name: string, value: string): void {
  if (!name.startsWith(TAG_PREFIX) || !TAG_NAME.test(name)) throw new Error(`not a tag name of ours: ${JSON.stringify(name)} (must start with ${TAG_PREFIX})`);
  if (value.length > MAX_TAG_VALUE) throw new Error(`tag ${name}: a value of at most ${MAX_TAG_VALUE} characters`);
}

/** Google's push notification, checked against the channel record the caller looked up. */
export interface GoogleNotification {
  channelId: string;
  token: string;
  state: 'sync' | 'exists' | 'not_exists';
  resourceId: string | null;
  messageNumber: number | null;
}

/**
 * Reads the X-Goog-* headers of a notification (no body). Returns undefined for anything that is
 * not a well-formed Google notification; the caller then verifies the channel and token with the store.
 */
export function parseGoogleNotification(headers: Record<string, string | string[] | undefined>): GoogleNotification | undefined {
  const h = (name: string) => {
    const v = headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const channelId = h('x-goog-channel-id');
  const token = h('x-goog-channel-token');
  const state = h('x-goog-resource-state');
  if (!channelId || !token || (state !== 'sync' && state !== 'exists' && state !== 'not_exists')) return undefined;
  const number = h('x-goog-message-number');
  return { channelId, token, state, resourceId: h('x-goog-resource-id') ?? null, messageNumber: number && /^\d+$/.test(number) ? Number(number) : null };
}

/**
 * Checks a parsed notification against the channel record the caller looked up by its id: the
 * token must match (by hash, in constant time) and so must the resource, once Google gave us one.
 */
export function verifyGoogleNotification(note: GoogleNotification, channel: StoredChannel | undefined): boolean {
  if (!channel || channel.channelId !== note.channelId) return false;
  if (!secretMatches(note.token, channel.secretHash)) return false;
  return !channel.resourceId || !note.resourceId || channel.resourceId === note.resourceId;
}
