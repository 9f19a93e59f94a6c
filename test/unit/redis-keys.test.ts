import { describe, expect, it } from 'vitest';
import {
  BULL_PREFIX,
  CLUSTER_BULL_PREFIX,
  RM_PREFIX,
  batchKeys,
  bullKey,
  cacheKeys,
  idempotencyKey,
  limiterId,
  limiterKeys,
  rateWindowKeys,
  spoolKeys,
  scheduleKeys,
  sessionKey,
  webhookQueuedKey,
  webhookSecretKeys,
} from '../../src/redis/redis-keys.js';

// The key strings are the data of running deployments: these pin them byte for byte.
describe('Redis keys', () => {
  it('names batches, items, reservations and spend counters under one hash tag', () => {
    const keys = batchKeys();
    expect(RM_PREFIX).toBe('rm');
    expect(keys.meta('b1')).toBe('rm:{batches}:batch:b1');
    expect(keys.items('b1')).toBe('rm:{batches}:batch:b1:items');
    expect(keys.reservations('b1')).toBe('rm:{batches}:batch:b1:reservations');
    expect(keys.tenantBatches('t1')).toBe('rm:{batches}:tenant:t1:batches');
    expect(keys.spendCounter('tenant:t1:2026-12')).toBe('rm:{batches}:spend:tenant:t1:2026-12');
    expect(keys.spendCounter('day:2026-12-05')).toBe('rm:{batches}:spend:day:2026-12-05');
    expect(batchKeys('test').meta('b1')).toBe('test:{batches}:batch:b1');
  });

  it('names schedules under their tenant’s hash tag', () => {
    expect(scheduleKeys().schedule('t1', 's1')).toBe('rm:schedules:{t1}:s1');
    expect(scheduleKeys().index('t1')).toBe('rm:schedules:{t1}:index');
    expect(scheduleKeys('x').index('t1')).toBe('x:schedules:{t1}:index');
  });

  it('names the cache index, render locks, the epoch and the rebuild lock', () => {
    const keys = cacheKeys();
    expect(keys.index('shared', 'ab12')).toBe('rm:cache:{shared:ab12}');
    expect(keys.renderLock('shared', 'ab12')).toBe('rm:cache:{shared:ab12}:rendering');
    expect(keys.epoch).toBe('rm:cache:{index}:epoch');
    expect(keys.rebuildLock).toBe('rm:cache:{index}:rebuild');
    expect(cacheKeys('x').epoch).toBe('x:cache:{index}:epoch');
  });

  it('names the spool of paid images, every key in the {spool} slot', () => {
    const keys = spoolKeys();
    expect(keys.sizes).toBe('rm:spool:{spool}:sizes');
    expect(keys.expiry).toBe('rm:spool:{spool}:expiry');
    expect(keys.entry('b1:i1')).toBe('rm:spool:{spool}:entry:b1:i1');
    expect(spoolKeys('x').sizes).toBe('x:spool:{spool}:sizes');
  });

  it('names a provider account’s pause and each model’s rate window, in one slot', () => {
    const id = 'rm:limit:{def0b17f603285ef}';
    expect(limiterId('acct')).toBe(id);
    expect(limiterKeys('acct')).toEqual({ id, pause: `${id}:pause` });
    const model = `${id}:model:gpt-image-2`;
    expect(rateWindowKeys('acct', 'gpt-image-2')).toEqual({
      grants: `${model}:grants`,
      weights: `${model}:weights`,
      used: `${model}:used`,
      learned: `${model}:learned`,
      block: `${model}:block`,
    });
  });

  it('names webhook secrets, the queued-webhook marker, sessions and idempotency keys', () => {
    expect(webhookSecretKeys().current('t1')).toBe('rm:webhook-secret:t1');
    expect(webhookSecretKeys().previous('t1')).toBe(
      'rm:webhook-secret-previous:{rm:webhook-secret:t1}',
    );
    expect(webhookQueuedKey('b1')).toBe('rm:webhook-queued:b1');
    expect(sessionKey('tok')).toBe(
      'rm:session:1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62',
    );
    expect(idempotencyKey('t1', 'k1')).toBe(
      'rm:idempotency:03d2f6d5ff5e68a9e03b398343c1e0825bacfaeb76d5f3150bfc68ff4dd9ae81',
    );
  });

  it('names BullMQ’s prefixes and queue keys', () => {
    expect(BULL_PREFIX).toBe('rm:bull');
    expect(CLUSTER_BULL_PREFIX).toBe('rm:{bull}');
    expect(bullKey(BULL_PREFIX, 'render', 'wait')).toBe('rm:bull:render:wait');
  });
});
