import OpenAI, { APIError, toFile } from 'openai';
import { ProviderRejectedError } from '../errors.js';
import { errorForNoAnswer, toProviderError } from './provider-errors.js';

/** A batch's status, as OpenAI's Batch API names it. */
export type ProviderBatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

/** The statuses after which a batch changes no more: its files, if any, are final. */
export const ENDED_STATUSES: ReadonlySet<ProviderBatchStatus> = new Set([
  'completed',
  'failed',
  'expired',
  'cancelled',
]);

/** The endpoints rendermill runs batches of. */
export type ProviderBatchEndpoint = '/v1/images/generations' | '/v1/images/edits';

type BatchPhase =
  | 'created'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'failed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

/** A provider batch as rendermill follows it. */
export interface ProviderBatchState {
  id: string;
  status: ProviderBatchStatus;
  endpoint: string;
  inputFileId: string;
  outputFileId?: string | undefined;
  errorFileId?: string | undefined;
  counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string>;
  /** Why the batch failed validation (bad lines, the enqueued-token limit). */
  errors: { code: string; message: string; line?: number | undefined }[];
  /** Epoch ms of each phase reached, for progress and the closing figures. */
  times: Partial<Record<BatchPhase, number>>;
}

/** An uploaded file, as far as rendermill needs it. */
export interface ProviderFile {
  id: string;
  bytes: number;
}

/** One line of a batch's output or error file. */
export type BatchLineResult =
  | { customId: string; ok: true; body: unknown /* the Images API answer */ }
  | { customId: string; ok: false; statusCode?: number; code: string; message: string };

export interface OpenAIBatchApiOptions {
  baseUrl: string;
  apiKey: string;
  /** Per-call timeout; a timed-out call is a retryable ProviderUnavailableError. Default 120 s. */
  timeoutMs?: number;
}

/** Where each phase's time is in OpenAI's Batch object (epoch seconds). */
const PHASE_FIELDS = {
  created: 'created_at',
  in_progress: 'in_progress_at',
  finalizing: 'finalizing_at',
  completed: 'completed_at',
  failed: 'failed_at',
  expired: 'expired_at',
  cancelling: 'cancelling_at',
  cancelled: 'cancelled_at',
} as const satisfies Record<BatchPhase, keyof OpenAI.Batches.Batch>;

/** Batch list pages asked for when scanning: the most OpenAI gives per page. */
const BATCH_PAGE_SIZE = 100;

function batchState(batch: OpenAI.Batches.Batch): ProviderBatchState {
  const times: ProviderBatchState['times'] = {};
  for (const [phase, field] of Object.entries(PHASE_FIELDS) as [BatchPhase, string][]) {
    const at = (batch as unknown as Record<string, unknown>)[field];
    if (typeof at === 'number') times[phase] = at * 1000;
  }
  const counts = batch.request_counts;
  return {
    id: batch.id,
    status: batch.status,
    endpoint: batch.endpoint,
    inputFileId: batch.input_file_id,
    outputFileId: batch.output_file_id ?? undefined,
    errorFileId: batch.error_file_id ?? undefined,
    counts: {
      total: counts?.total ?? 0,
      completed: counts?.completed ?? 0,
      failed: counts?.failed ?? 0,
    },
    metadata: { ...(batch.metadata ?? {}) },
    errors: (batch.errors?.data ?? []).map((error) => ({
      code: error.code ?? 'unknown',
      message: error.message ?? '',
      line: error.line ?? undefined,
    })),
    times,
  };
}

/**
 * The typed error of a Files or Batches call. A 404 here names a file or batch, not a model,
 * so it is a refusal of this call rather than the registry's ModelUnavailableError.
 */
function toBatchApiError(error: unknown): Error {
  if (error instanceof APIError && error.status === 404) {
    return new ProviderRejectedError(error.message, 'not_found');
  }
  return toProviderError(error);
}

async function mapped<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toBatchApiError(error);
  }
}

/**
 * OpenAI's Files and Batches APIs, for the image endpoints, through the official SDK. The
 * SDK's retries are off: a `batches.create` retried after a lost answer would create a second
 * batch and pay twice. Callers retry themselves, after looking with `findFile`/`findBatch`.
 */
export class OpenAIBatchApi {
  private readonly client: OpenAI;

