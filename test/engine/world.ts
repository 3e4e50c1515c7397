// A practice's world for the reliability harness: an emulator, one or two engines on a fresh store,
// our HTTP router behind a proxy that can deliver every notification three times, eight at once,
// seeded fault injection on platform calls, and `drain`, which runs ticks until nothing is due.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { http as registerFunction } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { App } from '../../src/app.js';
import type { ManualClock } from '../../src/clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import { completeGoogleConnect, completeMicrosoftConnect } from '../../src/engine/connect.js';
import { platformConnectors, type ConnectorFactory, type PlatformOptions } from '../../src/engine/platforms.js';
import { nextDueAt, tick, type TickReport, type WorkerDeps } from '../../src/engine/worker.js';
import { createHandler } from '../../src/http.js';
import { silentLogger } from '../../src/log.js';
import { generateKey, Keyring } from '../../src/secrets.js';
import type { Backend, Store } from '../../src/store/store.js';
import { GOOGLE_SCOPES } from '../../connectors/google/oauth.js';
import { MICROSOFT_SCOPES } from '../../connectors/microsoft/auth.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/server.js';
import { graphRedirect, msalNetworkClient, startGraphEmulator, type GraphEmulator } from '../emulators/microsoft/server.js';
import { googleEnv, MS_REDIRECT, REDIRECT, TENANT } from '../helpers/platform-env.js';
import { googleDriver, graphDriver, rng, type Driver, type Step } from './practice-life.js';

type Hook = (info: { seq: number; method: string; path: string; phase: 'before' | 'after' }) => 'drop' | void | Promise<'drop' | void>;

/** What the harness needs of either emulator. */
interface Emu {
  settled(): Promise<void>;
  setRequestHook(hook: Hook | null): void;
  faults: { add(f: { match?: { method?: string; path?: RegExp }; fault: unknown; times?: number }): void };
  requests: { method: string; path: string; status: number; dropped?: 'before' | 'after' }[];
  close(): Promise<void>;
}

export interface World {
  provider: 'google' | 'microsoft';
  clock: ManualClock;
  store: Store;
  /** One per engine instance (two share one PostgreSQL database). */
  engines: WorkerDeps[];
  emu: Emu;
  driver: Driver;
  proxy: Proxy;
  /** Our HTTP router (webhooks, booking pages), straight, and the app behind it. */
  router: { url: string; app: App };
  /** Tag writes that took effect at the platform, per event path. */
  tagWrites(): Map<string, number>;
  /**
   * Connects therapist n (dr{n}@practice.example) through the real consent flow, with these scopes
   * (all the product asks for by default); their calendar is a practice calendar. Our ids.
   */
  connect(n: number, scopes?: readonly string[]): Promise<{ therapistId: string; connectionId: string; calendarId: string }>;
  close(): Promise<void>;
}

let served = 0;

/**
 * Stands between the platform and our router: answers the platform at once and keeps each
 * notification to deliver later, `copies` times, in bursts of `burst` concurrent requests.
 * Subscription handshakes (Graph's validationToken) go straight through.
 */
class Proxy {
  readonly server: http.Server;
  url = '';
  #held: { path: string; headers: Record<string, string>; body: Buffer }[] = [];
  copies = 1;
  burst = 1;
  delivered = 0;
  unknown = 0;

