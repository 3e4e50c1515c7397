// Secrets at rest: AES-256-GCM with the key id stored in every value so keys can rotate, keyed
// hashes (HMAC) for values that must be found again (client emails), and where the keys come from.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './config.js';
import { StartupError } from './errors.js';

const FORMAT = 'sk1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SecretKey {
  /** A fingerprint of the key (not the key): written into every value it seals. */
  readonly id: string;
  readonly key: Buffer;
  /** A separate key, derived from the same one, for keyed hashes. */
  readonly indexKey: Buffer;
}

/** A stored value that cannot be opened: wrong or missing key, or altered bytes. Nothing is changed. */
export class SecretError extends Error {
  override readonly name = 'SecretError';
}

export function makeKey(raw: Buffer): SecretKey {
  if (raw.length !== 32) throw new Error(`a key must be 32 bytes (got ${raw.length})`);
  const id = crypto.createHash('sha256').update('sessionkeeper key id\0').update(raw).digest('hex').slice(0, 12);
  const indexKey = Buffer.from(crypto.hkdfSync('sha256', raw, Buffer.alloc(0), 'sessionkeeper blind index', 32));
  return { id, key: raw, indexKey };
}

/** Decodes a base64 key from a setting, or says which setting is wrong and how to make a good one. */
export function keyFromBase64(b64: string, source: string): SecretKey {
  const trimmed = b64.trim();
  const raw = /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : Buffer.alloc(0);
  if (raw.length !== 32) {
    throw new StartupError(
      `${source} is not a 32-byte key in base64 (decoded to ${raw.length} bytes)`,
      'Generate one with `openssl rand -base64 32`',
    );
  }
  return makeKey(raw);
}

export function generateKey(): SecretKey {
  return makeKey(crypto.randomBytes(32));
}

export class Keyring {
  readonly current: SecretKey;
  readonly #keys = new Map<string, SecretKey>();

  constructor(current: SecretKey, others: readonly SecretKey[] = []) {
    this.current = current;
    for (const k of [current, ...others]) this.#keys.set(k.id, k);
  }

