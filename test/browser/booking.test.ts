// The booking page in headless Chromium (playwright-core, Debian's chromium), served by our HTTP
// handler over the Google emulator and the real store: a client on a phone opens their link, sees the
// times in their own zone, books a video session, sees the confirmation follow the invitation out,
// and the calendar holds the event with them invited; two clients take the same time at once; a client
// changes their appointment from a link about it; an expired and a changed link get plain pages. Every page passes axe-core (no serious or critical
// violations) and weighs under 60 KB.
import { DateTime } from 'luxon';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { createBookingLink } from '../../src/engine/booking.js';
import type { GoogleEmulator } from '../emulators/google/server.js';
import { testStores } from '../helpers/db.js';
import { launchChromium, seriousViolations } from '../helpers/browser.js';
import { meOf, viewOf, type Me } from '../engine/platform-view.js';
import { rng } from '../engine/practice-life.js';
import { drain, googleWorld, type World } from '../engine/world.js';

const ZONE = 'America/New_York';
const NOW = '2026-03-02T09:00:00-05:00';
const PAGE_LIMIT = 60 * 1024;
const CLIENTS = { sam: 'sam.client@example.com', robin: 'robin.client@example.com', kim: 'kim.client@example.com' };

describe('the booking page in Chromium', { timeout: 180_000 }, () => {
  let world: World;
  let me: Me;
  let browser: Browser;
  const clientIds: Record<string, string> = {};
  const random = rng(5);
  const contexts: BrowserContext[] = [];

  /** A phone in London (the client's zone differs from the therapist's). */
  const phone = async (): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, timezoneId: 'Europe/London', locale: 'en-GB' });
    contexts.push(context);
    return context.newPage();
  };
  const linkFor = async (who: keyof typeof CLIENTS) => createBookingLink(world.store, { therapistId: me.therapistId, clientId: clientIds[who]!, factKey: `test:${who}`, now: world.store.now(), publicUrl: world.router.url });
  const open = async (page: Page, url: string) => {
    const response = (await page.goto(url))!;
    return { status: response.status(), bytes: (await response.body()).length };
  };
  const times = (page: Page) => page.locator('input[name=start]').evaluateAll((els) => els.map((e) => (e as unknown as { value: string }).value));

  beforeAll(async () => {
    browser = await launchChromium();
    world = await googleWorld({ stores: testStores, backend: 'pglite', clock: new ManualClock(NOW), therapists: 0 });
    me = await meOf(world, await world.connect(0));
    const emu = world.emu as unknown as GoogleEmulator;
    // Three clients who all came on Tuesdays at 18:00 (two sessions each): the same habit, the same times offered.
    const weeks: [keyof typeof CLIENTS, number][] = [['kim', 6], ['kim', 5], ['robin', 4], ['robin', 3], ['sam', 2], ['sam', 1]];
    for (const [who, w] of weeks) {
      const s = DateTime.fromISO('2026-03-03T18:00', { zone: ZONE }).minus({ weeks: w });
      emu.insertEvent(me.providerCalendarId, { summary: 'Session', attendees: [{ email: CLIENTS[who], responseStatus: 'accepted' }], start: { dateTime: s.toISO()!, timeZone: ZONE }, end: { dateTime: s.plus({ minutes: 50 }).toISO()!, timeZone: ZONE } });
    }
    await drain(world, world.clock.now().toMillis(), random);
    const rows = await world.store.db.selectFrom('appointments').select(['client_id', 'start_at']).where('therapist_id', '=', me.therapistId).execute();
    for (const [who, w] of weeks) {
      const at = DateTime.fromISO('2026-03-03T18:00', { zone: ZONE }).minus({ weeks: w }).toMillis();
      clientIds[who] = rows.find((r) => r.start_at.getTime() === at)!.client_id!;
    }
  }, 180_000);
  afterAll(async () => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await world?.close();
  });

  test('a client books a video session from their phone and sees it confirmed; the calendar holds it with them invited', async () => {
    const link = await linkFor('sam');
    const page = await phone();
    const first = await open(page, link.url);
    expect(first.status).toBe(200);
    expect(first.bytes).toBeLessThan(PAGE_LIMIT);
    await expect(page.locator('h1').textContent()).resolves.toBe('Choose a new time');
    // Shown in the phone's zone: Tuesday 18:00 in New York is 23:00 in London.
    await expect(page.locator('legend .zone').textContent()).resolves.toBe('London time');
    const firstSlot = page.locator('label.opt[data-start]').first();
    await expect(firstSlot.locator('.day').textContent()).resolves.toBe('Tuesday 3 March');
    await expect(firstSlot.locator('.time').textContent()).resolves.toMatch(/^23:00 – 23:50$/);
    // The page never shows the therapist's other sessions or why a time ranked.
    await expect(page.content()).resolves.not.toMatch(/right after|like the last|sam/i);
    expect(await seriousViolations(page)).toEqual([]);

    await page.getByLabel('Video call').check();
    await firstSlot.click();
    await page.getByRole('button', { name: 'Book this time' }).click();
    await page.waitForSelector('h1:text("You\'re booked")');
    await expect(page.locator('.card .time').textContent()).resolves.toMatch(/^23:00 – 23:50$/);
    await expect(page.locator('#status').textContent()).resolves.toMatch(/adding it to the calendar/);
    expect(await seriousViolations(page)).toEqual([]);

    // The engine makes the event; the page follows it by itself.
    await drain(world, world.clock.now().toMillis() + 60_000, random);
    await page.waitForSelector('#status:text("Your invitation is on its way to your inbox.")', { timeout: 20_000 });
    const booking = await world.store.db.selectFrom('bookings as b').innerJoin('actions as a', 'a.id', 'b.action_id').select(['a.external_ref', 'b.start_at']).where('b.client_id', '=', clientIds['sam']!).executeTakeFirstOrThrow();
    expect(DateTime.fromJSDate(booking.start_at, { zone: ZONE }).toFormat('ccc d LLL HH:mm')).toBe('Tue 3 Mar 18:00');
    const event = viewOf(world).event(me, booking.external_ref!)!;
    expect(event.attendees).toEqual([CLIENTS.sam]);
    expect(event.meetingUrl).toMatch(/^https:\/\/meet\.google\.com\//);

    // The .ics: the same time, for the client's own calendar.
    const ics = await page.request.get(`${link.url}/ics`);
    expect(ics.headers()['content-type']).toMatch(/^text\/calendar/);
    const text = await ics.text();
    expect(text).toContain(`DTSTART:${DateTime.fromJSDate(booking.start_at, { zone: 'utc' }).toFormat("yyyyMMdd'T'HHmmss'Z'")}`);
    expect(text).toContain('METHOD:PUBLISH');
    // Opening the link again shows the booking, not the times.
    await open(page, link.url);
    await expect(page.locator('h1').textContent()).resolves.toBe("You're booked");
  });

  test('two clients take the same time at once: one gets it, the other sees it taken and fresh times without it', async () => {
    const [a, b] = [await phone(), await phone()];
    const [la, lb] = [await linkFor('robin'), await linkFor('kim')];
    await open(a, la.url);
    await open(b, lb.url);
    const offeredB = await times(b);
    const shared = (await times(a)).find((t) => offeredB.includes(t))!;
    expect(shared).toBeDefined();
    for (const p of [a, b]) {
      await p.getByLabel('In person').check();
      await p.locator(`input[name=start][value="${shared}"]`).check();
    }
    await Promise.all([a, b].map((p) => p.getByRole('button', { name: 'Book this time' }).click()));
    await Promise.all([a, b].map((p) => p.waitForLoadState()));
    const headings = await Promise.all([a, b].map((p) => p.locator('h1').textContent()));
    expect([...headings].sort()).toEqual(['Choose a new time', "You're booked"]);
    const loser = headings[0] === "You're booked" ? b : a;
    await expect(loser.getByRole('alert').textContent()).resolves.toMatch(/^Sorry, that time (is no longer free|was just taken)\. Here are the times that are free now\.$/);
    expect(await times(loser)).not.toContain(shared);
    expect(await seriousViolations(loser)).toEqual([]);
    await drain(world, world.clock.now().toMillis() + 60_000, random);
  });

  test('a client changes their appointment from a link about it: the page shows it now, and confirms the move from the old time', async () => {
    const emu = world.emu as unknown as GoogleEmulator;
    const at = DateTime.fromISO('2026-03-17T18:00', { zone: ZONE });
    const event = emu.insertEvent(me.providerCalendarId, { summary: 'Session', attendees: [{ email: CLIENTS.kim, responseStatus: 'accepted' }], start: { dateTime: at.toISO()!, timeZone: ZONE }, end: { dateTime: at.plus({ minutes: 50 }).toISO()!, timeZone: ZONE } });
    await drain(world, world.clock.now().toMillis(), random);
    const session = await world.store.db.selectFrom('appointments').select(['id', 'client_id']).where('event_id', '=', event['id'] as string).executeTakeFirstOrThrow();
    expect(session.client_id).toBe(clientIds['kim']);
    // Kim's upcoming sessions (an earlier test's race may have booked one): the move adds none.
    const upcoming = async () => (await world.store.db.selectFrom('appointments').select('id').where('client_id', '=', clientIds['kim']!).where('state', '=', 'scheduled').where('start_at', '>', world.store.now()).execute()).map((k) => k.id).sort();
    const before = await upcoming();
    expect(before).toContain(session.id);
    const link = await createBookingLink(world.store, { therapistId: me.therapistId, clientId: clientIds['kim']!, appointmentId: session.id, validUntil: at.toJSDate(), now: world.store.now(), publicUrl: world.router.url });
    const page = await phone();
    expect((await open(page, link.url)).status).toBe(200);
    await expect(page.locator('h1').textContent()).resolves.toBe('Change your appointment');
    // The session now, in the phone's zone (18:00 in New York is 22:00 in London that week).
    await expect(page.getByText(/^Now: /).textContent()).resolves.toBe('Now: Tuesday 17 March, 22:00 — choose a new time below. Your current time stays booked until you choose.');
    expect(await times(page)).not.toContain(at.toUTC().toISO());
    expect(await seriousViolations(page)).toEqual([]);

    const chosen = (await times(page))[0]!;
    await page.locator(`input[name=start][value="${chosen}"]`).check();
    await page.getByRole('button', { name: 'Move to this time' }).click();
    await page.waitForSelector('h1:text("Your appointment has been moved")');
    await expect(page.locator('.moved').textContent()).resolves.toBe('Moved from Tuesday 17 March, 22:00 to:');
    const to = DateTime.fromISO(chosen).setZone('Europe/London');
    await expect(page.locator('.card .time').textContent()).resolves.toBe(`${to.toFormat('HH:mm')} – ${to.plus({ minutes: 50 }).toFormat('HH:mm')}`);
    expect(await seriousViolations(page)).toEqual([]);

    await drain(world, world.clock.now().toMillis() + 60_000, random);
    await page.waitForSelector('#status:text("The updated invitation is on its way to your inbox.")', { timeout: 20_000 });
    // One event, the same one, at the new time, with the client still invited.
    const moved = emu.getEvent(me.providerCalendarId, event['id'] as string)!;
    expect(Date.parse((moved['start'] as { dateTime: string }).dateTime)).toBe(Date.parse(chosen));
    expect(viewOf(world).event(me, event['id'] as string)!.attendees).toEqual([CLIENTS.kim]);
    expect(await upcoming()).toEqual(before);
    // Reloaded later: still the move, from when to when.
    await open(page, link.url);
    await expect(page.locator('h1').textContent()).resolves.toBe('Your appointment has been moved');
    await expect(page.locator('.moved').textContent()).resolves.toBe('Moved from Tuesday 17 March, 22:00 to:');
  });

  test('a changed link and an expired one get plain pages, never a stack trace', async () => {
    const link = await linkFor('kim');
    const page = await phone();
    const changed = link.url.slice(0, -3) + (link.url.endsWith('AAA') ? 'BBB' : 'AAA');
    const bad = await open(page, changed);
    expect(bad.status).toBe(404);
    await expect(page.locator('h1').textContent()).resolves.toBe('This link is not valid');
    expect(await seriousViolations(page)).toEqual([]);
    world.clock.advance({ days: 15 });
    const expired = await open(page, link.url);
    expect(expired.status).toBe(410);
    await expect(page.locator('h1').textContent()).resolves.toBe('This booking link has expired');
    await expect(page.content()).resolves.not.toMatch(/Error|at .*\.js|stack/);
    expect(await seriousViolations(page)).toEqual([]);
  });
});
