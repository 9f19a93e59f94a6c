import { Transform, type Readable } from 'node:stream';
import { RendermillError } from '../errors.js';

const NEWLINE = 0x0a;

/** A catalog line longer than the bound: the catalog is refused (413) at that line. */
export class CatalogLineTooLongError extends RendermillError {
  override name = 'CatalogLineTooLongError';
  readonly code = 'line_too_long';
  constructor(
    readonly line: number,
    readonly maxBytes: number,
  ) {
    super(
      `line ${line} of the catalog is longer than ${maxBytes} bytes, the most a line may hold ` +
        '(RENDERMILL_MAX_CATALOG_LINE_KB): put one row on each line',
    );
  }
}

/**
 * Passes a catalog through unchanged while counting the bytes of each line, and fails with
 * CatalogLineTooLongError as soon as one grows past `maxBytes` — before the bytes over the bound
 * are handed on. Whatever reads lines after it (readline, csv-parse) therefore never holds more
 * than `maxBytes` of one line, however long the line the sender wrote: a line of hundreds of
 * megabytes without a newline costs `maxBytes`, not a string the runtime cannot hold.
 */
export function guardLineLength(input: Readable, maxBytes: number): Readable {
  let line = 1;
  let lineBytes = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      let start = 0;
      for (;;) {
        const newline = chunk.indexOf(NEWLINE, start);
        const end = newline === -1 ? chunk.length : newline;
        lineBytes += end - start;
        if (lineBytes > maxBytes) {
          callback(new CatalogLineTooLongError(line, maxBytes));
          return;
        }
        if (newline === -1) break;
        line += 1;
        lineBytes = 0;
        start = newline + 1;
      }
      callback(null, chunk);
    },
  });
  input.on('error', (error) => guard.destroy(error));
  return input.pipe(guard);
}
