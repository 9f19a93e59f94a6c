import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunScheduleHandler, ScheduleRunInProgressError } from '../../jobs/run-schedule.js';
import type { JobQueue } from '../../src/queue/job-queue.js';
import { submitDepsFor } from '../../src/runtime/wiring.js';
import { ScheduleStore } from '../../src/schedules/schedule-store.js';
import type { ScheduleView } from '../../src/schedules/schedule-view.js';
import { SCHEDULE_QUEUE, Schedules } from '../../src/schedules/schedules.js';
import { auth, startHarness, waitForBatch, type Harness } from '../support/harness.js';

/**
 * Schedules on a real redis-server, s3rver and the simulator: what creation accepts and
 * refuses (leaving nothing behind, in Redis or in BullMQ), tenants kept apart, deletion, runs
 * (one batch each however often their job runs), and a schedule seen firing through BullMQ.
 */
let h: Harness;
let store: ScheduleStore;
beforeAll(async () => {
  h = await startHarness({
    simulator: { imagesPerMinute: 60_000, latencyMs: 50 },
    // A schedule is seen firing every 2 s below: shorter than the default minimum interval.
    env: { RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS: '1' },
  });
  store = new ScheduleStore(h.services.state);
});
afterAll(async () => {
  await h?.stop();
});

const bullQueue = () => h.services.queue.queue(SCHEDULE_QUEUE);
const schedulerIds = async () => (await bullQueue().getJobSchedulers()).map((s) => s.key);

const WEEKLY = {
  name: 'spring banners',
  cron: '0 9 * * 1',
  timezone: 'Europe/Berlin',
  template: 'Banner for {{campaign}}, {{weekday}} {{date}}, week {{week}}, take {{variation}}',
  variables: { campaign: 'spring-sale' },
  variations: 2,
  model: 'gpt-image-2',
  size: '256x256',
  quality: 'low',
  budget_usd: 5,
};

const create = (body: object, tenant: 'acme' | 'globex' = 'acme') =>
  h.api.inject({ method: 'POST', url: '/v1/schedules', headers: auth(tenant), payload: body });
const get = (id: string, tenant: 'acme' | 'globex' = 'acme') =>
  h.api.inject({ method: 'GET', url: `/v1/schedules/${id}`, headers: auth(tenant) });
const remove = (id: string, tenant: 'acme' | 'globex' = 'acme') =>
  h.api.inject({ method: 'DELETE', url: `/v1/schedules/${id}`, headers: auth(tenant) });

async function created(body: object): Promise<ScheduleView> {
  const response = await create(body);
  if (response.statusCode !== 201) throw new Error(`refused: ${response.body}`);
  return response.json<ScheduleView>();
}

/** The schedule's batches, as a tenant finds them: `GET /v1/batches?schedule_id=`. */
async function batchesOf(scheduleId: string) {
  const response = await h.api.inject({
    method: 'GET',
    url: `/v1/batches?schedule_id=${scheduleId}&limit=100`,
    headers: auth(),
  });
  expect(response.statusCode).toBe(200);
  return response.json<{ data: { id: string; schedule_id: string }[] }>().data;
}

/** The run-schedule handler as the workers have it, with a clock of the test's choosing. */
function runner(now: Date, submit = submitDepsFor(h.services)) {
  return createRunScheduleHandler({
    schedules: store,
    queue: bullQueue(),
    submit,
    logger: h.services.logger,
    leaseMs: 30_000,
    now: () => now,
  });
}
const runAt = (id: string, now: Date, submit?: ReturnType<typeof submitDepsFor>) =>
  runner(now, submit).process({ scheduleId: id, tenant: 'acme' }, { attempt: 1, maxAttempts: 5 });

/** Monday 09:00 in Berlin, in winter (UTC+1) — plus 40 ms, as a job starts a little late. */
const MONDAY_30_NOV = new Date('2026-11-30T08:00:00.040Z');

