// The operator's command line: `sessionkeeper <command>`. Each command is a function of its
// arguments and an output pair, so tests run it in-process; errors print one line, never a stack.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { DateTime } from 'luxon';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { sql } from 'kysely';
import { openApp, type App } from './app.js';
import { loadConfig, parsePracticeSettings, type PracticeSettings } from './config.js';
import { classify } from './domain/classify.js';
import { consentUrl } from '../connectors/google/oauth.js';
import { normaliseGoogleEvent } from '../connectors/google/normalise.js';
import { microsoftConsentUrl } from '../connectors/microsoft/auth.js';
import { normaliseGraphEvent, type GraphEvent } from '../connectors/microsoft/normalise.js';
import type { calendar_v3 } from '@googleapis/calendar';
import { upkeepChannels } from './engine/channels.js';
import { completeGoogleConnect, completeMicrosoftConnect, disconnectConnection, refreshCalendars, setCalendarRole } from './engine/connect.js';
import { googleOAuth, microsoftAuth, platformConnectors, requireGoogle, requireMicrosoft, signInvite, signState } from './engine/platforms.js';
import { recordSyncError, syncCalendar } from './engine/sync.js';
import { createBookingLink, movableSession } from './engine/booking.js';
import { reminderValues, renderTemplate } from './engine/reminders.js';
import { suggestForClient } from './engine/suggestions.js';
import { tick } from './engine/worker.js';
import { describeError, InvalidInput } from './errors.js';
import { createLogger } from './log.js';
import { generateKey, loadKeyring, pruneFolderKeys, setFolderCurrent, writeFolderKey } from './secrets.js';
import { audit } from './store/audit.js';
import { getPracticeSettings, updatePracticeSettings } from './store/practices.js';
import { rotateKeys } from './store/keys.js';
import { appliedMigrations } from './store/migrate.js';
import { safeUrl } from './store/store.js';

