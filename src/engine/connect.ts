// Connecting an account: finish the OAuth consent, find or create the therapist by the verified
// identity (never by email), store the sealed credentials, and list the account's calendars.
import { exchangeCode, revokeGrant } from '../../connectors/google/oauth.js';
import { exchangeMicrosoftCode } from '../../connectors/microsoft/auth.js';
import type { CredentialStore } from '../../connectors/port.js';
import type { RemoteCalendar } from '../../connectors/port.js';
import { defaultPracticeSettings, type Config } from '../config.js';
import { InvalidInput } from '../errors.js';
import { NeedsReauth } from '../../connectors/errors.js';
import { resumeConnectionActions } from '../store/actions.js';
import { audit } from '../store/audit.js';
import { upsertCalendar } from '../store/calendars.js';
import { createConnection, credentialStoreFor, saveCredentials, setConnectionStatus } from '../store/connections.js';
import { createPractice, createTherapist, findTherapistByIdentity, type PlatformIdentity } from '../store/practices.js';
import type { CalendarRole } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { requestSync } from '../store/sync-queue.js';
import { googleOAuth, microsoftAuth, requireGoogle, type ConnectorFactory, type PlatformOptions } from './platforms.js';

export interface Connected {
  therapistId: string;
  connectionId: string;
  /** A new therapist (first sign-in) rather than a reconnection. */
  newTherapist: boolean;
  calendars: { id: string; name: string; role: CalendarRole }[];
}

/** The practice new therapists join: the only one in a solo installation, created on first use. */
async function defaultPractice(store: Store): Promise<string> {
  const existing = await store.db.selectFrom('practices').select('id').orderBy('created_at').limit(1).executeTakeFirst();
  if (existing) return existing.id;
  return (await createPractice(store.db, { name: 'My practice', settings: defaultPracticeSettings(), now: store.now() })).id;
}

/** Someone who is not a therapist here yet, without an invitation: nothing is stored for them. */
export class NotInvited extends InvalidInput {
  constructor() {
    super('this account is not a therapist of this practice yet: ask the practice for an invitation link (sessionkeeper invite)');
  }
}

export async function completeGoogleConnect(
  store: Store,
  config: Config,
  connectors: ConnectorFactory,
  code: string,
  /** A new therapist may join: the operator's own command, an invitation, or the very first sign-in. */
  opts: { allowNewTherapist: boolean } = { allowNewTherapist: true },
): Promise<Connected> {
  const account = await exchangeCode(googleOAuth(requireGoogle(config)), code);
  return finishConnect(store, connectors, {
    identity: { provider: 'google', subject: account.subject },
    accountSubject: account.subject,
    email: account.email,
    scopes: account.scopes,
    credentials: account.credentials,
    allowNewTherapist: opts.allowNewTherapist,
  });
}

/**
 * Finishes a Microsoft sign-in. MSAL writes its token cache while it exchanges the code, before the
 * connection exists, so the cache is held in memory and stored with the connection.
 */
export async function completeMicrosoftConnect(
  store: Store,
  config: Config,
  connectors: ConnectorFactory,
  code: string,
  opts: { allowNewTherapist: boolean; platform?: PlatformOptions } = { allowNewTherapist: true },
): Promise<Connected> {
  let cache: string | undefined;
  const holder: CredentialStore = {
    load: async () => cache,
    save: async (c) => {
      cache = c;
    },
    markNeedsReauth: async () => undefined,
  };
  const account = await exchangeMicrosoftCode(microsoftAuth(config, opts.platform), code, holder);
  if (!cache) throw new Error('MSAL kept no token cache for this sign-in');
  return finishConnect(store, connectors, {
    identity: { provider: 'microsoft', subject: account.oid, tenantId: account.tid },
    // MSAL finds the account in its cache by this id.
    accountSubject: account.homeAccountId,
    email: account.username,
    scopes: account.scopes,
    credentials: cache,
    allowNewTherapist: opts.allowNewTherapist,
  });
}

/** The therapist by their verified identity (new ones only when allowed), the connection, its calendars. */
async function finishConnect(
  store: Store,
  connectors: ConnectorFactory,
  input: { identity: PlatformIdentity; accountSubject: string; email: string | null; scopes: string[]; credentials: string; allowNewTherapist: boolean },
): Promise<Connected> {
  const now = store.now();
  const provider = input.identity.provider;
  let therapist = await findTherapistByIdentity(store.db, input.identity);
  const newTherapist = !therapist;
  if (!therapist && !input.allowNewTherapist) {
    const anyone = await store.db.selectFrom('therapists').select('id').limit(1).executeTakeFirst();
    if (anyone) throw new NotInvited();
  }
  if (!therapist) {
    const practiceId = await defaultPractice(store);
    const created = await createTherapist(store.db, { practiceId, identity: input.identity, ...(input.email ? { email: input.email } : {}), now });
    therapist = { id: created.id, practiceId };
  }
  const existing = await store.db
    .selectFrom('connections')
    .select('id')
    .where('therapist_id', '=', therapist.id)
    .where('provider', '=', provider)
    .where('account_subject', '=', input.accountSubject)
    .executeTakeFirst();
  let connectionId: string;
  if (existing) {
    connectionId = existing.id;
    const ref = { therapistId: therapist.id, connectionId };
    await saveCredentials(store.db, store.keyring, ref, input.credentials, now);
    await store.db.updateTable('connections').set({ scopes: input.scopes, account_email: input.email, updated_at: now }).where('id', '=', connectionId).execute();
    await setConnectionStatus(store.db, ref, 'ok', null, now);
    await resumeConnectionActions(store.db, { ...ref, now });
  } else {
    connectionId = (
      await createConnection(store.db, store.keyring, {
        therapistId: therapist.id,
        provider,
        accountSubject: input.accountSubject,
        ...(input.email ? { accountEmail: input.email } : {}),
        scopes: input.scopes,
        credentials: input.credentials,
        now,
      })
    ).id;
  }
  const calendars = await refreshCalendars(store, connectors, { id: connectionId, therapist_id: therapist.id, provider });
  // The first sync of each watched calendar (and after a reconnection, the changes missed meanwhile).
  for (const c of calendars) if (c.role !== 'ignored') await requestSync(store.db, { calendarId: c.id, reason: 'connect', now: store.now() });
  return { therapistId: therapist.id, connectionId, newTherapist, calendars };
}

