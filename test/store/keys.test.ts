// Key rotation: every sealed value (credentials, client names, identities, event payloads, actions'
// personal details) moves to the new key in one go, still opens, and clients are still found by email
// afterwards.
import { expect, test } from 'vitest';
import { generateKey, Keyring, SecretError } from '../../src/secrets.js';
import { createClient, findClientByIdentity } from '../../src/store/clients.js';
import { loadCredentials } from '../../src/store/connections.js';
import { submitAction } from '../../src/engine/outbox.js';
import { rotateKeys, verifyKeys } from '../../src/store/keys.js';
import { listSnapshots, upsertSnapshots } from '../../src/store/snapshots.js';
import { forEachBackend } from '../helpers/db.js';
import { seedCalendar, seedTherapist } from './fixtures.js';

forEachBackend('key rotation', (t) => {
  test('after rotation every secret opens with the new key alone, and lookups by email still match', async () => {
    const store = t.store;
    const oldKeyring = store.keyring;
    const now = store.now();
    const who = await seedTherapist(store, 'rot', '{"refresh_token":"1//rot"}');
    const { calendarId, therapistId: calTherapist } = await seedCalendar(store, 'rot-cal');
    await upsertSnapshots(store.db, oldKeyring, calendarId, [
      { eventId: 'e1', status: 'confirmed', startAt: now, endAt: now, payload: { title: 'Session - J. Doe' } },
      { eventId: 'e2', status: 'deleted', payload: null },
    ], now);
    const client = await createClient(store.db, oldKeyring, {
      therapistId: who.therapistId,
      displayName: 'Jane Doe',
      identities: [{ kind: 'email', value: 'Jane.Doe+therapy@Example.com' }, { kind: 'title', value: 'Jane D' }],
      now,
    });

    // An action's personal details (a message to send), sealed apart from its payload.
    await submitAction(store, who.therapistId, { kind: 'mail.send', key: 'rot-mail', factKey: null, connectionId: who.connectionId, payload: {}, secret: { to: [{ email: 'jane.doe@example.com' }], subject: 'Your appointment' } });

    const next = oldKeyring.withCurrent(generateKey());
    const report = await rotateKeys(store.db, next, now);
    expect(report).toEqual({
      keyId: next.current.id,
      resealed: { 'connections.credentials': 1, 'clients.display_name': 1, 'client_identities.value': 2, 'event_snapshots.payload': 1, 'clients.ledger_key': 0, 'ledgers.state': 0, 'actions.secret': 1 },
      retired: [oldKeyring.current.id],
    });

    const onlyNew = new Keyring(next.current);
    await verifyKeys(store.db, onlyNew); // the old key is no longer needed
    expect(await loadCredentials(store.db, onlyNew, { therapistId: who.therapistId, connectionId: who.connectionId })).toBe('{"refresh_token":"1//rot"}');
    const sealed = await store.db.selectFrom('actions').select('secret').where('idempotency_key', '=', 'rot-mail').executeTakeFirstOrThrow();
    expect(JSON.parse(onlyNew.decrypt(sealed.secret!, 'actions.secret'))).toMatchObject({ subject: 'Your appointment' });
    expect(await findClientByIdentity(store.db, onlyNew, { therapistId: who.therapistId, kind: 'email', value: 'jane.doe@example.com' })).toEqual({ id: client.id, displayName: 'Jane Doe' });
    expect(await findClientByIdentity(store.db, onlyNew, { therapistId: who.therapistId, kind: 'title', value: '  jane   d ' })).toEqual({ id: client.id, displayName: 'Jane Doe' });
    const snaps = await listSnapshots(store.db, onlyNew, { therapistId: calTherapist, calendarId });
    expect(snaps.map((s) => [s.eventId, s.payload])).toEqual([['e1', { title: 'Session - J. Doe' }], ['e2', null]]);

    // And the old key alone no longer opens them.
    await expect(loadCredentials(store.db, new Keyring(oldKeyring.current), { therapistId: who.therapistId, connectionId: who.connectionId })).rejects.toThrow(SecretError);

    // A second rotation to the same key has nothing to do.
    expect((await rotateKeys(store.db, next, now)).resealed).toEqual({ 'connections.credentials': 0, 'clients.display_name': 0, 'client_identities.value': 0, 'event_snapshots.payload': 0, 'clients.ledger_key': 0, 'ledgers.state': 0, 'actions.secret': 0 });
  });

  test("one therapist's connection id does not open another therapist's credentials", async () => {
    const a = await seedTherapist(t.store, 'scope-a', 'tokens-a');
    const b = await seedTherapist(t.store, 'scope-b', 'tokens-b');
    expect(await loadCredentials(t.store.db, t.store.keyring, { therapistId: b.therapistId, connectionId: a.connectionId })).toBeUndefined();
    expect(await loadCredentials(t.store.db, t.store.keyring, { therapistId: a.therapistId, connectionId: a.connectionId })).toBe('tokens-a');
  });
});
