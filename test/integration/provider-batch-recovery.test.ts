import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderBatchStore } from '../../src/batches/provider-batch-store.js';
import { startHarness, submit, waitForBatch, type Harness } from '../support/harness.js';
import { batchMicros, productItems } from '../support/batch-prices.js';

const items = productItems;

/**
 * The provider carries out an upload or a batch creation and the answer never arrives (the
 * connection drops). The conductor must find what it made rather than make it again: one file,
 * one provider batch, every image billed once.
 */
describe('provider batch mode when the provider’s answer is lost', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      env: {
        RENDERMILL_BATCH_API: 'true',
        RENDERMILL_PROVIDER_BATCH_POLL_MS: '100',
        RENDERMILL_PROVIDER_BATCH_GATHER_MS: '300',
      },
      simulator: { batchLineMs: 1 },
    });
  }, 60_000);
  afterAll(async () => h?.stop());
  beforeEach(() => h.sim.reset());

  for (const endpoint of ['files', 'batches'] as const) {
    const lost = endpoint === 'files' ? 'upload' : 'batch creation';
    it(`completes with one file and one batch when the ${lost}’s answer is lost`, async () => {
      h.sim.setKnobs({ batchDropAnswers: { files: 0, batches: 0, [endpoint]: 1 } });
      const body = {
        model: 'gpt-image-2',
        size: '256x256',
        quality: 'low',
        mode: 'provider_batch',
        items: items(20, `lost ${endpoint} mug`),
      };
      const response = await submit(h, body);
      expect(response.statusCode, response.body).toBe(202);
      const { id } = response.json<{ id: string }>();
      const batch = await waitForBatch(h, id, 60_000);

      // The answer really was dropped: the knob ran down.
      expect(h.sim.knobs().batchDropAnswers[endpoint]).toBe(0);
      expect(batch.counts.succeeded).toBe(20);
      const stats = h.sim.stats();
      expect(stats.byEndpoint.files).toBe(1);
      expect(stats.byEndpoint.batches).toBe(1);
      expect(stats.byEndpoint.generations).toBe(0);
      expect(stats.batch.linesCompleted).toBe(20);
      for (const item of body.items) expect(stats.billedImagesByPrompt[item.prompt]).toBe(1);
      const expected = body.items.reduce((sum, item) => sum + batchMicros(item.prompt), 0);
      expect(batch.spent_micros).toBe(expected);
      expect(batch.reserved_micros).toBe(0);

      const parts = await new ProviderBatchStore(h.services.redis).parts(id);
      expect(parts).toHaveLength(1);
      expect(parts[0]).toMatchObject({ status: 'stored', attempt: 0 });
    }, 90_000);
  }
});
