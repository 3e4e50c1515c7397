// Practices and therapists: settings are checked on the way in (nothing stored when refused) and on
// the way out; therapists are found by their verified identity, never by email.
import { expect, test } from 'vitest';
import { InvalidInput } from '../../src/errors.js';
import { createPractice, createTherapist, findTherapistByIdentity, getPracticeSettings, updatePracticeSettings } from '../../src/store/practices.js';
import { forEachBackend } from '../helpers/db.js';

forEachBackend('practices', (t) => {
  test('invalid settings are refused whole and the stored ones stay; a change is audited', async () => {
    const now = t.store.now();
    await expect(createPractice(t.store.db, { name: 'Bad', settings: { bufferMinutes: -5 }, now })).rejects.toThrow(InvalidInput);
    expect(await t.store.db.selectFrom('practices').select('name').where('name', '=', 'Bad').execute()).toEqual([]);

    const p = await createPractice(t.store.db, { name: 'Brightpath', settings: { timeZone: 'Europe/London' }, now });
    const err = await updatePracticeSettings(t.store.db, { practiceId: p.id, settings: { timeZone: 'Europe/London', lateCancelHours: 500 }, actor: 'operator', therapistId: null, now }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).issues).toEqual([{ path: 'lateCancelHours', message: 'must be at most 168 hours (a week)' }]);
    expect((await getPracticeSettings(t.store.db, p.id)).lateCancelHours).toBe(24);

    await updatePracticeSettings(t.store.db, { practiceId: p.id, settings: { timeZone: 'Europe/London', lateCancelHours: 48 }, actor: 'operator', therapistId: null, now });
    expect((await getPracticeSettings(t.store.db, p.id)).lateCancelHours).toBe(48);
    const audit = await t.store.db.selectFrom('audit_log').select(['action', 'subject_type', 'subject_id', 'actor']).where('subject_id', '=', p.id).execute();
    expect(audit).toEqual([{ action: 'update', subject_type: 'practice_settings', subject_id: p.id, actor: 'operator' }]);
  });

  test('therapists are keyed on Google sub, or Microsoft oid within its tenant', async () => {
    const now = t.store.now();
    const p = await createPractice(t.store.db, { name: 'Ids', now });
    const g = await createTherapist(t.store.db, { practiceId: p.id, identity: { provider: 'google', subject: '1080' }, email: 'a@brightpath.example', now });
    const m = await createTherapist(t.store.db, { practiceId: p.id, identity: { provider: 'microsoft', subject: 'oid-1', tenantId: 'tid-A' }, now });
    expect(await findTherapistByIdentity(t.store.db, { provider: 'google', subject: '1080' })).toEqual({ id: g.id, practiceId: p.id });
    expect(await findTherapistByIdentity(t.store.db, { provider: 'microsoft', subject: 'oid-1', tenantId: 'tid-A' })).toEqual({ id: m.id, practiceId: p.id });
    // The same oid in another tenant is another person.
    expect(await findTherapistByIdentity(t.store.db, { provider: 'microsoft', subject: 'oid-1', tenantId: 'tid-B' })).toBeUndefined();
    // A Microsoft identity without its tenant cannot be stored.
    await expect(createTherapist(t.store.db, { practiceId: p.id, identity: { provider: 'microsoft', subject: 'oid-2' }, now })).rejects.toThrow(/check constraint/);
  });
});
