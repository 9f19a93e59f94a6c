import { Readable, Transform } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { batchRequestSchema, catalogOptionsSchema } from '../../contracts/batch-request.js';
import {
  CATALOG_CONTENT_TYPES,
  catalogBatchSource,
  jsonBatchSource,
  type BatchSource,
} from '../../batches/batch-source.js';
import {
  batchView,
  buildManifest,
  manifestCsv,
  providerBatchProgress,
} from '../../batches/batch-view.js';
import { ProviderBatchStore } from '../../batches/provider-batch-store.js';
import type { BatchRecord } from '../../contracts/batch-records.js';
import type { RedisConnection } from '../../redis/redis-connection.js';
import { cancelBatch } from '../../batches/cancel-batch.js';
import { estimateFromSource } from '../../batches/estimate-batch.js';
import { batchEnded } from '../../contracts/item-status.js';
import { listBatches, listBatchesQuery } from '../../batches/list-batches.js';
import { openAiResultLines, type OpenAiResultFile } from '../../batches/openai-batch-output.js';
import { submitFromSource } from '../../batches/submit-batch.js';
import { parseRequest, validationError } from '../../request-validation.js';
import { HttpError, answer, errorResponses, notFound } from '../http-errors.js';
import type { SubmitBatchDeps } from '../../batches/submit-batch.js';
import type { ImageStorage } from '../../storage/image-storage.js';

const batchParams = z.object({ id: z.string().min(1).max(100) });
const manifestQuery = z.object({ format: z.enum(['json', 'csv']).default('json') }).strict();
const onInvalidQuery = z.object({ on_invalid: z.enum(['reject', 'skip']).optional() });

const BATCH_BODY_DOC =
  'A JSON batch request; or a catalog streamed as `text/csv` (header row) or `application/x-ndjson` ' +
  '(JSON Lines, including OpenAI Batch API input files), with the batch options as query parameters.';

/**
 * `/v1/batches`: submit (JSON, CSV, JSON Lines, OpenAI Batch), estimate, list, look up,
 * cancel, manifest (JSON or CSV) and OpenAI-style output and error files.
 */
/** What the batch routes need. */
export interface BatchRouteDeps extends SubmitBatchDeps {
  storage: ImageStorage;
  /** Lifetime of presigned image URLs in manifests (RENDERMILL_URL_TTL_SECONDS). */
  urlTtlSeconds: number;
  /** Largest catalog (CSV, JSON Lines) accepted; it is streamed, not buffered (RENDERMILL_MAX_CATALOG_MB). */
  catalogLimitBytes: number;
  /** Longest catalog line read; a longer one refuses the catalog with 413 (RENDERMILL_MAX_CATALOG_LINE_KB). */
  maxCatalogLineBytes: number;
  /** rendermill's state connection: where the provider batches of provider_batch batches are. */
  redis: RedisConnection;
}

