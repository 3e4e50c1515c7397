// The Microsoft Graph connector: calendar list; the default calendar synced with calendarView delta
// over a rolling window (the stored cursor is the whole deltaLink), occurrence stubs completed from
// their series master, a changed series re-read so that silently cancelled occurrences are noticed;
// other calendars read as a windowed calendarView that the sync loop diffs; subscriptions; our tags
// as single-value extended properties; events we create (found again by our key), patch and delete;
// our one line in an event's body (a PATCH conditional on the @odata.etag read); free/busy before a
// booking (getSchedule for the mailbox's calendar, calendarView for the others).
import { createHash } from 'node:crypto';
import { DateTime } from 'luxon';
import { ConnectorError, CursorExpired, Forbidden, NeedsReauth, NotFound, RetryAfter } from '../errors.js';
import {
  busyQuestion,
  mergeBusy,
  secretMatches,
  taskMarker,
  type CalendarConnector,
  type ChannelRecord,
  type CreatedEvent,
  type EventPatch,
  type NewEvent,
  type RemoteCalendar,
  type StoredChannel,
  type SyncPage,
} from '../port.js';
import { writeLineConditionally } from '../description-line.js';
import type { CalendarItem, ItemError } from '../types.js';
import { classifyGraphError, GRAPH, GraphSession, odataString, type GraphClientOptions } from './graph.js';
import { normaliseGraphEvent, TAG_PROPERTY_GUID, type GraphDateTime, type GraphEvent } from './normalise.js';
import { toIana } from './zones.js';

export { classifyGraphError };

const DAY = 86_400_000;
/** The extended property that carries our key (taskMarker of NewEvent.key) on the events we create. */
export const KEY_TAG = 'sk.key';
/**
 * Tag names and values as normalise.ts reads them back (TAG_ID there; values up to 1,024 characters).
 * Lower case only: Graph tells property names apart by case ("Get singleValueLegacyExtendedProperty":
 * filtering the Name is case-sensitive) while normalise.ts folds them, so sk.A and sk.a would collide.
 */
const TAG_NAME = /^sk\.[a-z0-9_.-]{1,60}$/;
const TAG_VALUE_MAX = 1024;
/**
 * getSchedule's longest window: Graph refuses more with 400 ErrorTimeIntervalTooBig, "The requested time duration
 * specified for FreeBusyViewOptions.TimeWindow is too long. The allowed limit = 62 days" (quoted in
 * microsoftgraph/microsoft-graph-docs#19703; calendar-getschedule.md names no limit). Longer ranges are asked in parts.
 */
const SCHEDULE_MAX_MS = 62 * DAY;
/**
 * availabilityViewInterval: the documented default, 30 minutes (calendar-getschedule.md: "The default is 30 minutes,
 * minimum is 5, maximum is 1440"). We read the exact times of scheduleItems, not the availabilityView built on it.
 */
const SCHEDULE_INTERVAL_MINUTES = 30;
/**
 * The freeBusyStatus values that leave the time free (scheduleItem.status: free, tentative, busy, oof, workingElsewhere,
 * unknown). workingElsewhere is working time, which Graph's own availabilityView shows as free ("working elsewhere is
 * 0, not 4": microsoftgraph/microsoft-graph-docs-contrib#9360). Everything else takes the time: busy, oof, tentative (a
 * meeting that may well happen), and unknown or a value added later, since a slot wrongly taken only costs an
 * offer while a slot wrongly free costs a double booking.
 */
const FREE_STATUSES = new Set(['free', 'workingElsewhere']);
/**
 * scheduleInformation.error responseCodes (freeBusyError) and what they mean for us: the EWS ResponseCodeType names
 * Graph passes through (getSchedule is Exchange's free/busy, as the FreeBusyViewOptions of its errors shows), and the
 * "5009" of an address Graph cannot resolve (microsoftgraph/microsoft-graph-docs#11225).
 */
const SCHEDULE_NOT_FOUND = new Set(['ErrorMailRecipientNotFound', 'ErrorNonExistentMailbox', '5009']);
const SCHEDULE_DENIED = new Set(['ErrorAccessDenied', 'ErrorNoFreeBusyAccess']);
const SCHEDULE_TRANSIENT = new Set(['ErrorMailboxStoreUnavailable', 'ErrorServerBusy', 'ErrorTimeoutExpired', 'ErrorInternalServerTransientError', 'ErrorMailboxMoveInProgress', 'ErrorProxyRequestProcessingFailed']);

/** One entry of getSchedule's answer (scheduleInformation; freeBusyError; scheduleItem). */
interface ScheduleInformation {
  scheduleId?: string;
  error?: { message?: string; responseCode?: string } | null;
  scheduleItems?: { status?: string; start?: GraphDateTime; end?: GraphDateTime }[];
}

/**
 * How often setDescriptionLine reads the event again after Graph answered 412 (the item changed between our GET and our
 * PATCH) before it gives up with RetryAfter.
 */
