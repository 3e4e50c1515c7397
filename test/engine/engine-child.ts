// The engine in a process of its own for the crash tests of platform actions: the product's store,
// connectors and tick, with the platforms' test seams (the Graph client's redirect to the emulator,
// MSAL's network client), which the product server cannot take from its settings. POST /tick runs
// one tick; GET /healthz says it is up. Started and SIGKILLed by test/engine/child.ts.
import http from 'node:http';
import { openApp } from '../../src/app.js';
import { platformConnectors, type PlatformOptions } from '../../src/engine/platforms.js';
import { tick } from '../../src/engine/worker.js';
import { graphRedirect, msalNetworkClient, type GraphEmulator } from '../emulators/microsoft/server.js';

const env = process.env as Record<string, string | undefined>;
const app = await openApp({ env: process.env, command: 'engine child' });
const graphUrl = env['SK_TEST_GRAPH_EMULATOR_URL'];
// The seams only need the emulator's address.
const graph = graphUrl ? ({ url: graphUrl } as GraphEmulator) : undefined;
const platform: PlatformOptions = {
  sleep: async () => undefined,
  timeoutMs: 3000,
  ...(graph ? { microsoft: { networkClient: msalNetworkClient(graph) as never, transport: graphRedirect(graph), maxRetries: 0 } } : {}),
};
const connectors = platformConnectors(app.config, app.store, platform);
const token = env['SESSIONKEEPER_TICK_TOKEN'];

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200).end('ok');
    return;
  }
  if (req.method !== 'POST' || req.url !== '/tick' || !token || req.headers.authorization !== `Bearer ${token}`) {
    res.writeHead(404).end();
    return;
  }
  tick({ store: app.store, connectors, log: app.log, clock: app.clock }, `child-${process.pid}`, { upkeep: false }).then(
    (report) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(report)),
    (err: Error) => res.writeHead(500).end(err.message),
  );
});
server.listen(Number(env['PORT']), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  void app.close().then(() => process.exit(0));
});
