// Settings: the process environment and a practice's settings, each one zod schema with defaults
// that fit a solo therapist. Invalid values are refused with the field and the rule they break.
import path from 'node:path';
import { DateTime, IANAZone } from 'luxon';
import { z } from 'zod';
import { InvalidInput } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Shared pieces

/** Turns zod's issues into "field: rule" lines; the path is written as in the JSON it came from. */
export function zodIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({
    path: formatPath(issue.path),
    message: issue.message,
  }));
}

function formatPath(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const part of parts) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

/** Parses with a schema or throws InvalidInput naming every offending field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new InvalidInput(`invalid ${what}`, zodIssues(result.error));
  return result.data;
}

export const ianaZone = z.string().refine((zone) => IANAZone.isValidZone(zone), {
  error: (issue) => `must be an IANA time zone such as Europe/London (got ${JSON.stringify(issue.input)})`,
});

const timeOfDay = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: (issue) => `must be a time of day HH:MM from 00:00 to 23:59 (got ${JSON.stringify(issue.input)})` });

export const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof weekdays)[number];
const weekday = z.enum(weekdays, { error: `must be one of ${weekdays.join(', ')}` });

/** Minutes since midnight of an HH:MM string that the schema has already checked. */
export function minutesOfDay(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
}

// ---------------------------------------------------------------------------------------------
// The process environment

export const envSchema = z.object({
  PORT: z.coerce
    .number({ error: 'must be a port number' })
    .int('must be a whole number')
    .min(0, 'must be between 0 and 65535')
    .max(65535, 'must be between 0 and 65535')
    .default(8080),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
    .optional(),
  DATABASE_POOL_MAX: z.coerce.number().int('must be a whole number').min(2, 'must be at least 2 (one connection holds calendar locks)').max(200).default(10),
  SESSIONKEEPER_DATA_DIR: z.string().min(1).default('.sessionkeeper'),
  SESSIONKEEPER_KEY: z.string().min(1).optional(),
  SESSIONKEEPER_PREVIOUS_KEYS: z.string().optional(),
  SESSIONKEEPER_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SESSIONKEEPER_PUBLIC_URL: z.url({ error: 'must be the https URL where this server is reached, e.g. https://sessionkeeper.example.org' }).optional(),
  GOOGLE_CLIENT_ID: z.string().min(1).optional(),
  GOOGLE_CLIENT_SECRET: z.string().min(1).optional(),
  GOOGLE_REDIRECT_URI: z.url().optional(),
  /** Another Calendar API root than Google's (a local emulator). */
  GOOGLE_API_ROOT_URL: z.url().optional(),
  GOOGLE_OAUTH_TOKEN_URL: z.url().optional(),
  GOOGLE_OAUTH_AUTH_URL: z.url().optional(),
  GOOGLE_OAUTH_REVOKE_URL: z.url().optional(),
  MICROSOFT_CLIENT_ID: z.string().min(1).optional(),
  MICROSOFT_CLIENT_SECRET: z.string().min(1).optional(),
  /** "organizations" (work and school accounts), "common", or one tenant id. */
  MICROSOFT_TENANT: z.string().regex(/^[A-Za-z0-9.-]+$/, 'must be organizations, common, or a tenant id or domain').default('organizations'),
  MICROSOFT_REDIRECT_URI: z.url().optional(),
  /** Seconds between runs of the in-process engine worker of `npm start`. */
  SESSIONKEEPER_WORKER_INTERVAL: z.coerce.number().min(0.05).max(3600).default(5),
  /** "off" for a scale-to-zero deployment: no in-process worker; a scheduler calls POST /tick. */
  SESSIONKEEPER_WORKER: z.enum(['on', 'off']).default('on'),
  /** The bearer token a scheduler presents to POST /tick; without it the route is closed. */
  SESSIONKEEPER_TICK_TOKEN: z.string().min(16, 'must be at least 16 characters (a random secret)').optional(),
  /**
   * Tests only: a file holding the current instant (RFC 3339), read as the process clock, so a test
   * can drive a child process through a simulated week. Never set in production.
   */
  SESSIONKEEPER_CLOCK_FILE: z.string().min(1).optional(),
});