describe('POST /v1/schedules', () => {
  it('creates a schedule: 201, its view with the next runs in its time zone, a job scheduler', async () => {
    const before = Date.now();
    const response = await create({
      ...WEEKLY,
      timezone: 'europe/berlin',
      metadata: { team: 'web' },
    });
    expect(response.statusCode).toBe(201);
    const view = response.json<ScheduleView>();
    expect(response.headers.location).toBe(`/v1/schedules/${view.id}`);
    expect(view).toMatchObject({
      id: expect.stringMatching(/^sch_[0-9a-z]+$/),
      name: 'spring banners',
      cron: '0 9 * * 1',
      timezone: 'Europe/Berlin',
      end_date: null,
      variations: 2,
      budget_usd: 5,
      metadata: { team: 'web' },
      last_batch_id: null,
      last_run_at: null,
      last_error: null,
    });
    expect(Date.parse(view.created_at)).toBeGreaterThanOrEqual(before - 1);

    // Worked out independently: the next five Mondays from now, at 09:00 Berlin time, which
    // is 08:00Z under CET (UTC+1, late October to late March) and 07:00Z under CEST.
    const expected: string[] = [];
    const day = new Date(before);
    while (expected.length < 5) {
      day.setUTCDate(day.getUTCDate() + 1);
      if (day.getUTCDay() !== 1) continue;
      const berlinOffset = berlinIsOnSummerTime(day) ? 2 : 1;
      const nine = Date.UTC(
        day.getUTCFullYear(),
        day.getUTCMonth(),
        day.getUTCDate(),
        9 - berlinOffset,
      );
      if (nine > before) expected.push(new Date(nine).toISOString());
    }
    expect(view.next_runs).toEqual(expected);

    const scheduler = await bullQueue().getJobScheduler(view.id);
    expect(scheduler).toMatchObject({ pattern: '0 9 * * 1', tz: 'Europe/Berlin' });
    expect(scheduler?.next).toBe(Date.parse(expected[0]!));
    expect(scheduler?.template?.data).toEqual({ scheduleId: view.id, tenant: 'acme' });

    const got = await get(view.id);
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(view);
  });

  it('honours end_date in next_runs and in the job scheduler', async () => {
    const view = await created({
      ...WEEKLY,
      timezone: 'UTC',
      cron: '0 12 * * *',
      end_date: new Date(Date.now() + 2.5 * 86_400_000).toISOString(),
    });
    expect(view.next_runs.length).toBeGreaterThanOrEqual(2);
    expect(view.next_runs.length).toBeLessThanOrEqual(3);
    for (const run of view.next_runs) expect(run).toMatch(/T12:00:00\.000Z$/);
    const scheduler = await bullQueue().getJobScheduler(view.id);
    expect(scheduler?.endDate).toBe(Date.parse(view.end_date!));
  });

  it.each([
    [{ cron: '61 * * * *' }, 'cron', /61/],
    [{ cron: '* * *' }, 'cron', /expected 5 fields/],
    [{ cron: 'H 9 * * 1' }, 'cron', /hashed/],
    [{ timezone: 'Mars/Olympus_Mons' }, 'timezone', /unknown time zone "Mars\/Olympus_Mons"/],
    [{ timezone: '+02:00' }, 'timezone', /unknown time zone/],
    [{ end_date: '2020-01-01T00:00:00Z' }, 'end_date', /in the past/],
    [{ end_date: 'next friday' }, 'end_date', /ISO 8601/],
    [{ cron: '0 9 1 1 *', end_date: '2099-12-31T00:00:00Z', timezone: 'UTC' }, null, null],
    [
      { template: 'A {{colour}} banner {{variation}}' },
      'template',
      /\{\{colour\}\} is not a variable/,
    ],
    [{ variables: { date: 'x', campaign: 'y' } }, 'variables.date', /filled by each run/],
    [{ variations: undefined }, 'items', /give items .* or variations/],
    [{ items: [{ id: 'a' }] }, 'variations', /not both/],
    [
      { variations: undefined, items: [{ id: 'a', prompt: '{{nope}}' }] },
      'items[0].prompt',
      /\{\{nope\}\}/,
    ],
    [{ template: 'Banner for {{campaign}}' }, 'template', /same request.*\{\{variation\}\}/],
    [{ budget_usd: undefined }, 'budget_usd', /budget_usd/],
    [{ model: 'dall-e-9' }, 'model', /unknown model "dall-e-9".*first run/],
    [{ size: '100x100' }, 'size', /divisible by 16/],
    [{ variations: undefined, items: [{ id: 'a', n: 99 }] }, 'items[0].n', /between 1 and 10/],
    [
      {
        model: 'dall-e-2',
        size: '256x256',
        quality: undefined,
        template: `{{variation}} ${'x'.repeat(1000)}`,
      },
      'template',
      /at most 1000/,
    ],
    [{ webhook_url: 'http://127.0.0.1:9/hook' }, 'webhook_url', /loopback, private/],
    [{ webhook_url: 'ftp://example.com/hook' }, 'webhook_url', /./],
    [{ colour: 'red' }, '', /colour/],
  ])(
    'refuses %j with a 400 naming the field, and creates nothing',
    async (change, field, message) => {
      const schedulersBefore = await schedulerIds();
      const storedBefore = (await store.list('acme')).length;
      const response = await create({ ...WEEKLY, ...change });
      if (field === null) {
        // A control: a far end_date is fine, telling a refusal from a broken happy path.
        expect(response.statusCode).toBe(201);
        await remove(response.json<ScheduleView>().id);
        return;
      }
      expect(response.statusCode, response.body).toBe(400);
      const { error } = response.json<{ error: { field: string | null; message: string } }>();
      expect(error.field ?? '').toBe(field);
      expect(error.message).toMatch(message);
      expect(await schedulerIds()).toEqual(schedulersBefore);
      expect((await store.list('acme')).length).toBe(storedBefore);
    },
  );

  it('refuses a model retired by the time of the first run, naming it', async () => {
    // As on OpenAI itself: retired models are refused (the harness's simulator does not).
    const schedules = new Schedules({
      store,
      queue: bullQueue(),
      resolve: { ...submitDepsFor(h.services), enforceRetirements: true },
      checkWebhookUrl: async () => undefined,
      ...h.services.config.schedules,
    });
    const schedulersBefore = await schedulerIds();
    // gpt-image-1.5 shuts down on 2026-12-01; this schedule's first run is on 1 January.
    const refused = schedules.create('acme', {
      ...WEEKLY,
      model: 'gpt-image-1.5',
      size: '1024x1024',
      cron: '0 9 1 1 *',
    });
    await expect(refused).rejects.toMatchObject({
      field: 'model',
      message: expect.stringMatching(
        /gpt-image-1\.5 was retired by OpenAI on 2026-12-01.*first run, \d{4}-01-01/,
      ),
    });
    expect(await schedulerIds()).toEqual(schedulersBefore);
  });
});

