import { createFinalizeBatchProcessor } from '../jobs/finalize-batch.js';
import { createRenderItemHandler } from '../jobs/render-item.js';
import { createDeliverWebhookProcessor } from '../jobs/deliver-webhook.js';
import { createRunScheduleProcessor } from '../jobs/run-schedule.js';
import type { Services } from '../src/runtime/services.js';
import { startWorkers, type RunningWorkers } from './worker.js';

/** Starts this process's workers for every job of the catalog, wired to the services. */
export function startRenderWorkers(
  services: Services,
  options: { shutdownGraceMs?: number } = {},
): RunningWorkers {
  const { store, storage, cache, locks, caps, accounts, registry, queue, logger, redis, config } =
    services;
  if (accounts.length === 0) {
    throw new Error('workers need a provider: start the services with provider: true');
  }
  return startWorkers({
    connection: redis,
    logger,
    concurrency: config.concurrency,
    lockMs: config.jobLockMs,
    ...options,
    handlers: {
      'render-item': createRenderItemHandler({
        store,
        storage,
        cache,
        locks,
        caps,
        accounts,
        registry,
        queue,
        logger,
        retryPolicy: config.retry,
      }),
      'finalize-batch': { process: createFinalizeBatchProcessor({ store, storage, logger }) },
      'deliver-webhook': { process: createDeliverWebhookProcessor() },
      'run-schedule': { process: createRunScheduleProcessor() },
    },
  });
}
