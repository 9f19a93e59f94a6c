import type { RedisConnection } from '../redis/redis-connection.js';
import { JOB_CATALOG, type JobPayload } from '../contracts/job-catalog.js';
import type { BatchRecord } from '../contracts/batch-records.js';
import { jobIdPart, type BullJobQueue } from '../queue/job-queue.js';
import { RM_PREFIX, webhookQueuedKey } from '../redis/redis-keys.js';
import { batchEvent, type BatchEvent } from './batch-event.js';

export interface BatchWebhooksOptions {
  /** Marker key prefix. Default `rm`. */
  prefix?: string | undefined;
  /**
   * First wait before a failed delivery is retried, doubled each attempt
   * (RENDERMILL_WEBHOOK_RETRY_BASE_MS).
   */
  retryBaseMs: number;
}

/** How long a batch remembers its event was queued: well past any finalize re-run. */
const QUEUED_MARKER_TTL_SECONDS = 30 * 24 * 3600;

/**
 * Queues the one event an ended batch sends to its `webhook_url`. Exactly once per batch:
 * the job id `webhook-<batch>` makes a second queueing a no-op while the job is kept (a
 * day after it succeeds, a week after it fails), and a marker in Redis covers later re-runs.
 */
export class BatchWebhooks {
  private readonly prefix: string;
  private readonly retryBaseMs: number;

  constructor(
    private readonly queue: Pick<BullJobQueue, 'queue'>,
    private readonly redis: RedisConnection,
    options: BatchWebhooksOptions,
  ) {
    this.prefix = options.prefix ?? RM_PREFIX;
    this.retryBaseMs = options.retryBaseMs;
  }

  private markerKey(batchId: string) {
    return webhookQueuedKey(batchId, this.prefix);
  }

  /**
   * Queues the batch's event if it has a webhook URL and has ended; returns the event, or
   * undefined if there is none to send (or it was queued before). Throws if the queue cannot
   * be reached: the caller's job is retried, and the event is not lost.
   */
  async queueFor(batch: BatchRecord): Promise<BatchEvent | undefined> {
    if (!batch.webhook_url) return undefined;
    const event = batchEvent(batch);
    if (!event) return undefined;
    if (await this.redis.exists(this.markerKey(batch.id))) return undefined;

    const job = JOB_CATALOG['deliver-webhook'];
    const payload: JobPayload<'deliver-webhook'> = job.payload.parse({
      tenant: batch.tenant,
      url: batch.webhook_url,
      event,
    });
    // Added on the BullMQ queue itself, not through JobQueue.add, so that the backoff can be
    // configured (tests and impatient operators shorten it).
    await this.queue.queue(job.queue).add('deliver-webhook', payload, {
      ...job.options,
      backoff: { type: 'exponential', delay: this.retryBaseMs },
      jobId: jobIdPart(`webhook-${batch.id}`),
    });
    await this.redis.set(this.markerKey(batch.id), event.id, 'EX', QUEUED_MARKER_TTL_SECONDS);
    return event;
  }
}