  get ids(): string[] {
    return [...this.#keys.keys()];
  }

  has(id: string): boolean {
    return this.#keys.has(id);
  }

  /** A keyring whose current key is `next`, keeping every key of this one for decryption. */
  withCurrent(next: SecretKey): Keyring {
    return new Keyring(next, [...this.#keys.values()]);
  }

  /**
   * Seals a value. `context` names where it is stored (e.g. "connections.credentials"): it is
   * bound as associated data, so a value copied into another column does not open there.
   */
  encrypt(plaintext: string, context: string): string {
    const iv = crypto.randomBytes(IV_BYTES);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.current.key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${FORMAT}.${this.current.id}.${Buffer.concat([iv, body]).toString('base64url')}`;
  }

  decrypt(sealed: string, context: string): string {
    const { keyId, payload } = parseSealed(sealed, context);
    const key = this.#keys.get(keyId);
    if (!key) {
      throw new SecretError(
        `a value in ${context} was sealed with key ${keyId}, which is not configured (configured: ${this.ids.join(', ')}); ` +
          'set SESSIONKEEPER_KEY to the key used before, or add it to SESSIONKEEPER_PREVIOUS_KEYS',
      );
    }
    if (payload.length < IV_BYTES + TAG_BYTES) throw new SecretError(`a value in ${context} is truncated`);
    const iv = payload.subarray(0, IV_BYTES);
    const tag = payload.subarray(payload.length - TAG_BYTES);
    const body = payload.subarray(IV_BYTES, payload.length - TAG_BYTES);
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', key.key, iv);
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretError(`a value in ${context} does not open with key ${keyId}: it was altered or copied from elsewhere`);
    }
  }

  /**
   * A keyed hash to find a value again without storing it in the clear, as "<key id>.<hex>".
   * The caller normalises the value first (e.g. a lower-cased email).
   */
  blindIndex(value: string, purpose: string): string {
    return indexWith(this.current, value, purpose);
  }

  /**
   * A message authentication code (HMAC-SHA256, truncated to `bytes`) under the current key, for
   * values handed out and checked when they come back (booking links).
   */
  mac(message: string, purpose: string, bytes = 16): Buffer {
    return macWith(this.current, message, purpose).subarray(0, bytes);
  }

  /** Whether `mac` is this message's code under any configured key (a link made before a rotation still works). */
  macMatches(message: string, purpose: string, mac: Buffer): boolean {
    return [...this.#keys.values()].some((k) => {
      const expected = macWith(k, message, purpose).subarray(0, mac.length);
      return mac.length >= 16 && crypto.timingSafeEqual(expected, mac);
    });
  }

  /** The hashes of a value under every configured key: matches rows not yet moved by rotate-key. */
  blindIndexCandidates(value: string, purpose: string): string[] {
    return [...this.#keys.values()].map((k) => indexWith(k, value, purpose));
  }
}

function macWith(key: SecretKey, message: string, purpose: string): Buffer {
  return crypto.createHmac('sha256', key.indexKey).update('mac\0').update(purpose).update('\0').update(message).digest();
}

function indexWith(key: SecretKey, value: string, purpose: string): string {
  return `${key.id}.${crypto.createHmac('sha256', key.indexKey).update(purpose).update('\0').update(value).digest('hex')}`;
}

export function keyIdOf(sealed: string): string {
  return parseSealed(sealed, 'a stored value').keyId;
}

function parseSealed(sealed: string, context: string): { keyId: string; payload: Buffer } {
  const parts = sealed.split('.');
  if (parts.length !== 3 || parts[0] !== FORMAT) throw new SecretError(`a value in ${context} is not a sealed value`);
  return { keyId: parts[1]!, payload: Buffer.from(parts[2]!, 'base64url') };
}

// ---------------------------------------------------------------------------------------------
// Where the keys come from

export interface LoadedKeyring {
  keyring: Keyring;
  /** Set when this call generated a new key file (embedded mode without SESSIONKEEPER_KEY). */
  createdKeyFile?: string;
  /** Set when the current key lives in the data folder, so rotate-key can write the next one there. */
  keysDir?: string;
}

/**
 * The keyring of the process. SESSIONKEEPER_KEY is the current key and SESSIONKEEPER_PREVIOUS_KEYS
 * may still decrypt; in embedded mode without a key, one is kept in the data folder (created on
 * first start, mode 0600). Server mode without a key refuses to start.
 */
export function loadKeyring(config: Config): LoadedKeyring {
  const previous = config.previousKeys.map((b64, i) => keyFromBase64(b64, `SESSIONKEEPER_PREVIOUS_KEYS entry ${i + 1}`));
  const keysDir = path.join(config.dataDir, 'keys');
  if (config.key) {
    const current = keyFromBase64(config.key, 'SESSIONKEEPER_KEY');
    // A folder that used a generated key before the operator set one: keep those for decryption.
    const fromFolder = config.mode === 'embedded' ? readFolderKeys(keysDir).all : [];
    return { keyring: new Keyring(current, [...previous, ...fromFolder]) };
  }
  if (config.mode === 'server') {
    throw new StartupError(
      'DATABASE_URL is set but SESSIONKEEPER_KEY is not: a server database needs a key that every instance shares',
      'Set SESSIONKEEPER_KEY to a 32-byte key in base64 (`openssl rand -base64 32`) and keep it in your secret manager',
    );
  }
  const folder = readFolderKeys(keysDir);
  if (folder.current) return { keyring: new Keyring(folder.current, [...folder.all, ...previous]), keysDir };
  if (folder.all.length > 0) {
    throw new StartupError(
      `${keysDir} holds keys but no "current" file naming which one is in use`,
      `Restore ${path.join(keysDir, 'current')} from a backup, or set SESSIONKEEPER_KEY`,
    );
  }
  const key = generateKey();
  const file = writeFolderKey(keysDir, key);
  setFolderCurrent(keysDir, key.id);
  return { keyring: new Keyring(key, previous), createdKeyFile: file, keysDir };
}

function readFolderKeys(keysDir: string): { current?: SecretKey; all: SecretKey[] } {
  if (!fs.existsSync(keysDir)) return { all: [] };
  const all: SecretKey[] = [];
  for (const name of fs.readdirSync(keysDir)) {
    if (!name.endsWith('.key')) continue;
    const file = path.join(keysDir, name);
    const mode = fs.statSync(file).mode;
    if ((mode & 0o077) !== 0) {
      throw new StartupError(
        `key file ${file} can be read by other users (mode ${(mode & 0o777).toString(8)})`,
        `Run \`chmod 600 ${file}\``,
      );
    }
    const key = keyFromBase64(fs.readFileSync(file, 'utf8'), `key file ${file}`);
    if (`${key.id}.key` !== name) {
      throw new StartupError(`key file ${file} holds key ${key.id}, not the key its name says`, 'Restore the keys folder from a backup');
    }
    all.push(key);
  }
  const currentFile = path.join(keysDir, 'current');
  if (!fs.existsSync(currentFile)) return { all };
  const currentId = fs.readFileSync(currentFile, 'utf8').trim();
  const current = all.find((k) => k.id === currentId);
  if (!current) {
    throw new StartupError(`${currentFile} names key ${currentId}, but ${keysDir} has no such key file`, 'Restore the keys folder from a backup');
  }
  return { current, all };
}

/** Writes a key into the data folder's keys/ (0600), not yet current. Returns its path. */
export function writeFolderKey(keysDir: string, key: SecretKey): string {
  fs.mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const file = path.join(keysDir, `${key.id}.key`);
  fs.writeFileSync(file, key.key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return file;
}

/** Makes a key of keys/ the current one, atomically (write then rename). */
export function setFolderCurrent(keysDir: string, keyId: string): void {
  const tmp = path.join(keysDir, `current.${process.pid}.tmp`);
  fs.writeFileSync(tmp, keyId + '\n', { mode: 0o600 });
  fs.renameSync(tmp, path.join(keysDir, 'current'));
}

/** Deletes every key file of keys/ except the named ones (after a finished rotation). */
export function pruneFolderKeys(keysDir: string, keep: readonly string[]): string[] {
  const removed: string[] = [];
  for (const name of fs.readdirSync(keysDir)) {
    if (name.endsWith('.key') && !keep.includes(name.slice(0, -4))) {
      fs.rmSync(path.join(keysDir, name));
      removed.push(name.slice(0, -4));
    }
  }
  return removed;
}