/**
 * Lists the account's calendars into the store. New calendars: the primary one is "mixed" (sessions
 * found by the rules); the others start "ignored" until the therapist gives them a role.
 */
export async function refreshCalendars(
  store: Store,
  connectors: ConnectorFactory,
  connection: { id: string; therapist_id: string; provider: 'google' | 'microsoft' },
): Promise<{ id: string; name: string; role: CalendarRole }[]> {
  const connector = await connectors.calendarConnector(connection);
  const remote: RemoteCalendar[] = await connector.listCalendars();
  const out: { id: string; name: string; role: CalendarRole }[] = [];
  // A calendar shared for free/busy only is listed too: it can count as busy time, nothing more.
  for (const c of remote) {
    const row = await upsertCalendar(store.db, {
      therapistId: connection.therapist_id,
      connectionId: connection.id,
      providerCalendarId: c.id,
      name: c.name,
      timeZone: c.timeZone,
      role: c.primary ? 'mixed' : 'ignored',
      now: store.now(),
    });
    const stored = await store.db.selectFrom('calendars').select('role').where('id', '=', row.id).executeTakeFirstOrThrow();
    out.push({ id: row.id, name: c.name, role: stored.role });
  }
  await audit(store.db, { at: store.now(), therapistId: connection.therapist_id, actor: `therapist:${connection.therapist_id}`, action: 'read', subjectType: 'calendar_list', subjectId: connection.id, detail: { calendars: out.length } });
  return out;
}

/**
 * Disconnects an account: push stopped, the grant revoked at the platform, our copy of the
 * credentials deleted, the connection marked revoked. What was synced stays until it is deleted.
 */
export async function disconnectConnection(store: Store, config: Config, connectors: ConnectorFactory, connectionId: string, actor: string): Promise<{ channelsStopped: number }> {
  const conn = await store.db.selectFrom('connections').select(['id', 'therapist_id', 'provider', 'status']).where('id', '=', connectionId).executeTakeFirst();
  if (!conn) throw new InvalidInput(`no connection ${connectionId}`);
  const ref = { therapistId: conn.therapist_id, connectionId };
  let channelsStopped = 0;
  const channels = await store.db
    .selectFrom('push_channels as p')
    .innerJoin('calendars as c', 'c.id', 'p.calendar_id')
    .select(['p.id', 'p.channel_id', 'p.resource_id'])
    .where('c.connection_id', '=', connectionId)
    .where('p.status', '<>', 'stopped')
    .execute();
  // A grant that is already dead cannot stop its channels or be revoked: they lapse at the platform
  // by themselves, and disconnecting goes on.
  const connector = conn.status === 'ok' ? await connectors.calendarConnector(conn).catch((err: unknown) => (err instanceof NeedsReauth ? null : Promise.reject(err))) : null;
  for (const ch of channels) {
    if (connector) {
      try {
        await connector.stopChannel({ channelId: ch.channel_id, resourceId: ch.resource_id });
      } catch (err) {
        if (!(err instanceof NeedsReauth)) throw err;
      }
    }
    await store.db.updateTable('push_channels').set({ status: 'stopped', stopped_at: store.now() }).where('id', '=', ch.id).execute();
    channelsStopped++;
  }
  if (conn.provider === 'google' && config.google) {
    try {
      await revokeGrant(googleOAuth(config.google), credentialStoreFor(store.db, store.keyring, ref, () => store.now()));
    } catch (err) {
      if (!(err instanceof NeedsReauth)) throw err;
    }
  }
  const now = store.now();
  await store.db.updateTable('connections').set({ credentials: null, updated_at: now }).where('id', '=', connectionId).execute();
  await setConnectionStatus(store.db, ref, 'revoked', 'disconnected', now);
  await audit(store.db, { at: now, therapistId: conn.therapist_id, actor, action: 'disconnect', subjectType: 'connection', subjectId: connectionId, detail: { channelsStopped } });
  return { channelsStopped };
}

/**
 * Gives a calendar a role. Busy-only keeps intervals and nothing else, so the stored events lose
 * their sealed copies at once; any other change resyncs the calendar fully under its new role.
 */
export async function setCalendarRole(store: Store, calendarId: string, role: CalendarRole, actor: string): Promise<{ changed: boolean }> {
  const cal = await store.db.selectFrom('calendars').select(['id', 'role', 'therapist_id']).where('id', '=', calendarId).executeTakeFirst();
  if (!cal) throw new InvalidInput(`no calendar ${calendarId}`);
  if (cal.role === role) return { changed: false };
  const now = store.now();
  await store.transaction(async (trx) => {
    await trx.updateTable('calendars').set({ role, updated_at: now }).where('id', '=', calendarId).execute();
    if (role === 'busy_only') await trx.updateTable('event_snapshots').set({ payload: null }).where('calendar_id', '=', calendarId).execute();
    if (role !== 'ignored') await requestSync(trx, { calendarId, reason: 'role', full: true, now });
    await audit(trx, { at: now, therapistId: cal.therapist_id, actor, action: 'update', subjectType: 'calendar_role', subjectId: calendarId, detail: { from: cal.role, to: role } });
  });
  return { changed: true };
}
