// Change-notification subscriptions of the Microsoft emulator: the validation handshake (…-notificationurl-validation.md),
// renewal, change notifications (…-delivery-webhooks.md) and lifecycle notifications (…-lifecycle-events.md).
import crypto from 'node:crypto';
import { DateTime } from 'luxon';
import type { Clock } from '../../../src/clock.js';
import * as E from './errors.js';
import type { Json } from './events.js';
import type { Change, ChangeType } from './store.js';
import { formatTimestamp } from './timezones.js';

export interface SubscriptionInfo {
  id: string;
  resource: string;
  notificationUrl: string;
  lifecycleNotificationUrl?: string;
  clientState?: string;
  expirationDateTime: string;
  removed: boolean;
}

export type LifecycleEvent = 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed';

/** One POST to a notification or lifecycle URL and its answer. */
export interface Delivery {
  subscriptionId: string;
  url: string;
  body: unknown;
  /** HTTP status answered, or 'error' (no answer within the timeout, connection refused); 0 while in flight. */
  status: number | 'error';
  /** Emulator clock when it was sent. */
  at: string;
}

interface Subscription {
  id: string;
  oid: string;
  tid: string;
  resource: string;
  /** The calendar whose events it watches. */
  calendarId: string;
  changeTypes: Set<ChangeType>;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl?: string;
  clientState?: string;
  expiration: DateTime;
  latestSupportedTlsVersion: string;
  removed: boolean;
  /** After reauthorizationRequired: change notifications stop until PATCH or /reauthorize (lifecycle page). */
  paused: boolean;
  tail: Promise<void>;
}

/** Max subscription lifetime for Outlook events: 10,080 minutes (API-NOTES; subscription resource). */
const MAX_LIFETIME_MINUTES = 10080;
const CHANGE_TYPES: readonly ChangeType[] = ['created', 'updated', 'deleted'];

export interface HubOptions {
  clientId: string;
  /** Each change is POSTed this many times (real Graph often sends ~3 per change). */
  duplicates: number;
  /** The handshake's limit (real time): 10 s in the validation page. */
  validationTimeoutMs: number;
  /** Graph's notification HTTP client times out after 3 s (webhooks page, "Throttling"). */
  notificationTimeoutMs: number;
  /** Resolves the subscription's resource to one of the user's calendars; undefined when unknown. */
  resolveResource: (oid: string, resource: string) => { calendarId: string } | 'unsupported' | undefined;
}

function parseExpiration(v: unknown): DateTime | undefined {
  if (typeof v !== 'string') return undefined;
  const d = DateTime.fromISO(v.replace(/(\.\d{3})\d+/, '$1'), { setZone: true });
  return d.isValid ? d.toUTC() : undefined;
}

