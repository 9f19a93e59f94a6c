import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/batches/batch-view.js';
import { cleanEnv, runCli, type CliRun } from '../support/cli.js';

/** `rendermill render` on the shipped example catalog and template. */
const RENDER_EXAMPLE = [
  'render',
  'examples/catalog.csv',
  '--template',
  'examples/thumbnail.template.txt',
];

let dataDir: string;
let run: CliRun;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-e2e-'));
  // Nothing configured: Redis, S3 and the provider are all embedded, as in README's first command.
  run = await runCli(
    [
      ...RENDER_EXAMPLE,
      '--size',
      '256x256',
      '--quality',
      'low',
      '--budget',
      '1',
      '--out',
      path.join(dataDir, 'out'),
    ],
    cleanEnv({ RENDERMILL_DATA_DIR: dataDir, RENDERMILL_IMAGES_PER_MINUTE: '3000' }),
  );
}, 120_000);

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('rendermill render on the example catalog', () => {
  it('exits 0 and says what was embedded and what happened', () => {
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/embedded Redis: private redis-server/);
    expect(run.stdout).toMatch(/embedded S3: local S3 server/);
    expect(run.stdout).toMatch(/embedded Provider: simulator/);
    expect(run.stdout).toMatch(/Batch batch_\w+ completed in [\d.]+ s: 50 images/);
    expect(run.stdout).toMatch(/50 total · 50 rendered · 0 cached · 0 failed · 0 over budget/);
  });

  it('leaves 50 PNGs of the requested size and a complete manifest', async () => {
    const out = path.join(dataDir, 'out');
    const files = await readdir(out);
    const pngs = files.filter((f) => f.endsWith('.png'));
    expect(pngs).toHaveLength(50);
    expect(pngs).toContain('SKU-1001.png');
    const meta = await sharp(path.join(out, 'SKU-1001.png')).metadata();
    expect([meta.width, meta.height]).toEqual([256, 256]);

    const manifest = JSON.parse(
      await readFile(path.join(out, 'manifest.json'), 'utf8'),
    ) as Manifest;
    expect(manifest.items).toHaveLength(50);
    expect(manifest.items.every((i) => i.status === 'succeeded' && i.images.length === 1)).toBe(
      true,
    );
    const sum = manifest.items.reduce((s, i) => s + Math.round(i.cost_usd * 1e6), 0);
    expect(Math.round(manifest.batch.spend_usd * 1e6)).toBe(sum);
    expect(manifest.batch.spend_usd).toBeLessThanOrEqual(1);
    expect(manifest.items[0]?.prompt).toMatch(/Merino Crew-Neck Sweater in charcoal/);
  });

  it('stored the images and the manifest in the local bucket', async () => {
    const bucketDir = path.join(dataDir, 's3', 'rendermill');
    const listing = await readdir(bucketDir, { recursive: true });
    expect(listing.filter((f) => /images\/.+\.png\._S3rver_object$/.test(f))).toHaveLength(50);
    expect(listing.some((f) => /batches\/batch_\w+\/manifest\.json\._S3rver_object$/.test(f))).toBe(
      true,
    );
  });

  it('re-runs the same catalog from the cache: nothing rendered, $0 spent', async () => {
    const again = await runCli(
      [...RENDER_EXAMPLE, '--size', '256x256', '--quality', 'low', '--budget', '1'],
      cleanEnv({ RENDERMILL_DATA_DIR: dataDir, RENDERMILL_IMAGES_PER_MINUTE: '3000' }),
    );
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/50 total · 0 rendered · 50 cached · 0 failed · 0 over budget/);
    expect(again.stdout).toMatch(
      /spend {5}\$0\.0000 of \$1\.0000 budget · \$0\.04\d+ saved by the cache/,
    );
  }, 120_000);
});

