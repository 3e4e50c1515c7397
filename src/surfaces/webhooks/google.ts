// Google Calendar push notifications (POST, no body, X-Goog-* headers; API-NOTES "Push"): the
// channel id and token are checked against our record, the answer is immediate, and the work is a
// deduplicated "sync calendar X" in the queue. Unknown or forged channels get 404 and change nothing.
import type { Request, Response } from '@google-cloud/functions-framework';
import { parseGoogleNotification, verifyGoogleNotification } from '../../../connectors/google/calendar.js';
import type { App } from '../../app.js';
import { findPushChannel } from '../../store/calendars.js';
import { requestSync } from '../../store/sync-queue.js';

export async function googleWebhook(req: Request, res: Response, app: App): Promise<void> {
  const note = parseGoogleNotification(req.headers);
  if (!note) {
    res.status(400).json({ error: 'not a Google Calendar notification: X-Goog-Channel-ID, X-Goog-Channel-Token and X-Goog-Resource-State are required' });
    return;
  }
  const channel = await findPushChannel(app.store.db, { provider: 'google', channelId: note.channelId });
  if (!channel || !verifyGoogleNotification(note, channel)) {
    // Same answer for an unknown channel and a wrong token: nothing to learn by probing.
    app.log.warn({ channelId: note.channelId }, 'push notification for an unknown channel or with a wrong token');
    res.status(404).json({ error: 'unknown channel' });
    return;
  }
  if (note.state === 'sync') {
    // Sent once when the channel is made: nothing changed yet.
    res.status(200).end();
    return;
  }
  await requestSync(app.store.db, { calendarId: channel.calendarId, reason: 'push', now: app.store.now() });
  res.status(200).end();
  app.kick?.();
}
