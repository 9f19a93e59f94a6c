import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type {
  BatchPage,
  BatchView,
  EstimateAnswer,
  Manifest,
  ScheduleList,
  ScheduleRequest,
  ScheduleView,
  SubmitAnswer,
} from './api-types.js';
import type { BatchUpload, RequestBody } from './batch-upload.js';
import { ApiError, ApiUnreachableError } from './client-errors.js';
import type { ClientConfig } from './client-config.js';
import { streamUpload } from './stream-upload.js';

/*
 * The client's retries and timeouts are fixed, not configured: a command that gives up prints
 * how to carry on, and nothing it does changes what the service does.
 */
/** Tries of a request that may pass the next time. */
const ATTEMPTS = 3;
/** Wait before the second try, doubled before each next one. */
const RETRY_DELAY_MS = 500;
/** A request other than an upload: the API answers those at once. */
const TIMEOUT_MS = 30_000;
/** An upload (`submit`, `estimate`): a catalog of hundreds of MiB on a slow line. */
const UPLOAD_TIMEOUT_MS = 600_000;

export interface ApiClientOptions extends ClientConfig {
  /**
   * Tries of a request that may pass the next time: its connection was cut, or the API
   * answered 5xx. A POST is tried again only with the same `Idempotency-Key`, so the API does
   * it once. Default {@link ATTEMPTS}.
   */
  attempts?: number;
  /** Wait before the second try, doubled before each next one. Default {@link RETRY_DELAY_MS}. */
  retryDelayMs?: number;
  /** How long a request other than an upload may take. Default {@link TIMEOUT_MS}. */
  timeoutMs?: number;
  /** How long an upload (`submit`, `estimate`) may take. Default {@link UPLOAD_TIMEOUT_MS}. */
  uploadTimeoutMs?: number;
}

export type BatchStatusFilter = BatchView['status'];

interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  /** A fresh body for each try. */
  body?: () => RequestBody;
  contentType?: string;
  accept?: string;
  timeoutMs?: number;
}

/**
 * rendermill's HTTP API, one method per endpoint, for the `rendermill` client commands.
 * Errors: {@link ApiError} when the API answered 4xx/5xx, {@link ApiUnreachableError} when it
 * did not answer.
 */
export class ApiClient {
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private readonly timeoutMs: number;
  private readonly uploadTimeoutMs: number;

  constructor(private readonly options: ApiClientOptions) {
    this.attempts = options.attempts ?? ATTEMPTS;
    this.retryDelayMs = options.retryDelayMs ?? RETRY_DELAY_MS;
    this.timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
    this.uploadTimeoutMs = options.uploadTimeoutMs ?? UPLOAD_TIMEOUT_MS;
  }

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  /** `POST /v1/batches`: queues a batch; 202 with its view. */
  async submitBatch(upload: BatchUpload): Promise<SubmitAnswer> {
    return this.json<SubmitAnswer>('POST', '/v1/batches', this.uploadRequest(upload));
  }

  /** `POST /v1/batches/estimate`: what the same upload would cost, queueing nothing. */
  async estimateBatch(upload: BatchUpload): Promise<EstimateAnswer> {
    return this.json<EstimateAnswer>('POST', '/v1/batches/estimate', this.uploadRequest(upload));
  }

  /** `GET /v1/batches`: one page of the tenant's batches, newest first. */
  async listBatches(
    filter: {
      status?: BatchStatusFilter;
      scheduleId?: string;
      limit?: number;
      cursor?: string;
    } = {},
  ): Promise<BatchPage> {
    return this.json<BatchPage>('GET', '/v1/batches', {
      query: {
        status: filter.status,
        schedule_id: filter.scheduleId,
        limit: filter.limit,
        cursor: filter.cursor,
      },
    });
  }

  /** `GET /v1/batches/:id`. */
  async getBatch(id: string): Promise<BatchView> {
    return this.json<BatchView>('GET', `/v1/batches/${encodeURIComponent(id)}`);
  }

