// Shaping of Calendar v3 event resources for the Google emulator: key order, attendees, organizer,
// conference data, tombstones and patch merging (Event schema of the discovery document; google-examples.md A, C, D).
import crypto from 'node:crypto';

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Key order of events as Google sends them (google-examples.md C1); unknown keys follow in their given order. */
const EVENT_KEY_ORDER = [
  'kind',
  'etag',
  'id',
  'status',
  'htmlLink',
  'created',
  'updated',
  'summary',
  'description',
  'location',
  'colorId',
  'creator',
  'organizer',
  'start',
  'end',
  'endTimeUnspecified',
  'recurrence',
  'recurringEventId',
  'originalStartTime',
  'transparency',
  'visibility',
  'iCalUID',
  'sequence',
  'attendees',
  'attendeesOmitted',
  'extendedProperties',
  'hangoutLink',
  'conferenceData',
  'reminders',
  'eventType',
];

export function orderEvent(e: Json): Json {
  const out: Json = {};
  for (const k of EVENT_KEY_ORDER) if (e[k] !== undefined) out[k] = e[k];
  for (const [k, v] of Object.entries(e)) if (!(k in out) && v !== undefined) out[k] = v;
  return out;
}

/** Keys the server computes; a client's values for them are ignored (the discovery document marks them read-only). */
export const SYSTEM_KEYS = new Set([
  'kind',
  'etag',
  'id',
  'htmlLink',
  'created',
  'updated',
  'sequence',
  'iCalUID',
  'recurringEventId',
  'originalStartTime',
  'attendeesOmitted',
]);

/** Read-only for API callers, but set by Google itself (and so by the user-side helpers): organizer, creator, hangoutLink. */
export const OWNER_KEYS = new Set(['creator', 'organizer', 'hangoutLink']);

/**
 * Patch semantics: fields given replace the stored ones, nested objects merge, arrays are replaced, null clears.
 * start/end are replaced as a unit when the patch switches between date and dateTime.
 * Maps such as extendedProperties.private/.shared merge key by key: given keys are set, others kept, a key
 * given as null is removed (Calendar guide "Extended properties": "Using patch requests is the preferred
 * method, as it allows you to manipulate some properties while leaving others untouched", and to delete one
 * "make a patch request to set the value to null"). A null inside an object the event does not have yet
 * removes nothing and is not stored either.
 */
export function mergePatch(base: Json, patch: Json): Json {
  const out: Json = clone(base);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      delete out[k];
      continue;
    }
    const prev = out[k];
    if ((k === 'start' || k === 'end') && isObject(v) && isObject(prev)) {
      if ('date' in v) out[k] = { date: v['date'] };
      else if ('dateTime' in v) out[k] = { ...(str(prev['dateTime']) !== undefined ? prev : {}), ...v, date: undefined };
      else out[k] = { ...prev, ...v };
      const o = out[k] as Json;
      for (const key of Object.keys(o)) if (o[key] === undefined || o[key] === null) delete o[key];
      continue;
    }
    if (isObject(v)) out[k] = mergePatch(isObject(prev) ? prev : {}, v);
    else out[k] = clone(v);
  }
  return out;
}

export const RESPONSE_STATUSES = new Set(['needsAction', 'declined', 'tentative', 'accepted']);

/** Attendee key order: the reference payloads put id/email/displayName first, responseStatus after the flags. */
const ATTENDEE_KEY_ORDER = ['id', 'email', 'displayName', 'organizer', 'self', 'resource', 'optional', 'responseStatus', 'comment', 'additionalGuests'];

export function orderAttendee(a: Json): Json {
  const out: Json = {};
  for (const k of ATTENDEE_KEY_ORDER) if (a[k] !== undefined) out[k] = a[k];
  for (const [k, v] of Object.entries(a)) if (!(k in out) && v !== undefined) out[k] = v;
  return out;
}

/** A deleted event: "only guaranteed to have the id field populated" (Event.status; google-examples.md C2). */
export function deletedTombstone(e: Json): Json {
  return { kind: 'calendar#event', etag: e['etag'], id: e['id'], status: 'cancelled' };
}

/** A cancelled instance: "only guaranteed to have values for the id, recurringEventId and originalStartTime" (C1). */
export function cancelledInstanceTombstone(e: Json): Json {
  return {
    kind: 'calendar#event',
    etag: e['etag'],
    id: e['id'],
    status: 'cancelled',
    recurringEventId: e['recurringEventId'],
    originalStartTime: clone(e['originalStartTime']),
  };
}

export function tombstone(e: Json): Json {
  return typeof e['recurringEventId'] === 'string' ? cancelledInstanceTombstone(e) : deletedTombstone(e);
}

const BASE32HEX = '0123456789abcdefghijklmnopqrstuv';

/** A server-generated event id: base32hex, 26 characters (like "5hni4sj3ql1669otmjg7sn1mok"). */
export function generateEventId(): string {
  const bytes = crypto.randomBytes(26);
  let out = '';
  for (const b of bytes) out += BASE32HEX[b % 32];
  return out;
}

/** Event.id rules: "characters allowed in the ID are those used in base32hex encoding … between 5 and 1024 characters". */
export function isValidEventId(id: string): boolean {
  return /^[a-v0-9]{5,1024}$/.test(id);
}

export function htmlLink(eventId: string, calendarId: string): string {
  const eid = Buffer.from(`${eventId} ${calendarId}`).toString('base64').replace(/=+$/, '');
  return `https://www.google.com/calendar/event?eid=${eid}`;
}

/** A Meet conference for conferenceData.createRequest with conferenceSolutionKey.type "hangoutsMeet". */
export function createConference(createRequest: Json): { conferenceData: Json; hangoutLink: string | undefined } {
  const requestId = str(createRequest['requestId']) ?? '';
  const key = isObject(createRequest['conferenceSolutionKey']) ? createRequest['conferenceSolutionKey'] : { type: 'hangoutsMeet' };
  const type = str(key['type']) ?? 'hangoutsMeet';
  const h = crypto.createHash('sha256').update(requestId).digest();
  const letters = Array.from(h.subarray(0, 10), (b) => String.fromCharCode(97 + (b % 26))).join('');
  const code = `${letters.slice(0, 3)}-${letters.slice(3, 7)}-${letters.slice(7, 10)}`;
  const uri = `https://meet.google.com/${code}`;
  const conferenceData: Json = {
    createRequest: { requestId, conferenceSolutionKey: { type }, status: { statusCode: 'success' } },
    entryPoints: [{ entryPointType: 'video', uri, label: `meet.google.com/${code}` }],
    conferenceSolution: {
      key: { type },
      name: type === 'hangoutsMeet' ? 'Google Meet' : type,
      iconUri: 'https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png',
    },
    conferenceId: code,
  };
  return { conferenceData, hangoutLink: type === 'hangoutsMeet' ? uri : undefined };
}
