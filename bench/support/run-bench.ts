/**
 * Runs a bench's `main` and ends the process: 0 once it is done (every child is stopped by
 * then; a library's stray timer must not keep the bench alive), 1 with the error printed.
 */
export function runBench(name: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(
        `${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
