import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../infra/simulator/server.js';
import { findFreePort } from '../../src/runtime/free-port.js';
import { apiClient } from '../support/api-client.js';
import { processEnv, startCli } from '../support/cli.js';
import { startTestRedis } from '../support/redis-server.js';
import { startTestS3 } from '../support/s3-server.js';

/**
 * The production shape: `rendermill api` and two `rendermill worker` processes pointed by the
 * environment at an external redis-server, S3 server and OpenAI-compatible provider.
 */
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let s3: Awaited<ReturnType<typeof startTestS3>>;
let sim: Awaited<ReturnType<typeof startSimulator>>;
let env: NodeJS.ProcessEnv;
let apiUrl: string;
const processes: ReturnType<typeof startCli>[] = [];
const KEY = 'acme-key-0123456789abcdef';

beforeAll(async () => {
  [redis, s3, sim] = await Promise.all([
    startTestRedis(),
    startTestS3('rendermill'),
    startSimulator({ imagesPerMinute: 6000 }),
  ]);
  const port = await findFreePort();
  apiUrl = `http://127.0.0.1:${port}`;
  env = processEnv(
    { redis, s3, sim },
    {
      RENDERMILL_IMAGES_PER_MINUTE: '6000',
      RENDERMILL_API_KEYS: `acme=${KEY}`,
      PORT: String(port),
    },
  );
  const api = startCli(['api'], env);
  processes.push(api);
  await api.waitFor(/API listening/);
}, 60_000);

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all([sim?.stop(), s3?.stop(), redis?.stop()]);
});

async function startWorker() {
  const worker = startCli(['worker'], env);
  processes.push(worker);
  await worker.waitFor(/worker started/);
  return worker;
}

const api = apiClient(() => apiUrl, KEY);
const post = (body: object) => api.post(body);
const manifestWhenDone = (id: string) => api.manifestWhenDone(id, 60_000, 200);

describe('api + two workers on external Redis, S3 and provider', () => {
  it('complete a 150-item batch: every image in the bucket, spend = the registry’s prices', async () => {
    await startWorker();
    await startWorker();
    sim.reset();
    const items = Array.from({ length: 150 }, (_, i) => ({
      id: `sku-${i}`,
      prompt: `catalog item ${i}`,
    }));
    const { id } = await post({ model: 'dall-e-2', size: '256x256', items });
    const manifest = await manifestWhenDone(id);

    expect(manifest.batch.counts).toMatchObject({ total: 150, succeeded: 150 });
    expect(Math.round(manifest.batch.spend_usd * 1e6)).toBe(150 * 16_000);
    const keys = await s3.storage.list('images/');
    for (const item of manifest.items) expect(keys).toContain(item.images[0]!.key);
    expect(sim.stats().billedImages).toBe(150);
  });

  it('a worker stopped with SIGTERM mid-batch finishes its jobs and loses none', async () => {
    sim.reset();
    sim.setKnobs({ latencyMs: 400 });
    const workers = processes.filter(
      (p) => p.output().includes('worker started') && p.child.exitCode === null,
    );
    expect(workers.length).toBe(2);
    const items = Array.from({ length: 40 }, (_, i) => ({
      id: `t-${i}`,
      prompt: `shutdown item ${i}`,
    }));
    const { id } = await post({ model: 'dall-e-2', size: '256x256', items });
    while (sim.stats().billedImages < 5) await new Promise((resolve) => setTimeout(resolve, 50));

    workers[0]!.child.kill('SIGTERM');
    expect(await workers[0]!.exited).toBe(0);
    expect(workers[0]!.output()).toMatch(/stopped/);

    const manifest = await manifestWhenDone(id);
    expect(manifest.batch.counts).toMatchObject({ total: 40, succeeded: 40 });
    // Nothing was bought twice: in-flight calls finished before the worker exited.
    expect(sim.stats().billedImages).toBe(40);
    sim.setKnobs({ latencyMs: 0 });
  });
});
