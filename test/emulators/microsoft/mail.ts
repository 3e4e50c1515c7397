// POST /me/sendMail of the Microsoft emulator (refs/graph-docs/user-sendmail.md, JSON format): the request checked as
// Graph checks it, and the message kept as it would reach Sent Items, attachments decoded, so tests can read it.
import crypto from 'node:crypto';
import * as E from './errors.js';
import { isObject, type Json } from './events.js';

export interface MailAddress {
  name: string | null;
  address: string;
}

export interface SentAttachment {
  name: string;
  contentType: string;
  /** contentBytes decoded. */
  content: Buffer;
  isInline: boolean;
}

export interface SentMail {
  id: string;
  /** The sending mailbox (the signed-in user). */
  oid: string;
  from: MailAddress;
  subject: string;
  body: { contentType: 'text' | 'html'; content: string };
  toRecipients: MailAddress[];
  ccRecipients: MailAddress[];
  bccRecipients: MailAddress[];
  replyTo: MailAddress[];
  attachments: SentAttachment[];
  internetMessageHeaders: { name: string; value: string }[];
  saveToSentItems: boolean;
  /** Emulator clock (ISO, UTC). */
  at: string;
}

/** Message properties sendMail accepts in JSON (message.md, the ones a sender sets); others are refused. */
const MESSAGE_PROPERTIES = new Set([
  'subject',
  'body',
  'toRecipients',
  'ccRecipients',
  'bccRecipients',
  'replyTo',
  'attachments',
  'importance',
  'internetMessageHeaders',
  'flag',
  'categories',
  'from',
  'sender',
  'isDeliveryReceiptRequested',
  'isReadReceiptRequested',
]);

/** The JSON form's 4 MB request limit (user-sendmail.md links the Exchange limits; larger attachments need an upload session). */
export const SENDMAIL_MAX_BYTES = 4 * 1024 * 1024;

function invalidRecipients(detail: string): E.GraphApiError {
  // Code and wording as real Graph answers (public issues, e.g. microsoftgraph/msgraph-sdk-dotnet#1891,
  // microsoftgraph/ruby-connect-rest-sample#15).
  return new E.GraphApiError(400, 'ErrorInvalidRecipients', `At least one recipient isn't valid., ${detail}`);
}

function recipients(v: unknown, name: string): MailAddress[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw E.badBody(`The property '${name}' must be a collection of recipients.`);
  return v.map((r) => {
    const ea = isObject(r) && isObject(r['emailAddress']) ? r['emailAddress'] : undefined;
    const address = ea && typeof ea['address'] === 'string' ? ea['address'].trim() : '';
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(address)) {
      throw invalidRecipients(`Recipient "${address}" isn't resolved. All recipients must be resolved before a message can be submitted.`);
    }
    return { name: ea && typeof ea['name'] === 'string' ? ea['name'] : null, address };
  });
}

/** Strict base64 (Edm.Binary): what is not is refused rather than decoded loosely. */
function decodeBase64(v: unknown, where: string): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
    throw new E.GraphApiError(400, 'RequestBodyRead', `Cannot convert the literal '${String(v).slice(0, 40)}' to the expected type 'Edm.Binary' (${where}).`);
  }
  return Buffer.from(v, 'base64');
}

