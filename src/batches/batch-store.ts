import {
  cancelledItem,
  tallyItems,
  type BatchRecord,
  type ItemRecord,
  type ItemTally,
} from '../contracts/batch-records.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { sortedSetPage } from '../redis/sorted-set-page.js';
import type { SpendCap } from '../ledger/spend-caps.js';
import { SpendLedger } from '../ledger/spend-ledger.js';
import type { Micros } from '../models/pricing.js';
import {
  ITEM_STATUSES,
  TERMINAL_STATUSES,
  type BatchStatus,
  type ItemStatus,
} from '../contracts/item-status.js';

/** Staged items of a submission that never published expire after this. */
const STAGED_TTL_MS = 3600_000;

/** `checkpoint_due`: updated, and the batch's manifest is due to be written while it runs. */
/**
 * `cancelled`: the item was to go (back) to `queued` or `running` but its batch is being
 * cancelled, so it was cancelled instead: the job must stop, with nothing more to pay.
 */
export type TransitionOutcome =
  'ignored' | 'updated' | 'batch_completed' | 'checkpoint_due' | 'cancelled';

/**
 * Batches and their items, in Redis: staging and publishing a submission, reading, scanning
 * and paging, item transitions, cancelling and deleting.
 *
 * A batch store is its batches' spend ledger too (it extends SpendLedger, whose methods
 * reserve, mark calls and charge holds): an item's transition settles its money in the same
 * script as it moves the item, so a reader never sees an item counted twice or not at all, nor
 * money without its item. That needs every key of a batch and the spend counters in one Redis
 * Cluster slot: they share the hash tag `{batches}` (redis-keys.ts `batchKeys`). That puts this
 * state on one node of a cluster, as BullMQ does with each queue.
 */
export class BatchStore extends SpendLedger {
  constructor(
    redis: RedisConnection,
    private readonly options: {
      prefix?: string;
      /** How often a running batch's manifest is due to be written (RENDERMILL_MANIFEST_CHECKPOINT_MS). */
      checkpointMs: number;
    },
  ) {
    super(redis, options);
  }

  private metaKey(id: string) {
    return this.keys.meta(id);
  }
  private itemsKey(id: string) {
    return this.keys.items(id);
  }
  /** itemId → micro-dollars it holds: one reservation per item, so a re-run replaces its own. */
  private reservationsKey(id: string) {
    return this.keys.reservations(id);
  }
  private tenantKey(tenant: string) {
    return this.keys.tenantBatches(tenant);
  }

  /**
   * Writes items of a batch that is not published yet: invisible to every reader until
   * `publish`, and gone by themselves within an hour if the submission dies half-way.
   * Called once per chunk, so a catalog of 100,000 rows never sits in memory whole.
   */
  async stageItems(batchId: string, items: readonly ItemRecord[]): Promise<void> {
    if (items.length === 0) return;
    const pipeline = this.redis.multi();
    pipeline.hset(
      this.itemsKey(batchId),
      ...items.flatMap((item) => [item.id, JSON.stringify(item)]),
    );
    pipeline.pexpire(this.itemsKey(batchId), STAGED_TTL_MS);
    await pipeline.exec();
  }

  /** Forgets the staged items of a submission that was refused. */
  async discardStaged(batchId: string): Promise<void> {
    await this.redis.del(this.itemsKey(batchId));
  }

  /**
   * Makes a batch whose items are staged visible, counted by `tally`. Items may arrive
   * settled already (cache hits at submission): they are counted where they are.
   */
  async publish(
    batch: Pick<
      BatchRecord,
      | 'id'
      | 'tenant'
      | 'created_at'
      | 'budget_micros'
      | 'metadata'
      | 'webhook_url'
      | 'schedule_id'
      | 'routing'
      | 'mode'
      | 'mode_requested'
      | 'complete_by'
      | 'on_expiry'
    >,
    tally: ItemTally,
  ): Promise<void> {
    const meta: Record<string, string | number> = {
      id: batch.id,
      tenant: batch.tenant,
      status: 'queued',
      created_at: batch.created_at,
      total: tally.total,
      spent_micros: 0,
      reserved_micros: 0,
      checkpoint_at: Date.parse(batch.created_at),
      metadata: JSON.stringify(batch.metadata),
    };
    for (const status of ITEM_STATUSES) meta[`count:${status}`] = tally.counts[status];
    const settled = TERMINAL_STATUSES.reduce((sum, status) => sum + tally.counts[status], 0);
    meta.done = settled;
    meta.saved_micros = tally.savedMicros;
    if (settled === tally.total) {
      meta.status = 'completed';
      meta.completed_at = batch.created_at;
    } else if (settled > 0) meta.status = 'running';
    if (batch.budget_micros !== undefined) meta.budget_micros = batch.budget_micros;
    if (batch.webhook_url) meta.webhook_url = batch.webhook_url;
    if (batch.schedule_id) meta.schedule_id = batch.schedule_id;
    if (batch.routing) meta.routing = batch.routing;
    if (batch.mode) meta.mode = batch.mode;
    if (batch.mode_requested) meta.mode_requested = batch.mode_requested;
    if (batch.complete_by) meta.complete_by = batch.complete_by;
    if (batch.on_expiry) meta.on_expiry = batch.on_expiry;

    const pipeline = this.redis.multi();
    pipeline.persist(this.itemsKey(batch.id));
    // Meta last: a batch is visible only once all of its items are.
    pipeline.hset(this.metaKey(batch.id), meta);
    pipeline.zadd(this.tenantKey(batch.tenant), Date.parse(batch.created_at), batch.id);
    await pipeline.exec();
  }

