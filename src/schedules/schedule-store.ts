import type { RedisConnection } from '../redis/redis-connection.js';
import { luaCommands, type LuaCommands } from '../redis/lua-scripts.js';
import { RM_PREFIX, scheduleKeys } from '../redis/redis-keys.js';
import { sortedSetPage } from '../redis/sorted-set-page.js';
import type { ScheduleDefinition } from './schedule-request.js';

/** Why a run made no batch: the batch was refused (a model retired since …). */
export interface ScheduleRunError {
  code: string;
  message: string;
  field: string | null;
  /** The run's time: what its template was filled for. */
  run_time: string;
}

export interface ScheduleRecord {
  id: string;
  tenant: string;
  created_at: string;
  definition: ScheduleDefinition;
  /** The batch of the latest run that made one. */
  last_batch_id?: string | undefined;
  /** When the latest run was carried out, whether it made a batch or was refused. */
  last_run_at?: string | undefined;
  /** Set by a run that was refused; cleared by the next run that makes a batch. */
  last_error?: ScheduleRunError | undefined;
}

/**
 * What claiming a run answered: `claimed` (this attempt submits the run's batch, and must then
 * record it or release the claim), `done` (an earlier attempt made the run's batch or had it
 * refused), `superseded` (a later run has already been claimed: this one is stale), `busy`
 * (another attempt is submitting it right now) or `gone` (the schedule was deleted).
 */
export type RunClaim =
  | { outcome: 'claimed'; token: string }
  | { outcome: 'done'; batchId?: string | undefined }
  | { outcome: 'superseded' | 'busy' | 'gone' };

/**
 * Schedules in Redis: a hash per schedule and a sorted set of each tenant's schedules by
 * creation. A tenant's keys share the hash tag `{<tenant>}`, so one Redis Cluster slot holds
 * a schedule with its index, and the scripts below may touch both. Keys are found through the
 * tenant, so another tenant's schedule id names nothing.
 *
 * Each hash also holds the state of its latest run (`run_*` fields): which run time was claimed,
 * by which attempt, and how it ended. That is what makes a run's batch one, however many times
 * its job runs: runs of a schedule happen in order, so a run time at or before the one claimed
 * has been seen to already.
 */
export class ScheduleStore {
  private readonly scripts: LuaCommands;
  private readonly keys: ReturnType<typeof scheduleKeys>;

  constructor(
    private readonly redis: RedisConnection,
    options: { prefix?: string } = {},
  ) {
    // The run scripts: schedule-claim-run.lua, schedule-release-run.lua, schedule-record-run.lua.
    this.scripts = luaCommands(redis);
    this.keys = scheduleKeys(options.prefix ?? RM_PREFIX);
  }

  private key(tenant: string, id: string) {
    return this.keys.schedule(tenant, id);
  }
  private indexKey(tenant: string) {
    return this.keys.index(tenant);
  }

  /** Stores the schedule; returns how many the tenant has with it. */
  async create(
    record: Pick<ScheduleRecord, 'id' | 'tenant' | 'created_at' | 'definition'>,
  ): Promise<number> {
    const results = await this.redis
      .multi()
      .hset(this.key(record.tenant, record.id), {
        id: record.id,
        tenant: record.tenant,
        created_at: record.created_at,
        definition: JSON.stringify(record.definition),
      })
      .zadd(this.indexKey(record.tenant), Date.parse(record.created_at), record.id)
      .zcard(this.indexKey(record.tenant))
      .exec();
    return Number(results?.[2]?.[1] ?? 0);
  }

  /** How many schedules the tenant has. */
  async count(tenant: string): Promise<number> {
    return this.redis.zcard(this.indexKey(tenant));
  }

