import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator } from '../../infra/simulator/server.js';
import type { Manifest } from '../../src/batches/batch-view.js';
import { startHarness, submit, waitForBatch, auth, type Harness } from '../support/harness.js';

/**
 * The fallback chain: a second provider account (its own simulator, key, limit and model)
 * takes the items the primary cannot render.
 */
let h: Harness;
let backup: Awaited<ReturnType<typeof startSimulator>>;
beforeAll(async () => {
  backup = await startSimulator({ imagesPerMinute: 6000, apiKeys: ['sk-backup'] });
  h = await startHarness({
    env: {
      BACKUP_KEY: 'sk-backup',
      RENDERMILL_FALLBACKS: JSON.stringify([
        {
          name: 'backup',
          base_url: backup.url,
          api_key_env: 'BACKUP_KEY',
          images_per_minute: 3000,
          model: 'gpt-image-1-mini',
        },
      ]),
      RENDERMILL_RETRIES: '2',
      RENDERMILL_RETRY_BASE_MS: '50',
    },
  });
});
afterAll(async () => {
  await h?.stop();
  await backup?.stop();
});
beforeEach(async () => {
  h.sim.reset();
  backup.reset();
  h.sim.setKnobs({ retiredModels: [], errorRate: 0, insufficientQuota: false });
  backup.setKnobs({ insufficientQuota: false });
  const keys = await h.services.redis.keys('rm:limit:*:pause');
  if (keys.length > 0) await h.services.redis.del(...keys);
});

async function run(body: object) {
  const response = await submit(h, body);
  expect(response.statusCode, response.body).toBe(202);
  const batch = await waitForBatch(h, response.json<{ id: string }>().id);
  const manifest = await h.api.inject({
    method: 'GET',
    url: `/v1/batches/${batch.id}/manifest`,
    headers: auth(),
  });
  return manifest.json<Manifest>();
}

const ITEM = { model: 'gpt-image-1', size: '1024x1024', quality: 'low' };

describe('the fallback chain', () => {
  it('renders on the primary while it works, and says so in the manifest', async () => {
    const manifest = await run({ ...ITEM, items: [{ id: 'p', prompt: 'primary' }] });
    expect(manifest.items[0]).toMatchObject({
      status: 'succeeded',
      provider: 'primary',
      model: 'gpt-image-1',
      requested_model: 'gpt-image-1',
    });
    expect(backup.stats().requests).toBe(0);
  });

  it.each([
    ['the model is retired there', { retiredModels: ['gpt-image-1'] }, 1],
    ['it keeps failing', { errorRate: 1 }, 3],
    ['it is out of quota', { insufficientQuota: true }, 1],
  ])(
    'moves an item to the next account when %s, with that one’s model and price',
    async (why, knobs, primaryCalls) => {
      h.sim.setKnobs(knobs);
      // A prompt per row: one rendered before would come from the cache, with no call at all.
      const manifest = await run({ ...ITEM, items: [{ id: 'f', prompt: `fallback: ${why}` }] });
      const item = manifest.items[0]!;
      expect(item).toMatchObject({
        status: 'succeeded',
        provider: 'backup',
        model: 'gpt-image-1-mini',
        requested_model: 'gpt-image-1',
      });
      expect(h.sim.stats().requests).toBe(primaryCalls);
      expect(h.sim.stats().billedImages).toBe(0);
      expect(backup.stats().billedImagesByModel).toEqual({ 'gpt-image-1-mini': 1 });
      // Priced as gpt-image-1-mini at low quality (~$0.005), not gpt-image-1 (~$0.011).
      expect(item.cost_usd).toBeGreaterThan(0);
      expect(item.cost_usd).toBeLessThan(0.008);
    },
  );

  it('fails an item, rather than calling again for ever, when one account keeps failing and the next is paused', async () => {
    h.sim.setKnobs({ errorRate: 1 });
    backup.setKnobs({ insufficientQuota: true });
    const manifest = await run({ ...ITEM, items: [{ id: 'x', prompt: 'nowhere' }] });
    const item = manifest.items[0]!;
    expect(item.status).toBe('failed');
    expect(item.error?.code).toBe('provider_unavailable'); // the primary's, not the pause
    expect(h.sim.stats().requests).toBe(3); // one call and two retries, once
    expect(backup.stats().requests).toBe(1);
  });

  it('skips a fallback whose model cannot render the item', async () => {
    // gpt-image-1-mini has no 256x256: the backup cannot take a 256x256 gpt-image-2 item.
    h.sim.setKnobs({ retiredModels: ['gpt-image-2'] });
    const manifest = await run({
      model: 'gpt-image-2',
      size: '256x256',
      quality: 'low',
      items: [{ id: 's', prompt: 'small' }],
    });
    expect(manifest.items[0]!.error?.code).toBe('model_unavailable');
    expect(backup.stats().requests).toBe(0);
  });
});
