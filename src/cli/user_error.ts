/** A mistake in the command line or its input: printed without a stack trace, exit status 2. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}
