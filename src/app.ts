// Wires the process together: settings, logger, clock, store. The server, the CLI and the cloud
// function entry all start from here, so they fail the same way on the same bad input.
import { FileClock, systemClock, type Clock } from './clock.js';
import { loadConfig, type Config } from './config.js';
import type { ConnectorFactory } from './engine/platforms.js';
import { createLogger, type Logger } from './log.js';
import { openStore, type OpenedStore, type Store } from './store/store.js';

export interface App {
  config: Config;
  clock: Clock;
  log: Logger;
  store: Store;
  opened: OpenedStore;
  /** Wakes the in-process worker when work was queued (set by the server when it runs one). */
  kick?: () => void;
  /** The platform connectors the routes use (the server's; tests hand in theirs). */
  connectors?: ConnectorFactory;
  close(): Promise<void>;
}

export interface AppOptions {
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  log?: Logger;
  /** What this process is, for the data folder's lock. */
  command: string;
}

export async function openApp(opts: AppOptions): Promise<App> {
  const config = loadConfig(opts.env ?? process.env);
  const log = opts.log ?? createLogger({ level: config.logLevel });
  const clock = opts.clock ?? (config.clockFile ? new FileClock(config.clockFile) : systemClock);
  const opened = await openStore({ config, clock, log, command: opts.command });
  if (opened.migrations.applied.length > 0) log.info({ migrations: opened.migrations.applied }, 'database migrated');
  return {
    config,
    clock,
    log,
    store: opened.store,
    opened,
    close: () => opened.store.close(),
  };
}
