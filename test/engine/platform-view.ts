// What a test reads at each platform's emulator, as the therapist and the client would see it: the
// events we made (attendees, video link, reminders), invitations, tasks, sent mail; one view per platform.
import { GOOGLE_SCOPES } from '../../connectors/google/oauth.js';
import type { GoogleEmulator } from '../emulators/google/server.js';
import type { GraphEmulator } from '../emulators/microsoft/server.js';
import type { World } from './world.js';

export interface Me {
  therapistId: string;
  connectionId: string;
  calendarId: string;
  /** The platform's id of the account (Google sub, Graph oid) and of its calendar. */
  account: string;
  providerCalendarId: string;
}

/** What a test reads at the platform, as the therapist and the client would see it. */
export interface PlatformView {
  /** Events created at the platform by requests that took effect (answered 2xx, or the answer lost after the write). */
  createdEvents(me: Me): number;
  event(me: Me, eventId: string): { attendees: string[]; meetingUrl: string | null; summary: string; reminders: number[] } | undefined;
  /** Invitations and updates the client would receive by email for events we wrote. */
  clientMail(): number;
  tasks(me: Me, listId: string): { id: string; title: string; notes: string; status: 'open' | 'completed' | 'deleted' }[];
  completeTask(me: Me, listId: string, taskId: string): void;
  deleteTask(me: Me, listId: string, taskId: string): void;
  sent(): { subject: string; to: string[]; html: string; attachments: { filename: string; contentType: string; content: string }[] }[];
  paths: { eventInsert: RegExp; taskInsert: RegExp; send: RegExp; tasks: RegExp };
  /**
   * Connects therapist n with a grant that lacks the tasks permission. Google: the therapist unticks
   * Tasks on the consent screen. Graph consents to all or nothing, so the permission is taken away
   * after (an administrator's policy): To Do answers 403.
   */
  connectWithoutTasks(world: World, n: number): Promise<{ therapistId: string; connectionId: string; calendarId: string }>;
  /** How the connection's status reason names what is missing. */
  missingTasks: RegExp;
}

