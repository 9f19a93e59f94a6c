import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../../src/cli/client/api-client.js';
import { scheduleListCommand } from '../../src/cli/client/schedule-commands.js';
import { ScheduleStore } from '../../src/schedules/schedule-store.js';
import { newScheduleId, SCHEDULE_QUEUE } from '../../src/schedules/schedules.js';
import { auth, startHarness, TENANTS, type Harness } from '../support/harness.js';

/**
 * A tenant's schedules are bounded (RENDERMILL_MAX_SCHEDULES_PER_TENANT, here 3), each may run
 * at most once a minute (RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS, default), and their list
 * comes a page at a time — which `rendermill schedules list` follows. Real redis-server,
 * s3rver and simulator.
 */
let h: Harness;
let store: ScheduleStore;
beforeAll(async () => {
  h = await startHarness({ workers: false, env: { RENDERMILL_MAX_SCHEDULES_PER_TENANT: '3' } });
  store = new ScheduleStore(h.services.state);
});
afterAll(async () => {
  await h?.stop();
});
afterEach(async () => {
  for (const tenant of ['acme', 'globex']) {
    for (const schedule of await store.list(tenant)) {
      await h.api.inject({
        method: 'DELETE',
        url: `/v1/schedules/${schedule.id}`,
        headers: auth(tenant as 'acme'),
      });
    }
  }
  vi.restoreAllMocks();
});

const WEEKLY = {
  name: 'banners',
  cron: '0 9 * * 1',
  timezone: 'Europe/Berlin',
  template: 'Banner {{date}}, take {{variation}}',
  variations: 2,
  model: 'gpt-image-2',
  size: '256x256',
  quality: 'low',
  budget_usd: 5,
};

const create = (body: object, tenant: 'acme' | 'globex' = 'acme') =>
  h.api.inject({ method: 'POST', url: '/v1/schedules', headers: auth(tenant), payload: body });
const list = (query: string, tenant: 'acme' | 'globex' = 'acme') =>
  h.api.inject({ method: 'GET', url: `/v1/schedules${query}`, headers: auth(tenant) });
const schedulerCount = async () =>
  (await h.services.queue.queue(SCHEDULE_QUEUE).getJobSchedulers()).length;

describe('the minimum interval between runs', () => {
  it.each([
    ['* * * * * *', /runs 1 second apart; a schedule may run at most once every 1 minute/],
    ['*/10 * * * * *', /runs 10 seconds apart/],
    ['0,30 * * * * *', /runs 30 seconds apart/],
  ])(
    'refuses %s with a 400 naming cron and the minimum, creating nothing',
    async (cron, message) => {
      const schedulers = await schedulerCount();
      const response = await create({ ...WEEKLY, cron });
      expect(response.statusCode).toBe(400);
      const { error } = response.json<{ error: { field: string; message: string } }>();
      expect(error.field).toBe('cron');
      expect(error.message).toMatch(message);
      expect(error.message).toMatch(/RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS/);
      expect(await store.count('acme')).toBe(0);
      expect(await schedulerCount()).toBe(schedulers);
    },
  );

  it('accepts a cron that runs every minute', async () => {
    const response = await create({ ...WEEKLY, cron: '* * * * *' });
    expect(response.statusCode, response.body).toBe(201);
  });
});

describe('schedules per tenant', () => {
  it('refuses the one past the quota with a 409, leaves nothing behind, and makes room on delete', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await create({ ...WEEKLY, name: `s${i}` });
      expect(response.statusCode, response.body).toBe(201);
      ids.push(response.json<{ id: string }>().id);
    }
    const schedulers = await schedulerCount();
    const refused = await create({ ...WEEKLY, name: 'one too many' });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({
      error: {
        code: 'too_many_schedules',
        message: expect.stringMatching(/3 schedules, the most allowed/),
      },
    });
    expect(await store.count('acme')).toBe(3);
    expect(await schedulerCount()).toBe(schedulers);

    // Another tenant's quota is its own.
    expect((await create({ ...WEEKLY }, 'globex')).statusCode).toBe(201);

    const removed = await h.api.inject({
      method: 'DELETE',
      url: `/v1/schedules/${ids[0]}`,
      headers: auth(),
    });
    expect(removed.statusCode).toBe(204);
    expect((await create({ ...WEEKLY, name: 'room again' })).statusCode).toBe(201);
  });

  it('holds under concurrent creations: never more than the quota', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => create({ ...WEEKLY, name: `race ${i}` })),
    );
    const codes = answers.map((a) => a.statusCode);
    expect(codes.filter((c) => c === 201).length).toBeLessThanOrEqual(3);
    expect(codes.every((c) => c === 201 || c === 409)).toBe(true);
    expect(await store.count('acme')).toBeLessThanOrEqual(3);
    expect(await schedulerCount()).toBe(await store.count('acme'));
  });
});

