// The interfaces between the engine and the connectors. Connectors know nothing of src/: what they
// must persist (credentials, token caches, channel records) they reach through these, which the
// store implements and the engine hands in.

export type Provider = 'google' | 'microsoft';

/**
 * One connection's credentials (OAuth tokens, or MSAL's serialised token cache), as an opaque
 * string that the store seals at rest. Scoped to one connection of one verified therapist.
 */
export interface CredentialStore {
  load(): Promise<string | undefined>;
  save(credentials: string): Promise<void>;
  /** The grant is gone: the connection stops working until the therapist consents again. */
  markNeedsReauth(reason: string): Promise<void>;
}
