import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { UnrecoverableError } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliverWebhookHandler } from '../../jobs/deliver-webhook.js';
import type { ItemRecord } from '../../src/contracts/batch-records.js';
import { postWebhook, WebhookTargetRefusedError } from '../../src/webhooks/post-webhook.js';
import { verifyWebhook } from '../../src/webhooks/signature.js';
import { WebhookSecrets } from '../../src/webhooks/webhook-secrets.js';
import { auth, startHarness, submit, waitForBatch, type Harness } from '../support/harness.js';

/**
 * Signed batch webhooks end to end: real redis-server, s3rver, simulator and workers, and a
 * real HTTP receiver on 127.0.0.1 (allowed here by RENDERMILL_ALLOW_PRIVATE_URLS).
 */

interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver: records every request; answers each path from its script, then 200. */
function startReceiver() {
  const deliveries: Delivery[] = [];
  const scripts = new Map<string, number[]>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '/';
      deliveries.push({ path, headers: request.headers, body: Buffer.concat(chunks).toString() });
      if (path === '/hang') return; // never answers
      if (path === '/redirect') {
        response.writeHead(302, { location: '/redirected' }).end();
        return;
      }
      const status = scripts.get(path)?.shift() ?? 200;
      response.writeHead(status, { 'content-type': 'text/plain' }).end(`answer ${status}`);
    });
  });
  return new Promise<{
    url: string;
    port: number;
    deliveries: Delivery[];
    at: (path: string) => Delivery[];
    script: (path: string, statuses: number[]) => void;
    stop: () => Promise<void>;
  }>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        deliveries,
        at: (path) => deliveries.filter((d) => d.path === path),
        script: (path, statuses) => scripts.set(path, [...statuses]),
        stop: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

let h: Harness;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const GLOBEX_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const REFUSED_PROMPT = 'forbidden-webhook-prompt';

beforeAll(async () => {
  receiver = await startReceiver();
  h = await startHarness({
    simulator: { imagesPerMinute: 60_000, contentPolicyPattern: REFUSED_PROMPT },
    env: {
      RENDERMILL_ALLOW_PRIVATE_URLS: 'true',
      RENDERMILL_WEBHOOK_RETRY_BASE_MS: '200',
      RENDERMILL_WEBHOOK_SECRETS: JSON.stringify({ globex: GLOBEX_SECRET }),
    },
  });
});
afterAll(async () => {
  await h?.stop();
  await receiver?.stop();
});

const DALLE2 = { model: 'dall-e-2', size: '256x256' } as const;

async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function secretOf(tenant: 'acme' | 'globex'): Promise<string> {
  const response = await h.api.inject({
    method: 'GET',
    url: '/v1/webhooks/secret',
    headers: auth(tenant),
  });
  expect(response.statusCode).toBe(200);
  return response.json<{ secret: string }>().secret;
}

/** Submits a batch with a webhook to `path` of the receiver; waits for the batch to end. */
async function runWithWebhook(path: string, body: object, tenant: 'acme' | 'globex' = 'acme') {
  const response = await submit(h, { ...body, webhook_url: `${receiver.url}${path}` }, tenant);
  expect(response.statusCode).toBe(202);
  const { id } = response.json<{ id: string }>();
  return waitForBatch(h, id);
}

async function jobState(queue: 'batches' | 'webhooks', jobId: string) {
  const job = await h.services.queue.queue(queue).getJob(jobId);
  return job ? job.getState() : undefined;
}

/** The deliveries to `path`, once there are at least `count`. */
async function deliveriesAt(path: string, count = 1): Promise<Delivery[]> {
  await waitFor(`${count} deliveries to ${path}`, () => receiver.at(path).length >= count);
  return receiver.at(path);
}

const parsed = (d: Delivery) =>
  JSON.parse(d.body) as { type: string; timestamp: string; data: Record<string, unknown> };