export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** Reads all of standard input (tests give it directly). */
  stdin?: () => Promise<string>;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidInput(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInput(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseJson(text, `${what} ${file}`);
}

interface Command {
  summary: string;
  usage: string;
  run(args: string[], io: Io): Promise<number>;
}

const commands: Record<string, Command> = {
  serve: {
    summary: 'run the server (the same as `npm start`)',
    usage: 'sessionkeeper serve',
    async run(args, io) {
      noArgs('serve', args);
      const { startServer } = await import('./server.js');
      const running = await startServer({ env: io.env, command: 'sessionkeeper serve' });
      io.stderr(`SessionKeeper is serving on http://localhost:${running.port}/ (database: ${running.app.store.backend})`);
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
      });
      await running.stop();
      return 0;
    },
  },
  migrate: {
    summary: 'bring the database schema up to date',
    usage: 'sessionkeeper migrate',
    async run(args, io) {
      noArgs('migrate', args);
      return withApp(io, 'sessionkeeper migrate', async (app) => {
        const { applied, total } = app.opened.migrations;
        io.stdout(applied.length > 0 ? `applied ${applied.join(', ')}; ${total} migrations in place` : `up to date: ${total} migrations in place`);
        return 0;
      });
    },
  },
  status: {
    summary: 'show the database, the keys, and how many connections, syncs and actions wait',
    usage: 'sessionkeeper status [--json]',
    async run(args, io) {
      const { values } = parse(args, { json: { type: 'boolean' } });
      return withApp(io, 'sessionkeeper status', async (app) => {
        const db = app.store.db;
        const count = async (table: 'connections' | 'actions', column: 'status') =>
          Object.fromEntries(
            (await sql<{ k: string; n: number }>`SELECT ${sql.ref(column)} AS k, count(*)::int AS n FROM ${sql.table(table)} GROUP BY 1 ORDER BY 1`.execute(db)).rows.map((r) => [r.k, r.n]),
          );
        const report = {
          database: app.store.backend === 'pglite' ? { backend: 'pglite', dataDir: app.config.dataDir } : { backend: 'postgres', url: safeUrl(app.config.databaseUrl!) },
          migrations: await appliedMigrations(db),
          key: app.store.keyring.current.id,
          connections: await count('connections', 'status'),
          actions: await count('actions', 'status'),
          pendingSyncs: Number((await sql<{ n: number }>`SELECT count(*)::int AS n FROM sync_requests`.execute(db)).rows[0]?.n ?? 0),
        };
        if (values.json) {
          io.stdout(JSON.stringify(report, null, 2));
        } else {
          io.stdout(`database     ${report.database.backend} ${'dataDir' in report.database ? report.database.dataDir : report.database.url}`);
          io.stdout(`migrations   ${report.migrations.length} (${report.migrations.at(-1) ?? 'none'})`);
          io.stdout(`key          ${report.key}`);
          io.stdout(`connections  ${formatCounts(report.connections)}`);
          io.stdout(`actions      ${formatCounts(report.actions)}`);
          io.stdout(`syncs queued ${report.pendingSyncs}`);
        }
        return 0;
      });
    },
  },
  classify: {
    summary: 'recognise appointments and their outcomes in rounds of calendar items (JSON on stdin)',
    usage: [
      'sessionkeeper classify --settings practice.json [--from normalised|google] [--now INSTANT] [--since INSTANT] [--until INSTANT] < rounds.json',
      '  --from google|microsoft: the items are raw Google events.list items or Graph calendarView delta items,',
      '  normalised as the connectors do;',
      '  each round may name its "calendarId" (default "primary"); a malformed item is reported by id and skipped.',
      '  rounds.json: [{"at": "2026-03-02T09:00:00Z", "items": [normalised events or tombstones]}, ...] in time order.',
      '  practice.json: the practice settings, plus "calendars" ([{id, name, role, timeZone}]) and "clientLinks".',
      '  --now fixes the clock (default: now), so the output is reproducible; --since/--until bound the practice figures.',
      '  Prints one JSON document: each event with its decision, client, transitions and state; clients; practice.',
    ].join('\n'),
    async run(args, io) {
      const { values } = parse(args, { settings: { type: 'string' }, now: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, from: { type: 'string' } });
      const source = values['from'] ?? 'normalised';
      if (source !== 'normalised' && source !== 'google' && source !== 'microsoft') throw new InvalidInput(`--from must be normalised, google or microsoft (got ${JSON.stringify(source)})`);
      if (typeof values['settings'] !== 'string') throw new InvalidInput('classify needs --settings practice.json');
      const practice = readJson(values['settings'], 'the practice file');
      const rounds = parseJson(await (io.stdin ?? readStdin)(), 'the rounds on standard input');
      const now = typeof values['now'] === 'string' ? values['now'] : new Date().toISOString();
      for (const flag of ['now', 'since', 'until'] as const) {
        const v = flag === 'now' ? now : values[flag];
        if (typeof v === 'string' && (Number.isNaN(Date.parse(v)) || !/T.*(Z|[+-]\d{2}:\d{2})$/.test(v))) {
          throw new InvalidInput(`--${flag} must be an RFC 3339 instant with an offset, e.g. 2026-03-02T09:00:00Z (got ${JSON.stringify(v)})`);
        }
      }
      const report = classify(practice, rounds, {
        now,
        ...(source === 'google'
          ? {
              // Raw events.list items: the round names the calendar ("calendarId", default "primary").
              parseItem: (raw: unknown, round: { calendarId: string | undefined; timeZone: string }) =>
                typeof raw === 'object' && raw !== null
                  ? normaliseGoogleEvent(raw as calendar_v3.Schema$Event, round.calendarId ?? 'primary', round.timeZone)
                  : { ok: false as const, error: { eventId: '(no id)', field: '(item)', reason: 'must be an events.list item (an object)' } },
            }
          : source === 'microsoft'
            ? {
                // Raw calendarView delta items (@removed entries included); a series master is not an item.
                parseItem: (raw: unknown, round: { calendarId: string | undefined; timeZone: string; at: string }) =>
                  typeof raw === 'object' && raw !== null
                    ? normaliseGraphEvent(raw as GraphEvent, round.calendarId ?? 'primary', { calendarZone: round.timeZone, ownerEmail: null, listedAt: round.at })
                    : { ok: false as const, error: { eventId: '(no id)', field: '(item)', reason: 'must be a calendarView delta item (an object)' } },
              }
            : {}),
        ...(typeof values['since'] === 'string' ? { from: values['since'] } : {}),
        ...(typeof values['until'] === 'string' ? { to: values['until'] } : {}),
      });
      for (const r of report.rejected) io.stderr(`skipped item ${r.index} of round ${r.round} (event ${r.eventId}): ${r.field}: ${r.reason}`);
      io.stdout(JSON.stringify(report, null, 2));
      return 0;
    },
  },
  connect: {
    summary: 'connect a Google or Microsoft 365 account: prints the consent URL and finishes on its callback',
    usage: [
      'sessionkeeper connect google|microsoft [--timeout SECONDS]',
      '  Open the printed URL, consent, and Google sends the browser back to GOOGLE_REDIRECT_URI, where',
      '  this command listens (use a redirect URI on this machine, e.g. http://127.0.0.1:8080/oauth/google/callback).',
      '  With the server running, open SESSIONKEEPER_PUBLIC_URL/oauth/google/start instead.',
    ].join('\n'),
    async run(args, io) {
      const { values, positionals } = parseWithPositionals(args, { timeout: { type: 'string' } });
      const platform = positionals[0];
      if (positionals.length !== 1 || (platform !== 'google' && platform !== 'microsoft')) throw new InvalidInput('connect takes the platform: sessionkeeper connect google|microsoft');
      const timeoutMs = values['timeout'] === undefined ? 600_000 : Number(values['timeout']) * 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new InvalidInput('--timeout must be a number of seconds');
      return withApp(io, `sessionkeeper connect ${platform}`, async (app) => {
        const state = signState(app.store.keyring, app.store.now());
        const redirect = new URL(platform === 'google' ? requireGoogle(app.config).redirectUri : requireMicrosoft(app.config).redirectUri);
        const consent = platform === 'google' ? consentUrl(googleOAuth(requireGoogle(app.config)), state) : await microsoftConsentUrl(microsoftAuth(app.config), state);
        // A redirect to this machine is served where it points; a public one reaches this process
        // through the proxy on PORT, as it would reach the server.
        const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(redirect.hostname);
        const listen = loopback ? { host: '127.0.0.1', port: Number(redirect.port || 80) } : { host: '0.0.0.0', port: app.config.port };
        const code = await waitForCallback(redirect, listen, state, timeoutMs, () => {
          io.stdout(`Open this URL in a browser and consent:\n${consent}`);
          io.stderr(`waiting for ${platform === 'google' ? 'Google' : 'Microsoft'} to call back on ${redirect.origin}${redirect.pathname} ...`);
        });
        const connectors = platformConnectors(app.config, app.store);
        const connected = platform === 'google' ? await completeGoogleConnect(app.store, app.config, connectors, code) : await completeMicrosoftConnect(app.store, app.config, connectors, code);
        io.stdout(`connected: therapist ${connected.therapistId}${connected.newTherapist ? ' (new)' : ''}, connection ${connected.connectionId}`);
        for (const c of connected.calendars) io.stdout(`  ${c.id}  ${c.role.padEnd(9)}  ${c.name}`);
        io.stdout('Give calendars their roles with `sessionkeeper calendars --set ID=practice|mixed|busy_only|ignored`, then run `sessionkeeper sync`.');
        return 0;
      });
    },
  },
  invite: {
    summary: 'print an invitation link with which a new therapist connects their calendar (the server must run)',
    usage: 'sessionkeeper invite [--days N]   (default 7; anyone with the link can join until it expires)',
    async run(args, io) {
      const { values } = parse(args, { days: { type: 'string' } });
      const days = values['days'] === undefined ? 7 : Number(values['days']);
      if (!Number.isFinite(days) || days <= 0 || days > 90) throw new InvalidInput('--days must be a number of days from 1 to 90');
      // Only the key is needed (no database), so this works while the server holds the data folder.
      const config = loadConfig(io.env);
      if (!config.publicUrl) throw new InvalidInput('invite needs SESSIONKEEPER_PUBLIC_URL (where therapists open the link)');
      if (config.mode === 'embedded' && !config.key && !fs.existsSync(`${config.dataDir}/sessionkeeper.json`)) {
        throw new InvalidInput(`${config.dataDir} is not set up yet: start the server once (npm start) before inviting`);
      }
      const { keyring } = loadKeyring(config);
      io.stdout(`${config.publicUrl}/oauth/google/start?invite=${signInvite(keyring, new Date(), days)}`);
      return 0;
    },
  },
  disconnect: {
    summary: 'disconnect an account: stop push, revoke the grant at the platform, delete our copy of its tokens',
    usage: 'sessionkeeper disconnect CONNECTION_ID   (ids are listed by `sessionkeeper status --json` and `calendars --json`)',
    async run(args, io) {
      const { positionals } = parseWithPositionals(args, {});
      if (positionals.length !== 1 || !isUuid(positionals[0]!)) throw new InvalidInput('disconnect takes one connection id');
      return withApp(io, 'sessionkeeper disconnect', async (app) => {
        const done = await disconnectConnection(app.store, app.config, platformConnectors(app.config, app.store), positionals[0]!, 'operator');
        io.stdout(`disconnected ${positionals[0]}: grant revoked, ${done.channelsStopped} push channels stopped, tokens deleted`);
        return 0;
      });
    },
  },
  calendars: {
    summary: 'list the connected calendars and their roles; refresh them from the platform, or set a role',
    usage: 'sessionkeeper calendars [--refresh] [--set CALENDAR=practice|mixed|busy_only|ignored ...] [--json]',
    async run(args, io) {
      const { values } = parse(args, { refresh: { type: 'boolean' }, set: { type: 'string', multiple: true }, json: { type: 'boolean' } });
      const sets = (values['set'] as unknown as string[] | undefined) ?? [];
      const roles = ['practice', 'mixed', 'busy_only', 'ignored'] as const;
      const changes = sets.map((s) => {
        const [id, role] = s.split('=');
        if (!id || !role || !(roles as readonly string[]).includes(role)) throw new InvalidInput(`--set ${s}: must be CALENDAR=${roles.join('|')}`);
        return { id, role: role as (typeof roles)[number] };
      });
      return withApp(io, 'sessionkeeper calendars', async (app) => {
        const db = app.store.db;
        if (values['refresh']) {
          const connectors = platformConnectors(app.config, app.store);
          for (const c of await db.selectFrom('connections').select(['id', 'therapist_id', 'provider']).where('status', '=', 'ok').execute()) {
            await refreshCalendars(app.store, connectors, c);
          }
        }
        for (const change of changes) {
          const found = await db
            .selectFrom('calendars')
            .select('id')
            .where((eb) => eb.or([eb('id', '=', isUuid(change.id) ? change.id : '00000000-0000-0000-0000-000000000000'), eb('provider_calendar_id', '=', change.id)]))
            .execute();
          if (found.length === 0) throw new InvalidInput(`--set: no calendar ${change.id}`);
          for (const f of found) await setCalendarRole(app.store, f.id, change.role, 'operator');
        }
        const rows = await db
          .selectFrom('calendars as c')
          .innerJoin('connections as k', 'k.id', 'c.connection_id')
          .select(['c.id', 'c.provider_calendar_id', 'c.name', 'c.role', 'c.time_zone', 'c.last_sync_at', 'c.last_error', 'k.provider', 'k.account_email', 'k.status'])
          .orderBy('k.account_email')
          .orderBy('c.name')
          .execute();
        if (values['json']) io.stdout(JSON.stringify(rows, null, 2));
        else if (rows.length === 0) io.stdout('no calendars: connect an account with `sessionkeeper connect google`');
        else {
          for (const r of rows) {
            const state = r.status !== 'ok' ? ` [connection ${r.status}]` : r.last_error ? ` [last sync failed: ${r.last_error}]` : r.last_sync_at ? ` [synced ${r.last_sync_at.toISOString()}]` : ' [not synced yet]';
            io.stdout(`${r.id}  ${r.role.padEnd(9)}  ${r.provider}:${r.account_email ?? '?'}  ${r.name ?? r.provider_calendar_id}${state}`);
          }
        }
        return 0;
      });
    },
  },
  suggest: {
    summary: 'the best evening and weekend times to offer a client, with the reasons that ranked them',
    usage: [
      'sessionkeeper suggest --client ID [--type TYPE] [--mode in_person|telehealth] [--count N] [--json]',
      '  Free slots of the therapist the client belongs to (their synced calendars and sessions, the practice\'s',
      '  hours, flexible windows, exceptions, buffer, notice, horizon and caps), ranked by the client\'s usual',
      '  weekday and time, a compact evening and sooner over later, one a day. Times in the therapist\'s zone.',
    ].join('\n'),
    async run(args, io) {
      const { values } = parse(args, { client: { type: 'string' }, type: { type: 'string' }, mode: { type: 'string' }, count: { type: 'string' }, json: { type: 'boolean' } });
      const clientId = values['client'];
      if (typeof clientId !== 'string' || !/^[0-9a-f-]{36}$/i.test(clientId)) throw new InvalidInput('suggest needs --client ID (a client id as `sessionkeeper status` or the add-ons show it)');
      const mode = values['mode'];
      if (mode !== undefined && mode !== 'in_person' && mode !== 'telehealth') throw new InvalidInput(`--mode must be in_person or telehealth (got ${JSON.stringify(mode)})`);
      const count = values['count'] === undefined ? 3 : Number(values['count']);
      if (!Number.isInteger(count) || count < 1 || count > 20) throw new InvalidInput(`--count must be a whole number from 1 to 20 (got ${JSON.stringify(values['count'])})`);
      return withApp(io, 'sessionkeeper suggest', async (app) => {
        const owner = await app.store.db.selectFrom('clients').select('therapist_id').where('id', '=', clientId).executeTakeFirst();
        if (!owner) throw new InvalidInput(`no client ${clientId}`);
        const result = await suggestForClient(app.store, {
          therapistId: owner.therapist_id,
          clientId,
          now: app.store.now(),
          k: count,
          ...(typeof values['type'] === 'string' ? { typeId: values['type'] } : {}),
          ...(mode ? { mode } : {}),
        });
        const when = (ms: number) => DateTime.fromMillis(ms, { zone: result.zone });
        if (values['json']) {
          io.stdout(
            JSON.stringify(
              {
                zone: result.zone,
                appointmentType: result.appointmentType,
                suggestions: result.suggestions.map((s) => ({ start: when(s.start).toISO(), end: when(s.end).toISO(), window: s.window, modes: s.modes, score: Math.round(s.score * 10) / 10, reasons: s.reasons })),
              },
              null,
              2,
            ),
          );
        } else {
          io.stdout(`${result.appointmentType.name} (${result.appointmentType.minutes} min), times in ${result.zone}:`);
          if (result.suggestions.length === 0) io.stdout('  no free time within the horizon');
          for (const s of result.suggestions) io.stdout(`  ${when(s.start).toFormat('ccc d LLL HH:mm')}-${when(s.end).toFormat('HH:mm')}  ${s.reasons.join('; ') || '(free)'}`);
        }
        return 0;
      });
    },
  },
  link: {
    summary: 'a booking link for a client: signed, expiring, single use; opens the booking page',
    usage: [
      'sessionkeeper link --client ID [--session APPOINTMENT_ID] [--type TYPE] [--json]',
      '  Prints a link the client can book a session from (the practice\'s bookingLinkDays, default 14 days).',
      '  With --session (one of the client\'s sessions), the link moves that session to the time the client',
      '  chooses instead of booking another, and works at least until the session starts.',
      '  The link carries no name or email: only a random id, the expiry and a signature. Needs',
      '  SESSIONKEEPER_PUBLIC_URL to point at this server (otherwise the link is made for http://localhost:PORT).',
    ].join('\n'),
    async run(args, io) {
      const { values } = parse(args, { client: { type: 'string' }, session: { type: 'string' }, type: { type: 'string' }, json: { type: 'boolean' } });
      const clientId = values['client'];
      if (typeof clientId !== 'string' || !/^[0-9a-f-]{36}$/i.test(clientId)) throw new InvalidInput('link needs --client ID (a client id as `sessionkeeper status` or the add-ons show it)');
      const sessionId = values['session'];
      if (sessionId !== undefined && (typeof sessionId !== 'string' || !isUuid(sessionId))) throw new InvalidInput('--session must be an appointment id (a uuid)');
      return withApp(io, 'sessionkeeper link', async (app) => {
        const owner = await app.store.db.selectFrom('clients').select('therapist_id').where('id', '=', clientId).executeTakeFirst();
        if (!owner) throw new InvalidInput(`no client ${clientId}`);
        // A link about a session lasts until it starts (a session further ahead than bookingLinkDays).
        const session = sessionId ? await app.store.db.selectFrom('appointments').select('start_at').where('id', '=', sessionId).where('therapist_id', '=', owner.therapist_id).where('client_id', '=', clientId).executeTakeFirst() : undefined;
        if (sessionId && !session) throw new InvalidInput(`no session ${sessionId} of client ${clientId}`);
        const made = await createBookingLink(app.store, {
          therapistId: owner.therapist_id,
          clientId,
          now: app.store.now(),
          publicUrl: app.config.publicUrl ?? `http://localhost:${app.config.port}`,
          ...(typeof values['type'] === 'string' ? { typeId: values['type'] } : {}),
          ...(sessionId && session ? { appointmentId: sessionId, validUntil: session.start_at } : {}),
        });
        await audit(app.store.db, { at: app.store.now(), therapistId: owner.therapist_id, actor: 'operator', action: 'create', subjectType: 'booking_link', subjectId: made.id, ...(sessionId ? { detail: { appointmentId: sessionId } } : {}) });
        if (sessionId && !(await movableSession(app.store.db, app.store.keyring, { therapistId: owner.therapist_id, clientId, appointmentId: sessionId }, app.store.now()))) {
          io.stderr('note: that session can no longer be moved (cancelled, over, or an invite the client organizes): the link books a new session');
        }
        if (values['json']) io.stdout(JSON.stringify({ url: made.url, expiresAt: made.expiresAt.toISOString(), ...(sessionId ? { movesSession: sessionId } : {}) }, null, 2));
        else io.stdout(`${made.url}\n  ${sessionId ? `moves session ${sessionId}; ` : ''}valid until ${made.expiresAt.toISOString()}`);
        return 0;
      });
    },
  },
  settings: {
    summary: "print the practice's settings, or check and save new ones from a file",
    usage: [
      'sessionkeeper settings [--practice ID] [--set practice.json]',
      '  Without --set: prints the settings (JSON). With --set: the file is checked as a whole (every wrong field',
      '  named, placeholders of the reminder email included) and saved only when all of it is right. --practice',
      '  picks one when the database holds several.',
    ].join('\n'),
    async run(args, io) {
      const { values } = parse(args, { practice: { type: 'string' }, set: { type: 'string' } });
      return withApp(io, 'sessionkeeper settings', async (app) => {
        const practiceId = await pickPractice(app, values['practice']);
        if (typeof values['set'] === 'string') {
          const saved = await updatePracticeSettings(app.store.db, { practiceId, settings: readJson(values['set'], 'the settings file'), actor: 'operator', therapistId: null, now: app.store.now() });
          io.stdout(JSON.stringify(saved, null, 2));
          io.stderr('settings saved');
        } else {
          io.stdout(JSON.stringify(await getPracticeSettings(app.store.db, practiceId), null, 2));
        }
        return 0;
      });
    },
  },
  'reminder-preview': {
    summary: "the reminder email a client would get, rendered from the practice's template with example values",
    usage: [
      'sessionkeeper reminder-preview [--settings practice.json] [--practice ID]',
      '  Renders the subject and text of the reminder email (reminderEmail in the settings) for an example',
      '  session, so a practice can read what its clients will get. --settings renders a file before it is',
      '  saved (no database needed); otherwise the stored settings.',
    ].join('\n'),
    async run(args, io) {
      const { values } = parse(args, { settings: { type: 'string' }, practice: { type: 'string' } });
      const render = (settings: PracticeSettings, practiceName: string, therapistName: string) => {
        const zone = settings.timeZone;
        const start = DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 18, minute: 0, second: 0, millisecond: 0 });
        const values = reminderValues({
          clientName: 'Sam Example',
          therapistName,
          practiceName,
          typeName: settings.appointmentTypes[1]?.name ?? settings.appointmentTypes[0]!.name,
          startMs: start.toMillis(),
          zone,
          location: settings.locations[0]?.address ?? null,
          meetingUrl: null,
          link: 'https://sessionkeeper.example/book/EXAMPLE-LINK',
        });
        io.stdout(`Subject: ${renderTemplate(settings.reminderEmail.subject, values)}\n\n${renderTemplate(settings.reminderEmail.text, values)}`);
        return 0;
      };
      if (typeof values['settings'] === 'string') return render(parsePracticeSettings(readJson(values['settings'], 'the settings file')), 'Your practice', 'Your therapist');
      return withApp(io, 'sessionkeeper reminder-preview', async (app) => {
        const practiceId = await pickPractice(app, values['practice']);
        const practice = await app.store.db.selectFrom('practices').select('name').where('id', '=', practiceId).executeTakeFirstOrThrow();
        return render(await getPracticeSettings(app.store.db, practiceId), practice.name, 'Your therapist');
      });
    },
  },
  tick: {
    summary: 'run all due work once: syncs, facts, presumed attendance, due actions (for a scheduler)',
    usage: [
      'sessionkeeper tick [--json]',
      '  What the in-process worker of `npm start` does on its interval, once: a deployment that scales to zero',
      '  runs it (or POST /tick) every minute. Prints what was done.',
    ].join('\n'),
    async run(args, io) {
      const { values } = parse(args, { json: { type: 'boolean' } });
      return withApp(io, 'sessionkeeper tick', async (app) => {
        const report = await tick(
          { store: app.store, connectors: platformConnectors(app.config, app.store), log: app.log, clock: app.clock, publicUrl: app.config.publicUrl },
          `cli-${randomUUID().slice(0, 8)}`,
        );
        if (values['json']) io.stdout(JSON.stringify(report));
        else {
          const a = report.actions;
          io.stdout(`synced ${report.synced} calendars, ${report.presumed} attendances presumed, ${report.reconcileQueued} reconciliations queued`);
          io.stdout(`actions: ${a.done} done, ${a.retried} to retry, ${a.failed} failed, ${a.unknown} unknown, ${a.parked} parked, ${a.cancelled} no longer needed${a.deferred ? `, ${a.deferred} put off after crashes` : ''}`);
          if (report.tasks.lists) io.stdout(`follow-up lists: ${report.tasks.lists} checked, ${report.tasks.closedByTherapist} tasks closed by the therapist${report.tasks.failed ? `, ${report.tasks.failed} failed` : ''}`);
          if (report.channels) io.stdout(`push: ${report.channels.created} channels created, ${report.channels.stopped} replaced${report.channels.failed ? `, ${report.channels.failed} failed` : ''}`);
          io.stdout(`in ${report.ms} ms`);
        }
        return 0;
      });
    },
  },
  actions: {
    summary: 'the outbox for the operator: actions stuck, failed, parked or of unknown outcome; retry or settle one',
    usage: [
      'sessionkeeper actions [--all] [--status STATUS] [--json]',
      'sessionkeeper actions retry ID          put a failed, parked or unknown action back in line',
      'sessionkeeper actions settle ID --as done|failed   record what you found out about an unknown one',
      '  By default lists what needs a look: failed, unknown, parked, retrying (attempts > 1), stuck (running',
      '  past its lease) and put off after the process died inside it. --all lists every action; --status one status.',
    ].join('\n'),
    async run(args, io) {
      const { values, positionals } = parseWithPositionals(args, { all: { type: 'boolean' }, status: { type: 'string' }, json: { type: 'boolean' }, as: { type: 'string' } });
      const [verb, id] = positionals;
      if (verb !== undefined && verb !== 'retry' && verb !== 'settle') throw new InvalidInput(`unknown actions subcommand "${verb}": use retry or settle`);
      if (verb && (!id || !isUuid(id))) throw new InvalidInput(`actions ${verb} needs an action id (a UUID from \`sessionkeeper actions\`)`);
      const statuses = ['pending', 'running', 'done', 'failed', 'unknown', 'parked', 'cancelled'];
      if (typeof values['status'] === 'string' && !statuses.includes(values['status'])) throw new InvalidInput(`--status must be one of ${statuses.join(', ')} (got ${JSON.stringify(values['status'])})`);
      return withApp(io, 'sessionkeeper actions', async (app) => {
        const db = app.store.db;
        const now = app.store.now();
        if (verb === 'retry' || verb === 'settle') {
          const row = await db.selectFrom('actions').select(['status', 'therapist_id']).where('id', '=', id!).executeTakeFirst();
          if (!row) throw new InvalidInput(`no action ${id}`);
          if (verb === 'retry') {
            if (!['failed', 'parked', 'unknown'].includes(row.status)) throw new InvalidInput(`action ${id} is ${row.status}: only a failed, parked or unknown action can be retried`);
            await db.updateTable('actions').set({ status: 'pending', next_attempt_at: now, attempts: 0, claimed_by: null, lease_expires_at: null, started_at: null, finished_at: null, updated_at: now }).where('id', '=', id!).execute();
          } else {
            const as = values['as'];
            if (as !== 'done' && as !== 'failed') throw new InvalidInput('actions settle needs --as done or --as failed');
            if (row.status !== 'unknown') throw new InvalidInput(`action ${id} is ${row.status}: only an action of unknown outcome is settled by hand`);
            await db.updateTable('actions').set({ status: as, last_error: `settled by the operator as ${as}`, finished_at: now, updated_at: now }).where('id', '=', id!).execute();
          }
          await audit(db, { at: now, therapistId: row.therapist_id, actor: 'operator', action: 'update', subjectType: 'action', subjectId: id!, detail: { from: row.status, verb } });
          io.stdout(`action ${id}: ${verb === 'retry' ? 'back in line' : `settled as ${String(values['as'])}`}`);
          return 0;
        }
        let query = db
          .selectFrom('actions')
          .select(['id', 'kind', 'status', 'attempts', 'next_attempt_at', 'lease_expires_at', 'last_error', 'fact_key', 'therapist_id', 'updated_at'])
          .orderBy('updated_at', 'desc')
          .limit(500);
        if (typeof values['status'] === 'string') query = query.where('status', '=', values['status'] as 'pending');
        else if (!values['all']) {
          query = query.where((eb) =>
            eb.or([
              eb('status', 'in', ['failed', 'unknown', 'parked']),
              eb.and([eb('status', '=', 'pending'), eb('attempts', '>', 1)]),
              eb.and([eb('status', '=', 'running'), eb('lease_expires_at', '<', now)]),
            ]),
          );
        }
        const rows = await query.execute();
        const shown = rows.map((r) => ({
          id: r.id,
          kind: r.kind,
          status: r.status === 'running' && r.lease_expires_at && r.lease_expires_at < now ? 'stuck' : r.status,
          attempts: r.attempts,
          nextAttemptAt: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
          lastError: r.last_error,
          fact: r.fact_key,
          therapist: r.therapist_id,
          updatedAt: r.updated_at.toISOString(),
        }));
        if (values['json']) {
          io.stdout(JSON.stringify(shown, null, 2));
          return 0;
        }
        if (shown.length === 0) {
          io.stdout(values['all'] || values['status'] ? 'no actions' : 'nothing needs a look: no failed, unknown, parked, retrying or stuck actions');
          return 0;
        }
        for (const r of shown) {
          const when = r.nextAttemptAt ? `next try ${r.nextAttemptAt}` : `since ${r.updatedAt}`;
          io.stdout(`${r.id}  ${r.kind.padEnd(14)} ${r.status.padEnd(9)} attempts ${r.attempts}  ${when}${r.lastError ? `  ${r.lastError}` : ''}`);
        }
        return 0;
      });
    },
  },
  sync: {
    summary: 'sync the watched calendars now (incremental, or --full); keeps push channels alive',
    usage: 'sessionkeeper sync [--full] [--calendar ID]',
    async run(args, io) {
      const { values } = parse(args, { full: { type: 'boolean' }, calendar: { type: 'string' } });
      return withApp(io, 'sessionkeeper sync', async (app) => {
        const connectors = platformConnectors(app.config, app.store);
        let query = app.store.db
          .selectFrom('calendars as c')
          .innerJoin('connections as k', 'k.id', 'c.connection_id')
          .select(['c.id', 'c.name', 'k.id as connection_id', 'k.therapist_id', 'k.provider'])
          .where('c.role', '<>', 'ignored')
          .where('k.status', '=', 'ok');
        if (typeof values['calendar'] === 'string') {
          const id = values['calendar'];
          query = query.where((eb) => eb.or([eb('c.id', '=', isUuid(id) ? id : '00000000-0000-0000-0000-000000000000'), eb('c.provider_calendar_id', '=', id)]));
        }
        const calendars = await query.execute();
        if (calendars.length === 0) {
          io.stdout('nothing to sync: no watched calendar of a working connection (see `sessionkeeper calendars`)');
          return 0;
        }
        let failed = 0;
        for (const cal of calendars) {
          try {
            const connector = await connectors.calendarConnector({ id: cal.connection_id, therapist_id: cal.therapist_id, provider: cal.provider });
            const out = await syncCalendar(app.store, connector, cal.id, { full: values['full'] === true, log: app.log });
            io.stdout(`${cal.name ?? cal.id}: ${out.mode}${out.cursorExpired ? ' (sync token expired)' : ''}, ${out.items.length} changes in ${out.pages} pages${out.deletedMeanwhile ? `, ${out.deletedMeanwhile} deleted meanwhile` : ''}${out.rejected.length ? `, ${out.rejected.length} malformed skipped` : ''}${out.facts ? `; ${out.facts.transitions.length} transitions, ${out.facts.actions} actions queued` : ''}`);
          } catch (err) {
            failed++;
            await recordSyncError(app.store, cal.id, err);
            io.stderr(`${cal.name ?? cal.id}: ${describeError(err)}`);
          }
        }
        if (app.config.publicUrl) {
          const push = await upkeepChannels(app.store, connectors, { publicUrl: app.config.publicUrl, log: app.log });
          io.stdout(`push: ${push.created} channels created, ${push.stopped} replaced${push.failed ? `, ${push.failed} failed` : ''}`);
        }
        return failed > 0 ? 1 : 0;
      });
    },
  },
  'rotate-key': {
    summary: 're-encrypt every stored secret with a new key',
    usage: [
      'sessionkeeper rotate-key',
      '  Embedded, with the key kept in the data folder: makes a new key, re-encrypts, retires the old one.',
      '  With SESSIONKEEPER_KEY: set it to the new key and SESSIONKEEPER_PREVIOUS_KEYS to the old one first;',
      '  afterwards the old key can be removed from SESSIONKEEPER_PREVIOUS_KEYS.',
    ].join('\n'),
    async run(args, io) {
      noArgs('rotate-key', args);
      return withApp(io, 'sessionkeeper rotate-key', async (app) => {
        const keysDir = app.opened.keys.keysDir;
        let keyring = app.store.keyring;
        let promote: (() => string[]) | undefined;
        if (keysDir) {
          const next = generateKey();
          writeFolderKey(keysDir, next);
          keyring = keyring.withCurrent(next);
          promote = () => {
            setFolderCurrent(keysDir, next.id);
            return pruneFolderKeys(keysDir, [next.id]);
          };
        }
        const report = await rotateKeys(app.store.db, keyring, app.store.now());
        const removedFiles = promote?.() ?? [];
        await audit(app.store.db, {
          at: app.store.now(),
          therapistId: null,
          actor: 'operator',
          action: 'rotate-key',
          subjectType: 'keys',
          subjectId: report.keyId,
          detail: { resealed: report.resealed, retired: report.retired },
        });
        const total = Object.values(report.resealed).reduce((a, b) => a + b, 0);
        io.stdout(`re-encrypted ${total} stored values with key ${report.keyId}` + (total > 0 ? ` (${formatCounts(report.resealed)})` : ''));
        if (report.retired.length > 0) io.stdout(`no stored value uses key ${report.retired.join(', ')} any more`);
        if (removedFiles.length > 0) io.stdout(`removed the retired key files of ${removedFiles.join(', ')} from ${keysDir}`);
        else if (!keysDir && report.retired.length > 0) io.stdout('you can now remove the old key from SESSIONKEEPER_PREVIOUS_KEYS');
        return 0;
      });
    },
  },
};

