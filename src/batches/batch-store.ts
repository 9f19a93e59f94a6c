import type { Redis } from 'ioredis';
import type { Micros } from '../models/pricing.js';
import type { RenderSpec } from '../models/render-spec.js';
import {
  ITEM_STATUSES,
  TERMINAL_STATUSES,
  type BatchStatus,
  type ItemStatus,
} from './item-status.js';

export interface StoredImage {
  key: string;
  format: string;
  bytes: number;
}

export interface ItemRecord {
  id: string;
  index: number;
  status: ItemStatus;
  spec: RenderSpec;
  hash: string;
  cost_micros: Micros;
  images: StoredImage[];
  /** Which provider account and model rendered it (a fallback's, when the chain moved on). */
  rendered_by?: { provider: string; model: string } | undefined;
  error?: { code: string; message: string } | undefined;
  attempts: number;
  updated_at: string;
}

export interface BatchRecord {
  id: string;
  tenant: string;
  status: BatchStatus;
  created_at: string;
  completed_at?: string | undefined;
  total: number;
  counts: Record<ItemStatus, number>;
  budget_micros?: Micros | undefined;
  spent_micros: Micros;
  reserved_micros: Micros;
  manifest_key?: string | undefined;
  metadata: Record<string, string>;
}

export type TransitionOutcome = 'ignored' | 'updated' | 'batch_completed';
export type ReserveOutcome = 'reserved' | 'wait' | 'exhausted';

/**
 * Batches and their items in Redis. All keys of one batch share a hash tag ({id}) so the
 * Lua scripts below stay valid on Redis Cluster. Counts, spend and completion change in the
 * same script as the item, so a reader never sees an item counted twice or not at all.
 */
export class BatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'rm',
  ) {
    redis.defineCommand('rmTransition', { numberOfKeys: 3, lua: TRANSITION_LUA });
    redis.defineCommand('rmReserve', { numberOfKeys: 2, lua: RESERVE_LUA });
  }

  private get scripts(): RedisWithScripts {
    return this.redis as unknown as RedisWithScripts;
  }

  private metaKey(id: string) {
    return `${this.prefix}:batch:{${id}}`;
  }
  private itemsKey(id: string) {
    return `${this.prefix}:batch:{${id}}:items`;
  }
  /** itemId → micro-dollars it holds: one reservation per item, so a re-run replaces its own. */
  private reservationsKey(id: string) {
    return `${this.prefix}:batch:{${id}}:reservations`;
  }
  private tenantKey(tenant: string) {
    return `${this.prefix}:tenant:${tenant}:batches`;
  }

  async create(
    batch: Pick<BatchRecord, 'id' | 'tenant' | 'created_at' | 'budget_micros' | 'metadata'>,
    items: ItemRecord[],
  ): Promise<void> {
    const meta: Record<string, string | number> = {
      id: batch.id,
      tenant: batch.tenant,
      status: 'queued',
      created_at: batch.created_at,
      total: items.length,
      done: 0,
      spent_micros: 0,
      reserved_micros: 0,
      metadata: JSON.stringify(batch.metadata),
    };
    for (const status of ITEM_STATUSES) meta[`count:${status}`] = 0;
    meta['count:queued'] = items.length;
    if (batch.budget_micros !== undefined) meta.budget_micros = batch.budget_micros;

    const pipeline = this.redis.multi();
    for (let i = 0; i < items.length; i += 1000) {
      const chunk = items.slice(i, i + 1000).flatMap((item) => [item.id, JSON.stringify(item)]);
      pipeline.hset(this.itemsKey(batch.id), ...chunk);
    }
    // Meta last: a batch is visible only once all of its items are.
    pipeline.hset(this.metaKey(batch.id), meta);
    pipeline.zadd(this.tenantKey(batch.tenant), Date.parse(batch.created_at), batch.id);
    await pipeline.exec();
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
      manifest_key: raw.manifest_key,
      metadata: JSON.parse(raw.metadata ?? '{}') as Record<string, string>,
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
   * added to the spend and, unless the item is only starting to run, whatever the item holds
   * reserved is released. An item already in a final state keeps it (`ignored`), which makes
   * a re-run job harmless — but money a duplicate run really paid is still counted.
   */
  async transition(
    batchId: string,
    next: ItemRecord,
    money: {
      spendMicros?: Micros;
      /** Release what the item holds even on a move to `running` (a dead run's reservation). */
      releaseReservation?: boolean;
    } = {},
  ): Promise<TransitionOutcome> {
    const result = await this.scripts.rmTransition(
      this.metaKey(batchId),
      this.itemsKey(batchId),
      this.reservationsKey(batchId),
      next.id,
      JSON.stringify(next),
      next.status,
      money.spendMicros ?? 0,
      new Date().toISOString(),
      TERMINAL_STATUSES.join(','),
      money.releaseReservation || next.status !== 'running' ? 1 : 0,
    );
    if (result === -1) throw new Error(`item ${next.id} of batch ${batchId} does not exist`);
    return result === 2 ? 'batch_completed' : result === 1 ? 'updated' : 'ignored';
  }

  /**
   * Holds `micros` of the batch's budget for a call about to be made, atomically.
   * `reserved`: go ahead. `exhausted`: what is already spent leaves no room, now or later.
   * `wait`: money held by in-flight calls is in the way; they settle (usually below their
   * reservation) within one call's time. Batches without a budget are always `reserved`.
   */
  async reserve(batchId: string, itemId: string, micros: Micros): Promise<ReserveOutcome> {
    const result = await this.scripts.rmReserve(
      this.metaKey(batchId),
      this.reservationsKey(batchId),
      itemId,
      micros,
    );
    return result === 1 ? 'reserved' : result === 2 ? 'wait' : 'exhausted';
  }

  /** What the item holds reserved right now (0 when nothing). */
  async reservedBy(batchId: string, itemId: string): Promise<Micros> {
    return Number((await this.redis.hget(this.reservationsKey(batchId), itemId)) ?? 0);
  }

  /** Removes a batch that could not be fully queued, so nothing is left half-created. */
  async delete(batchId: string, tenant: string): Promise<void> {
    await this.redis
      .multi()
      .del(this.metaKey(batchId), this.itemsKey(batchId), this.reservationsKey(batchId))
      .zrem(this.tenantKey(tenant), batchId)
      .exec();
  }

  async setManifestKey(batchId: string, key: string): Promise<void> {
    await this.redis.hset(this.metaKey(batchId), 'manifest_key', key);
  }
}

