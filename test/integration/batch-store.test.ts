import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchStore } from '../../src/batches/batch-store.js';
import { loadConfig } from '../../src/config/config.js';
import { type ItemRecord } from '../../src/contracts/batch-records.js';
import { ReservationLostError } from '../../src/errors.js';
import type { SpendCap } from '../../src/ledger/spend-caps.js';
import { startTestRedis } from '../support/redis-server.js';

let server: Awaited<ReturnType<typeof startTestRedis>>;
let redis: Redis;
let store: BatchStore;

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis(server.url);
  store = new BatchStore(redis, { checkpointMs: loadConfig({}).manifestCheckpointMs });
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

const item = (id: string, index: number): ItemRecord => ({
  id,
  index,
  status: 'queued',
  spec: { operation: 'generate', model: 'dall-e-2', prompt: id, size: '256x256', n: 1 },
  hash: `hash-${id}`,
  cost_micros: 0,
  images: [],
  attempts: 0,
  updated_at: new Date().toISOString(),
});

const reserve = async (...args: Parameters<BatchStore['reserve']>) =>
  (await store.reserve(...args)).outcome;

async function newBatch(id: string, count: number, budgetMicros?: number, tenant = 't1') {
  const items = Array.from({ length: count }, (_, i) => item(`i${i}`, i));
  await store.create(
    {
      id,
      tenant,
      created_at: new Date().toISOString(),
      budget_micros: budgetMicros,
      metadata: {},
    },
    items,
  );
  return items;
}

