import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textTokens } from '../../infra/simulator/server.js';
import { ProviderBatchStore } from '../../src/batches/provider-batch-store.js';
import { auth, startHarness, submit, waitForBatch, type Harness } from '../support/harness.js';

/** gpt-image-2's token rates (USD per million = micro-dollars per token) and low 256² output. */
const RATES = { text: 5, output: 32 };
const OUTPUT_TOKENS_256_LOW = Math.ceil((272 * 256 * 256) / (1024 * 1024));

/** What one 256² low image of `prompt` costs realtime, in micro-dollars. */
const realtimeMicros = (prompt: string) =>
  Math.ceil(textTokens(prompt) * RATES.text + OUTPUT_TOKENS_256_LOW * RATES.output);
/** The same at the Batch API's half price, rounded up per line as rendermill settles it. */
const batchMicros = (prompt: string) => Math.ceil(realtimeMicros(prompt) * 0.5);

const items = (count: number, prefix: string) =>
  Array.from({ length: count }, (_, i) => ({ id: `sku-${i}`, prompt: `${prefix} product ${i}` }));

const base = { model: 'gpt-image-2', size: '256x256', quality: 'low' };

describe('provider batch mode', () => {
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

  it('renders a batch through the Batch API at half price, billed once, then all from the cache', async () => {
    const body = { ...base, mode: 'provider_batch', items: items(40, 'teal mug') };
    const response = await submit(h, body);
    expect(response.statusCode, response.body).toBe(202);
    const { id } = response.json<{ id: string }>();
    const batch = await waitForBatch(h, id, 60_000);
    expect(batch.counts.succeeded).toBe(40);
    const stats = h.sim.stats();
    expect(stats.byEndpoint.batches).toBe(1);
    expect(stats.byEndpoint.files).toBe(1);
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
    expect(h.sim.stats().byEndpoint.files).toBe(1);
  }, 90_000);
});