const DESCRIPTION_CONFLICT_RETRIES = 3;

/** The id of our tag `name`: a named string property in our namespace ("{type} {guid} Name {name}", extended-properties-overview). */
export function tagPropertyId(name: string): string {
  return `String {${TAG_PROPERTY_GUID}} Name ${name}`;
}

export interface GraphCalendarOptions extends GraphClientOptions {
  /** The clock of the caller: the sync window is placed around its now. */
  now?: () => Date;
  /** Days of the synced window before and after now (API-NOTES: e.g. 60 back, 180 ahead). */
  window?: { backDays: number; aheadDays: number };
  pageSize?: number;
}

interface Cursor {
  /** The whole @odata.deltaLink (default calendar), or null for a windowed read. */
  link: string | null;
  start: string;
  end: string;
}

/** The subscription's clientState (our secret) and lifecycle address, as Graph wants them. */
export interface GraphSubscription {
  id: string;
  expirationDateTime: string;
}

export class GraphCalendarConnector implements CalendarConnector {
  readonly provider = 'microsoft' as const;
  /**
   * An organizer's PATCH of an event with attendees sends them an update, and Graph has no
   * sendUpdates=none (API-NOTES, Microsoft "Other"; event-update.md: updates go out to attendees).
   */
  readonly writesNotifyAttendees = true;
  readonly #graph: GraphSession;
  readonly #now: () => Date;
  readonly #window: { backDays: number; aheadDays: number };
  readonly #pageSize: number;
  #me: { id: string; email: string | null; zone: string; defaultCalendarId: string } | undefined;

  constructor(opts: GraphCalendarOptions) {
    this.#graph = new GraphSession(opts, 'Calendars.ReadWrite');
    this.#now = opts.now ?? (() => new Date());
    this.#window = opts.window ?? { backDays: 60, aheadDays: 180 };
    this.#pageSize = opts.pageSize ?? 100;
  }

  /** HTTP requests made (every attempt). */
  get requests(): number {
    return this.#graph.requests;
  }