describe('a tenant’s schedules', () => {
  it('are its own: another tenant’s id is 404 for GET and DELETE, and absent from its list', async () => {
    const mine = await created(WEEKLY);
    for (const response of [await get(mine.id, 'globex'), await remove(mine.id, 'globex')]) {
      expect(response.statusCode).toBe(404);
      expect(response.json().error.code).toBe('not_found');
    }
    expect((await get(mine.id)).statusCode).toBe(200);
    expect(await schedulerIds()).toContain(mine.id);

    const list = async (tenant: 'acme' | 'globex') =>
      (await h.api.inject({ method: 'GET', url: '/v1/schedules', headers: auth(tenant) })).json<{
        data: ScheduleView[];
      }>().data;
    const acme = await list('acme');
    expect(acme.map((s) => s.id)).toContain(mine.id);
    expect(acme.find((s) => s.id === mine.id)?.next_runs).toHaveLength(5);
    expect((await list('globex')).map((s) => s.id)).not.toContain(mine.id);
  });

  it('stop on DELETE: 204, no job scheduler left, and then 404', async () => {
    const view = await created(WEEKLY);
    expect(await schedulerIds()).toContain(view.id);
    const response = await remove(view.id);
    expect(response.statusCode).toBe(204);
    expect(response.body).toBe('');
    expect(await schedulerIds()).not.toContain(view.id);
    expect(await bullQueue().getJobScheduler(view.id)).toBeUndefined();
    expect(await bullQueue().getDelayedCount()).toBe((await bullQueue().getJobSchedulers()).length);
    expect((await get(view.id)).statusCode).toBe(404);
    expect((await remove(view.id)).statusCode).toBe(404);
    // A run already queued when it was deleted does nothing.
    await runAt(view.id, MONDAY_30_NOV);
    expect(await batchesOf(view.id)).toEqual([]);
  });
});

