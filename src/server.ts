// `npm start`: opens the app (settings, data folder lock, migrations, keys) before it listens, then
// serves the HTTP function on PORT through the functions framework, and closes cleanly on a signal.
import { http } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Server } from 'node:http';
import { pathToFileURL } from 'node:url';
import { openApp, type App } from './app.js';
import { describeError } from './errors.js';
import { createHandler, FUNCTION_NAME } from './http.js';
import { platformConnectors } from './engine/platforms.js';
import { EngineWorker, queueCatchUp } from './engine/worker.js';

export interface Running {
  app: App;
  server: Server;
  port: number;
  stop(): Promise<void>;
}

export async function startServer(opts: { env?: NodeJS.ProcessEnv; command?: string } = {}): Promise<Running> {
  const app = await openApp({ env: opts.env ?? process.env, command: opts.command ?? 'sessionkeeper serve' });
  // The always-on mode: the engine runs here, in-process (a scale-to-zero deployment sets
  // SESSIONKEEPER_WORKER=off and has a scheduler call POST /tick instead).
  app.connectors = platformConnectors(app.config, app.store);
  const worker = new EngineWorker(
    { store: app.store, connectors: app.connectors, log: app.log, clock: app.clock, publicUrl: app.config.publicUrl },
    app.config.workerIntervalMs,
  );
  if (app.config.workerEnabled) app.kick = () => worker.kick();
  // Notifications sent while no server listened may be lost: one incremental sync each makes them up.
  await queueCatchUp(app.store);
  http(FUNCTION_NAME, createHandler(app));
  // The framework's own Express server for a registered function: its launcher cannot run our
  // start-up (lock, migrations, key check) before it listens, so we start the server ourselves.
  const server = getTestServer(FUNCTION_NAME);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(app.config.port, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : app.config.port;
  app.log.info({ port, backend: app.store.backend }, 'SessionKeeper is serving');
  if (app.config.workerEnabled) worker.start();
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await worker.stop();
      await app.close();
    })());
  return { app, server, port, stop };
}

/** Runs the server until SIGINT or SIGTERM; a start-up failure prints one line and exits 1. */
export async function runServer(): Promise<void> {
  let running: Running;
  try {
    running = await startServer();
  } catch (err) {
    console.error(`sessionkeeper: ${describeError(err)}`);
    process.exit(1);
  }
  console.error(`SessionKeeper is serving on http://localhost:${running.port}/ (database: ${running.app.store.backend}); GET /healthz reports its health`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      running.app.log.info({ signal }, 'stopping');
      running.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(`sessionkeeper: ${describeError(err)}`);
          process.exit(1);
        },
      );
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runServer();
