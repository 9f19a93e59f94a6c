import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse, type CsvError } from 'csv-parse';
import { jsonNestsDeeperThan, tooDeepMessage } from './json-depth.js';
import { guardLineLength } from './line-length-guard.js';

export type CatalogFormat = 'csv' | 'jsonl';

/** One line of a catalog: its values, or why it could not be read. */
export type CatalogLine =
  | { line: number; values: Record<string, unknown>; problem?: undefined }
  | { line: number; values?: undefined; problem: string };

/**
 * Reads a catalog as it arrives, one row at a time: CSV with a header row, or JSON Lines.
 * A line that cannot be read (a wrong number of columns, a stray quote, bad JSON) is yielded
 * as a problem with its line number, and reading goes on; only an error that leaves the rest
 * unreadable (an unclosed quote running to the end) ends it. A line longer than
 * `maxLineBytes` ends it with CatalogLineTooLongError, before more than that is held.
 */
export function readCatalogStream(
  input: Readable,
  format: CatalogFormat,
  /**
   * The longest line (RENDERMILL_MAX_CATALOG_LINE_KB). A line is held whole while it is parsed,
   * so this bound, not the catalog's size, is what a catalog costs in memory.
   */
  maxLineBytes: number,
): AsyncGenerator<CatalogLine> {
  const guarded = guardLineLength(input, maxLineBytes);
  return format === 'csv' ? csvLines(guarded) : jsonLines(guarded);
}

/**
 * Lines csv-parse could not read (stray quotes) wait here until the next good row is yielded;
 * this many in a row and the body is not taken for a CSV at all: reading stops.
 */
const MAX_UNREADABLE_IN_A_ROW = 10_000;

async function* csvLines(input: Readable): AsyncGenerator<CatalogLine> {
  const skipped: CatalogLine[] = [];
  let tooManySkipped = false;
  let lastLine = 0;
  // Records as arrays, mapped to the header here: a row with a field too many or too few is a
  // problem of that row, reported in turn, never a pile of errors waiting in memory.
  const parser = input.pipe(
    parse({
      skip_empty_lines: true,
      trim: true,
      bom: true,
      info: true,
      skip_records_with_error: true,
      // Field counts are checked against the header below, row by row.
      relax_column_count: true,
      // Spreadsheets and hand edits mix line endings: take either on any line.
      record_delimiter: ['\r\n', '\n'],
    }),
  );
  parser.on('skip', (error: CsvError & { lines?: number }) => {
    skipped.push({ line: error.lines ?? 0, problem: csvProblem(error) });
    lastLine = error.lines ?? lastLine;
    if (skipped.length >= MAX_UNREADABLE_IN_A_ROW && !tooManySkipped) {
      tooManySkipped = true;
      input.unpipe(parser);
      parser.end();
    }
  });
  input.on('error', (error) => parser.destroy(error));
  let header: string[] | undefined;
  try {
    for await (const { record, info } of parser as AsyncIterable<{
      record: string[];
      info: { lines: number };
    }>) {
      yield* skipped.splice(0);
      lastLine = info.lines;
      if (!header) {
        header = record;
        continue;
      }
      if (record.length !== header.length) {
        yield {
          line: info.lines,
          problem: `has ${record.length} fields but the header has ${header.length}`,
        };
        continue;
      }
      yield {
        line: info.lines,
        values: Object.fromEntries(header.map((name, i) => [name, record[i]])),
      };
    }
  } catch (error) {
    yield* skipped.splice(0);
    const csv = error as CsvError & { lines?: number };
    if (!csv.code?.startsWith('CSV_')) throw error;
    yield { line: csv.lines ?? 0, problem: csvProblem(csv) };
    return;
  }
  yield* skipped.splice(0);
  if (tooManySkipped) {
    yield {
      line: lastLine,
      problem: `reading stopped: ${MAX_UNREADABLE_IN_A_ROW} lines in a row could not be read as CSV`,
    };
  }
}

/** csv-parse's messages end "… on line 7": the line is reported apart. */
function csvProblem(error: CsvError): string {
  return error.message.replace(/\s+on line \d+$/, '');
}

async function* jsonLines(input: Readable): AsyncGenerator<CatalogLine> {
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line += 1;
    if (!text.trim()) continue;
    if (jsonNestsDeeperThan(text)) {
      yield { line, problem: `not valid JSON (${tooDeepMessage()})` };
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      yield { line, problem: `not valid JSON (${(error as Error).message})` };
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      yield { line, problem: 'expected a JSON object' };
      continue;
    }
    yield { line, values: value as Record<string, unknown> };
  }
}