export function googleView(emu: GoogleEmulator): PlatformView {
  const eventInsert = /^\/calendar\/v3\/calendars\/[^/]+\/events$/;
  return {
    createdEvents: () => emu.requests.filter((r) => r.method === 'POST' && eventInsert.test(r.path) && ((r.status >= 200 && r.status < 300) || r.dropped === 'after')).length,
    event(me, eventId) {
      const e = emu.getEvent(me.providerCalendarId, eventId);
      if (!e || e['status'] === 'cancelled') return undefined;
      const conf = e['conferenceData'] as { entryPoints?: { entryPointType: string; uri: string }[] } | undefined;
      const reminders = e['reminders'] as { overrides?: { minutes: number }[] } | undefined;
      return {
        attendees: ((e['attendees'] as { email: string }[] | undefined) ?? []).map((a) => a.email),
        meetingUrl: (e['hangoutLink'] as string | undefined) ?? conf?.entryPoints?.find((p) => p.entryPointType === 'video')?.uri ?? null,
        summary: e['summary'] as string,
        reminders: (reminders?.overrides ?? []).map((o) => o.minutes),
      };
    },
    // Google mails guests only for writes with sendUpdates=all (or externalOnly).
    clientMail: () => emu.requests.filter((r) => (r.sendUpdates === 'all' || r.sendUpdates === 'externalOnly') && ((r.status >= 200 && r.status < 300) || r.dropped === 'after')).length,
    tasks: (me, listId) =>
      emu.tasks(me.account, listId).map((t) => ({
        id: t['id'] as string,
        title: t['title'] as string,
        notes: (t['notes'] as string | undefined) ?? '',
        status: t['deleted'] ? 'deleted' : t['status'] === 'completed' ? 'completed' : 'open',
      })),
    completeTask: (me, listId, taskId) => void emu.completeTask(me.account, listId, taskId),
    deleteTask: (me, listId, taskId) => emu.deleteTask(me.account, listId, taskId),
    sent: () =>
      emu.sentMessages().map((m) => ({
        subject: m.subject ?? '',
        to: m.to.map((a) => a.address),
        html: m.html ?? '',
        attachments: m.attachments.map((a) => ({ filename: a.filename ?? '', contentType: a.contentType, content: a.content.toString('utf8') })),
      })),
    paths: { eventInsert, taskInsert: /^\/tasks\/v1\/lists\/[^/]+\/tasks$/, send: /^\/gmail\/v1\/users\/[^/]+\/messages\/send$/, tasks: /^\/tasks\/v1\// },
    // Google's consent screen lets a user untick a scope, but the product refuses such a consent
    // (connect.ts); a grant without Tasks is one made before the product asked for it.
    async connectWithoutTasks(world, n) {
      const c = await world.connect(n);
      await world.store.db.updateTable('connections').set({ scopes: GOOGLE_SCOPES.filter((s) => !s.endsWith('/tasks')) }).where('id', '=', c.connectionId).execute();
      return c;
    },
    missingTasks: /without permission for Google Tasks .*connect it again/,
  };
}

export function graphView(emu: GraphEmulator): PlatformView {
  const eventInsert = /^\/v1\.0\/(me|users\/[^/]+)\/(calendars\/[^/]+\/)?events$/;
  return {
    createdEvents: () => emu.attendeeUpdates('invitation').length,
    event(me, eventId) {
      const e = emu.getEvent(me.account, eventId);
      if (!e || e['isCancelled']) return undefined;
      return {
        attendees: ((e['attendees'] as { emailAddress: { address: string } }[] | undefined) ?? []).map((a) => a.emailAddress.address),
        meetingUrl: (e['onlineMeeting'] as { joinUrl?: string } | null | undefined)?.joinUrl ?? null,
        summary: e['subject'] as string,
        reminders: e['isReminderOn'] ? [e['reminderMinutesBeforeStart'] as number] : [],
      };
    },
    // Graph mails an organizer's attendees about every write (API-NOTES): invitations, updates, cancellations.
    clientMail: () => emu.attendeeUpdates().length,
    tasks: (me, listId) =>
      emu.todo.tasks(me.account, listId).map((t) => ({
        id: t['id'] as string,
        title: t['title'] as string,
        notes: ((t['body'] as { content?: string } | undefined)?.content as string | undefined) ?? '',
        status: t['status'] === 'completed' ? 'completed' : 'open',
      })),
    completeTask: (me, listId, taskId) => void emu.todo.completeTask(me.account, listId, taskId),
    deleteTask: (me, listId, taskId) => emu.todo.deleteTask(me.account, listId, taskId),
    sent: () =>
      emu.sentMail().map((m) => ({
        subject: m.subject,
        to: m.toRecipients.map((a) => a.address),
        html: m.body.content,
        attachments: m.attachments.map((a) => ({ filename: a.name, contentType: a.contentType, content: a.content.toString('utf8') })),
      })),
    paths: { eventInsert, taskInsert: /^\/v1\.0\/(me|users\/[^/]+)\/todo\/lists\/[^/]+\/tasks$/, send: /^\/v1\.0\/(me|users\/[^/]+)\/sendMail$/, tasks: /^\/v1\.0\/(me|users\/[^/]+)\/todo\// },
    async connectWithoutTasks(world, n) {
      const c = await world.connect(n);
      const oid = `0000000${n}-1111-2222-3333-444444444444`;
      // The next To Do request (the test makes it theirs) is refused.
      emu.faults.add({ match: { path: new RegExp(`^/v1\\.0/(me|users/${oid})/todo/`) }, fault: { status: 403 } });
      return c;
    },
    missingTasks: /Tasks\.ReadWrite is missing; the therapist must connect again/,
  };
}

/** A connected therapist as the views need them: our ids, and the platform's account and calendar. */
export async function meOf(w: World, c: { therapistId: string; connectionId: string; calendarId: string }): Promise<Me> {
  const cal = await w.store.db.selectFrom('calendars as c').innerJoin('connections as k', 'k.id', 'c.connection_id').select(['c.provider_calendar_id', 'k.account_subject']).where('c.id', '=', c.calendarId).executeTakeFirstOrThrow();
  // Graph: the emulator knows a user by oid; MSAL's account id is "oid.tid".
  return { ...c, account: cal.account_subject.split('.')[0]!, providerCalendarId: cal.provider_calendar_id };
}

export function viewOf(world: World): PlatformView {
  return world.provider === 'google' ? googleView(world.emu as unknown as GoogleEmulator) : graphView(world.emu as unknown as GraphEmulator);
}
