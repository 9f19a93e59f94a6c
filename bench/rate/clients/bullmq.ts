import { Queue } from 'bullmq';
import { windowAllowance } from '../provider.js';
import { promptFor, type ClientRunner } from '../scenario.js';
import { startAnchorWorker } from './child-job.js';

const QUEUE = 'bench-render';
const PREFIX = 'bench:bull';
const POLL_MS = 250;

/**
 * BullMQ's `limiter` counts jobs per fixed window, shared by every worker of the queue. The
 * most favourable setting is the fastest that never releases more than the provider's window
 * allows at once: `max` jobs of n images must fit in one window's allowance, and `duration`
 * is then the time in which `max` jobs use exactly the per-minute limit.
 * 600/min, n=2: allowance 10 → max 5 jobs per 1,000 ms; 3,000/min: 25 jobs per 1,000 ms;
 * 5/min (minute of 6 s), n=4: allowance 1 → 1 job per 4,800 ms, refused all the same.
 * BullMQ's windows are not aligned with the provider's wall-clock windows.
 */
export function bullmqLimiter(
  limit: number,
  n: number,
  minuteMs: number,
): { max: number; duration: number } {
  const { allowance } = windowAllowance(limit, minuteMs);
  const max = Math.max(1, Math.floor(allowance / n));
  return { max, duration: Math.ceil((max * n * minuteMs) / limit) };
}

/**
 * A 429 fails the attempt; BullMQ retries it. Seven attempts are rendermill's six retries plus
 * the first call; the first backoff of one second is the provider's window, since an earlier
 * retry would meet the same full bucket.
 */
const JOB_OPTIONS = { attempts: 7, backoff: { type: 'exponential', delay: 1_000 } } as const;

export const runBullmqLimiter: ClientRunner = async ({ stack, scenario, cpu, log, deadlineMs }) => {
  const limiter = bullmqLimiter(scenario.trueLimit, scenario.n, scenario.minuteMs);
  const children = Array.from({ length: scenario.workers }, (_, worker) =>
    startAnchorWorker(`bullmq worker ${worker + 1}`, 'bullmq-worker.ts', {
      baseUrl: stack.simulator.baseUrl,
      redisUrl: stack.redis.url,
      queue: QUEUE,
      prefix: PREFIX,
      concurrency: scenario.concurrency,
      n: scenario.n,
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
