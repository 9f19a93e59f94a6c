import { afterAll, beforeAll, expect, it } from 'vitest';
import { BatchCancelledError } from '../../src/errors.js';
import { auth, startHarness, type Harness } from '../support/harness.js';
import { renderItemProcessor } from '../support/render-item.js';

// No workers: each test plays a worker's moves itself, in the order that races with a cancel.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false, simulator: { imagesPerMinute: 60_000, latencyMs: 5 } });
});
afterAll(async () => {
  await h?.stop();
});

async function submitTwo(label: string): Promise<string> {
  const response = await h.api.inject({
    method: 'POST',
    url: '/v1/batches',
    headers: auth(),
    payload: {
      model: 'dall-e-2',
      size: '256x256',
      items: [
        { id: 'a', prompt: `${label} a` },
        { id: 'b', prompt: `${label} b` },
      ],
    },
  });
  expect(response.statusCode).toBe(202);
  return response.json().id;
}

const cancel = (id: string) =>
  h.api.inject({ method: 'POST', url: `/v1/batches/${id}/cancel`, headers: auth() });

const renderItem = () => renderItemProcessor(h);

it('cancels an item handed back to the queue after the cancel instead of rendering it again', async () => {
  const id = await submitTwo('handed back');
  const { store } = h.services;
  // A worker has started item a (it waits for the rate limiter) when the tenant cancels.
  const a = (await store.item(id, 'a'))!;
  await store.transition(id, { ...a, status: 'running' }, { releaseReservation: true });
  expect((await cancel(id)).json().status).toBe('cancelling');
  // The worker is stopped (SIGTERM) and hands the item back to the queue: it is cancelled instead.
  const running = (await store.item(id, 'a'))!;
  const back = await store.transition(id, { ...running, status: 'queued' });
  expect(back).toBe('cancelled');
  // The job's next attempt, on another worker, finds nothing to do and calls nothing.
  const billed = h.sim.stats().billedImages;
  await renderItem()(
    { batchId: id, itemId: 'a', tenant: 'acme', spec: running.spec },
    { attempt: 2, maxAttempts: 5 },
  );
  expect(h.sim.stats().billedImages).toBe(billed);
  expect((await store.item(id, 'a'))!.status).toBe('cancelled');
  const batch = (await store.get(id))!;
  expect(batch.status).toBe('cancelled');
  expect(batch.counts.cancelled).toBe(2);
  expect(batch.reserved_micros).toBe(0);
});

it('a job that starts after the cancel cancels its item instead of rendering it', async () => {
  const id = await submitTwo('late start');
  const { store } = h.services;
  // Item a was queued again after an earlier attempt and is not seen by the cancel's scan yet:
  // mark the batch cancelling the way the cancel does, before its scan reaches the item.
  expect(await store.markCancelling(id, new Date().toISOString())).toBe(true);
  const billed = h.sim.stats().billedImages;
  const a = (await store.item(id, 'a'))!;
  await renderItem()(
    { batchId: id, itemId: 'a', tenant: 'acme', spec: a.spec },
    { attempt: 1, maxAttempts: 5 },
  );
  expect(h.sim.stats().billedImages).toBe(billed);
  expect((await store.item(id, 'a'))!).toMatchObject({
    status: 'cancelled',
    error: { code: 'cancelled' },
  });
  // The price it reserved in that round trip, after the start, is released: nothing was bought.
  expect(await store.holdOf(id, 'a')).toBeUndefined();
  expect((await store.get(id))!.reserved_micros).toBe(0);
  // The render lock the job tried for, in the round trip that would have started the item,
  // is let go: another item with the same prompt need not wait for it to lapse.
  expect(a.hash).toBeDefined();
  const lease = await h.services.locks.tryAcquire(h.services.cache.scopeFor('acme'), a.hash!);
  expect(lease).toBeDefined();
  await lease?.release();
});

it('no call leaves for an item whose batch was cancelled after its money was reserved', async () => {
  const id = await submitTwo('reserved');
  const { store } = h.services;
  const a = (await store.item(id, 'a'))!;
  await store.transition(id, { ...a, status: 'running' }, { releaseReservation: true });
  expect((await store.reserve(id, 'a', 16_000)).outcome).toBe('reserved');
  expect((await cancel(id)).json().status).toBe('cancelling');
  // The call was about to leave: marking it calling is refused, so it never does.
  await expect(store.markCalling(id, 'a')).rejects.toBeInstanceOf(BatchCancelledError);
  expect(await store.holdOf(id, 'a')).toMatchObject({ calling: false });
});

it('answers 409 when the batch ended before the cancel arrived', async () => {
  const id = await submitTwo('ended');
  const { store } = h.services;
  for (const itemId of ['a', 'b']) {
    const item = (await store.item(id, itemId))!;
    await store.transition(id, { ...item, status: 'failed', error: { code: 'x', message: 'x' } });
  }
  const response = await cancel(id);
  expect(response.statusCode).toBe(409);
  expect(response.json().error.message).toBe(`batch ${id} is already completed`);
});
