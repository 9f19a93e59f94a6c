import type { RedisConnection } from '../redis/redis-connection.js';
import { BatchCancelledError, ReservationLostError } from '../errors.js';
import {
  cancelledItem,
  tallyItems,
  type BatchRecord,
  type ItemRecord,
  type ItemTally,
} from '../contracts/batch-records.js';
import type { SpendCap } from '../ledger/spend-caps.js';
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
export type ReserveOutcome = 'reserved' | 'wait' | 'exhausted';

/** A reservation's answer; when refused, `cap` says which: `batch` or a SpendCap id. */
export interface ReserveResult {
  outcome: ReserveOutcome;
  cap?: string | undefined;
}

/** What an item holds reserved, and whether its provider call was already under way. */
export interface Hold {
  micros: Micros;
  calling: boolean;
}

/**
 * The scripts whose number of keys varies per call. ioredis's auto-pipelining routes a script
 * call by its first argument, which for these is the key count, not a key: on a cluster it
 * would put them in a pipeline bound for another node, which ioredis then refuses. A
 * connection that auto-pipelines on a cluster must leave them out (services.ts does).
 */
export const VARIABLE_KEY_SCRIPTS = ['rmTransition', 'rmReserve'];

/**
 * Batches, their items and the spend ledger, in Redis.
 *
 * The ledger is the batch's spend and reservations plus the tenant's monthly and the day's
 * counters (SpendCap). A call reserves its maximum price against all of them in one atomic
 * script, so it needs all of them in one Redis Cluster slot: every key here shares the hash
 * tag `{batches}`. That puts this state on one node of a cluster, as BullMQ does with each
 * queue. Counts, spend and completion change in the same script as the item, so a reader
 * never sees an item counted twice or not at all, nor money without its item.
 */
