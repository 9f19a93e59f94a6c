/**
 * Thrown when a local tool rendermill needs (e.g. redis-server) is not installed. The message is
 * meant to be shown to the user as-is, so it always says how to fix the problem.
 */
export class MissingDependencyError extends Error {
  override readonly name = 'MissingDependencyError';

  constructor(
    message: string,
    /** The shell command that installs the dependency on this platform. */
    readonly installCommand: string,
  ) {
    super(message);
  }
}