  async #get<T>(url: string, prefer: string[] = []): Promise<T> {
    // UTC times (we keep each event's own zone from originalStartTimeZone), ids that survive moves.
    return this.#graph.get<T>(url, ['outlook.timezone="UTC"', 'IdType="ImmutableId"', ...prefer]);
  }

  async #send<T>(method: 'post' | 'patch' | 'delete', url: string, body?: unknown): Promise<T> {
    return this.#graph.send<T>(method, url, body, { headers: { Prefer: 'IdType="ImmutableId"' } });
  }

  async #whoami() {
    if (!this.#me) {
      const me = await this.#get<{ id: string; mail?: string | null; userPrincipalName?: string }>(`${GRAPH}/me?$select=id,mail,userPrincipalName`);
      // The mailbox's zone (MailboxSettings.Read, which we ask for; a grant made before we did lacks it:
      // then UTC, and each event keeps its own zone anyway). Transient failures and lost grants surface.
      const settings = await this.#get<{ timeZone?: string }>(`${GRAPH}/me/mailboxSettings/timeZone`).catch((err: unknown) =>
        err instanceof RetryAfter || err instanceof NeedsReauth ? Promise.reject(err) : { timeZone: undefined },
      );
      const cal = await this.#get<{ id: string }>(`${GRAPH}/me/calendar?$select=id`);
      this.#me = { id: me.id, email: me.mail ?? me.userPrincipalName ?? null, zone: toIana((settings as { value?: string; timeZone?: string }).value ?? settings.timeZone) ?? 'UTC', defaultCalendarId: cal.id };
    }
    return this.#me;
  }

  async listCalendars(): Promise<RemoteCalendar[]> {
    const me = await this.#whoami();
    const out: RemoteCalendar[] = [];
    let url: string | undefined = `${GRAPH}/me/calendars?$select=id,name,isDefaultCalendar,canEdit,canViewPrivateItems`;
    while (url) {
      const page: { value: { id: string; name?: string; isDefaultCalendar?: boolean; canEdit?: boolean }[]; '@odata.nextLink'?: string } = await this.#get(url);
      for (const c of page.value) {
        out.push({ id: c.id, name: c.name ?? c.id, timeZone: me.zone, primary: c.isDefaultCalendar === true || c.id === me.defaultCalendarId, canRead: true, canWrite: c.canEdit !== false });
      }
      url = page['@odata.nextLink'];
    }
    return out;
  }

  #freshWindow(): { start: string; end: string } {
    const now = this.#now().getTime();
    return { start: new Date(now - this.#window.backDays * DAY).toISOString(), end: new Date(now + this.#window.aheadDays * DAY).toISOString() };
  }

  /**
   * The default calendar: calendarView delta (v1.0 offers delta for no other calendar). Others: a
   * windowed calendarView, complete every time, which the loop diffs. When the window would no
   * longer reach two thirds of the way ahead, the cursor is treated as expired: a planned resync.
   */
  async syncPage(calendarId: string, opts: { cursor: string | null; pageToken: string | null }): Promise<SyncPage> {
    const me = await this.#whoami();
    const cursor = opts.cursor ? (JSON.parse(opts.cursor) as Cursor) : null;
    if (cursor && Date.parse(cursor.end) - this.#now().getTime() < (this.#window.aheadDays * DAY * 2) / 3) {
      throw new CursorExpired('the synced window must move ahead: a planned full resync');
    }
    const isDefault = calendarId === me.defaultCalendarId || calendarId === 'primary';
    const window = opts.pageToken ? JSON.parse(opts.pageToken).window as { start: string; end: string } : cursor ?? this.#freshWindow();
    let url: string;
    if (opts.pageToken) url = (JSON.parse(opts.pageToken) as { next: string }).next;
    else if (isDefault && cursor?.link) url = cursor.link;
    else if (isDefault) url = `${GRAPH}/me/calendarView/delta?startDateTime=${encodeURIComponent(window.start)}&endDateTime=${encodeURIComponent(window.end)}`;
    else url = `${GRAPH}/me/calendars/${encodeURIComponent(calendarId)}/calendarView?startDateTime=${encodeURIComponent(window.start)}&endDateTime=${encodeURIComponent(window.end)}&$expand=${encodeURIComponent(`singleValueExtendedProperties($filter=id eq 'String {${TAG_PROPERTY_GUID}} Name sk.session' or id eq 'String {${TAG_PROPERTY_GUID}} Name sk.outcome')`)}`;
    const listedAt = this.#now().toISOString();
    const page = await this.#get<{ value: GraphEvent[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string }>(url, [`odata.maxpagesize=${this.#pageSize}`]);
    const items: CalendarItem[] = [];
    const rejected: ItemError[] = [];
    const masters = new Map<string, GraphEvent | null>();
    const seriesSnapshots: { seriesId: string; eventIds: string[] }[] = [];
    const master = async (id: string): Promise<GraphEvent | null> => {
      if (!masters.has(id)) masters.set(id, await this.#get<GraphEvent>(`${GRAPH}/me/events/${encodeURIComponent(id)}`).catch((err: unknown) => (err instanceof NotFound ? null : Promise.reject(err))));
      return masters.get(id)!;
    };
    const add = (e: GraphEvent) => {
      const r = normaliseGraphEvent(e, calendarId, { calendarZone: me.zone, ownerEmail: me.email, listedAt });
      if (!r.ok) rejected.push(r.error);
      else if (r.item) items.push(r.item);
    };
    for (const raw of page.value) {
      if (raw['@removed'] && raw.id && isDefault) {
        // Delta says "removed" both for a deleted event and for one moved out of the window (the
        // reference: also for events outside it): ask which, so a moved session is not a cancelled one.
        const still = await this.#get<GraphEvent>(`${GRAPH}/me/events/${encodeURIComponent(raw.id)}`).catch((err: unknown) => (err instanceof NotFound ? null : Promise.reject(err)));
        if (still && !still.isCancelled) {
          if (still.type === 'occurrence' && still.seriesMasterId && still.subject === undefined) {
            const m = await master(still.seriesMasterId);
            if (m) add(complete(still, m));
          } else if (still.type !== 'seriesMaster') add(still);
          continue;
        }
        add(raw);
        continue;
      }
      if (raw.type === 'seriesMaster' && raw.id && isDefault) {
        // A changed series: its occurrences are read again, so one cancelled without a delta
        // signal (API-NOTES) is noticed by its absence.
        masters.set(raw.id, raw);
        const instances = await this.#instances(raw.id, window);
        for (const inst of instances) add(complete(inst, raw));
        seriesSnapshots.push({ seriesId: raw.id, eventIds: instances.map((i) => i.id!).filter(Boolean) });
        continue;
      }
      if (raw.type === 'occurrence' && raw.seriesMasterId && raw.subject === undefined) {
        const m = await master(raw.seriesMasterId);
        if (m) add(complete(raw, m));
        continue;
      }
      add(raw);
    }
    const next = page['@odata.nextLink'];
    const delta = page['@odata.deltaLink'];
    return {
      items,
      rejected,
      nextPageToken: next ? JSON.stringify({ next, window }) : null,
      nextCursor: next ? null : JSON.stringify({ link: isDefault ? (delta ?? null) : null, start: window.start, end: window.end } satisfies Cursor),
      // A windowed read is a complete picture of the window; a delta page only of what changed.
      window: next || isDefault ? null : { start: new Date(window.start), end: new Date(window.end) },
      syncedWindow: next ? null : { start: new Date(window.start), end: new Date(window.end) },
      ...(seriesSnapshots.length > 0 ? { seriesSnapshots } : {}),
    };
  }

  async #instances(masterId: string, window: { start: string; end: string }): Promise<GraphEvent[]> {
    const out: GraphEvent[] = [];
    let url: string | undefined = `${GRAPH}/me/events/${encodeURIComponent(masterId)}/instances?startDateTime=${encodeURIComponent(window.start)}&endDateTime=${encodeURIComponent(window.end)}`;
    while (url) {
      const page: { value: GraphEvent[]; '@odata.nextLink'?: string } = await this.#get(url);
      out.push(...page.value);
      url = page['@odata.nextLink'];
    }
    return out;
  }

  /**
   * One of our marks on an event, as a single-value extended property (Graph reference "Create single-value
   * extended property": PATCH /me/events/{id} with singleValueExtendedProperties creates or updates
   * it, and the answer does not include it). Idempotent: the value is read first and the PATCH is
   * skipped when it is already there, because every PATCH of an event with attendees may reach them
   * as a meeting update (API-NOTES: treat it as visible to the client), so a retry must not send
   * another. A deleted or cancelled event is NotFound. `calendarId` is not needed: ids are unique in
   * the mailbox (/me/events/{id} serves every calendar).
   */
  async setTag(calendarId: string, eventId: string, name: string, value: string): Promise<void> {
    checkTag(name, value);
    if ((await this.getTag(calendarId, eventId, name)) === value) return;
    await this.#send('patch', `${GRAPH}/me/events/${encodeURIComponent(eventId)}`, {
      singleValueExtendedProperties: [{ id: tagPropertyId(name), value }],
    });
  }

  /**
   * Adds an Outlook category (event.md: categories, "the categories associated with the event"): the
   * list is read and written whole, so the therapist's own categories stay; one already there is not
   * written again (a PATCH is a new version of the event, and a change notification).
   */
  async addCategory(_calendarId: string, eventId: string, category: string): Promise<void> {
    const event = await this.#get<GraphEvent>(`${GRAPH}/me/events/${encodeURIComponent(eventId)}?$select=id,isCancelled,categories`);
    if (event.isCancelled === true) throw new NotFound(`the event ${eventId} is cancelled`);
    const categories = event.categories ?? [];
    if (categories.some((c) => c.toLowerCase() === category.toLowerCase())) return;
    await this.#send('patch', `${GRAPH}/me/events/${encodeURIComponent(eventId)}`, { categories: [...categories, category] });
  }

  /**
   * Reads one mark back: the event expanded with the one property ("Get singleValueLegacyExtendedProperty":
   * $expand=singleValueExtendedProperties($filter=id eq '…') is the only way to read it; the list is
   * absent when the event has no such property). isCancelled is selected too: an attendee's copy of a
   * cancelled meeting stays in the calendar with isCancelled true (event.md), and is as gone as a deleted one.
   */
  async getTag(_calendarId: string, eventId: string, name: string): Promise<string | null> {
    checkTag(name);
    const id = tagPropertyId(name);
    const expand = `singleValueExtendedProperties($filter=id eq ${odataString(id)})`;
    const event = await this.#get<GraphEvent>(`${GRAPH}/me/events/${encodeURIComponent(eventId)}?$select=id,isCancelled&$expand=${encodeURIComponent(expand)}`);
    if (event.isCancelled === true) throw new NotFound(`the event ${eventId} is cancelled`);
    // Graph may answer with the id in its own spelling (e.g. the GUID's case): compare without case.
    const hit = (event.singleValueExtendedProperties ?? []).find((p) => p.id?.toLowerCase() === id.toLowerCase());
    return typeof hit?.value === 'string' ? hit.value : null;
  }

  /** The events collection of a calendar ('primary': the mailbox's default one). */
  #eventsOf(calendarId: string): string {
    return calendarId === 'primary' ? `${GRAPH}/me/calendar/events` : `${GRAPH}/me/calendars/${encodeURIComponent(calendarId)}/events`;
  }

  /**
   * The event an earlier attempt made for this key, found by our key's extended property ("Get
   * singleValueLegacyExtendedProperty": $filter=singleValueExtendedProperties/any(ep: ep/id eq '…' and ep/value eq '…'),
   * and the property $expanded to compare the value exactly, since the filter on a value ignores case).
   */
  async #findByKey(calendarId: string, marker: string): Promise<GraphEvent | null> {
    const id = tagPropertyId(KEY_TAG);
    const filter = `singleValueExtendedProperties/any(ep: ep/id eq ${odataString(id)} and ep/value eq ${odataString(marker)})`;
    const expand = `singleValueExtendedProperties($filter=id eq ${odataString(id)})`;
    const url = `${this.#eventsOf(calendarId)}?$filter=${encodeURIComponent(filter)}&$select=id,isCancelled,onlineMeeting&$expand=${encodeURIComponent(expand)}`;
    const found = await this.#graph.all<GraphEvent>(url, ['IdType="ImmutableId"']);
    return found.find((e) => e.isCancelled !== true && (e.singleValueExtendedProperties ?? []).some((p) => p.id?.toLowerCase() === id.toLowerCase() && p.value === marker)) ?? null;
  }

  /**
   * Creates an event once per `event.key`: the key's marker goes into an extended property (sk.key) and is searched
   * first when `mayExist`; Graph's transactionId ("event" resource: for the server to avoid redundant POSTs when a
   * client retries) is derived from it too, a second guard for a retry soon after a lost answer. Graph sends the
   * attendees an invitation whatever `notifyAttendees` says: there is no sendUpdates=none (API-NOTES, Microsoft;
   * writesNotifyAttendees). A Teams meeting is asked for with isOnlineMeeting and onlineMeetingProvider teamsForBusiness
   * (event.md); its joinUrl comes back in onlineMeeting.
   */
  async createEvent(calendarId: string, event: NewEvent, opts: { mayExist: boolean }): Promise<CreatedEvent> {
    const marker = taskMarker(event.key);
    const tags = Object.entries(event.tags ?? {});
    for (const [name, value] of tags) checkTag(name, value);
    if (opts.mayExist) {
      const found = await this.#findByKey(calendarId, marker);
      if (found?.id) return { eventId: found.id, meetingUrl: found.onlineMeeting?.joinUrl ?? null, created: false };
    }
    const body: Record<string, unknown> = {
      subject: event.summary,
      start: graphTime(event.start, event.timeZone),
      end: graphTime(event.end, event.timeZone),
      attendees: event.attendees.map((a) => ({ emailAddress: { address: a.email, ...(a.name ? { name: a.name } : {}) }, type: 'required' })),
      transactionId: transactionIdOf(event.key),
      singleValueExtendedProperties: [{ id: tagPropertyId(KEY_TAG), value: marker }, ...tags.map(([name, value]) => ({ id: tagPropertyId(name), value }))],
    };
    if (event.description !== undefined) body['body'] = itemBody(event.description);
    if (event.location !== undefined) body['location'] = { displayName: event.location };
    if (event.onlineMeeting) {
      body['isOnlineMeeting'] = true;
      body['onlineMeetingProvider'] = 'teamsForBusiness';
    }
    Object.assign(body, reminder(event.reminderMinutes));
    const created = await this.#send<GraphEvent>('post', this.#eventsOf(calendarId), body);
    if (!created.id) throw new Error('Graph created an event without an id');
    let meetingUrl = created.onlineMeeting?.joinUrl ?? null;
    if (event.onlineMeeting && !meetingUrl) {
      // The Teams meeting may be attached just after the answer: read it once more.
      const again = await this.#get<GraphEvent>(`${GRAPH}/me/events/${encodeURIComponent(created.id)}?$select=id,onlineMeeting`);
      meetingUrl = again.onlineMeeting?.joinUrl ?? null;
    }
    return { eventId: created.id, meetingUrl, created: true };
  }

  /**
   * PATCHes only the fields given (reminderMinutes: the first becomes reminderMinutesBeforeStart; an empty list turns
   * isReminderOn off). `notifyAttendees` cannot be honoured: Graph sends an organizer's attendees an update for every
   * PATCH of a meeting (API-NOTES; writesNotifyAttendees is true) — the engine keeps such writes for changes the client
   * may see. NotFound when the event is gone.
   */
  async patchEvent(_calendarId: string, eventId: string, patch: EventPatch, _opts: { notifyAttendees: boolean }): Promise<void> {
    const body: Record<string, unknown> = {};
    if (patch.summary !== undefined) body['subject'] = patch.summary;
    if (patch.description !== undefined) body['body'] = itemBody(patch.description ?? '');
    if (patch.location !== undefined) body['location'] = { displayName: patch.location ?? '' };
    if (patch.start !== undefined || patch.end !== undefined) {
      if (!patch.timeZone) throw new RangeError('EventPatch.timeZone is required with start or end');
      if (patch.start !== undefined) body['start'] = graphTime(patch.start, patch.timeZone);
      if (patch.end !== undefined) body['end'] = graphTime(patch.end, patch.timeZone);
    }
    Object.assign(body, reminder(patch.reminderMinutes));
    if (Object.keys(body).length === 0) return;
    await this.#send('patch', `${GRAPH}/me/events/${encodeURIComponent(eventId)}`, body);
  }

  /**
   * Our one line at the end of the event's body (connectors/description-line.ts does the text), without losing an edit
   * made meanwhile: GET the body (in the type it is stored in: no Prefer outlook.body-content-type, which would convert
   * it) with the item's @odata.etag, then PATCH the whole body, same contentType, with `If-Match: <@odata.etag>`. Graph
   * answers a stale one 412 Precondition Failed, code ErrorIrresolvableConflict, "The send or update operation could
   * not be performed because the change key passed in the request does not match the current change key for the item"
   * (as quoted in microsoftgraph/microsoft-graph-docs-contrib#7934 and msgraph-sdk-dotnet#1201; event.md: changeKey
   * "Identifies the version of the event object. Every time the event is changed, ChangeKey changes as well"). Exchange
   * also moves an item's change key on its own shortly after a create (KeepSoftwareSimple/compass-calendar#3675), so a
   * 412 is read again and the line applied to what is there now, DESCRIPTION_CONFLICT_RETRIES times, then RetryAfter
   * (refused: a 412 wrote nothing). Exchange rewrites HTML it saves (a whole <html> document, its own attributes): our
   * line is recognised by its text when our attribute is gone, and the rest is kept as Graph gives it.
   * `notifyAttendees` cannot be honoured: an organizer's PATCH of a meeting's body sends its attendees an update (API-NOTES,
   * Microsoft; writesNotifyAttendees is true). The engine decides whether the line may be written to such an event; here
   * nothing is written when the line is already as asked, so a repeated call sends nobody a second update. A cancelled
   * or deleted event is NotFound.
   */
  async setDescriptionLine(_calendarId: string, eventId: string, line: { text: string; url: string } | null, _opts: { notifyAttendees: boolean }): Promise<{ changed: boolean }> {
    const url = `${GRAPH}/me/events/${encodeURIComponent(eventId)}`;
    return writeLineConditionally(
      {
        read: async () => {
          const event = await this.#get<GraphEvent & { body?: { contentType?: string; content?: string } }>(`${url}?$select=id,isCancelled,changeKey,body`);
          if (event.isCancelled === true) throw new NotFound(`the event ${eventId} is cancelled`);
          const etag = event['@odata.etag'] ?? (event.changeKey ? `W/"${event.changeKey}"` : undefined);
          if (!etag) throw new ConnectorError('Graph answered the event without its @odata.etag or changeKey');
          const contentType = event.body?.contentType?.toLowerCase() === 'text' ? 'text' : 'html';
          return { description: event.body?.content ?? '', format: contentType, version: { etag, contentType } };
        },
        // The whole body back, in the type it was read in.
        write: async (content, { etag, contentType }) => {
          await this.#graph.send('patch', url, { body: { contentType, content } }, { headers: { Prefer: 'IdType="ImmutableId"', 'If-Match': etag } });
        },
        isConflict: (err) => (err as { statusCode?: number }).statusCode === 412,
      },
      line,
      DESCRIPTION_CONFLICT_RETRIES,
    );
  }


  /**
   * Deletes an event; one already gone is fine. An organizer's delete of a meeting sends its attendees a cancellation
   * ("Delete event") whatever `notifyAttendees` says: Graph has no way to delete quietly (writesNotifyAttendees).
   */
  async deleteEvent(_calendarId: string, eventId: string, _opts: { notifyAttendees: boolean }): Promise<void> {
    try {
      await this.#send('delete', `${GRAPH}/me/events/${encodeURIComponent(eventId)}`);
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
    }
  }

  async watch(calendarId: string, opts: { channelId: string; address: string; secret: string; expiresAt?: Date }): Promise<ChannelRecord> {
    const me = await this.#whoami();
    // Graph's limit for events is 10,080 minutes; three days leaves room to renew.
    const expires = opts.expiresAt ?? new Date(this.#now().getTime() + 3 * DAY);
    const sub = await this.#send<GraphSubscription>('post', `${GRAPH}/subscriptions`, {
      changeType: 'created,updated,deleted',
      notificationUrl: opts.address,
      lifecycleNotificationUrl: `${opts.address}/lifecycle`,
      resource: calendarId === me.defaultCalendarId ? '/me/events' : `/me/calendars/${calendarId}/events`,
      expirationDateTime: expires.toISOString(),
      clientState: opts.secret,
    });
    return { channelId: sub.id, resourceId: null, expiresAt: new Date(sub.expirationDateTime) };
  }

  async renew(subscriptionId: string, expiresAt: Date): Promise<Date> {
    const sub = await this.#send<GraphSubscription>('patch', `${GRAPH}/subscriptions/${encodeURIComponent(subscriptionId)}`, { expirationDateTime: expiresAt.toISOString() });
    return new Date(sub.expirationDateTime);
  }

  /**
   * Busy time of these calendars in [from, to), merged and sorted. getSchedule takes SMTP addresses, not calendar ids
   * (calendar-getschedule.md: "schedules: A collection of SMTP addresses"), and answers for a mailbox's default calendar
   * only (scheduleItem: "an actual event on the user's default calendar"): so the mailbox's calendar ('primary' or the
   * default calendar's id) is asked by the signed-in user's own address (/me mail, else userPrincipalName, read once and
   * kept: #whoami), and any other calendar of the mailbox is read as a calendarView of its events, with the same rule
   * for what takes the time (FREE_STATUSES), cancelled events left out. An unknown calendar is NotFound (404).
   */
  async freeBusy(calendarIds: readonly string[], from: Date, to: Date): Promise<{ start: Date; end: Date }[]> {
    const question = busyQuestion(calendarIds, from, to);
    if (!question) return [];
    const { ids, start, end } = question;
    const me = await this.#whoami();
    const isMailbox = (id: string) => id === 'primary' || id === me.defaultCalendarId;
    const spans: { start: number; end: number }[] = [];
    if (ids.some(isMailbox)) spans.push(...(await this.#schedule(me.email, start, end)));
    for (const id of ids.filter((i) => !isMailbox(i))) spans.push(...(await this.#calendarBusy(id, start, end, me.zone)));
    return mergeBusy(spans.map((x) => ({ start: Math.max(x.start, start), end: Math.min(x.end, end) })).filter((x) => x.end > x.start));
  }

  /**
   * POST /me/calendar/getSchedule for our own mailbox, 62 days at a time (SCHEDULE_MAX_MS), times asked and answered in
   * UTC: startTime/endTime as dateTimeTimeZone in UTC, and `Prefer: outlook.timezone="UTC"` for the answer's times
   * (calendar-getschedule.md: "If not specified, those time values are returned in UTC"; said anyway, and each item's
   * timeZone is read rather than assumed). A schedule Graph could not read comes back inside the 200 as its `error`
   * (scheduleInformation.error): never taken as free time.
   */
  async #schedule(address: string | null, start: number, end: number): Promise<{ start: number; end: number }[]> {
    // Without an address there is nothing to ask (neither mail nor userPrincipalName). Personal Microsoft accounts have no
    // getSchedule at all (calendar-getschedule.md, Permissions: "Not supported"): Graph refuses them with a 4xx.
    if (!address) throw new Forbidden('the signed-in account has no mailbox address to ask getSchedule about');
    const out: { start: number; end: number }[] = [];
    // Whole seconds, widened outwards: what lies beyond [start, end) is cut off by the caller.
    const lo = Math.floor(start / 1000) * 1000;
    const hi = Math.ceil(end / 1000) * 1000;
    for (let t = lo; t < hi; t += SCHEDULE_MAX_MS) {
      const windowEnd = Math.min(hi, t + SCHEDULE_MAX_MS);
      const body = {
        schedules: [address],
        startTime: utcDateTime(t),
        endTime: utcDateTime(windowEnd),
        availabilityViewInterval: SCHEDULE_INTERVAL_MINUTES,
      };
      // A read: the RetryHandler may repeat it after a 429/503/504 (graph.ts).
      const res = await this.#graph.send<{ value?: ScheduleInformation[] }>('post', `${GRAPH}/me/calendar/getSchedule`, body, {
        headers: { Prefer: 'outlook.timezone="UTC"' },
      });
      const info = (res.value ?? []).find((v) => v.scheduleId?.toLowerCase() === address.toLowerCase());
      if (!info) throw new ConnectorError('Graph answered getSchedule without the schedule asked for');
      if (info.error) throw scheduleError(info.error.responseCode);
      for (const item of info.scheduleItems ?? []) {
        if (FREE_STATUSES.has(item.status ?? '')) continue;
        out.push(span(item.start, item.end, 'getSchedule'));
      }
    }
    return out;
  }

  /**
   * A calendar other than the mailbox's default one: its events in the window, read in UTC (calendarView). An all-day
   * event's times are floating dates whatever the Prefer zone says: they are taken in the mailbox's zone, as the sync
   * takes them (normalise.ts, calendarZone).
   */
  async #calendarBusy(calendarId: string, start: number, end: number, mailboxZone: string): Promise<{ start: number; end: number }[]> {
    const window = `startDateTime=${encodeURIComponent(new Date(start).toISOString())}&endDateTime=${encodeURIComponent(new Date(end).toISOString())}`;
    const url = `${GRAPH}/me/calendars/${encodeURIComponent(calendarId)}/calendarView?${window}&$select=showAs,isCancelled,isAllDay,start,end`;
    const events = await this.#graph.all<GraphEvent>(url, ['outlook.timezone="UTC"', `odata.maxpagesize=${this.#pageSize}`]);
    const floating = (t: GraphDateTime | undefined): GraphDateTime | undefined => (t ? { ...t, timeZone: mailboxZone } : t);
    return events
      .filter((e) => e.isCancelled !== true && !FREE_STATUSES.has(e.showAs ?? ''))
      .map((e) => (e.isAllDay === true ? span(floating(e.start), floating(e.end), 'calendarView') : span(e.start, e.end, 'calendarView')));
  }

  async stopChannel(channel: { channelId: string; resourceId: string | null }): Promise<void> {
    try {
      await this.#send('delete', `${GRAPH}/subscriptions/${encodeURIComponent(channel.channelId)}`);
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
    }
  }
}

