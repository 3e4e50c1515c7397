// Sealing: values open only with their key and in their own column; keyed hashes are stable per key.
import { describe, expect, test } from 'vitest';
import { generateKey, keyFromBase64, keyIdOf, Keyring, SecretError } from '../src/secrets.js';

describe('sealed values', () => {
  const keyring = new Keyring(generateKey());

  test('round trip, with a fresh IV each time and the key id in the value', () => {
    const a = keyring.encrypt('refresh-token-1', 'connections.credentials');
    const b = keyring.encrypt('refresh-token-1', 'connections.credentials');
    expect(a).not.toBe(b);
    expect(a).not.toContain('refresh-token-1');
    expect(keyIdOf(a)).toBe(keyring.current.id);
    expect(keyring.decrypt(a, 'connections.credentials')).toBe('refresh-token-1');
    expect(keyring.decrypt(keyring.encrypt('Zoë 💬', 'clients.display_name'), 'clients.display_name')).toBe('Zoë 💬');
  });

  test('a value moved to another column, or altered, does not open', () => {
    const sealed = keyring.encrypt('tokens', 'connections.credentials');
    expect(() => keyring.decrypt(sealed, 'clients.display_name')).toThrow('a value in clients.display_name does not open with key');
    const parts = sealed.split('.');
    const body = Buffer.from(parts[2]!, 'base64url');
    body[body.length - 1]! ^= 1;
    expect(() => keyring.decrypt(`${parts[0]}.${parts[1]}.${body.toString('base64url')}`, 'connections.credentials')).toThrow(SecretError);
    expect(() => keyring.decrypt('plain text', 'connections.credentials')).toThrow('a value in connections.credentials is not a sealed value');
  });

  test('a value sealed with a key that is not configured names both keys and what to do', () => {
    const other = new Keyring(generateKey());
    const sealed = other.encrypt('x', 'connections.credentials');
    expect(() => keyring.decrypt(sealed, 'connections.credentials')).toThrow(
      `a value in connections.credentials was sealed with key ${other.current.id}, which is not configured (configured: ${keyring.current.id}); set SESSIONKEEPER_KEY`,
    );
  });

  test('keyed hashes: stable for a key, different per key and purpose, and every key gives a candidate', () => {
    const next = keyring.withCurrent(generateKey());
    const h = keyring.blindIndex('jane@example.com', 'client_identity:email');
    expect(keyring.blindIndex('jane@example.com', 'client_identity:email')).toBe(h);
    expect(keyring.blindIndex('jane@example.com', 'client_identity:title')).not.toBe(h);
    expect(next.blindIndex('jane@example.com', 'client_identity:email')).not.toBe(h);
    expect(next.blindIndexCandidates('jane@example.com', 'client_identity:email')).toContain(h);
    expect(h.startsWith(`${keyring.current.id}.`)).toBe(true);
  });

  test('key ids are fingerprints: the same key gives the same id, and the id is not the key', () => {
    const raw = Buffer.alloc(32, 9).toString('base64');
    expect(keyFromBase64(raw, 'K').id).toBe(keyFromBase64(raw, 'K').id);
    expect(keyFromBase64(raw, 'K').id).toMatch(/^[0-9a-f]{12}$/);
    expect(raw).not.toContain(keyFromBase64(raw, 'K').id);
  });
});
