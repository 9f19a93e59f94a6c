import { randomBytes } from 'node:crypto';
import type { ModelRegistry } from '../../src/models/model-registry.js';
import { answerWithImages, tokenUsage } from './image-answer.js';
import { checkContentPolicy } from './image-request-pipeline.js';
import { readJsonBody } from './image-routes.js';
import { openAiId, type BatchFiles, type StoredFile } from './batch-files.js';
import { checkInputs, validateImageRequest, type ImageRequest } from './request-checks.js';
import type { ServedFiles } from './served-files.js';
import { SimulatedError, invalid } from './simulated-error.js';
import type { SimulatorState } from './simulator-state.js';

/** The endpoints a batch may run, as its lines' `url` names them. */
export const BATCH_ENDPOINTS = ['/v1/images/generations', '/v1/images/edits'] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

/** Statuses after which nothing about a batch changes. */
const ENDED: ReadonlySet<BatchStatus> = new Set(['failed', 'completed', 'expired', 'cancelled']);

/** A status whose lines' tokens count against the model's enqueued-token limit. */
const ENQUEUED: ReadonlySet<BatchStatus> = new Set(['validating', 'in_progress', 'finalizing']);

type Phase =
  | 'created'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'failed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

/** One problem of an input file, as `errors.data` lists it. */
export interface BatchProblem {
  code: string;
  message: string;
  line: number | null;
  param: string | null;
}

/** An input line that passed the file's checks. */
interface InputLine {
  customId: string;
  body: Record<string, unknown>;
}

/** What reading an input file found: its lines and model, or what is wrong with it. */
type CheckedFile =
  | { ok: true; lines: InputLine[]; model: string; tokens: number }
  | { ok: false; problems: BatchProblem[] };

interface SimBatch {
  id: string;
  endpoint: BatchEndpoint;
  inputFileId: string;
  metadata: Record<string, string> | null;
  status: BatchStatus;
  /** Epoch ms of each phase reached. */
  times: Partial<Record<Phase, number>>;
  expiresAt: number;
  checked: CheckedFile;
  problems: BatchProblem[] | null;
  counts: { total: number; completed: number; failed: number };
  /** Indices of the lines that got a result, in either file. */
  done: Set<number>;
  output: Buffer[];
  errorsOut: Buffer[];
  outputFileId: string | null;
  errorFileId: string | null;
  /** The expiry came while a line was rendering: it takes effect once that line is recorded. */
  expiryDue: boolean;
  /** Cleared when the batch ends, so an ended batch is not held by a 24 h timer. */
  expiryTimer?: NodeJS.Timeout;
  lineRunning: boolean;
}

/** What a batch needs from the rest of the simulator. */
export interface BatchContext {
  state: SimulatorState;
  registry: ModelRegistry;
  files: BatchFiles;
  served: ServedFiles;
  origin: () => string;
}

const seconds = (ms: number | undefined) => (ms === undefined ? null : Math.floor(ms / 1000));
const hexId = (prefix: string) => prefix + randomBytes(16).toString('hex');
const jsonLine = (value: unknown) => Buffer.from(JSON.stringify(value) + '\n');
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The lines of a file's content, with their 1-based numbers; blank lines are skipped. */
function* contentLines(file: StoredFile): Generator<{ text: string; number: number }> {
  const text = Buffer.concat(file.chunks).toString('utf8');
  let number = 0;
  for (const raw of text.split('\n')) {
    number += 1;
    if (raw.trim() !== '') yield { text: raw, number };
  }
}

/**
 * The Batch API's batches: created from an uploaded file, moved through OpenAI's statuses by
 * timers, their lines rendered one after another through the Images API's checks and renderer.
 */
export class BatchJobs {
  /** Newest last; listed newest first. */
  private readonly batches = new Map<string, SimBatch>();
  private readonly sleeping = new Map<NodeJS.Timeout, () => void>();
  /** Bumped by `clear`: a run of an older epoch stops at its next step. */
  private epoch = 0;

  constructor(private readonly context: BatchContext) {}