  /** Records a batch and all its items at once: `stageItems` and `publish` in one call. */
  async create(
    batch: Parameters<BatchStore['publish']>[0],
    items: readonly ItemRecord[],
  ): Promise<void> {
    for (let i = 0; i < items.length; i += 1000) {
      await this.stageItems(batch.id, items.slice(i, i + 1000));
    }
    await this.publish(batch, tallyItems(items));
  }

  async get(id: string): Promise<BatchRecord | undefined> {
    const raw = await this.redis.hgetall(this.metaKey(id));
    if (!raw.id) return undefined;
    const counts = Object.fromEntries(
      ITEM_STATUSES.map((s) => [s, Number(raw[`count:${s}`] ?? 0)]),
    ) as Record<ItemStatus, number>;
    return {
      id: raw.id,
      tenant: raw.tenant ?? '',
      status: raw.status as BatchStatus,
      created_at: raw.created_at ?? '',
      completed_at: raw.completed_at,
      total: Number(raw.total),
      counts,
      budget_micros: raw.budget_micros === undefined ? undefined : Number(raw.budget_micros),
      spent_micros: Number(raw.spent_micros ?? 0),
      reserved_micros: Number(raw.reserved_micros ?? 0),
      saved_micros: Number(raw.saved_micros ?? 0),
      manifest_key: raw.manifest_key,
      metadata: JSON.parse(raw.metadata ?? '{}') as Record<string, string>,
      webhook_url: raw.webhook_url,
      schedule_id: raw.schedule_id,
      routing: raw.routing,
      mode: raw.mode as BatchRecord['mode'],
      mode_requested: raw.mode_requested as BatchRecord['mode_requested'],
      complete_by: raw.complete_by,
      on_expiry: raw.on_expiry as BatchRecord['on_expiry'],
    };
  }

  /** The batch if it belongs to the tenant; another tenant's batch does not exist for them. */
  async getForTenant(tenant: string, id: string): Promise<BatchRecord | undefined> {
    const batch = await this.get(id);
    return batch?.tenant === tenant ? batch : undefined;
  }

  async item(batchId: string, itemId: string): Promise<ItemRecord | undefined> {
    const raw = await this.redis.hget(this.itemsKey(batchId), itemId);
    return raw ? (JSON.parse(raw) as ItemRecord) : undefined;
  }

  /** The items of the batch with these ids, in their order (undefined where none is). */
  async itemsById(batchId: string, ids: readonly string[]): Promise<(ItemRecord | undefined)[]> {
    if (ids.length === 0) return [];
    const raw = await this.redis.hmget(this.itemsKey(batchId), ...ids);
    return raw.map((json) => (json ? (JSON.parse(json) as ItemRecord) : undefined));
  }

