// The operator's command line: `sessionkeeper <command>`. Each command is a function of its
// arguments and an output pair, so tests run it in-process; errors print one line, never a stack.
import fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { sql } from 'kysely';
import { openApp, type App } from './app.js';
import { loadConfig } from './config.js';
import { classify } from './domain/classify.js';
import { describeError, InvalidInput } from './errors.js';
import { createLogger } from './log.js';
import { generateKey, pruneFolderKeys, setFolderCurrent, writeFolderKey } from './secrets.js';
import { audit } from './store/audit.js';
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
      'sessionkeeper classify --settings practice.json [--now INSTANT] [--from INSTANT] [--to INSTANT] < rounds.json',
      '  rounds.json: [{"at": "2026-03-02T09:00:00Z", "items": [normalised events or tombstones]}, ...] in time order.',
      '  practice.json: the practice settings, plus "calendars" ([{id, name, role, timeZone}]) and "clientLinks".',
      '  --now fixes the clock (default: now), so the output is reproducible; --from/--to bound the practice figures.',
      '  Prints one JSON document: each event with its decision, client, transitions and state; clients; practice.',
    ].join('\n'),
    async run(args, io) {
      const { values } = parse(args, { settings: { type: 'string' }, now: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } });
      if (typeof values['settings'] !== 'string') throw new InvalidInput('classify needs --settings practice.json');
      const practice = readJson(values['settings'], 'the practice file');
      const rounds = parseJson(await (io.stdin ?? readStdin)(), 'the rounds on standard input');
      const now = typeof values['now'] === 'string' ? values['now'] : new Date().toISOString();
      for (const flag of ['now', 'from', 'to'] as const) {
        const v = flag === 'now' ? now : values[flag];
        if (typeof v === 'string' && (Number.isNaN(Date.parse(v)) || !/T.*(Z|[+-]\d{2}:\d{2})$/.test(v))) {
          throw new InvalidInput(`--${flag} must be an RFC 3339 instant with an offset, e.g. 2026-03-02T09:00:00Z (got ${JSON.stringify(v)})`);
        }
      }
      const report = classify(practice, rounds, {
        now,
        ...(typeof values['from'] === 'string' ? { from: values['from'] } : {}),
        ...(typeof values['to'] === 'string' ? { to: values['to'] } : {}),
      });
      for (const r of report.rejected) io.stderr(`skipped item ${r.index} of round ${r.round} (event ${r.eventId}): ${r.field}: ${r.reason}`);
      io.stdout(JSON.stringify(report, null, 2));
      return 0;
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

function noArgs(command: string, args: string[]): void {
  if (args.length > 0) throw new InvalidInput(`${command} takes no arguments (got ${args.join(' ')})`);
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
