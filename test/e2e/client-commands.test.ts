import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchView, Manifest } from '../../src/batches/batch-view.js';
import { DEFAULT_API_URL } from '../../src/cli/client/client-config.js';
import { loadConfig } from '../../src/config/config.js';
import { closedPort } from '../support/closed-port.js';
import { cleanEnv, runCli, startCli, type CliRun } from '../support/cli.js';
import { startHarness, TENANTS, type Harness } from '../support/harness.js';

/**
 * The client commands (`submit`, `status`, `list`, `manifest`, `cancel`, `estimate`,
 * `schedules`) run as the built `rendermill` command against the API listening on a real port,
 * with real Redis, S3, workers and the provider simulator behind it.
 */
let h: Harness;
let apiUrl: string;
let env: NodeJS.ProcessEnv;
let dir: string;

beforeAll(async () => {
  // The primary route's Batch API on, for the provider_batch mode flags; realtime is unchanged.
  h = await startHarness({
    env: {
      RENDERMILL_BATCH_API: 'true',
      RENDERMILL_PROVIDER_BATCH_POLL_MS: '100',
      RENDERMILL_PROVIDER_BATCH_GATHER_MS: '300',
    },
  });
  await h.api.listen({ port: 0, host: '127.0.0.1' });
  apiUrl = `http://127.0.0.1:${(h.api.server.address() as AddressInfo).port}`;
  env = cleanEnv({ RENDERMILL_URL: apiUrl, RENDERMILL_API_KEY: TENANTS.acme });
  dir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-client-'));
}, 60_000);

