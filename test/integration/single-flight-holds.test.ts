import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startHarness, submit, type Harness } from '../support/harness.js';
import { renderItemProcessor } from '../support/render-item.js';

// No workers: the test holds a request's render lock itself, as another renderer would.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false, simulator: { imagesPerMinute: 60_000, latencyMs: 5 } });
});
afterAll(async () => {
  await h?.stop();
});

it('an item waiting for another renderer of its request holds no budget, then buys with a hold of its own', async () => {
  const response = await submit(h, {
    model: 'dall-e-2',
    size: '256x256',
    budget_usd: 1,
    items: [{ id: 'a', prompt: 'a teapot another renderer has' }],
  });
  expect(response.statusCode).toBe(202);
  const id: string = response.json().id;
  const { store, locks, cache } = h.services;
  const item = (await store.item(id, 'a'))!;
  const lease = await locks.tryAcquire(cache.scopeFor('acme'), item.hash!);
  expect(lease).toBeDefined();
  const billed = h.sim.stats().billedImages;

  const job = renderItemProcessor(h)(
    { batchId: id, itemId: 'a', tenant: 'acme', spec: item.spec, hash: item.hash! },
    { attempt: 1, maxAttempts: 5 },
  );
  // The item starts, reserving its price in the same round trip; finding the lock taken, it
  // lets the hold go and waits: a renderer waiting for budget this hold kept would wait on it.
  await vi.waitFor(async () => expect((await store.item(id, 'a'))!.status).toBe('running'));
  await vi.waitFor(async () => expect(await store.holdOf(id, 'a')).toBeUndefined(), {
    timeout: 5_000,
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect((await store.get(id))!.reserved_micros).toBe(0);
  expect(h.sim.stats().billedImages).toBe(billed);

  // The other renderer lets go without storing anything: the item takes the lock, reserves
  // again, buys once and settles at the provider's price with nothing left held.
  await lease!.release();
  await job;
  expect(h.sim.stats().billedImages).toBe(billed + 1);
  const batch = (await store.get(id))!;
  expect(batch.counts.succeeded).toBe(1);
  expect(batch.reserved_micros).toBe(0);
  expect(batch.spent_micros).toBe(16_000);
});
