import { createHash, randomBytes } from 'node:crypto';
import { usdToMicros } from '../models/pricing.js';
import type { FieldProblem } from '../errors.js';
import type { JobQueue } from '../queue/job-queue.js';
import type { BatchStore } from './batch-store.js';
import type { BatchRecord, ItemRecord } from '../contracts/batch-records.js';
import type { BatchRequest } from '../contracts/batch-request.js';
import type { RoutingStrategy } from '../config/route-kinds.js';
import { jsonBatchSource, type BatchSource } from './batch-source.js';
import { resolveItems, type ResolveDeps } from './resolve-items.js';
import { modeProblems, resolveMode } from './batch-mode.js';
import { validationError } from '../request-validation.js';

export interface SubmitBatchDeps extends ResolveDeps {
  store: BatchStore;
  queue: JobQueue;
  /** The routing of batches that name none (the providers file's). */
  routing?: RoutingStrategy;
  /** Refuses a webhook URL rendermill must not call (private, loopback, link-local …). */
  checkWebhookUrl?: (url: string) => Promise<void>;
  now?: () => Date;
}

/** A sortable, unguessable batch id: time first so listings sort by creation. */
export function newBatchId(now: Date): string {
  return `batch_${now.getTime().toString(36)}${randomBytes(8).toString('hex')}`;
}

/**
 * The batch id of one run of a schedule, the same every time the run is attempted: however
 * often its job runs, the run makes one batch.
 */
export function scheduledBatchId(scheduleId: string, runTime: Date): string {
  const digest = createHash('sha256').update(`${scheduleId}\n${runTime.toISOString()}`);
  return `batch_${runTime.getTime().toString(36)}${digest.digest('hex').slice(0, 16)}`;
}

export interface SubmitOptions {
  /** The schedule whose run this is. */
  scheduleId?: string | undefined;
  /**
   * A fixed id (scheduledBatchId): if a batch of that id exists, it is the answer, and nothing
   * new is submitted.
   */
  batchId?: string | undefined;
}

/** A submitted batch, and the rows that were skipped (`on_invalid: skip`). */
export interface Submission {
  batch: BatchRecord;
  rejected: { count: number; rows: FieldProblem[] };
}

/**
 * Validates and resolves a batch as it arrives, records it and queues one render job per item
 * the cache cannot answer. Items are staged in Redis chunk by chunk and the batch published
 * only once every row has been read, so a refused submission leaves nothing behind and a
 * 100,000-row catalog never sits in memory whole.
 */
export async function submitFromSource(
  deps: SubmitBatchDeps,
  tenant: string,
  source: BatchSource,
  options: SubmitOptions = {},
): Promise<Submission> {
  const { options: request } = source;
  if (request.webhook_url) await deps.checkWebhookUrl?.(request.webhook_url);
  const now = deps.now?.() ?? new Date();
  const batchId = options.batchId ?? newBatchId(now);
  const problems = modeProblems(request, now);
  if (problems.length > 0) throw validationError(problems, 'invalid_request');
  if (options.batchId) {
    const existing = await deps.store.get(batchId);
    if (existing) {
      // Submitted before by a run that died before it could say so: finish queueing it (job
      // ids make that harmless) and answer with it, rather than submit, and pay, twice.
      if (existing.tenant !== tenant)
        throw new Error(`batch id ${batchId} belongs to another tenant`);
      await queueRenders(deps, existing, request.routing);
      return { batch: existing, rejected: { count: 0, rows: [] } };
    }
  }
  let resolved;
  try {
    resolved = await resolveItems(deps, tenant, source, now, (items) =>
      deps.store.stageItems(batchId, items),
    );
  } catch (error) {
    await deps.store.discardStaged(batchId);
    throw error;
  }
  const mode = resolveMode(request, resolved.unbatchable, now);
  await deps.store.publish(
    {
      id: batchId,
      tenant,
      created_at: now.toISOString(),
      budget_micros: request.budget_usd === undefined ? undefined : usdToMicros(request.budget_usd),
      metadata: {
        ...request.metadata,
        ...(source.format === 'json' ? {} : { input_format: source.format }),
      },
      webhook_url: request.webhook_url,
      routing: request.routing,
      schedule_id: options.scheduleId,
      ...mode,
      complete_by: request.complete_by,
      on_expiry: request.on_expiry,
    },
    resolved.tally,
  );
  try {
    await queueRenders(deps, { id: batchId, tenant, mode: mode.mode }, request.routing);
    if (resolved.tally.counts.queued === 0) {
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
  return { batch, rejected: { count: resolved.rejected, rows: resolved.problems } };
}

/**
 * One render job per queued item, read back from Redis a chunk at a time. In `provider_batch`
 * mode the job enrols the item in the batch's provider batch rather than rendering it.
 */
async function queueRenders(
  deps: SubmitBatchDeps,
  batch: Pick<BatchRecord, 'id' | 'tenant' | 'mode'>,
  routing: RoutingStrategy | undefined,
) {
  const { id: batchId, tenant } = batch;
  const mode = batch.mode === 'provider_batch' ? ('provider_batch' as const) : undefined;
  for await (const chunk of deps.store.scanItems(batchId)) {
    await deps.queue.addBulk(
      'render-item',
      chunk
        .filter((item) => item.status === 'queued')
        .map((item) => ({
          jobId: `${batchId}-${item.index}`,
          payload: {
            batchId,
            itemId: item.id,
            tenant,
            spec: item.spec,
            routing,
            mode,
            ...(item.hash ? { hash: item.hash } : {}),
          },
        })),
    );
  }
}

/** A JSON batch request, submitted whole: a request with any bad item is refused. */
export async function submitBatch(
  deps: SubmitBatchDeps,
  tenant: string,
  body: unknown,
  options: SubmitOptions = {},
): Promise<BatchRecord> {
  return (await submitFromSource(deps, tenant, jsonBatchSource(body), options)).batch;
}

/** A batch request validated and resolved: every item with its spec, hash and cache hit. */
export interface ResolvedBatch {
  request: Omit<BatchRequest, 'items'>;
  items: ItemRecord[];
  now: Date;
}

/**
 * Validates a JSON batch request completely and resolves every item, without recording
 * anything: what a schedule checks its next run with. Throws RequestValidationError naming
 * every problem.
 */
export async function resolveBatch(
  deps: ResolveDeps & { now?: () => Date },
  tenant: string,
  body: unknown,
): Promise<ResolvedBatch> {
  const source = jsonBatchSource(body);
  const now = deps.now?.() ?? new Date();
  const items: ItemRecord[] = [];
  await resolveItems(deps, tenant, source, now, async (chunk) => {
    items.push(...chunk);
  });
  return { request: source.options, items, now };
}
