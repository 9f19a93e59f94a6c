import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../infra/simulator/server.js';
import { findFreePort } from '../../src/runtime/free-port.js';
import { apiClient } from '../support/api-client.js';
import { processEnv, startCli } from '../support/cli.js';
import { startTestRedis } from '../support/redis-server.js';
import { startTestS3 } from '../support/s3-server.js';

/**
 * SIGTERM to real `rendermill worker` and `rendermill api` processes, as `docker stop` or a
 * rolling deploy sends it: nothing is lost, nothing is bought twice, and the process exits 0
 * within its bound. The simulator answers after 500 ms so that calls are in flight, and
 * rendermill paces 180 images a minute across every worker, 3 a second for 16 jobs at once,
 * so that most of a worker's jobs are waiting for the limiter when the signal comes: those
 * are the ones handed back.
 */
const KEY = 'acme-key-0123456789abcdef';
const PRICE = 16_000; // dall-e-2 256x256, in micro-dollars
const GRACE_MS = 500;
const LATENCY_MS = 500;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let s3: Awaited<ReturnType<typeof startTestS3>>;
let sim: Awaited<ReturnType<typeof startSimulator>>;
let bull: Redis;
let renderQueue: Queue;
let env: NodeJS.ProcessEnv;
let apiUrl: string;
const processes: ReturnType<typeof startCli>[] = [];

type Cli = ReturnType<typeof startCli>;

beforeAll(async () => {
  [redis, s3, sim] = await Promise.all([
    startTestRedis(),
    startTestS3('rendermill'),
    startSimulator({ imagesPerMinute: 0, latencyMs: LATENCY_MS }),
  ]);
  bull = new Redis(redis.url, { maxRetriesPerRequest: null });
  renderQueue = new Queue('render', { connection: bull, prefix: 'rm:bull' });
  env = processEnv(
    { redis, s3, sim },
    {
      RENDERMILL_IMAGES_PER_MINUTE: '180',
      RENDERMILL_CONCURRENCY: '8',
      RENDERMILL_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      // A worker forced out (second signal) leaves its jobs to the others after 3 s, not 30.
      RENDERMILL_JOB_LOCK_MS: '3000',
      RENDERMILL_API_KEYS: `acme=${KEY}`,
      // Several workers on one host: none of them serves metrics on the fixed default port.
      RENDERMILL_METRICS_PORT: '0',
    },
  );
  const port = await findFreePort();
  apiUrl = `http://127.0.0.1:${port}`;
  const api = start(['api'], port);
  await api.waitFor(/API listening/, 60_000);
}, 90_000);

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await renderQueue?.close();
  bull?.disconnect();
  await Promise.all([sim?.stop(), s3?.stop(), redis?.stop()]);
});

function start(args: string[], port?: number): Cli {
  const cli = startCli(args, port === undefined ? env : { ...env, PORT: String(port) });
  processes.push(cli);
  return cli;
}

async function startWorkers(count: number): Promise<Cli[]> {
  const workers = Array.from({ length: count }, () => start(['worker']));
  await Promise.all(workers.map((w) => w.waitFor(/worker started/, 60_000)));
  return workers;
}

/** Sends `signal` and resolves with the exit code and how long the process took to exit. */
async function stop(cli: Cli, signal: NodeJS.Signals = 'SIGTERM') {
  const started = Date.now();
  cli.child.kill(signal);
  const code = await cli.exited;
  return { code, ms: Date.now() - started };
}

/** The process's pino lines with this message. */
function logLines(cli: Cli, msg: RegExp): Record<string, unknown>[] {
  return cli
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => typeof line.msg === 'string' && msg.test(line.msg));
}

const until = async (done: () => boolean, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

const api = apiClient(() => apiUrl, KEY);
const items = (tag: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `${tag}-${i}`, prompt: `${tag} ${i}` }));

