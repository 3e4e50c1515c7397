// Connecting a Microsoft 365 account through the server (MSAL's authorization-code flow; consent.ts
// does the work for every platform).
import type { Request, Response } from '@google-cloud/functions-framework';
import { microsoftConsentUrl } from '../../../connectors/microsoft/auth.js';
import type { App } from '../../app.js';
import { completeMicrosoftConnect } from '../../engine/connect.js';
import { microsoftAuth, platformConnectors } from '../../engine/platforms.js';
import { consentCallback, consentStart, type ConsentPlatform } from './consent.js';

const microsoft: ConsentPlatform = {
  name: 'Microsoft',
  product: 'Outlook calendar',
  settings: 'MICROSOFT_CLIENT_ID and MICROSOFT_CLIENT_SECRET',
  configured: (app) => app.config.microsoft !== undefined,
  consentUrl: (app, state) => microsoftConsentUrl(microsoftAuth(app.config), state),
  complete: (app, code, allowNewTherapist) => completeMicrosoftConnect(app.store, app.config, platformConnectors(app.config, app.store), code, { allowNewTherapist }),
};

export const microsoftStart = (req: Request, res: Response, app: App) => consentStart(req, res, app, microsoft);
export const microsoftCallback = (req: Request, res: Response, app: App) => consentCallback(req, res, app, microsoft);
