// Push channels of the Google emulator (events.watch, channels.stop) and the delivery of notifications:
// bodiless POSTs with X-Goog-* headers, `sync` first then `exists` (google-examples.md B3; API-NOTES "Push").
import crypto from 'node:crypto';
import { DateTime } from 'luxon';
import type { Clock } from '../../../src/clock.js';
import * as E from './errors.js';
import { str, type Json } from './events.js';

export interface ChannelInfo {
  id: string;
  resourceId: string;
  calendarId: string;
  address: string;
  token?: string;
  expiration: number;
  stopped: boolean;
}

interface Channel extends ChannelInfo {
  resourceUri: string;
  messageNumber: number;
  /** Deliveries of one channel go out one after another, in message-number order. */
  tail: Promise<void>;
}

/** One notification POST and what became of it. */
export interface Delivery {
  channelId: string;
  messageNumber: number;
  state: 'sync' | 'exists';
  /** Emulator clock when it was queued. */
  at: string;
  /** HTTP status answered by the receiver; undefined while in flight or when the POST failed. */
  status?: number;
  error?: string;
}

/** Channel lifetime default and maximum for Calendar events: 7 days (API-NOTES; push guide). */
const MAX_LIFETIME_MS = 7 * 24 * 3600 * 1000;
const DELIVERY_TIMEOUT_MS = 10_000;

export class PushHub {
  private readonly list: Channel[] = [];
  readonly deliveries: Delivery[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly clock: Clock;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** resourceId is stable per calendar (the watched resource). */
  static resourceId(calendarId: string): string {
    return crypto.createHash('sha1').update(`events:${calendarId}`).digest('base64url').slice(0, 27);
  }

  watch(calendarId: string, resourceUri: string, body: Json): Json {
    const id = str(body['id']);
    if (!id) throw E.required('Required channel id.');
    if (id.length > 64 || !/^[A-Za-z0-9\-_+/=]+$/.test(id)) throw E.invalid(`Invalid channel id: ${id}`);
    if (this.list.some((c) => c.id === id)) throw E.invalid(`Channel id ${id} not unique`, 'channelIdNotUnique');
    const type = str(body['type']);
    if (type !== 'web_hook' && type !== 'webhook') throw E.invalid(`Invalid value for type: ${String(type)}`);
    const address = str(body['address']);
    let url: URL;
    try {
      url = new URL(address ?? '');
    } catch {
      throw E.invalid(`Invalid webhook address: ${String(address)}`, 'push.webhookUrlNotHttps');
    }
    // Google requires https; the emulator also accepts http so tests can listen on a plain local port.
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw E.invalid('WebHook callback must be HTTPS.', 'push.webhookUrlNotHttps');
    const now = this.clock.now().toMillis();
    let expiration = now + MAX_LIFETIME_MS;
    const requested = body['expiration'];
    if (requested !== undefined && requested !== null) {
      const n = typeof requested === 'number' ? requested : Number.parseInt(String(requested), 10);
      if (!Number.isFinite(n)) throw E.invalid(`Invalid value for expiration: ${String(requested)}`);
      expiration = Math.min(n, expiration);
    }
    const token = str(body['token']);
    const ch: Channel = {
      id,
      resourceId: PushHub.resourceId(calendarId),
      calendarId,
      address: url.toString(),
      expiration,
      stopped: false,
      resourceUri,
      messageNumber: 0,
      tail: Promise.resolve(),
    };
    if (token !== undefined) ch.token = token;
    this.list.push(ch);
    const res: Json = { kind: 'api#channel', id, resourceId: ch.resourceId, resourceUri, expiration: String(expiration) };
    if (token !== undefined) res['token'] = token;
    // The `sync` message (number 1) is sent as soon as the channel exists; the POST leaves after the response.
    this.send(ch, 'sync', true);
    return res;
  }

  stop(body: Json): void {
    const id = str(body['id']);
    const resourceId = str(body['resourceId']);
    const ch = this.list.find((c) => c.id === id && c.resourceId === resourceId && !c.stopped);
    if (!ch) throw E.notFound(`Channel '${String(id)}' not found for project 'emulator'`);
    ch.stopped = true;
  }

  /** After every change in a calendar: an `exists` message to each live channel watching it. */
  notify(calendarId: string): void {
    const now = this.clock.now().toMillis();
    for (const ch of this.list) {
      if (ch.calendarId === calendarId && !ch.stopped && ch.expiration > now) this.send(ch, 'exists');
    }
  }

  private send(ch: Channel, state: 'sync' | 'exists', afterResponse = false): void {
    if (this.abort.signal.aborted) return;
    ch.messageNumber += 1;
    const delivery: Delivery = {
      channelId: ch.id,
      messageNumber: ch.messageNumber,
      state,
      at: this.clock.now().toUTC().toISO() ?? '',
    };
    this.deliveries.push(delivery);
    const headers: Record<string, string> = {
      'X-Goog-Channel-ID': ch.id,
      'X-Goog-Channel-Expiration': DateTime.fromMillis(ch.expiration, { zone: 'utc' }).toHTTP() ?? '',
      'X-Goog-Resource-ID': ch.resourceId,
      'X-Goog-Resource-URI': ch.resourceUri,
      'X-Goog-Resource-State': state,
      'X-Goog-Message-Number': String(ch.messageNumber),
    };
    if (ch.token !== undefined) headers['X-Goog-Channel-Token'] = ch.token;
    const run = async (): Promise<void> => {
      if (afterResponse) await new Promise<void>((r) => setTimeout(r, 5));
      try {
        const res = await fetch(ch.address, {
          method: 'POST',
          headers,
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(DELIVERY_TIMEOUT_MS)]),
        });
        delivery.status = res.status;
        await res.arrayBuffer().catch(() => undefined);
      } catch (err) {
        delivery.error = (err as Error).message;
      }
    };
    const p = ch.tail.then(run);
    ch.tail = p;
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  channels(): ChannelInfo[] {
    return this.list.map((c) => {
      const info: ChannelInfo = {
        id: c.id,
        resourceId: c.resourceId,
        calendarId: c.calendarId,
        address: c.address,
        expiration: c.expiration,
        stopped: c.stopped,
      };
      if (c.token !== undefined) info.token = c.token;
      return info;
    });
  }

  /** Resolves once every notification sent so far (and any sent meanwhile) has been answered or has failed. */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) {
      await Promise.allSettled([...this.inflight]);
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  close(): void {
    this.abort.abort();
  }
}
