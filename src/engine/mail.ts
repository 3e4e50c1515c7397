// Email from the therapist's own mailbox (Gmail, Outlook) as an engine action: at most once. Neither
// platform takes an idempotency key (API-NOTES), so a send that may have gone out is never repeated:
// a crash inside the call, a 5xx or a lost answer make the action `unknown`, for the operator.
import { z } from 'zod';
import { RetryAfter } from '../../connectors/errors.js';
import type { OutgoingMail } from '../../connectors/port.js';
import { connectionOf, OutcomeUnknown, type ActionPlugin, type ActionResult, type ActionRun } from './outbox.js';
import type { ConnectionRow } from './platforms.js';

export const MAIL_SEND = 'mail.send';

const person = z.strictObject({ email: z.email(), name: z.string().max(200).optional() });

const mailSchema = z.strictObject({
  // All of it is the secret part (sealed at rest): recipients, subject, text.
  to: z.array(person).min(1, 'must name at least one recipient').max(20),
  replyTo: person.optional(),
  subject: z.string().min(1).max(998),
  text: z.string().max(200_000),
  html: z.string().max(500_000),
  attachments: z
    .array(
      z.strictObject({
        filename: z.string().min(1).max(200).regex(/^[^\r\n"\\/]+$/, 'must be a plain file name'),
        contentType: z.string().min(3).max(200).regex(/^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.-]+=("[^"\r\n]*"|[\w.+-]+))*$/, 'must be a MIME type'),
        /** The content, as text (an .ics) or base64 with `base64: true`. */
        content: z.string().max(2_000_000),
        base64: z.boolean().default(false),
      }),
    )
    .max(5)
    .default([]),
});
export type MailPayload = z.input<typeof mailSchema>;

export const mailSendPlugin: ActionPlugin<z.output<typeof mailSchema>> = {
  kind: MAIL_SEND,
  payload: mailSchema,
  secretFields: ['to', 'replyTo', 'subject', 'text', 'html', 'attachments'],
  onCrash: 'unknown',
  async run(p, run): Promise<ActionResult> {
    if (!run.action.connection_id) return { status: 'cancelled', reason: 'no mailbox to send from' };
    const conn = await connectionOf(run);
    if (!conn) return { status: 'cancelled', reason: 'the connection is gone' };
    const sent = await sendAtMostOnce(run, conn, {
      to: p.to,
      ...(p.replyTo ? { replyTo: p.replyTo } : {}),
      subject: p.subject,
      text: p.text,
      html: p.html,
      attachments: p.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.base64 ? Buffer.from(a.content, 'base64') : a.content })),
    });
    return { status: 'done', externalRef: sent.messageId, outcome: { sent: true } };
  },
};

/**
 * Sends one message from the connection's mailbox, at most once: refused before anything was sent (a
 * 429, a rate limit) is safe to try again later and is thrown as it came; anything else transient may
 * have sent it and becomes OutcomeUnknown (the action is `unknown`, never resent).
 */
export async function sendAtMostOnce(run: Pick<ActionRun, 'connectors'>, conn: ConnectionRow, mail: OutgoingMail): Promise<{ messageId: string | null }> {
  const connector = await run.connectors.mailConnector(conn);
  try {
    return await connector.send(mail);
  } catch (err) {
    if (err instanceof RetryAfter && !err.refused) throw new OutcomeUnknown(`the send may or may not have gone out (${err.message})`);
    throw err;
  }
}
