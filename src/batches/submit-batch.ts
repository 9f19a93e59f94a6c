import { randomBytes } from 'node:crypto';
import { validationError, zodProblems } from '../request-validation.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { usdToMicros } from '../models/pricing.js';
import { hashNeedsInputs, requestHash } from '../models/request-hash.js';
import { resolveItem, type FieldProblem } from '../models/validate-item.js';
import type { JobQueue } from '../queue/job-queue.js';
import type { BatchRecord, BatchStore, ItemRecord } from './batch-store.js';
import { batchRequestSchema, type BatchRequest } from './batch-request.js';
import { completeHit, renderedByCache, reusable, savedBy, storedImage } from '../cache/reuse.js';
import type { CachedImage, ResultCache } from '../cache/result-cache.js';
import { derivationName, type DeriveSpec } from '../render/derive-images.js';

export interface SubmitBatchDeps {
  store: BatchStore;
  queue: JobQueue;
  /** When given, items whose every image is already cached are settled at once, $0, no job. */
  cache?: ResultCache;
  registry: ModelRegistry;
  defaultModel: string;
  enforceRetirements: boolean;
  /** The most images one request may ask for under the account's rate limit. */
  maxImagesPerRequest: number;
  now?: () => Date;
}

/** A sortable, unguessable batch id: time first so listings sort by creation. */
export function newBatchId(now: Date): string {
  return `batch_${now.getTime().toString(36)}${randomBytes(8).toString('hex')}`;
}

/** A batch request validated and resolved: every item with its spec, hash and cache hit. */
export interface ResolvedBatch {
  request: BatchRequest;
  items: ItemRecord[];
  now: Date;
}

/**
 * Validates a batch request completely — shape, then every item against the model registry —
 * and resolves each item: its spec, its request hash, and whether the cache already holds all
 * its images (then it is `cached`, at $0). Throws RequestValidationError naming every problem.
 */
export async function resolveBatch(
  deps: SubmitBatchDeps,
  tenant: string,
  body: unknown,
): Promise<ResolvedBatch> {
  const parsed = batchRequestSchema.safeParse(body);
  if (!parsed.success) throw validationError(zodProblems(parsed.error), 'invalid_request');
  const request = parsed.data;
  const now = deps.now?.() ?? new Date();
  const problems: FieldProblem[] = [];
  const seen = new Map<string, number>();
  const items: ItemRecord[] = [];
  const {
    items: inputs,
    budget_usd: _budget,
    metadata: _metadata,
    webhook_url: _webhook,
    cache,
    derive,
    ...defaults
  } = request;
  const duplicateDerivations = findDuplicateDerivations(derive ?? []);
  if (duplicateDerivations) problems.push(duplicateDerivations);
  inputs.forEach((input, index) => {
    const earlier = seen.get(input.id);
    if (earlier !== undefined) {
      problems.push({
        field: `items[${index}].id`,
        message: `id "${input.id}" is also used by items[${earlier}]`,
      });
    }
    seen.set(input.id, index);
    const resolved = resolveItem(input, index, defaults, {
      registry: deps.registry,
      defaultModel: deps.defaultModel,
      enforceRetirements: deps.enforceRetirements,
      maxImagesPerRequest: deps.maxImagesPerRequest,
      today: now,
    });
    if (!resolved.spec) {
      problems.push(...resolved.problems);
      return;
    }
    items.push({
      id: input.id,
      index,
      status: 'queued',
      spec: resolved.spec,
      // An edit's hash depends on its input images' content: the worker computes it.
      hash: hashNeedsInputs(resolved.spec) ? null : requestHash(resolved.spec),
      cost_micros: 0,
      images: [],
      reuse_after: cache === 'refresh' ? now.getTime() : undefined,
      derive,
      attempts: 0,
      updated_at: now.toISOString(),
    });
  });
  if (problems.length > 0) throw validationError(problems, 'invalid_item');

  if (deps.cache && cache !== 'refresh')
    settleCachedItems(items, await cachedImages(deps.cache, tenant, items));

  return { request, items, now };
}

/**
 * Validates and resolves a batch request (resolveBatch), then records the batch and queues one
 * render job per item the cache cannot answer. A request with any bad item is refused whole,
 * naming each problem; nothing is half-created.
 */
export async function submitBatch(
  deps: SubmitBatchDeps,
  tenant: string,
  body: unknown,
  options: { scheduleId?: string } = {},
): Promise<BatchRecord> {
  const { request, items, now } = await resolveBatch(deps, tenant, body);
  const batchId = newBatchId(now);
  await deps.store.create(
    {
      id: batchId,
      tenant,
      created_at: now.toISOString(),
      budget_micros: request.budget_usd === undefined ? undefined : usdToMicros(request.budget_usd),
      metadata: request.metadata ?? {},
      webhook_url: request.webhook_url,
      schedule_id: options.scheduleId,
    },
    items,
  );
  try {
    const toRender = items.filter((item) => item.status === 'queued');
    await deps.queue.addBulk(
      'render-item',
      toRender.map((item) => ({
        jobId: `${batchId}-${item.index}`,
        payload: { batchId, itemId: item.id, tenant, spec: item.spec },
      })),
    );
    if (toRender.length === 0) {
      // Every item came from the cache: the batch is complete already, its manifest is due.
      await deps.queue.add('finalize-batch', { batchId }, `finalize-${batchId}`);
    }
  } catch (error) {
    // Jobs already queued find no item and end without rendering anything.
    await deps.store.delete(batchId, tenant);
    throw error;
  }
  const batch = await deps.store.get(batchId);
  if (!batch) throw new Error(`batch ${batchId} vanished after it was created`);
  return batch;
}

/** The cache index's entries for the items' requests (generations; edits are hashed by workers). */
async function cachedImages(cache: ResultCache, tenant: string, items: ItemRecord[]) {
  const hashes = items.flatMap((item) => (item.hash ? [item.hash] : []));
  return cache.indexed(cache.scopeFor(tenant), hashes);
}

/**
 * Marks `cached` the items whose every variant, with every derived copy asked, is indexed:
 * they cost nothing and need no job. A re-run catalog completes at submission.
 */
function settleCachedItems(items: ItemRecord[], found: Map<string, Map<number, CachedImage>>) {
  for (const item of items) {
    const entries = item.hash ? found.get(item.hash) : undefined;
    if (!entries) continue;
    const rules = { n: item.spec.n, reuseAfter: item.reuse_after, derive: item.derive ?? [] };
    const hit = completeHit(reusable(entries, rules), rules);
    if (!hit) continue;
    item.status = 'cached';
    item.images = hit.map((image) => storedImage(image, true));
    item.saved_micros = savedBy(hit);
    item.rendered_by = renderedByCache(hit[0]);
  }
}

function findDuplicateDerivations(derive: DeriveSpec[]): FieldProblem | undefined {
  const names = derive.map(derivationName);
  const twice = names.findIndex((name, i) => names.indexOf(name) !== i);
  if (twice < 0) return undefined;
  return { field: `derive[${twice}]`, message: `asks for ${names[twice]} twice` };
}