describe('a run', () => {
  it('submits one batch with the template filled for the run’s date in the schedule’s zone', async () => {
    const view = await created(WEEKLY);
    await runAt(view.id, MONDAY_30_NOV);
    const after = await get(view.id);
    const { last_batch_id, last_run_at, last_error } = after.json<ScheduleView>();
    expect(last_error).toBeNull();
    expect(last_run_at).toBe(MONDAY_30_NOV.toISOString());
    const batch = await h.services.store.get(last_batch_id!);
    expect(batch).toMatchObject({ tenant: 'acme', schedule_id: view.id, budget_micros: 5_000_000 });
    const items = await h.services.store.items(last_batch_id!);
    expect(items.map((i) => [i.id, i.spec.prompt, i.spec.size])).toEqual([
      ['v1', 'Banner for spring-sale, Monday 2026-11-30, week 2026-W49, take 1', '256x256'],
      ['v2', 'Banner for spring-sale, Monday 2026-11-30, week 2026-W49, take 2', '256x256'],
    ]);
    const shown = await h.api.inject({
      method: 'GET',
      url: `/v1/batches/${last_batch_id}`,
      headers: auth(),
    });
    expect(shown.json()).toMatchObject({ schedule_id: view.id, budget_usd: 5 });
    await remove(view.id);
  });

  it('makes one batch however often its job runs, one after another or at once', async () => {
    const view = await created(WEEKLY);
    await runAt(view.id, MONDAY_30_NOV);
    await runAt(view.id, new Date(MONDAY_30_NOV.getTime() + 5_000)); // a retry, 5 s later
    const [batch] = await batchesOf(view.id);
    expect((await batchesOf(view.id)).map((b) => b.id)).toEqual([batch!.id]);

    // The next Monday, run by two workers at once: one submits, the other stands aside.
    const nextMonday = new Date(MONDAY_30_NOV.getTime() + 7 * 86_400_000);
    const outcomes = await Promise.allSettled([
      runAt(view.id, nextMonday),
      runAt(view.id, nextMonday),
    ]);
    const refusals = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toBeInstanceOf(ScheduleRunInProgressError);
    await runAt(view.id, new Date(nextMonday.getTime() + 10_000)); // the busy one's retry
    const batches = await batchesOf(view.id);
    expect(batches).toHaveLength(2);
    const last = (await get(view.id)).json<ScheduleView>().last_batch_id;
    expect(batches.map((b) => b.id)).toContain(last);
    expect(last).not.toBe(batch!.id);
    await remove(view.id);
  });

  it('whose batch could not be queued is given back, so the job’s retry submits it', async () => {
    const view = await created(WEEKLY);
    const down = new Error('queue unreachable');
    const fail = () => Promise.reject(down);
    // The real queue, but for adding jobs.
    const queue = Object.assign(Object.create(h.services.queue) as JobQueue, {
      add: fail,
      addBulk: fail,
    });
    const broken = { ...submitDepsFor(h.services), queue };
    await expect(runAt(view.id, MONDAY_30_NOV, broken)).rejects.toBe(down);
    expect(await batchesOf(view.id)).toEqual([]);
    await runAt(view.id, new Date(MONDAY_30_NOV.getTime() + 5_000)); // the retry, 5 s later
    expect(await batchesOf(view.id)).toHaveLength(1);

    // A job whose every attempt failed says so on the schedule.
    await runner(MONDAY_30_NOV).onGiveUp!({ scheduleId: view.id, tenant: 'acme' }, 'Redis down');
    expect((await get(view.id)).json<ScheduleView>().last_error).toMatchObject({
      code: 'run_failed',
      message: expect.stringMatching(/Redis down/),
    });
    await remove(view.id);
  });

  it('refused at run time (a model retired since) records last_error and is not retried', async () => {
    const view = await created({ ...WEEKLY, model: 'gpt-image-1.5', size: '1024x1024' });
    const retiring = { ...submitDepsFor(h.services), enforceRetirements: true };
    // 7 December 2026: gpt-image-1.5 was shut down on the 1st.
    const december = new Date('2026-12-07T08:00:00.040Z');
    await expect(runAt(view.id, december, retiring)).resolves.toBeUndefined();
    const after = (await get(view.id)).json<ScheduleView>();
    expect(after.last_error).toMatchObject({
      code: 'invalid_item',
      field: 'model',
      message: expect.stringMatching(/gpt-image-1\.5 was retired/),
      run_time: '2026-12-07T08:00:00.000Z',
    });
    expect(after.last_batch_id).toBeNull();
    expect(await batchesOf(view.id)).toEqual([]);
    // The same run again is over; the next one, with the model available, clears the error.
    await runAt(view.id, new Date(december.getTime() + 5_000), retiring);
    expect(await batchesOf(view.id)).toEqual([]);
    await runAt(view.id, new Date(december.getTime() + 7 * 86_400_000));
    const cleared = (await get(view.id)).json<ScheduleView>();
    expect(cleared.last_error).toBeNull();
    expect(cleared.last_batch_id).toMatch(/^batch_/);
    await remove(view.id);
  });
});