describe('batch webhooks', () => {
  it('POSTs batch.completed once, signed as Standard Webhooks says, with the batch and its manifest', async () => {
    const batch = await runWithWebhook('/completed', {
      ...DALLE2,
      items: [
        { id: 'a', prompt: 'webhook mug' },
        { id: 'b', prompt: 'webhook plate' },
      ],
    });
    const [delivery] = await deliveriesAt('/completed');
    const { headers, body } = delivery!;
    expect(headers['content-type']).toBe('application/json');
    expect(headers['webhook-id']).toBe(`evt_${batch.id}`);

    // The signature, computed here independently of rendermill's code.
    const secret = await secretOf('acme');
    const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
    const mac = createHmac('sha256', key)
      .update(`${String(headers['webhook-id'])}.${String(headers['webhook-timestamp'])}.${body}`)
      .digest('base64');
    expect(headers['webhook-signature']).toBe(`v1,${mac}`);
    expect(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);

    const event = verifyWebhook<ReturnType<typeof parsed>>(secret, headers, body);
    expect(Object.keys(event)).toEqual(['type', 'timestamp', 'data']);
    expect(event.type).toBe('batch.completed');
    expect(event.timestamp).toBe(batch.completed_at);
    expect(event.data).toMatchObject({
      id: batch.id,
      status: 'completed',
      counts: { total: 2, succeeded: 2 },
      spend_usd: 0.032,
      manifest_key: `batches/${batch.id}/manifest.json`,
      webhook_url: `${receiver.url}/completed`,
    });
    expect(event.data).not.toHaveProperty('items');

    // A tampered body, or a replay 10 minutes later, does not verify.
    expect(() => verifyWebhook(secret, headers, body.replace('0.032', '0.001'))).toThrow(
      /no webhook-signature matches/,
    );
    expect(() => verifyWebhook(secret, headers, body, { now: Date.now() + 600_000 })).toThrow(
      /more than 300 s/,
    );

    // Finalizing the batch again (a re-run, a late duplicate) sends nothing more.
    const again = `again-${batch.id}`;
    await h.services.queue.add('finalize-batch', { batchId: batch.id }, again);
    await waitFor(
      'the second finalize',
      async () => (await jobState('batches', again)) === 'completed',
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.at('/completed')).toHaveLength(1);
  });

  it('POSTs batch.budget_exhausted when an item hit the budget', async () => {
    // $0.016 an image: $0.02 buys one of two.
    const batch = await runWithWebhook('/budget', {
      ...DALLE2,
      budget_usd: 0.02,
      items: [
        { id: 'a', prompt: 'webhook budget 1' },
        { id: 'b', prompt: 'webhook budget 2' },
      ],
    });
    expect(batch.counts.budget_exceeded).toBe(1);
    const [delivery] = await deliveriesAt('/budget');
    expect(parsed(delivery!).type).toBe('batch.budget_exhausted');
    expect(parsed(delivery!).data).toMatchObject({ counts: { succeeded: 1, budget_exceeded: 1 } });
  });

  it('POSTs batch.failed when no item rendered', async () => {
    await runWithWebhook('/failed', {
      ...DALLE2,
      items: [
        { id: 'a', prompt: `${REFUSED_PROMPT} 1` },
        { id: 'b', prompt: `${REFUSED_PROMPT} 2` },
      ],
    });
    const [delivery] = await deliveriesAt('/failed');
    expect(parsed(delivery!).type).toBe('batch.failed');
    expect(parsed(delivery!).data).toMatchObject({ counts: { failed: 2 } });
  });

  it('sends nothing for a checkpoint, then batch.cancelled when a cancelled batch ends', async () => {
    const batchId = `batch_wh_cancel_${Date.now()}`;
    const item = (id: string, index: number): ItemRecord => ({
      id,
      index,
      status: 'queued',
      spec: { operation: 'generate', model: 'dall-e-2', prompt: id, size: '256x256', n: 1 },
      hash: `hash-${id}`,
      cost_micros: 0,
      images: [],
      attempts: 0,
      updated_at: new Date().toISOString(),
    });
    const items = [item('x', 0), item('y', 1)];
    // Recorded without render jobs: nothing moves unless this test moves it.
    await h.services.store.create(
      {
        id: batchId,
        tenant: 'acme',
        created_at: new Date().toISOString(),
        metadata: {},
        webhook_url: `${receiver.url}/cancelled`,
      },
      items,
    );
    const checkpoint = `checkpoint-${batchId}`;
    await h.services.queue.add('finalize-batch', { batchId }, checkpoint);
    await waitFor(
      'the checkpoint',
      async () => (await jobState('batches', checkpoint)) === 'completed',
    );
    const partial = await h.services.storage.get(`batches/${batchId}/manifest.json`);
    expect(JSON.parse(partial!.body.toString())).toMatchObject({ partial: true });
    expect(await jobState('webhooks', `webhook-${batchId}`)).toBeUndefined();

    expect(await h.services.store.markCancelling(batchId, new Date().toISOString())).toBe(true);
    for (const queued of items) await h.services.store.cancelQueuedItem(batchId, queued);
    expect((await h.services.store.get(batchId))?.status).toBe('cancelled');
    await h.services.queue.add('finalize-batch', { batchId }, `finalize-${batchId}`);
    const [delivery] = await deliveriesAt('/cancelled');
    expect(parsed(delivery!).type).toBe('batch.cancelled');
    expect(parsed(delivery!).data).toMatchObject({ id: batchId, counts: { cancelled: 2 } });
  });

  it('retries a receiver that fails, with the same event id and a fresh signature each time', async () => {
    receiver.script('/flaky', [500, 500, 200]);
    const batch = await runWithWebhook('/flaky', {
      ...DALLE2,
      items: [{ id: 'a', prompt: 'webhook flaky' }],
    });
    const tries = await deliveriesAt('/flaky', 3);
    expect(new Set(tries.map((d) => d.headers['webhook-id']))).toEqual(
      new Set([`evt_${batch.id}`]),
    );
    expect(new Set(tries.map((d) => d.body)).size).toBe(1);
    const secret = await secretOf('acme');
    for (const attempt of tries)
      expect(() => verifyWebhook(secret, attempt.headers, attempt.body)).not.toThrow();
    await waitFor(
      'the job to end',
      async () => (await jobState('webhooks', `webhook-${batch.id}`)) === 'completed',
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.at('/flaky')).toHaveLength(3);
  });

  it('stops at 410 Gone: the receiver asked for no more', async () => {
    receiver.script('/gone', [410]);
    const batch = await runWithWebhook('/gone', {
      ...DALLE2,
      items: [{ id: 'a', prompt: 'webhook gone' }],
    });
    await waitFor(
      'the job to fail',
      async () => (await jobState('webhooks', `webhook-${batch.id}`)) === 'failed',
    );
    await new Promise((resolve) => setTimeout(resolve, 800)); // two backoffs' worth
    expect(receiver.at('/gone')).toHaveLength(1);
  });

  it('signs with the secret the operator fixed for a tenant', async () => {
    await runWithWebhook(
      '/globex',
      { ...DALLE2, items: [{ id: 'a', prompt: 'webhook globex' }] },
      'globex',
    );
    const [delivery] = await deliveriesAt('/globex');
    expect(verifyWebhook(GLOBEX_SECRET, delivery!.headers, delivery!.body)).toMatchObject({
      type: 'batch.completed',
    });
    expect(() =>
      verifyWebhook(GLOBEX_SECRET.replace('Bw', 'Bx'), delivery!.headers, delivery!.body),
    ).toThrow();
  });
});

