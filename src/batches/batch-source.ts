import type { Readable } from 'node:stream';
import { z } from 'zod';
import { cappedList } from '../request-validation.js';
import { readCatalogStream, type CatalogFormat } from '../catalog/catalog-stream.js';
import { PromptTemplate } from '../catalog/template.js';
import type { FieldProblem } from '../errors.js';
import { parseRequest, validationError } from '../request-validation.js';
import {
  MAX_ITEMS_PER_REQUEST,
  batchRequestSchema,
  catalogOptionsSchema,
  type BatchRequest,
} from '../contracts/batch-request.js';
import { isOpenAiBatchLine, openAiBatchItem } from './openai-batch-line.js';

/** One would-be item: its position, the catalog line it came from, and what it says. */
export type ItemCandidate =
  | { index: number; line?: number | undefined; item: unknown; problems?: undefined }
  | { index: number; line?: number | undefined; item?: undefined; problems: FieldProblem[] };

/** What bad items do to a submission: refuse it whole (default), or skip them and take the rest. */
export type OnInvalid = 'reject' | 'skip';

/**
 * A batch as it arrives: its options, and its items one at a time — from a JSON body, or
 * streamed from a CSV / JSON Lines / OpenAI Batch catalog so that a 100,000-row file never sits
 * in memory whole.
 */
export interface BatchSource {
  format: 'json' | CatalogFormat | 'openai-batch';
  options: Omit<BatchRequest, 'items'>;
  onInvalid: OnInvalid;
  candidates: AsyncIterable<ItemCandidate>;
}

/**
 * A JSON batch as far as the batch itself goes: its items are checked one by one as they are
 * resolved, so that `on_invalid: skip` can skip a badly shaped item too.
 */
const batchEnvelopeSchema = batchRequestSchema.extend({
  items: z
    .array(z.unknown())
    .min(1, 'a batch needs at least one item')
    .max(MAX_ITEMS_PER_REQUEST, `at most ${MAX_ITEMS_PER_REQUEST} items per request`),
});

/** A `POST /v1/batches` JSON body (in memory already: it is parsed whole). */
export function jsonBatchSource(body: unknown, onInvalid: OnInvalid = 'reject'): BatchSource {
  const { items, ...options } = parseRequest(batchEnvelopeSchema, body);
  return {
    format: 'json',
    options,
    onInvalid,
    candidates: (async function* () {
      for (const [index, item] of items.entries()) yield { index, item };
    })(),
  };
}

export type CatalogOptions = z.infer<typeof catalogOptionsSchema>;

/**
 * A catalog body: rows become items through the prompt template (`{{column}}` placeholders)
 * and the batch's defaults, given as query parameters. Each row's id comes from `id_column`,
 * else `sku`, else `id`, else its line number. Lines of an OpenAI Batch file (`custom_id`,
 * `method`, `url`, `body`) are taken as they are.
 */
export function catalogBatchSource(
  body: Readable,
  format: CatalogFormat,
  query: unknown,
  /** The longest line read (RENDERMILL_MAX_CATALOG_LINE_KB); a longer one refuses the catalog. */
  maxLineBytes: number,
): BatchSource {
  const {
    template: templateText,
    id_column: idColumn,
    on_invalid,
    ...options
  } = parseRequest(catalogOptionsSchema, query);
  const template = templateText ? new PromptTemplate(templateText) : undefined;
  const source: BatchSource = {
    format,
    options,
    onInvalid: on_invalid ?? 'reject',
    candidates: candidates(),
  };
  return source;

  async function* candidates(): AsyncGenerator<ItemCandidate> {
    let index = 0;
    let first = true;
    for await (const row of readCatalogStream(body, format, maxLineBytes)) {
      const at = { index: index++, line: row.line };
      if (row.problem !== undefined) {
        yield { ...at, problems: [{ field: '', message: row.problem, line: row.line }] };
        continue;
      }
      if (first) {
        first = false;
        if (format === 'jsonl' && isOpenAiBatchLine(row.values)) source.format = 'openai-batch';
        else checkColumns(row.values);
      }
      if (source.format === 'openai-batch') {
        const converted = openAiBatchItem(row.values);
        yield 'item' in converted
          ? { ...at, item: converted.item }
          : { ...at, problems: converted.problems.map((p) => ({ ...p, line: row.line })) };
        continue;
      }
      yield rowItem(row.values, at);
    }
  }

  /** A CSV's columns are the same on every row: a template naming a missing one fails them all. */
  function checkColumns(values: Record<string, unknown>) {
    const columns = Object.keys(values);
    const missing = template?.missingColumns(columns) ?? [];
    const problems: FieldProblem[] = [];
    if (format === 'csv' && missing.length > 0) {
      problems.push({
        field: 'template',
        message: `uses ${cappedList(missing, (m) => `{{${m}}}`)} but the catalog has no such column; its columns: ${cappedList(columns)}`,
      });
    }
    if (format === 'csv' && !template && !columns.includes('prompt')) {
      problems.push({
        field: 'template',
        message: `a catalog without a prompt column needs a template; its columns: ${cappedList(columns)}`,
      });
    }
    if (format === 'csv' && idColumn && !columns.includes(idColumn)) {
      problems.push({
        field: 'id_column',
        message: `"${idColumn}" is not a column of the catalog; its columns: ${cappedList(columns)}`,
      });
    }
    if (problems.length > 0) throw validationError(problems, 'invalid_catalog');
  }

  function rowItem(
    values: Record<string, unknown>,
    at: { index: number; line: number },
  ): ItemCandidate {
    const problems: FieldProblem[] = [];
    const missing = template?.missingColumns(Object.keys(values)) ?? [];
    if (missing.length > 0) {
      problems.push({
        field: 'template',
        message: `the row has no ${cappedList(missing, (m) => `"${m}"`)} for the template`,
        line: at.line,
      });
    }
    const column = idColumn ?? ['sku', 'id'].find((c) => values[c] !== undefined);
    const rawId = column ? values[column] : `row-${at.line}`;
    const id = typeof rawId === 'number' ? String(rawId) : rawId;
    if (typeof id !== 'string' || id.trim() === '') {
      problems.push({ field: column ?? 'id', message: 'is empty', line: at.line });
    }
    const prompt = template ? template.render(values) : values.prompt;
    if (!template && typeof prompt !== 'string') {
      problems.push({
        field: 'prompt',
        message: 'the row has no prompt and there is no template',
        line: at.line,
      });
    }
    if (problems.length > 0) return { ...at, problems };
    return { ...at, item: { id: (id as string).trim(), prompt } };
  }
}

/** The content types a catalog may be sent as, by format. */
export const CATALOG_CONTENT_TYPES: Record<string, CatalogFormat> = {
  'text/csv': 'csv',
  'application/csv': 'csv',
  'application/x-ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
  'application/x-jsonlines': 'jsonl',
  'application/jsonlines': 'jsonl',
};
