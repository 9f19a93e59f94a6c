import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScheduleView } from '../../src/schedules/schedule-view.js';
import {
  auth,
  startHarness,
  submit,
  TENANTS,
  waitForBatch,
  type Harness,
} from '../support/harness.js';

/**
 * The operator dashboard in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against the harness API on a real port: logging in with an API key, the
 * batch list (progress bars, spend against budget), a batch's thumbnail grid (images that
 * actually load) and failures with their reasons, schedules with their next runs, tenants kept
 * apart, the session cookie's CSRF rule, and Bull Board at /admin/queues for operators only.
 */
const CHROMIUM = process.env.RENDERMILL_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `dashboard tests skipped: no Chromium at ${CHROMIUM} (bash infra/scripts/ensure-chromium.sh installs it)`,
  );
}

const SCREENSHOT = path.join(import.meta.dirname, 'artifacts', 'dashboard.png');
const REFUSED = 'forbidden-dashboard-subject';

let h: Harness;
let base: string;
let browser: Browser;
let batchId: string;
let schedule: ScheduleView;
const contexts: BrowserContext[] = [];

describe.skipIf(!haveChromium)('the dashboard, in Chromium', () => {
  beforeAll(async () => {
    h = await startHarness({
      simulator: { contentPolicyPattern: REFUSED },
      env: { RENDERMILL_ADMIN_TENANTS: 'acme' },
    });
    await h.api.listen({ port: 0, host: '127.0.0.1' });
    const address = h.api.server.address();
    if (!address || typeof address === 'string') throw new Error('the API is not listening');
    base = `http://127.0.0.1:${address.port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });

    const response = await submit(h, {
      model: 'gpt-image-2',
      size: '256x256',
      quality: 'low',
      budget_usd: 1,
      derive: [{ px: 64, format: 'webp' }],
      items: [
        { id: 'mug', prompt: 'a blue ceramic mug on a table' },
        { id: 'lamp', prompt: 'a brass desk lamp' },
        { id: 'chair', prompt: 'an oak chair, studio light' },
        { id: 'refused', prompt: `a ${REFUSED} poster` },
      ],
    });
    if (response.statusCode !== 202) throw new Error(`batch refused: ${response.body}`);
    batchId = response.json<{ id: string }>().id;
    await waitForBatch(h, batchId);

    const created = await h.api.inject({
      method: 'POST',
      url: '/v1/schedules',
      headers: auth('acme'),
      payload: {
        name: 'monday banners',
        cron: '0 9 * * 1',
        timezone: 'Europe/Berlin',
        template: 'Banner {{variation}} for {{date}}',
        variations: 2,
        size: '256x256',
        quality: 'low',
        budget_usd: 5,
      },
    });
    if (created.statusCode !== 201) throw new Error(`schedule refused: ${created.body}`);
    schedule = created.json<ScheduleView>();
  });

  afterAll(async () => {
    await Promise.all(contexts.map((context) => context.close().catch(() => undefined)));
    await browser?.close();
    await h?.stop();
  });

  /** A fresh browser profile (its own cookies), logged in through the form with the tenant's key. */
  async function loggedIn(tenant: keyof typeof TENANTS): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${base}/dashboard`);
    await page.locator('#api-key').fill(TENANTS[tenant]);
    await page.locator('#login-form button[type=submit]').click();
    await page
      .locator('#who')
      .filter({ hasText: `tenant ${tenant}` })
      .waitFor();
    return page;
  }

  it('refuses a wrong key at the login form, then logs in with the acme key into an HttpOnly, SameSite=Strict session', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${base}/dashboard`);
    await page.locator('#api-key').fill('not-a-key-of-anyone-000000');
    await page.locator('#login-form button[type=submit]').click();
    await expect
      .poll(() => page.locator('#login-error').textContent())
      .toBe('that API key is not valid');
    expect(await context.cookies()).toEqual([]);

    await page.locator('#api-key').fill(TENANTS.acme);
    await page.locator('#login-form button[type=submit]').click();
    await page.locator('#who').filter({ hasText: 'tenant acme' }).waitFor();
    const [cookie, ...others] = await context.cookies();
    expect(others).toEqual([]);
    expect(cookie).toMatchObject({
      name: 'rendermill_session',
      httpOnly: true,
      sameSite: 'Strict',
    });
    // The cookie holds a random token, never the key; Redis knows only the token's digest.
    expect(cookie!.value).not.toContain(TENANTS.acme);
    expect(cookie!.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const keys = await h.services.state.keys('rm:session:*');
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.join(' ')).not.toContain(cookie!.value);
  });

  it('lists the batch with its progress bar and its spend against the budget', async () => {
    const page = await loggedIn('acme');
    const row = page.locator(`#batches tr[data-batch-id="${batchId}"]`);
    await row.waitFor();
    const bar = row.locator('.progress');
    expect(await bar.getAttribute('data-done')).toBe('4');
    expect(await bar.getAttribute('data-total')).toBe('4');
    expect(await bar.locator('span.seg-succeeded').count()).toBe(1);
    expect(await bar.locator('span.seg-failed').count()).toBe(1);
    expect(await row.locator('.progress-label').textContent()).toBe(
      '4/4 done · cached 0 · failed 1',
    );
    const batch = (
      await h.api.inject({ method: 'GET', url: `/v1/batches/${batchId}`, headers: auth() })
    ).json<{ spend_usd: number }>();
    expect(batch.spend_usd).toBeGreaterThan(0);
    expect(await row.locator('.spend').textContent()).toBe(
      `$${batch.spend_usd.toFixed(4)} of $1.0000`,
    );
    expect(await row.locator('.status').textContent()).toBe('completed');
    // A realtime batch: its mode, and no provider batch phase.
    expect(await row.locator('.mode-name').textContent()).toBe('realtime');
    expect(await row.locator('.provider-batch').count()).toBe(0);
  });

  it('shows the schedule with its next runs', async () => {
    const page = await loggedIn('acme');
    const row = page.locator(`#schedules tr[data-schedule-id="${schedule.id}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('monday banners');
    const runs = await row.locator('.next-run').allTextContents();
    expect(runs).toEqual(
      schedule.next_runs.slice(0, 3).map((run) => run.replace('T', ' ').replace(/\.\d+Z$/, 'Z')),
    );
  });

  it('opens the batch: a grid of thumbnails that load, the failure with its reason, and a screenshot', async () => {
    const page = await loggedIn('acme');
    await page.locator(`#batches a[href="#/batches/${batchId}"]`).click();
    const images = page.locator('#thumbnails img');
    await expect.poll(() => images.count()).toBe(3);
    // Every thumbnail is really fetched from storage (presigned URLs) and decoded.
    // Polled from here, not with page.waitForFunction: when its first look fails, that polls
    // inside the page by evaluating a string, which the page's CSP (no 'unsafe-eval') refuses.
    await expect
      .poll(
        () =>
          page.evaluate(
            "[...document.querySelectorAll('#thumbnails img')].every((img) => img.complete && img.naturalWidth > 0)",
          ),
        { timeout: 30_000 },
      )
      .toBe(true);
    const sizes = (await page.evaluate(
      "[...document.querySelectorAll('#thumbnails img')].map((img) => ({ width: img.naturalWidth, src: img.src }))",
    )) as { width: number; src: string }[];
    // The batch asked for 64 px copies: the grid shows those, not the 256 px originals.
    for (const { width, src } of sizes) {
      expect(width).toBe(64);
      expect(new URL(src).pathname).toMatch(/64px\.webp$/);
    }
    const shown = await Promise.all(
      (await page.locator('#thumbnails figure').all()).map((f) => f.getAttribute('data-item-id')),
    );
    expect(shown).toEqual(expect.arrayContaining(['mug', 'lamp', 'chair']));

    const failure = page.locator('#failures tr[data-item-id="refused"]');
    await failure.waitFor();
    // The reason the manifest gives: the provider's refusal (gpt-image models say moderation_blocked).
    const manifest = (
      await h.api.inject({ method: 'GET', url: `/v1/batches/${batchId}/manifest`, headers: auth() })
    ).json<{ items: { id: string; error: { code: string; message: string } | null }[] }>();
    const reason = manifest.items.find((item) => item.id === 'refused')?.error;
    expect(reason?.code).toMatch(/^(moderation_blocked|content_policy_violation)$/);
    expect(await failure.locator('.error-code').textContent()).toBe(reason!.code);
    expect(await failure.locator('.error-message').textContent()).toBe(reason!.message);
    expect(reason!.message.length).toBeGreaterThan(0);
    expect(await page.locator('#failures tbody tr').count()).toBe(1);
    expect(await page.locator('#batch-summary .progress').getAttribute('data-done')).toBe('4');

    rmSync(SCREENSHOT, { force: true });
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = readFileSync(SCREENSHOT);
    expect(png.length).toBeGreaterThan(1000);
    expect(png.subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );
  });

  it('follows a running batch without a reload: progress, then its images once it completes', async () => {
    const page = await loggedIn('acme');
    h.sim.setKnobs({ latencyMs: 2500 });
    try {
      const response = await submit(h, {
        model: 'gpt-image-2',
        size: '256x256',
        quality: 'low',
        budget_usd: 1,
        items: [
          { id: 'slow-1', prompt: 'a slow teapot' },
          { id: 'slow-2', prompt: 'a slow kettle' },
        ],
      });
      const running = response.json<{ id: string }>().id;
      await page.goto(`${base}/dashboard#/batches/${running}`);
      await page.locator('#batch-summary .progress').waitFor();
      expect(await page.locator('h1 .status').textContent()).not.toBe('completed');
      expect(await page.locator('#thumbnails img').count()).toBe(0);
    } finally {
      h.sim.setKnobs({ latencyMs: 0 });
    }
    // The page polls the batch while it runs and fetches the manifest when it ends.
    await page.locator('h1 .status').filter({ hasText: 'completed' }).waitFor({ timeout: 20_000 });
    await expect.poll(() => page.locator('#thumbnails img').count(), { timeout: 10_000 }).toBe(2);
    expect(await page.locator('#batch-summary .progress').getAttribute('data-done')).toBe('2');
  });

  it("globex's session sees none of acme's batches", async () => {
    const page = await loggedIn('globex');
    await page.locator('#batches').waitFor();
    await page.getByText('No batches yet.').waitFor();
    expect(await page.locator(`[data-batch-id="${batchId}"]`).count()).toBe(0);
    await page.getByText('No schedules.').waitFor();

    await page.goto(`${base}/dashboard#/batches/${batchId}`);
    await page
      .locator('#view .error')
      .filter({ hasText: `no batch ${batchId}` })
      .waitFor();
    expect(await page.locator('#thumbnails img').count()).toBe(0);
    const direct = await page.request.get(`${base}/v1/batches/${batchId}/manifest`);
    expect(direct.status()).toBe(404);
  });

  it('the API takes the session cookie; a POST made with it needs the CSRF header', async () => {
    const page = await loggedIn('acme');
    const list = await page.request.get(`${base}/v1/batches`);
    expect(list.status()).toBe(200);
    expect((await list.json()).data.map((b: { id: string }) => b.id)).toContain(batchId);

    const forged = await page.request.post(`${base}/v1/batches/${batchId}/cancel`);
    expect(forged.status()).toBe(403);
    expect((await forged.json()).error.code).toBe('csrf_check_failed');
    const ownPage = await page.request.post(`${base}/v1/batches/${batchId}/cancel`, {
      headers: { 'x-rendermill-csrf': '1' },
    });
    // Authenticated, and refused only because the batch has already completed.
    expect(ownPage.status()).toBe(409);
    // Bull Board's page cannot add the header: a same-origin Origin is accepted instead.
    const sameOrigin = await page.request.post(`${base}/v1/batches/${batchId}/cancel`, {
      headers: { origin: base },
    });
    expect(sameOrigin.status()).toBe(409);
    const otherSite = await page.request.post(`${base}/v1/batches/${batchId}/cancel`, {
      headers: { origin: 'https://evil.example' },
    });
    expect(otherSite.status()).toBe(403);
  });

  it('/admin/queues: 401 without a session, 403 for a tenant that is not an operator, Bull Board for an admin', async () => {
    const anonymous = await browser.newContext();
    contexts.push(anonymous);
    const nobody = await (await anonymous.newPage()).goto(`${base}/admin/queues`);
    expect(nobody?.status()).toBe(401);

    const globex = await loggedIn('globex');
    expect(await globex.locator('#admin-link').isHidden()).toBe(true);
    const refused = await globex.goto(`${base}/admin/queues`);
    expect(refused?.status()).toBe(403);
    expect(JSON.parse((await refused?.text()) ?? '{}')).toEqual({
      error: {
        code: 'forbidden',
        message: `/admin/queues shows every tenant's jobs: only the tenants in RENDERMILL_ADMIN_TENANTS may open it, and "globex" is not one`,
      },
    });
    const refusedApi = await globex.request.get(`${base}/admin/queues/api/queues`);
    expect(refusedApi.status()).toBe(403);

    const acme = await loggedIn('acme');
    expect(await acme.locator('#admin-link').isVisible()).toBe(true);
    const board = await acme.goto(`${base}/admin/queues`);
    expect(board?.status()).toBe(200);
    await acme.getByText('render', { exact: true }).first().waitFor({ timeout: 15_000 });
    expect(await acme.title()).toContain('rendermill queues');
  });

  it('logging out ends the session: the cookie is cleared and the token no longer works', async () => {
    const page = await loggedIn('acme');
    const [cookie] = await page.context().cookies();
    await page.locator('#logout').click();
    await page.locator('#login').waitFor();
    expect(await page.context().cookies()).toEqual([]);
    const replayed = await fetch(`${base}/v1/batches`, {
      headers: { cookie: `rendermill_session=${cookie!.value}` },
    });
    expect(replayed.status).toBe(401);
  });
});