export class SubscriptionHub {
  private readonly list: Subscription[] = [];
  readonly deliveries: Delivery[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly clock: Clock;
  private readonly opts: HubOptions;

  constructor(clock: Clock, opts: HubOptions) {
    this.clock = clock;
    this.opts = opts;
  }

  private checkExpiration(v: unknown, op: 'Create' | 'Update'): DateTime {
    const exp = parseExpiration(v);
    const wrap = (m: string): E.GraphApiError => new E.GraphApiError(400, 'ExtensionError', `Operation: ${op}; Exception: [Status Code: BadRequest; Reason: ${m}]`);
    if (!exp) throw wrap("The 'expirationDateTime' property is required and must be a valid date.");
    const now = this.clock.now().toUTC();
    if (exp <= now) throw wrap('Subscription expiration must be in the future.');
    if (exp.toMillis() - now.toMillis() > MAX_LIFETIME_MINUTES * 60_000) {
      throw wrap(`Subscription expiration can only be ${MAX_LIFETIME_MINUTES} minutes in the future.`);
    }
    return exp;
  }

  /** POST /subscriptions: validates, runs the handshake on notificationUrl (and lifecycleNotificationUrl), then creates. */
  async create(user: { oid: string; tid: string }, body: Json): Promise<Json> {
    const changeType = typeof body['changeType'] === 'string' ? body['changeType'] : '';
    const types = changeType.split(',').map((s) => s.trim()).filter(Boolean);
    if (types.length === 0 || types.some((t) => !CHANGE_TYPES.includes(t as ChangeType))) {
      throw E.subscriptionInvalid(`Invalid value for changeType: '${changeType}'. Allowed values are created, updated, deleted.`);
    }
    const resource = typeof body['resource'] === 'string' ? body['resource'] : '';
    const target = this.opts.resolveResource(user.oid, resource);
    if (target === 'unsupported' || (target === undefined && resource === '')) throw E.subscriptionInvalid(`The resource '${resource}' is not supported.`);
    if (target === undefined) throw E.itemNotFound();
    const notificationUrl = this.url(body['notificationUrl'], 'notificationUrl');
    const lifecycleNotificationUrl = body['lifecycleNotificationUrl'] === undefined || body['lifecycleNotificationUrl'] === null ? undefined : this.url(body['lifecycleNotificationUrl'], 'lifecycleNotificationUrl');
    const expiration = this.checkExpiration(body['expirationDateTime'], 'Create');
    let clientState: string | undefined;
    if (body['clientState'] !== undefined && body['clientState'] !== null) {
      clientState = String(body['clientState']);
      if (clientState.length > 128) throw E.subscriptionInvalid('The clientState value exceeds the maximum length of 128 characters.');
    }
    await this.validate(notificationUrl);
    if (lifecycleNotificationUrl !== undefined) await this.validate(lifecycleNotificationUrl);
    const sub: Subscription = {
      id: crypto.randomUUID(),
      oid: user.oid,
      tid: user.tid,
      resource,
      calendarId: target.calendarId,
      changeTypes: new Set(types as ChangeType[]),
      changeType: types.join(','),
      notificationUrl,
      expiration,
      latestSupportedTlsVersion: typeof body['latestSupportedTlsVersion'] === 'string' ? body['latestSupportedTlsVersion'] : 'v1_2',
      removed: false,
      paused: false,
      tail: Promise.resolve(),
    };
    if (lifecycleNotificationUrl !== undefined) sub.lifecycleNotificationUrl = lifecycleNotificationUrl;
    if (clientState !== undefined) sub.clientState = clientState;
    this.list.push(sub);
    return this.render(sub);
  }

  private url(v: unknown, name: string): string {
    try {
      const u = new URL(typeof v === 'string' ? v : '');
      // Graph requires https; the emulator also takes http so tests can listen on a plain local port.
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('scheme');
      return u.toString();
    } catch {
      throw E.subscriptionInvalid(`The ${name} '${String(v)}' is not a valid absolute https URL.`);
    }
  }

  /** The handshake: POST url?validationToken=…; 200, text/plain, the decoded token as body, within the time limit. */
  private async validate(url: string): Promise<void> {
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${crypto.randomUUID()}`;
    const target = new URL(url);
    target.searchParams.set('validationToken', token);
    let res: Response;
    let text: string;
    const limit = this.deadline(this.opts.validationTimeoutMs);
    try {
      res = await fetch(target, { method: 'POST', headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: '', signal: limit.signal });
      text = await res.text();
    } catch (err) {
      throw E.validationFailed(`Notification endpoint must respond with 200 OK to validation request. (${(err as Error).message})`);
    } finally {
      limit.done();
    }
    if (res.status !== 200) throw E.validationFailed(`Notification endpoint must respond with 200 OK to validation request, not ${res.status}.`);
    if (!(res.headers.get('content-type') ?? '').toLowerCase().startsWith('text/plain')) {
      throw E.validationFailed('The response to the validation request must have the content type text/plain.');
    }
    if (text !== token) throw E.validationFailed('Response must exactly match validationToken query parameter.');
  }

  private live(s: Subscription): boolean {
    return !s.removed && s.expiration > this.clock.now();
  }

  private find(oid: string, id: string): Subscription {
    const s = this.list.find((x) => x.id === id && x.oid === oid);
    if (!s || !this.live(s)) throw E.subscriptionNotFound();
    return s;
  }

  /** The subscription resource as POST/GET/PATCH return it (subscription-post-subscriptions.md "Response"). */
  render(s: Subscription): Json {
    return {
      '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity',
      id: s.id,
      resource: s.resource,
      applicationId: this.opts.clientId,
      changeType: s.changeType,
      clientState: s.clientState ?? null,
      notificationUrl: s.notificationUrl,
      notificationQueryOptions: null,
      lifecycleNotificationUrl: s.lifecycleNotificationUrl ?? null,
      expirationDateTime: formatTimestamp(s.expiration),
      creatorId: s.oid,
      includeResourceData: null,
      latestSupportedTlsVersion: s.latestSupportedTlsVersion,
      encryptionCertificate: null,
      encryptionCertificateId: null,
      notificationUrlAppId: null,
      notificationContentType: 'application/json',
    };
  }

  listFor(oid: string): Json[] {
    return this.list.filter((s) => s.oid === oid && this.live(s)).map((s) => {
      const r = this.render(s);
      delete r['@odata.context'];
      return r;
    });
  }

  get(oid: string, id: string): Json {
    return this.render(this.find(oid, id));
  }

  /** PATCH /subscriptions/{id} {expirationDateTime}: renews (and reauthorizes) a live subscription. */
  patch(oid: string, id: string, body: Json): Json {
    const s = this.find(oid, id);
    for (const k of Object.keys(body)) {
      if (k !== 'expirationDateTime' && k !== 'notificationUrl' && !k.startsWith('@odata.')) {
        throw new E.GraphApiError(400, 'ExtensionError', `Operation: Update; Exception: [Status Code: BadRequest; Reason: The property '${k}' cannot be updated.]`);
      }
    }
    if (body['expirationDateTime'] !== undefined) s.expiration = this.checkExpiration(body['expirationDateTime'], 'Update');
    if (typeof body['notificationUrl'] === 'string') s.notificationUrl = this.url(body['notificationUrl'], 'notificationUrl');
    s.paused = false;
    return this.render(s);
  }

  reauthorize(oid: string, id: string): void {
    this.find(oid, id).paused = false;
  }

  delete(oid: string, id: string): void {
    this.find(oid, id).removed = true;
  }

  /** After each change of an event: a notification to every live subscription watching its calendar. */
  notify(change: Change, tenantId: string): void {
    for (const s of this.list) {
      if (s.oid !== change.oid || s.calendarId !== change.calendarId || !this.live(s) || s.paused) continue;
      if (!s.changeTypes.has(change.changeType)) continue;
      const resource = `Users/${change.oid}/Events/${change.eventId}`;
      const item: Json = {
        id: crypto.randomBytes(10).toString('base64url'),
        subscriptionId: s.id,
        subscriptionExpirationDateTime: formatTimestamp(s.expiration),
        clientState: s.clientState ?? null,
        changeType: change.changeType,
        resource,
        tenantId,
        resourceData: {
          '@odata.type': '#Microsoft.Graph.Event',
          '@odata.id': resource,
          '@odata.etag': `W/"${change.changeKey}"`,
          id: change.eventId,
        },
      };
      for (let i = 0; i < Math.max(1, this.opts.duplicates); i++) this.send(s, s.notificationUrl, { value: [item] });
    }
  }

  /** A lifecycle notification to the subscription's lifecycleNotificationUrl (lifecycle page, "Structure"). */
  async lifecycle(id: string, event: LifecycleEvent): Promise<void> {
    const s = this.list.find((x) => x.id === id);
    if (!s) throw new Error(`Microsoft emulator: unknown subscription ${id}`);
    if (event === 'reauthorizationRequired') s.paused = true;
    if (event === 'subscriptionRemoved') s.removed = true;
    if (s.lifecycleNotificationUrl === undefined) return;
    const body = {
      value: [
        {
          subscriptionId: s.id,
          subscriptionExpirationDateTime: formatTimestamp(s.expiration),
          tenantId: s.tid,
          clientState: s.clientState ?? null,
          lifecycleEvent: event,
        },
      ],
    };
    await this.send(s, s.lifecycleNotificationUrl, body);
  }

  /**
   * A signal that aborts after `ms` or when the hub closes. Not AbortSignal.any([…, AbortSignal.timeout(ms)]): Node's
   * timer holds its timeout signal only weakly, so after a garbage collection it may never fire and a hanging endpoint
   * hangs the request (public undici/node issue threads on signals lost to GC); here the timer holds the controller.
   */
  private deadline(ms: number): { signal: AbortSignal; done(): void } {
    const ctl = new AbortController();
    const onClose = (): void => ctl.abort(this.abort.signal.reason);
    const timer = setTimeout(() => ctl.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
    if (this.abort.signal.aborted) onClose();
    else this.abort.signal.addEventListener('abort', onClose, { once: true });
    return {
      signal: ctl.signal,
      done: () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', onClose);
      },
    };
  }

  private send(s: Subscription, url: string, body: Json): Promise<void> {
    if (this.abort.signal.aborted) return Promise.resolve();
    const delivery: Delivery = { subscriptionId: s.id, url, body, status: 0, at: this.clock.now().toUTC().toISO() ?? '' };
    this.deliveries.push(delivery);
    const run = async (): Promise<void> => {
      await new Promise<void>((r) => setTimeout(r, 2)); // after the response of the request that caused it
      const limit = this.deadline(this.opts.notificationTimeoutMs);
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: JSON.stringify(body), signal: limit.signal });
        delivery.status = res.status;
        await res.arrayBuffer().catch(() => undefined);
      } catch {
        delivery.status = 'error';
      } finally {
        limit.done();
      }
    };
    const p = s.tail.then(run);
    s.tail = p;
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  infos(): SubscriptionInfo[] {
    return this.list.map((s) => {
      const info: SubscriptionInfo = {
        id: s.id,
        resource: s.resource,
        notificationUrl: s.notificationUrl,
        expirationDateTime: formatTimestamp(s.expiration),
        removed: s.removed,
      };
      if (s.lifecycleNotificationUrl !== undefined) info.lifecycleNotificationUrl = s.lifecycleNotificationUrl;
      if (s.clientState !== undefined) info.clientState = s.clientState;
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
