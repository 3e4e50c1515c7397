// The Gmail connector: mail from the therapist's own mailbox (users.messages.send, scope gmail.send), at most
// once: Gmail takes no idempotency key, so a send is repeated only after an answer proving it was refused.
import { gmail, type gmail_v1 } from '@googleapis/gmail';
import type { MailConnector, OutgoingMail } from '../port.js';
import { NeedsReauth, RetryAfter } from '../errors.js';
import { classifyGoogleError, GoogleCaller, type GoogleConnectorOptions } from './call.js';
import { buildMessage } from './mime.js';

export type GmailOptions = GoogleConnectorOptions;

/** The narrowest scope users.messages.send accepts (its "scopes" in the discovery document). */
const SEND_SCOPE = 'https://www.googleapis.com/auth/gmail.send';

export class GmailConnector implements MailConnector {
  readonly provider = 'google' as const;
  readonly #api: gmail_v1.Gmail;
  readonly #caller: GoogleCaller;
  readonly #opts: GmailOptions;

  constructor(opts: GmailOptions) {
    this.#opts = opts;
    this.#api = gmail({ version: 'v1', auth: opts.auth, ...(opts.rootUrl ? { rootUrl: opts.rootUrl } : {}) });
    this.#caller = new GoogleCaller(opts, SEND_SCOPE);
  }

  /** Requests made (tests count them). */
  get requests(): number {
    return this.#caller.requests;
  }

  /**
   * Sends the mail as the connected account (userId "me"; Gmail fills in From when none is given). The
   * JSON form with `raw` (Message.raw: "an RFC 2822 formatted and base64url encoded string"), not the media
   * upload. A 429 or 403 rate limit means Gmail refused it: retried here. A 5xx, a timeout or a lost answer
   * may come after the mail left: RetryAfter goes to the caller at once, which must not send it again blindly.
   */
  async send(mail: OutgoingMail): Promise<{ messageId: string | null }> {
    const raw = Buffer.from(buildMessage(mail), 'utf8').toString('base64url');
    // The access token first (a refresh when it expired): a failure there sent nothing, so it is a
    // refusal, which a failure of the send itself could not say.
    try {
      await this.#opts.auth.getAccessToken();
    } catch (rawErr) {
      const err = classifyGoogleError(rawErr, SEND_SCOPE);
      if (err instanceof NeedsReauth) await this.#opts.credentials.markNeedsReauth(err.message);
      throw err instanceof RetryAfter ? new RetryAfter(err.seconds, `no access token: ${err.message}`, true) : err;
    }
    const sent = await this.#caller.call<gmail_v1.Schema$Message>(
      (o) => this.#api.users.messages.send({ userId: 'me', fields: 'id,threadId,labelIds', requestBody: { raw } }, o),
      'refused',
    );
    return { messageId: typeof sent.id === 'string' && sent.id !== '' ? sent.id : null };
  }
}
