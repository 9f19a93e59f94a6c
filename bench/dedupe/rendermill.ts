import type { Child } from '../support/children.js';
import { startRendermillProcesses, type BatchView } from '../support/deployment.js';
import { callApi } from '../support/rendermill-api.js';
import type { Stack } from '../support/stack.js';
import { POLL_MS, REQUEST, sleep } from './shape.js';

/** Far above anything the simulator is allowed to refuse: the limiter never waits here. */
const IMAGES_PER_MINUTE = 1_000_000;

export interface Deployment {
  /** The worker processes, for the CPU meter (role 'workers'). */
  workers: Child[];
  api: Child;
  /** POSTs the items as one batch and polls it until it completes or the deadline passes. */
  runBatch(
    items: { id: string; prompt: string }[],
    deadlineMs: number,
    log: (line: string) => void,
  ): Promise<BatchRun>;
  /** Error-level lines the processes logged, for the notes. */
  errorLines(): string[];
  stop(): Promise<void>;
}

export interface BatchRun {
  batch: BatchView;
  /** From just before the POST until a poll saw the batch completed (or the deadline). */
  seconds: number;
  /**
   * From just before the POST until the batch's own completed_at — the same without poll
   * granularity — but never less than the POST: a batch complete at submission (every item
   * cached) is stamped with its creation time, and no client can use it before the answer.
   */
  secondsToCompletedAt: number | null;
  /** How long the POST itself took (validation, recording and queueing every item). */
  submitSeconds: number;
}

/**
 * rendermill exactly as production runs it, and as the rate bench starts it: one
 * `rendermill api` and W `rendermill worker` processes, configured only through the
 * environment, so whatever the service ships (result cache or not) is what gets measured.
 */
export async function startRendermill(
  stack: Stack,
  options: { workers: number; concurrency: number; n: number },
): Promise<Deployment> {
  const processes = await startRendermillProcesses(stack, {
    workers: options.workers,
    env: {
      RENDERMILL_IMAGES_PER_MINUTE: String(IMAGES_PER_MINUTE),
      RENDERMILL_CONCURRENCY: String(options.concurrency),
    },
  });
  const { apiUrl } = processes;

  return {
    api: processes.api,
    workers: processes.workers,
    stop: processes.stop,
    errorLines: processes.errorLines,
    async runBatch(items, deadlineMs, log) {
      const { model, size, quality } = REQUEST;
      const { n } = options;
      const startedAt = Date.now();
      const started = performance.now();
      const submitted = await callApi<BatchView>(apiUrl, 'POST', '/v1/batches', {
        model,
        size,
        quality,
        n,
        items,
      });
      const submitSeconds = (performance.now() - started) / 1000;
      const deadline = Date.now() + deadlineMs;
      let lastLog = Date.now();
      for (;;) {
        const batch = await callApi<BatchView>(apiUrl, 'GET', `/v1/batches/${submitted.id}`);
        if (batch.status === 'completed' || Date.now() > deadline) {
          const seconds = (performance.now() - started) / 1000;
          const completedAt = batch.completed_at === null ? NaN : Date.parse(batch.completed_at);
          return {
            batch,
            seconds,
            secondsToCompletedAt: Number.isFinite(completedAt)
              ? Math.max((completedAt - startedAt) / 1000, submitSeconds)
              : null,
            submitSeconds,
          };
        }
        if (Date.now() - lastLog >= 5_000) {
          const done =
            batch.counts.total - (batch.counts.queued ?? 0) - (batch.counts.running ?? 0);
          log(`${done}/${batch.counts.total} items done`);
          lastLog = Date.now();
        }
        await sleep(POLL_MS);
      }
    },
  };
}