describe('SIGTERM to a worker mid-batch', () => {
  it('exits 0 within its bound, hands waiting jobs back, and the other worker finishes them: nothing lost, nothing billed twice', async () => {
    const [victim, survivor] = await startWorkers(2);
    sim.reset();
    const count = 40;
    const { id } = await api.post({
      model: 'dall-e-2',
      size: '256x256',
      budget_usd: 1,
      items: items('term', count),
    });
    // Mid-batch, with the victim's calls under way and its other jobs waiting for the limiter.
    await until(() => sim.stats().billedImages >= 8 && /"item":"term-/.test(victim!.output()));

    const { code, ms } = await stop(victim!);
    expect(code).toBe(0);
    // The grace period for waiting jobs, then at most one call of 500 ms still in flight.
    expect(ms).toBeLessThan(GRACE_MS + LATENCY_MS + 4_000);
    const output = victim!.output();
    expect(output).toMatch(/"msg":"stopped"/);

    // Its log names what it handed back, and says how many.
    const handedBack = logLines(victim!, /job handed back to the queue/);
    const [closed] = logLines(victim!, /^workers closed/);
    expect(closed?.handedBack).toBe(handedBack.length);
    expect(closed?.jobs).toEqual(handedBack.map((line) => `render/${String(line.job)}`));
    expect(handedBack.length).toBeGreaterThan(0);

    const manifest = await api.manifestWhenDone(id, 60_000, 100);
    expect(manifest.batch.counts).toMatchObject({ total: count, succeeded: count });
    // Nothing was bought twice: one image billed per item, and the spend is what was billed.
    const stats = sim.stats();
    expect(stats.billedImages).toBe(count);
    for (const item of items('term', count)) {
      expect(stats.billedImagesByPrompt[item.prompt]).toBe(1);
    }
    expect(Math.round(manifest.batch.spend_usd * 1e6)).toBe(stats.billedImages * PRICE);
    expect(manifest.batch.reserved_usd).toBe(0);

    // No job lost: every one completed, none failed, and a job handed back used no attempt.
    const jobs = await Promise.all(
      Array.from({ length: count }, (_, index) => renderQueue.getJob(`${id}-${index}`)),
    );
    for (const job of jobs) {
      expect(await job?.getState()).toBe('completed');
      expect(job?.attemptsMade).toBe(1);
    }
    const counts = await renderQueue.getJobCounts(
      'completed',
      'failed',
      'active',
      'waiting',
      'delayed',
    );
    expect(counts).toEqual({
      completed: count, // this file's first batch: the queue holds its jobs only
      failed: 0,
      active: 0,
      waiting: 0,
      delayed: 0,
    });
    // The survivor rendered what the victim handed back.
    for (const line of handedBack) {
      const index = Number(String(line.job).slice(id.length + 1));
      expect(survivor!.output()).toContain(`"item":"term-${index}"`);
    }

    // An idle worker stops at once, with nothing to hand back.
    const idle = await stop(survivor!);
    expect(idle.code).toBe(0);
    expect(idle.ms).toBeLessThan(2_000);
    expect(survivor!.output()).toMatch(/workers closed: no job handed back/);
  }, 60_000);

  it('a second signal forces it out at once, with exit code 1 and a log line', async () => {
    const [victim] = await startWorkers(1);
    sim.setKnobs({ latencyMs: 5_000 });
    try {
      sim.reset();
      const { id } = await api.post({
        model: 'dall-e-2',
        size: '256x256',
        items: items('kill', 2),
      });
      await until(() => sim.stats().inFlight > 0);

      victim!.child.kill('SIGTERM');
      await victim!.waitFor(/shutting down/);
      const { code, ms } = await stop(victim!);
      expect(code).toBe(1);
      expect(ms).toBeLessThan(1_000);
      expect(victim!.output()).toMatch(/second signal: exiting now/);

      // Another worker takes its jobs over once their locks expire: the batch still completes,
      // and what the dead run held for its calls counts as spent (they may have been billed).
      sim.setKnobs({ latencyMs: LATENCY_MS });
      await startWorkers(1);
      const manifest = await api.manifestWhenDone(id, 30_000, 100);
      expect(manifest.batch.counts).toMatchObject({ total: 2, succeeded: 2 });
      expect(manifest.batch.reserved_usd).toBe(0);
      const { billedImagesByPrompt } = sim.stats();
      const billed = (billedImagesByPrompt['kill 0'] ?? 0) + (billedImagesByPrompt['kill 1'] ?? 0);
      expect(Math.round(manifest.batch.spend_usd * 1e6)).toBeGreaterThanOrEqual(billed * PRICE);
    } finally {
      sim.setKnobs({ latencyMs: LATENCY_MS });
    }
  }, 45_000);
});

describe('SIGTERM to the API', () => {
  it('while an Images API request waits for its render: answers it 503 with the batch id at once, and exits 0', async () => {
    // A second API process, the one being stopped; the render itself goes on in a worker.
    const port = await findFreePort();
    const closing = start(['api'], port);
    await closing.waitFor(/API listening/);
    const workers = processes.filter(
      (p) => /worker started/.test(p.output()) && p.child.exitCode === null,
    );
    if (workers.length === 0) await startWorkers(1);
    sim.setKnobs({ latencyMs: 3_000 });
    try {
      sim.reset();
      const body = { model: 'dall-e-2', prompt: 'a lamp, shut down gently', size: '256x256' };
      const request = (url: string) =>
        fetch(`${url}/v1/images/generations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      const waiting = request(`http://127.0.0.1:${port}`);
      await until(() => sim.stats().inFlight > 0); // submitted, and its call is under way

      const signalled = Date.now();
      const stopped = stop(closing);
      const response = await waiting;
      expect(Date.now() - signalled).toBeLessThan(1_500); // not the 3 s the render takes
      expect(response.status).toBe(503);
      const answer = (await response.json()) as { error: { code: string; batch_id: string } };
      expect(answer.error.code).toBe('server_shutting_down');
      expect(answer.error.batch_id).toBe(response.headers.get('x-rendermill-batch-id'));
      expect(response.headers.get('retry-after')).toBe('1');
      const { code, ms } = await stopped;
      expect(code).toBe(0);
      expect(ms).toBeLessThan(3_000);

      // The render went on in its batch; asking again (another API process) does not pay again.
      const manifest = await api.manifestWhenDone(answer.error.batch_id, 20_000, 100);
      expect(manifest.batch.counts).toMatchObject({ total: 1, succeeded: 1 });
      const again = await request(apiUrl);
      expect(again.status).toBe(200);
      expect(again.headers.get('x-rendermill-cached')).toBe('true');
      expect(sim.stats().billedImages).toBe(1);
    } finally {
      sim.setKnobs({ latencyMs: LATENCY_MS });
    }
  }, 45_000);

  it('an idle API exits 0 quickly', async () => {
    const port = await findFreePort();
    const idle = start(['api'], port);
    await idle.waitFor(/API listening/);
    const { code, ms } = await stop(idle);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(2_000);
    expect(idle.output()).toMatch(/"msg":"stopped"/);
  }, 30_000);
});