export class BatchStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly options: {
      prefix?: string;
      /** How often a running batch's manifest is due to be written. Default 30 s. */
      checkpointMs?: number;
    } = {},
  ) {
    redis.defineCommand('rmTransition', { lua: HOLD_LUA + TRANSITION_LUA });
    redis.defineCommand('rmReserve', { lua: HOLD_LUA + RESERVE_LUA });
    redis.defineCommand('rmMarkCalling', { numberOfKeys: 2, lua: MARK_CALLING_LUA });
    redis.defineCommand('rmDelete', { numberOfKeys: 4, lua: HOLD_LUA + DELETE_LUA });
    redis.defineCommand('rmChargeHold', { numberOfKeys: 2, lua: HOLD_LUA + CHARGE_HOLD_LUA });
    redis.defineCommand('rmCancel', { numberOfKeys: 1, lua: CANCEL_LUA });
  }

  private get prefix() {
    return `${this.options.prefix ?? 'rm'}:{batches}`;
  }

  private get scripts(): RedisWithScripts {
    return this.redis as unknown as RedisWithScripts;
  }

  private metaKey(id: string) {
    return `${this.prefix}:batch:${id}`;
  }
  private itemsKey(id: string) {
    return `${this.prefix}:batch:${id}:items`;
  }
  /** itemId → micro-dollars it holds: one reservation per item, so a re-run replaces its own. */
  private reservationsKey(id: string) {
    return `${this.prefix}:batch:${id}:reservations`;
  }
  private tenantKey(tenant: string) {
    return `${this.prefix}:tenant:${tenant}:batches`;
  }
  private capKey(id: string) {
    return `${this.prefix}:spend:${id}`;
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
      'id' | 'tenant' | 'created_at' | 'budget_micros' | 'metadata' | 'webhook_url' | 'schedule_id'
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
   * added to the spend — of the batch, and of the counters the item's reservation was held
   * against (else `caps`, today's) — and, unless the item is only starting to run, whatever
   * the item holds reserved is released. An item already in a final state keeps it
   * (`ignored`), which makes a re-run job harmless — but money a duplicate run really paid is
   * still counted.
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
      ...caps.map((cap) => this.capKey(cap.id)),
      next.id,
      JSON.stringify(next),
      next.status,
      money.spendMicros ?? 0,
      new Date().toISOString(),
      TERMINAL_STATUSES.join(','),
      money.releaseReservation || next.status !== 'running' ? 1 : 0,
      money.savedMicros ?? 0,
      Date.now(),
      this.options.checkpointMs ?? 30_000,
      money.onlyFrom ?? '',
      // What the item becomes instead if its batch is being cancelled (see TRANSITION_LUA).
      next.status === 'queued' || next.status === 'running'
        ? JSON.stringify(cancelledItem(next))
        : '',
    );
    if (result === -1) throw new Error(`item ${next.id} of batch ${batchId} does not exist`);
    return TRANSITION_OUTCOMES[result] ?? 'updated';
  }

  /**
   * Holds `micros` for a call about to be made, against the batch's budget and every cap at
   * once, atomically. `reserved`: go ahead. `exhausted`: what is already spent leaves no room
   * in `cap`, now or later. `wait`: money held by in-flight calls is in the way; they settle
   * (usually below their reservation) within one call's time. A batch without a budget and
   * counters without a limit never refuse.
   */
  async reserve(
    batchId: string,
    itemId: string,
    micros: Micros,
    caps: readonly SpendCap[] = [],
  ): Promise<ReserveResult> {
    const [code, capIndex] = await this.scripts.rmReserve(
      2 + caps.length,
      this.metaKey(batchId),
      this.reservationsKey(batchId),
      ...caps.map((cap) => this.capKey(cap.id)),
      itemId,
      micros,
      ...caps.map((cap) => (cap.limitMicros === undefined ? '' : cap.limitMicros)),
    );
    const outcome: ReserveOutcome = code === 1 ? 'reserved' : code === 2 ? 'wait' : 'exhausted';
    if (outcome === 'reserved') return { outcome };
    return { outcome, cap: capIndex === 0 ? 'batch' : caps[capIndex - 1]?.id };
  }

  /**
   * Marks the item's reservation as spent on a call under way: from here on, if its worker
   * dies, the money counts as spent. Before it, a dead run provably called nothing.
   */
  async markCalling(batchId: string, itemId: string): Promise<void> {
    const marked = await this.scripts.rmMarkCalling(
      this.metaKey(batchId),
      this.reservationsKey(batchId),
      itemId,
    );
    if (marked === 2)
      throw new BatchCancelledError('the batch was cancelled before this item was rendered');
    if (marked !== 1) throw new ReservationLostError();
  }

  /**
   * Counts what the item holds as spent — on the batch and on every counter it was held
   * against — and releases it: a call whose answer never came may have been billed. Returns
   * the amount (0 when the item held nothing).
   */
  async chargeHold(batchId: string, itemId: string): Promise<Micros> {
    return this.scripts.rmChargeHold(this.metaKey(batchId), this.reservationsKey(batchId), itemId);
  }

  /** What the item holds reserved right now, if anything. */
  async holdOf(batchId: string, itemId: string): Promise<Hold | undefined> {
    const raw = await this.redis.hget(this.reservationsKey(batchId), itemId);
    if (!raw) return undefined;
    const hold = JSON.parse(raw) as { m: number; calling: number };
    return { micros: hold.m, calling: hold.calling === 1 };
  }

  /** Spent and reserved micro-dollars of spend counters (a tenant's month, a day). */
  async capTotals(
    ids: readonly string[],
  ): Promise<Record<string, { spent: Micros; reserved: Micros }>> {
    const totals: Record<string, { spent: Micros; reserved: Micros }> = {};
    for (const id of ids) {
      const [spent, reserved] = await this.redis.hmget(this.capKey(id), 'spent', 'reserved');
      totals[id] = { spent: Number(spent ?? 0), reserved: Number(reserved ?? 0) };
    }
    return totals;
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
    let start = 0;
    if (cursor) {
      const rank = await this.redis.zrevrank(this.tenantKey(tenant), cursor);
      if (rank === null) return undefined;
      start = rank + 1;
    }
    return this.redis.zrevrange(this.tenantKey(tenant), start, start + count - 1);
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

interface RedisWithScripts {
  rmTransition(numberOfKeys: number, ...args: (string | number)[]): Promise<number>;
  rmReserve(numberOfKeys: number, ...args: (string | number)[]): Promise<[number, number]>;
  rmMarkCalling(meta: string, reservations: string, itemId: string): Promise<number>;
  rmDelete(...args: string[]): Promise<number>;
  rmChargeHold(meta: string, reservations: string, itemId: string): Promise<number>;
  rmCancel(meta: string, at: string): Promise<number>;
}

const TRANSITION_OUTCOMES: Record<number, TransitionOutcome> = {
  0: 'ignored',
  1: 'updated',
  2: 'batch_completed',
  3: 'checkpoint_due',
  4: 'cancelled',
};

/** Spend counters outlive their month or day by about a year, for reports. */
const CAP_TTL_SECONDS = 400 * 24 * 3600;

// A hold: {"m": micros, "caps": [counter keys it is held against], "calling": 0|1}.
const HOLD_LUA = `
local function releaseHold(meta, reservations, itemId)
  local raw = redis.call('HGET', reservations, itemId)
  if not raw then return nil end
  local hold = cjson.decode(raw)
  redis.call('HDEL', reservations, itemId)
  redis.call('HINCRBY', meta, 'reserved_micros', -hold.m)
  for _, cap in ipairs(hold.caps) do redis.call('HINCRBY', cap, 'reserved', -hold.m) end
  return hold
end
`;

// KEYS: meta, items, reservations, then the counters unreserved spend counts against.
// ARGV: item id, record JSON, new status, spend delta, now (ISO), terminal statuses,
// 1 to release the item's reservation, saved delta, now (ms), checkpoint interval (ms),
// the only status the item may move from ('' for any), and for a move to queued or running the
// record the item gets instead if its batch is being cancelled ('' for other moves).
// Returns 4 when the item was cancelled instead (the batch may have ended with it).
// Returns -1 unknown item, 0 ignored, 1 updated, 2 batch completed, 3 updated + checkpoint due.
// Money moves even when the item is already final: a duplicate run (a stalled job re-run
// while the first still worked) really paid, and its reservation must not leak.
const TRANSITION_LUA = `
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return -1 end
if ARGV[11] ~= '' and cjson.decode(old).status ~= ARGV[11] then return 0 end
local newStatus = ARGV[3]
local record = ARGV[2]
local release = ARGV[7] == '1'
local cancelledInstead = false
local batchStatus = redis.call('HGET', KEYS[1], 'status')
-- A batch being cancelled takes no item (back) into work: it is cancelled instead, and
-- releases what it held.
if ARGV[12] ~= '' and (batchStatus == 'cancelling' or batchStatus == 'cancelled') then
  newStatus = 'cancelled'
  record = ARGV[12]
  release = true
  cancelledInstead = true
end
local spend = tonumber(ARGV[4])
local spendCaps = {}
for i = 4, #KEYS do spendCaps[#spendCaps + 1] = KEYS[i] end
if release then
  local hold = releaseHold(KEYS[1], KEYS[3], ARGV[1])
  -- a call's money counts where it was reserved, even if the month turned meanwhile
  if hold then spendCaps = hold.caps end
end
if spend ~= 0 then
  redis.call('HINCRBY', KEYS[1], 'spent_micros', spend)
  for _, cap in ipairs(spendCaps) do
    redis.call('HINCRBY', cap, 'spent', spend)
    redis.call('EXPIRE', cap, ${CAP_TTL_SECONDS})
  end
end
local terminal = {}
for s in string.gmatch(ARGV[6], '[^,]+') do terminal[s] = true end
local oldStatus = cjson.decode(old).status
if terminal[oldStatus] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], record)
redis.call('HINCRBY', KEYS[1], 'count:' .. oldStatus, -1)
redis.call('HINCRBY', KEYS[1], 'count:' .. newStatus, 1)
if tonumber(ARGV[8]) ~= 0 then redis.call('HINCRBY', KEYS[1], 'saved_micros', ARGV[8]) end
if batchStatus == 'queued' then redis.call('HSET', KEYS[1], 'status', 'running') end
if terminal[newStatus] then
  local done = redis.call('HINCRBY', KEYS[1], 'done', 1)
  if done >= tonumber(redis.call('HGET', KEYS[1], 'total')) and batchStatus ~= 'completed' and batchStatus ~= 'cancelled' then
    local final = batchStatus == 'cancelling' and 'cancelled' or 'completed'
    redis.call('HSET', KEYS[1], 'status', final, 'completed_at', ARGV[5])
    if cancelledInstead then return 4 end
    return 2
  end
  if cancelledInstead then return 4 end
  local now = tonumber(ARGV[9])
  if now - tonumber(redis.call('HGET', KEYS[1], 'checkpoint_at') or '0') >= tonumber(ARGV[10]) then
    redis.call('HSET', KEYS[1], 'checkpoint_at', now)
    return 3
  end
end
return 1
`;

// KEYS: meta, reservations, then the spend counters to hold against. ARGV: item id, micros,
// then each counter's limit ('' for none). Returns {code, which}: code 1 reserved (replacing
// what the item held before); 0 a cap cannot hold it even once everything in flight settles;
// 2 it does not fit now, but may once other in-flight calls settle. which: 0 the batch's
// budget, i the i-th counter.
const RESERVE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
releaseHold(KEYS[1], KEYS[2], ARGV[1])
local amount = tonumber(ARGV[2])
local function verdict(limit, spent, held, othersRunning)
  if spent + amount > limit then return 0 end
  if spent + held + amount > limit then
    -- Waiting helps only while others' calls are in flight and may settle below what they
    -- hold; money held by workers that died stays held (never under-count spend).
    if held > 0 and othersRunning then return 2 end
    return 0
  end
  return 1
end
local budget = redis.call('HGET', KEYS[1], 'budget_micros')
if budget then
  local code = verdict(tonumber(budget),
    tonumber(redis.call('HGET', KEYS[1], 'spent_micros') or '0'),
    tonumber(redis.call('HGET', KEYS[1], 'reserved_micros') or '0'),
    tonumber(redis.call('HGET', KEYS[1], 'count:running') or '0') > 1)
  if code ~= 1 then return {code, 0} end
end
for i = 3, #KEYS do
  if ARGV[i] ~= '' then
    local code = verdict(tonumber(ARGV[i]),
      tonumber(redis.call('HGET', KEYS[i], 'spent') or '0'),
      tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0'),
      true)
    if code ~= 1 then return {code, i - 2} end
  end
end
local caps = {}
for i = 3, #KEYS do
  caps[#caps + 1] = KEYS[i]
  redis.call('HINCRBY', KEYS[i], 'reserved', amount)
  redis.call('EXPIRE', KEYS[i], ${CAP_TTL_SECONDS})
end
redis.call('HINCRBY', KEYS[1], 'reserved_micros', amount)
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({m = amount, caps = caps, calling = 0}))
return {1, 0}
`;

// KEYS: meta. ARGV: now (ISO). Returns 1 cancelling, 0 the batch had ended or does not exist.
const CANCEL_LUA = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'completed' or status == 'cancelled' then return 0 end
if status ~= 'cancelling' then
  redis.call('HSET', KEYS[1], 'status', 'cancelling', 'cancelled_at', ARGV[1])
end
return 1
`;

// KEYS: meta, reservations. ARGV: item id. Returns 1 marked, 0 no hold, 2 the batch is
// being cancelled (no call may leave for it any more).
const MARK_CALLING_LUA = `
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'cancelling' or status == 'cancelled' then return 2 end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 0 end
local hold = cjson.decode(raw)
hold.calling = 1
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(hold))
return 1
`;

// KEYS: meta, items, reservations, the tenant's batch list. ARGV: batch id.
const DELETE_LUA = `
for _, itemId in ipairs(redis.call('HKEYS', KEYS[3])) do releaseHold(KEYS[1], KEYS[3], itemId) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
`;

// KEYS: meta, reservations. ARGV: item id. Returns the micros charged.
const CHARGE_HOLD_LUA = `
local hold = releaseHold(KEYS[1], KEYS[2], ARGV[1])
if not hold then return 0 end
redis.call('HINCRBY', KEYS[1], 'spent_micros', hold.m)
for _, cap in ipairs(hold.caps) do
  redis.call('HINCRBY', cap, 'spent', hold.m)
  redis.call('EXPIRE', cap, ${CAP_TTL_SECONDS})
end
return hold.m
`;