describe('GET /v1/schedules, a page at a time', () => {
  it('pages oldest first with next_cursor, null on the last page', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await create({ ...WEEKLY, name: `p${i}` })).json<{ id: string }>().id);
    }
    const first = await list('?limit=2');
    expect(first.statusCode).toBe(200);
    const page1 = first.json<{ data: { id: string }[]; next_cursor: string | null }>();
    expect(page1.data.map((s) => s.id)).toEqual(ids.slice(0, 2));
    expect(page1.next_cursor).toBe(ids[1]);
    const page2 = (await list(`?limit=2&cursor=${page1.next_cursor}`)).json<{
      data: { id: string }[];
      next_cursor: string | null;
    }>();
    expect(page2.data.map((s) => s.id)).toEqual(ids.slice(2));
    expect(page2.next_cursor).toBeNull();

    // Without a query: the first 100, as the list always answered, with next_cursor null.
    const all = (await list('')).json<{ data: { id: string }[]; next_cursor: string | null }>();
    expect(all.data.map((s) => s.id)).toEqual(ids);
    expect(all.next_cursor).toBeNull();
  });

  it.each([
    ['?limit=0', 'limit'],
    ['?limit=101', 'limit'],
    ['?limit=ten', 'limit'],
    ['?colour=red', 'colour'],
  ])('refuses %s with a 400 naming %s', async (query, field) => {
    const response = await list(query);
    expect(response.statusCode).toBe(400);
    const { error } = response.json<{ error: { field: string | null; message: string } }>();
    // An unknown parameter is named in the message (zod reports it on the object holding it).
    expect(error.field === field || error.message.includes(field)).toBe(true);
  });

  it('refuses a cursor that is not one of the tenant’s schedules', async () => {
    const theirs = (await create({ ...WEEKLY }, 'globex')).json<{ id: string }>().id;
    for (const cursor of ['sch_nothing', theirs]) {
      const response = await list(`?cursor=${cursor}`);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: { code: 'invalid_cursor', field: 'cursor' } });
    }
    // The batches' list names the field too.
    const batches = await h.api.inject({
      method: 'GET',
      url: '/v1/batches?cursor=b_nothing',
      headers: auth(),
    });
    expect(batches.statusCode).toBe(400);
    expect(batches.json()).toMatchObject({ error: { code: 'invalid_cursor', field: 'cursor' } });
  });
});

describe('rendermill schedules list', () => {
  it('follows the pages: a tenant with 150 schedules sees all of them', async () => {
    // Stored directly: schedules made before the quota was lowered are still listed.
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) {
      const created = new Date(now + i);
      const id = newScheduleId(created);
      ids.push(id);
      await store.create({
        id,
        tenant: 'globex',
        created_at: created.toISOString(),
        definition: { ...WEEKLY, name: `old ${i}` },
      });
    }
    const address = await h.api.listen({ port: 0, host: '127.0.0.1' });
    const port = (h.api.server.address() as AddressInfo).port;
    expect(address).toContain(String(port));
    const client = new ApiClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: TENANTS.globex });
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    expect(await scheduleListCommand(client, { json: true })).toBe(0);
    vi.restoreAllMocks();
    const listed = JSON.parse(out.join('')) as { id: string }[];
    expect(listed.map((s) => s.id)).toEqual(ids);
  });
});