  /** Every item of the batch, in submission order. */
  async items(batchId: string): Promise<ItemRecord[]> {
    const items = new Map<string, ItemRecord>();
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(this.itemsKey(batchId), cursor, 'COUNT', 1000);
      cursor = next;
      for (let i = 1; i < entries.length; i += 2) {
        const item = JSON.parse(entries[i]!) as ItemRecord;
        items.set(item.id, item); // HSCAN may return an entry twice while Redis rehashes
      }
    } while (cursor !== '0');
    return [...items.values()].sort((a, b) => a.index - b.index);
  }

  /**
   * Moves an item to its next state and settles money in one atomic step: `spendMicros` is
   * added to the spend — of the batch, and of the counters the item's reservation was held
   * against (else `caps`, today's) — and, unless the item is only starting to run, whatever
   * the item holds reserved is released. An item already in a final state keeps it
   * (`ignored`), which makes a re-run job harmless — but money a duplicate run really paid is
   * still counted. One script with the item (transition.lua): the ledger's side of the seam.
   */
  async transition(
    batchId: string,
    next: ItemRecord,
    money: {
      spendMicros?: Micros;
      /** What cache hits saved this item. */
      savedMicros?: Micros;
      /** Release what the item holds even on a move to `running` (a dead run's reservation). */
      releaseReservation?: boolean;
      /** Where spend that has no reservation counts (the tenant's month, the day). */
      caps?: readonly SpendCap[];
      /** Move only if the item is in this state now; otherwise nothing changes (`ignored`). */
      onlyFrom?: ItemStatus;
    } = {},
  ): Promise<TransitionOutcome> {
    const caps = money.caps ?? [];
    const result = await this.scripts.rmTransition(
      3 + caps.length,
      this.metaKey(batchId),
      this.itemsKey(batchId),
      this.reservationsKey(batchId),
      ...caps.map((cap) => this.keys.spendCounter(cap.id)),
      next.id,
      JSON.stringify(next),
      next.status,
      money.spendMicros ?? 0,
      new Date().toISOString(),
      TERMINAL_STATUSES.join(','),
      money.releaseReservation || next.status !== 'running' ? 1 : 0,
      money.savedMicros ?? 0,
      Date.now(),
      this.options.checkpointMs,
      money.onlyFrom ?? '',
      // What the item becomes instead if its batch is being cancelled (see transition.lua).
      next.status === 'queued' || next.status === 'running'
        ? JSON.stringify(cancelledItem(next))
        : '',
    );
    if (result === -1) throw new Error(`item ${next.id} of batch ${batchId} does not exist`);
    return TRANSITION_OUTCOMES[result] ?? 'updated';
  }

  /** Removes a batch that could not be fully queued, so nothing is left half-created. */
  async delete(batchId: string, tenant: string): Promise<void> {
    // Jobs of it that already ran may hold reservations on the tenant's and the day's
    // counters: they are released with it, or the counters would hold them for ever.
    await this.scripts.rmDelete(
      this.metaKey(batchId),
      this.itemsKey(batchId),
      this.reservationsKey(batchId),
      this.tenantKey(tenant),
      batchId,
    );
  }

  /** The batch's items in chunks of about `count`, in no order: for work over huge batches. */
  async *scanItems(batchId: string, count = 1000): AsyncGenerator<ItemRecord[]> {
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(
        this.itemsKey(batchId),
        cursor,
        'COUNT',
        count,
      );
      cursor = next;
      const chunk: ItemRecord[] = [];
      for (let i = 1; i < entries.length; i += 2) chunk.push(JSON.parse(entries[i]!) as ItemRecord);
      if (chunk.length > 0) yield chunk;
    } while (cursor !== '0');
  }

  /**
   * A page of the tenant's batch ids, newest first, after the batch `cursor` (exclusive).
   * Undefined when the cursor is not one of the tenant's batches.
   */
  async pageOfIds(
    tenant: string,
    cursor: string | undefined,
    count: number,
  ): Promise<string[] | undefined> {
    return sortedSetPage(this.redis, this.tenantKey(tenant), cursor, count, { newestFirst: true });
  }

  /**
   * Starts cancelling a batch: it becomes `cancelling` (then `cancelled` once its last item
   * is final). Returns false if it had ended already.
   */
  async markCancelling(batchId: string, at: string): Promise<boolean> {
    const result = await this.scripts.rmCancel(this.metaKey(batchId), at);
    return result === 1;
  }

  /**
   * Cancels one item if it is still `queued`: an item a worker has started is left to finish.
   * What it holds reserved is released.
   */
  async cancelQueuedItem(batchId: string, item: ItemRecord): Promise<TransitionOutcome> {
    return this.transition(batchId, cancelledItem(item), { onlyFrom: 'queued' });
  }

  async setManifestKey(batchId: string, key: string): Promise<void> {
    await this.redis.hset(this.metaKey(batchId), 'manifest_key', key);
  }
}

const TRANSITION_OUTCOMES: Record<number, TransitionOutcome> = {
  0: 'ignored',
  1: 'updated',
  2: 'batch_completed',
  3: 'checkpoint_due',
  4: 'cancelled',
};
