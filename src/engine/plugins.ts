// The action plug-ins the product runs, by kind. Later capabilities (follow-ups) add theirs here; the outbox and the facts know them only through this list.
import { followUpClosePlugin, followUpOpenPlugin, followUpUpdatePlugin } from './followups.js';
import { inviteLinePlugin } from './invite-line.js';
import { mailSendPlugin } from './mail.js';
import type { ActionPlugin } from './outbox.js';
import { clientReminderPlugin } from './reminders.js';
import { tagSessionPlugin } from './tagging.js';
import { taskClosePlugin, taskOpenPlugin, taskUpdatePlugin } from './tasks.js';
import { eventCreatePlugin, eventDeletePlugin, eventPatchPlugin, sessionRemindersPlugin } from './writes.js';

export const defaultPlugins: readonly ActionPlugin[] = [
  tagSessionPlugin,
  eventCreatePlugin,
  eventPatchPlugin,
  eventDeletePlugin,
  sessionRemindersPlugin,
  taskOpenPlugin,
  taskUpdatePlugin,
  taskClosePlugin,
  mailSendPlugin,
  clientReminderPlugin,
  followUpOpenPlugin,
  followUpUpdatePlugin,
  followUpClosePlugin,
  inviteLinePlugin,
] as ActionPlugin[];
