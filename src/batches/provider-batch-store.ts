import type { ProviderBatchStatus } from '../providers/openai-batch-api.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { RM_PREFIX, batchKeys, type BatchKeys } from '../redis/redis-keys.js';

/**
 * Where a part stands: `submitting` (its file being written, uploaded, its batch created),
 * `waiting_for_room` (the route's enqueued-token limit is full), then the provider's own
 * statuses, and `stored` once every line's outcome is recorded on its item.
 */
export type PartStatus = 'submitting' | 'waiting_for_room' | ProviderBatchStatus | 'stored';

/**
 * One provider batch of a rendermill batch: the items it renders and how far it has got. Every
 * provider id is recorded here the moment it is known, so a run that dies anywhere is resumed
 * by the next — never a second file or batch for the same items.
 */
export interface ProviderBatchPart {
  /** 1, 2, …: a batch's parts in the order they were made. */
  part: number;
  route: string;
  model: string;
  /** The items it renders (one request line per variant). */
  items: string[];
  lines: number;
  /** What its lines may enqueue at the route's Batch API (input + output tokens). */
  tokens: number;
  /** Submissions refused for the enqueued-token limit so far: the next batch's attempt number. */
  attempt: number;
  file_id?: string | undefined;
  batch_id?: string | undefined;
  status: PartStatus;
  counts: { total: number; completed: number; failed: number };
  /** Epoch ms of each phase reached, as the provider reported them, and when results were stored. */
  times: Partial<Record<string, number>>;
  /** The provider was asked to cancel it (the rendermill batch was cancelled). */
  cancel_requested?: boolean | undefined;
  /** Why the provider failed the whole batch, if it did. */
  error?: string | undefined;
}

const ENDED: ReadonlySet<PartStatus> = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** Whether the provider has finished with the part (its results may still need storing). */
export const partEnded = (part: ProviderBatchPart) => ENDED.has(part.status);

/** Whether the part still has work in it for rendermill: not yet stored. */
export const partOpen = (part: ProviderBatchPart) => part.status !== 'stored';

/**
 * The provider batches of rendermill batches, in Redis beside their items: the items enrolled
 * and waiting for a part, the parts, and what each route's Batch API has enqueued per model.
 */
export class ProviderBatchStore {
  private readonly keys: BatchKeys;

  constructor(
    private readonly redis: RedisConnection,
    prefix: string = RM_PREFIX,
  ) {
    this.keys = batchKeys(prefix);
  }

  /** Adds an item to those waiting for the batch's next part (again: harmless). */
  async enrol(batchId: string, itemId: string, at = Date.now()): Promise<void> {
    await this.redis.zadd(this.keys.enrolled(batchId), at, itemId);
  }

  /** The items waiting for a part, oldest first, and when the last one was enrolled. */
  async waiting(batchId: string): Promise<{ items: string[]; lastAt: number | undefined }> {
    const flat = await this.redis.zrange(this.keys.enrolled(batchId), '0', '-1', 'WITHSCORES');
    const items: string[] = [];
    let lastAt: number | undefined;
    for (let i = 0; i < flat.length; i += 2) {
      items.push(flat[i]!);
      lastAt = Number(flat[i + 1]);
    }
    return { items, lastAt };
  }

  /** How many items wait for a part: what a progress view needs, without reading them all. */
  async waitingCount(batchId: string): Promise<number> {
    return this.redis.zcard(this.keys.enrolled(batchId));
  }

  /** Stops items waiting: they are in a part now, or ended without one. */
  async unenrol(batchId: string, itemIds: readonly string[]): Promise<void> {
    if (itemIds.length > 0) await this.redis.zrem(this.keys.enrolled(batchId), ...itemIds);
  }

  async parts(batchId: string): Promise<ProviderBatchPart[]> {
    const raw = await this.redis.hvals(this.keys.providerBatches(batchId));
    return raw.map((json) => JSON.parse(json) as ProviderBatchPart).sort((a, b) => a.part - b.part);
  }

  async save(batchId: string, part: ProviderBatchPart): Promise<void> {
    await this.redis.hset(
      this.keys.providerBatches(batchId),
      String(part.part),
      JSON.stringify(part),
    );
  }

  /**
   * Records a new part and takes its items off the waiting list in one step: an item is in a
   * part or waiting, never both nor neither.
   */
  async createPart(batchId: string, part: ProviderBatchPart): Promise<void> {
    const multi = this.redis.multi();
    multi.hset(this.keys.providerBatches(batchId), String(part.part), JSON.stringify(part));
    if (part.items.length > 0) multi.zrem(this.keys.enrolled(batchId), ...part.items);
    await multi.exec();
  }

  /** Tokens enqueued at the route's Batch API for the model by every other part. */
  async enqueuedTokens(route: string, model: string, except: string): Promise<number> {
    const all = await this.redis.hgetall(this.keys.batchQueue(route, model));
    return Object.entries(all).reduce(
      (sum, [owner, tokens]) => (owner === except ? sum : sum + Number(tokens)),
      0,
    );
  }

  /** Counts the part's tokens as enqueued (`tokens` > 0) or no longer (0). */
  async setEnqueued(route: string, model: string, owner: string, tokens: number): Promise<void> {
    const key = this.keys.batchQueue(route, model);
    if (tokens > 0) await this.redis.hset(key, owner, tokens);
    else await this.redis.hdel(key, owner);
  }
}