export interface Config {
  port: number;
  /** embedded: PGlite in dataDir; server: a Postgres server at databaseUrl. */
  mode: 'embedded' | 'server';
  databaseUrl: string | undefined;
  poolMax: number;
  /** Absolute path of the data folder (embedded database, generated key, lock). */
  dataDir: string;
  /** base64 of the current 32-byte key, when given in the environment. */
  key: string | undefined;
  /** base64 keys that may still decrypt stored values during a rotation. */
  previousKeys: string[];
  logLevel: z.output<typeof envSchema>['SESSIONKEEPER_LOG_LEVEL'];
  /** Where platforms reach this server (push notifications, OAuth callbacks). */
  publicUrl: string | undefined;
  google: GoogleConfig | undefined;
  microsoft: MicrosoftConfig | undefined;
  workerIntervalMs: number;
  workerEnabled: boolean;
  tickToken: string | undefined;
  clockFile: string | undefined;
}

export interface MicrosoftConfig {
  clientId: string;
  clientSecret: string;
  tenant: string;
  redirectUri: string;
}

export interface GoogleConfig {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  apiRootUrl: string | undefined;
  endpoints: { oauth2TokenUrl?: string; oauth2AuthBaseUrl?: string; oauth2RevokeUrl?: string };
}

/** Reads the process environment (or a given one); throws InvalidInput naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  // An empty variable means "not set": shells and .env files often leave them so.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = parseOrThrow(envSchema, present, 'environment');
  return {
    port: parsed.PORT,
    mode: parsed.DATABASE_URL ? 'server' : 'embedded',
    databaseUrl: parsed.DATABASE_URL,
    poolMax: parsed.DATABASE_POOL_MAX,
    dataDir: path.resolve(cwd, parsed.SESSIONKEEPER_DATA_DIR),
    key: parsed.SESSIONKEEPER_KEY,
    previousKeys: (parsed.SESSIONKEEPER_PREVIOUS_KEYS ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== ''),
    logLevel: parsed.SESSIONKEEPER_LOG_LEVEL,
    publicUrl: parsed.SESSIONKEEPER_PUBLIC_URL?.replace(/\/+$/, ''),
    google: googleConfig(parsed),
    microsoft: microsoftConfig(parsed),
    workerIntervalMs: parsed.SESSIONKEEPER_WORKER_INTERVAL * 1000,
    workerEnabled: parsed.SESSIONKEEPER_WORKER === 'on',
    tickToken: parsed.SESSIONKEEPER_TICK_TOKEN,
    clockFile: parsed.SESSIONKEEPER_CLOCK_FILE ? path.resolve(cwd, parsed.SESSIONKEEPER_CLOCK_FILE) : undefined,
  };
}

function microsoftConfig(p: z.output<typeof envSchema>): MicrosoftConfig | undefined {
  if (!p.MICROSOFT_CLIENT_ID && !p.MICROSOFT_CLIENT_SECRET) return undefined;
  const issues: { path: string; message: string }[] = [];
  if (!p.MICROSOFT_CLIENT_ID) issues.push({ path: 'MICROSOFT_CLIENT_ID', message: 'must be set with MICROSOFT_CLIENT_SECRET' });
  if (!p.MICROSOFT_CLIENT_SECRET) issues.push({ path: 'MICROSOFT_CLIENT_SECRET', message: 'must be set with MICROSOFT_CLIENT_ID' });
  const base = p.SESSIONKEEPER_PUBLIC_URL?.replace(/\/+$/, '');
  const redirectUri = p.MICROSOFT_REDIRECT_URI ?? (base ? `${base}/oauth/microsoft/callback` : undefined);
  if (!redirectUri) issues.push({ path: 'MICROSOFT_REDIRECT_URI', message: 'must be set, or SESSIONKEEPER_PUBLIC_URL from which it is made' });
  if (issues.length > 0) throw new InvalidInput('invalid environment', issues);
  return { clientId: p.MICROSOFT_CLIENT_ID!, clientSecret: p.MICROSOFT_CLIENT_SECRET!, tenant: p.MICROSOFT_TENANT, redirectUri: redirectUri! };
}

function googleConfig(p: z.output<typeof envSchema>): GoogleConfig | undefined {
  if (!p.GOOGLE_CLIENT_ID && !p.GOOGLE_CLIENT_SECRET) return undefined;
  const issues: { path: string; message: string }[] = [];
  if (!p.GOOGLE_CLIENT_ID) issues.push({ path: 'GOOGLE_CLIENT_ID', message: 'must be set with GOOGLE_CLIENT_SECRET' });
  if (!p.GOOGLE_CLIENT_SECRET) issues.push({ path: 'GOOGLE_CLIENT_SECRET', message: 'must be set with GOOGLE_CLIENT_ID' });
  const base = p.SESSIONKEEPER_PUBLIC_URL?.replace(/\/+$/, '');
  const redirectUri = p.GOOGLE_REDIRECT_URI ?? (base ? `${base}/oauth/google/callback` : undefined);
  if (!redirectUri) issues.push({ path: 'GOOGLE_REDIRECT_URI', message: 'must be set, or SESSIONKEEPER_PUBLIC_URL from which it is made' });
  if (issues.length > 0) throw new InvalidInput('invalid environment', issues);
  return {
    clientId: p.GOOGLE_CLIENT_ID!,
    clientSecret: p.GOOGLE_CLIENT_SECRET!,
    redirectUri: redirectUri!,
    apiRootUrl: p.GOOGLE_API_ROOT_URL,
    endpoints: {
      ...(p.GOOGLE_OAUTH_TOKEN_URL ? { oauth2TokenUrl: p.GOOGLE_OAUTH_TOKEN_URL } : {}),
      ...(p.GOOGLE_OAUTH_AUTH_URL ? { oauth2AuthBaseUrl: p.GOOGLE_OAUTH_AUTH_URL } : {}),
      ...(p.GOOGLE_OAUTH_REVOKE_URL ? { oauth2RevokeUrl: p.GOOGLE_OAUTH_REVOKE_URL } : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A practice's settings

const appointmentType = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9_-]{0,39}$/, 'must be a short lower-case id such as "intake"'),
  name: z.string().trim().min(1, 'must not be empty').max(80, 'must be at most 80 characters'),
  minutes: z.number().int('must be a whole number of minutes').min(10, 'must be at least 10 minutes').max(480, 'must be at most 480 minutes'),
  modes: z
    .array(z.enum(['in_person', 'telehealth'], { error: 'must be "in_person" or "telehealth"' }))
    .min(1, 'must allow at least one of in_person, telehealth')
    .default(['in_person', 'telehealth']),
});

const modeList = z.array(z.enum(['in_person', 'telehealth'], { error: 'must be "in_person" or "telehealth"' })).min(1, 'must allow at least one of in_person, telehealth');

const window = z
  .strictObject({
    days: z.array(weekday).min(1, 'must name at least one day'),
    start: timeOfDay,
    end: timeOfDay,
    /** Only these modes in this window (an in-person morning, a telehealth-only late evening). Default: any. */
    modes: modeList.optional(),
    /** Only these appointment types (ids) in this window. Default: any. */
    types: z.array(z.string().min(1)).min(1, 'must name at least one type, or be left out').optional(),
    /** In-person sessions in this window are at this location (an id of `locations`). Default: the first location. */
    location: z.string().min(1).optional(),
  })
  .refine((w) => minutesOfDay(w.start) < minutesOfDay(w.end), {
    error: 'must start before it ends (windows do not run past midnight)',
    path: ['end'],
  });