export async function batchRoutes(app: FastifyInstance, deps: BatchRouteDeps): Promise<void> {
  const catalogLimit = deps.catalogLimitBytes;
  // Catalogs are read by the route as they arrive, never buffered whole.
  app.addContentTypeParser(Object.keys(CATALOG_CONTENT_TYPES), (_request, payload, done) => {
    done(null, limitBytes(payload, catalogLimit));
  });

  /** The submission in the request, whatever shape it came in. */
  function sourceOf(request: FastifyRequest): BatchSource {
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    // Own keys only: a content type named like an Object.prototype member is not a catalog.
    const format = Object.hasOwn(CATALOG_CONTENT_TYPES, type)
      ? CATALOG_CONTENT_TYPES[type]
      : undefined;
    if (format) {
      return catalogBatchSource(
        request.body as Readable,
        format,
        request.query,
        deps.maxCatalogLineBytes,
      );
    }
    const query = (request.query ?? {}) as Record<string, unknown>;
    const misplaced = Object.keys(query).filter((name) => name !== 'on_invalid');
    if (misplaced.length > 0) {
      // A budget in the query of a JSON batch would be silently ignored: refuse it instead.
      throw validationError(
        misplaced.map((name) => ({
          field: name,
          message: `query parameters are for catalogs (CSV, JSON Lines); in a JSON batch, put ${name} in the body`,
        })),
        'invalid_request',
      );
    }
    const { on_invalid } = parseRequest(onInvalidQuery, query);
    return jsonBatchSource(request.body, on_invalid);
  }

  const tenantBatch = async (request: FastifyRequest<{ Params: { id: string } }>) => {
    const { id } = parseRequest(batchParams, request.params);
    const batch = await deps.store.getForTenant(request.tenant, id);
    if (!batch) throw notFound(`batch ${id}`);
    return batch;
  };

  const providerBatches = new ProviderBatchStore(deps.redis);
  /** A batch with its provider batches' progress, for the views that follow one batch. */
  const followedView = async (batch: BatchRecord) =>
    batchView(batch, await providerBatchProgress(providerBatches, batch));

  app.post(
    '/v1/batches',
    {
      schema: {
        summary: 'Submit a batch',
        description: BATCH_BODY_DOC,
        tags: ['batches'],
        body: batchRequestSchema,
        querystring: catalogOptionsSchema,
        response: {
          202: answer('The batch, accepted; with `rejected` rows when `on_invalid=skip`'),
          ...errorResponses(400, 409, 413, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const { batch, rejected } = await submitFromSource(deps, request.tenant, sourceOf(request));
      return reply
        .code(202)
        .header('location', `/v1/batches/${batch.id}`)
        .send({ ...batchView(batch), rejected });
    },
  );

  app.post(
    '/v1/batches/estimate',
    {
      schema: {
        summary:
          'Estimate a batch: its price with the cache’s answer and its time at the tier limit',
        description: `${BATCH_BODY_DOC} Nothing is queued.`,
        tags: ['batches'],
        body: batchRequestSchema,
        querystring: catalogOptionsSchema,
        response: {
          200: answer(
            'Price, cache hits and time at the tier limit; in provider_batch `mode`, at the Batch API’s price within its 24 h window',
          ),
          ...errorResponses(400, 413, 415),
        },
      },
    },
    async (request) => estimateFromSource(deps, request.tenant, sourceOf(request)),
  );

  app.get(
    '/v1/batches',
    {
      schema: {
        summary: 'List batches, newest first',
        tags: ['batches'],
        querystring: listBatchesQuery,
        response: { 200: answer('`data`: batches; `next_cursor`'), ...errorResponses(400) },
      },
    },
    async (request) =>
      listBatches(
        deps.store,
        request.tenant,
        parseRequest(listBatchesQuery, request.query),
        providerBatches,
      ),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/batches/:id',
    {
      schema: {
        summary: 'A batch and its progress',
        tags: ['batches'],
        params: batchParams,
        response: {
          200: answer(
            'The batch; in provider_batch mode with `provider_batch` (the phase and counts of its provider batches together) and `provider_batches` (each part)',
          ),
          ...errorResponses(404),
        },
      },
    },
    async (request) => followedView(await tenantBatch(request)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/batches/:id/cancel',
    {
      schema: {
        summary: 'Cancel a batch: queued items are cancelled, items already rendering finish',
        tags: ['batches'],
        params: batchParams,
        response: {
          200: answer('The batch, cancelling or cancelled'),
          ...errorResponses(404, 409),
        },
      },
    },
    async (request) => followedView(await cancelBatch(deps, await tenantBatch(request))),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/batches/:id/manifest',
    {
      schema: {
        summary: 'The manifest: every item, its images (presigned URLs) and its cost',
        tags: ['batches'],
        params: batchParams,
        querystring: manifestQuery,
        response: { 200: answer('The manifest (JSON, or CSV)'), ...errorResponses(404) },
      },
    },
    async (request, reply) => {
      const { format } = parseRequest(manifestQuery, request.query);
      const batch = await tenantBatch(request);
      const ttl = deps.urlTtlSeconds;
      const manifest = await buildManifest(
        batch,
        await deps.store.items(batch.id),
        (key) => deps.storage.presignedUrl(key, ttl),
        await providerBatchProgress(providerBatches, batch),
      );
      if (format === 'json') {
        return { ...manifest, urls_expire_at: new Date(Date.now() + ttl * 1000).toISOString() };
      }
      return reply.type('text/csv; charset=utf-8').send(manifestCsv(manifest));
    },
  );

  for (const file of ['output', 'errors'] as OpenAiResultFile[]) {
    app.get<{ Params: { id: string } }>(
      `/v1/batches/:id/${file}.jsonl`,
      {
        schema: {
          summary:
            file === 'output'
              ? 'OpenAI Batch-style output file: one line per rendered item'
              : 'OpenAI Batch-style error file: one line per item that did not render',
          tags: ['batches'],
          params: batchParams,
        },
      },
      async (request, reply) => {
        const batch = await tenantBatch(request);
        if (!batchEnded(batch.status)) {
          throw new HttpError(
            409,
            'batch_not_ended',
            `batch ${batch.id} is ${batch.status}: its ${file} file is ready when it has ended`,
          );
        }
        const lines = openAiResultLines(deps.store, batch, file, (key) =>
          deps.storage.presignedUrl(key, deps.urlTtlSeconds),
        );
        return reply.type('application/x-ndjson').send(Readable.from(lines));
      },
    );
  }
}

/** Passes a body through, failing it with 413 once it grows past `limit` bytes. */
function limitBytes(payload: Readable, limit: number): Readable {
  let seen = 0;
  const limited = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) {
        callback(new HttpError(413, 'body_too_large', `the catalog is larger than ${limit} bytes`));
        return;
      }
      callback(null, chunk);
    },
  });
  payload.on('error', (error) => limited.destroy(error));
  return payload.pipe(limited);
}