  /** Creates a batch of the file, `validating`; its run starts at once. */
  create(input: {
    inputFile: StoredFile;
    endpoint: BatchEndpoint;
    metadata: Record<string, string> | null;
  }): SimBatch {
    const now = Date.now();
    const batch: SimBatch = {
      id: openAiId('batch_'),
      endpoint: input.endpoint,
      inputFileId: input.inputFile.id,
      metadata: input.metadata,
      status: 'validating',
      times: { created: now },
      expiresAt: now + this.context.state.knobs.batchExpireMs,
      checked: this.checkFile(input.inputFile, input.endpoint),
      problems: null,
      counts: { total: 0, completed: 0, failed: 0 },
      done: new Set(),
      output: [],
      errorsOut: [],
      outputFileId: null,
      errorFileId: null,
      expiryDue: false,
      lineRunning: false,
    };
    this.batches.set(batch.id, batch);
    const epoch = this.epoch;
    const expiry = setTimeout(() => {
      this.sleeping.delete(expiry);
      if (epoch === this.epoch) this.expireWhenIdle(batch);
    }, this.context.state.knobs.batchExpireMs);
    expiry.unref();
    this.sleeping.set(expiry, () => {});
    batch.expiryTimer = expiry;
    void this.run(batch, epoch);
    return batch;
  }

  get(id: string): SimBatch | undefined {
    return this.batches.get(id);
  }

  /** Every batch, newest first. */
  list(): SimBatch[] {
    return [...this.batches.values()].reverse();
  }

  /** Asks a batch to stop: `cancelling` now, `cancelled` once its run has wound down. */
  cancel(batch: SimBatch): void {
    if (ENDED.has(batch.status)) {
      throw invalid(`Cannot cancel a batch with status '${batch.status}'.`, 'batch_id');
    }
    if (batch.status === 'cancelling') return;
    batch.status = 'cancelling';
    batch.times.cancelling = Date.now();
  }

  /** Forgets every batch and stops every timer: a run in progress ends at its next step. */
  clear(): void {
    this.epoch += 1;
    for (const [timer, wake] of this.sleeping) {
      clearTimeout(timer);
      wake();
    }
    this.sleeping.clear();
    this.batches.clear();
  }

  /** The Batch object as OpenAI answers it. */
  static answer(batch: SimBatch) {
    const { times } = batch;
    return {
      id: batch.id,
      object: 'batch',
      endpoint: batch.endpoint,
      model: batch.checked.ok ? batch.checked.model : null,
      errors: batch.problems ? { object: 'list', data: batch.problems } : null,
      input_file_id: batch.inputFileId,
      completion_window: '24h',
      status: batch.status,
      output_file_id: batch.outputFileId,
      error_file_id: batch.errorFileId,
      created_at: seconds(times.created),
      in_progress_at: seconds(times.in_progress),
      expires_at: seconds(batch.expiresAt),
      finalizing_at: seconds(times.finalizing),
      completed_at: seconds(times.completed),
      failed_at: seconds(times.failed),
      expired_at: seconds(times.expired),
      cancelling_at: seconds(times.cancelling),
      cancelled_at: seconds(times.cancelled),
      request_counts: { ...batch.counts },
      metadata: batch.metadata,
    };
  }

