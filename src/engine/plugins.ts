// The action plug-ins the product runs, by kind. Later capabilities (platform writes, reminders,
// follow-ups) add theirs here; the outbox and the facts know them only through this list.
import type { ActionPlugin } from './outbox.js';
import { tagSessionPlugin } from './tagging.js';

export const defaultPlugins: readonly ActionPlugin[] = [tagSessionPlugin as ActionPlugin];
