// Mail from the therapist's own Outlook mailbox through Graph's sendMail (refs/graph-docs/user-sendmail.md, JSON form):
// one HTML body, file attachments inline as base64, at most once (Graph takes no idempotency key).
import type { Attendee, MailConnector, OutgoingMail } from '../port.js';
import { GRAPH, GraphSession, type GraphClientOptions } from './graph.js';

export type GraphMailOptions = GraphClientOptions;

function recipient(a: Attendee): { emailAddress: { address: string; name?: string } } {
  return { emailAddress: { address: a.email, ...(a.name ? { name: a.name } : {}) } };
}

export class GraphMailConnector implements MailConnector {
  readonly provider = 'microsoft' as const;
  readonly #graph: GraphSession;

  constructor(opts: GraphMailOptions) {
    this.#graph = new GraphSession(opts, 'Mail.Send');
  }

  /** HTTP requests made (every attempt). */
  get requests(): number {
    return this.#graph.requests;
  }

  /**
   * POST /me/sendMail, kept in Sent Items. Graph's message takes one body: the HTML one (`mail.text` is for platforms
   * that send both). `mail.from` is not written: the mail goes from the connected mailbox itself (sending as another
   * address needs Send As rights we do not ask for). 202 means accepted, not delivered (API-NOTES), and there is no
   * message id to return.
   *
   * At most once: the RetryHandler may repeat a 429 (Graph refused it, nothing was sent) but never a 503/504 or a lost
   * answer, which may come after the message went out; those surface as RetryAfter and the caller records the action
   * as unknown (DESIGN, Delivery).
   */
  async send(mail: OutgoingMail): Promise<{ messageId: string | null }> {
    if (mail.to.length === 0) throw new RangeError('a mail needs at least one recipient');
    const message: Record<string, unknown> = {
      subject: mail.subject,
      body: { contentType: 'HTML', content: mail.html },
      toRecipients: mail.to.map(recipient),
    };
    if (mail.replyTo) message['replyTo'] = [recipient(mail.replyTo)];
    if (mail.attachments && mail.attachments.length > 0) {
      message['attachments'] = mail.attachments.map((a) => ({
        '@odata.type': '#microsoft.graph.fileAttachment',
        name: a.filename,
        contentType: a.contentType,
        contentBytes: (typeof a.content === 'string' ? Buffer.from(a.content, 'utf8') : a.content).toString('base64'),
      }));
    }
    await this.#graph.send('post', `${GRAPH}/me/sendMail`, { message, saveToSentItems: true }, { atMostOnce: true });
    return { messageId: null };
  }
}
