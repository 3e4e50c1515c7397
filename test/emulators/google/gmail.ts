// Gmail users.messages.send behind the emulator (refs/google-gmail-v1-discovery.json, revision 20240520): {raw}
// in, {id, threadId, labelIds} out; each message is kept and parsed with mailparser for tests to read.
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import type { Clock } from '../../../src/clock.js';
import * as E from './errors.js';
import { isObject, str, type Json } from './events.js';

export interface SentAddress {
  name: string;
  address: string;
}

export interface SentAttachment {
  filename: string | undefined;
  /** As mailparser reads it: the MIME type only (e.g. "text/calendar"); its parameters are in `contentTypeHeader`. */
  contentType: string;
  /** The part's Content-Type as mailparser reads it, with its parameters ("text/calendar; method=REQUEST; charset=UTF-8"). */
  contentTypeHeader: string | undefined;
  content: Buffer;
}

export interface SentMessage {
  id: string;
  threadId: string;
  labelIds: string[];
  /** The sending account (the token's). */
  account: string;
  /** The decoded message, as sent. */
  raw: string;
  /** Raw header lines of the top level, in order ({key (lowercase), line}). */
  headerLines: { key: string; line: string }[];
  /** From as the recipient sees it: the message's own, or the account's when it gave none (Gmail fills it in). */
  from: SentAddress[];
  to: SentAddress[];
  cc: SentAddress[];
  bcc: SentAddress[];
  replyTo: SentAddress[];
  subject: string | undefined;
  messageId: string | undefined;
  date: Date | undefined;
  text: string | undefined;
  html: string | undefined;
  attachments: SentAttachment[];
  /** The emulator clock (ISO, UTC) when it was sent. */
  at: string;
}

function addresses(v: AddressObject | AddressObject[] | undefined): SentAddress[] {
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return list.flatMap((o) => o.value).flatMap((a) => (a.group ? a.group : [a])).map((a) => ({ name: a.name, address: a.address ?? '' }));
}

/** Message.raw is `format: byte`: base64, the URL-safe alphabet (as Message.raw says) or the standard one. */
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export class MailStore {
  readonly sent: SentMessage[] = [];
  private counter = 0;

  constructor(private readonly clock: Clock) {}

  /** Gmail ids are 16 hexadecimal digits. */
  private nextId(): string {
    this.counter += 1;
    const n = BigInt(this.clock.now().toMillis()) * 4096n + BigInt(this.counter % 4096);
    return n.toString(16).padStart(16, '0').slice(-16);
  }

  /**
   * users.messages.send. A missing or undecodable `raw` and a message without any recipient are refused with
   * 400 invalidArgument (the texts Gmail gives: "'raw' RFC822 payload message string or uploading message via
   * /upload/* URL required", "Recipient address required").
   */
  async send(account: { email: string }, userId: string, body: Json): Promise<Json> {
    if (userId !== 'me' && userId.toLowerCase() !== account.email.toLowerCase()) throw E.delegationDenied(userId);
    const raw = body['raw'];
    if (typeof raw !== 'string' || raw === '') throw E.invalidArgument("'raw' RFC822 payload message string or uploading message via /upload/* URL required");
    if (!BASE64.test(raw)) throw E.invalid("Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed");
    const decoded = Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    let parsed: ParsedMail;
    try {
      parsed = await simpleParser(decoded);
    } catch {
      throw E.invalidArgument('Invalid RFC822 message');
    }
    const to = addresses(parsed.to);
    const cc = addresses(parsed.cc);
    const bcc = addresses(parsed.bcc);
    if (to.length + cc.length + bcc.length === 0 || [...to, ...cc, ...bcc].some((a) => !/^[^@\s]+@[^@\s]+$/.test(a.address))) {
      throw E.invalidArgument(to.length + cc.length + bcc.length === 0 ? 'Recipient address required' : 'Invalid To header');
    }
    const id = this.nextId();
    const given = isObject(body) ? str(body['threadId']) : undefined;
    const threadId = given !== undefined && this.sent.some((m) => m.account === account.email && m.threadId === given) ? given : id;
    const from = addresses(parsed.from);
    const message: SentMessage = {
      id,
      threadId,
      labelIds: ['SENT'],
      account: account.email,
      raw: decoded.toString('utf8'),
      headerLines: parsed.headerLines.map((h) => ({ key: h.key, line: h.line })),
      from: from.length > 0 ? from : [{ name: '', address: account.email }],
      to,
      cc,
      bcc,
      replyTo: addresses(parsed.replyTo),
      subject: parsed.subject,
      messageId: parsed.messageId,
      date: parsed.date,
      text: parsed.text,
      html: parsed.html === false ? undefined : parsed.html,
      attachments: parsed.attachments.map((a) => {
        const ct = a.headers.get('content-type');
        const structured = isObject(ct) && typeof ct['value'] === 'string' ? (ct as unknown as { value: string; params?: Record<string, string> }) : undefined;
        const header = structured ? [structured.value, ...Object.entries(structured.params ?? {}).map(([k, v]) => `${k}=${v}`)].join('; ') : undefined;
        return {
          filename: a.filename,
          contentType: a.contentType || (structured?.value ?? ''),
          contentTypeHeader: header,
          content: a.content,
        };
      }),
      at: this.clock.now().toUTC().toISO() ?? '',
    };
    this.sent.push(message);
    return { id, threadId, labelIds: ['SENT'] };
  }
}