describe('BatchStore', () => {
  it('keeps counts, spend and completion consistent through transitions', async () => {
    const [a, b] = await newBatch('b1', 2);
    expect((await store.get('b1'))?.counts.queued).toBe(2);

    expect(await store.transition('b1', { ...a!, status: 'running' })).toBe('updated');
    expect((await store.get('b1'))?.status).toBe('running');
    expect(
      await store.transition(
        'b1',
        { ...a!, status: 'succeeded', cost_micros: 16_000 },
        { spendMicros: 16_000 },
      ),
    ).toBe('updated');
    // A final state is final: a duplicate run cannot move the item, but money it really
    // paid is still counted, and what it reserved is released.
    expect(await reserve('b1', 'i0', 20_000)).toBe('reserved');
    expect(await store.transition('b1', { ...a!, status: 'failed' }, { spendMicros: 16_000 })).toBe(
      'ignored',
    );
    expect((await store.item('b1', 'i0'))?.status).toBe('succeeded');
    expect(await store.transition('b1', { ...b!, status: 'failed' })).toBe('batch_completed');

    const batch = await store.get('b1');
    expect(batch).toMatchObject({
      status: 'completed',
      total: 2,
      spent_micros: 32_000,
      reserved_micros: 0,
    });
    expect(batch?.counts).toMatchObject({ queued: 0, running: 0, succeeded: 1, failed: 1 });
    expect((await store.item('b1', 'i0'))?.status).toBe('succeeded');
    expect((await store.items('b1')).map((i) => i.id)).toEqual(['i0', 'i1']);
  });

  it('reserves atomically: concurrent reservations never pass the budget', async () => {
    const items = await newBatch('b2', 50, 100_000);
    await Promise.all(items.map((i) => store.transition('b2', { ...i, status: 'running' })));
    const results = await Promise.all(items.map((i) => reserve('b2', i.id, 16_000)));
    // 6 × 16,000 ≤ 100,000 < 7 × 16,000. Nothing is spent yet and others are running, so the
    // rest wait for them to settle rather than give up.
    expect(results.filter((r) => r === 'reserved')).toHaveLength(6);
    expect(results.filter((r) => r === 'wait')).toHaveLength(44);
    expect((await store.get('b2'))?.reserved_micros).toBe(96_000);

    // Settling one (below its reservation) releases all it held and makes room again.
    const holder = items[results.indexOf('reserved')]!;
    await store.transition('b2', { ...holder, status: 'succeeded' }, { spendMicros: 4_000 });
    expect((await store.get('b2'))?.reserved_micros).toBe(80_000);
    expect(await reserve('b2', items[49]!.id, 16_000)).toBe('reserved');
  });

  it('keeps one reservation per item: a re-run replaces it instead of leaking', async () => {
    const [a] = await newBatch('b6', 1, 50_000);
    await store.transition('b6', { ...a!, status: 'running' });
    expect(await reserve('b6', 'i0', 30_000)).toBe('reserved');
    // The same item again (its job re-run after a crash): it still fits, replacing its own.
    expect(await reserve('b6', 'i0', 30_000)).toBe('reserved');
    expect((await store.get('b6'))?.reserved_micros).toBe(30_000);
    await store.transition('b6', { ...a!, status: 'queued' });
    expect((await store.get('b6'))?.reserved_micros).toBe(0);
  });

  it('does not wait on money held by items that are no longer running', async () => {
    const [a, b] = await newBatch('b3', 2, 20_000);
    await store.transition('b3', { ...a!, status: 'running' });
    await store.transition('b3', { ...b!, status: 'running' });
    expect(await reserve('b3', 'i0', 16_000)).toBe('reserved');
    expect(await reserve('b3', 'i1', 16_000)).toBe('wait'); // i0 is running
    await store.transition('b3', { ...a!, status: 'succeeded' }, { spendMicros: 16_000 });
    expect(await reserve('b3', 'i1', 16_000)).toBe('exhausted');
    expect(await reserve('b3', 'i1', 4_000)).toBe('reserved');
  });

  it('reads another tenant’s batch as missing', async () => {
    await newBatch('b4', 1);
    expect(await store.getForTenant('t1', 'b4')).toBeDefined();
    expect(await store.getForTenant('t2', 'b4')).toBeUndefined();
  });

  it('deletes a batch completely', async () => {
    await newBatch('b5', 2);
    await store.delete('b5', 't1');
    expect(await store.get('b5')).toBeUndefined();
    expect(await store.items('b5')).toEqual([]);
    expect(await redis.zscore('rm:{batches}:tenant:t1:batches', 'b5')).toBeNull();
  });

  it('holds every cap at once: a tenant month shared by batches is never overshot', async () => {
    const month: SpendCap = { id: 'tenant:t9:2026-11', limitMicros: 50_000 };
    const day: SpendCap = { id: 'day:2026-11-22' };
    const a = await newBatch('c1', 3, undefined, 't9');
    const b = await newBatch('c2', 3, undefined, 't9');
    for (const i of a) await store.transition('c1', { ...i, status: 'running' });
    for (const i of b) await store.transition('c2', { ...i, status: 'running' });
    const results = await Promise.all([
      ...a.map((i) => store.reserve('c1', i.id, 16_000, [month, day])),
      ...b.map((i) => store.reserve('c2', i.id, 16_000, [month, day])),
    ]);
    // 3 × 16,000 ≤ 50,000 < 4 × 16,000, whichever batch the items belong to.
    expect(results.filter((r) => r.outcome === 'reserved')).toHaveLength(3);
    expect(results.filter((r) => r.outcome === 'wait').map((r) => r.cap)).toEqual([
      month.id,
      month.id,
      month.id,
    ]);
    expect(await store.capTotals([month.id, day.id])).toEqual({
      [month.id]: { spent: 0, reserved: 48_000 },
      [day.id]: { spent: 0, reserved: 48_000 },
    });

    // Settling moves the money from reserved to spent on the batch and on every counter.
    const holders = [...a, ...b].filter((_, i) => results[i]!.outcome === 'reserved');
    for (const holder of holders) {
      const batchId = a.includes(holder) ? 'c1' : 'c2';
      await store.transition(batchId, { ...holder, status: 'succeeded' }, { spendMicros: 15_000 });
    }
    expect(await store.capTotals([month.id, day.id])).toEqual({
      [month.id]: { spent: 45_000, reserved: 0 },
      [day.id]: { spent: 45_000, reserved: 0 },
    });
    const other = [...a, ...b].find((_, i) => results[i]!.outcome !== 'reserved')!;
    const result = await store.reserve(a.includes(other) ? 'c1' : 'c2', other.id, 16_000, [
      month,
      day,
    ]);
    expect(result).toEqual({ outcome: 'exhausted', cap: month.id });
  });

  it('knows whether a hold was a call under way', async () => {
    const [a] = await newBatch('c3', 1);
    await store.transition('c3', { ...a!, status: 'running' });
    await reserve('c3', 'i0', 10_000);
    expect(await store.holdOf('c3', 'i0')).toEqual({ micros: 10_000, calling: false });
    await store.markCalling('c3', 'i0');
    expect(await store.holdOf('c3', 'i0')).toEqual({ micros: 10_000, calling: true });
  });

  it('lets a hold go spending nothing, but never one a call is under way on', async () => {
    const caps: SpendCap[] = [{ id: 'tenant:t1:2026-12' }];
    const [a] = await newBatch('c7', 1);
    await store.transition('c7', { ...a!, status: 'running' });
    expect((await store.reserve('c7', 'i0', 10_000, caps)).outcome).toBe('reserved');
    expect(await store.releaseHold('c7', 'i0')).toBe(10_000);
    expect(await store.holdOf('c7', 'i0')).toBeUndefined();
    expect((await store.get('c7'))!).toMatchObject({ reserved_micros: 0, spent_micros: 0 });
    expect((await store.capTotals([caps[0]!.id]))[caps[0]!.id]).toEqual({ spent: 0, reserved: 0 });
    // A stalled run of the same item, still alive, marked the hold calling: it stays for its call.
    await store.reserve('c7', 'i0', 10_000, caps);
    await store.markCalling('c7', 'i0');
    expect(await store.releaseHold('c7', 'i0')).toBe(0);
    expect(await store.holdOf('c7', 'i0')).toEqual({ micros: 10_000, calling: true });
  });

  it('holds for an item only while it runs in a batch not being cancelled, when asked to', async () => {
    const [a, b] = await newBatch('c8', 2);
    const early = (itemId: string) =>
      store.reserve('c8', itemId, 10_000, [], { onlyIfRunning: true });
    expect((await early('i0')).outcome).toBe('not_running'); // still queued
    await store.transition('c8', { ...a!, status: 'running' });
    expect((await early('i0')).outcome).toBe('reserved');
    await store.transition('c8', { ...b!, status: 'running' });
    expect(await store.markCancelling('c8', new Date().toISOString())).toBe(true);
    expect((await early('i1')).outcome).toBe('not_running');
    expect(await store.holdOf('c8', 'i1')).toBeUndefined();
  });

  it('says when a running batch is due a manifest checkpoint', async () => {
    const checkpointing = new BatchStore(redis, { checkpointMs: 1_000 });
    const items = await newBatch('c4', 3);
    expect(await checkpointing.transition('c4', { ...items[0]!, status: 'failed' })).toBe(
      'updated', // the batch was created less than a second ago
    );
    await redis.hset('rm:{batches}:batch:c4', 'checkpoint_at', Date.now() - 1_500);
    expect(await checkpointing.transition('c4', { ...items[1]!, status: 'failed' })).toBe(
      'checkpoint_due',
    );
    expect(await checkpointing.transition('c4', { ...items[2]!, status: 'failed' })).toBe(
      'batch_completed',
    );
  });

  it('refuses to mark a call under way once the reservation is gone', async () => {
    const [a] = await newBatch('c5', 1);
    await store.transition('c5', { ...a!, status: 'running' });
    await reserve('c5', 'i0', 10_000);
    // Another run of the job took the item over and released what this one held.
    await store.transition('c5', { ...a!, status: 'running' }, { releaseReservation: true });
    await expect(store.markCalling('c5', 'i0')).rejects.toBeInstanceOf(ReservationLostError);
  });

  it('releases what a deleted batch held on the tenant’s and the day’s counters', async () => {
    const caps: SpendCap[] = [{ id: 'tenant:t1:2026-10' }, { id: 'day:2026-10-01' }];
    const [a] = await newBatch('c6', 2);
    await store.transition('c6', { ...a!, status: 'running' });
    expect((await store.reserve('c6', 'i0', 12_000, caps)).outcome).toBe('reserved');
    await store.delete('c6', 't1');
    const totals = await store.capTotals(caps.map((c) => c.id));
    expect(Object.values(totals).map((t) => t.reserved)).toEqual([0, 0]);
  });
});
