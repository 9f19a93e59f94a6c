import multipart from '@fastify/multipart';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ItemRecord } from '../../contracts/batch-records.js';
import { TERMINAL_STATUSES } from '../../contracts/item-status.js';
import { resolveBatch, submitBatch } from '../../batches/submit-batch.js';
import { RequestValidationError } from '../../errors.js';
import {
  checkFormImages,
  formLimits,
  readImageForm,
  storeFormImages,
  type ImageForm,
} from '../../facade/image-uploads.js';
import {
  FACADE_ITEM_ID,
  batchBodyFor,
  editFormSchema,
  editParamsSchema,
  formValues,
  generationParamsSchema,
  modelFor,
  parseImageParams,
  responseFormatFor,
  variationFormSchema,
  variationParamsSchema,
  type ImageParams,
} from '../../facade/images-params.js';
import { imagesResponse, itemFailure, stillRendering } from '../../facade/images-response.js';
import { ItemWaiter } from '../../facade/item-waiter.js';
import {
  OpenAiError,
  fromValidationError,
  invalidRequest,
  rewriteRendermillError,
} from '../../facade/openai-error.js';
import { microsToUsd } from '../../models/pricing.js';
import { discardRestOfBody } from '../discard-body.js';
import { HttpError } from '../http-errors.js';
import type { SubmitBatchDeps } from '../../batches/submit-batch.js';
import type { ImageStorage } from '../../storage/image-storage.js';
import { inputErrorAsOpenAi } from '../../facade/input-errors.js';

type Endpoint = 'generations' | 'edits' | 'variations';
const OPERATION = { generations: 'generate', edits: 'edit', variations: 'variation' } as const;
const TAGS = ['images (OpenAI-compatible)'];

/**
 * OpenAI's Images API on rendermill: `POST /v1/images/generations` (JSON), `/v1/images/edits`
 * and `/v1/images/variations` (multipart), answered in OpenAI's shapes so that the official
 * SDKs work with only their base URL and key changed. Each request becomes a one-item batch
 * (metadata `source: images-api`) and goes through the queue, the limiter, the result cache
 * and every budget like any other; the handler waits for its item and answers with its
 * images, or with OpenAI's error for how it ended. Edit inputs are stored in the bucket under
 * the tenant's uploads folder, and the item refers to them by key.
 */
/** What the OpenAI-compatible Images API routes need. */
export interface ImagesRouteDeps extends SubmitBatchDeps {
  storage: ImageStorage;
  /**
   * How long `POST /v1/images/*` waits for its render before answering 504 with the batch id
   * (RENDERMILL_REQUEST_TIMEOUT_MS × (RENDERMILL_RETRIES + 1), at most 9 minutes).
   */
  imagesApiWaitMs: number;
  /** Lifetime of image URLs in answers (RENDERMILL_URL_TTL_SECONDS). */
  urlTtlSeconds: number;
  /** All the files of one edit or variation together (RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST). */
  maxUploadBytesPerRequest: number;
}

