import fc from 'fast-check';
import type { Response } from 'light-my-request';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ScheduleStore } from '../../src/schedules/schedule-store.js';
import { SCHEDULE_QUEUE } from '../../src/schedules/schedules.js';
import { auth, startHarness, type Harness } from '../support/harness.js';
import { multipartBody, type FormPart } from '../support/multipart.js';
import {
  catalogQuery,
  cronExpression,
  csvCatalog,
  mutated,
  nastyJson,
  nastyKey,
  nastyString,
  nastyValue,
  ndjsonCatalog,
  ownObject,
  prototypeJsonText,
} from './arbitraries.js';
import { batchKeys } from '../../src/redis/redis-keys.js';

/**
 * Fuzzing rendermill's public entry points with random and adversarial input, against one API
 * (with its workers) on a real redis-server, s3rver and the provider simulator.
 *
 * The property, for every input: the answer is a 2xx, or a 4xx whose reason names a field or a
 * line (or is about the body as a whole: its type, its size, its JSON); never a 5xx; /healthz
 * answers afterwards; and a refused request left nothing behind — no render jobs for a new batch,
 * no batch record, schedule or job scheduler of its own.
 *
 * Seeded and bounded: FUZZ_SEED (default below; each property adds its index), FUZZ_RUNS runs
 * per property at most, FUZZ_TIME_MS per property at most. A failure prints the seed, the
 * counterexample (shrunk) and the path to replay it.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 1_205_2026);
const RUNS = Number(process.env.FUZZ_RUNS ?? 250);
const TIME_MS = Number(process.env.FUZZ_TIME_MS ?? 3_000);

let h: Harness;
let schedules: ScheduleStore;
beforeAll(async () => {
  h = await startHarness({ simulator: { imagesPerMinute: 60_000, latencyMs: 5 } });
  schedules = new ScheduleStore(h.services.state);
});
afterAll(async () => {
  await h?.stop();
});

/** 4xx codes about the body as a whole, which no field or line could name. */
const BODY_LEVEL_CODES = new Set([
  'invalid_json',
  'body_too_large',
  'request_too_large',
  'unsupported_media_type',
  'invalid_content_type',
  'file_too_large',
]);

/** Refusals of the body as a whole: not an object at all, or a catalog without a row. */
const BODY_LEVEL_MESSAGES =
  /^Invalid input: expected object, received \w+$|^the catalog has no rows$/;

/**
 * What could have been left behind: taken before and after a refused request. Render jobs are
 * compared by the batches they are for (a job id is `<batch id>-<item index>`), not by BullMQ's
 * job counts: those are summed over several lists while the workers move jobs of earlier,
 * accepted batches between them, so a total can seem to grow when nothing was added. Batches
 * are compared by id, so that a run of a schedule accepted earlier, which may fire meanwhile,
 * is told apart from a refused request's leftovers.
 */
async function footprint() {
  const jobs = await h.services.queue
    .queue('render')
    .getJobs(['wait', 'active', 'delayed', 'prioritized', 'completed', 'failed']);
  return {
    renderJobBatches: new Set(
      jobs.flatMap((job) => (job?.id ? [job.id.replace(/-\d+$/, '')] : [])),
    ),
    batchIds: new Set(await h.services.state.zrange(batchKeys().tenantBatches('acme'), '0', '-1')),
    schedules: await schedules.count('acme'),
    schedulers: await h.services.queue.queue(SCHEDULE_QUEUE).getJobSchedulersCount(),
  };
}

/** The batches among `ids` that no schedule's run made (a batch that is gone counts too). */
async function notScheduleRuns(ids: Iterable<string>): Promise<string[]> {
  const made: string[] = [];
  for (const id of ids) if (!(await h.services.store.get(id))?.schedule_id) made.push(id);
  return made;
}

