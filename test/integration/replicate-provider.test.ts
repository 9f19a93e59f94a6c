import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../infra/simulator/server.js';
import {
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
import type { PendingPrediction } from '../../src/providers/image-provider.js';
import { ReplicateImageProvider, aspectRatioFor } from '../../src/providers/replicate-provider.js';

/** The Replicate adapter against the simulator's predictions API: inline, pending, resumed, failed. */
let sim: RunningSimulator;
const registry = ModelRegistry.load();
const provider = (options: Partial<ConstructorParameters<typeof ReplicateImageProvider>[0]> = {}) =>
  new ReplicateImageProvider({
    baseURL: sim.url,
    apiKey: 'r8_test',
    registry,
    timeoutMs: 5000,
    pollMs: 25,
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
const render = (s: Partial<RenderSpec> = {}, p = provider()) =>
  p.render({ spec: spec(s), images: [] });
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What render() threw, for a pending prediction; fails the test when it did not throw that. */
async function pendingOf(promise: Promise<unknown>): Promise<PredictionPendingError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PredictionPendingError);
  return error as PredictionPendingError;
}

async function statusOf(prediction: PendingPrediction): Promise<string> {
  const response = await fetch(prediction.urls.status, {
    headers: { authorization: 'Bearer r8_test' },
  });
  return ((await response.json()) as { status: string }).status;
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
    requestsPerMinute: 0,
    queuedMs: 0,
    queuedFailRate: 0,
    failNext: undefined,
    contentPolicyPattern: undefined,
    insufficientQuota: false,
    apiKeys: undefined,
    errorRate: 0,
    resetRate: 0,
    dropImages: 0,
    urlTtlMs: 3_600_000,
  });
  sim.reset();
});

describe('aspectRatioFor', () => {
  it("maps Replicate's own sizes to their ratio and other sizes to the nearest ratio", () => {
    expect(aspectRatioFor('1024x1024')).toBe('1:1');
    expect(aspectRatioFor('1344x768')).toBe('16:9');
    expect(aspectRatioFor('768x1344')).toBe('9:16');
    // cog-flux's 4:3 size, nearer to 5:4 by arithmetic.
    expect(aspectRatioFor('1152x896')).toBe('4:3');
    expect(aspectRatioFor('1920x1080')).toBe('16:9');
    expect(aspectRatioFor('512x512')).toBe('1:1');
    expect(aspectRatioFor('1000x1500')).toBe('2:3');
    expect(aspectRatioFor('3000x1000')).toBe('21:9');
    for (const size of (registry.get('flux-schnell')!.sizes as { fixed: string[] }).fixed) {
      const [w, h] = aspectRatioFor(size).split(':').map(Number) as [number, number];
      const [sw, sh] = size.split('x').map(Number) as [number, number];
      expect(Math.abs(Math.log(w / h) - Math.log(sw / sh))).toBeLessThan(0.1);
    }
  });
});