export async function openAiImageRoutes(
  app: FastifyInstance,
  deps: ImagesRouteDeps,
): Promise<void> {
  const { cache } = deps;
  if (!cache) throw new Error('the Images API needs the result cache: uploads live in its scopes');
  // Only this plugin reads multipart: the rest of the API stays JSON.
  const limits = formLimits(deps.registry);
  await app.register(multipart, { limits });
  const waiter = new ItemWaiter(deps.store);
  // Before the server stops taking connections and waits for the requests in flight: a
  // request waiting for its render (up to 9 minutes) must not hold the shutdown up.
  app.addHook('preClose', async () => waiter.close());
  const waitMs = deps.imagesApiWaitMs;
  const urlTtlSeconds = deps.urlTtlSeconds;

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const answer = toOpenAiError(error, limits.fileSize);
    // A form refused while it streams in (a file or part over its limit) is read to its end
    // within the request's bound, so the sender gets this answer and not a reset connection.
    if (request.tenant) discardRestOfBody(request.raw, deps.maxUploadBytesPerRequest);
    if (answer.statusCode >= 500 && !(error instanceof OpenAiError)) {
      request.log.error({ err: error }, 'images request failed');
    }
    if (answer.options.retryable === false) void reply.header('x-should-retry', 'false');
    return reply.code(answer.statusCode).send(answer.body());
  });
  // What was answered before a handler ran (the API-key check's 401) in OpenAI's shape too.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (reply.statusCode < 400 || typeof payload !== 'string') return payload;
    return rewriteRendermillError(payload, reply.statusCode) ?? payload;
  });

  app.post(
    '/v1/images/generations',
    {
      schema: {
        summary: 'Create images from a prompt (OpenAI-compatible)',
        tags: TAGS,
        body: generationParamsSchema,
      },
    },
    async (request, reply) => {
      if (request.isMultipart()) {
        throw invalidRequest('this endpoint takes a JSON body', null, 'invalid_content_type');
      }
      const params = parseImageParams(generationParamsSchema, request.body);
      return render(request, reply, 'generations', params);
    },
  );

  app.post(
    '/v1/images/edits',
    {
      schema: {
        summary: 'Edit images with a prompt, optionally within a mask (OpenAI-compatible)',
        tags: TAGS,
        consumes: ['multipart/form-data'],
        body: editFormSchema,
      },
    },
    async (request, reply) => {
      const form = await readImageForm(
        request,
        cache.scopeFor(request.tenant),
        deps.maxUploadBytesPerRequest,
      );
      if (await app.settleIdempotency(request, reply, formFingerprint(form))) return reply;
      const params = parseImageParams(editParamsSchema, formValues(form.fields));
      return render(request, reply, 'edits', params, form);
    },
  );

  app.post(
    '/v1/images/variations',
    {
      schema: {
        summary: 'Create variations of an image (OpenAI-compatible)',
        tags: TAGS,
        consumes: ['multipart/form-data'],
        body: variationFormSchema,
      },
    },
    async (request, reply) => {
      const form = await readImageForm(
        request,
        cache.scopeFor(request.tenant),
        deps.maxUploadBytesPerRequest,
      );
      if (await app.settleIdempotency(request, reply, formFingerprint(form))) return reply;
      const params = parseImageParams(variationParamsSchema, formValues(form.fields));
      return render(request, reply, 'variations', params, form);
    },
  );

  /**
   * Submits the request as a one-item batch, waits for the item and answers for it. An edit's
   * files are checked (the whole request is validated first, without queueing anything) and
   * stored before the batch is submitted, since its job reads them.
   */
  async function render(
    request: FastifyRequest,
    reply: FastifyReply,
    endpoint: Endpoint,
    params: ImageParams,
    form?: ImageForm,
  ) {
    const modelId = modelFor(OPERATION[endpoint], params.model, deps);
    const model = deps.registry.get(modelId);
    if (form && form.images.length === 0) {
      throw invalidRequest('image: an image file is required (a form file named image)', 'image');
    }
    const body = batchBodyFor(
      endpoint,
      params,
      modelId,
      model,
      form && { images: form.images.map((image) => image.key), mask: form.mask?.key },
    );
    if (form) {
      await resolveBatch(deps, request.tenant, body); // throws the 400 naming what is wrong
      if (model) await checkFormImages(model, form);
      await storeFormImages(deps.storage, form);
    }
    const batch = await submitBatch(deps, request.tenant, body);
    void reply.header('x-rendermill-batch-id', batch.id);
    const item = await itemOutcome(batch.id, callerGone(reply), reply);
    if (item.status !== 'succeeded' && item.status !== 'cached') throw itemFailure(item, batch.id);
    // What it cost and where it went, on every answer (a cache hit costs $0, whichever route
    // made the image).
    void reply
      .header('x-rendermill-cost-usd', String(microsToUsd(item.cost_micros)))
      .header('x-rendermill-cache', item.status === 'cached' ? 'hit' : 'miss')
      .header('x-rendermill-cached', String(item.status === 'cached'));
    if (item.rendered_by) {
      void reply
        .header('x-rendermill-route', item.rendered_by.provider)
        .header('x-rendermill-model', item.rendered_by.remote_model ?? item.rendered_by.model);
    }
    return imagesResponse(
      item,
      model,
      responseFormatFor(params, model),
      deps.storage,
      urlTtlSeconds,
    );
  }

  /** The item once it has ended; a cache hit settled at submission is answered at once. */
  async function itemOutcome(
    batchId: string,
    signal: AbortSignal,
    reply: FastifyReply,
  ): Promise<ItemRecord> {
    const now = await deps.store.item(batchId, FACADE_ITEM_ID);
    if (now && TERMINAL_STATUSES.includes(now.status)) return now;
    const { item, end } = await waiter.wait(batchId, FACADE_ITEM_ID, { timeoutMs: waitMs, signal });
    if (end === 'final' && item) return item;
    if (end === 'vanished') {
      throw new OpenAiError(
        502,
        'server_error',
        `batch ${batchId} was deleted while rendering`,
        null,
        'batch_deleted',
        { retryable: false, batchId },
      );
    }
    if (end === 'closing') {
      void reply.header('retry-after', '1');
      throw shuttingDown(batchId);
    }
    // Timed out, or the caller left (then nobody reads this): the render goes on regardless.
    throw stillRendering(item ?? now, batchId, waitMs);
  }
}

