// calendar: getSchedule of the Microsoft emulator (POST /me/calendar/getSchedule): free/busy of mailboxes' default
// calendars from the stored events, shaped as refs/graph-docs/calendar-getschedule.md and the scheduleInformation,
// scheduleItem and freeBusyError resources (microsoft-graph-docs-contrib, api-reference/v1.0/resources).
import type { DateTime } from 'luxon';
import * as E from './errors.js';
import { isObject, type Json } from './events.js';
import type { User } from './identity.js';
import type { GraphStore } from './store.js';
import { parseLocal, renderDateTime, resolveZone, windowsName, type OutputZone } from './timezones.js';

/**
 * The longest window: "The requested time duration specified for FreeBusyViewOptions.TimeWindow is too long. The
 * allowed limit = 62 days; the actual limit = 63 days." (400 ErrorTimeIntervalTooBig, quoted in
 * microsoftgraph/microsoft-graph-docs#19703; calendar-getschedule.md names no limit).
 */
export const MAX_WINDOW_DAYS = 62;
/**
 * The most schedules one request may name: 100, with 400 ErrorMailboxDataArrayTooBig past it, as Graph answers
 * (microsoftgraph/microsoft-graph-docs#7047; the concept page's "20" is lower than what Graph enforces).
 */
export const MAX_SCHEDULES = 100;

/** A schedule's error as a test breaks it on purpose (freeBusyError: message, responseCode). */
export interface ScheduleFailure {
  responseCode: string;
  message: string;
}

export interface ScheduleDeps {
  store: GraphStore;
  userByUpn(address: string): User | undefined;
  /** Schedules (lower-case SMTP address) answered with an error instead of their items. */
  failures: ReadonlyMap<string, ScheduleFailure>;
  /** '@odata.context' of the answer. */
  context: string;
}

/** Which availabilityView digit each freeBusyStatus takes, and which wins where items overlap. */
const VIEW_DIGIT: Record<string, string> = {
  free: '0',
  // "Working elsewhere is set to 0 instead of 4 for backward compatibility" (microsoft-graph-docs-contrib#9360, #9369;
  // msgraph-metadata#598), although scheduleInformation.availabilityView documents 4.
  workingElsewhere: '0',
  tentative: '1',
  busy: '2',
  oof: '3',
};
const VIEW_RANK: Record<string, number> = { free: 0, workingElsewhere: 0, tentative: 1, busy: 2, oof: 3 };

function time(v: unknown, name: string): DateTime {
  if (!isObject(v)) throw E.invalidParameter(`The parameter '${name}' is required.`);
  const zone = resolveZone(typeof v['timeZone'] === 'string' ? v['timeZone'] : '');
  const at = zone === undefined ? undefined : parseLocal(typeof v['dateTime'] === 'string' ? v['dateTime'] : '', zone);
  if (!at) throw E.invalidParameter(`The value of parameter '${name}' is invalid.`);
  return at.toUTC();
}

/**
 * One scheduleInformation per address asked, in the order asked: scheduleId, availabilityView (one digit per
 * availabilityViewInterval minutes, default 30, 5 to 1440), scheduleItems and workingHours (fixtures/
 * getschedule-response.json). scheduleItems are the default calendar's events in the window (recurring ones expanded),
 * not cancelled, shown as tentative, busy, oof or workingElsewhere (free and unknown ones leave no item), with times in
 * `out` (the Prefer: outlook.timezone zone; UTC without it: "If not specified, those time values are returned in
 * UTC"). Subject and location are given for the caller's own mailbox and for events not marked private. An address
 * Graph cannot resolve answers only scheduleId and error, inside the 200 (the shape in
 * microsoftgraph/microsoft-graph-docs#11225; responseCode as EWS names it).
 */
export function getSchedule(deps: ScheduleDeps, user: User, body: Json, out: OutputZone): Json {
  const schedules = body['schedules'];
  if (!Array.isArray(schedules) || schedules.length === 0 || schedules.some((s) => typeof s !== 'string')) {
    throw E.invalidParameter("The parameter 'schedules' is required and must be a list of SMTP addresses.");
  }
  if (schedules.length > MAX_SCHEDULES) {
    throw new E.GraphApiError(400, 'ErrorMailboxDataArrayTooBig', `There are too many target users in the EmailAddress array. The allowed size = ${MAX_SCHEDULES}; the actual size = ${schedules.length}.`);
  }
  const from = time(body['startTime'], 'startTime');
  const to = time(body['endTime'], 'endTime');
  // The code and text Graph gives a window it cannot use (microsoftgraph/msgraph-sdk-dotnet#2349).
  if (to <= from) throw new E.GraphApiError(400, 'ErrorInvalidTimeInterval', 'The time duration specified for FreeBusyViewOptions.TimeWindow is invalid.');
  const days = to.diff(from, 'days').days;
  if (days > MAX_WINDOW_DAYS) {
    throw new E.GraphApiError(
      400,
      'ErrorTimeIntervalTooBig',
      `The requested time duration specified for FreeBusyViewOptions.TimeWindow is too long. The allowed limit = ${MAX_WINDOW_DAYS} days; the actual limit = ${Math.ceil(days)} days.`,
    );
  }
  const interval = body['availabilityViewInterval'] === undefined ? 30 : body['availabilityViewInterval'];
  if (typeof interval !== 'number' || !Number.isInteger(interval) || interval < 5 || interval > 1440) {
    throw E.invalidParameter('availabilityViewInterval must be between 5 and 1440 minutes.');
  }
  const value = (schedules as string[]).map((id) => {
    const failure = deps.failures.get(id.toLowerCase());
    if (failure) return { scheduleId: id, error: { message: failure.message, responseCode: failure.responseCode } };
    const target = deps.userByUpn(id);
    if (!target) {
      return { scheduleId: id, error: { message: 'The server could not find the specified mailbox.', responseCode: 'ErrorMailRecipientNotFound' } };
    }
    const items = deps.store
      .window(target.oid, deps.store.defaultCalendar(target.oid).id, from, to)
      .filter((i) => i.fields['isCancelled'] !== true && i.fields['showAs'] !== 'free' && i.fields['showAs'] !== 'unknown');
    let view = '';
    for (let s = from; s < to; s = s.plus({ minutes: interval })) {
      const e = s.plus({ minutes: interval });
      let best = 'free';
      for (const i of items) {
        const status = String(i.fields['showAs']);
        if (i.timing.start < e && i.timing.end > s && (VIEW_RANK[status] ?? 0) > (VIEW_RANK[best] ?? 0)) best = status;
      }
      view += VIEW_DIGIT[best] ?? '0';
    }
    const own = target.oid === user.oid;
    return {
      scheduleId: id,
      availabilityView: view,
      scheduleItems: items.map((i) => {
        const it: Json = { isPrivate: i.fields['sensitivity'] === 'private', status: i.fields['showAs'] };
        if (own || i.fields['sensitivity'] !== 'private') {
          it['subject'] = i.fields['subject'];
          it['location'] = (i.fields['location'] as Json | undefined)?.['displayName'] ?? '';
        }
        it['start'] = renderDateTime(i.timing.start, out);
        it['end'] = renderDateTime(i.timing.end, out);
        return it;
      }),
      workingHours: {
        daysOfWeek: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'],
        startTime: '08:00:00.0000000',
        endTime: '17:00:00.0000000',
        timeZone: { name: windowsName(resolveZone(target.timeZone) ?? 'UTC') },
      },
    };
  });
  return { '@odata.context': deps.context, value };
}