function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ${n}`).join(', ');
}

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Record<string, string | boolean | undefined> } {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }) as { values: Record<string, string | boolean | undefined> };
  } catch (err) {
    throw new InvalidInput((err as Error).message);
  }
}

function parseWithPositionals(args: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true }) as { values: Record<string, string | boolean | undefined>; positionals: string[] };
  } catch (err) {
    throw new InvalidInput((err as Error).message);
  }
}

const isUuid = (s: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);

/**
 * Listens where Google sends the browser back, until a callback with our state arrives (or the
 * time runs out). Other requests get a plain answer and do not end the wait.
 */
function waitForCallback(redirect: URL, listen: { host: string; port: number }, state: string, timeoutMs: number, ready: () => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', redirect.origin);
      if (url.pathname !== redirect.pathname) {
        res.writeHead(404).end();
        return;
      }
      const code = url.searchParams.get('code');
      if (url.searchParams.get('state') !== state || !code) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(url.searchParams.get('error') ? 'Google did not give access.' : 'This is not the consent we started.');
        if (url.searchParams.get('error')) finish(new InvalidInput(`Google did not give access (${url.searchParams.get('error')})`));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('SessionKeeper: connected. You can close this page.');
      finish(undefined, code);
    });
    const timer = setTimeout(() => finish(new InvalidInput(`no callback from Google within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    function finish(err?: Error, code?: string) {
      clearTimeout(timer);
      server.close();
      if (err) reject(err);
      else resolve(code!);
    }
    server.once('error', (err) => finish(new InvalidInput(`cannot listen on ${redirect.host} for the callback: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
    server.listen(listen.port, listen.host, ready);
  });
}

function noArgs(command: string, args: string[]): void {
  if (args.length > 0) throw new InvalidInput(`${command} takes no arguments (got ${args.join(' ')})`);
}

/** The practice a command is about: the one given, or the only one in the database. */
async function pickPractice(app: App, given: string | boolean | undefined): Promise<string> {
  const practices = await app.store.db.selectFrom('practices').select(['id', 'name']).orderBy('created_at').execute();
  if (typeof given === 'string') {
    if (!practices.some((p) => p.id === given)) throw new InvalidInput(`no practice ${given}`);
    return given;
  }
  if (practices.length === 0) throw new InvalidInput('no practice yet: connect a calendar first (`sessionkeeper connect google`)');
  if (practices.length > 1) throw new InvalidInput(`several practices: name one with --practice (${practices.map((p) => `${p.id} ${p.name}`).join('; ')})`);
  return practices[0]!.id;
}

async function withApp(io: Io, command: string, fn: (app: App) => Promise<number>): Promise<number> {
  const config = loadConfig(io.env);
  // Log lines go to stderr, so a command's output on stdout stays clean for pipes.
  const log = createLogger({ level: io.env['SESSIONKEEPER_LOG_LEVEL'] ? config.logLevel : 'warn', destination: { write: (line: string) => io.stderr(line.trimEnd()) } });
  const app = await openApp({ env: io.env, log, command });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

export function helpText(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'SessionKeeper: keeps therapy clients from slipping away.',
    '',
    'Usage: sessionkeeper <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `sessionkeeper <command> --help` for a command\'s options. Settings come from the environment (see the README).',
  ].join('\n');
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(helpText());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    io.stderr(`sessionkeeper: unknown command "${name}"\n\n${helpText()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(`${command.summary}\n\nUsage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    io.stderr(`sessionkeeper ${name}: ${describeError(err)}`);
    return err instanceof InvalidInput ? 2 : 1;
  }
}
