import type { Logger } from 'pino';

/**
 * The exit code of a process stopped by an error nothing handled (EX_SOFTWARE): not 0, so a
 * supervisor (Kubernetes, systemd, docker's restart policy) starts it again, and not 1, so it
 * reads apart from a failed start-up in the logs.
 */
export const FATAL_EXIT_CODE = 70;

/** How long the log may take to reach its destination before the process exits anyway. */
const LOG_FLUSH_TIMEOUT_MS = 2_000;

/** Why the process is going down, once an error nothing handled was seen; else undefined. */
let fatalReason: string | undefined;

/**
 * Why the process is about to exit, after an uncaught exception or unhandled rejection, or
 * undefined while all is well. Readiness reads it: a process on its way out takes no traffic.
 */
export const fatalError = (): string | undefined => fatalReason;

export interface FatalErrorPolicyOptions {
  logger: Logger;
  /** Ends the process. Default `process.exit`; tests pass their own. */
  exit?: (code: number) => void;
  /** How long the log may take to reach its destination before the process exits. Default 2 s. */
  flushTimeoutMs?: number;
  /** Also tells a person at a terminal, when the log goes to a file (`rendermill render`). */
  announce?: (line: string) => void;
}

/**
 * What a long-running process (api, worker, start, render) does with an error that escaped
 * every handler: after an `uncaughtException` or `unhandledRejection` its state is unknown —
 * a job half-recorded, a connection in the middle of a command — so it does not carry on.
 * It marks itself not ready (/readyz answers 503), logs the error at `fatal` with its stack,
 * and exits with FATAL_EXIT_CODE for its supervisor to start a clean one; jobs it held go back
 * to the queue when their locks expire. Returns a function that removes the handlers.
 *
 * Requests do not get here: every error a request causes ends in the API's error handler as
 * an answer (4xx for the sender's input). This is for rendermill's own bugs.
 */
export function installFatalErrorPolicy(options: FatalErrorPolicyOptions): () => void {
  const {
    logger,
    exit = (code) => process.exit(code),
    flushTimeoutMs = LOG_FLUSH_TIMEOUT_MS,
    announce,
  } = options;
  const fail = (kind: 'uncaughtException' | 'unhandledRejection', error: unknown) => {
    if (fatalReason !== undefined) return; // already on the way out
    const message = error instanceof Error ? error.message : String(error);
    fatalReason = `${kind}: ${message}`;
    logger.fatal(
      { err: error, kind },
      `${kind}: the process is in an unknown state; exiting with ${FATAL_EXIT_CODE} for the supervisor to restart it`,
    );
    announce?.(`rendermill: ${fatalReason}; exiting (see the log)`);
    // An asynchronous log destination (the render command's log file) is written out first;
    // if that hangs, the exit does not wait on it.
    const timer = setTimeout(() => exit(FATAL_EXIT_CODE), flushTimeoutMs);
    logger.flush(() => {
      clearTimeout(timer);
      exit(FATAL_EXIT_CODE);
    });
  };
  const onException = (error: Error) => fail('uncaughtException', error);
  const onRejection = (reason: unknown) => fail('unhandledRejection', reason);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
