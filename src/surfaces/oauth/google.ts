// Connecting a Google account through the server (consent.ts does the work for every platform).
import type { Request, Response } from '@google-cloud/functions-framework';
import { consentUrl } from '../../../connectors/google/oauth.js';
import type { App } from '../../app.js';
import { completeGoogleConnect } from '../../engine/connect.js';
import { googleOAuth, platformConnectors, requireGoogle } from '../../engine/platforms.js';
import { consentCallback, consentStart, type ConsentPlatform } from './consent.js';

const google: ConsentPlatform = {
  name: 'Google',
  product: 'Google Calendar',
  settings: 'GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET',
  configured: (app) => app.config.google !== undefined,
  consentUrl: (app, state) => consentUrl(googleOAuth(requireGoogle(app.config)), state),
  complete: (app, code, allowNewTherapist) => completeGoogleConnect(app.store, app.config, platformConnectors(app.config, app.store), code, { allowNewTherapist }),
};

export const googleStart = (req: Request, res: Response, app: App) => consentStart(req, res, app, google);
export const googleCallback = (req: Request, res: Response, app: App) => consentCallback(req, res, app, google);