/** Throws unless a refused request left nothing behind. */
async function checkNothingLeft(
  before: Awaited<ReturnType<typeof footprint>>,
  after: Awaited<ReturnType<typeof footprint>>,
  answer: string,
) {
  for (const key of ['schedules', 'schedulers'] as const) {
    if (after[key] > before[key]) {
      throw new Error(`refused but ${key} grew ${before[key]} → ${after[key]}: ${answer}`);
    }
  }
  const newBatches = [...after.batchIds].filter((id) => !before.batchIds.has(id));
  const madeBatches = await notScheduleRuns(newBatches);
  if (madeBatches.length > 0) {
    throw new Error(`refused but batch ${madeBatches[0]} was created: ${answer}`);
  }
  const newJobBatches = [...after.renderJobBatches].filter(
    (id) => !before.renderJobBatches.has(id) && !before.batchIds.has(id),
  );
  const leftJobs = await notScheduleRuns(newJobBatches);
  if (leftJobs.length > 0) {
    throw new Error(`refused but render jobs were queued for ${leftJobs[0]}: ${answer}`);
  }
}

/** Throws, describing the answer, unless it keeps the property. */
function checkAnswer(response: Response, what: string) {
  const show = () => `${what} → ${response.statusCode} ${response.body.slice(0, 600)}`;
  if (response.statusCode >= 500) throw new Error(`5xx: ${show()}`);
  if (response.statusCode < 400) return;
  let error: {
    code?: unknown;
    message?: unknown;
    field?: unknown;
    param?: unknown;
    details?: { field?: unknown; line?: unknown }[];
  };
  try {
    error = (response.json<{ error: typeof error }>().error ?? {}) as typeof error;
  } catch {
    throw new Error(`a 4xx that is not JSON: ${show()}`);
  }
  const message = typeof error.message === 'string' ? error.message : '';
  if (message === '') throw new Error(`a 4xx without a message: ${show()}`);
  const named =
    (typeof error.field === 'string' && error.field !== '') ||
    (typeof error.param === 'string' && error.param !== '') ||
    /\bline \d+/.test(message) ||
    // A summary ("no row could become an item") whose details name the rows' lines and fields.
    (Array.isArray(error.details) &&
      error.details.some(
        (d) => (typeof d.field === 'string' && d.field !== '') || typeof d.line === 'number',
      )) ||
    // zod names an unknown key in its message, on the object that holds it.
    /Unrecognized key|Unknown parameter/.test(message) ||
    BODY_LEVEL_CODES.has(String(error.code)) ||
    BODY_LEVEL_MESSAGES.test(message) ||
    // Refusals about who is asking or what exists, which name no field by nature.
    [401, 404, 405, 409, 429].includes(response.statusCode);
  if (!named) throw new Error(`a 4xx naming no field or line: ${show()}`);
}

/**
 * Runs one property: each input sent by `send`, its answer checked, /healthz asked, and —
 * when refused — nothing left behind.
 */
async function fuzz<T>(
  index: number,
  arbitrary: fc.Arbitrary<T>,
  send: (input: T) => Promise<Response>,
  options: { afterAccepted?: (response: Response) => Promise<void> } = {},
) {
  const statuses = new Map<number, number>();
  const started = Date.now();
  // fast-check's time limit abandons the run under way rather than awaiting it, at any await:
  // an abandoned run sends nothing once the property is over, and a request it already sent
  // must end before the next property looks at what requests left behind.
  let over = false;
  const sending = new Set<Promise<unknown>>();
  await fc.assert(
    fc.asyncProperty(arbitrary, async (input) => {
      const before = await footprint();
      if (over) return;
      const sent = send(input);
      const settled = sent.catch(() => undefined);
      sending.add(settled);
      void settled.then(() => sending.delete(settled));
      const response = await sent;
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      checkAnswer(response, JSON.stringify(input)?.slice(0, 300) ?? String(input));
      const health = await h.api.inject({ method: 'GET', url: '/healthz' });
      if (health.statusCode !== 200) throw new Error(`/healthz answered ${health.statusCode}`);
      if (response.statusCode >= 400) {
        await checkNothingLeft(
          before,
          await footprint(),
          `(${response.statusCode}) ${response.body.slice(0, 300)}`,
        );
      } else await options.afterAccepted?.(response);
    }),
    {
      seed: SEED + index,
      numRuns: RUNS,
      interruptAfterTimeLimit: TIME_MS,
      markInterruptAsFailure: false,
    },
  );
  over = true;
  await Promise.all([...sending]);
  if (process.env.FUZZ_VERBOSE) {
    const runs = [...statuses.values()].reduce((a, b) => a + b, 0);
    const codes = [...statuses].sort(([a], [b]) => a - b).map(([code, n]) => `${code}×${n}`);
    console.log(
      `property ${index}: ${runs} runs in ${Date.now() - started} ms: ${codes.join(' ')}`,
    );
  }
}

