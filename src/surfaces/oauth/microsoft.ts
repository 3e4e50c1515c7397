// Connecting a Microsoft 365 account through the server: /oauth/microsoft/start sends the therapist
// to Microsoft's sign-in with a signed state; /oauth/microsoft/callback finishes it (MSAL's
// authorization-code flow) and lists the calendars. New therapists need an invitation, as for Google.
import type { Request, Response } from '@google-cloud/functions-framework';
import { microsoftConsentUrl } from '../../../connectors/microsoft/auth.js';
import type { App } from '../../app.js';
import { completeMicrosoftConnect, NotInvited } from '../../engine/connect.js';
import { checkInvite, checkState, microsoftAuth, platformConnectors, signState } from '../../engine/platforms.js';
import { page } from './google.js';

export async function microsoftStart(req: Request, res: Response, app: App): Promise<void> {
  if (!app.config.microsoft) {
    page(res, 503, 'Microsoft 365 is not set up', 'The operator has not configured MICROSOFT_CLIENT_ID and MICROSOFT_CLIENT_SECRET.');
    return;
  }
  const invite = (req.query as Record<string, unknown>)['invite'];
  const invited = typeof invite === 'string' && checkInvite(app.store.keyring, invite, app.store.now());
  if (typeof invite === 'string' && !invited) {
    page(res, 400, 'This invitation has expired', 'Ask your practice for a new invitation link.');
    return;
  }
  res.redirect(302, await microsoftConsentUrl(microsoftAuth(app.config), signState(app.store.keyring, app.store.now(), { invited })));
}

export async function microsoftCallback(req: Request, res: Response, app: App): Promise<void> {
  const q = req.query as Record<string, unknown>;
  if (typeof q['error'] === 'string') {
    page(res, 400, 'Not connected', 'Microsoft did not give access (the sign-in was declined). You can close this page and try again.');
    return;
  }
  const state = typeof q['state'] === 'string' ? checkState(app.store.keyring, q['state'], app.store.now()) : undefined;
  if (typeof q['code'] !== 'string' || !state) {
    page(res, 400, 'This link has expired', 'Start connecting again from SessionKeeper.');
    return;
  }
  try {
    const connected = await completeMicrosoftConnect(app.store, app.config, platformConnectors(app.config, app.store), q['code'], { allowNewTherapist: state.invited });
    app.kick?.();
    page(res, 200, 'Outlook calendar connected', `SessionKeeper can now see ${connected.calendars.length} calendar(s). You can close this page.`);
  } catch (err) {
    if (err instanceof NotInvited) {
      page(res, 403, 'Not invited yet', 'This Microsoft account is not part of this practice yet. Ask your practice for an invitation link.');
      return;
    }
    app.log.error({ err }, 'connecting a Microsoft account failed');
    page(res, 502, 'Not connected', 'Microsoft did not complete the connection. Please try again.');
  }
}