afterAll(async () => {
  await h?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const rendermill = (args: string[], extraEnv: Record<string, string> = {}) =>
  runCli(args, { ...env, ...extraEnv });

/** A CSV catalog of `rows` products; `tag` keeps each test's prompts out of the others' cache. */
async function csvCatalog(name: string, rows: number, tag: string, extra = ''): Promise<string> {
  const lines = ['sku,title,colour'];
  for (let i = 1; i <= rows; i++) lines.push(`SKU-${i},${tag} mug ${i},blue`);
  const file = path.join(dir, name);
  await writeFile(file, lines.join('\n') + '\n' + extra);
  return file;
}

const TEMPLATE = 'a product photo of a {{colour}} {{title}}';
const CHEAP = ['--template', TEMPLATE, '--size', '256x256', '--quality', 'low'];

/** The batch id `submit` prints alone on the first line of stdout. */
function batchIdOf(run: CliRun): string {
  const id = run.stdout.split('\n')[0] ?? '';
  expect(id, run.stdout + run.stderr).toMatch(/^batch_\w+$/);
  return id;
}

/** stderr is one line starting `rendermill: ` — what a person reads when a command fails. */
function expectOneLineError(run: CliRun, pattern: RegExp) {
  expect(run.code, run.stdout + run.stderr).toBe(1);
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^rendermill: /);
  expect(lines[0]).toMatch(pattern);
}

async function batchById(id: string) {
  const batch = await h.services.store.get(id);
  if (!batch) throw new Error(`no batch ${id}`);
  return batch;
}

describe('rendermill submit', () => {
  it('--wait follows a CSV catalog to its end and exits 0 with a summary', async () => {
    const file = await csvCatalog('wait.csv', 6, 'wait');
    const run = await rendermill(['submit', file, ...CHEAP, '--budget', '1', '--wait']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const id = batchIdOf(run);
    expect(run.stdout).toMatch(new RegExp(`Batch ${id} completed in [\\d.]+ s: 6 images`));
    expect(run.stdout).toMatch(/6 total · 6 rendered · 0 cached · 0 failed · 0 over budget/);
    expect(run.stdout).toMatch(/spend {5}\$0\.\d{4} of \$1\.0000 budget/);
    expect(run.stdout).toMatch(/SKU-1 {2}succeeded/);
    // Not a TTY: the progress comes as plain lines on stderr, out of what a script captures.
    expect(run.stderr).toMatch(/6\/6 done \| cached 0 \| failed 0 \| spend \$[\d.]+ of \$1\.0000/);
    const batch = await batchById(id);
    expect(batch.status).toBe('completed');
    expect(batch.counts.succeeded).toBe(6);
  });

  it('a re-run comes from the cache, at $0', async () => {
    const file = await csvCatalog('wait.csv', 6, 'wait');
    const run = await rendermill(['submit', file, ...CHEAP, '--wait']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/6 total · 0 rendered · 6 cached/);
    expect(run.stdout).toMatch(/spend {5}\$0\.0000 · \$0\.\d+ saved by the cache/);
  });

  it('without --wait prints the id alone, and with --json the API’s answer', async () => {
    const file = await csvCatalog('nowait.csv', 2, 'nowait');
    const plain = await rendermill(['submit', file, ...CHEAP]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.trim()).toMatch(/^batch_\w+$/);
    expect(plain.stderr).toMatch(/2 items queued/);

    const json = await rendermill(['submit', file, ...CHEAP, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const answer = JSON.parse(json.stdout) as BatchView;
    expect(answer).toMatchObject({ counts: { total: 2 }, budget_usd: null });
    expect(answer.id).not.toBe(plain.stdout.trim());
  });

  it('a catalog with a bad row is refused whole: exit 1, one line naming the line', async () => {
    // Line 4 repeats SKU-1's id.
    const file = await csvCatalog('bad.csv', 3, 'bad', 'SKU-1,bad mug again,red\n');
    const before = (await h.services.store.pageOfIds('acme', undefined, 1000))?.length;
    const run = await rendermill(['submit', file, ...CHEAP]);
    expectOneLineError(
      run,
      /line 5: id: id "SKU-1" is also used by line 2 \(HTTP 400, --on-invalid skip queues the valid rows\)$/,
    );
    expect(run.stdout).toBe('');
    expect((await h.services.store.pageOfIds('acme', undefined, 1000))?.length).toBe(before);
  });

  it('--on-invalid skip queues the good rows and says which were left out', async () => {
    const file = await csvCatalog('skip.csv', 3, 'skip', 'SKU-1,skip mug again,red\n');
    const run = await rendermill(['submit', file, ...CHEAP, '--on-invalid', 'skip', '--wait']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stderr).toMatch(/3 items queued/);
    expect(run.stderr).toMatch(/1 invalid row\(s\) skipped:\n {4}line 5: id: .*SKU-1/);
    expect(run.stdout).toMatch(/3 total · 3 rendered/);
  });

  it('exits 2 when the batch ends with failed items, and names them', async () => {
    h.sim.setKnobs({ contentPolicyPattern: 'forbidden' });
    try {
      const file = path.join(dir, 'policy.csv');
      await writeFile(file, 'sku,title,colour\nOK-1,fine mug,blue\nNO-1,forbidden mug,red\n');
      const run = await rendermill(['submit', file, ...CHEAP, '--wait']);
      expect(run.code, run.stdout + run.stderr).toBe(2);
      expect(run.stdout).toMatch(/2 total · 1 rendered · 0 cached · 1 failed/);
      expect(run.stdout).toMatch(/✗ NO-1: moderation_blocked — .*safety system/);
    } finally {
      h.sim.setKnobs({ contentPolicyPattern: undefined });
    }
  });

  it('streams JSON Lines, sends a .json array of rows as JSON Lines, and a .json object as the batch request', async () => {
    const jsonl = path.join(dir, 'rows.jsonl');
    await writeFile(
      jsonl,
      [
        '{"sku":"J-1","title":"jsonl mug","colour":"red"}',
        '{"sku":"J-2","title":"jsonl cup","colour":"red"}',
      ].join('\n'),
    );
    const fromJsonl = await rendermill(['submit', jsonl, ...CHEAP, '--budget', '0.5', '--json']);
    expect(fromJsonl.code, fromJsonl.stderr).toBe(0);
    expect(JSON.parse(fromJsonl.stdout)).toMatchObject({ counts: { total: 2 }, budget_usd: 0.5 });

    const array = path.join(dir, 'rows.json');
    await writeFile(array, JSON.stringify([{ sku: 'A-1', title: 'array mug', colour: 'green' }]));
    const fromArray = await rendermill(['submit', array, ...CHEAP, '--json']);
    expect(fromArray.code, fromArray.stderr).toBe(0);
    const arrayBatch = JSON.parse(fromArray.stdout) as BatchView;
    expect(arrayBatch.counts.total).toBe(1);
    expect((await h.services.store.items(arrayBatch.id))[0]?.spec.prompt).toBe(
      'a product photo of a green array mug',
    );

    const request = path.join(dir, 'request.json');
    await writeFile(
      request,
      JSON.stringify({
        size: '256x256',
        quality: 'low',
        budget_usd: 9,
        items: [{ id: 'r-1', prompt: 'request mug' }],
      }),
    );
    // A flag amends the request's own value.
    const fromRequest = await rendermill(['submit', request, '--budget', '2', '--json']);
    expect(fromRequest.code, fromRequest.stderr).toBe(0);
    expect(JSON.parse(fromRequest.stdout)).toMatchObject({ counts: { total: 1 }, budget_usd: 2 });

    expectOneLineError(
      await rendermill(['submit', request, '--template', TEMPLATE]),
      /JSON batch request: .*--template and --id-column do not apply/,
    );
  });

  it('Ctrl-C during --wait leaves the batch running and says how to follow it (exit 130)', async () => {
    h.sim.setKnobs({ latencyMs: 1500 });
    try {
      const file = await csvCatalog('interrupt.csv', 12, 'interrupt');
      const child = startCli(['submit', file, ...CHEAP, '--wait'], env);
      await child.waitFor(/^batch_\w+$/m);
      const id = /^(batch_\w+)$/m.exec(child.output())![1]!;
      // Its first progress line: it is following the batch.
      await child.waitFor(/\d+\/12 done/);
      child.child.kill('SIGINT');
      expect(await child.exited, `${child.output()}\nsignal: ${child.child.signalCode}`).toBe(130);
      expect(child.output()).toMatch(
        new RegExp(
          `interrupted: batch ${id} carries on in the API; follow it with \`rendermill status ${id}\``,
        ),
      );
      const batch = await batchById(id);
      expect(batch.status).not.toBe('cancelled');
      expect(batch.status).not.toBe('cancelling');
    } finally {
      h.sim.setKnobs({ latencyMs: 0 });
    }
  });
});

describe('rendermill status, list, manifest', () => {
  let id: string;
  beforeAll(async () => {
    const file = await csvCatalog('lookup.csv', 4, 'lookup');
    const run = await rendermill(['submit', file, ...CHEAP, '--budget', '1', '--wait']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    id = batchIdOf(run);
  }, 60_000);

  it('status shows a batch, as text and as JSON', async () => {
    const text = await rendermill(['status', id]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^Batch ${id} completed`));
    expect(text.stdout).toMatch(/done {6}4\/4\n/);
    expect(text.stdout).toMatch(/items {5}4 total · 4 rendered/);
    expect(text.stdout).toMatch(new RegExp(`manifest  batches/${id}/manifest.json`));

    const json = await rendermill(['status', id, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      id,
      status: 'completed',
      counts: { total: 4, succeeded: 4 },
    });
  });

  it('status of a batch that does not exist, or is another tenant’s: exit 1, one line', async () => {
    expectOneLineError(
      await rendermill(['status', 'batch_nope']),
      /no batch batch_nope \(HTTP 404\)/,
    );
    expectOneLineError(
      await rendermill(['status', id], { RENDERMILL_API_KEY: TENANTS.globex }),
      /\(HTTP 404\)/,
    );
  });

  it('list shows the newest batches, follows pages only as far as --limit, and filters', async () => {
    const table = await rendermill(['list']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(
      /^ID +STATUS +DONE +SPEND +BUDGET +CREATED +SCHEDULE$/,
    );
    expect(table.stdout).toMatch(new RegExp(`${id} +completed +4/4 +\\$0\\.\\d{4} +\\$1\\.0000`));

    const all = JSON.parse(
      (await rendermill(['list', '--limit', '100', '--json'])).stdout,
    ) as BatchView[];
    expect(all.length).toBeGreaterThan(3);
    expect(all.map((b) => b.id)).toContain(id);

    const three = JSON.parse(
      (await rendermill(['list', '--limit', '3', '--json'])).stdout,
    ) as BatchView[];
    expect(three.map((b) => b.id)).toEqual(all.slice(0, 3).map((b) => b.id));

    const completed = JSON.parse(
      (await rendermill(['list', '--status', 'completed', '--limit', '100', '--json'])).stdout,
    ) as BatchView[];
    expect(completed.length).toBeGreaterThan(0);
    expect(completed.every((b) => b.status === 'completed')).toBe(true);

    const badLimit = await rendermill(['list', '--limit', 'ten']);
    expect(badLimit.code).toBe(1);
    expect(badLimit.stderr).toMatch(/--limit must be a positive integer/);
  });

  it('manifest goes to stdout as JSON, or to --out as CSV', async () => {
    const json = await rendermill(['manifest', id]);
    expect(json.code, json.stderr).toBe(0);
    const manifest = JSON.parse(json.stdout) as Manifest;
    expect(manifest.batch.id).toBe(id);
    expect(manifest.items.map((i) => i.id).sort()).toEqual(['SKU-1', 'SKU-2', 'SKU-3', 'SKU-4']);

    const out = path.join(dir, 'manifest.csv');
    const csv = await rendermill(['manifest', id, '--format', 'csv', '--out', out]);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout).toBe('');
    expect(csv.stderr).toMatch(`manifest of ${id} (csv) written to ${out}`);
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^id,status,model,/);
    expect(lines).toHaveLength(5);
    expect(lines.slice(1).every((line) => /^SKU-\d,succeeded,/.test(line))).toBe(true);
  });
});

describe('rendermill cancel', () => {
  it('cancels the queued items of a slow batch; a --wait on it exits 3', async () => {
    // Each render takes 2 s: a worker holds 8 at once, so most of the 30 are still queued.
    h.sim.setKnobs({ latencyMs: 2000 });
    try {
      const file = await csvCatalog('cancel.csv', 30, 'cancel');
      const waiting = startCli(['submit', file, ...CHEAP, '--wait'], env);
      await waiting.waitFor(/^batch_\w+$/m);
      const id = /^(batch_\w+)$/m.exec(waiting.output())![1]!;

      const run = await rendermill(['cancel', id]);
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toMatch(
        new RegExp(`^Batch ${id} cancell(ing|ed): 30 total · .* · \\d+ cancelled`),
      );

      expect(await waiting.exited, waiting.output()).toBe(3);
      expect(waiting.output()).toMatch(new RegExp(`Batch ${id} cancelled in`));
      const batch = await batchById(id);
      expect(batch.status).toBe('cancelled');
      expect(batch.counts.cancelled).toBeGreaterThan(10);

      // Cancelling what has ended is refused, in one line.
      expectOneLineError(await rendermill(['cancel', id]), /already cancelled \(HTTP 409\)/);
    } finally {
      h.sim.setKnobs({ latencyMs: 0 });
    }
  });
});

describe('rendermill estimate', () => {
  it('prices a catalog with the cache’s answer, queueing nothing', async () => {
    const file = await csvCatalog('estimate.csv', 5, 'estimate');
    const before = h.sim.stats().billedImages;
    const fresh = await rendermill(['estimate', file, ...CHEAP, '--budget', '1']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toMatch(/^Estimate: 5 items · 0 cached · 5 to render \(5 images\)/);
    expect(fresh.stdout).toMatch(/price {5}up to \$0\.\d{4} · typically \$0\.\d{4}/);
    expect(fresh.stdout).toMatch(/budget {4}\$1\.0000: fits/);
    // The plan per route: the one configured account here.
    expect(fresh.stdout).toMatch(
      /routing {3}priority\n {4}primary {2}\S+: 5 images · up to \$0\.\d{4}/,
    );

    // The catalog every other test rendered comes back from the cache.
    const cached = JSON.parse(
      (await rendermill(['estimate', await csvCatalog('wait.csv', 6, 'wait'), ...CHEAP, '--json']))
        .stdout,
    ) as { items: number; items_cached: number; max_usd: number };
    expect(cached).toMatchObject({ items: 6, items_cached: 6, max_usd: 0 });
    expect(h.sim.stats().billedImages).toBe(before);
  });
});

describe('provider_batch mode from the command line', () => {
  const BATCHED = [...CHEAP, '--model', 'gpt-image-2', '--mode', 'provider_batch'];

  it('estimate prices it at the Batch API’s price and says so', async () => {
    const file = await csvCatalog('batch-estimate.csv', 4, 'batch-estimate');
    const realtime = await rendermill(['estimate', file, ...CHEAP, '--model', 'gpt-image-2']);
    expect(realtime.stdout).toMatch(/mode {6}realtime\n/);
    const run = await rendermill(['estimate', file, ...BATCHED]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /price {5}up to \$0\.\d{4} · typically \$0\.\d{4} \(the Batch API’s price\)/,
    );
    expect(run.stdout).toMatch(/mode {6}provider_batch\n/);
    expect(run.stdout).toMatch(/time {6}within 24\.0 h: the provider batch’s window/);
    const far = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const auto = JSON.parse(
      (
        await rendermill([
          'estimate',
          file,
          ...CHEAP,
          '--model',
          'gpt-image-2',
          '--mode',
          'auto',
          '--complete-by',
          far,
          '--json',
        ])
      ).stdout,
    ) as { mode: string; mode_requested: string };
    expect(auto).toMatchObject({ mode: 'provider_batch', mode_requested: 'auto' });
  });

  it('submit --mode provider_batch --wait renders through the Batch API and names its batch', async () => {
    const file = await csvCatalog('batch-submit.csv', 3, 'batch-submit');
    const run = await rendermill(['submit', file, ...BATCHED, '--on-expiry', 'realtime', '--wait']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const id = batchIdOf(run);
    const batch = await batchById(id);
    expect(batch).toMatchObject({ mode: 'provider_batch', on_expiry: 'realtime' });
    expect(run.stdout).toMatch(/mode {6}provider_batch · provider batch batch_\w+\n/);
    const status = await rendermill(['status', id]);
    expect(status.stdout).toMatch(/mode {6}provider_batch · provider batch batch_\w+\n/);
    expect(status.stdout).toMatch(/progress {2}provider batch stored 3\/3\n/);
  }, 60_000);

  it('refuses a mode it does not know before sending anything', async () => {
    const file = await csvCatalog('batch-bad.csv', 1, 'batch-bad');
    const run = await rendermill(['submit', file, ...CHEAP, '--mode', 'overnight']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/--mode/);
  });
});

describe('rendermill schedules', () => {
  it('create, list, delete', async () => {
    const template = path.join(dir, 'banner.txt');
    await writeFile(template, 'a {{theme}} banner for {{campaign}}, take {{variation}}');
    const created = await rendermill([
      'schedules',
      'create',
      '--name',
      'monday banners',
      '--cron',
      '0 9 * * 1',
      '--timezone',
      'Europe/Berlin',
      '--template',
      template,
      '--variations',
      '3',
      '--variable',
      'theme=winter',
      '--variable',
      'campaign=sale',
      '--size',
      '256x256',
      '--budget',
      '5',
    ]);
    expect(created.code, created.stdout + created.stderr).toBe(0);
    const id = created.stdout.trim();
    expect(id).not.toBe('');
    expect(created.stderr).toMatch(
      /monday banners: 0 9 \* \* 1 \(Europe\/Berlin\), at most \$5 a run/,
    );
    expect(created.stderr).toMatch(/next runs \d{4}-\d\d-\d\d \d\d:00:00Z/);

    const shown = JSON.parse((await rendermill(['schedules', 'show', id])).stdout) as Record<
      string,
      unknown
    >;
    expect(shown).toMatchObject({
      id,
      template: 'a {{theme}} banner for {{campaign}}, take {{variation}}',
      variations: 3,
    });
    expect(shown.variables).toEqual({ theme: 'winter', campaign: 'sale' });

    const listed = await rendermill(['schedules', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(
      new RegExp(`${id} +monday banners +0 9 \\* \\* 1 +Europe/Berlin +\\d{4}-`),
    );

    const deleted = await rendermill(['schedules', 'delete', id]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(`deleted schedule ${id}`);
    const after = JSON.parse((await rendermill(['schedules', 'list', '--json'])).stdout) as {
      id: string;
    }[];
    expect(after.map((s) => s.id)).not.toContain(id);
    expectOneLineError(await rendermill(['schedules', 'delete', id]), /\(HTTP 404\)/);
  });

  it('create from --file, and refuses a schedule the flags cannot make', async () => {
    const file = path.join(dir, 'schedule.json');
    await writeFile(
      file,
      JSON.stringify({
        name: 'from file',
        cron: '30 8 * * *',
        timezone: 'UTC',
        template: 'a sunrise mug',
        variations: 1,
        budget_usd: 1,
      }),
    );
    const created = await rendermill([
      'schedules',
      'create',
      '--file',
      file,
      '--name',
      'renamed',
      '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const schedule = JSON.parse(created.stdout) as {
      id: string;
      name: string;
      next_runs: string[];
    };
    expect(schedule.name).toBe('renamed');
    expect(schedule.next_runs[0]).toMatch(/T08:30:00/);
    await rendermill(['schedules', 'delete', schedule.id]);

    expectOneLineError(
      await rendermill(['schedules', 'create', '--name', 'x', '--cron', '0 9 * * *']),
      /needs --name, --cron and --template/,
    );
    expectOneLineError(
      await rendermill(['schedules', 'create', '--file', file, '--cron', 'every monday']),
      /\(HTTP 400/,
    );
  });
});

describe('when the command cannot do its job: exit 1, one line', () => {
  it('a wrong key', async () => {
    const file = await csvCatalog('key.csv', 2, 'key');
    expectOneLineError(
      await rendermill(['submit', file, ...CHEAP], { RENDERMILL_API_KEY: 'not-a-key-0123456789' }),
      /a valid API key is required.* \(HTTP 401, check RENDERMILL_API_KEY\)$/,
    );
  });

  it('no key at all', async () => {
    const { RENDERMILL_API_KEY: _unset, ...withoutKey } = env;
    const run = await runCli(['list'], withoutKey);
    expectOneLineError(run, /RENDERMILL_API_KEY is not set/);
  });

  it('the API down', async () => {
    const port = await closedPort();
    const run = await rendermill(['list'], { RENDERMILL_URL: `http://127.0.0.1:${port}` });
    expectOneLineError(
      run,
      new RegExp(
        `^rendermill: cannot reach the API at http://127\\.0\\.0\\.1:${port}: connection refused — is \`rendermill api\` running\\? \\(RENDERMILL_URL\\)$`,
      ),
    );
  });

  it('a file that is not there, or not a catalog, and bad flags', async () => {
    expectOneLineError(
      await rendermill(['submit', path.join(dir, 'nope.csv')]),
      /cannot read .*nope\.csv: no such file/,
    );
    const txt = path.join(dir, 'catalog.txt');
    await writeFile(txt, 'sku\n1\n');
    expectOneLineError(
      await rendermill(['estimate', txt]),
      /cannot tell what .*catalog\.txt holds/,
    );
    const run = await rendermill(['submit', txt, '--on-invalid', 'ignore']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/--on-invalid.*ignore.*is invalid/);
  });

  it('the default URL is the API’s default port on this machine', () => {
    expect(DEFAULT_API_URL).toBe(`http://127.0.0.1:${loadConfig({}).port}`);
  });
});

describe('a POST whose answer was lost', () => {
  let proxy: Server;
  let proxyUrl: string;
  const keys: string[] = [];
  let firstAnswer: { id?: string } = {};
  let mode: 'reset' | '503' = 'reset';

  /** Forwards to the API; the first POST reaches it, but its answer is cut (or turned into a 503). */
  beforeAll(async () => {
    proxy = createServer((req, res) => {
      void (async () => {
        const body = await readAll(req);
        if (req.method === 'POST') keys.push(String(req.headers['idempotency-key']));
        const response = await fetch(`${apiUrl}${req.url}`, {
          method: req.method,
          headers: {
            authorization: String(req.headers.authorization),
            'content-type': String(req.headers['content-type'] ?? 'application/json'),
            ...(req.headers['idempotency-key']
              ? { 'idempotency-key': String(req.headers['idempotency-key']) }
              : {}),
          },
          body: req.method === 'GET' ? undefined : body,
        });
        const text = await response.text();
        if (req.method === 'POST' && keys.length === 1) {
          firstAnswer = JSON.parse(text) as { id?: string };
          if (mode === 'reset') return req.socket.destroy();
          res.writeHead(503, { 'content-type': 'application/json' });
          return res.end('{"error":{"code":"unavailable","message":"try again"}}');
        }
        res.writeHead(response.status, {
          'content-type': response.headers.get('content-type') ?? '',
        });
        res.end(text);
      })();
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => proxy.close(() => resolve())));

  it.each(['reset', '503'] as const)(
    'is sent again with the same Idempotency-Key, and makes one batch (%s)',
    async (how) => {
      mode = how;
      keys.length = 0;
      const file = await csvCatalog(`retry-${how}.csv`, 2, `retry-${how}`);
      const run = await rendermill(['submit', file, ...CHEAP], { RENDERMILL_URL: proxyUrl });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(keys).toHaveLength(2);
      expect(keys[1]).toBe(keys[0]);
      expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
      // The API recognised the second try: the same batch, not a second one.
      expect(run.stdout.trim()).toBe(firstAnswer.id);
    },
  );
});

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