describe('rendermill render, refusing what it cannot do', () => {
  it('names the install command when redis-server is missing', async () => {
    const result = await runCli(
      RENDER_EXAMPLE,
      cleanEnv({ PATH: '/nonexistent', RENDERMILL_DATA_DIR: dataDir }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /redis-server is not installed\. Install it with: sudo apt-get install -y redis-server/,
    );
  });

  it('names the catalog line and field of a bad item, before anything runs', async () => {
    const result = await runCli(
      [...RENDER_EXAMPLE, '--size', '300x300', '--model', 'dall-e-2'],
      cleanEnv({ RENDERMILL_DATA_DIR: dataDir }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /size "300x300" is not offered by dall-e-2; allowed: 256x256, 512x512, 1024x1024/,
    );
  });

  it('names the catalog line of a row that makes a bad request', async () => {
    const catalog = path.join(dataDir, 'long.csv');
    await writeFile(catalog, `sku,title\nA1,Mug\nA2,${'very long title '.repeat(80)}\nA3,Plate\n`);
    const result = await runCli(
      [
        'render',
        catalog,
        '--template',
        'Photo of {{title}}',
        '--model',
        'dall-e-2',
        '--size',
        '256x256',
      ],
      cleanEnv({ RENDERMILL_DATA_DIR: dataDir }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /catalog line 3: items\[1\]\.prompt: prompt is 1\d{3} characters; dall-e-2 allows at most 1000/,
    );
  });

  it('exits 2 when the batch completes with items over budget', async () => {
    const result = await runCli(
      [
        ...RENDER_EXAMPLE,
        '--model',
        'dall-e-2',
        '--size',
        '256x256',
        '--budget',
        '0.05',
        '--out',
        path.join(dataDir, 'over'),
      ],
      cleanEnv({ RENDERMILL_DATA_DIR: dataDir, RENDERMILL_IMAGES_PER_MINUTE: '3000' }),
    );
    expect(result.code, result.stderr).toBe(2);
    // $0.05 buys three $0.016 images; the other 47 rows are refused before any call.
    expect(result.stdout).toMatch(/50 total · 3 rendered · 0 cached · 0 failed · 47 over budget/);
    expect(result.stdout).toMatch(/spend {5}\$0\.0480 of \$0\.0500 budget/);
  });

  it('names a template column the catalog lacks', async () => {
    const result = await runCli(
      ['render', 'examples/catalog.csv', '--template', 'A {{brand}} {{title}}'],
      cleanEnv({ RENDERMILL_DATA_DIR: dataDir }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /the template uses \{\{brand\}\} but the catalog has no such column/,
    );
  });

  it('reports configuration errors in one readable block', async () => {
    const result = await runCli(
      RENDER_EXAMPLE,
      cleanEnv({ RENDERMILL_TIER: 'free', RENDERMILL_DATA_DIR: dataDir }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /invalid configuration:\n {2}RENDERMILL_TIER: the free tier cannot use the Images API/,
    );
  });
});

describe('rendermill render --mode provider_batch', () => {
  it('renders through the Batch API, following its phase, and names the provider batch', async () => {
    const catalog = path.join(dataDir, 'batched.csv');
    await writeFile(catalog, 'sku,title\nB1,Teapot\nB2,Kettle\nB3,Saucer\n');
    const result = await runCli(
      [
        'render',
        catalog,
        '--template',
        'Photo of a {{title}} on linen',
        '--model',
        'gpt-image-2',
        '--size',
        '256x256',
        '--quality',
        'low',
        '--mode',
        'provider_batch',
        '--out',
        path.join(dataDir, 'batched'),
      ],
      cleanEnv({
        RENDERMILL_DATA_DIR: dataDir,
        RENDERMILL_BATCH_API: 'true',
        RENDERMILL_PROVIDER_BATCH_POLL_MS: '100',
        RENDERMILL_PROVIDER_BATCH_GATHER_MS: '300',
      }),
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/3 total · 3 rendered/);
    expect(result.stdout).toMatch(/provider batch (storing|stored) 3\/3 \| 3\/3 done/);
    expect(result.stdout).toMatch(/mode {6}provider_batch · provider batch batch_\w+\n/);
    const manifest = JSON.parse(
      await readFile(path.join(dataDir, 'batched', 'manifest.json'), 'utf8'),
    ) as { batch: { provider_batches: { provider_batch_id: string }[] } };
    expect(manifest.batch.provider_batches).toHaveLength(1);
  }, 120_000);
});
