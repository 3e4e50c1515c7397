// The booking page's routes: GET /book/<token> (the times, or the confirmation once booked or moved),
// POST /book/<token> (take a time; a link about a session moves it), GET /book/<token>/ics and /status.
// Every answer is a page a client can read (never a stack trace), no-store, no referrer (the link is a
// bearer token), under a strict CSP.
import { randomBytes } from 'node:crypto';
import type { Request, Response } from '@google-cloud/functions-framework';
import { z } from 'zod';
import type { App } from '../../app.js';
import { bookingPage, bookSlot, openLink, type BookingLink, type BookingView, type OpenedLink } from '../../engine/booking.js';
import { practiceNames } from '../../engine/contacts.js';
import { platformConnectors } from '../../engine/platforms.js';
import { icsFile } from '../../engine/ics.js';
import { chooserPage, confirmationPage, messagePage } from './page.js';

/** How long a booking waits for its event before answering (the page then follows it by itself). */
const CONFIRM_WAIT_MS = 4_000;

const choiceSchema = z.object({
  start: z.iso.datetime({ offset: true, error: 'choose one of the times' }),
  mode: z.enum(['in_person', 'telehealth'], { error: 'choose in person or a video call' }),
  tz: z.string().max(64).optional(),
});

function headers(res: Response, nonce: string): void {
  res.set({
    'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'X-Robots-Tag': 'noindex',
  });
}

/** "/book/<token>[/ics|/status]" → its parts, or null. */
function parsePath(path: string): { token: string; sub: '' | 'ics' | 'status' } | null {
  const m = /^\/book\/([A-Za-z0-9_-]{1,200})(?:\/(ics|status))?$/.exec(path);
  return m ? { token: m[1]!, sub: (m[2] ?? '') as '' | 'ics' | 'status' } : null;
}

const names = (app: App, link: BookingLink) => practiceNames(app.store.db, link.therapistId);

function closedPage(res: Response, nonce: string, opened: Exclude<OpenedLink, { state: 'open' } | { state: 'used' }>, practiceName?: string): void {
  if (opened.state === 'expired') {
    res.status(410).send(messagePage({ title: 'This booking link has expired', lines: [`Booking links work for a limited time.`, `Please ask ${practiceName ?? 'the practice'} for a new one.`], nonce }));
  } else {
    res.status(404).send(messagePage({ title: 'This link is not valid', lines: ['It may have been copied incompletely. Please use the whole link from your message, or ask the practice for a new one.'], nonce }));
  }
}

async function showConfirmation(app: App, res: Response, nonce: string, token: string, link: BookingLink, booking: BookingView, status = 200): Promise<void> {
  res.status(status).send(confirmationPage({ booking, ...(await names(app, link)), icsHref: `/book/${token}/ics`, nonce }));
}

async function showChooser(app: App, res: Response, nonce: string, token: string, link: BookingLink, status: number, notice?: string): Promise<void> {
  const page = await bookingPage(app.store, link, app.store.now());
  res.status(status).send(chooserPage({ action: `/book/${token}`, page, nonce, ...(notice ? { notice } : {}) }));
}

export async function bookingGet(req: Request, res: Response, app: App): Promise<void> {
  const nonce = randomBytes(16).toString('base64');
  headers(res, nonce);
  const parsed = parsePath(req.path);
  try {
    const opened = parsed ? await openLink(app.store.db, app.store.keyring, parsed.token, app.store.now()) : ({ state: 'invalid' } as const);
    if (!parsed || opened.state === 'invalid') return closedPage(res, nonce, { state: 'invalid' });
    if (parsed.sub === 'status') {
      const status = opened.state === 'used' ? opened.booking.status : opened.state === 'open' && opened.failed ? 'failed' : 'none';
      res.status(200).json({ status });
      return;
    }
    if (parsed.sub === 'ics') {
      if (opened.state !== 'used') return void res.status(404).send(messagePage({ title: 'Nothing booked yet', lines: ['Choose a time first; the calendar file comes with the confirmation.'], nonce }));
      const b = opened.booking;
      const n = await names(app, opened.link);
      res
        .status(200)
        .set({ 'Content-Type': 'text/calendar; charset=utf-8', 'Content-Disposition': 'attachment; filename="appointment.ics"' })
        .send(
          icsFile({
            uid: b.icsUid,
            // A move replaces the session's copy the client may have from a reminder (same UID, later SEQUENCE).
            ...(b.moved ? { sequence: Math.floor(b.madeAt.getTime() / 1000) } : {}),
            start: b.start,
            end: b.end,
            stamp: app.store.now(),
            summary: `${b.typeName} with ${n.therapistName}`,
            description: b.mode === 'telehealth' ? 'Video call: the link to join is in your invitation.' : 'In person.',
            location: b.location,
          }),
        );
      return;
    }
    if (opened.state === 'used') return showConfirmation(app, res, nonce, parsed.token, opened.link, opened.booking);
    if (opened.state === 'expired') return closedPage(res, nonce, opened, (await names(app, opened.link)).practiceName);
    const notice = !opened.failed ? undefined : opened.failed.moved ? 'We could not move your appointment to the time you chose. Please choose a time again.' : 'We could not complete your last booking. Please choose a time again.';
    return showChooser(app, res, nonce, parsed.token, opened.link, 200, notice);
  } catch (err) {
    failed(app, res, nonce, err);
  }
}

