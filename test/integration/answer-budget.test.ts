import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { PaidResultError } from '../../src/errors.js';
import { AnswerBudget } from '../../src/limits/answer-budget.js';
import type { ImageProvider } from '../../src/providers/image-provider.js';
import type { PutObjectInput } from '../../src/storage/image-storage.js';
import { startRenderWorkers } from '../../workers/render-workers.js';
import type { RunningWorkers } from '../../workers/worker.js';
import { runToManifest, startHarness, type Harness } from '../support/harness.js';

/**
 * The answer budget in a real worker against the simulator, S3 and Redis: it bounds how many
 * answers' decoded images a process holds at once, whatever its concurrency, and every way an
 * attempt ends gives its room back (a room kept would wedge every later read).
 */
const CONCURRENCY = 16;
let h: Harness;
let workers: RunningWorkers | undefined;
/** Bytes of one answer of the simulator's, for the item shape below. */
let answerBytes: number;

const ITEM = { model: 'gpt-image-2', size: '256x256', quality: 'low' } as const;

beforeAll(async () => {
  h = await startHarness({
    workers: false,
    // Answers land together after a short wait, as the do after ten seconds.
    simulator: { imagesPerMinute: 60_000, latencyMs: 150 },
    env: { RENDERMILL_CONCURRENCY: String(CONCURRENCY), RENDERMILL_IMAGES_PER_MINUTE: '60000' },
  });
  const response = await fetch(`${h.sim.url}/images/generations`, {
    method: 'POST',
    headers: { authorization: 'Bearer sk-harness', 'content-type': 'application/json' },
    body: JSON.stringify({ ...ITEM, prompt: 'how big is an answer', n: 1 }),
  });
  answerBytes = (await response.arrayBuffer()).byteLength;
  expect(answerBytes).toBeGreaterThan(100);
});
afterEach(async () => {
  await workers?.close();
  workers = undefined;
  restore();
});
afterAll(async () => {
  await h?.stop();
});

const provider = () => h.services.routes[0]!.provider as ImageProvider;
const originals: Array<() => void> = [];
function restore() {
  for (const undo of originals.splice(0)) undo();
}

/** Replaces `render` on the route's provider (and puts it back after the test). */
function wrapRender(wrap: (render: ImageProvider['render']) => ImageProvider['render']) {
  const target = provider();
  const own = Object.getOwnPropertyDescriptor(target, 'render');
  target.render = wrap(target.render.bind(target));
  originals.push(() => {
    if (own) Object.defineProperty(target, 'render', own);
    else delete (target as Partial<ImageProvider>).render;
  });
}

/** Replaces `put` on the services' storage (and puts it back after the test). */
function wrapPut(wrap: (put: (input: PutObjectInput) => Promise<void>) => typeof put) {
  const storage = h.services.storage;
  const put = storage.put.bind(storage);
  storage.put = wrap(put);
  originals.push(() => {
    delete (storage as Partial<typeof storage>).put;
  });
}

const isRenderedImage = (key: string) => /\/\d+\.png$/.test(key);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const items = (label: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `${label}-${i}`, prompt: `${label} item ${i}` }));

/**
 * Counts the answers whose decoded images exist at once, from outside the budget: from the
 * provider handing an answer's images over to the end of their upload, slowed down so that
 * answers land faster than they leave.
 */
function countHeldAnswers() {
  const seen = { now: 0, most: 0 };
  wrapRender((render) => async (request) => {
    const result = await render(request);
    seen.now++;
    seen.most = Math.max(seen.most, seen.now);
    return result;
  });
  wrapPut((put) => async (input) => {
    if (isRenderedImage(input.key)) await sleep(100);
    await put(input);
    if (isRenderedImage(input.key)) seen.now--;
  });
  return seen;
}

it('holds no more answers at once than the budget has room for, however many are in flight', async () => {
  const budget = new AnswerBudget(Math.floor(answerBytes * 2.5));
  const held = countHeldAnswers();
  workers = startRenderWorkers(h.services, { answerBudget: budget });
  const manifest = await runToManifest(h, { ...ITEM, items: items('bounded', 24) }, 'acme', 60_000);
  expect(manifest.items.map((i) => i.status)).toEqual(Array(24).fill('succeeded'));
  expect(held.most).toBeGreaterThanOrEqual(1);
  expect(held.most).toBeLessThanOrEqual(2);
  expect(budget.load()).toMatchObject({ bytes: 0, holders: 0, waiting: 0 });
  expect(budget.load().peakHolders).toBeLessThanOrEqual(2);
});

it('without a budget that binds, the same run holds many answers at once (the count above is real)', async () => {
  const budget = new AnswerBudget(Number.MAX_SAFE_INTEGER);
  const held = countHeldAnswers();
  workers = startRenderWorkers(h.services, { answerBudget: budget });
  const manifest = await runToManifest(
    h,
    { ...ITEM, items: items('unbounded', 24) },
    'acme',
    60_000,
  );
  expect(manifest.items.map((i) => i.status)).toEqual(Array(24).fill('succeeded'));
  expect(held.most).toBeGreaterThan(4);
});

it('gives the room back when a paid answer turns out unusable, or S3 refuses its images', async () => {
  // Room for one answer: a hold that any of these paths kept would stop every later read.
  const budget = new AnswerBudget(Math.floor(answerBytes * 1.5));
  wrapRender((render) => async (request) => {
    const result = await render(request);
    if (request.spec.prompt?.includes('unusable')) {
      throw new PaidResultError('the test finds this paid answer unusable', result.usage);
    }
    return result;
  });
  // S3 refuses the first image's uploads (one try and the uploads' retries): it is spooled.
  let refusals = 4;
  wrapPut((put) => async (input) => {
    if (isRenderedImage(input.key) && refusals > 0) {
      refusals--;
      throw new Error('S3 is down (test)');
    }
    await put(input);
  });
  workers = startRenderWorkers(h.services, { answerBudget: budget });
  const batch = [...items('unusable', 3), ...items('fine', 5)];
  const manifest = await runToManifest(h, { ...ITEM, items: batch }, 'acme', 30_000);
  const status = Object.fromEntries(manifest.items.map((i) => [i.id, i.status]));
  expect(Object.values(status).filter((s) => s === 'failed')).toHaveLength(3);
  expect(Object.values(status).filter((s) => s === 'succeeded')).toHaveLength(5);
  expect(refusals).toBe(0);
  expect(budget.load()).toMatchObject({ bytes: 0, holders: 0, waiting: 0 });
});
