import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRegistry } from '../../src/models/model-registry.js';
import { simulatedModelLimits } from '../../src/runtime/embedded-provider.js';
import { runToManifest, startHarness, type Harness } from '../support/harness.js';

/**
 * gpt-image-2 at usage tier 1 allows 5 images a minute. The minute is shortened five times on
 * both sides (the simulator's `minuteMs`, rendermill's RENDERMILL_LIMIT_MINUTE_MS) — the
 * limiter itself is never skipped: one image every 2.4 s instead of every 12 s.
 */
const MINUTE_MS = 12_000;
const GAP_MS = MINUTE_MS / 5;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    // The simulator plays a tier-1 account: every model limited as the registry says.
    simulator: {
      imagesPerMinute: 0,
      modelLimits: simulatedModelLimits(ModelRegistry.load(), { tier: 1 }),
      minuteMs: MINUTE_MS,
      latencyMs: 50,
    },
    env: {
      RENDERMILL_TIER: '1',
      RENDERMILL_IMAGES_PER_MINUTE: '', // the tier's row decides
      RENDERMILL_LIMIT_MINUTE_MS: String(MINUTE_MS),
    },
  });
});
afterAll(() => h?.stop());

describe('the limits of gpt-image-2 at tier 1 (5 images a minute)', () => {
  it('renders n=4 items, split into calls of one image spaced across the minute, without a 429', async () => {
    const started = Date.now();
    const manifest = await runToManifest(
      h,
      {
        model: 'gpt-image-2',
        size: '256x256',
        quality: 'low',
        n: 4,
        items: [1, 2, 3, 4].map((i) => ({ id: `sku-${i}`, prompt: `a lamp, angle ${i}` })),
      },
      'acme',
      90_000,
    );
    const elapsed = Date.now() - started;

    expect(manifest.items.map((item) => [item.status, item.images.length])).toEqual(
      [1, 2, 3, 4].map(() => ['succeeded', 4]),
    );
    const stats = h.sim.stats();
    expect(stats.rateLimited).toBe(0);
    // Sixteen calls of one image: never more than one in the provider's window.
    expect(stats.billedImages).toBe(16);
    expect(stats.requests).toBe(16);
    expect(stats.maxImagesInWindow['gpt-image-2']).toBe(1);
    // Spaced, not refused: fifteen gaps of a window each.
    expect(elapsed).toBeGreaterThanOrEqual(15 * GAP_MS);
    expect(elapsed).toBeLessThan(15 * GAP_MS * 1.25);
  });
});