  /** Resolves true after `ms`, or false at once when `clear` comes first. */
  private sleep(ms: number, epoch: number): Promise<boolean> {
    if (epoch !== this.epoch) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping.delete(timer);
        resolve(epoch === this.epoch);
      }, ms);
      this.sleeping.set(timer, () => resolve(false));
    });
  }

  /** A batch's life from `validating` to its end; every step rereads the knobs. */
  private async run(batch: SimBatch, epoch: number): Promise<void> {
    const knobs = () => this.context.state.knobs;
    if (!(await this.sleep(knobs().batchValidatingMs, epoch))) return;
    if (batch.status === 'validating') {
      const problems = this.validate(batch);
      if (problems) {
        batch.problems = problems;
        this.end(batch, 'failed');
        return;
      }
      batch.status = 'in_progress';
      batch.times.in_progress = Date.now();
      batch.counts.total = batch.checked.ok ? batch.checked.lines.length : 0;
    }
    if (batch.status === 'in_progress' && batch.checked.ok) {
      // Results come in completion order, not input order: a client must match by custom_id.
      for (const index of this.shuffledIndices(batch.checked.lines.length)) {
        if (!(await this.sleep(knobs().batchLineMs, epoch))) return;
        if (batch.status !== 'in_progress') break;
        batch.lineRunning = true;
        await this.runLine(batch, index, batch.checked.lines[index]!);
        batch.lineRunning = false;
        if (epoch !== this.epoch) return;
        if (batch.expiryDue) {
          this.expire(batch);
          return;
        }
      }
      if (batch.status === 'in_progress') {
        batch.status = 'finalizing';
        batch.times.finalizing = Date.now();
        if (!(await this.sleep(knobs().batchFinalizingMs, epoch))) return;
        // A cancel that came while finalizing found every line done: it still ends cancelled.
        if (batch.status === 'finalizing') {
          this.end(batch, 'completed');
          return;
        }
      }
    }
    if (batch.status === 'cancelling') {
      if (!(await this.sleep(knobs().batchFinalizingMs, epoch))) return;
      if (batch.checked.ok && batch.times.in_progress !== undefined) {
        const notReached = batch.checked.lines.length - batch.done.size;
        for (let i = 0; i < notReached; i++) this.context.state.batchLineEnded('cancelled');
      }
      this.end(batch, 'cancelled');
    }
  }

  /** Line indices in a seeded random order. */
  private shuffledIndices(count: number): number[] {
    const indices = Array.from({ length: count }, (_, index) => index);
    for (let i = count - 1; i > 0; i--) {
      const j = Math.floor(this.context.state.random() * (i + 1));
      [indices[i], indices[j]] = [indices[j]!, indices[i]!];
    }
    return indices;
  }

  /** The file's problems, or the enqueued-token limit's, or undefined when the batch may run. */
  private validate(batch: SimBatch): BatchProblem[] | undefined {
    const checked = batch.checked;
    if (!checked.ok) return checked.problems;
    const limit = this.context.state.knobs.batchQueueTokens[checked.model] ?? 0;
    if (limit <= 0) return undefined;
    let enqueued = 0;
    for (const other of this.batches.values()) {
      if (other === batch || !ENQUEUED.has(other.status) || !other.checked.ok) continue;
      if (other.checked.model === checked.model) enqueued += other.checked.tokens;
    }
    if (enqueued + checked.tokens <= limit) return undefined;
    return [
      {
        code: 'token_limit_exceeded',
        message:
          `Enqueued token limit reached for ${checked.model} in organization org-simulator. ` +
          `Limit: ${limit} enqueued tokens. Please try submitting fewer tasks or wait until ` +
          `some of your in-progress batches have completed.`,
        line: null,
        param: null,
      },
    ];
  }

  /**
   * Reads an input file as OpenAI's validation does: its size and line count, then each line
   * a JSON object `{custom_id, method: "POST", url, body}` with a unique custom_id, the
   * batch's endpoint as url, and one model across the file.
   */
  private checkFile(file: StoredFile, endpoint: BatchEndpoint): CheckedFile {
    const knobs = this.context.state.knobs;
    const fail = (code: string, message: string, line: number | null = null) => ({
      ok: false as const,
      problems: [{ code, message, line, param: null }],
    });
    if (file.bytes > knobs.batchMaxBytes) {
      return fail(
        'file_too_large',
        `The input file is ${file.bytes} bytes; a batch takes at most ${knobs.batchMaxBytes}.`,
      );
    }
    const problems: BatchProblem[] = [];
    const problem = (code: string, message: string, line: number, param: string | null = null) => {
      // OpenAI reports a bounded number; the first ones are what a client needs.
      if (problems.length < 100) problems.push({ code, message, line, param });
    };
    const lines: InputLine[] = [];
    const seen = new Set<string>();
    const models = new Set<string>();
    let tokens = 0;
    let count = 0;
    for (const { text, number } of contentLines(file)) {
      count += 1;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        problem('invalid_json_line', 'This line is not parseable as valid JSON.', number);
        continue;
      }
      if (!isObject(value)) {
        problem('invalid_json_line', 'This line is not a JSON object.', number);
        continue;
      }
      const { custom_id: customId, method, url, body } = value;
      if (typeof customId !== 'string' || customId === '') {
        problem('missing_required_parameter', 'custom_id must be a string.', number, 'custom_id');
      } else if (seen.has(customId)) {
        problem(
          'duplicate_custom_id',
          `The custom_id '${customId}' is used more than once in this file.`,
          number,
          'custom_id',
        );
      } else seen.add(customId);
      if (method !== 'POST') {
        problem('invalid_method', 'method must be "POST".', number, 'method');
      }
      if (url !== endpoint) {
        problem(
          'url_mismatch',
          `The url of this line does not match the batch's endpoint ${endpoint}.`,
          number,
          'url',
        );
      }
      if (!isObject(body)) {
        problem('missing_required_parameter', 'body must be a JSON object.', number, 'body');
        continue;
      }
      const request = readJsonBody(body);
      models.add(request.model);
      if (models.size > 1) {
        problem(
          'model_mismatch',
          'Every line of a batch must ask for the same model.',
          number,
          'body.model',
        );
      }
      tokens += this.enqueuedTokens(endpoint, request);
      if (typeof customId === 'string') lines.push({ customId, body });
    }
    if (count === 0) return fail('empty_file', 'The input file has no requests.');
    if (count > knobs.batchMaxLines) {
      return fail(
        'too_many_tasks',
        `The input file has ${count} requests; a batch takes at most ${knobs.batchMaxLines}.`,
      );
    }
    if (problems.length > 0) return { ok: false, problems };
    return { ok: true, lines, model: [...models][0]!, tokens };
  }

  /**
   * A line's input + output tokens as the realtime path weighs them; a line that would be
   * refused weighs nothing, and so do an edit's input images (read only when the line runs).
   */
  private enqueuedTokens(endpoint: BatchEndpoint, request: ImageRequest): number {
    try {
      const valid = validateImageRequest({
        registry: this.context.registry,
        retiredModels: this.context.state.knobs.retiredModels,
        endpoint: endpoint === '/v1/images/edits' ? 'edits' : 'generations',
        body: request,
      });
      const usage = tokenUsage(valid.model, request, valid.size);
      return usage ? usage.text + usage.image + usage.output : 0;
    } catch {
      return 0;
    }
  }

  /** Renders one line as the Images API would answer it, and records the result. */
  private async runLine(batch: SimBatch, index: number, line: InputLine): Promise<void> {
    const { state } = this.context;
    const requestId = hexId('req_');
    const record = (file: Buffer[], value: Record<string, unknown>) => {
      batch.done.add(index);
      file.push(jsonLine({ id: hexId('batch_req_'), custom_id: line.customId, ...value }));
    };
    try {
      const body = this.lineRequest(batch.endpoint, line.body);
      const valid = validateImageRequest({
        registry: this.context.registry,
        retiredModels: state.knobs.retiredModels,
        endpoint: batch.endpoint === '/v1/images/edits' ? 'edits' : 'generations',
        body,
      });
      if (valid.operation !== 'generate') await checkInputs(valid.model, body);
      checkContentPolicy(state.knobs, valid.model, body);
      if (state.random() < state.knobs.batchLineFailRate) {
        throw new SimulatedError(
          500,
          'server_error',
          null,
          'The server had an error while processing your request.',
        );
      }
      const answer = await answerWithImages(
        { state, files: this.context.served, origin: this.context.origin() },
        { ...valid, body },
      );
      const usage = tokenUsage(valid.model, body, valid.size);
      state.batchLineEnded('completed', {
        prompt: body.prompt ?? '',
        modelId: valid.model.id,
        images: body.n,
        tokens: usage && { input: usage.text + usage.image, output: usage.output },
      });
      batch.counts.completed += 1;
      record(batch.output, {
        response: { status_code: 200, request_id: requestId, body: answer },
        error: null,
      });
    } catch (error) {
      const refusal =
        error instanceof SimulatedError
          ? error
          : new SimulatedError(500, 'server_error', null, 'The server had an error.');
      state.batchLineEnded('failed');
      batch.counts.failed += 1;
      record(batch.errorsOut, {
        response: {
          status_code: refusal.status,
          request_id: requestId,
          body: {
            error: {
              message: refusal.message,
              type: refusal.type,
              param: refusal.param,
              code: refusal.code,
            },
          },
        },
        error: null,
      });
    }
  }

  /**
   * A line's body as the Images API reads it; every answer is `b64_json`, as a batch has no
   * later moment to fetch a url. An edit's images are `images: [{image_url} | {file_id}]` (or
   * `image`), as the JSON form of /v1/images/edits takes them.
   */
  private lineRequest(endpoint: BatchEndpoint, json: Record<string, unknown>): ImageRequest {
    const request = { ...readJsonBody(json), response_format: 'b64_json' };
    if (endpoint !== '/v1/images/edits') return request;
    const given = json.images ?? json.image;
    const refs = Array.isArray(given) ? given : given === undefined ? [] : [given];
    return {
      ...request,
      images: refs.map((ref) => this.imageBytes(ref, 'images')),
      mask: json.mask === undefined ? undefined : this.imageBytes(json.mask, 'mask'),
    };
  }

  /** An input image given as a base64 data URL or the id of an uploaded file. */
  private imageBytes(ref: unknown, param: string): Buffer {
    const url = typeof ref === 'string' ? ref : isObject(ref) ? ref.image_url : undefined;
    if (typeof url === 'string') {
      const match = /^data:image\/[\w.+-]+;base64,(.*)$/s.exec(url);
      if (!match) throw invalid('Only base64 data URLs are supported by the simulator.', param);
      return Buffer.from(match[1]!, 'base64');
    }
    const fileId = isObject(ref) ? ref.file_id : undefined;
    const file = typeof fileId === 'string' ? this.context.files.get(fileId) : undefined;
    if (!file) throw invalid(`Invalid image: an image_url or a known file_id is required.`, param);
    return Buffer.concat(file.chunks);
  }

  /** The expiry timer: a batch not yet finalizing expires now, or once its running line is recorded. */
  private expireWhenIdle(batch: SimBatch): void {
    if (batch.status !== 'validating' && batch.status !== 'in_progress') return;
    if (batch.lineRunning) batch.expiryDue = true;
    else this.expire(batch);
  }

  /** Ends a batch as expired: every line not reached goes to the error file as `batch_expired`. */
  private expire(batch: SimBatch): void {
    if (batch.checked.ok && batch.times.in_progress !== undefined) {
      batch.checked.lines.forEach((line, index) => {
        if (batch.done.has(index)) return;
        this.context.state.batchLineEnded('expired');
        batch.errorsOut.push(
          jsonLine({
            id: hexId('batch_req_'),
            custom_id: line.customId,
            response: null,
            error: {
              code: 'batch_expired',
              message: 'This request could not be executed before the completion window expired.',
            },
          }),
        );
      });
    }
    this.end(batch, 'expired');
  }

  /** Moves a batch to its end and writes its output and error files (each only when not empty). */
  private end(batch: SimBatch, status: 'failed' | 'completed' | 'expired' | 'cancelled'): void {
    batch.status = status;
    batch.times[status] = Date.now();
    if (batch.expiryTimer) {
      clearTimeout(batch.expiryTimer);
      this.sleeping.delete(batch.expiryTimer);
    }
    // The output and error files, each only if it has a line (as OpenAI leaves them out).
    const save = (kind: 'output' | 'error', chunks: typeof batch.output) =>
      chunks.length === 0
        ? undefined
        : this.context.files.add({
            filename: `${batch.id}_${kind}.jsonl`,
            purpose: 'batch_output',
            chunks,
          }).id;
    batch.outputFileId = save('output', batch.output) ?? batch.outputFileId;
    batch.errorFileId = save('error', batch.errorsOut) ?? batch.errorFileId;
    batch.output = [];
    batch.errorsOut = [];
  }
}

export type { SimBatch };