  constructor(options: OpenAIBatchApiOptions) {
    this.client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseUrl,
      maxRetries: 0,
      timeout: options.timeoutMs ?? 120_000,
    });
  }

  /** Uploads a JSONL (a Buffer, or lines without their newlines) as purpose=batch under `filename`. */
  async uploadFile(
    filename: string,
    content: Buffer | AsyncIterable<string>,
  ): Promise<ProviderFile> {
    return mapped(async () => {
      const body = Buffer.isBuffer(content) ? content : withNewlines(content);
      const file = await toFile(body, filename, { type: 'application/jsonl' });
      const created = await this.client.files.create({ file, purpose: 'batch' });
      return { id: created.id, bytes: created.bytes };
    });
  }

  /** The newest batch-purpose file with this filename, if one was uploaded (a crash after upload). */
  async findFile(filename: string): Promise<ProviderFile | undefined> {
    return mapped(async () => {
      for await (const file of this.client.files.list({ purpose: 'batch', order: 'desc' })) {
        if (file.filename === filename) return { id: file.id, bytes: file.bytes };
      }
      return undefined;
    });
  }

  async createBatch(input: {
    inputFileId: string;
    endpoint: ProviderBatchEndpoint;
    metadata: Record<string, string>;
  }): Promise<ProviderBatchState> {
    return mapped(async () =>
      batchState(
        await this.client.batches.create({
          input_file_id: input.inputFileId,
          endpoint: input.endpoint,
          completion_window: '24h',
          metadata: input.metadata,
        }),
      ),
    );
  }

  /**
   * A batch created with all of these metadata values (a crash after creation); scans the
   * list newest first, stopping after `maxScan` batches.
   */
  async findBatch(
    metadata: Record<string, string>,
    maxScan = 1000,
  ): Promise<ProviderBatchState | undefined> {
    const wanted = Object.entries(metadata);
    return mapped(async () => {
      let scanned = 0;
      for await (const batch of this.client.batches.list({ limit: BATCH_PAGE_SIZE })) {
        if (scanned++ >= maxScan) return undefined;
        if (wanted.every(([key, value]) => batch.metadata?.[key] === value)) {
          return batchState(batch);
        }
      }
      return undefined;
    });
  }

  async getBatch(id: string): Promise<ProviderBatchState> {
    return mapped(async () => batchState(await this.client.batches.retrieve(id)));
  }

  async cancelBatch(id: string): Promise<ProviderBatchState> {
    return mapped(async () => batchState(await this.client.batches.cancel(id)));
  }

  /**
   * The file's lines, streamed, empty lines skipped: an output file of 1,000 1024² images is
   * ~1.5 GB, never to be held whole.
   */
  async *fileLines(fileId: string): AsyncIterable<string> {
    const response = await mapped(() => this.client.files.content(fileId));
    if (!response.body) return;
    const decoder = new TextDecoder('utf-8');
    // A line of a large image arrives in many chunks: its pieces are joined once, at its end.
    let pieces: string[] = [];
    const line = () => {
      const text = pieces.join('').replace(/\r$/, '');
      pieces = [];
      return text;
    };
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        const text = decoder.decode(chunk, { stream: true });
        let start = 0;
        for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
          pieces.push(text.slice(start, end));
          start = end + 1;
          const complete = line();
          if (complete.trim() !== '') yield complete;
        }
        pieces.push(text.slice(start));
      }
      pieces.push(decoder.decode());
    } catch (error) {
      throw errorForNoAnswer(error, `reading file ${fileId}`);
    }
    const last = line();
    if (last.trim() !== '') yield last;
  }
}

async function* withNewlines(lines: AsyncIterable<string>): AsyncIterable<string> {
  for await (const line of lines) yield line + '\n';
}

/** A line of a batch's output or error file that is not what OpenAI writes there. */
export class MalformedBatchLineError extends Error {
  override name = 'MalformedBatchLineError';
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const text = (value: unknown) => (typeof value === 'string' ? value : undefined);

/**
 * Reads one line of an output or error file: `{id, custom_id, response: {status_code,
 * request_id, body}, error}`. A line is a success only with a 2xx status and no `error`: a
 * request the API refused has its error object where the answer would be.
 */
export function parseBatchLine(line: string): BatchLineResult {
  const malformed = (why: string) =>
    new MalformedBatchLineError(`malformed batch result line (${why}): ${line.slice(0, 200)}`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw malformed('not JSON');
  }
  if (!isRecord(value)) throw malformed('not a JSON object');
  const customId = text(value.custom_id);
  if (customId === undefined) throw malformed('no custom_id');
  const { response, error } = value;
  if (response !== null && response !== undefined && !isRecord(response)) {
    throw malformed('response is not an object');
  }
  const statusCode = typeof response?.status_code === 'number' ? response.status_code : undefined;
  if (error !== null && error !== undefined) {
    if (!isRecord(error)) throw malformed('error is not an object');
    return {
      customId,
      ok: false,
      ...(statusCode === undefined ? {} : { statusCode }),
      code: text(error.code) ?? 'batch_request_failed',
      message: text(error.message) ?? '',
    };
  }
  if (!response) throw malformed('neither response nor error');
  if (statusCode === undefined) throw malformed('response has no status_code');
  if (statusCode >= 200 && statusCode < 300) return { customId, ok: true, body: response.body };
  const refusal =
    isRecord(response.body) && isRecord(response.body.error) ? response.body.error : {};
  return {
    customId,
    ok: false,
    statusCode,
    code: text(refusal.code) ?? text(refusal.type) ?? `http_${statusCode}`,
    message: text(refusal.message) ?? `the request was answered ${statusCode}`,
  };
}
