// Connecting a Google account through the server: /oauth/google/start sends the therapist to
// Google's consent page with a signed state; /oauth/google/callback finishes it and lists calendars.
import type { Request, Response } from '@google-cloud/functions-framework';
import { consentUrl } from '../../../connectors/google/oauth.js';
import type { App } from '../../app.js';
import { completeGoogleConnect, NotInvited } from '../../engine/connect.js';
import { checkInvite, checkState, googleOAuth, platformConnectors, signState } from '../../engine/platforms.js';

/** A small, self-contained result page for the end of a consent (no script, no external assets). */
export function page(res: Response, status: number, title: string, body: string): void {
  res
    .status(status)
    .type('html')
    .send(`<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${title}</title><main style="font-family:system-ui;max-width:36rem;margin:3rem auto;padding:0 1rem"><h1>${title}</h1><p>${body}</p></main></html>`);
}

export async function googleStart(req: Request, res: Response, app: App): Promise<void> {
  if (!app.config.google) {
    page(res, 503, 'Google is not set up', 'The operator has not configured GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET.');
    return;
  }
  // Therapists already here reconnect freely; someone new needs the practice's invitation link.
  const invite = (req.query as Record<string, unknown>)['invite'];
  const invited = typeof invite === 'string' && checkInvite(app.store.keyring, invite, app.store.now());
  if (typeof invite === 'string' && !invited) {
    page(res, 400, 'This invitation has expired', 'Ask your practice for a new invitation link.');
    return;
  }
  res.redirect(302, consentUrl(googleOAuth(app.config.google), signState(app.store.keyring, app.store.now(), { invited })));
}

export async function googleCallback(req: Request, res: Response, app: App): Promise<void> {
  const q = req.query as Record<string, unknown>;
  if (typeof q['error'] === 'string') {
    page(res, 400, 'Not connected', 'Google did not give access (the consent was declined). You can close this page and try again.');
    return;
  }
  const state = typeof q['state'] === 'string' ? checkState(app.store.keyring, q['state'], app.store.now()) : undefined;
  if (typeof q['code'] !== 'string' || !state) {
    page(res, 400, 'This link has expired', 'Start connecting again from SessionKeeper.');
    return;
  }
  try {
    const connected = await completeGoogleConnect(app.store, app.config, platformConnectors(app.config, app.store), q['code'], { allowNewTherapist: state.invited });
    app.kick?.();
    page(res, 200, 'Google Calendar connected', `SessionKeeper can now see ${connected.calendars.length} calendar(s). You can close this page.`);
  } catch (err) {
    if (err instanceof NotInvited) {
      page(res, 403, 'Not invited yet', 'This Google account is not part of this practice yet. Ask your practice for an invitation link.');
      return;
    }
    app.log.error({ err }, 'connecting a Google account failed');
    page(res, 502, 'Not connected', 'Google did not complete the connection. Please try again.');
  }
}