/** An instant as Graph's dateTimeTimeZone in the event's own IANA zone (Graph takes IANA names: API-NOTES). */
function graphTime(at: Date, zone: string): { dateTime: string; timeZone: string } {
  const local = DateTime.fromJSDate(at, { zone });
  if (!local.isValid) throw new RangeError(`not a time zone Graph can take: '${zone}'`);
  return { dateTime: local.toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: zone };
}

/** An instant as the dateTimeTimeZone of a getSchedule request, in UTC. */
function utcDateTime(ms: number): { dateTime: string; timeZone: string } {
  return { dateTime: DateTime.fromMillis(ms, { zone: 'utc' }).toFormat("yyyy-MM-dd'T'HH:mm:ss"), timeZone: 'UTC' };
}

/** A dateTimeTimeZone of Graph's answer as epoch milliseconds, read in its own zone (Windows or IANA name). */
function graphInstant(t: GraphDateTime | undefined): number | undefined {
  const zone = toIana(t?.timeZone);
  if (!t?.dateTime || !zone) return undefined;
  // Graph writes seven fractional digits; Luxon keeps milliseconds.
  const at = DateTime.fromISO(t.dateTime.replace(/(\.\d{3})\d+$/, '$1'), { zone });
  return at.isValid ? at.toMillis() : undefined;
}

