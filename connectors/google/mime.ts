// Builds the RFC 5322 / MIME message Gmail's users.messages.send takes as `raw`, with node's own tools: RFC 2047
// headers, folding, quoted-printable text and HTML, base64 attachments (.ics), and no way to inject a header.
import { randomBytes } from 'node:crypto';
import type { Attendee, MailAttachment, OutgoingMail } from '../port.js';

const CRLF = '\r\n';
/** RFC 5322 2.1.1: lines SHOULD be no more than 78 characters, excluding the CRLF. */
const MAX_HEADER_LINE = 78;
/** RFC 2045 6.7 (quoted-printable) and 6.8 (base64): encoded lines are at most 76 characters. */
const MAX_BODY_LINE = 76;
/** RFC 2047 2: an encoded-word is at most 75 characters. */
const MAX_ENCODED_WORD = 75;

/**
 * A conservative addr-spec (RFC 5322 3.4.1, dot-atom local part and domain): no spaces, quotes, angle
 * brackets, commas or line breaks, so an address can never end a header or add a recipient.
 */
const ADDRESS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
/** RFC 2045 5.1 token characters (for MIME types and parameter names). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Printable ASCII that may stand in a header as it is (RFC 5322 unstructured text). */
const PLAIN_TEXT = /^[\x20-\x7e]*$/;
/** An RFC 5322 atom sequence: a display name that needs neither quotes nor encoding. */
const ATOMS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

export class MimeError extends Error {
  override readonly name = 'MimeError';
}

/** Line breaks and other control characters become spaces: a header value is one line. */
function flatten(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').replace(/ {2,}/g, ' ').trim();
}

export function checkAddress(email: string): string {
  if (email.length > 254 || !ADDRESS.test(email)) throw new MimeError('not an email address we can write into a header');
  return email;
}

/** Splits UTF-8 text into pieces of at most `maxBytes` bytes, never inside a character. */
function utf8Chunks(text: string, maxBytes: number): string[] {
  const out: string[] = [];
  let cur = '';
  let curBytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (curBytes + n > maxBytes && cur !== '') {
      out.push(cur);
      cur = '';
      curBytes = 0;
    }
    cur += ch;
    curBytes += n;
  }
  if (cur !== '') out.push(cur);
  return out;
}

/**
 * RFC 2047 "B" encoded-words for UTF-8 text: each at most 75 characters (45 bytes of text give 60 base64
 * characters plus the 12 of "=?UTF-8?B?" and "?="), separated by spaces, which a decoder drops between
 * adjacent encoded-words (RFC 2047 6.2).
 */
export function encodeWords(text: string, maxLength = MAX_ENCODED_WORD): string[] {
  const overhead = '=?UTF-8?B??='.length;
  const maxBytes = Math.floor((Math.min(maxLength, MAX_ENCODED_WORD) - overhead) / 4) * 3;
  return utf8Chunks(text, maxBytes).map((c) => `=?UTF-8?B?${Buffer.from(c, 'utf8').toString('base64')}?=`);
}

/**
 * One header, folded (RFC 5322 2.2.3) at the spaces between `parts` so that no line passes 78 characters
 * where it can be helped. Parts never contain CR or LF.
 */
function foldHeader(name: string, parts: string[]): string {
  const lines: string[] = [];
  let line = `${name}:`;
  for (const part of parts) {
    if (line.length + 1 + part.length > MAX_HEADER_LINE && line.length > name.length + 1) {
      lines.push(line);
      line = ` ${part}`;
    } else {
      line += ` ${part}`;
    }
  }
  lines.push(line);
  return lines.join(CRLF);
}

/** The longest encoded-word that still fits on the header's first line ("Name: " before it). */
function wordRoom(name: string): number {
  return MAX_HEADER_LINE - name.length - 2;
}

/** An unstructured header value (Subject): plain ASCII as words, anything else as encoded-words. */
export function unstructuredHeader(name: string, value: string): string {
  const text = flatten(value);
  if (PLAIN_TEXT.test(text) && !/=\?/.test(text)) return foldHeader(name, text.split(' ').filter((w) => w !== ''));
  return foldHeader(name, encodeWords(text, wordRoom(name)));
}