describe('a schedule firing', () => {
  it('every 2 s: BullMQ queues its runs and each makes a batch that completes with images', async () => {
    const view = await created({
      ...WEEKLY,
      name: 'every two seconds',
      cron: '*/2 * * * * *',
      timezone: 'UTC',
      template: 'A {{campaign}} sticker at {{time}}, take {{variation}}',
    });
    expect(Date.parse(view.next_runs[1]!) - Date.parse(view.next_runs[0]!)).toBe(2_000);
    const deadline = Date.now() + 10_000;
    let batches: { id: string; schedule_id: string }[] = [];
    while (batches.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      batches = await batchesOf(view.id);
    }
    expect(batches.length).toBeGreaterThan(0);
    const first = batches.at(-1)!;
    expect(first.schedule_id).toBe(view.id);
    const done = await waitForBatch(h, first.id, 10_000);
    expect(done.counts).toMatchObject({ succeeded: 2 });
    const manifest = await h.api.inject({
      method: 'GET',
      url: `/v1/batches/${first.id}/manifest`,
      headers: auth(),
    });
    const items = manifest.json<{ items: { images: { url: string }[] }[] }>().items;
    expect(items).toHaveLength(2);
    for (const item of items) expect(item.images.length).toBeGreaterThan(0);

    // Stopped: no job scheduler, and no batch after the runs already under way.
    expect((await remove(view.id)).statusCode).toBe(204);
    expect(await schedulerIds()).not.toContain(view.id);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const settled = (await batchesOf(view.id)).length;
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    expect((await batchesOf(view.id)).length).toBe(settled);
  });
});

/** EU summer time: from the last Sunday of March to the last Sunday of October. */
function berlinIsOnSummerTime(day: Date): boolean {
  const year = day.getUTCFullYear();
  const lastSunday = (month: number) => {
    const last = new Date(Date.UTC(year, month + 1, 0));
    return Date.UTC(year, month, last.getUTCDate() - last.getUTCDay());
  };
  const t = Date.UTC(year, day.getUTCMonth(), day.getUTCDate());
  return t > lastSunday(2) && t <= lastSunday(9);
}
