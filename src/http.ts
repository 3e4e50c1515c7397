// The HTTP entry: one functions-framework function that routes by path. Surfaces add their routes
// here; every answer is JSON (or what a platform demands), and an error never shows a stack trace.
import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import type { App } from './app.js';
import { googleCallback, googleStart } from './surfaces/oauth/google.js';
import { microsoftCallback, microsoftStart } from './surfaces/oauth/microsoft.js';
import { bookingGet, bookingPost } from './surfaces/booking/route.js';
import { tickRoute } from './surfaces/tick/route.js';
import { googleWebhook } from './surfaces/webhooks/google.js';
import { microsoftLifecycle, microsoftWebhook } from './surfaces/webhooks/microsoft.js';

export const FUNCTION_NAME = 'sessionkeeper';

export type Route = (req: Request, res: Response, app: App) => Promise<void> | void;

/** The routes of the product, by "METHOD /path"; "METHOD /prefix/*" takes every path under the prefix. */
export function routes(): Map<string, Route> {
  return new Map<string, Route>([
    ['GET /healthz', healthz],
    ['HEAD /healthz', healthz],
    ['POST /tick', tickRoute],
    ['POST /webhooks/google', googleWebhook],
    ['POST /webhooks/microsoft', microsoftWebhook],
    ['POST /webhooks/microsoft/lifecycle', microsoftLifecycle],
    ['GET /oauth/google/start', googleStart],
    ['GET /oauth/google/callback', googleCallback],
    ['GET /oauth/microsoft/start', microsoftStart],
    ['GET /oauth/microsoft/callback', microsoftCallback],
    ['GET /book/*', bookingGet],
    ['HEAD /book/*', bookingGet],
    ['POST /book/*', bookingPost],
  ]);
}

async function healthz(_req: Request, res: Response, app: App): Promise<void> {
  const database = await app.store.health();
  res.status(database.ok ? 200 : 503).json({ status: database.ok ? 'ok' : 'unavailable', database });
}

/** "/book/abc/ics" → "/book/*": the key a prefix route is registered under. */
function prefixOf(path: string): string {
  const second = path.indexOf('/', 1);
  return second > 0 ? `${path.slice(0, second)}/*` : path;
}

export function createHandler(app: App, table = routes()): HttpFunction {
  return async (req, res) => {
    const path = (req.path || '/').replace(/\/+$/, '') || '/';
    const route = table.get(`${req.method} ${path}`) ?? table.get(`${req.method} ${prefixOf(path)}`);
    if (!route) {
      const allowed = [...table.keys()].filter((k) => k.endsWith(` ${path}`) || k.endsWith(` ${prefixOf(path)}`)).map((k) => k.split(' ')[0]);
      if (allowed.length > 0) {
        res.set('Allow', allowed.join(', ')).status(405).json({ error: `method ${req.method} is not allowed on ${path}` });
      } else {
        res.status(404).json({ error: `no such path: ${path}` });
      }
      return;
    }
    try {
      await route(req, res, app);
    } catch (err) {
      app.log.error({ err, path }, 'request failed');
      if (!res.headersSent) res.status(500).json({ error: 'internal error' });
    }
  };
}
