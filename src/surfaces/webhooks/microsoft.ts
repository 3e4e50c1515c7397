// Microsoft Graph change notifications (refs/graph-docs/change-notifications-delivery-webhooks.md):
// the validation handshake answered with the token as plain text; every notification's clientState
// checked against our subscription; 202 at once and one queued sync per calendar. Lifecycle events
// (change-notifications-lifecycle-events.md) queue the resync or the renewal they call for.
import type { Request, Response } from '@google-cloud/functions-framework';
import { parseGraphNotifications, verifyGraphNotification } from '../../../connectors/microsoft/calendar.js';
import type { App } from '../../app.js';
import { claimPushChannelBySecret, findPushChannel } from '../../store/calendars.js';
import { requestSync } from '../../store/sync-queue.js';

/** Graph checks a new subscription's URLs by POSTing ?validationToken=…: echo it, as text, at once. */
function validation(req: Request, res: Response): boolean {
  const token = (req.query as Record<string, unknown>)['validationToken'];
  if (typeof token !== 'string') return false;
  res.status(200).type('text/plain').send(token);
  return true;
}

async function handle(req: Request, res: Response, app: App, lifecycle: boolean): Promise<void> {
  if (validation(req, res)) return;
  const notes = parseGraphNotifications(req.body);
  if (!notes) {
    res.status(400).json({ error: 'not a Microsoft Graph notification: a "value" array of notifications is required' });
    return;
  }
  let accepted = 0;
  for (const note of notes) {
    const channel =
      (await findPushChannel(app.store.db, { provider: 'microsoft', channelId: note.subscriptionId })) ??
      (note.clientState
        ? await claimPushChannelBySecret(app.store.db, { provider: 'microsoft', channelId: note.subscriptionId, secret: note.clientState, since: new Date(app.store.now().getTime() - 10 * 60_000) })
        : undefined);
    if (!channel || !verifyGraphNotification(note, channel)) {
      app.log.warn({ subscriptionId: note.subscriptionId }, 'Graph notification for an unknown subscription or with a wrong clientState');
      continue;
    }
    accepted++;
    const now = app.store.now();
    if (lifecycle && note.lifecycleEvent === 'subscriptionRemoved') {
      // Gone at Graph: our record stops, upkeep makes a new one, and a full resync covers the gap.
      await app.store.db.updateTable('push_channels').set({ status: 'stopped', stopped_at: now }).where('id', '=', channel.rowId).execute();
      await requestSync(app.store.db, { calendarId: channel.calendarId, reason: 'lifecycle:subscriptionRemoved', full: true, now });
    } else if (lifecycle && note.lifecycleEvent === 'reauthorizationRequired') {
      // Replacing it reauthorizes it: marked due for renewal (still live, so the replacement
      // deletes it at Graph), and upkeep does it at its next round.
      await app.store.db.updateTable('push_channels').set({ expires_at: new Date(now.getTime() + 60_000) }).where('id', '=', channel.rowId).execute();
      await requestSync(app.store.db, { calendarId: channel.calendarId, reason: 'lifecycle:reauthorizationRequired', now });
    } else {
      // A change, or "missed" notifications: the delta sync catches up either way.
      await requestSync(app.store.db, { calendarId: channel.calendarId, reason: lifecycle ? `lifecycle:${note.lifecycleEvent ?? 'unknown'}` : 'push', now });
    }
  }
  if (accepted === 0) {
    res.status(404).json({ error: 'unknown subscription' });
    return;
  }
  res.status(202).end();
  app.kick?.();
}

export const microsoftWebhook = (req: Request, res: Response, app: App) => handle(req, res, app, false);
export const microsoftLifecycle = (req: Request, res: Response, app: App) => handle(req, res, app, true);