  constructor(private readonly target: () => string) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length' && k !== 'connection') headers[k] = v;
        if ((req.url ?? '').includes('validationToken=')) {
          fetch(`${this.target()}${req.url}`, { method: req.method ?? 'POST', headers, body }).then(
            async (r) => res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' }).end(await r.text()),
            () => res.writeHead(502).end(),
          );
          return;
        }
        for (let i = 0; i < this.copies; i++) this.#held.push({ path: req.url ?? '/', headers, body });
        res.writeHead(202).end();
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Delivers what is held, shuffled, `burst` at once; returns how many. */
  async flush(random: () => number): Promise<number> {
    const held = this.#held;
    this.#held = [];
    for (let i = held.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [held[i], held[j]] = [held[j]!, held[i]!];
    }
    for (let i = 0; i < held.length; i += this.burst) {
      await Promise.all(
        held.slice(i, i + this.burst).map(async (n) => {
          const r = await fetch(`${this.target()}${n.path}`, { method: 'POST', headers: n.headers, body: n.body });
          await r.arrayBuffer();
          // 404: a channel we do not know, made by a watch call whose answer was lost (a fault): ours refuses it.
          if (r.status >= 300 && r.status !== 404) throw new Error(`our webhook answered ${r.status} to a notification`);
          if (r.status === 404) this.unknown++;
        }),
      );
    }
    this.delivered += held.length;
    return held.length;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

async function routerFor(config: Config, store: Store, clock: ManualClock, connectors: ConnectorFactory): Promise<{ url: string; app: App; close(): Promise<void> }> {
  const app: App = { config, clock, log: silentLogger, store, connectors, opened: undefined as never, close: async () => undefined };
  const name = `sessionkeeper-world-${++served}`;
  registerFunction(name, createHandler(app));
  const server: http.Server = getTestServer(name);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, app, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * Where a world's databases come from: the tests' templates (test/helpers/db.ts testStores), or a
 * benchmark's own. Passed in so that this module does not depend on the test runner.
 */
export interface WorldStores {
  open(backend: Backend, keyring: Keyring, clock: ManualClock): Promise<Store>;
  /** Another store on the same database (a second engine). */
  another(store: Store): Promise<Store>;
}

export interface WorldOptions {
  stores: WorldStores;
  backend: Backend;
  clock: ManualClock;
  therapists: number;
  /** Two engine instances on one PostgreSQL database. */
  engines?: 1 | 2;
}

export async function googleWorld(opts: WorldOptions): Promise<World> {
  const { clock } = opts;
  const emu = await startGoogleEmulator({ clock });
  const store = await opts.stores.open(opts.backend, new Keyring(generateKey()), clock);
  let routerUrl = '';
  const proxy = new Proxy(() => routerUrl);
  await proxy.listen();
  const config = loadConfig(googleEnv(emu, { SESSIONKEEPER_PUBLIC_URL: proxy.url }));
  const platform = { sleep: async () => undefined, timeoutMs: 3000 };
  const stores = [store, ...(opts.engines === 2 ? [await opts.stores.another(store)] : [])];
  const factories = stores.map((s) => platformConnectors(config, s, platform));
  const router = await routerFor(config, store, clock, factories[0]!);
  routerUrl = router.url;
  const calendarIds: string[] = [];
  const connect = async (n: number, scopes: readonly string[] = GOOGLE_SCOPES) => {
    const email = `dr${n}@practice.example`;
    emu.addAccount({ sub: `sub-${n}`, email });
    emu.addCalendar(`sub-${n}`, { id: email, summary: 'Practice', timeZone: 'America/New_York', primary: true });
    const connected = await completeGoogleConnect(store, config, factories[0]!, emu.authorize(`sub-${n}`, [...scopes], REDIRECT));
    await store.db.updateTable('calendars').set({ role: 'practice' }).where('connection_id', '=', connected.connectionId).execute();
    calendarIds.push(email);
    return { therapistId: connected.therapistId, connectionId: connected.connectionId, calendarId: connected.calendars[0]!.id };
  };
  for (let n = 0; n < opts.therapists; n++) await connect(n);
  return finishWorld('google', opts, store, stores, factories, config, emu as unknown as Emu, googleDriver(emu, calendarIds), proxy, router, GOOGLE_EVENT_PATH, connect);
}

export async function graphWorld(opts: WorldOptions): Promise<World> {
  const { clock } = opts;
  const emu = await startGraphEmulator({ clock });
  const store = await opts.stores.open(opts.backend, new Keyring(generateKey()), clock);
  let routerUrl = '';
  const proxy = new Proxy(() => routerUrl);
  await proxy.listen();
  const config = loadConfig({ MICROSOFT_CLIENT_ID: emu.clientId, MICROSOFT_CLIENT_SECRET: emu.clientSecret, MICROSOFT_TENANT: TENANT, MICROSOFT_REDIRECT_URI: MS_REDIRECT, SESSIONKEEPER_PUBLIC_URL: proxy.url });
  const platform: PlatformOptions = { sleep: async () => undefined, timeoutMs: 3000, microsoft: { networkClient: msalNetworkClient(emu) as never, transport: graphRedirect(emu), maxRetries: 0 } };
  const stores = [store, ...(opts.engines === 2 ? [await opts.stores.another(store)] : [])];
  const factories = stores.map((s) => platformConnectors(config, s, platform));
  const router = await routerFor(config, store, clock, factories[0]!);
  routerUrl = router.url;
  const users: { oid: string; upn: string }[] = [];
  const connect = async (n: number, scopes: readonly string[] = MICROSOFT_SCOPES) => {
    const user = { oid: `0000000${n}-1111-2222-3333-444444444444`, upn: `dr${n}@practice.example` };
    emu.addUser({ oid: user.oid, tid: TENANT, upn: user.upn, displayName: user.upn, timeZone: 'Eastern Standard Time' });
    const connected = await completeMicrosoftConnect(store, config, factories[0]!, emu.authorize(user.oid, [...scopes], MS_REDIRECT), { allowNewTherapist: true, platform });
    await store.db.updateTable('calendars').set({ role: 'practice' }).where('connection_id', '=', connected.connectionId).where('name', '=', 'Calendar').execute();
    users.push(user);
    const practice = await store.db.selectFrom('calendars').select('id').where('connection_id', '=', connected.connectionId).where('role', '=', 'practice').executeTakeFirstOrThrow();
    return { therapistId: connected.therapistId, connectionId: connected.connectionId, calendarId: practice.id };
  };
  for (let n = 0; n < opts.therapists; n++) await connect(n);
  return finishWorld('microsoft', opts, store, stores, factories, config, emu as unknown as Emu, graphDriver(emu, users), proxy, router, GRAPH_EVENT_PATH, connect);
}

function finishWorld(
  provider: World['provider'],
  opts: WorldOptions,
  store: Store,
  stores: Store[],
  factories: ConnectorFactory[],
  config: Config,
  emu: Emu,
  driver: Driver,
  proxy: Proxy,
  router: { url: string; app: App; close(): Promise<void> },
  eventPath: RegExp,
  connect: World['connect'],
): World {
  const engines: WorkerDeps[] = stores.map((s, i) => ({ store: s, connectors: factories[i]!, log: silentLogger, clock: opts.clock, publicUrl: config.publicUrl }));
  return {
    provider,
    clock: opts.clock,
    store,
    engines,
    emu,
    driver,
    proxy,
    router: { url: router.url, app: router.app },
    tagWrites: () => effectiveWrites(emu.requests, eventPath),
    connect,
    async close() {
      emu.setRequestHook(null);
      await router.close();
      await proxy.close();
      await emu.close();
      for (const s of stores.slice(1)) await s.db.destroy();
      await store.close();
    },
  };
}

export const GOOGLE_EVENT_PATH = /^\/calendar\/v3\/calendars\/[^/]+\/events\/[^/]+$/;
const GRAPH_EVENT_PATH = /^\/v1\.0\/(me|users\/[^/]+)\/(calendars\/[^/]+\/)?events\/[^/]+$/;

/** PATCHes of one event that took effect at the platform, per event path: answered 2xx, or their answer lost after the write. */
export function effectiveWrites(requests: Emu['requests'], eventPath: RegExp): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of requests) {
    if (r.method !== 'PATCH' || !eventPath.test(r.path.split('?')[0]!)) continue;
    if ((r.status >= 200 && r.status < 300) || r.dropped === 'after') out.set(r.path, (out.get(r.path) ?? 0) + 1);
  }
  return out;
}

/** Seeded faults on a share of platform calls: 429 with Retry-After, 5xx, a dropped request, a lost answer. */
export function injectFaults(world: World, rate: number, seed: number): { injected: () => number } {
  const r = rng(seed);
  let injected = 0;
  world.emu.setRequestHook(({ phase }) => {
    if (phase !== 'before' || r() >= rate) return;
    injected++;
    const kind = r();
    if (kind < 0.3) world.emu.faults.add({ fault: { status: 429, retryAfter: 1 + Math.floor(r() * 3) } });
    else if (kind < 0.55) world.emu.faults.add({ fault: { status: 503 } });
    else if (kind < 0.7) world.emu.faults.add({ fault: { status: 500 } });
    else if (kind < 0.85) return 'drop';
    else world.emu.faults.add({ fault: { dropAfter: true } });
    return;
  });
  return { injected: () => injected };
}

/**
 * Runs the engines (concurrently, when two) and delivers held notifications until nothing is due
 * before `untilMs`, moving the clock to each retry or presumption as it comes due.
 */
export async function drain(world: World, untilMs: number, random: () => number): Promise<TickReport[]> {
  const reports: TickReport[] = [];
  for (let rounds = 0; ; rounds++) {
    if (rounds > 5000) throw new Error('the engine never went quiet');
    await world.emu.settled();
    const [ticks] = await Promise.all([Promise.all(world.engines.map((d, i) => tick(d, `engine-${i}`))), world.proxy.flush(random)]);
    reports.push(...ticks);
    await world.emu.settled();
    const busy = ticks.some((r) => r.synced + r.presumed + r.actions.claimed > 0) || (await world.proxy.flush(random)) > 0;
    if (busy) continue;
    const next = (await nextDueAt(world.store))?.getTime() ?? null;
    const now = world.clock.now().toMillis();
    if (next === null || next > untilMs) break;
    if (next > now) world.clock.set(new Date(next).toISOString());
  }
  return reports;
}

/** Plays the steps; after the last, runs on to `endAt` (sessions end, attendance is presumed). */
export async function play(world: World, steps: readonly Step[], endAt: string, random: () => number): Promise<void> {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    world.clock.set(step.at);
    for (const op of step.ops) world.driver.apply(op);
    const until = i + 1 < steps.length ? Date.parse(steps[i + 1]!.at) - 1 : Date.parse(endAt);
    await drain(world, until, random);
  }
  world.clock.set(endAt);
  await drain(world, Date.parse(endAt), random);
}
