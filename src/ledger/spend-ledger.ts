import type { ItemRecord } from '../contracts/batch-records.js';
import { BatchCancelledError, ReservationLostError } from '../errors.js';
import { waitUnlessShutdown } from '../limits/backoff.js';
import type { Micros } from '../models/pricing.js';
import { luaCommands, type LuaCommands } from '../redis/lua-scripts.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { RM_PREFIX, batchKeys, type BatchKeys } from '../redis/redis-keys.js';
import type { SpendCap } from './spend-caps.js';

/** `not_running`: asked to hold only for a running item (`onlyIfRunning`), and it is not. */
export type ReserveOutcome = 'reserved' | 'wait' | 'exhausted' | 'not_running';

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

/** How long an item waits for in-flight items to settle before it gives up on the budget. */
export const RESERVATION_WAIT_MS = 120_000;

/**
 * The spend ledger: what each batch has spent and holds reserved, against its budget, and the
 * spend counters beside it (SpendCap: the tenant's month, the day). A provider call goes
 * through it in order: `reserve` / `reserveWithin` (hold its maximum price against every limit
 * at once; `releaseHold` lets a hold go that will not be used now) →
 * `markCalling` (the call leaves: the hold is now money at stake) → the item's transition
 * settles the actual price and releases the hold, or `chargeHold` counts it as spent when no
 * answer came. `chargeDeadRun` settles a hold left by a worker that died.
 *
 * All of it lives in the batch's keys (redis-keys.ts `batchKeys`, hash tag `{batches}`), one
 * cluster slot, so that one script can check every limit atomically. The hold's format and its
 * release are one Lua piece (lua/includes/hold.lua), shared with the scripts that must move
 * money in the same step as an item: the item's transition (settle) and a batch's deletion.
 * Those two scripts touch the item record, which belongs to the batch store (a layer above
 * this one), so their methods live in BatchStore — which extends this class: a batch store
 * is its batches' ledger too, and this class is the ledger's one interface.
 */
export class SpendLedger {
  protected readonly scripts: LuaCommands;
  protected readonly keys: BatchKeys;

  constructor(
    protected readonly redis: RedisConnection,
    options: { prefix?: string } = {},
  ) {
    this.scripts = luaCommands(redis);
    this.keys = batchKeys(options.prefix ?? RM_PREFIX);
  }

  /**
   * Holds `micros` for a call about to be made, against the batch's budget and every cap at
   * once, atomically (reserve.lua). `reserved`: go ahead. `exhausted`: what is already spent
   * leaves no room in `cap`, now or later. `wait`: money held by in-flight calls is in the way;
   * they settle (usually below their reservation) within one call's time. A batch without a
   * budget and counters without a limit never refuse.
   */
  async reserve(
    batchId: string,
    itemId: string,
    micros: Micros,
    caps: readonly SpendCap[] = [],
    options: { onlyIfRunning?: boolean } = {},
  ): Promise<ReserveResult> {
    const [code, capIndex] = await this.scripts.rmReserve(
      3 + caps.length,
      this.keys.meta(batchId),
      this.keys.reservations(batchId),
      this.keys.items(batchId),
      ...caps.map((cap) => this.keys.spendCounter(cap.id)),
      itemId,
      micros,
      options.onlyIfRunning ? 1 : 0,
      ...caps.map((cap) => (cap.limitMicros === undefined ? '' : cap.limitMicros)),
    );
    const outcome: ReserveOutcome =
      code === 1 ? 'reserved' : code === 2 ? 'wait' : code === 3 ? 'not_running' : 'exhausted';
    if (outcome === 'reserved' || outcome === 'not_running') return { outcome };
    return { outcome, cap: capIndex === 0 ? 'batch' : caps[capIndex - 1]?.id };
  }

  /**
   * Reserves the item's maximum price against the batch's budget and every cap. When only
   * money held by other in-flight calls is in the way, waits for them to settle (they usually
   * cost less than they reserved) for up to RESERVATION_WAIT_MS instead of giving up; a
   * shutdown cuts the wait short.
   */
  async reserveWithin(
    batchId: string,
    itemId: string,
    micros: Micros,
    caps: readonly SpendCap[],
    shutdown: AbortSignal | undefined,
  ): Promise<ReserveResult> {
    const deadline = Date.now() + RESERVATION_WAIT_MS;
    for (let pause = 100; ; pause = Math.min(pause * 2, 2_000)) {
      const result = await this.reserve(batchId, itemId, micros, caps);
      if (result.outcome !== 'wait' || Date.now() > deadline) return result;
      await waitUnlessShutdown(pause, shutdown);
    }
  }

  /**
   * Marks the item's reservation as spent on a call under way: from here on, if its worker
   * dies, the money counts as spent. Before it, a dead run provably called nothing. Throws
   * BatchCancelledError when the batch is being cancelled (no call may leave for it), and
   * ReservationLostError when the item holds nothing.
   */
  async markCalling(batchId: string, itemId: string): Promise<void> {
    const marked = await this.scripts.rmMarkCalling(
      this.keys.meta(batchId),
      this.keys.reservations(batchId),
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
    return this.scripts.rmChargeHold(
      this.keys.meta(batchId),
      this.keys.reservations(batchId),
      itemId,
    );
  }

  /**
   * Releases what the item holds, counting none of it as spent: a reservation whose call this
   * run will not make now (made in the round trip that started the item, which then found
   * another worker rendering its request). A hold marked calling is left alone: a call is under
   * way on it. Returns the amount released.
   */
  async releaseHold(batchId: string, itemId: string): Promise<Micros> {
    return this.scripts.rmReleaseHold(
      this.keys.meta(batchId),
      this.keys.reservations(batchId),
      itemId,
    );
  }

  /** What the item holds reserved right now, if anything. */
  async holdOf(batchId: string, itemId: string): Promise<Hold | undefined> {
    const raw = await this.redis.hget(this.keys.reservations(batchId), itemId);
    if (!raw) return undefined;
    const hold = JSON.parse(raw) as { m: number; calling: number };
    return { micros: hold.m, calling: hold.calling === 1 };
  }

  /**
   * An item still `running` when a job picks it up (a stalled job re-run, or one given up) had
   * a run that died. If that run's call was under way, the provider may have billed it: what it
   * held is charged to the item (`held`), for the caller's transition to add to the spend. If
   * it died before calling, nothing was bought, and the transition only releases the hold.
   * (An item handed back with a queued prediction holds nothing: its hold was charged then.)
   */
  async chargeDeadRun(
    batchId: string,
    item: ItemRecord,
  ): Promise<{ item: ItemRecord; held: Micros }> {
    const hold = item.status === 'running' ? await this.holdOf(batchId, item.id) : undefined;
    const held = hold?.calling ? hold.micros : 0;
    return { item: { ...item, cost_micros: item.cost_micros + held }, held };
  }

  /** Spent and reserved micro-dollars of spend counters (a tenant's month, a day). */
  async capTotals(
    ids: readonly string[],
  ): Promise<Record<string, { spent: Micros; reserved: Micros }>> {
    const totals: Record<string, { spent: Micros; reserved: Micros }> = {};
    for (const id of ids) {
      const [spent, reserved] = await this.redis.hmget(
        this.keys.spendCounter(id),
        'spent',
        'reserved',
      );
      totals[id] = { spent: Number(spent ?? 0), reserved: Number(reserved ?? 0) };
    }
    return totals;
  }
}
