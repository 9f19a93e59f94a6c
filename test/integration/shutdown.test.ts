import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRenderWorkers } from '../../workers/render-workers.js';
import { startHarness, submit, waitForBatch, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  // The provider allows 6 images a minute (one every 10 s) while rendermill is told 600: the
  // second item meets a 429 asking it to wait ~10 s, and is waiting when the worker stops.
  h = await startHarness({
    workers: false,
    simulator: { imagesPerMinute: 6 },
    env: { RENDERMILL_IMAGES_PER_MINUTE: '600' },
  });
});
afterAll(async () => {
  await h?.stop();
});

describe('a worker shutting down', () => {
  it('cuts waits short and hands the job back, without using an attempt, losing the item or paying twice', async () => {
    const workers = startRenderWorkers(h.services, { shutdownGraceMs: 300 });
    const response = await submit(h, {
      model: 'dall-e-2',
      size: '256x256',
      budget_usd: 1,
      items: [
        { id: 'first', prompt: 'one' },
        { id: 'second', prompt: 'two' },
      ],
    });
    const batchId = response.json<{ id: string }>().id;
    while (h.sim.stats().rateLimited === 0) await new Promise((r) => setTimeout(r, 20));

    const started = Date.now();
    await workers.close();
    expect(Date.now() - started).toBeLessThan(3_000); // not the ~10 s the provider asked for

    // Whichever item reached the provider second met the 429 and was waiting.
    const items = await h.services.store.items(batchId);
    const waiting = items.find((item) => item.status === 'queued');
    expect(waiting?.error?.code).toBe('shutdown');
    const batch = await h.services.store.get(batchId);
    expect(batch?.reserved_micros).toBe(0);
    expect(batch?.counts).toMatchObject({ succeeded: 1, queued: 1 });
    const job = await h.services.queue.queue('render').getJob(`${batchId}-${waiting!.index}`);
    expect(job?.attemptsMade).toBe(0);
    expect(await job?.getState()).toBe('delayed');

    // Another worker finishes it; the provider billed each image once.
    h.sim.setKnobs({ imagesPerMinute: 0 });
    const next = startRenderWorkers(h.services);
    try {
      const done = await waitForBatch(h, batchId);
      expect(done.counts.succeeded).toBe(2);
      expect(done.spent_micros).toBe(32_000);
      expect(h.sim.stats().billedImages).toBe(2);
    } finally {
      await next.close();
    }
  });
});

describe('a worker shutting down while calls wait for the rate limiter', () => {
  it('hands them back before they start, paying for none of them', async () => {
    // rendermill paces at 6 images a minute: one call now, the next only after 10 s.
    const slow = await startHarness({ workers: false, env: { RENDERMILL_IMAGES_PER_MINUTE: '6' } });
    try {
      const workers = startRenderWorkers(slow.services, { shutdownGraceMs: 300 });
      const response = await submit(slow, {
        model: 'dall-e-2',
        size: '256x256',
        items: ['a', 'b', 'c'].map((id) => ({ id, prompt: `limited ${id}` })),
      });
      const batchId = response.json<{ id: string }>().id;
      while (slow.sim.stats().billedImages === 0) await new Promise((r) => setTimeout(r, 20));

      const started = Date.now();
      await workers.close();
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(slow.sim.stats().requests).toBe(1);
      const batch = await slow.services.store.get(batchId);
      expect(batch?.counts).toMatchObject({ succeeded: 1, queued: 2, running: 0 });
      expect(batch?.reserved_micros).toBe(0);
    } finally {
      await slow.stop();
    }
  });
});

describe('a job re-run after its worker died', () => {
  it('charges what a run that died mid-call held, then renders the item once more', async () => {
    const response = await submit(h, {
      model: 'dall-e-2',
      size: '256x256',
      items: [{ id: 'orphan', prompt: 'orphaned' }],
    });
    const batchId = response.json<{ id: string }>().id;
    // What a worker killed mid-call leaves behind: the item running, its reservation held.
    const item = (await h.services.store.item(batchId, 'orphan'))!;
    await h.services.store.transition(batchId, { ...item, status: 'running' });
    expect((await h.services.store.reserve(batchId, 'orphan', 16_000)).outcome).toBe('reserved');
    await h.services.store.markCalling(batchId, 'orphan'); // it died with its call under way

    h.sim.setKnobs({ imagesPerMinute: 0 });
    h.sim.reset();
    const workers = startRenderWorkers(h.services);
    try {
      const done = await waitForBatch(h, batchId);
      expect(done.counts.succeeded).toBe(1);
      expect(done.spent_micros).toBe(32_000); // the dead run's 16,000 + this run's 16,000
      expect(done.reserved_micros).toBe(0);
      expect((await h.services.store.item(batchId, 'orphan'))?.cost_micros).toBe(32_000);
      expect(h.sim.stats().billedImages).toBe(1);
    } finally {
      await workers.close();
    }
  });
});