/** A busy item's span; one whose times cannot be read is an error, never free time. */
function span(start: GraphDateTime | undefined, end: GraphDateTime | undefined, source: string): { start: number; end: number } {
  const s = graphInstant(start);
  const e = graphInstant(end);
  if (s === undefined || e === undefined) throw new ConnectorError(`Graph answered ${source} with an item whose times cannot be read`);
  return { start: s, end: e };
}

/** A schedule's freeBusyError as one of our errors; only its responseCode is kept (Graph's message may quote the address). */
function scheduleError(code: string | undefined): Error {
  const said = `Graph could not give the mailbox's free/busy time (${code ?? 'no responseCode'})`;
  if (code && SCHEDULE_NOT_FOUND.has(code)) return new NotFound(said);
  if (code && SCHEDULE_DENIED.has(code)) return new Forbidden(said);
  if (code && SCHEDULE_TRANSIENT.has(code)) return new RetryAfter(null, said);
  return new ConnectorError(said);
}

/** Our description as an itemBody: HTML when it is markup, text otherwise. */
function itemBody(content: string): { contentType: 'html' | 'text'; content: string } {
  return { contentType: /<[a-z][^>]*>/i.test(content) ? 'html' : 'text', content };
}

/** The popup reminder: Graph keeps one (the first of ours); none turns it off. */
function reminder(minutes: number[] | undefined): Record<string, unknown> {
  if (minutes === undefined) return {};
  const first = minutes[0];
  return first === undefined ? { isReminderOn: false } : { isReminderOn: true, reminderMinutesBeforeStart: first };
}