interface RedisWithScripts {
  rmTransition(...args: (string | number)[]): Promise<number>;
  rmReserve(meta: string, reservations: string, itemId: string, micros: number): Promise<number>;
}

// KEYS: meta, items, reservations. ARGV: item id, record JSON, new status, spend delta, now,
// terminal statuses, 1 to release the item's reservation. Returns -1 unknown item, 0 ignored, 1 updated, 2 batch completed.
// Money moves even when the item is already final: a duplicate run (a stalled job re-run
// while the first still worked) really paid, and its reservation must not leak.
const TRANSITION_LUA = `
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return -1 end
local newStatus = ARGV[3]
if tonumber(ARGV[4]) ~= 0 then redis.call('HINCRBY', KEYS[1], 'spent_micros', ARGV[4]) end
if ARGV[7] == '1' then
  local held = redis.call('HGET', KEYS[3], ARGV[1])
  if held then
    redis.call('HDEL', KEYS[3], ARGV[1])
    redis.call('HINCRBY', KEYS[1], 'reserved_micros', -tonumber(held))
  end
end
local terminal = {}
for s in string.gmatch(ARGV[6], '[^,]+') do terminal[s] = true end
local oldStatus = cjson.decode(old).status
if terminal[oldStatus] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'count:' .. oldStatus, -1)
redis.call('HINCRBY', KEYS[1], 'count:' .. newStatus, 1)
local batchStatus = redis.call('HGET', KEYS[1], 'status')
if terminal[newStatus] then
  local done = redis.call('HINCRBY', KEYS[1], 'done', 1)
  if done >= tonumber(redis.call('HGET', KEYS[1], 'total')) and batchStatus ~= 'completed' and batchStatus ~= 'cancelled' then
    redis.call('HSET', KEYS[1], 'status', 'completed', 'completed_at', ARGV[5])
    return 2
  end
end
if batchStatus == 'queued' then redis.call('HSET', KEYS[1], 'status', 'running') end
return 1
`;

// KEYS: meta, reservations. ARGV: item id, micros. Returns 1 reserved (replacing what the
// item held before); 0 the budget cannot hold it even once everything in flight settles;
// 2 it does not fit now, but may once other running items settle.
const RESERVE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local budget = redis.call('HGET', KEYS[1], 'budget_micros')
local amount = tonumber(ARGV[2])
local previous = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if budget then
  budget = tonumber(budget)
  local spent = tonumber(redis.call('HGET', KEYS[1], 'spent_micros') or '0')
  local othersReserved = tonumber(redis.call('HGET', KEYS[1], 'reserved_micros') or '0') - previous
  if spent + amount > budget then return 0 end
  if spent + othersReserved + amount > budget then
    -- Waiting helps only while other items are running and may settle below what they hold;
    -- money held by workers that died stays held (never under-count spend), so do not wait on it.
    if tonumber(redis.call('HGET', KEYS[1], 'count:running') or '0') > 1 then return 2 end
    return 0
  end
end
redis.call('HSET', KEYS[2], ARGV[1], amount)
redis.call('HINCRBY', KEYS[1], 'reserved_micros', amount - previous)
return 1
`;
