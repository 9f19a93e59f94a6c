import { AnswerBudget } from '../src/limits/answer-budget.js';
import { RouteLoad } from '../src/render/route-load.js';
import { createFinalizeBatchProcessor } from '../jobs/finalize-batch.js';
import { createProviderBatchHandler } from '../jobs/provider-batch.js';
import { createRenderItemHandler } from '../jobs/render-item.js';
import { ProviderBatchStore } from '../src/batches/provider-batch-store.js';
import { createDeliverWebhookHandler } from '../jobs/deliver-webhook.js';
import { createRunScheduleHandler } from '../jobs/run-schedule.js';
import { submitDepsFor } from '../src/runtime/wiring.js';
import { ScheduleStore } from '../src/schedules/schedule-store.js';
import { SCHEDULE_QUEUE } from '../src/schedules/schedules.js';
import type { Services } from '../src/runtime/services.js';
import { ImageSpool } from '../src/storage/image-spool.js';
import { BatchWebhooks } from '../src/webhooks/batch-webhooks.js';
import { WebhookSecrets } from '../src/webhooks/webhook-secrets.js';
import { startWorkers, type RunningWorkers } from './worker.js';

/**
 * Starts this process's workers for every job of the catalog, wired to the services and their
 * configuration. `shutdownGraceMs` replaces RENDERMILL_SHUTDOWN_GRACE_MS (tests stop quickly);
 * `answerBudget` replaces the process's own (of ANSWER_BUDGET_BYTES), for tests to make it bind.
 */
export function startRenderWorkers(
  services: Services,
  options: { shutdownGraceMs?: number; answerBudget?: AnswerBudget } = {},
): RunningWorkers {
  const { store, storage, cache, locks, caps, routes, registry, queue, logger, redis, config } =
    services;
  if (routes.length === 0) {
    throw new Error('workers need a provider: start the services with provider: true');
  }
  const providerBatches = new ProviderBatchStore(services.state);
  const batchWebhooks = new BatchWebhooks(queue, services.state, {
    retryBaseMs: config.webhooks.retryBaseMs,
  });
  return startWorkers({
    connection: redis,
    logger,
    concurrency: config.concurrency,
    lockMs: config.jobLockMs,
    shutdownGraceMs: options.shutdownGraceMs ?? config.shutdownGraceMs,
    handlers: {
      'render-item': createRenderItemHandler({
        store,
        storage,
        spool: new ImageSpool(services.state, config.spool),
        cache,
        locks,
        caps,
        routes,
        routing: config.routing,
        routeLoad: new RouteLoad(),
        lockTtlMs: config.jobLockMs,
        registry,
        queue,
        providerBatches,
        providerBatchPollMs: config.providerBatch.pollMs,
        logger,
        retryPolicy: config.retry,
        allowPrivateUrls: config.allowPrivateUrls,
        metrics: services.metrics,
        answerBudget: options.answerBudget ?? new AnswerBudget(),
      }),
      'provider-batch': createProviderBatchHandler({
        store,
        parts: providerBatches,
        storage,
        cache,
        locks,
        caps,
        routes,
        registry,
        queue,
        logger,
        settings: config.providerBatch,
        metrics: services.metrics,
      }),
      'finalize-batch': {
        process: createFinalizeBatchProcessor({
          store,
          storage,
          logger,
          webhooks: batchWebhooks,
          providerBatches,
        }),
      },
      'deliver-webhook': createDeliverWebhookHandler({
        secrets: new WebhookSecrets(services.state, { fixed: config.webhooks.secrets }),
        allowPrivate: config.allowPrivateUrls,
        logger,
      }),
      'run-schedule': createRunScheduleHandler({
        schedules: new ScheduleStore(services.state),
        queue: queue.queue(SCHEDULE_QUEUE),
        submit: submitDepsFor(services),
        logger,
        leaseMs: config.jobLockMs,
      }),
    },
  });
}
