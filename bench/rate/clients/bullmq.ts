import { Queue } from 'bullmq';
import { REQUEST_SHAPE, promptFor, type ClientRunner } from '../scenario.js';
import { startAnchorWorker } from './child-job.js';

const QUEUE = 'bench-render';
const PREFIX = 'bench:bull';
const POLL_MS = 250;

/**
 * BullMQ's `limiter` counts jobs per fixed window, shared by every worker of the queue. The
 * most favourable setting is the fastest that never releases more than the provider's bucket
 * holds at once: `max` jobs of n images must fit in one second's worth (ceil(limit / 60)),
 * and `duration` is then the window in which `max` jobs use exactly the per-minute allowance.
 * 500/min: bucket 9 → max 2 jobs (8 images) per 960 ms = 500/min exactly;
 * 10,000/min: bucket 167 → max 41 jobs (164 images) per 984 ms = 10,000/min.
 */
export function bullmqLimiter(limit: number): { max: number; duration: number } {
  const bucket = Math.ceil(limit / 60);
  const max = Math.max(1, Math.floor(bucket / REQUEST_SHAPE.n));
  return { max, duration: Math.ceil((max * REQUEST_SHAPE.n * 60_000) / limit) };
}

/**
 * A 429 fails the attempt; BullMQ retries it. Seven attempts are rendermill's six retries plus
 * the first call; the first backoff of one second is the provider's window, since an earlier
 * retry would meet the same full bucket.
 */
const JOB_OPTIONS = { attempts: 7, backoff: { type: 'exponential', delay: 1_000 } } as const;

export const runBullmqLimiter: ClientRunner = async ({ stack, scenario, cpu, log, deadlineMs }) => {
  const limiter = bullmqLimiter(scenario.trueLimit);
  const children = Array.from({ length: scenario.workers }, (_, worker) =>
    startAnchorWorker(`bullmq worker ${worker + 1}`, 'bullmq-worker.ts', {
      baseUrl: stack.simulator.baseUrl,
      redisUrl: stack.redis.url,
      queue: QUEUE,
      prefix: PREFIX,
      concurrency: scenario.concurrency,
      limiter,
    }),
  );
  // Connection options, not a shared client: the queue then owns its connection and closes it.
  const queue = new Queue(QUEUE, { connection: { url: stack.redis.url }, prefix: PREFIX });
  try {
    await Promise.all(children.map((child) => child.waitFor(/READY/)));
    for (const child of children) cpu.track('workers', child.pid);
    log(`limiter ${JSON.stringify(limiter)} shared by ${scenario.workers} workers`);
    await queue.addBulk(
      Array.from({ length: scenario.items }, (_, i) => ({
        name: 'render',
        data: { prompt: promptFor(scenario, i) },
        opts: JOB_OPTIONS,
      })),
    );
    const deadline = Date.now() + deadlineMs;
    let lastLog = Date.now();
    for (;;) {
      const counts = await queue.getJobCounts('completed', 'failed');
      const completed = counts.completed ?? 0;
      const failed = counts.failed ?? 0;
      if (completed + failed >= scenario.items || Date.now() > deadline) {
        const notes: string[] = [];
        if (failed > 0) {
          const reasons: Record<string, number> = {};
          for (const job of await queue.getFailed(0, -1))
            reasons[job.failedReason] = (reasons[job.failedReason] ?? 0) + 1;
          for (const [why, count] of Object.entries(reasons))
            notes.push(`failed for good (${count}): ${why.slice(0, 120)}`);
        }
        if (completed + failed < scenario.items)
          notes.push(`${scenario.items - completed - failed} jobs unfinished at the deadline`);
        return { itemsSucceeded: completed, itemsLost: scenario.items - completed, notes };
      }
      if (Date.now() - lastLog >= 5_000) {
        log(`${completed + failed}/${scenario.items} jobs done (${failed} failed)`);
        lastLog = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await queue.close();
  }
};