  /** `GET /v1/batches/:id/manifest`, parsed: for a summary. */
  async getManifest(id: string): Promise<Manifest> {
    return this.json<Manifest>('GET', `/v1/batches/${encodeURIComponent(id)}/manifest`);
  }

  /**
   * `GET /v1/batches/:id/manifest[?format=csv]` as a byte stream, to copy to a file or stdout
   * without holding a 100,000-item manifest in memory.
   */
  async manifestStream(id: string, format: 'json' | 'csv'): Promise<ReadableStream<Uint8Array>> {
    const response = await this.send('GET', `/v1/batches/${encodeURIComponent(id)}/manifest`, {
      query: { format: format === 'csv' ? 'csv' : undefined },
      accept: format === 'csv' ? 'text/csv' : 'application/json',
    });
    if (!response.body) throw new ApiError(response.status, 'empty_body', 'the API sent no body');
    return response.body;
  }

  /** `POST /v1/batches/:id/cancel`: queued items are cancelled; the batch's view after. */
  async cancelBatch(id: string): Promise<BatchView> {
    return this.json<BatchView>('POST', `/v1/batches/${encodeURIComponent(id)}/cancel`);
  }

  /** `POST /v1/schedules` → 201. */
  async createSchedule(request: ScheduleRequest): Promise<ScheduleView> {
    const text = JSON.stringify(request);
    return this.json<ScheduleView>('POST', '/v1/schedules', {
      body: () => text,
      contentType: 'application/json',
    });
  }

  /** `GET /v1/schedules`. */
  async listSchedules(page: { limit?: number; cursor?: string } = {}): Promise<ScheduleList> {
    return this.json<ScheduleList>('GET', '/v1/schedules', {
      query: { limit: page.limit, cursor: page.cursor },
    });
  }

  /** `GET /v1/schedules/:id`. */
  async getSchedule(id: string): Promise<ScheduleView> {
    return this.json<ScheduleView>('GET', `/v1/schedules/${encodeURIComponent(id)}`);
  }

  /** `DELETE /v1/schedules/:id` → 204. */
  async deleteSchedule(id: string): Promise<void> {
    const response = await this.send('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
    await response.body?.cancel();
  }

  private uploadRequest(upload: BatchUpload): RequestOptions {
    return {
      query: upload.query,
      body: upload.body,
      contentType: upload.contentType,
      timeoutMs: this.uploadTimeoutMs,
    };
  }

  private async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options);
    try {
      return (await response.json()) as T;
    } catch (error) {
      throw new ApiError(
        response.status,
        'invalid_answer',
        `the API's answer to ${method} ${path} is not JSON: ${(error as Error).message}`,
      );
    }
  }

  /** Sends a request, trying again what may pass, and turns any non-2xx answer into an ApiError. */
  private async send(method: string, path: string, options: RequestOptions = {}) {
    const url = new URL(`${this.options.baseUrl}${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.apiKey}`,
      accept: options.accept ?? 'application/json',
    };
    if (options.contentType) headers['content-type'] = options.contentType;
    // One key for every try of this request: a POST the API received but whose answer was
    // lost is answered from its record the second time, not done twice.
    if (method === 'POST') headers['idempotency-key'] = randomUUID();

    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.attempts;
      let response: Response;
      try {
        const body = options.body?.();
        const signal = AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs);
        response =
          body instanceof Readable
            ? await streamUpload(url, { method, headers, body, signal })
            : await fetch(url, { method, headers, body, signal });
      } catch (error) {
        const unreachable = ApiUnreachableError.from(this.options.baseUrl, error);
        if (last || !unreachable.interrupted) throw unreachable;
        await this.pause(attempt);
        continue;
      }
      if (response.ok) return response;
      // The first try deleted it and its answer was lost: the thing is gone, as asked.
      if (method === 'DELETE' && attempt > 1 && response.status === 404) return response;
      if (response.status >= 500 && !last) {
        await response.body?.cancel();
        await this.pause(attempt);
        continue;
      }
      throw ApiError.fromBody(response.status, response.statusText, await readBody(response));
    }
  }

  private pause(attempt: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * 2 ** (attempt - 1)));
  }
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text().catch(() => '');
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
