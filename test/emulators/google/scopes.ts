// Which OAuth scopes allow which Calendar method: copied from the `scopes` list of each method in
// the Calendar v3 discovery document (/work/shared/refs/google-calendar-v3-discovery.json, revision 20251028).

export const SCOPE_PREFIX = 'https://www.googleapis.com/auth/';

/** Method id → the scopes (without SCOPE_PREFIX) any one of which allows it. */
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
};

/** Scopes as granted: short names ('calendar.events') are widened to the full URL; 'openid', 'email', 'profile' stay. */
export function normalizeScope(scope: string): string {
  if (scope === 'openid' || scope === 'email' || scope === 'profile' || scope.includes('://')) return scope;
  return SCOPE_PREFIX + scope;
}

export function scopeAllows(granted: ReadonlySet<string>, methodId: string): boolean {
  const allowed = METHOD_SCOPES[methodId];
  if (!allowed) return false;
  return allowed.some((s) => granted.has(SCOPE_PREFIX + s));
}
