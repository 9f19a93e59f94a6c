import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { batchView, buildManifest } from '../../batches/batch-view.js';
import { estimateBatch } from '../../batches/estimate-batch.js';
import { submitBatch } from '../../batches/submit-batch.js';
import { batchRequestSchema } from '../../batches/batch-request.js';
import { notFound } from '../http-errors.js';
import type { ApiDeps } from '../server.js';

const batchParams = z.object({ id: z.string().min(1).max(100) });

/** `/v1/batches`: submit, estimate, look up, manifest. */
export async function batchRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.post(
    '/v1/batches',
    {
      schema: {
        summary: 'Submit a batch',
        tags: ['batches'],
        body: batchRequestSchema,
      },
    },
    async (request, reply) => {
      const batch = await submitBatch(deps, request.tenant, request.body);
      return reply.code(202).header('location', `/v1/batches/${batch.id}`).send(batchView(batch));
    },
  );

  app.post(
    '/v1/batches/estimate',
    {
      schema: {
        summary: 'Estimate a batch: its price with the cache’s answer, before anything is queued',
        tags: ['batches'],
        body: batchRequestSchema,
      },
    },
    async (request) => estimateBatch(deps, request.tenant, request.body),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/batches/:id',
    { schema: { summary: 'A batch and its progress', tags: ['batches'], params: batchParams } },
    async (request) => {
      const batch = await deps.store.getForTenant(request.tenant, request.params.id);
      if (!batch) throw notFound(`batch ${request.params.id}`);
      return batchView(batch);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/batches/:id/manifest',
    {
      schema: {
        summary: 'The manifest: every item, its images (presigned URLs) and its cost',
        tags: ['batches'],
        params: batchParams,
      },
    },
    async (request) => {
      const batch = await deps.store.getForTenant(request.tenant, request.params.id);
      if (!batch) throw notFound(`batch ${request.params.id}`);
      const ttl = deps.urlTtlSeconds ?? 3600;
      return buildManifest(batch, await deps.store.items(batch.id), (key) =>
        deps.storage.presignedUrl(key, ttl),
      );
    },
  );
}