const domain = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$/, { error: (i) => `must be an email domain such as brightpath.example (got ${JSON.stringify(i.input)})` });

const phrase = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');

const marker = z.strictObject({
  /** The title starts with one of these (case does not matter), e.g. "NS " for a no-show. */
  prefixes: z.array(phrase).default([]),
  /** Outlook categories (or Google colour ids) that carry the mark. */
  categories: z.array(phrase).default([]),
});

const clientTemplate = z
  .string()
  .trim()
  .refine((t) => t.split('{client}').length === 2, { error: 'must contain {client} exactly once' })
  .refine((t) => t.replace('{client}', '').trim().length > 0, { error: 'must have some text besides {client}' });

/** What a reminder's subject and text may name: each is filled in for the session it is about. */
export const REMINDER_PLACEHOLDERS = ['client', 'therapist', 'practice', 'date', 'time', 'zone', 'place', 'link', 'type'] as const;

const DEFAULT_REMINDER = {
  subject: 'Reminder: your appointment with {therapist} on {date}',
  text: [
    'Hello {client},',
    '',
    'This is a reminder of your appointment with {therapist} on {date} at {time} ({zone}).',
    '{place}',
    '',
    "Can't make it? Choose another time: {link}",
    '',
    '{practice}',
  ].join('\n'),
};

/** A template whose placeholders are all known ones; the error names the unknown and lists the rest. */
function reminderTemplate(max: number) {
  return z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .superRefine((t, ctx) => {
      for (const m of t.matchAll(/\{([^{}]*)\}/g)) {
        if (!(REMINDER_PLACEHOLDERS as readonly string[]).includes(m[1]!)) ctx.addIssue({ code: 'custom', message: `has an unknown placeholder {${m[1]}}: use ${REMINDER_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}` });
      }
    });
}

