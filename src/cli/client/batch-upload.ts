import { readTemplateArgument } from '../../catalog/template.js';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ClientUsageError } from './client-errors.js';
import { modeFields, type ModeFlags } from '../mode-options.js';

/** The options `submit` and `estimate` share: how to turn a catalog into a batch. */
export interface BatchOptions extends ModeFlags {
  /** A prompt template with `{{column}}` placeholders, or a file holding one. */
  template?: string;
  size?: string;
  model?: string;
  quality?: string;
  n?: number;
  /** Spending cap of the batch, in USD. */
  budget?: number;
  /** The column naming each row (the API's default: `sku`, else `id`, else the line number). */
  idColumn?: string;
  /** What the API does with invalid rows: `reject` the whole batch (its default) or `skip` them. */
  onInvalid?: 'reject' | 'skip';
  webhook?: string;
  /** `reuse` (the API's default) or `refresh`. */
  cache?: 'reuse' | 'refresh';
}

/** A request body: a string, or a stream of a file's bytes. */
export type RequestBody = string | Readable;

/** A batch ready to send: its body, how it is encoded, and the options as query parameters. */
export interface BatchUpload {
  contentType: string;
  /** A fresh body for each try: a file stream cannot be sent twice. */
  body: () => RequestBody;
  query: Record<string, string>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.csv': 'text/csv',
  '.jsonl': 'application/x-ndjson',
  '.ndjson': 'application/x-ndjson',
};

/** Fields of the JSON batch request that a flag may set. */
const REQUEST_FIELDS = {
  size: 'size',
  model: 'model',
  quality: 'quality',
  n: 'n',
  budget: 'budget_usd',
  webhook: 'webhook_url',
  cache: 'cache',
  mode: 'mode',
  completeBy: 'complete_by',
  onExpiry: 'on_expiry',
} as const satisfies Partial<Record<keyof BatchOptions, string>>;

/**
 * Prepares `file` for `POST /v1/batches` (or `/estimate`). CSV and JSON Lines are streamed
 * from disk — a 100,000-row catalog is never held in memory — with the options in the query
 * string. A `.json` file is small enough to read: an array of rows is sent as JSON Lines, an
 * object is the API's JSON batch request, which the flags amend.
 */
export async function batchUpload(file: string, options: BatchOptions): Promise<BatchUpload> {
  await mustBeReadableFile(file);
  const ext = path.extname(file).toLowerCase();
  const onInvalid: Record<string, string> = options.onInvalid
    ? { on_invalid: options.onInvalid }
    : {};
  const streamed = CONTENT_TYPES[ext];
  if (streamed) {
    return {
      contentType: streamed,
      body: () => createReadStream(file),
      query: { ...(await catalogQuery(options)), ...onInvalid },
    };
  }
  if (ext !== '.json') {
    throw new ClientUsageError(
      `cannot tell what ${file} holds: name it .csv (with a header row), .jsonl, .ndjson, or .json`,
    );
  }
  const json = parseJson(file, await readFile(file, 'utf8'));
  if (Array.isArray(json)) {
    const lines = json.map((row) => JSON.stringify(row)).join('\n') + '\n';
    return {
      contentType: 'application/x-ndjson',
      body: () => lines,
      query: { ...(await catalogQuery(options)), ...onInvalid },
    };
  }
  if (typeof json !== 'object' || json === null) {
    throw new ClientUsageError(`${file} holds neither an array of rows nor a batch request object`);
  }
  if (options.template !== undefined || options.idColumn !== undefined) {
    throw new ClientUsageError(
      `${file} is a JSON batch request: its items carry their prompts and ids, so --template and --id-column do not apply`,
    );
  }
  const request: Record<string, unknown> = { ...json };
  for (const [option, field] of Object.entries(REQUEST_FIELDS)) {
    const value = options[option as keyof typeof REQUEST_FIELDS];
    if (value !== undefined) request[field] = value;
  }
  const text = JSON.stringify(request);
  return { contentType: 'application/json', body: () => text, query: onInvalid };
}

/** The flags of a catalog upload as the API's query parameters. */
async function catalogQuery(options: BatchOptions): Promise<Record<string, string>> {
  const query: Record<string, string | number | undefined> = {
    template:
      options.template === undefined ? undefined : await readTemplateArgument(options.template),
    model: options.model,
    size: options.size,
    quality: options.quality,
    n: options.n,
    budget_usd: options.budget,
    id_column: options.idColumn,
    webhook_url: options.webhook,
    cache: options.cache,
    ...modeFields(options),
  };
  return Object.fromEntries(
    Object.entries(query)
      .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
      .map(([key, value]) => [key, String(value)]),
  );
}

async function mustBeReadableFile(file: string): Promise<void> {
  try {
    if ((await stat(file)).isFile()) return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ClientUsageError(
      `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`,
    );
  }
  throw new ClientUsageError(`cannot read ${file}: not a file`);
}

/** Reads a small JSON file given on the command line, or says in one line why it cannot. */
export async function readJsonFile(file: string): Promise<unknown> {
  await mustBeReadableFile(file);
  return parseJson(file, await readFile(file, 'utf8'));
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ClientUsageError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}
