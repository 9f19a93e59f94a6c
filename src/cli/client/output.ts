/** How the client commands write: results to stdout, notes and progress to stderr. */

/** A line of the command's result (stdout). */
export const say = (line = '') => void process.stdout.write(`${line}\n`);

/** A line for the person watching, kept out of what a script captures (stderr). */
export const note = (line = '') => void process.stderr.write(`${line}\n`);

/** The API's answer, for scripts (`--json`). */
export const printJson = (value: unknown) => say(JSON.stringify(value, null, 2));

/** Rows under a header, each column as wide as its widest cell. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  say(line(header));
  for (const row of rows) say(line(row));
}

/** `2026-11-20T09:00:00.000Z` → `2026-11-20 09:00:00Z`: short enough for a table. */
export const shortTime = (iso: string | null | undefined) =>
  iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';

/**
 * A reader that stops reading (`rendermill manifest … | head`) closes the pipe; like any Unix
 * tool, the command then stops, quietly, instead of dying on an EPIPE stack trace.
 */
export function stopQuietlyWhenStdoutCloses(): void {
  if (process.stdout.listenerCount('error') > 0) return;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}
