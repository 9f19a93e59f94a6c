import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../infra/simulator/server.js';
import {
  ModelUnavailableError,
  PaidResultError,
  PredictionPendingError,
  ProviderAuthError,
  ProviderQuotaError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../src/errors.js';
import { ModelRegistry } from '../../src/models/model-registry.js';
import type { RenderSpec } from '../../src/models/render-spec.js';
import { FalImageProvider } from '../../src/providers/fal-provider.js';

/** The fal adapter against the simulator's fal queue: following, resuming, cancelling, errors. */
let sim: RunningSimulator;
const registry = ModelRegistry.load();
const provider = (options: Partial<ConstructorParameters<typeof FalImageProvider>[0]> = {}) =>
  new FalImageProvider({
    baseURL: `${sim.origin}/fal`,
    apiKey: 'fal-test-key',
    registry,
    timeoutMs: 5000,
    pollMs: 20,
    ...options,
  });
const spec = (s: Partial<RenderSpec> = {}): RenderSpec => ({
  operation: 'generate',
  model: 'flux-schnell',
  prompt: 'a lighthouse at dusk',
  size: '1344x768',
  n: 1,
  ...s,
});
const request = (s: Partial<RenderSpec> = {}) => ({ spec: spec(s), images: [] });

/** What `promise` rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

/** Renders with a short inline follow, returning the pending request it hands back. */
async function pendingRender(p: FalImageProvider, s: Partial<RenderSpec> = {}) {
  const error = await rejection(p.render(request(s)));
  expect(error).toBeInstanceOf(PredictionPendingError);
  return (error as PredictionPendingError).prediction;
}

beforeAll(async () => {
  sim = await startSimulator({ imagesPerMinute: 0 });
});
afterAll(async () => {
  await sim?.stop();
});
beforeEach(() => {
  sim.setKnobs({
    imagesPerMinute: 0,
    failNext: undefined,
    contentPolicyPattern: undefined,
    insufficientQuota: false,
    apiKeys: undefined,
    forbiddenKeys: [],
    errorRate: 0,
    resetRate: 0,
    dropImages: 0,
    queuedMs: 0,
    queuedFailRate: 0,
    urlTtlMs: 3_600_000,
  });
  sim.reset();
});

describe('FalImageProvider against the simulated fal queue', () => {
  it('says what fal can do for flux-schnell', () => {
    const capabilities = provider().capabilities(registry.get('flux-schnell')!);
    expect(capabilities).toEqual({
      operations: ['generate'],
      sizing: 'image_size',
      maxImagesPerCall: 4,
      outputFormats: ['png', 'jpeg'],
      mode: 'queued',
    });
  });

  it('follows a request to completion inline: real images of the size asked, billed once', async () => {
    const result = await provider().render(request({ output_format: 'jpeg' }));
    expect(result.images).toHaveLength(1);
    const meta = await sharp(result.images[0]!.data).metadata();
    expect([result.images[0]!.format, meta.width, meta.height]).toEqual(['jpeg', 1344, 768]);
    expect(result.rate?.refused).toBe(false);
    const stats = sim.stats();
    expect(stats.billedImages).toBe(1);
    expect(stats.billedImagesByModel).toEqual({ 'flux-schnell': 1 });
    expect(stats.byEndpoint.queue).toBe(1);
    // Status polls and result reads are not submissions.
    expect(stats.requests).toBe(1);
  });

  it('renders four different images in one call', async () => {
    const result = await provider().render(
      request({ n: 4, size: '256x256', output_format: 'png' }),
    );
    expect(result.images.map((image) => image.format)).toEqual(['png', 'png', 'png', 'png']);
    expect(new Set(result.images.map((image) => image.data.toString('base64'))).size).toBe(4);
    expect(sim.stats()).toMatchObject({ billedImages: 4, byEndpoint: { queue: 1 } });
  });

  it('hands a slow request back as pending, and resume() collects it billed once', async () => {
    sim.setKnobs({ queuedMs: 600 });
    const p = provider({ followInlineMs: 100, recheckMs: 2000 });
    const before = Date.now();
    const error = await rejection(p.render(request({ size: '256x256' })));
    expect(error).toBeInstanceOf(PredictionPendingError);
    const pending = error as PredictionPendingError;
    expect(pending.prediction.urls.status).toBe(
      `${sim.origin}/fal/fal-ai/flux/requests/${pending.prediction.id}/status`,
    );
    expect(pending.recheckAt).toBeGreaterThanOrEqual(before + 2000);
    expect(sim.stats().billedImages).toBe(0);

    // Still running: handed back again, nothing submitted twice.
    await expect(p.resume(pending.prediction, request({ size: '256x256' }))).rejects.toBeInstanceOf(
      PredictionPendingError,
    );
    await sleep(600);
    const result = await p.resume(pending.prediction, request({ size: '256x256' }));
    expect(result.images).toHaveLength(1);
    const meta = await sharp(result.images[0]!.data).metadata();
    expect([meta.width, meta.height]).toEqual([256, 256]);
    // Reading the result again does not bill it again.
    await p.resume(pending.prediction, request({ size: '256x256' }));
    expect(sim.stats()).toMatchObject({ billedImages: 1, byEndpoint: { queue: 1 } });
  });

  it('cancels a pending request, which then bills nothing', async () => {
    sim.setKnobs({ queuedMs: 400 });
    const p = provider({ followInlineMs: 50 });
    const prediction = await pendingRender(p, { size: '256x256' });
    await p.cancel(prediction);
    await sleep(600);
    expect(sim.stats().billedImages).toBe(0);
    const error = await rejection(p.resume(prediction, request({ size: '256x256' })));
    expect(error).toBeInstanceOf(ProviderRejectedError);
    // Cancelling what has ended is not an error.
    await p.cancel(prediction);
  });

  it('cancelling a completed request is not an error and keeps its bill', async () => {
    const p = provider({ followInlineMs: 0 });
    sim.setKnobs({ queuedMs: 100 });
    const prediction = await pendingRender(p, { size: '64x64' });
    await sleep(300);
    await p.cancel(prediction);
    expect(sim.stats().billedImages).toBe(1);
  });

  it('turns a 429 into ProviderRateLimitedError with the wait fal asked for', async () => {
    sim.setKnobs({ imagesPerMinute: 1 });
    const first = await provider().render(request({ size: '64x64' }));
    // The submit answer's rate headers are reported with the result.
    expect(first.rate).toMatchObject({
      refused: false,
      limits: { images: 1 },
      remaining: { images: 0 },
    });
    const error = await rejection(provider().render(request({ size: '64x64' })));
    expect(error).toBeInstanceOf(ProviderRateLimitedError);
    expect((error as ProviderRateLimitedError).retryAfterMs).toBeGreaterThan(0);
    expect(sim.stats()).toMatchObject({ billedImages: 1, rateLimited: 1 });
  });

  it('turns a refused key into ProviderAuthError', async () => {
    sim.setKnobs({ apiKeys: ['the-right-key'] });
    const error = await rejection(provider().render(request()));
    expect(error).toBeInstanceOf(ProviderAuthError);
  });

  it("turns fal's exhausted balance (a 403) into ProviderQuotaError", async () => {
    sim.setKnobs({ insufficientQuota: true });
    const error = await rejection(provider().render(request()));
    expect(error).toBeInstanceOf(ProviderQuotaError);
    expect((error as Error).message).toMatch(/Exhausted balance/);
  });

  it('turns a failed request into ProviderUnavailableError, not billed', async () => {
    sim.setKnobs({ queuedFailRate: 1 });
    const error = await rejection(provider().render(request({ size: '64x64' })));
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as ProviderUnavailableError).maybeBilled).toBe(false);
    expect(sim.stats().billedImages).toBe(0);
  });

  it("turns fal's content checker (a 422 content_policy_violation) into ProviderRejectedError", async () => {
    sim.setKnobs({ contentPolicyPattern: 'forbidden' });
    const error = await rejection(provider().render(request({ prompt: 'a forbidden thing' })));
    expect(error).toBeInstanceOf(ProviderRejectedError);
    expect((error as ProviderRejectedError).code).toBe('content_policy_violation');
    expect(sim.stats().billedImages).toBe(0);
  });

  it('turns input fal refuses (a 422) into ProviderRejectedError naming the field', async () => {
    const error = await rejection(provider().render(request({ n: 5, size: '64x64' })));
    expect(error).toBeInstanceOf(ProviderRejectedError);
    expect((error as Error).message).toMatch(/num_images/);
    expect(sim.stats()).toMatchObject({ billedImages: 0, byStatus: { 422: 1 } });
  });

  it('turns an app fal does not know into ModelUnavailableError', async () => {
    const error = await rejection(
      provider().render({ ...request(), remoteModel: 'fal-ai/no-such-model' }),
    );
    expect(error).toBeInstanceOf(ModelUnavailableError);
  });

  it('turns an image URL that expired before it was fetched into PaidResultError', async () => {
    sim.setKnobs({ queuedMs: 200, urlTtlMs: 100 });
    const p = provider({ followInlineMs: 50 });
    const prediction = await pendingRender(p, { size: '64x64' });
    await sleep(600);
    const error = await rejection(p.resume(prediction, request({ size: '64x64' })));
    expect(error).toBeInstanceOf(PaidResultError);
    expect(sim.stats().billedImages).toBe(1);
  });

  it('turns fewer images than asked for into PaidResultError', async () => {
    sim.setKnobs({ dropImages: 1 });
    const error = await rejection(provider().render(request({ n: 2, size: '64x64' })));
    expect(error).toBeInstanceOf(PaidResultError);
    expect(sim.stats().billedImages).toBe(2);
  });

  it('turns a refused connection into ProviderUnavailableError that was not billed', async () => {
    const port = await closedPort();
    const p = provider({ baseURL: `http://127.0.0.1:${port}/fal` });
    const error = await rejection(p.render(request()));
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as ProviderUnavailableError).maybeBilled).toBe(false);
  });
});

/** A port nothing listens on: one the OS handed out, then freed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}
