// POST /tick: runs all due work once, for a deployment that scales to zero (Cloud Scheduler, an
// Azure timer, cron calls it every minute with the bearer token SESSIONKEEPER_TICK_TOKEN).
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from '@google-cloud/functions-framework';
import type { App } from '../../app.js';
import { platformConnectors } from '../../engine/platforms.js';
import { tick } from '../../engine/worker.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

export async function tickRoute(req: Request, res: Response, app: App): Promise<void> {
  const token = app.config.tickToken;
  if (!token) {
    res.status(404).json({ error: 'the tick endpoint is off: set SESSIONKEEPER_TICK_TOKEN to let a scheduler call it' });
    return;
  }
  const given = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
  // Compared as digests: constant time whatever the lengths.
  if (!timingSafeEqual(digest(given), digest(token))) {
    res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'a valid bearer token is required' });
    return;
  }
  const report = await tick(
    { store: app.store, connectors: platformConnectors(app.config, app.store), log: app.log, clock: app.clock, publicUrl: app.config.publicUrl },
    `tick-${randomUUID().slice(0, 8)}`,
  );
  res.status(200).json(report);
}