describe('ReplicateImageProvider against the simulator', () => {
  it('says what the route can do for flux-schnell', () => {
    expect(provider().capabilities(registry.get('flux-schnell')!)).toEqual({
      operations: ['generate'],
      sizing: 'aspect_ratio',
      maxImagesPerCall: 4,
      outputFormats: ['png', 'jpeg', 'webp'],
      mode: 'queued',
    });
    expect(provider({ apiKey: 'r8_other' }).accountId).not.toBe(provider().accountId);
    expect(provider().accountId).toMatch(new RegExp(`^${sim.url}#[0-9a-f]{12}$`));
  });

  it.each([
    ['png', '1344x768'],
    ['jpeg', '768x1344'],
    ['webp', '1152x896'],
  ] as const)(
    'renders inline with Prefer: wait: real %s images of the ratio size, billed',
    async (format, size) => {
      const result = await render({ output_format: format, size });
      expect(result.images).toHaveLength(1);
      const [width, height] = size.split('x').map(Number);
      const meta = await sharp(result.images[0]!.data).metadata();
      expect([result.images[0]!.format, meta.format, meta.width, meta.height]).toEqual([
        format,
        format,
        width,
        height,
      ]);
      expect(result.rate?.refused).toBe(false);
      const stats = sim.stats();
      expect(stats.billedImages).toBe(1);
      expect(stats.byEndpoint.predictions).toBe(1);
      expect(stats.byStatus).toEqual({ 201: 1 });
    },
  );

  it("answers Replicate's default format (webp) when none is asked for", async () => {
    const result = await render({ size: '1024x1024' });
    expect(result.images[0]!.format).toBe('webp');
  });

  it('renders four different images in one call', async () => {
    const result = await render({ n: 4, output_format: 'png' });
    expect(result.images).toHaveLength(4);
    const distinct = new Set(result.images.map((image) => image.data.toString('base64')));
    expect(distinct.size).toBe(4);
    expect(sim.stats().billedImages).toBe(4);
    expect(sim.stats().byEndpoint.predictions).toBe(1);
  });

  it('is answered by the Prefer: wait hold, not by polling, when the prediction ends in time', async () => {
    sim.setKnobs({ queuedMs: 300 });
    // A poll would wait a minute first: only the held creation can answer in time.
    const p = provider({ followInlineMs: 5000, pollMs: 60_000 });
    const started = Date.now();
    const result = await render({}, p);
    expect(result.images).toHaveLength(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('hands a slow prediction back as pending, and resume() collects it, billed once', async () => {
    sim.setKnobs({ queuedMs: 800 });
    const p = provider({ followInlineMs: 200, recheckMs: 5000 });
    const started = Date.now();
    const pending = await pendingOf(render({ n: 2, output_format: 'png' }, p));
    expect(Date.now() - started).toBeLessThan(700);
    expect(pending.recheckAt).toBeGreaterThan(Date.now() + 4000);
    expect(pending.prediction.urls.status).toContain(`/v1/predictions/${pending.prediction.id}`);
    expect(pending.prediction.urls.cancel).toContain('/cancel');
    expect(sim.stats().billedImages).toBe(0);

    // Still running: resume() follows it for another inline follow and hands it back again.
    await pendingOf(p.resume(pending.prediction, { spec: spec({ n: 2 }), images: [] }));

    await wait(800);
    const result = await p.resume(pending.prediction, { spec: spec({ n: 2 }), images: [] });
    expect(result.images.map((image) => image.format)).toEqual(['png', 'png']);
    const again = await p.resume(pending.prediction, { spec: spec({ n: 2 }), images: [] });
    expect(again.images).toHaveLength(2);
    expect(sim.stats().billedImages).toBe(2);
    expect(sim.stats().byEndpoint.predictions).toBe(1);
  });

  it('cancels a pending prediction, which then bills nothing', async () => {
    sim.setKnobs({ queuedMs: 500 });
    const p = provider({ followInlineMs: 100 });
    const pending = await pendingOf(render({ n: 3 }, p));
    await p.cancel(pending.prediction);
    expect(await statusOf(pending.prediction)).toBe('canceled');
    await wait(700);
    expect(await statusOf(pending.prediction)).toBe('canceled');
    expect(sim.stats().billedImages).toBe(0);
    await expect(p.resume(pending.prediction, { spec: spec(), images: [] })).rejects.toBeInstanceOf(
      ProviderUnavailableError,
    );
    // Cancelling again, or an ended prediction, is not an error.
    await p.cancel(pending.prediction);
  });

  it('turns a 429 into ProviderRateLimitedError with the wait asked for', async () => {
    sim.setKnobs({ requestsPerMinute: 1 });
    await render();
    const error = await render().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderRateLimitedError);
    const limited = error as ProviderRateLimitedError;
    expect(limited.message).toMatch(/Request was throttled/);
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    expect(limited.report.refused).toBe(true);
    expect(sim.stats().billedImages).toBe(1);
    expect(sim.stats().rateLimited).toBe(1);
  });

  it('turns a refused key into ProviderAuthError', async () => {
    sim.setKnobs({ apiKeys: ['r8_good'] });
    await expect(render()).rejects.toBeInstanceOf(ProviderAuthError);
    await expect(render({}, provider({ apiKey: 'r8_good' }))).resolves.toBeDefined();
  });

  it("turns Replicate's 402 (no credit) into ProviderQuotaError", async () => {
    sim.setKnobs({ insufficientQuota: true });
    const error = await render().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderQuotaError);
    expect((error as Error).message).toMatch(/402.*insufficient credit/i);
    expect(sim.stats().billedImages).toBe(0);
  });

  it('turns a failed prediction into ProviderUnavailableError, not billed', async () => {
    sim.setKnobs({ queuedFailRate: 1 });
    const error = await render().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as ProviderUnavailableError).maybeBilled).toBe(false);
    expect(sim.stats().billedImages).toBe(0);
  });

  it('turns an NSFW failure into ProviderRejectedError content_policy_violation', async () => {
    sim.setKnobs({ contentPolicyPattern: 'forbidden' });
    const error = await render({ prompt: 'something forbidden' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderRejectedError);
    expect((error as ProviderRejectedError).code).toBe('content_policy_violation');
    expect((error as Error).message).toMatch(/NSFW/);
    expect(sim.stats().billedImages).toBe(0);
  });

  it('makes an output URL that expired before it was followed a PaidResultError', async () => {
    sim.setKnobs({ queuedMs: 200, urlTtlMs: 1 });
    const p = provider({ followInlineMs: 50 });
    const pending = await pendingOf(render({}, p));
    await wait(400);
    const error = await p
      .resume(pending.prediction, { spec: spec(), images: [] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaidResultError);
    expect((error as Error).message).toMatch(/could not be downloaded: HTTP 404/);
    expect(sim.stats().billedImages).toBe(1);
  });

  it('makes fewer outputs than asked for a PaidResultError', async () => {
    sim.setKnobs({ dropImages: 1 });
    await expect(render({ n: 2 })).rejects.toBeInstanceOf(PaidResultError);
    expect(sim.stats().billedImages).toBe(2);
  });

  it('turns input Replicate refuses (422) into ProviderRejectedError', async () => {
    const error = await render({ n: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderRejectedError);
    expect((error as Error).message).toMatch(/input\.num_outputs/);
    expect(sim.stats().byStatus).toEqual({ 422: 1 });
  });

  it('turns a refused connection into ProviderUnavailableError, certainly not billed', async () => {
    const stopped = await startSimulator();
    const url = stopped.url;
    await stopped.stop();
    const error = await render({}, provider({ baseURL: url })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as ProviderUnavailableError).maybeBilled).toBe(false);
  });

  it('turns a dropped connection into ProviderUnavailableError that may have been billed', async () => {
    sim.setKnobs({ resetRate: 1 });
    const error = await render().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as ProviderUnavailableError).maybeBilled).toBe(true);
  });
});

