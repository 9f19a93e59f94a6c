import { Queue } from 'bullmq';
import {
  JOB_CATALOG,
  QUEUE_NAMES,
  type JobName,
  type JobPayload,
} from '../contracts/job-catalog.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { bullPrefixFor } from '../redis/redis-keys.js';

/** Puts jobs of the catalog on their BullMQ queues. The producer side of every job. */
export interface JobQueue {
  add<N extends JobName>(name: N, payload: JobPayload<N>, jobId: string): Promise<void>;
  addBulk<N extends JobName>(
    name: N,
    jobs: { payload: JobPayload<N>; jobId: string }[],
  ): Promise<void>;
  /** Removes waiting or delayed jobs; a job a worker holds is left to it. Returns how many went. */
  removeWaiting(name: JobName, jobIds: readonly string[]): Promise<number>;
  close(): Promise<void>;
}

/** BullMQ job ids must not contain ':' (it separates key parts). */
export const jobIdPart = (value: string) => value.replace(/:/g, '_');

const BULK_CHUNK = 1_000;

export class BullJobQueue implements JobQueue {
  private readonly queues = new Map<string, Queue>();

  /**
   * @param prefix BullMQ's key prefix. Default `rm:bull`, or `rm:{bull}` on a cluster
   *   (`bullPrefixFor`); workers must use the same.
   */
  constructor(
    connection: RedisConnection,
    readonly prefix = bullPrefixFor(connection),
  ) {
    for (const name of QUEUE_NAMES) {
      this.queues.set(name, new Queue(name, { connection, prefix }));
    }
  }

  queue(name: string): Queue {
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`unknown queue ${name}`);
    return queue;
  }

  allQueues(): Queue[] {
    return [...this.queues.values()];
  }

  async add<N extends JobName>(name: N, payload: JobPayload<N>, jobId: string): Promise<void> {
    await this.addBulk(name, [{ payload, jobId }]);
  }

  async addBulk<N extends JobName>(
    name: N,
    jobs: { payload: JobPayload<N>; jobId: string }[],
  ): Promise<void> {
    const job = JOB_CATALOG[name];
    const queue = this.queue(job.queue);
    for (let i = 0; i < jobs.length; i += BULK_CHUNK) {
      await queue.addBulk(
        jobs.slice(i, i + BULK_CHUNK).map(({ payload, jobId }) => ({
          name,
          data: job.payload.parse(payload),
          opts: { ...job.options, jobId: jobIdPart(jobId) },
        })),
      );
    }
  }

  async removeWaiting(name: JobName, jobIds: readonly string[]): Promise<number> {
    const queue = this.queue(JOB_CATALOG[name].queue);
    // BullMQ's remove refuses (and throws on) a locked job: that one is running, and stays.
    const removed = await Promise.all(
      jobIds.map((id) => queue.remove(jobIdPart(id)).catch(() => 0)),
    );
    return removed.reduce<number>((sum, n) => sum + n, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.allQueues().map((q) => q.close()));
  }
}
