import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';

export type CatalogRow = Record<string, string>;

export interface Catalog {
  columns: string[];
  /** Rows with the line they started on in the file, for error messages. */
  rows: { line: number; values: CatalogRow }[];
}

/** Raised for a catalog that cannot be read, naming the file and line. */
export class CatalogError extends Error {
  override name = 'CatalogError';
}

/**
 * Reads a catalog file: CSV with a header row (.csv), JSON Lines (.jsonl/.ndjson) or a JSON
 * array of objects (.json). Values are kept as strings; empty lines are skipped.
 */
export async function readCatalog(file: string): Promise<Catalog> {
  const lower = file.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return readJsonLines(file);
  if (lower.endsWith('.json')) return readJsonArray(file);
  return readCsv(file);
}

async function readCsv(file: string): Promise<Catalog> {
  const rows: Catalog['rows'] = [];
  const parser = createReadStream(file).pipe(
    parse({ columns: true, skip_empty_lines: true, trim: true, bom: true, info: true }),
  );
  try {
    for await (const record of parser as AsyncIterable<{
      record: CatalogRow;
      info: { lines: number };
    }>) {
      rows.push({ line: record.info.lines, values: record.record });
    }
  } catch (error) {
    throw new CatalogError(`${file}: ${(error as Error).message}`);
  }
  return { columns: rows[0] ? Object.keys(rows[0].values) : [], rows };
}

async function readJsonLines(file: string): Promise<Catalog> {
  const rows: Catalog['rows'] = [];
  let line = 0;
  for await (const text of createInterface({
    input: createReadStream(file),
    crlfDelay: Infinity,
  })) {
    line += 1;
    if (!text.trim()) continue;
    rows.push({ line, values: toRow(parseJson(text, `${file}:${line}`), `${file}:${line}`) });
  }
  return { columns: columnsOf(rows), rows };
}

async function readJsonArray(file: string): Promise<Catalog> {
  const data = parseJson(await readFile(file, 'utf8'), file);
  if (!Array.isArray(data)) throw new CatalogError(`${file}: expected a JSON array of objects`);
  const rows = data.map((value, i) => ({ line: i + 1, values: toRow(value, `${file}[${i}]`) }));
  return { columns: columnsOf(rows), rows };
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CatalogError(`${where}: not valid JSON (${(error as Error).message})`);
  }
}

function toRow(value: unknown, where: string): CatalogRow {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CatalogError(`${where}: expected an object`);
  }
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
  );
}

function columnsOf(rows: Catalog['rows']): string[] {
  return [...new Set(rows.flatMap((r) => Object.keys(r.values)))];
}
