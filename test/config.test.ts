// Settings: the defaults fit a solo therapist, and every bad value is refused with its field and rule.
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { defaultPracticeSettings, loadConfig, parsePracticeSettings } from '../src/config.js';
import { describeError, InvalidInput } from '../src/errors.js';

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInput);
    return [...(err as InvalidInput).issues];
  }
  throw new Error('expected the input to be refused');
}

describe('environment', () => {
  test('an empty environment runs embedded in ./.sessionkeeper on port 8080', () => {
    expect(loadConfig({}, '/srv/app')).toEqual({
      port: 8080,
      mode: 'embedded',
      databaseUrl: undefined,
      poolMax: 10,
      dataDir: path.resolve('/srv/app/.sessionkeeper'),
      key: undefined,
      previousKeys: [],
      logLevel: 'info',
      publicUrl: undefined,
      google: undefined,
      microsoft: undefined,
      workerIntervalMs: 5000,
      workerEnabled: true,
      tickToken: undefined,
      clockFile: undefined,
    });
  });

  test('DATABASE_URL selects the server; previous keys are a comma list; empty variables count as unset', () => {
    const c = loadConfig({ DATABASE_URL: 'postgresql://u@db/sk', SESSIONKEEPER_PREVIOUS_KEYS: ' a , b,', PORT: '', SESSIONKEEPER_DATA_DIR: '/var/lib/sk' }, '/x');
    expect(c).toMatchObject({ mode: 'server', databaseUrl: 'postgresql://u@db/sk', previousKeys: ['a', 'b'], port: 8080, dataDir: '/var/lib/sk' });
  });

  test('Google needs its id and secret together, and a redirect URI (given, or made from the public URL)', () => {
    expect(loadConfig({ GOOGLE_CLIENT_ID: 'id', GOOGLE_CLIENT_SECRET: 's', SESSIONKEEPER_PUBLIC_URL: 'https://sk.example.org/' }).google).toEqual({
      clientId: 'id',
      clientSecret: 's',
      redirectUri: 'https://sk.example.org/oauth/google/callback',
      apiRootUrl: undefined,
      endpoints: {},
    });
    expect(issuesOf(() => loadConfig({ GOOGLE_CLIENT_ID: 'id' }))).toEqual([
      { path: 'GOOGLE_CLIENT_SECRET', message: 'must be set with GOOGLE_CLIENT_ID' },
      { path: 'GOOGLE_REDIRECT_URI', message: 'must be set, or SESSIONKEEPER_PUBLIC_URL from which it is made' },
    ]);
  });

  test('bad variables are named with the rule they break', () => {
    expect(issuesOf(() => loadConfig({ PORT: '99999', DATABASE_URL: 'mysql://x', SESSIONKEEPER_LOG_LEVEL: 'loud' }))).toEqual([
      { path: 'PORT', message: 'must be between 0 and 65535' },
      { path: 'DATABASE_URL', message: 'must start with postgres:// or postgresql://' },
      { path: 'SESSIONKEEPER_LOG_LEVEL', message: expect.stringContaining('expected one of') },
    ]);
  });
});

describe('practice settings', () => {
  test('the defaults: intake 60, individual 50, couples 80; buffer 10; late cancel 24 h; reminders 48 h and 2 h; quiet 21-08; evenings and Saturday morning; dropout watch', () => {
    const s = defaultPracticeSettings('Europe/London');
    expect(s.timeZone).toBe('Europe/London');
    expect(s.appointmentTypes.map((t) => [t.id, t.minutes])).toEqual([['intake', 60], ['individual', 50], ['couples', 80]]);
    expect(s.bufferMinutes).toBe(10);
    expect(s.lateCancelHours).toBe(24);
    expect(s.reminderOffsetsHours).toEqual([48, 2]);
    expect(s.quietHours).toEqual({ start: '21:00', end: '08:00' });
    expect(s.flexibleWindows).toEqual([
      { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '17:00', end: '21:00' },
      { days: ['sat'], start: '09:00', end: '14:00' },
    ]);
    expect(s.dropoutWatch).toEqual({ days: 7, afterSessions: [1, 2] });
  });

  test('a partial file keeps the defaults for what it leaves out', () => {
    const s = parsePracticeSettings({ timeZone: 'America/New_York', bufferMinutes: 15, domains: ['BrightPath.example'] });
    expect(s).toMatchObject({ timeZone: 'America/New_York', bufferMinutes: 15, lateCancelHours: 24, domains: ['brightpath.example'] });
  });

  test('each invalid field is named, with the rule and the value', () => {
    const issues = issuesOf(() =>
      parsePracticeSettings({
        timeZone: 'Mars/Olympus',
        appointmentTypes: [
          { id: 'intake', name: 'Intake', minutes: 60 },
          { id: 'intake', name: 'Short', minutes: 5 },
        ],
        quietHours: { start: '21:00', end: '25:00' },
        flexibleWindows: [{ days: ['sat'], start: '14:00', end: '09:00' }],
        reminderOffsetsHours: [48, 48],
        bufferMinute: 10,
      }),
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        { path: 'timeZone', message: 'must be an IANA time zone such as Europe/London (got "Mars/Olympus")' },
        { path: 'appointmentTypes[1].minutes', message: 'must be at least 10 minutes' },
        { path: 'appointmentTypes[1].id', message: 'duplicates the id "intake" of an earlier type' },
        { path: 'quietHours.end', message: 'must be a time of day HH:MM from 00:00 to 23:59 (got "25:00")' },
        { path: 'flexibleWindows[0].end', message: 'must start before it ends (windows do not run past midnight)' },
        { path: 'reminderOffsetsHours', message: 'must not list the same offset twice' },
        { path: '(top level)', message: expect.stringContaining('bufferMinute') },
      ]),
    );
  });

  test('a window may name only types and locations the practice has, and a location only where in person is offered', () => {
    const issues = issuesOf(() =>
      parsePracticeSettings({
        locations: [{ id: 'north', name: 'North clinic', address: '9 North Rd' }],
        regularHours: [{ days: ['mon'], start: '09:00', end: '17:00', types: ['massage'] }],
        flexibleWindows: [
          { days: ['sat'], start: '09:00', end: '12:00', location: 'south' },
          { days: ['sun'], start: '09:00', end: '12:00', modes: ['telehealth'], location: 'north' },
        ],
      }),
    );
    expect(issues).toEqual([
      { path: 'regularHours[0].types', message: 'names the type "massage", which the practice does not have (it has intake, individual, couples)' },
      { path: 'flexibleWindows[0].location', message: 'names the location "south", which is not in locations' },
      { path: 'flexibleWindows[1].location', message: 'a location is for in-person sessions, but this window offers none' },
    ]);
    const ok = parsePracticeSettings({ locations: [{ id: 'north', name: 'North clinic', address: '9 North Rd' }], flexibleWindows: [{ days: ['sat'], start: '09:00', end: '12:00', modes: ['in_person'], types: ['individual'], location: 'north' }] });
    expect(ok.flexibleWindows[0]).toEqual({ days: ['sat'], start: '09:00', end: '12:00', modes: ['in_person'], types: ['individual'], location: 'north' });
    expect(ok.bookingLinkDays).toBe(14);
  });

  test('the error reads as a list a person can fix', () => {
    try {
      parsePracticeSettings({ lateCancelHours: -1 });
      expect.unreachable();
    } catch (err) {
      expect(describeError(err)).toBe('invalid practice settings\n  lateCancelHours: must not be negative');
    }
  });
});