/** Graph's transactionId for a key: a GUID-shaped digest (no client data). */
function transactionIdOf(key: string): string {
  const h = createHash('sha256').update(`sk-event:${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A tag that normalise.ts could not read back would be lost silently: refused here instead. */
function checkTag(name: string, value?: string): void {
  if (!TAG_NAME.test(name)) throw new RangeError(`a tag name must look like sk.name (letters, digits, _ . -, at most 60 after "sk."), got '${name}'`);
  if (value !== undefined && value.length > TAG_VALUE_MAX) throw new RangeError(`a tag value may have at most ${TAG_VALUE_MAX} characters (${value.length} given)`);
}

/** An occurrence stub with what its series master says (subject, attendees, ...), its own times kept. */
function complete(occurrence: GraphEvent, master: GraphEvent): GraphEvent {
  return {
    ...master,
    ...Object.fromEntries(Object.entries(occurrence).filter(([, v]) => v !== undefined)),
    type: occurrence.type ?? 'occurrence',
    seriesMasterId: occurrence.seriesMasterId ?? master.id ?? null,
    // The instance changes when its master does.
    changeKey: occurrence.changeKey ?? `${master.changeKey ?? ''}:${occurrence.start?.dateTime ?? ''}`,
    lastModifiedDateTime: occurrence.lastModifiedDateTime ?? master.lastModifiedDateTime,
  } as GraphEvent;
}

/** A Graph change notification (one entry of its "value"), checked against the subscription we keep. */
export interface GraphNotification {
  subscriptionId: string;
  clientState: string | null;
  changeType: string | null;
  lifecycleEvent: 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed' | null;
}

export function parseGraphNotifications(body: unknown): GraphNotification[] | undefined {
  const value = (body as { value?: unknown })?.value;
  if (!Array.isArray(value)) return undefined;
  const out: GraphNotification[] = [];
  for (const v of value as Record<string, unknown>[]) {
    if (typeof v?.['subscriptionId'] !== 'string') return undefined;
    const life = v['lifecycleEvent'];
    out.push({
      subscriptionId: v['subscriptionId'] as string,
      clientState: typeof v['clientState'] === 'string' ? (v['clientState'] as string) : null,
      changeType: typeof v['changeType'] === 'string' ? (v['changeType'] as string) : null,
      lifecycleEvent: life === 'reauthorizationRequired' || life === 'subscriptionRemoved' || life === 'missed' ? life : null,
    });
  }
  return out;
}

/** A notification is ours only with the clientState we chose for that subscription. */
export function verifyGraphNotification(note: GraphNotification, subscription: StoredChannel | undefined): boolean {
  return !!subscription && subscription.channelId === note.subscriptionId && note.clientState !== null && secretMatches(note.clientState, subscription.secretHash);
}