describe("the simulator's predictions API on the wire", () => {
  const create = (
    body: unknown,
    headers: Record<string, string> = {},
    model = 'black-forest-labs/flux-schnell',
  ) =>
    fetch(`${sim.url}/models/${model}/predictions`, {
      method: 'POST',
      headers: { authorization: 'Bearer r8_test', 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  /** The fields of a prediction object these tests read. */
  interface WirePrediction {
    id: string;
    status: string;
    output: string[] | null;
    urls: { get: string; cancel: string };
  }

  it('answers 201 at once without Prefer, and the prediction is then followed to its output', async () => {
    sim.setKnobs({ queuedMs: 200 });
    const response = await create({ input: { prompt: 'a kite', aspect_ratio: '21:9' } });
    expect(response.status).toBe(201);
    const created = (await response.json()) as WirePrediction;
    expect(created).toMatchObject({
      model: 'black-forest-labs/flux-schnell',
      status: 'starting',
      output: null,
      error: null,
      input: { prompt: 'a kite', aspect_ratio: '21:9' },
    });
    expect(created.urls.get).toBe(`${sim.url}/predictions/${created.id}`);
    expect(created.urls.cancel).toBe(`${sim.url}/predictions/${created.id}/cancel`);
    // Followed as a client does: it is `processing` for the queue's 200 ms and the rendering
    // (longer on a loaded machine), then `succeeded`.
    const follow = async () =>
      (await (
        await fetch(created.urls.get, { headers: { authorization: 'Bearer r8_test' } })
      ).json()) as WirePrediction;
    let done = await follow();
    for (let tries = 0; done.status !== 'succeeded' && tries < 50; tries++) {
      expect(['starting', 'processing']).toContain(done.status);
      await wait(100);
      done = await follow();
    }
    expect(done.status).toBe('succeeded');
    expect(done.output).toHaveLength(1);
    const image = await fetch(done.output![0]!);
    const meta = await sharp(Buffer.from(await image.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 1536, 640]);
    expect(sim.stats().billedImages).toBe(1);
    expect(sim.stats().byEndpoint.predictions).toBe(1);
  });

  it('holds a Prefer: wait=1 creation one second, then answers it still processing', async () => {
    sim.setKnobs({ queuedMs: 2500 });
    const started = Date.now();
    const response = await create({ input: { prompt: 'a kite' } }, { prefer: 'wait=1' });
    const elapsed = Date.now() - started;
    expect(response.status).toBe(201);
    expect(((await response.json()) as { status: string }).status).toBe('processing');
    expect(elapsed).toBeGreaterThanOrEqual(990);
    expect(elapsed).toBeLessThan(2000);
  });

  it('answers problem+json: 404 for an unknown model, 422 naming the bad input fields', async () => {
    const unknown = await create({ input: { prompt: 'x' } }, {}, 'nobody/nothing');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const invalid = await create({ input: { aspect_ratio: '7:5', output_format: 'gif' } });
    expect(invalid.status).toBe(422);
    const body = (await invalid.json()) as { detail: string; status: number };
    expect(body.status).toBe(422);
    expect(body.detail).toMatch(/input\.prompt/);
    expect(body.detail).toMatch(/input\.aspect_ratio/);
    expect(body.detail).toMatch(/input\.output_format/);
    expect(sim.stats().billedImages).toBe(0);
  });
});