/** A display name as it may stand in an address (RFC 5322 3.4): atoms, a quoted string, or encoded-words. */
function displayName(name: string, header: string): string[] {
  const text = flatten(name);
  if (text === '') return [];
  if (ATOMS.test(text)) return text.split(' ');
  const quoted = `"${text.replace(/(["\\])/g, '\\$1')}"`;
  if (PLAIN_TEXT.test(text) && !/=\?/.test(text) && quoted.length <= wordRoom(header)) return [quoted];
  // RFC 2047 5(3): an encoded-word may stand for a display name (a "phrase").
  return encodeWords(text, wordRoom(header));
}

/** The parts of one mailbox ("Name <address>"), for folding. */
function mailbox(a: Attendee, header: string): string[] {
  const address = `<${checkAddress(a.email)}>`;
  const name = a.name ? displayName(a.name, header) : [];
  return [...name, address];
}

/** An address header (From, To, Reply-To), folded between addresses and between the words of names. */
export function addressHeader(name: string, list: readonly Attendee[]): string {
  if (list.length === 0) throw new MimeError(`${name}: at least one address`);
  const parts: string[] = [];
  list.forEach((a, i) => {
    const m = mailbox(a, name);
    if (i < list.length - 1) m[m.length - 1] += ',';
    parts.push(...m);
  });
  return foldHeader(name, parts);
}

/** RFC 5322 3.3 date-time, in UTC: "Mon, 02 Mar 2026 09:00:00 +0000". */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/**
 * Quoted-printable (RFC 2045 6.7) of UTF-8 text with CRLF line breaks: printable ASCII but "=" as it is,
 * everything else as =XX, a space or tab at the end of a line encoded, and soft line breaks ("=" at the
 * end) so that no line passes 76 characters; an =XX is never split.
 */
export function quotedPrintable(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  for (const line of lines) {
    const bytes = Buffer.from(line, 'utf8');
    const tokens: string[] = [];
    bytes.forEach((b, i) => {
      const last = i === bytes.length - 1;
      if ((b >= 33 && b <= 126 && b !== 61) || ((b === 32 || b === 9) && !last)) tokens.push(String.fromCharCode(b));
      else tokens.push(`=${b.toString(16).toUpperCase().padStart(2, '0')}`);
    });
    let cur = '';
    for (const t of tokens) {
      // Room for the soft break's "=" on a line that goes on.
      if (cur.length + t.length > MAX_BODY_LINE - 1) {
        out.push(`${cur}=`);
        cur = '';
      }
      cur += t;
    }
    out.push(cur);
  }
  // No line ends in a bare space or tab (RFC 2045 6.7 rule 3): a line's last one is encoded, and a soft
  // break puts its "=" after any other.
  return out.join(CRLF);
}

/** Base64 in lines of 76 characters (RFC 2045 6.8). */
export function base64Lines(data: Buffer): string {
  const b64 = data.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < b64.length; i += MAX_BODY_LINE) out.push(b64.slice(i, i + MAX_BODY_LINE));
  return out.join(CRLF);
}