function attachments(v: unknown): SentAttachment[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw E.badBody("The property 'attachments' must be a collection of attachments.");
  return v.map((a, i) => {
    if (!isObject(a)) throw E.badBody(`attachments[${i}] must be an attachment.`);
    const type = a['@odata.type'];
    // Only file attachments in a JSON sendMail (user-sendmail.md: "you can include a file attachment"); the type
    // annotation tells Graph which kind the abstract attachment is.
    if (typeof type !== 'string' || type.replace(/^#/, '').toLowerCase() !== 'microsoft.graph.fileattachment') {
      throw E.badBody(`attachments[${i}]: the @odata.type '#microsoft.graph.fileAttachment' is required (emulator supports file attachments only).`);
    }
    const name = typeof a['name'] === 'string' ? a['name'] : '';
    if (name === '') throw new E.GraphApiError(400, 'ErrorInvalidParameter', 'The attachment name cannot be empty.');
    return {
      name,
      contentType: typeof a['contentType'] === 'string' ? a['contentType'] : 'application/octet-stream',
      content: decodeBase64(a['contentBytes'], `attachments[${i}].contentBytes`),
      isInline: a['isInline'] === true,
    };
  });
}

/** Validates a JSON sendMail body and returns the message as sent; throws GraphApiError 400. */
export function parseSendMail(body: Json, from: MailAddress, oid: string, at: string): SentMail {
  for (const k of Object.keys(body)) {
    if (k !== 'message' && k !== 'saveToSentItems') {
      throw new E.GraphApiError(400, 'RequestBodyRead', `The parameter '${k}' in the request payload is not a valid parameter for the operation 'sendMail'.`);
    }
  }
  const m = body['message'];
  if (!isObject(m)) throw new E.GraphApiError(400, 'ErrorInvalidParameter', "The value of the parameter 'Message' is empty.");
  for (const k of Object.keys(m)) {
    if (k.startsWith('@odata.')) continue;
    if (!MESSAGE_PROPERTIES.has(k)) {
      throw new E.GraphApiError(400, 'RequestBodyRead', `The property '${k}' does not exist on type 'microsoft.graph.message'. Make sure to only use property names that are defined by the type or mark the type as open type.`);
    }
  }
  // saveToSentItems is a Boolean; the reference's own Example 1 sends the string "false", which Graph takes.
  const save = body['saveToSentItems'];
  let saveToSentItems = true;
  if (save !== undefined && save !== null) {
    if (save === false || save === 'false' || save === 'False') saveToSentItems = false;
    else if (!(save === true || save === 'true' || save === 'True')) throw E.badBody(`Cannot convert the literal '${String(save)}' to the expected type 'Edm.Boolean'.`);
  }
  const to = recipients(m['toRecipients'], 'toRecipients');
  const cc = recipients(m['ccRecipients'], 'ccRecipients');
  const bcc = recipients(m['bccRecipients'], 'bccRecipients');
  if (to.length + cc.length + bcc.length === 0) throw invalidRecipients("A message can't be sent because it contains no recipients.");
  const b = m['body'];
  let content = '';
  let contentType: 'text' | 'html' = 'text';
  if (b !== undefined && b !== null) {
    if (!isObject(b)) throw E.badBody('body must be an itemBody.');
    const ct = b['contentType'];
    if (ct !== undefined) {
      if (typeof ct !== 'string' || !['text', 'html'].includes(ct.toLowerCase())) throw E.badBody(`Cannot convert the literal '${String(ct)}' to the expected type 'microsoft.graph.bodyType'.`);
      contentType = ct.toLowerCase() as 'text' | 'html';
    }
    content = typeof b['content'] === 'string' ? b['content'] : '';
  }
  const headers = m['internetMessageHeaders'];
  const internetMessageHeaders: { name: string; value: string }[] = [];
  if (headers !== undefined && headers !== null) {
    if (!Array.isArray(headers)) throw E.badBody('internetMessageHeaders must be a collection.');
    for (const h of headers) {
      const name = isObject(h) && typeof h['name'] === 'string' ? h['name'] : '';
      // Custom headers must start with x- (message.md, internetMessageHeaders; the reference's Example 2 uses x-custom-…).
      if (!/^x-/i.test(name)) throw new E.GraphApiError(400, 'InvalidInternetMessageHeader', `The internet message header name '${name}' should start with 'x-' or 'X-'.`);
      internetMessageHeaders.push({ name, value: isObject(h) && typeof h['value'] === 'string' ? h['value'] : '' });
    }
  }
  return {
    id: `AAMkAG${crypto.randomBytes(30).toString('base64url')}AAA=`,
    oid,
    from,
    subject: typeof m['subject'] === 'string' ? m['subject'] : '',
    body: { contentType, content },
    toRecipients: to,
    ccRecipients: cc,
    bccRecipients: bcc,
    replyTo: recipients(m['replyTo'], 'replyTo'),
    attachments: attachments(m['attachments']),
    internetMessageHeaders,
    saveToSentItems,
    at,
  };
}
