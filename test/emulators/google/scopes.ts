// Which OAuth scopes allow which method: copied from the `scopes` list of each method in the discovery documents
// (/work/shared/refs/google-calendar-v3-discovery.json revision 20251028, google-tasks-v1-discovery.json revision
// 20240630, google-gmail-v1-discovery.json revision 20240520).

export const SCOPE_PREFIX = 'https://www.googleapis.com/auth/';

/**
 * Method id → the scopes any one of which allows it: without SCOPE_PREFIX, or whole URLs (Gmail's
 * "https://mail.google.com/"). Calendar ids lack the "calendar." prefix of the discovery document; Tasks and
 * Gmail ids are the documents' own.
 */
export const METHOD_SCOPES: Readonly<Record<string, readonly string[]>> = {
  'calendarList.list': ['calendar', 'calendar.calendarlist', 'calendar.calendarlist.readonly', 'calendar.readonly'],
  'calendarList.get': ['calendar', 'calendar.app.created', 'calendar.calendarlist', 'calendar.calendarlist.readonly', 'calendar.readonly'],
  'events.list': ['calendar', 'calendar.app.created', 'calendar.events', 'calendar.events.freebusy', 'calendar.events.owned', 'calendar.events.owned.readonly', 'calendar.events.public.readonly', 'calendar.events.readonly', 'calendar.readonly'],
  'events.get': ['calendar', 'calendar.app.created', 'calendar.events', 'calendar.events.freebusy', 'calendar.events.owned', 'calendar.events.owned.readonly', 'calendar.events.public.readonly', 'calendar.events.readonly', 'calendar.readonly'],
  'events.insert': ['calendar', 'calendar.app.created', 'calendar.events', 'calendar.events.owned'],
  'events.patch': ['calendar', 'calendar.app.created', 'calendar.events', 'calendar.events.owned'],
  'events.update': ['calendar', 'calendar.app.created', 'calendar.events', 'calendar.events.owned'],
  'events.delete': ['calendar', 'calendar.app.created', 'calendar.events', 'calendar.events.owned'],
  'events.move': ['calendar', 'calendar.events', 'calendar.events.owned'],
  'events.watch': ['calendar', 'calendar.app.created', 'calendar.events', 'calendar.events.freebusy', 'calendar.events.owned', 'calendar.events.owned.readonly', 'calendar.events.public.readonly', 'calendar.events.readonly', 'calendar.readonly'],
  'events.instances': ['calendar', 'calendar.app.created', 'calendar.events', 'calendar.events.freebusy', 'calendar.events.owned', 'calendar.events.owned.readonly', 'calendar.events.public.readonly', 'calendar.events.readonly', 'calendar.readonly'],
  'channels.stop': ['calendar', 'calendar.acls', 'calendar.acls.readonly', 'calendar.app.created', 'calendar.calendarlist', 'calendar.calendarlist.readonly', 'calendar.events', 'calendar.events.freebusy', 'calendar.events.owned', 'calendar.events.owned.readonly', 'calendar.events.public.readonly', 'calendar.events.readonly', 'calendar.readonly', 'calendar.settings.readonly'],
  'freebusy.query': ['calendar', 'calendar.events.freebusy', 'calendar.freebusy', 'calendar.readonly'],
  'tasks.tasklists.list': ['tasks', 'tasks.readonly'],
  'tasks.tasklists.get': ['tasks', 'tasks.readonly'],
  'tasks.tasklists.insert': ['tasks'],
  'tasks.tasklists.patch': ['tasks'],
  'tasks.tasklists.update': ['tasks'],
  'tasks.tasklists.delete': ['tasks'],
  'tasks.tasks.list': ['tasks', 'tasks.readonly'],
  'tasks.tasks.get': ['tasks', 'tasks.readonly'],
  'tasks.tasks.insert': ['tasks'],
  'tasks.tasks.patch': ['tasks'],
  'tasks.tasks.update': ['tasks'],
  'tasks.tasks.delete': ['tasks'],
  'tasks.tasks.clear': ['tasks'],
  'tasks.tasks.move': ['tasks'],
  'gmail.users.messages.send': ['https://mail.google.com/', 'gmail.addons.current.action.compose', 'gmail.compose', 'gmail.modify', 'gmail.send'],
};

/** Scopes as granted: short names ('calendar.events') are widened to the full URL; 'openid', 'email', 'profile' stay. */
export function normalizeScope(scope: string): string {
  if (scope === 'openid' || scope === 'email' || scope === 'profile' || scope.includes('://')) return scope;
  return SCOPE_PREFIX + scope;
}

export function scopeAllows(granted: ReadonlySet<string>, methodId: string): boolean {
  const allowed = METHOD_SCOPES[methodId];
  if (!allowed) return false;
  return allowed.some((s) => granted.has(s.includes('://') ? s : SCOPE_PREFIX + s));
}
