import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/batches/batch-view.js';
import {
  runToManifest,
  startHarness,
  submit,
  waitForBatch,
  type Harness,
} from '../support/harness.js';

/**
 * Caps beyond a batch's own budget — a tenant's month, everyone's day — and the manifest
 * written while a long batch runs. globex may spend $0.05 a month: three DALL·E 2 thumbnails.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    simulator: { imagesPerMinute: 600, latencyMs: 50 },
    env: {
      RENDERMILL_TENANT_BUDGETS_USD: '{"globex": 0.05}',
      RENDERMILL_DAILY_BUDGET_USD: '100',
      RENDERMILL_MANIFEST_CHECKPOINT_MS: '1000',
    },
  });
});
afterAll(async () => {
  await h?.stop();
});

const DALLE2 = { model: 'dall-e-2', size: '256x256' } as const; // $0.016 an image

const run = (body: object, tenant: 'acme' | 'globex') => runToManifest(h, body, tenant);

/**
 * The stored manifest.json, or undefined while it is being overwritten: s3rver writes objects
 * in place, so a read racing a checkpoint's write can see half a file (S3 itself cannot).
 */
async function readManifest(id: string): Promise<Manifest | undefined> {
  const stored = await h.s3.storage.get(`batches/${id}/manifest.json`);
  try {
    return stored && (JSON.parse(stored.body.toString()) as Manifest);
  } catch {
    return undefined;
  }
}

describe('spend caps', () => {
  it('holds a tenant’s monthly budget across batches, while cache hits still complete at $0', async () => {
    const first = await run(
      {
        ...DALLE2,
        items: [
          { id: 'a', prompt: 'globex one' },
          { id: 'b', prompt: 'globex two' },
        ],
      },
      'globex',
    );
    expect(first.batch.counts.succeeded).toBe(2);
    const billed = h.sim.stats().billedImages;

    // $0.032 of $0.05 spent: one more image fits, the other two new ones do not.
    const second = await run(
      {
        ...DALLE2,
        items: [
          { id: 'a', prompt: 'globex one' },
          { id: 'b', prompt: 'globex two' },
          { id: 'c', prompt: 'globex three' },
          { id: 'd', prompt: 'globex four' },
          { id: 'e', prompt: 'globex five' },
        ],
      },
      'globex',
    );
    expect(second.batch.counts).toMatchObject({ cached: 2, succeeded: 1, budget_exceeded: 2 });
    expect(h.sim.stats().billedImages - billed).toBe(1);
    const refused = second.items.filter((i) => i.status === 'budget_exceeded');
    for (const item of refused) {
      expect(item.error?.message).toMatch(/tenant "globex"'s budget for \d{4}-\d{2} cannot hold/);
      expect(item.cost_usd).toBe(0);
    }
    const month = `tenant:globex:${new Date().toISOString().slice(0, 7)}`;
    const totals = await h.services.store.capTotals([month]);
    expect(totals[month]).toEqual({ spent: 48_000, reserved: 0 });

    // Another tenant is not held by globex's cap.
    const acme = await run({ ...DALLE2, items: [{ id: 'z', prompt: 'acme anything' }] }, 'acme');
    expect(acme.batch.counts.succeeded).toBe(1);
    const day = `day:${new Date().toISOString().slice(0, 10)}`;
    expect((await h.services.store.capTotals([day]))[day]!.spent).toBe(4 * 16_000);
  });

  it('checkpoints the manifest while a long batch runs', async () => {
    // 30 images at 600/min take about 3 s; a checkpoint is due every second.
    const items = Array.from({ length: 30 }, (_, i) => ({
      id: `c${i}`,
      prompt: `checkpoint ${i}`,
    }));
    const response = await submit(h, { ...DALLE2, items }, 'acme');
    const { id } = response.json<{ id: string }>();
    let partial: Manifest | undefined;
    const deadline = Date.now() + 20_000;
    while (!partial && Date.now() < deadline) {
      const manifest = await readManifest(id);
      if (manifest?.partial) partial = manifest;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(partial, 'no checkpoint was written while the batch ran').toBeDefined();
    const done = partial!.items.filter((i) => i.status === 'succeeded').length;
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(30);

    await waitForBatch(h, id);
    const final = JSON.parse(
      (await h.s3.storage.get(`batches/${id}/manifest.json`))!.body.toString(),
    ) as Manifest;
    expect(final.partial).toBe(false);
    expect(final.batch.counts.succeeded).toBe(30);
  });
});
