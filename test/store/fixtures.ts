// Small builders of stored rows for store tests: a practice, a therapist with a connection, a calendar.
import { upsertCalendar } from '../../src/store/calendars.js';
import { createConnection } from '../../src/store/connections.js';
import { createPractice, createTherapist } from '../../src/store/practices.js';
import type { Store } from '../../src/store/store.js';

export async function seedTherapist(store: Store, subject: string, credentials?: string) {
  const now = store.now();
  const practice = await createPractice(store.db, { name: `Practice ${subject}`, now });
  const t = await createTherapist(store.db, { practiceId: practice.id, identity: { provider: 'google', subject }, now });
  const c = await createConnection(store.db, store.keyring, {
    therapistId: t.id,
    provider: 'google',
    accountSubject: subject,
    ...(credentials === undefined ? {} : { credentials }),
    now,
  });
  return { practiceId: practice.id, therapistId: t.id, connectionId: c.id };
}

export async function seedCalendar(store: Store, subject: string, providerCalendarId = 'primary') {
  const who = await seedTherapist(store, subject);
  const cal = await upsertCalendar(store.db, { therapistId: who.therapistId, connectionId: who.connectionId, providerCalendarId, now: store.now() });
  return { ...who, calendarId: cal.id };
}
