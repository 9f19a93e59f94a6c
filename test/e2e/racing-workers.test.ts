import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../infra/simulator/server.js';
import { findFreePort } from '../../src/runtime/free-port.js';
import { apiClient } from '../support/api-client.js';
import { processEnv, startCli } from '../support/cli.js';
import { startTestRedis } from '../support/redis-server.js';
import { startTestS3 } from '../support/s3-server.js';

/**
 * Money under concurrency, the way production runs: eight `rendermill worker` processes race
 * on one batch against a real redis-server, s3rver and the simulator, which counts every image
 * it bills. One of them is then killed with SIGKILL in the middle of a batch.
 */
const WORKERS = 8;
const CONCURRENCY = 4;
const PRICE = 16_000; // dall-e-2 256x256, in micro-dollars
const KEY = 'acme-key-0123456789abcdef';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let s3: Awaited<ReturnType<typeof startTestS3>>;
let sim: Awaited<ReturnType<typeof startSimulator>>;
let apiUrl: string;
const processes: ReturnType<typeof startCli>[] = [];
const workers: ReturnType<typeof startCli>[] = [];

beforeAll(async () => {
  [redis, s3, sim] = await Promise.all([
    startTestRedis(),
    startTestS3('rendermill'),
    startSimulator({ imagesPerMinute: 60_000, latencyMs: 100 }),
  ]);
  const port = await findFreePort();
  apiUrl = `http://127.0.0.1:${port}`;
  const env = processEnv(
    { redis, s3, sim },
    {
      RENDERMILL_IMAGES_PER_MINUTE: '60000',
      RENDERMILL_CONCURRENCY: String(CONCURRENCY),
      // A killed worker's jobs are taken over after 3 s rather than BullMQ's 30.
      RENDERMILL_JOB_LOCK_MS: '3000',
      RENDERMILL_API_KEYS: `acme=${KEY}`,
      PORT: String(port),
    },
  );
  const api = startCli(['api'], env);
  processes.push(api);
  for (let i = 0; i < WORKERS; i++) workers.push(startCli(['worker'], env));
  processes.push(...workers);
  await Promise.all([
    api.waitFor(/API listening/, 60_000),
    ...workers.map((w) => w.waitFor(/worker started/, 60_000)),
  ]);
}, 120_000);

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all([sim?.stop(), s3?.stop(), redis?.stop()]);
});

const api = apiClient(() => apiUrl, KEY);
const post = (body: object) => api.post(body);
const manifestWhenDone = (id: string) => api.manifestWhenDone(id, 90_000, 100);

const items = (tag: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `${tag}-${i}`, prompt: `${tag} ${i}` }));

describe(`${WORKERS} worker processes`, () => {
  it('buy exactly what the budget holds: k images billed, spend within the cap to the micro-dollar', async () => {
    sim.reset();
    const k = 7;
    const { id } = await post({
      model: 'dall-e-2',
      size: '256x256',
      budget_usd: (k * PRICE) / 1e6,
      items: items('race', 40),
    });
    const manifest = await manifestWhenDone(id);
    expect(sim.stats().billedImages).toBe(k);
    expect(manifest.batch.counts).toMatchObject({ succeeded: k, budget_exceeded: 40 - k });
    expect(Math.round(manifest.batch.spend_usd * 1e6)).toBe(k * PRICE);
    expect(manifest.batch.reserved_usd).toBe(0);
    // The work really was spread: more than one process rendered.
    const rendering = workers.filter((w) => /"status":"succeeded"/.test(w.output()));
    expect(rendering.length).toBeGreaterThan(1);
  });

  it('lose nothing when one is killed with SIGKILL mid-batch, and buy again at most what it had in flight', async () => {
    sim.reset();
    sim.setKnobs({ latencyMs: 400 });
    const count = 60;
    const { id } = await post({ model: 'dall-e-2', size: '256x256', items: items('kill', count) });
    while (sim.stats().billedImages < 10) await new Promise((r) => setTimeout(r, 20));
    const victim = workers.find((w) => /"item":"kill-/.test(w.output())) ?? workers[0]!;
    victim.child.kill('SIGKILL');
    await victim.exited;

    const manifest = await manifestWhenDone(id);
    expect(manifest.batch.counts.total).toBe(count);
    expect(
      manifest.items.filter((i) => i.status === 'succeeded' || i.status === 'cached'),
    ).toHaveLength(count);
    const keys = new Set(await s3.storage.list('images/'));
    for (const item of manifest.items) expect(keys.has(item.images[0]!.key)).toBe(true);

    const billed = sim.stats().billedImages;
    expect(billed).toBeLessThanOrEqual(count + CONCURRENCY);
    // Spend is never under-counted: every image the provider billed is in it.
    expect(Math.round(manifest.batch.spend_usd * 1e6)).toBeGreaterThanOrEqual(billed * PRICE);
    expect(manifest.batch.reserved_usd).toBe(0);
    sim.setKnobs({ latencyMs: 100 });
  });
});
