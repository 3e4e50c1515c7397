// Errors that stop the process at start-up or stop a command: each carries a one-line cause and
// what the operator should do, and is printed as such (no stack trace) by the CLI and the server.

export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    /** What is wrong, in one line. */
    readonly cause_: string,
    /** What to do about it, in one line. */
    readonly hint: string,
  ) {
    super(`${cause_}. ${hint}`);
  }
}

/** A value given by a user (settings, a command-line flag, an HTTP body) that we refuse. */
export class InvalidInput extends Error {
  override readonly name = 'InvalidInput';
  constructor(
    message: string,
    /** One entry per problem: where it is (a dotted path) and what rule it breaks. */
    readonly issues: readonly { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

/** Formats any error for a person: StartupError and InvalidInput as they are, others with their message. */
export function describeError(err: unknown): string {
  if (err instanceof StartupError) return err.message;
  if (err instanceof InvalidInput) {
    if (err.issues.length === 0) return err.message;
    return [err.message, ...err.issues.map((i) => `  ${i.path}: ${i.message}`)].join('\n');
  }
  if (err instanceof Error) return err.message;
  return String(err);
}