/**
 * The 503 of a request whose wait was cut short because this API process is shutting down.
 * The render goes on in its batch (a job in the queue, for whichever worker runs it). Asking
 * again — the SDKs retry a 503 by themselves, after `retry-after` — reaches another API
 * process or this one restarted, and the same request is answered from the result cache, or
 * waits for the render under way, instead of paying for it again.
 */
function shuttingDown(batchId: string): OpenAiError {
  return new OpenAiError(
    503,
    'server_error',
    `the server is shutting down; the image is still being rendered in batch ${batchId}: ` +
      `ask again, or GET /v1/batches/${batchId} and its /manifest for the result`,
    null,
    'server_shutting_down',
    { batchId },
  );
}

/** Aborts when the client disconnects before the answer is sent: stop waiting for it. */
function callerGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

/** Fastify's multipart and body errors that mean "too large". */
const TOO_LARGE = new Set([
  'FST_REQ_FILE_TOO_LARGE',
  'FST_FILES_LIMIT',
  'FST_PARTS_LIMIT',
  'FST_FIELDS_LIMIT',
  'FST_ERR_CTP_BODY_TOO_LARGE',
]);

/** Whatever a handler (or Fastify, or the multipart reader) threw, as OpenAI's error. */
function toOpenAiError(error: FastifyError, maxFileBytes: number): OpenAiError {
  if (error instanceof OpenAiError) return error;
  if (error instanceof RequestValidationError) return fromValidationError(error);
  if (error instanceof HttpError) {
    const type = error.statusCode >= 500 ? 'server_error' : 'invalid_request_error';
    return new OpenAiError(error.statusCode, type, error.message, null, error.code);
  }
  if (error.code === 'FST_REQ_FILE_TOO_LARGE') {
    return new OpenAiError(
      413,
      'invalid_request_error',
      `a file is larger than ${maxFileBytes} bytes, the most any model accepts as an input image`,
      'image',
      'file_too_large',
    );
  }
  if (TOO_LARGE.has(error.code)) {
    return new OpenAiError(413, 'invalid_request_error', error.message, null, 'request_too_large');
  }
  if (
    error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ||
    error.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE'
  ) {
    return invalidRequest(
      'unsupported content type: send application/json (generations) or multipart/form-data (edits, variations)',
      null,
      'invalid_content_type',
    );
  }
  if (error.statusCode === 400) {
    return invalidRequest(`the body cannot be read: ${error.message}`, null, 'invalid_json');
  }
  return (
    inputErrorAsOpenAi(error) ??
    new OpenAiError(
      500,
      'server_error',
      'internal error; see the server log',
      null,
      'internal_error',
    )
  );
}

/**
 * What an edit or variation asked, for its Idempotency-Key: every field, and each file by its
 * content (its upload key is its SHA-256).
 */
function formFingerprint(form: ImageForm): string {
  const fields = Object.entries(form.fields).sort(([a], [b]) => a.localeCompare(b));
  const files = [...form.images.map((image) => image.key), form.mask?.key ?? ''];
  return JSON.stringify({ fields, files });
}
