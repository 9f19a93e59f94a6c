import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse, type CsvError } from 'csv-parse';

export type CatalogFormat = 'csv' | 'jsonl';

/** One line of a catalog: its values, or why it could not be read. */
export type CatalogLine =
  | { line: number; values: Record<string, unknown>; problem?: undefined }
  | { line: number; values?: undefined; problem: string };

/**
 * Reads a catalog as it arrives, one row at a time: CSV with a header row, or JSON Lines.
 * A line that cannot be read (a wrong number of columns, a stray quote, bad JSON) is yielded
 * as a problem with its line number, and reading goes on; only an error that leaves the rest
 * unreadable (an unclosed quote running to the end) ends it.
 */
export function readCatalogStream(
  input: Readable,
  format: CatalogFormat,
): AsyncGenerator<CatalogLine> {
  return format === 'csv' ? csvLines(input) : jsonLines(input);
}

async function* csvLines(input: Readable): AsyncGenerator<CatalogLine> {
  const skipped: CatalogLine[] = [];
  const parser = input.pipe(
    parse({
      columns: true,
      skip_empty_lines: true,
      trim: true,
      bom: true,
      info: true,
      skip_records_with_error: true,
      // Spreadsheets and hand edits mix line endings: take either on any line.
      record_delimiter: ['\r\n', '\n'],
    }),
  );
  // A bad line is reported through 'skip', not the iterator: collected and yielded in turn.
  parser.on('skip', (error: CsvError & { lines?: number }) => {
    skipped.push({ line: error.lines ?? 0, problem: csvProblem(error) });
  });
  input.on('error', (error) => parser.destroy(error));
  try {
    for await (const { record, info } of parser as AsyncIterable<{
      record: Record<string, string>;
      info: { lines: number };
    }>) {
      yield* skipped.splice(0);
      yield { line: info.lines, values: record };
    }
  } catch (error) {
    yield* skipped.splice(0);
    const csv = error as CsvError & { lines?: number };
    if (!csv.code?.startsWith('CSV_')) throw error;
    yield { line: csv.lines ?? 0, problem: csvProblem(csv) };
    return;
  }
  yield* skipped.splice(0);
}

/** csv-parse's messages say "Invalid Record Length: columns length is 3, got 4 on line 7". */
function csvProblem(error: CsvError): string {
  const length = /columns length is (\d+), got (\d+)/.exec(error.message);
  if (length) return `has ${length[2]} fields but the header has ${length[1]}`;
  return error.message.replace(/\s+on line \d+$/, '');
}

async function* jsonLines(input: Readable): AsyncGenerator<CatalogLine> {
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line += 1;
    if (!text.trim()) continue;
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
