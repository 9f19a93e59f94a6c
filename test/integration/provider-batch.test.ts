import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderBatchStore } from '../../src/batches/provider-batch-store.js';
import { auth, startHarness, submit, waitForBatch, type Harness } from '../support/harness.js';
import { realtimeMicros, batchMicros, productItems } from '../support/batch-prices.js';

const items = productItems;

const base = { model: 'gpt-image-2', size: '256x256', quality: 'low' };

describe('provider batch mode', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      env: {
        RENDERMILL_BATCH_API: 'true',
        RENDERMILL_PROVIDER_BATCH_POLL_MS: '100',
        // Long: a batch goes once its every item is enrolled, not when enrolment pauses.
        RENDERMILL_PROVIDER_BATCH_GATHER_MS: '3000',
        // Small files, so that a 40-item batch goes as two provider batches.
        RENDERMILL_PROVIDER_BATCH_MAX_LINES: '25',
      },
      simulator: { batchLineMs: 1 },
    });
  }, 60_000);
  afterAll(async () => h?.stop());

  it('renders a batch through the Batch API at half price, billed once, then all from the cache', async () => {
    const body = { ...base, mode: 'provider_batch', items: items(40, 'teal mug') };
    const response = await submit(h, body);
    expect(response.statusCode, response.body).toBe(202);
    const { id } = response.json<{ id: string }>();
    const batch = await waitForBatch(h, id, 60_000);
    expect(batch.counts.succeeded).toBe(40);
    const stats = h.sim.stats();
    // 40 lines, at most 25 a file: two files, two provider batches.
    expect(stats.byEndpoint.batches).toBe(2);
    expect(stats.byEndpoint.files).toBe(2);
    expect(stats.byEndpoint.generations).toBe(0);
    expect(stats.batch.linesCompleted).toBe(40);
    for (const item of body.items) expect(stats.billedImagesByPrompt[item.prompt]).toBe(1);
    const expected = body.items.reduce((sum, item) => sum + batchMicros(item.prompt), 0);
    expect(batch.spent_micros).toBe(expected);
    expect(batch.reserved_micros).toBe(0);

    const again = await submit(h, { ...body, items: items(40, 'teal mug') });
    expect(again.statusCode).toBe(202);
    const second = await waitForBatch(h, again.json<{ id: string }>().id, 30_000);
    expect(second.counts.cached).toBe(40);
    expect(second.spent_micros).toBe(0);
    expect(h.sim.stats().byEndpoint.files).toBe(2);
  }, 90_000);

  it('buys a prompt asked twice once, and costs half of the same batch realtime', async () => {
    h.sim.reset();
    const asked = [
      ...items(10, 'linen shirt'),
      { id: 'again-1', prompt: 'linen shirt product 1' },
      { id: 'again-2', prompt: 'linen shirt product 2' },
    ];
    const batched = await finished({ ...base, mode: 'provider_batch', items: asked });
    expect(batched.counts.succeeded + batched.counts.cached).toBe(12);
    expect(h.sim.stats().batch.linesCompleted).toBe(10);
    const unique = items(10, 'linen shirt');
    expect(batched.spent_micros).toBe(unique.reduce((sum, i) => sum + batchMicros(i.prompt), 0));

    // The same batch realtime, rendered afresh: every line at full price.
    h.sim.reset();
    const realtime = await finished({ ...base, cache: 'refresh', items: asked });
    expect(h.sim.stats().byEndpoint.generations).toBe(10);
    expect(realtime.spent_micros).toBe(
      unique.reduce((sum, i) => sum + realtimeMicros(i.prompt), 0),
    );
    // Half, but for each line's rounding up to a whole micro-dollar.
    expect(Math.abs(realtime.spent_micros - 2 * batched.spent_micros)).toBeLessThanOrEqual(10);
  }, 90_000);

  it('fails the lines the provider refused with its reason, and pays only for the rest', async () => {
    h.sim.reset();
    h.sim.setKnobs({ contentPolicyPattern: 'forbidden' });
    try {
      const asked = [...items(6, 'wool scarf'), { id: 'bad', prompt: 'a forbidden scarf' }];
      const batch = await finished({ ...base, mode: 'provider_batch', items: asked });
      expect(batch.counts).toMatchObject({ succeeded: 6, failed: 1 });
      const bad = await h.services.store.item(batch.id, 'bad');
      // The GPT Image models' code for a refused prompt.
      expect(bad?.error?.code).toBe('moderation_blocked');
      expect(bad?.cost_micros).toBe(0);
      expect(batch.spent_micros).toBe(
        items(6, 'wool scarf').reduce((sum, i) => sum + batchMicros(i.prompt), 0),
      );
    } finally {
      h.sim.setKnobs({ contentPolicyPattern: undefined });
    }
  }, 60_000);

  it('cancelled mid-way: lines already rendered are stored and paid, the rest cancelled', async () => {
    h.sim.reset();
    h.sim.setKnobs({ batchLineMs: 60 });
    try {
      const response = await submit(h, {
        ...base,
        mode: 'provider_batch',
        items: items(20, 'oak desk'),
      });
      const { id } = response.json<{ id: string }>();
      // Cancel once the provider has rendered a few lines.
      await until(() => h.sim.stats().batch.linesCompleted >= 3);
      const cancelled = await h.api.inject({
        method: 'POST',
        url: `/v1/batches/${id}/cancel`,
        headers: auth(),
      });
      expect(cancelled.statusCode).toBe(200);
      const batch = await waitForBatch(h, id, 30_000);
      expect(batch.status).toBe('cancelled');
      const stats = h.sim.stats();
      const billed = Object.keys(stats.billedImagesByPrompt);
      expect(batch.counts.succeeded).toBe(billed.length);
      expect(batch.counts.succeeded + batch.counts.cancelled).toBe(20);
      expect(batch.counts.cancelled).toBeGreaterThan(0);
      expect(batch.spent_micros).toBe(billed.reduce((sum, p) => sum + batchMicros(p), 0));
      expect(batch.reserved_micros).toBe(0);
    } finally {
      h.sim.setKnobs({ batchLineMs: 1 });
    }
  }, 60_000);

  it('expired: lines never reached fail, or with on_expiry realtime are rendered realtime', async () => {
    for (const onExpiry of ['fail', 'realtime'] as const) {
      h.sim.reset();
      h.sim.setKnobs({ batchLineMs: 80, batchExpireMs: 600 });
      let batch;
      const asked = items(12, `${onExpiry} lamp`);
      try {
        const response = await submit(h, {
          ...base,
          mode: 'provider_batch',
          on_expiry: onExpiry,
          items: asked,
        });
        batch = await waitForBatch(h, response.json<{ id: string }>().id, 30_000);
      } finally {
        h.sim.setKnobs({ batchLineMs: 1, batchExpireMs: 86_400_000 });
      }
      const stats = h.sim.stats();
      const inBatch = stats.batch.linesCompleted;
      expect(inBatch).toBeGreaterThan(0);
      expect(inBatch).toBeLessThan(12);
      for (const item of asked)
        expect(stats.billedImagesByPrompt[item.prompt] ?? 0).toBeLessThanOrEqual(1);
      const byRealtime = stats.byEndpoint.generations;
      if (onExpiry === 'fail') {
        expect(byRealtime).toBe(0);
        expect(batch.counts).toMatchObject({ succeeded: inBatch, failed: 12 - inBatch });
        const failed = (await h.services.store.items(batch.id)).find((i) => i.status === 'failed');
        expect(failed?.error?.code).toBe('provider_batch_expired');
      } else {
        expect(byRealtime).toBe(12 - inBatch);
        expect(batch.counts.succeeded).toBe(12);
      }
      // What the batch billed at half price, what realtime billed at full price.
      const expected = asked.reduce((sum, item) => {
        if (!stats.billedImagesByPrompt[item.prompt]) return sum;
        return sum + (onExpiry === 'realtime' ? 0 : batchMicros(item.prompt));
      }, 0);
      if (onExpiry === 'fail') expect(batch.spent_micros).toBe(expected);
      else {
        const items = await h.services.store.items(batch.id);
        const viaBatch = items.filter((i) => i.rendered_by?.provider_batch);
        expect(viaBatch).toHaveLength(inBatch);
        expect(batch.spent_micros).toBe(
          items.reduce(
            (sum, i) =>
              sum +
              (i.rendered_by?.provider_batch
                ? batchMicros(i.spec.prompt!)
                : realtimeMicros(i.spec.prompt!)),
            0,
          ),
        );
      }
      expect(batch.reserved_micros).toBe(0);
    }
  }, 90_000);

  it('waits while the provider’s batch queue is full, then submits the same file again', async () => {
    h.sim.reset();
    // Room for one 10-line batch of gpt-image-2 at a time (22 tokens a line), each taking 1.5 s.
    h.sim.setKnobs({ batchLineMs: 150, batchQueueTokens: { 'gpt-image-2': 300 } });
    try {
      const first = await submit(h, {
        ...base,
        mode: 'provider_batch',
        items: items(10, 'red kettle'),
      });
      await until(() => h.sim.stats().byEndpoint.batches >= 1);
      const second = await submit(h, {
        ...base,
        mode: 'provider_batch',
        items: items(10, 'blue kettle'),
      });
      const [a, b] = await Promise.all([
        waitForBatch(h, first.json<{ id: string }>().id, 60_000),
        waitForBatch(h, second.json<{ id: string }>().id, 60_000),
      ]);
      expect(a.counts.succeeded).toBe(10);
      expect(b.counts.succeeded).toBe(10);
      const stats = h.sim.stats();
      // The second was refused for the queue at least once, and its file uploaded once.
      expect(stats.byEndpoint.batches).toBeGreaterThan(2);
      expect(stats.byEndpoint.files).toBe(2);
      expect(stats.batch.linesCompleted).toBe(20);
    } finally {
      h.sim.setKnobs({ batchLineMs: 1, batchQueueTokens: {} });
    }
  }, 90_000);

  it('keeps within a known batch queue limit: parts of one route wait for room, never refused', async () => {
    h.sim.reset();
    // The route's limit as the providers file would give it (`batch_queue_tokens`), set on the
    // very route object the in-process workers use; the provider enforces the same figure.
    const route = h.services.routes[0]!;
    const known = route.batch!;
    route.batch = { ...known, queueTokens: 300 };
    h.sim.setKnobs({ batchLineMs: 100, batchQueueTokens: { 'gpt-image-2': 300 } });
    try {
      // 24 lines, each weighed at most 38 tokens (a prompt's characters bound its tokens):
      // parts of at most 7 lines, one enqueued at a time.
      const batch = await finished({
        ...base,
        mode: 'provider_batch',
        items: items(24, 'green vase'),
      });
      expect(batch.counts.succeeded).toBe(24);
      const parts = await new ProviderBatchStore(h.services.state).parts(batch.id);
      expect(parts.length).toBeGreaterThanOrEqual(4);
      for (const part of parts) expect(part.tokens).toBeLessThanOrEqual(300);
      const stats = h.sim.stats();
      // Each part created once: none was refused for the queue; each waited for the one before.
      expect(stats.byEndpoint.files).toBe(parts.length);
      expect(stats.byEndpoint.batches).toBe(parts.length);
      expect(parts.every((part) => part.attempt === 0)).toBe(true);
      for (let i = 1; i < parts.length; i++) {
        expect(parts[i]!.times.submitted!).toBeGreaterThanOrEqual(parts[i - 1]!.times.stored!);
      }
    } finally {
      route.batch = known;
      h.sim.setKnobs({ batchLineMs: 1, batchQueueTokens: {} });
    }
  }, 60_000);

  it('refuses what no provider batch can take, and auto picks by the deadline', async () => {
    const edit = await submit(h, {
      ...base,
      mode: 'provider_batch',
      items: [{ id: 'e', prompt: 'x', operation: 'edit', image: 'https://example.com/a.png' }],
    });
    expect(edit.statusCode).toBe(400);
    expect(edit.body).toContain('provider batches take generations');
    const noAuto = await submit(h, {
      ...base,
      complete_by: new Date(Date.now() + 48 * 3600_000).toISOString(),
      items: items(1, 'x'),
    });
    expect(noAuto.statusCode).toBe(400);
    expect(noAuto.body).toContain('complete_by');
    const soon = await submit(h, {
      ...base,
      mode: 'auto',
      complete_by: new Date(Date.now() + 2 * 3600_000).toISOString(),
      items: items(1, 'auto soon'),
    });
    expect(soon.statusCode).toBe(202);
    const late = await submit(h, {
      ...base,
      mode: 'auto',
      complete_by: new Date(Date.now() + 48 * 3600_000).toISOString(),
      items: items(1, 'auto late'),
    });
    expect(late.statusCode).toBe(202);
    const soonBatch = await h.services.store.get(soon.json<{ id: string }>().id);
    const lateBatch = await h.services.store.get(late.json<{ id: string }>().id);
    expect(soonBatch).toMatchObject({ mode: 'realtime', mode_requested: 'auto' });
    expect(lateBatch).toMatchObject({ mode: 'provider_batch', mode_requested: 'auto' });
  }, 60_000);

  /** Submits a batch and waits for it to end. */
  async function finished(body: object) {
    const response = await submit(h, body);
    expect(response.statusCode, response.body).toBe(202);
    return waitForBatch(h, response.json<{ id: string }>().id, 60_000);
  }
});

async function until(condition: () => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
