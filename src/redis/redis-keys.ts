import { createHash } from 'node:crypto';
import { isCluster, type RedisConnection } from './redis-connection.js';

/**
 * Every Redis key rendermill reads or writes, built in one place.
 *
 * The strings are part of the data of every running deployment: changing one orphans what is
 * stored under the old name (batches, spend counters, webhook secrets, queued jobs). They are
 * pinned by test/unit/redis-keys.test.ts. A `{…}` part is a Redis Cluster hash tag: only it is
 * hashed, so every key with the same tag lands in the same slot, which is what lets one Lua
 * script (or one MULTI) touch all of them. Where a unit takes a `prefix` option (tests give
 * each run its own), it replaces the leading `rm` and nothing else.
 */

/** The default first part of every rendermill key. */
export const RM_PREFIX = 'rm';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Batches, their items and the batch-side ledger. Every key shares the hash tag `{batches}`:
 * a reservation checks the batch's budget and the tenant's and the day's counters in one
 * script, so all of them must be in one slot.
 */
export function batchKeys(prefix: string = RM_PREFIX) {
  const base = `${prefix}:{batches}`;
  return {
    /** Hash: the batch's record, counts, spend and reservations total. */
    meta: (batchId: string) => `${base}:batch:${batchId}`,
    /** Hash: item id → item record JSON. */
    items: (batchId: string) => `${base}:batch:${batchId}:items`,
    /** Hash: item id → what it holds reserved (`{"m", "caps", "calling"}`). */
    reservations: (batchId: string) => `${base}:batch:${batchId}:reservations`,
    /** Sorted set: the tenant's batch ids by creation time. */
    tenantBatches: (tenant: string) => `${base}:tenant:${tenant}:batches`,
    /** Hash `spent`, `reserved`: one spend counter (a SpendCap id: a tenant's month, a day). */
    spendCounter: (capId: string) => `${base}:spend:${capId}`,
    /** Hash: part number → one provider batch of the batch (provider-batch-store.ts). */
    providerBatches: (batchId: string) => `${base}:batch:${batchId}:provider-batches`,
    /** Sorted set: item ids enrolled and not yet in a part, by enrolment time. */
    enrolled: (batchId: string) => `${base}:batch:${batchId}:enrolled`,
    /** Hash: `batchId:part` → tokens it has enqueued at a route's Batch API for one model. */
    batchQueue: (route: string, model: string) => `${base}:batch-queue:${route}:${model}`,
  };
}

/** The keys of one BatchStore or SpendLedger: see batchKeys. */
export type BatchKeys = ReturnType<typeof batchKeys>;

/**
 * A schedule and its tenant's index share the hash tag `{<tenant>}`, so the run scripts may
 * touch both on a cluster.
 */
export function scheduleKeys(prefix: string = RM_PREFIX) {
  return {
    /** Hash: the schedule and the state of its latest run. */
    schedule: (tenant: string, id: string) => `${prefix}:schedules:{${tenant}}:${id}`,
    /** Sorted set: the tenant's schedule ids by creation. */
    index: (tenant: string) => `${prefix}:schedules:{${tenant}}:index`,
  };
}

/**
 * The result cache's index and single-flight locks. A request's index entry and its render
 * lock share the hash tag `{<scope>:<hash>}` (one slot per request); the epoch and the rebuild
 * lock share `{index}`, as the rebuild sets the one only while it holds the other.
 */
export function cacheKeys(prefix: string = RM_PREFIX) {
  return {
    /** Hash: variant index → cached image JSON, for one request hash in one scope. */
    index: (scope: string, hash: string) => `${prefix}:cache:{${scope}:${hash}}`,
    /** String: the token of the worker rendering that request right now. */
    renderLock: (scope: string, hash: string) => `${prefix}:cache:{${scope}:${hash}}:rendering`,
    /**
     * String: present while the request's render lock is handed on with a queued prediction
     * (render-lock.ts `handOff`): waiters go back to the queue instead of holding a slot.
     */
    renderLockHandedOn: (scope: string, hash: string) =>
      `${prefix}:cache:{${scope}:${hash}}:handed-on`,
    /** String: present while the index is known complete. */
    epoch: `${prefix}:cache:{index}:epoch`,
    /** String: the token of the process rebuilding the index. */
    rebuildLock: `${prefix}:cache:{index}:rebuild`,
  };
}

/**
 * The spool of paid images waiting for S3 (image-spool.ts). Every key shares the hash tag
 * `{spool}`: one script checks the spool's total size against its cap and adds an entry, so
 * the sizes, the expiry times and the entries must be in one slot.
 */