export async function bookingPost(req: Request, res: Response, app: App): Promise<void> {
  const nonce = randomBytes(16).toString('base64');
  headers(res, nonce);
  const parsed = parsePath(req.path);
  try {
    if (!parsed || parsed.sub !== '') return closedPage(res, nonce, { state: 'invalid' });
    const choice = choiceSchema.safeParse(req.body ?? {});
    if (!choice.success) {
      const opened = await openLink(app.store.db, app.store.keyring, parsed.token, app.store.now());
      if (opened.state === 'open') return showChooser(app, res, nonce, parsed.token, opened.link, 400, `Please ${choice.error.issues[0]?.message ?? 'choose a time'}.`);
      if (opened.state === 'used') return showConfirmation(app, res, nonce, parsed.token, opened.link, opened.booking);
      return closedPage(res, nonce, opened);
    }
    const result = await bookSlot(
      { store: app.store, connectors: app.connectors ?? platformConnectors(app.config, app.store), log: app.log, now: app.store.now(), publicUrl: app.config.publicUrl },
      parsed.token,
      { start: new Date(choice.data.start), mode: choice.data.mode, clientZone: choice.data.tz ?? null },
    );
    if (result.kind === 'booked') {
      app.kick?.();
      await waitForEvent(app, parsed.token);
      // Post/redirect/get: a reload of the confirmation does not post again.
      res.redirect(303, `/book/${parsed.token}`);
      return;
    }
    if (result.kind === 'taken') {
      const opened = await openLink(app.store.db, app.store.keyring, parsed.token, app.store.now());
      if (opened.state === 'open') return showChooser(app, res, nonce, parsed.token, opened.link, 409, `Sorry, ${result.reason}. Here are the times that are free now.`);
      if (opened.state === 'used') return showConfirmation(app, res, nonce, parsed.token, opened.link, opened.booking);
      return closedPage(res, nonce, opened);
    }
    if (result.kind === 'unavailable') {
      res.status(503).send(messagePage({ title: 'Online booking is not available', lines: [`Sorry: ${result.reason}.`, 'Please contact the practice to book.'], nonce }));
      return;
    }
    const closed = result.link;
    if (closed.state === 'used') return showConfirmation(app, res, nonce, parsed.token, closed.link, closed.booking);
    return closedPage(res, nonce, closed, closed.state === 'expired' ? (await names(app, closed.link)).practiceName : undefined);
  } catch (err) {
    failed(app, res, nonce, err);
  }
}

/** Waits a little for the booking's event (made by the worker); the page follows it after that. */
async function waitForEvent(app: App, token: string): Promise<void> {
  if (!app.kick) return;
  const until = Date.now() + CONFIRM_WAIT_MS;
  while (Date.now() < until) {
    const opened = await openLink(app.store.db, app.store.keyring, token, app.store.now());
    if (opened.state !== 'used' || opened.booking.status !== 'confirming') return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function failed(app: App, res: Response, nonce: string, err: unknown): void {
  // The path holds the link's token: it is not logged.
  app.log.error({ err }, 'booking page failed');
  if (!res.headersSent) res.status(500).send(messagePage({ title: 'Something went wrong', lines: ['Your booking was not made. Please try again in a minute, or contact the practice.'], nonce }));
}

