// Connecting an account through the server, the same for every platform: /oauth/<p>/start sends the
// therapist to the platform's consent with a signed state (and whether they were invited);
// /oauth/<p>/callback checks the state, finishes the connection and shows a small result page.
import type { Request, Response } from '@google-cloud/functions-framework';
import type { App } from '../../app.js';
import { NotInvited, type Connected } from '../../engine/connect.js';
import { checkInvite, checkState, signState } from '../../engine/platforms.js';

/** A small, self-contained result page for the end of a consent (no script, no external assets). */
export function page(res: Response, status: number, title: string, body: string): void {
  res
    .status(status)
    .type('html')
    .send(`<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${title}</title><main style="font-family:system-ui;max-width:36rem;margin:3rem auto;padding:0 1rem"><h1>${title}</h1><p>${body}</p></main></html>`);
}

export interface ConsentPlatform {
  /** "Google", "Microsoft": how the pages name the platform. */
  name: string;
  /** What the page says was connected: "Google Calendar", "Outlook calendar". */
  product: string;
  /** The platform's settings variables, for the page shown when they are missing. */
  settings: string;
  configured(app: App): boolean;
  consentUrl(app: App, state: string): Promise<string> | string;
  complete(app: App, code: string, allowNewTherapist: boolean): Promise<Connected>;
}

export async function consentStart(req: Request, res: Response, app: App, p: ConsentPlatform): Promise<void> {
  if (!p.configured(app)) {
    page(res, 503, `${p.name} is not set up`, `The operator has not configured ${p.settings}.`);
    return;
  }
  // Therapists already here reconnect freely; someone new needs the practice's invitation link.
  const invite = (req.query as Record<string, unknown>)['invite'];
  const invited = typeof invite === 'string' && checkInvite(app.store.keyring, invite, app.store.now());
  if (typeof invite === 'string' && !invited) {
    page(res, 400, 'This invitation has expired', 'Ask your practice for a new invitation link.');
    return;
  }
  res.redirect(302, await p.consentUrl(app, signState(app.store.keyring, app.store.now(), { invited })));
}

export async function consentCallback(req: Request, res: Response, app: App, p: ConsentPlatform): Promise<void> {
  const q = req.query as Record<string, unknown>;
  if (typeof q['error'] === 'string') {
    page(res, 400, 'Not connected', `${p.name} did not give access (the consent was declined). You can close this page and try again.`);
    return;
  }
  const state = typeof q['state'] === 'string' ? checkState(app.store.keyring, q['state'], app.store.now()) : undefined;
  if (typeof q['code'] !== 'string' || !state) {
    page(res, 400, 'This link has expired', 'Start connecting again from SessionKeeper.');
    return;
  }
  try {
    const connected = await p.complete(app, q['code'], state.invited);
    app.kick?.();
    page(res, 200, `${p.product} connected`, `SessionKeeper can now see ${connected.calendars.length} calendar(s). You can close this page.`);
  } catch (err) {
    if (err instanceof NotInvited) {
      page(res, 403, 'Not invited yet', `This ${p.name} account is not part of this practice yet. Ask your practice for an invitation link.`);
      return;
    }
    app.log.error({ err }, `connecting a ${p.name} account failed`);
    page(res, 502, 'Not connected', `${p.name} did not complete the connection. Please try again.`);
  }
}