  /**
   * Up to `count` of the tenant's schedules after the one named `cursor` (from the oldest when
   * undefined), oldest first, and whether more follow; undefined if `cursor` is not one of the
   * tenant's schedules.
   */
  async page(
    tenant: string,
    cursor: string | undefined,
    count: number,
  ): Promise<{ records: ScheduleRecord[]; lastId: string | undefined; more: boolean } | undefined> {
    // One more than asked: whether another page follows.
    const ids = await sortedSetPage(this.redis, this.indexKey(tenant), cursor, count + 1, {
      newestFirst: false,
    });
    if (!ids) return undefined;
    const pageIds = ids.slice(0, count);
    const raws = await Promise.all(pageIds.map((id) => this.redis.hgetall(this.key(tenant, id))));
    return {
      records: raws.flatMap((raw) => parseRecord(raw) ?? []),
      // The cursor of the next page: the last id read, even if it was deleted meanwhile.
      lastId: pageIds.at(-1),
      more: ids.length > count,
    };
  }

  async get(tenant: string, id: string): Promise<ScheduleRecord | undefined> {
    return parseRecord(await this.redis.hgetall(this.key(tenant, id)));
  }

  /** The tenant's schedules, oldest first. */
  async list(tenant: string): Promise<ScheduleRecord[]> {
    const ids = await this.redis.zrange(this.indexKey(tenant), '0', '-1');
    const raws = await Promise.all(ids.map((id) => this.redis.hgetall(this.key(tenant, id))));
    return raws.flatMap((raw) => parseRecord(raw) ?? []);
  }

  /** Deletes the schedule; false if the tenant has none of that id. */
  async delete(tenant: string, id: string): Promise<boolean> {
    const results = await this.redis
      .multi()
      .del(this.key(tenant, id))
      .zrem(this.indexKey(tenant), id)
      .exec();
    return results?.[0]?.[1] === 1;
  }

  /**
   * Claims the run at `runTime` for one attempt of its job. A claim whose attempt has not
   * recorded an outcome within `leaseMs` is taken over: that attempt's worker died.
   */
  async claimRun(
    tenant: string,
    id: string,
    runTime: Date,
    options: { now: Date; leaseMs: number; token: string },
  ): Promise<RunClaim> {
    const [outcome, batchId] = await this.scripts.rmScheduleClaimRun(
      this.key(tenant, id),
      runTime.getTime(),
      options.now.getTime(),
      options.leaseMs,
      options.token,
    );
    if (outcome === 'claimed') return { outcome, token: options.token };
    if (outcome === 'done') return { outcome, batchId: batchId || undefined };
    return { outcome: outcome as 'superseded' | 'busy' | 'gone' };
  }

  /** Gives a claimed run back (its batch could not be submitted): the job's retry claims it. */
  async releaseRun(tenant: string, id: string, runTime: Date, token: string): Promise<void> {
    await this.scripts.rmScheduleReleaseRun(this.key(tenant, id), runTime.getTime(), token);
  }

  /** Records the batch a run made. Nothing is written if the schedule was deleted meanwhile. */
  async recordBatch(tenant: string, id: string, runTime: Date, batchId: string, at: Date) {
    await this.scripts.rmScheduleRecordRun(
      this.key(tenant, id),
      runTime.getTime(),
      'submitted',
      at.toISOString(),
      batchId,
      '',
    );
  }

  /** Records that a run's batch was refused; the run is over and is not tried again. */
  async recordError(tenant: string, id: string, runTime: Date, error: ScheduleRunError, at: Date) {
    await this.scripts.rmScheduleRecordRun(
      this.key(tenant, id),
      runTime.getTime(),
      'refused',
      at.toISOString(),
      '',
      JSON.stringify(error),
    );
  }
}

function parseRecord(raw: Record<string, string>): ScheduleRecord | undefined {
  if (!raw.id || !raw.definition) return undefined;
  return {
    id: raw.id,
    tenant: raw.tenant ?? '',
    created_at: raw.created_at ?? '',
    definition: JSON.parse(raw.definition) as ScheduleDefinition,
    last_batch_id: raw.last_batch_id || undefined,
    last_run_at: raw.last_run_at || undefined,
    last_error: raw.last_error ? (JSON.parse(raw.last_error) as ScheduleRunError) : undefined,
  };
}