export function spoolKeys(prefix: string = RM_PREFIX) {
  const base = `${prefix}:spool:{spool}`;
  return {
    /** Hash: entry id → its bytes. */
    sizes: `${base}:sizes`,
    /** Sorted set: entry id → when it expires (ms). */
    expiry: `${base}:expiry`,
    /** Hash with a TTL: `about` (JSON) and the objects' bodies by position (`0`, `1`, …). */
    entry: (id: string) => `${base}:entry:${id}`,
  };
}

/**
 * The id of one provider account's limiter: the first 16 hex digits of the account id's
 * SHA-256 (account ids carry a key fingerprint) in a hash tag, so that the account's pause and
 * its models' rate windows share one slot, as the rate scripts need. Not prefixed:
 * every deployment on one Redis shares an account's limit.
 */
export const limiterId = (accountId: string) => `rm:limit:{${sha256(accountId).slice(0, 16)}}`;

/** The keys around one provider account's limits (`limiterId`). */
export function limiterKeys(accountId: string) {
  const id = limiterId(accountId);
  return {
    id,
    /** String with a TTL: why the account is paused (out of quota, key refused), while it is. */
    pause: `${id}:pause`,
  };
}

/**
 * The rate window of one model on one provider account (limits are per model), in the
 * account's slot, beside its pause (rate-acquire.lua, rate-observe.lua).
 */
export function rateWindowKeys(accountId: string, model: string) {
  const base = `${limiterId(accountId)}:model:${model}`;
  return {
    /** Sorted set: grant id → the time its weight leaves the window (ms). */
    grants: `${base}:grants`,
    /** Hash: grant id → "images tokens". */
    weights: `${base}:weights`,
    /** Hash: images, tokens and requests in the window. */
    used: `${base}:used`,
    /** Hash: lower limits the provider declared or showed, the grown margin (10-minute TTL). */
    learned: `${base}:learned`,
    /** String with a TTL: every call waits while it exists (a 429's wait). */
    block: `${base}:block`,
  };
}

/** A tenant's webhook signing secret and the previous one, still honoured after a rotation. */
export function webhookSecretKeys(prefix: string = RM_PREFIX) {
  const current = (tenant: string) => `${prefix}:webhook-secret:${tenant}`;
  return {
    current,
    /**
     * Rotation writes both keys in one script, so on a Redis Cluster they must share a slot. The
     * current key keeps its name (existing secrets stay valid) and has no hash tag (tenant names
     * have no braces), so it hashes whole: this key's hash tag is that whole name.
     */
    previous: (tenant: string) => `${prefix}:webhook-secret-previous:{${current(tenant)}}`,
  };
}

/** The marker that a batch's webhook was queued (see BatchWebhooks). */
export const webhookQueuedKey = (batchId: string, prefix: string = RM_PREFIX) =>
  `${prefix}:webhook-queued:${batchId}`;

/** A dashboard session, by the SHA-256 of its token (the token itself is never stored). */
export const sessionKey = (token: string) => `rm:session:${sha256(token)}`;

/**
 * The record of a tenant's Idempotency-Key, by the SHA-256 of `<tenant>\n<key>`: keys of
 * different tenants never meet, and no client-chosen text reaches a key name.
 */
export const idempotencyKey = (tenant: string, key: string) =>
  `rm:idempotency:${sha256(`${tenant}\n${key}`)}`;

/** BullMQ's key prefix on one Redis: a queue's keys are `rm:bull:<queue>:…`. */
export const BULL_PREFIX = 'rm:bull';

/**
 * BullMQ's key prefix on a Redis Cluster. BullMQ's scripts touch many keys of a queue at once,
 * so they must share a slot: the hash tag `{bull}` puts every queue's keys in one slot. Only
 * used on a cluster, so that deployments on one Redis keep their queues (and schedules' job
 * schedulers) where they are.
 */
export const CLUSTER_BULL_PREFIX = 'rm:{bull}';

/** The BullMQ prefix for a connection: hash-tagged on a cluster. */
export const bullPrefixFor = (connection: RedisConnection) =>
  isCluster(connection) ? CLUSTER_BULL_PREFIX : BULL_PREFIX;

/** A BullMQ key of a queue, e.g. `bullKey(BULL_PREFIX, 'render', 'wait')` (the wait list). */
export const bullKey = (prefix: string, queue: string, suffix: string) =>
  `${prefix}:${queue}:${suffix}`;