const json = (url: string, body: unknown) =>
  h.api.inject({
    method: 'POST',
    url,
    headers: { ...auth(), 'content-type': 'application/json' },
    payload: typeof body === 'string' ? body : (JSON.stringify(body) ?? 'null'),
  });

const VALID_ITEM = {
  id: 'a',
  prompt: 'a red mug',
  model: 'gpt-image-2',
  size: '256x256',
  quality: 'low',
};
const VALID_BATCH = {
  model: 'gpt-image-2',
  size: '256x256',
  quality: 'low',
  budget_usd: 1,
  metadata: { team: 'web' },
  items: [VALID_ITEM, { id: 'b', prompt: 'a blue mug' }],
};

/** A JSON batch body: anything at all, a valid one mutated, or JSON text with prototype keys. */
const batchBody: fc.Arbitrary<unknown> = fc.oneof(
  nastyJson,
  mutated(VALID_BATCH),
  mutated(VALID_BATCH).map((body) => ({ ...body, items: [VALID_ITEM] })),
  fc.record({ items: fc.array(mutated(VALID_ITEM), { minLength: 1, maxLength: 3 }) }),
  prototypeJsonText,
);

describe('fuzzing the API (seeded, bounded)', () => {
  it('POST /v1/batches with JSON bodies', async () => {
    await fuzz(1, batchBody, (body) => json('/v1/batches', body));
  });

  it('POST /v1/batches/estimate with JSON bodies', async () => {
    await fuzz(2, batchBody, (body) => json('/v1/batches/estimate', body));
  });

  const catalog = (type: string) => (input: [string, Record<string, string>, boolean]) => {
    const [body, query, estimate] = input;
    return h.api.inject({
      method: 'POST',
      url: estimate ? '/v1/batches/estimate' : '/v1/batches',
      query,
      headers: { ...auth(), 'content-type': type },
      payload: body,
    });
  };

  it('CSV catalogs (text/csv), with templates', async () => {
    await fuzz(3, fc.tuple(csvCatalog, catalogQuery, fc.boolean()), catalog('text/csv'));
  });

  it('JSON Lines and OpenAI Batch catalogs (application/x-ndjson)', async () => {
    await fuzz(
      4,
      fc.tuple(ndjsonCatalog, catalogQuery, fc.boolean()),
      catalog('application/x-ndjson'),
    );
  });

  it('POST /v1/images/generations (JSON)', async () => {
    const valid = { prompt: 'a red mug', model: 'gpt-image-2', size: '256x256', quality: 'low' };
    await fuzz(5, fc.oneof(mutated(valid), nastyJson, prototypeJsonText), (body) =>
      json('/v1/images/generations', body),
    );
  });

  it('POST /v1/images/edits and /variations (multipart)', async () => {
    const png = await tinyPng();
    const file: fc.Arbitrary<Buffer> = fc.oneof(
      fc.constant(png),
      fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
      fc.integer({ min: 1, max: png.length - 1 }).map((cut) => png.subarray(0, cut)),
      fc
        .uint8Array({ minLength: 1, maxLength: 32 })
        .map((bytes) => Buffer.concat([png.subarray(0, 16), Buffer.from(bytes)])),
    );
    const parts: fc.Arbitrary<FormPart[]> = fc
      .tuple(
        fc.record(
          {
            model: fc.constantFrom('gpt-image-2', 'dall-e-2', 'constructor', ''),
            prompt: nastyString,
            size: fc.constantFrom('256x256', '1024x1024', '0x0', 'huge'),
            n: fc.constantFrom('1', '0', '11', '1e9', 'x'),
            quality: fc.constantFrom('low', 'nope'),
            response_format: fc.constantFrom('b64_json', 'url', 'xml'),
          },
          { requiredKeys: [] },
        ),
        fc.array(fc.tuple(nastyKey, nastyString), { maxLength: 2 }),
        fc.array(
          fc.tuple(fc.constantFrom('image', 'image[]', 'mask', 'other', '__proto__'), file),
          { maxLength: 4 },
        ),
      )
      .map(([fields, extra, files]) => [
        ...Object.entries({ ...fields, ...Object.fromEntries(extra) }).map(([name, value]) => ({
          name: safeHeaderToken(name),
          value,
        })),
        ...files.map(([name, data], i) => ({
          name,
          filename: `f${i}.png`,
          data,
          contentType: 'image/png',
        })),
      ]);
    // An edit that is accepted as it is, but for its prompt and maybe one more field or file.
    const plausible: fc.Arbitrary<FormPart[]> = fc
      .tuple(nastyString, fc.option(fc.tuple(nastyKey, nastyString)), fc.option(file))
      .map(([prompt, extra, second]) => [
        { name: 'model', value: 'gpt-image-2' },
        { name: 'prompt', value: `a mug ${prompt}` },
        { name: 'size', value: '256x256' },
        { name: 'quality', value: 'low' },
        ...(extra ? [{ name: safeHeaderToken(extra[0]), value: extra[1] }] : []),
        { name: 'image[]', filename: 'a.png', data: png, contentType: 'image/png' },
        ...(second
          ? [{ name: 'image[]', filename: 'b.png', data: second, contentType: 'image/png' }]
          : []),
      ]);
    const endpoint = fc.constantFrom('edits', 'variations');
    const input = fc.oneof(fc.tuple(plausible, fc.constant('edits')), fc.tuple(parts, endpoint));
    await fuzz(6, input, ([form, endpoint]) => {
      const { payload, contentType } = multipartBody(form);
      return h.api.inject({
        method: 'POST',
        url: `/v1/images/${endpoint}`,
        headers: { ...auth(), 'content-type': contentType },
        payload,
      });
    });
  });

  it('POST /v1/schedules, with templates', async () => {
    const valid = {
      name: 'banners',
      cron: '0 9 * * 1',
      timezone: 'Europe/Berlin',
      template: 'Banner for {{campaign}}, {{date}}, take {{variation}}',
      variables: { campaign: 'spring' },
      variations: 2,
      model: 'gpt-image-2',
      size: '256x256',
      quality: 'low',
      budget_usd: 5,
    };
    const schedule = fc.oneof(
      mutated(valid),
      fc
        .record({
          cron: cronExpression,
          timezone: fc.oneof(nastyString, fc.constantFrom('UTC', 'Mars/Olympus', 'Etc/GMT+14')),
        })
        .map((change) => ({ ...valid, ...change })),
      fc.record({ template: nastyString }).map((change) => ({ ...valid, ...change })),
      fc
        .array(fc.tuple(nastyKey, nastyValue), { maxLength: 3 })
        .map((entries) => ({ ...valid, variables: ownObject(entries) })),
      fc
        .array(mutated({ id: 'a', prompt: 'A {{campaign}} mug' }), { maxLength: 3 })
        .map((items) => {
          const { variations: _, ...rest } = valid;
          return { ...rest, items };
        }),
      nastyJson,
    );
    await fuzz(7, schedule, (body) => json('/v1/schedules', body), {
      // Accepted schedules are deleted at once, so the tenant's quota never refuses the next.
      afterAccepted: async (response) => {
        const { id } = response.json<{ id: string }>();
        await h.api.inject({ method: 'DELETE', url: `/v1/schedules/${id}`, headers: auth() });
      },
    });
  });

  it('GET /v1/schedules and /v1/batches query strings', async () => {
    const query = fc.record(
      {
        limit: fc.oneof(nastyString, fc.constantFrom('1', '100', '0', '-1', '1e3')),
        cursor: nastyString,
        status: fc.constantFrom('completed', 'nope'),
      },
      { requiredKeys: [] },
    );
    await fuzz(8, fc.tuple(query, fc.constantFrom('/v1/schedules', '/v1/batches')), ([q, url]) =>
      h.api.inject({ method: 'GET', url, query: q, headers: auth() }),
    );
  });
});

/** A multipart field name a client could send: no quotes or line breaks in the header. */
const safeHeaderToken = (name: string) => name.replace(/["\r\n\\]/g, '_') || 'empty';

async function tinyPng(): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width: 256, height: 256, channels: 4, background: '#884422ff' } })
    .png()
    .toBuffer();
}