/** The settings' fields, without the checks across them (the practice file of `classify` extends it). */
export const practiceSettingsFields = z.strictObject({
  timeZone: ianaZone.default('UTC'),
  /** The practice's own email domains: attendees on them are colleagues, never clients. */
  domains: z.array(domain).default([]),
  appointmentTypes: z
    .array(appointmentType)
    .min(1, 'must list at least one appointment type')
    .default([
      { id: 'intake', name: 'Intake', minutes: 60, modes: ['in_person', 'telehealth'] },
      { id: 'individual', name: 'Individual session', minutes: 50, modes: ['in_person', 'telehealth'] },
      { id: 'couples', name: 'Couples session', minutes: 80, modes: ['in_person', 'telehealth'] },
    ])
    .superRefine((types, ctx) => {
      const seen = new Set<string>();
      types.forEach((t, i) => {
        if (seen.has(t.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicates the id "${t.id}" of an earlier type` });
        seen.add(t.id);
      });
    }),
  bufferMinutes: z.number().int('must be a whole number of minutes').min(0, 'must not be negative').max(120, 'must be at most 120 minutes').default(10),
  lateCancelHours: z.number().min(0, 'must not be negative').max(168, 'must be at most 168 hours (a week)').default(24),
  reminderOffsetsHours: z
    .array(z.number().positive('must be more than 0 hours').max(336, 'must be at most 336 hours (two weeks)'))
    .max(5, 'must list at most 5 reminders')
    .refine((offsets) => new Set(offsets).size === offsets.length, 'must not list the same offset twice')
    .default([48, 2]),
  quietHours: z
    .strictObject({ start: timeOfDay, end: timeOfDay })
    .refine((q) => q.start !== q.end, { error: 'must not start and end at the same time', path: ['end'] })
    .default({ start: '21:00', end: '08:00' }),
  /** The practice's regular weekly hours (flexible windows come on top). */
  regularHours: z.array(window).default([{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00' }]),
  /** Dated changes: a day closed (a holiday), or an extra window that day. */
  availabilityExceptions: z
    .array(
      z.union([
        z.strictObject({ date: z.iso.date({ error: 'must be a date YYYY-MM-DD' }), closed: z.literal(true) }),
        z
          .strictObject({ date: z.iso.date({ error: 'must be a date YYYY-MM-DD' }), start: timeOfDay, end: timeOfDay, flexible: z.boolean().default(true) })
          .refine((w) => minutesOfDay(w.start) < minutesOfDay(w.end), { error: 'must start before it ends', path: ['end'] }),
      ]),
    )
    .default([]),
  /** No slot is offered sooner than this after now, nor further ahead than horizonDays. */
  minNoticeHours: z.number().min(0, 'must not be negative').max(336, 'must be at most 336 hours (two weeks)').default(12),
  horizonDays: z.number().int('must be a whole number of days').min(1, 'must be at least 1 day').max(90, 'must be at most 90 days').default(21),
  /** At most this many sessions a day, and this many in one evening (from 17:00). */
  sessionCaps: z
    .strictObject({
      perDay: z.number().int().min(1, 'must be at least 1').max(16, 'must be at most 16').default(8),
      perEvening: z.number().int().min(1, 'must be at least 1').max(8, 'must be at most 8').default(3),
    })
    .default({ perDay: 8, perEvening: 3 }),
  flexibleWindows: z.array(window).default([
    { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '17:00', end: '21:00' },
    { days: ['sat'], start: '09:00', end: '14:00' },
  ]),
  dropoutWatch: z
    .strictObject({
      days: z.number().int('must be a whole number of days').min(1, 'must be at least 1 day').max(90, 'must be at most 90 days'),
      afterSessions: z.array(z.number().int().min(1, 'must be a session number from 1').max(10, 'must be a session number up to 10')).min(1, 'must list at least one session number'),
    })
    .default({ days: 7, afterSessions: [1, 2] }),
  /** How an event is recognised as a therapy appointment (after the therapist's own mark and the calendar's role). */
  detection: z
    .strictObject({
      /** Words or phrases in a title that make an event a session (whole words, any case). */
      include: z.array(phrase).default(['session', 'intake', 'therapy', 'psychotherapy', 'couples', 'counselling', 'counseling', 'assessment']),
      /** Words or phrases that make it not a session, whatever else matches. */
      exclude: z.array(phrase).default(['supervision', 'lunch', 'admin', 'team meeting', 'training', 'out of office', 'ooo', 'holiday', 'vacation', 'blocked']),
      /** Categories (Outlook) or colour ids (Google) that the therapist gives sessions. */
      categories: z.array(phrase).default([]),
      /** Attendees outside the practice's domains, with a session-like length. */
      externalAttendees: z
        .strictObject({
          enabled: z.boolean().default(true),
          minMinutes: z.number().int().min(5, 'must be at least 5 minutes').max(600).default(20),
          maxMinutes: z.number().int().min(5).max(600, 'must be at most 600 minutes').default(120),
          /** A couple or a family: up to this many people are one client unit. */
          maxClients: z.number().int().min(1).max(10).default(3),
        })
        .refine((x) => x.minMinutes <= x.maxMinutes, { error: 'minMinutes must not be more than maxMinutes', path: ['maxMinutes'] })
        .default({ enabled: true, minMinutes: 20, maxMinutes: 120, maxClients: 3 }),
    })
    .default({
      include: ['session', 'intake', 'therapy', 'psychotherapy', 'couples', 'counselling', 'counseling', 'assessment'],
      exclude: ['supervision', 'lunch', 'admin', 'team meeting', 'training', 'out of office', 'ooo', 'holiday', 'vacation', 'blocked'],
      categories: [],
      externalAttendees: { enabled: true, minMinutes: 20, maxMinutes: 120, maxClients: 3 },
    }),
  /** How a client is named in titles when they are not invited; {client} is the name or initials. */
  clientTitleTemplates: z
    .array(clientTemplate)
    .default(['{client} - session', '{client} – session', 'session - {client}', 'session with {client}', 'session: {client}', 'intake: {client}', 'intake - {client}', 'couples: {client}', 'couples - {client}', '{client} (session)']),
  /** The therapist's own conventions for what happened, in titles or categories. */
  markers: z
    .strictObject({
      noShow: marker.default({ prefixes: ['NS ', 'No-show:', 'No show:', 'DNA '], categories: ['No-show', 'No show'] }),
      clientCancelled: marker.default({ prefixes: ['CX ', 'LC ', 'Client cancelled:', 'Client canceled:'], categories: ['Client cancelled', 'Client canceled'] }),
      therapistCancelled: marker.default({ prefixes: ['TX '], categories: ['Therapist cancelled', 'Therapist canceled'] }),
      cancelled: marker.default({ prefixes: ['Cancelled:', 'Canceled:'], categories: ['Cancelled', 'Canceled'] }),
      attended: marker.default({ prefixes: [], categories: ['Attended'] }),
    })
    .default({
      noShow: { prefixes: ['NS ', 'No-show:', 'No show:', 'DNA '], categories: ['No-show', 'No show'] },
      clientCancelled: { prefixes: ['CX ', 'LC ', 'Client cancelled:', 'Client canceled:'], categories: ['Client cancelled', 'Client canceled'] },
      therapistCancelled: { prefixes: ['TX '], categories: ['Therapist cancelled', 'Therapist canceled'] },
      cancelled: { prefixes: ['Cancelled:', 'Canceled:'], categories: ['Cancelled', 'Canceled'] },
      attended: { prefixes: [], categories: ['Attended'] },
    }),
  /**
   * Outlook only: a category added to the events recognised as sessions, for practices that want
   * them visibly marked in Outlook (the tag itself is a hidden property). Null: none.
   */
  outlookCategory: z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters').nullable().default(null),
  /** The name of the therapist's follow-up list in Google Tasks or Microsoft To Do (found again, or made). */
  followUpList: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters').default('Client follow-ups'),
  /** Where in-person sessions take place: the first is the default; a window may name another. */
  locations: z
    .array(
      z.strictObject({
        id: z.string().regex(/^[a-z][a-z0-9_-]{0,39}$/, 'must be a short lower-case id such as "downtown"'),
        name: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
        /** What the invite's location field says (the address). */
        address: z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters'),
      }),
    )
    .default([]),
  /**
   * The therapist's own popup reminders on each session, minutes before it (Google: up to 5; Outlook:
   * the first). Null: the calendar's own defaults are left alone.
   */
  sessionPopupMinutes: z
    .array(z.number().int('must be a whole number of minutes').min(0, 'must not be negative').max(40_320, 'must be at most 4 weeks'))
    .min(1, 'must list at least one, or be null')
    .max(5, 'must list at most 5 (Google keeps 5)')
    .nullable()
    .default(null),
  /**
   * The email a client gets before each session (at reminderOffsetsHours), from the therapist's own
   * mailbox. Placeholders in braces (REMINDER_PLACEHOLDERS); neutral by default: no diagnosis, and no
   * "therapy" unless the practice writes it.
   */
  reminderEmail: z
    .strictObject({
      enabled: z.boolean().default(true),
      subject: reminderTemplate(200).default(DEFAULT_REMINDER.subject),
      text: reminderTemplate(5000).default(DEFAULT_REMINDER.text),
    })
    .default({ enabled: true, ...DEFAULT_REMINDER }),
  /**
   * Follow-up tasks for the therapist (in followUpList): opened at once when a client cancels or
   * misses a session, is not rebooked after an early session (dropoutWatch), passes their usual gap
   * (cadence) or sees their series end with nothing booked; closed by themselves on a new booking.
   * Facts older than recentDays (a first sync's history) open nothing.
   */
  followUps: z
    .strictObject({
      enabled: z.boolean().default(true),
      recentDays: z.number().int('must be a whole number of days').min(1, 'must be at least 1 day').max(90, 'must be at most 90 days').default(14),
      /** Evening or weekend times named in a task (0 to 3). */
      suggestions: z.number().int().min(0, 'must not be negative').max(3, 'must be at most 3').default(3),
    })
    .default({ enabled: true, recentDays: 14, suggestions: 3 }),
  /**
   * The invite's own line, "Need to change this time? <link>", at the end of each session's
   * description. Google writes it without an update email. Outlook sends the attendees an update on
   * any organizer's edit, so there it is written only on events we create, unless outlookUpdates
   * accepts that update. Removed when the session is cancelled.
   */
  inviteChangeLine: z
    .strictObject({
      enabled: z.boolean().default(false),
      outlookUpdates: z.boolean().default(false),
    })
    .default({ enabled: false, outlookUpdates: false }),
  /** How many days a booking link stays valid. */
  bookingLinkDays: z.number().int('must be a whole number of days').min(1, 'must be at least 1 day').max(60, 'must be at most 60 days').default(14),
  /** A session that ended without a cancellation or a no-show mark counts as attended (marked "presumed"). */
  presumeAttended: z.boolean().default(true),
  /** A regular client "goes quiet" after this many times their usual interval, and at least minDays. */
  cadence: z
    .strictObject({
      factor: z.number().min(1, 'must be at least 1').max(10).default(2),
      minDays: z.number().int().min(1).max(365).default(21),
    })
    .default({ factor: 2, minDays: 21 }),
});

/** A practice's settings, with the checks across fields. */
export const practiceSettingsSchema = practiceSettingsFields.superRefine((s, ctx) => {
    // A window may only name types and locations the practice has.
    const types = new Set(s.appointmentTypes.map((t) => t.id));
    const places = new Set(s.locations.map((l) => l.id));
    for (const list of ['regularHours', 'flexibleWindows'] as const) {
      s[list].forEach((w, i) => {
        for (const t of w.types ?? []) if (!types.has(t)) ctx.addIssue({ code: 'custom', path: [list, i, 'types'], message: `names the type "${t}", which the practice does not have (it has ${[...types].join(', ')})` });
        if (w.location !== undefined && !places.has(w.location)) ctx.addIssue({ code: 'custom', path: [list, i, 'location'], message: `names the location "${w.location}", which is not in locations` });
        if (w.location !== undefined && w.modes && !w.modes.includes('in_person')) ctx.addIssue({ code: 'custom', path: [list, i, 'location'], message: 'a location is for in-person sessions, but this window offers none' });
      });
    }
});

export type PracticeSettings = z.output<typeof practiceSettingsSchema>;
export type PracticeSettingsInput = z.input<typeof practiceSettingsSchema>;

/** Validates a practice's settings (a partial object gets the defaults); throws InvalidInput. */
export function parsePracticeSettings(input: unknown): PracticeSettings {
  return parseOrThrow(practiceSettingsSchema, input ?? {}, 'practice settings');
}

/** The defaults for a new practice in a given zone (the zone of the server when none is known). */
export function defaultPracticeSettings(timeZone = DateTime.local().zoneName ?? 'UTC'): PracticeSettings {
  return parsePracticeSettings({ timeZone: IANAZone.isValidZone(timeZone) ? timeZone : 'UTC' });
}
