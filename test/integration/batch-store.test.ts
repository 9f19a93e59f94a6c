import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchStore, type ItemRecord } from '../../src/batches/batch-store.js';
import { startTestRedis } from '../support/redis-server.js';

let server: Awaited<ReturnType<typeof startTestRedis>>;
let redis: Redis;
let store: BatchStore;

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis(server.url);
  store = new BatchStore(redis);
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

async function newBatch(id: string, count: number, budgetMicros?: number) {
  const items = Array.from({ length: count }, (_, i) => item(`i${i}`, i));
  await store.create(
    {
      id,
      tenant: 't1',
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
    expect(await store.reserve('b1', 'i0', 20_000)).toBe('reserved');
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
    const results = await Promise.all(items.map((i) => store.reserve('b2', i.id, 16_000)));
    // 6 × 16,000 ≤ 100,000 < 7 × 16,000. Nothing is spent yet and others are running, so the
    // rest wait for them to settle rather than give up.
    expect(results.filter((r) => r === 'reserved')).toHaveLength(6);
    expect(results.filter((r) => r === 'wait')).toHaveLength(44);
    expect((await store.get('b2'))?.reserved_micros).toBe(96_000);

    // Settling one (below its reservation) releases all it held and makes room again.
    const holder = items[results.indexOf('reserved')]!;
    await store.transition('b2', { ...holder, status: 'succeeded' }, { spendMicros: 4_000 });
    expect((await store.get('b2'))?.reserved_micros).toBe(80_000);
    expect(await store.reserve('b2', items[49]!.id, 16_000)).toBe('reserved');
  });

  it('keeps one reservation per item: a re-run replaces it instead of leaking', async () => {
    const [a] = await newBatch('b6', 1, 50_000);
    await store.transition('b6', { ...a!, status: 'running' });
    expect(await store.reserve('b6', 'i0', 30_000)).toBe('reserved');
    // The same item again (its job re-run after a crash): it still fits, replacing its own.
    expect(await store.reserve('b6', 'i0', 30_000)).toBe('reserved');
    expect((await store.get('b6'))?.reserved_micros).toBe(30_000);
    await store.transition('b6', { ...a!, status: 'queued' });
    expect((await store.get('b6'))?.reserved_micros).toBe(0);
  });

  it('does not wait on money held by items that are no longer running', async () => {
    const [a, b] = await newBatch('b3', 2, 20_000);
    await store.transition('b3', { ...a!, status: 'running' });
    await store.transition('b3', { ...b!, status: 'running' });
    expect(await store.reserve('b3', 'i0', 16_000)).toBe('reserved');
    expect(await store.reserve('b3', 'i1', 16_000)).toBe('wait'); // i0 is running
    await store.transition('b3', { ...a!, status: 'succeeded' }, { spendMicros: 16_000 });
    expect(await store.reserve('b3', 'i1', 16_000)).toBe('exhausted');
    expect(await store.reserve('b3', 'i1', 4_000)).toBe('reserved');
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
    expect(await redis.zscore('rm:tenant:t1:batches', 'b5')).toBeNull();
  });
});