/** A MIME parameter value: a quoted string of printable ASCII, or RFC 2231 UTF-8 percent-encoding. */
function parameter(name: string, value: string): string {
  const text = flatten(value);
  if (PLAIN_TEXT.test(text)) return `${name}="${text.replace(/(["\\])/g, '\\$1')}"`;
  const encoded = Array.from(Buffer.from(text, 'utf8'), (b) =>
    /[A-Za-z0-9!#$&+.^_`|~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
  ).join('');
  return `${name}*=UTF-8''${encoded}`;
}

/**
 * A Content-Type given by the caller ("text/calendar; method=REQUEST"): type/subtype and parameters are
 * checked to be tokens (or quoted strings), so nothing else can ride on it; text types get charset=UTF-8.
 */
export function contentType(given: string, extra: Record<string, string> = {}): string {
  const [typePart, ...paramParts] = given.split(';').map((s) => s.trim());
  const [type, subtype] = (typePart ?? '').split('/');
  if (!type || !subtype || !TOKEN.test(type) || !TOKEN.test(subtype)) throw new MimeError(`not a MIME type: ${JSON.stringify(given)}`);
  const params: [string, string][] = [];
  for (const p of paramParts) {
    if (p === '') continue;
    const eq = p.indexOf('=');
    const key = eq > 0 ? p.slice(0, eq).trim() : '';
    let value = eq > 0 ? p.slice(eq + 1).trim() : '';
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!TOKEN.test(key) || !PLAIN_TEXT.test(value) || /["\\]/.test(value)) throw new MimeError(`not a MIME parameter: ${JSON.stringify(p)}`);
    params.push([key.toLowerCase(), value]);
  }
  if (type.toLowerCase() === 'text' && !params.some(([k]) => k === 'charset')) params.push(['charset', 'UTF-8']);
  const all = [`${type.toLowerCase()}/${subtype.toLowerCase()}`, ...params.map(([k, v]) => (TOKEN.test(v) ? `${k}=${v}` : `${k}="${v}"`))];
  for (const [k, v] of Object.entries(extra)) all.push(parameter(k, v));
  return all.join('; ');
}

/** Folds a structured header (Content-Type, Content-Disposition) at the "; " between parameters. */
function paramHeader(name: string, value: string): string {
  const parts = value.split('; ');
  return foldHeader(name, parts.map((p, i) => (i < parts.length - 1 ? `${p};` : p)));
}

function boundary(): string {
  // "=_" cannot occur in quoted-printable or base64 output, so the boundary never appears in a part.
  return `=_sk_${randomBytes(12).toString('hex')}`;
}

function attachmentPart(a: MailAttachment): string {
  const filename = flatten(a.filename);
  if (filename === '') throw new MimeError('an attachment needs a file name');
  const data = typeof a.content === 'string' ? Buffer.from(a.content, 'utf8') : a.content;
  return [
    paramHeader('Content-Type', contentType(a.contentType, { name: filename })),
    'Content-Transfer-Encoding: base64',
    paramHeader('Content-Disposition', `attachment; ${parameter('filename', filename)}`),
    '',
    base64Lines(data),
  ].join(CRLF);
}

export interface BuildOptions {
  /** The Date header (now by default). */
  date?: Date;
  /** The Message-ID's right-hand side when there is no From (the sender's domain otherwise). */
  domain?: string;
}

/** The whole message, CRLF line breaks, ready to be base64url-encoded into Gmail's `raw`. */
export function buildMessage(mail: OutgoingMail, opts: BuildOptions = {}): string {
  const date = opts.date ?? new Date();
  const domain = mail.from ? checkAddress(mail.from.email).split('@')[1]! : (opts.domain ?? 'sessionkeeper.invalid');
  const mixed = boundary();
  const alternative = boundary();
  const headers = [
    ...(mail.from ? [addressHeader('From', [mail.from])] : []),
    addressHeader('To', mail.to),
    ...(mail.replyTo ? [addressHeader('Reply-To', [mail.replyTo])] : []),
    unstructuredHeader('Subject', mail.subject),
    `Date: ${rfc5322Date(date)}`,
    `Message-ID: <sk.${randomBytes(16).toString('hex')}@${domain}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${mixed}"`,
  ];
  const alternativePart = [
    `Content-Type: multipart/alternative; boundary="${alternative}"`,
    '',
    `--${alternative}`,
    'Content-Type: text/plain; charset=UTF-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(mail.text),
    `--${alternative}`,
    'Content-Type: text/html; charset=UTF-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(mail.html),
    `--${alternative}--`,
  ].join(CRLF);
  const parts = [alternativePart, ...(mail.attachments ?? []).map(attachmentPart)];
  return [...headers, '', ...parts.flatMap((p) => [`--${mixed}`, p]), `--${mixed}--`, ''].join(CRLF);
}