describe('delivery refuses targets the guard refuses', () => {
  const logger = pino({ level: 'silent' });
  const event = {
    id: 'evt_guard',
    type: 'batch.completed',
    timestamp: new Date().toISOString(),
    data: {},
  };

  it('ends the job for good, before connecting, when the URL is now refused', async () => {
    const deliver = createDeliverWebhookHandler({
      secrets: new WebhookSecrets(h.services.state),
      allowPrivate: false,
      logger,
    });
    for (const url of [
      `${receiver.url}/guarded`,
      `http://${hostname()}:${receiver.port}/guarded`,
    ]) {
      await expect(
        deliver.process({ tenant: 'acme', url, event }, { attempt: 1, maxAttempts: 14 }),
      ).rejects.toBeInstanceOf(UnrecoverableError);
    }
    expect(receiver.at('/guarded')).toHaveLength(0);
  });

  it('checks the addresses it connects to, so a name rebound to a private address is refused', async () => {
    await expect(
      postWebhook(
        `http://${hostname()}:${receiver.port}/rebound`,
        '{}',
        {},
        { allowPrivate: false },
      ),
    ).rejects.toBeInstanceOf(WebhookTargetRefusedError);
    expect(receiver.at('/rebound')).toHaveLength(0);
  });

  it('does not follow redirects, and gives up on a receiver that does not answer in time', async () => {
    const redirected = await postWebhook(
      `${receiver.url}/redirect`,
      '{}',
      {},
      { allowPrivate: true },
    );
    expect(redirected.status).toBe(302);
    expect(receiver.at('/redirected')).toHaveLength(0);
    const started = Date.now();
    await expect(
      postWebhook(`${receiver.url}/hang`, '{}', {}, { allowPrivate: true, timeoutMs: 300 }),
    ).rejects.toThrow(/within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('GET /v1/webhooks/secret and POST /v1/webhooks/secret/rotate', () => {
  it('gives each tenant its own secret, made once and kept', async () => {
    const acme = await secretOf('acme');
    expect(acme).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(await secretOf('acme')).toBe(acme);
    expect(await secretOf('globex')).toBe(GLOBEX_SECRET);
    const anonymous = await h.api.inject({ method: 'GET', url: '/v1/webhooks/secret' });
    expect(anonymous.statusCode).toBe(401);
  });

  it('rotates to a new secret, still signing with the old one beside it for a while', async () => {
    const before = await secretOf('acme');
    const rotated = await h.api.inject({
      method: 'POST',
      url: '/v1/webhooks/secret/rotate',
      headers: auth('acme'),
    });
    expect(rotated.statusCode).toBe(200);
    const after = rotated.json<{ secret: string }>().secret;
    expect(after).toMatch(/^whsec_/);
    expect(after).not.toBe(before);
    expect(await secretOf('acme')).toBe(after);
    expect(await secretOf('globex')).toBe(GLOBEX_SECRET);

    await runWithWebhook('/rotated', {
      ...DALLE2,
      items: [{ id: 'a', prompt: 'webhook rotated' }],
    });
    const [delivery] = await deliveriesAt('/rotated');
    expect(String(delivery!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const secret of [after, before]) {
      expect(() => verifyWebhook(secret, delivery!.headers, delivery!.body)).not.toThrow();
    }
  });

  it('are in the OpenAPI document', async () => {
    const doc = (await h.api.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, unknown>;
    }>();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/webhooks/secret', '/v1/webhooks/secret/rotate']),
    );
  });

  it('refuses to rotate a secret the operator fixed, with 409', async () => {
    const response = await h.api.inject({
      method: 'POST',
      url: '/v1/webhooks/secret/rotate',
      headers: auth('globex'),
    });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ error: { code: 'webhook_secret_fixed' } });
    expect(await secretOf('globex')).toBe(GLOBEX_SECRET);
  });
});
