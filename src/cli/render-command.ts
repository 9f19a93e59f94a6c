import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import {
  buildManifest,
  providerBatchProgress,
  providerBatchSummary,
  type Manifest,
} from '../batches/batch-view.js';
import { ProviderBatchStore } from '../batches/provider-batch-store.js';
import type { BatchRecord } from '../contracts/batch-records.js';
import { submitBatch } from '../batches/submit-batch.js';
import { catalogToBatch } from '../catalog/catalog-batch.js';
import { CatalogError, readCatalog } from '../catalog/read-catalog.js';
import { PromptTemplate, readTemplateArgument } from '../catalog/template.js';
import { loadConfig } from '../config/config.js';
import type { RoutingStrategy } from '../config/route-kinds.js';
import { RequestValidationError } from '../errors.js';
import { createLogger } from '../logging.js';
import { startServices, type Services } from '../runtime/services.js';
import { installFatalErrorPolicy } from '../metrics/fatal-errors.js';
import { rateLimitLine, submitDepsFor } from '../runtime/wiring.js';
import { startRenderWorkers } from '../../workers/render-workers.js';
import { EXIT } from './exit-codes.js';
import { createSnapshotDisplay, formatUsd, recordSnapshot } from './progress.js';
import { manifestKey } from '../batches/manifest-files.js';
import { modeFields, type ModeFlags } from './mode-options.js';
import { modeLine } from './client/batch-summary.js';

export interface RenderOptions extends ModeFlags {
  template: string;
  size?: string;
  model?: string;
  quality?: string;
  n?: number;
  budget?: number;
  routing?: RoutingStrategy;
  idColumn?: string;
  out?: string;
}

const POLL_MS = 250;
const say = (line = '') => process.stdout.write(`${line}\n`);

/**
 * `rendermill render`: the main job in one command. Brings up whatever is not configured,
 * queues the catalog as one batch, renders it with in-process workers while showing progress,
 * then prints a summary and copies the images and manifest to a local folder.
 */
export async function renderCommand(catalogPath: string, options: RenderOptions): Promise<number> {
  const config = loadConfig();
  const template = new PromptTemplate(await readTemplateArgument(options.template));
  const catalog = await readCatalog(catalogPath);
  const request = catalogToBatch(catalog, {
    template,
    idColumn: options.idColumn,
    defaults: {
      model: options.model,
      size: options.size,
      quality: options.quality,
      n: options.n,
      budget_usd: options.budget,
      routing: options.routing,
      ...modeFields(options),
      metadata: { source: path.basename(catalogPath) },
    },
  });

  const logFile = path.resolve(config.dataDir, 'logs', 'rendermill.log');
  await mkdir(path.dirname(logFile), { recursive: true });
  const logger = createLogger(config.logLevel, pino.destination({ dest: logFile, sync: false }));
  installFatalErrorPolicy({ logger, announce: (line) => process.stderr.write(`${line}\n`) });

  say(`rendermill render ${catalogPath}: ${request.items.length} items`);
  const services = await startServices(config, logger, { embed: true, provider: true });
  const stop = () => {
    say('\ninterrupted: in-flight items finish; queued items stay queued for the next worker');
    void shutdown().then(() => process.exit(130));
  };
  let workers: ReturnType<typeof startRenderWorkers> | undefined;
  const shutdown = async () => {
    await workers?.close();
    await services.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (const line of services.embedded) say(`  embedded ${line}`);
    say(`  rate limit ${rateLimitLine(services, options.model)}`);
    say(`  log ${logFile}`);

    let batch: BatchRecord;
    try {
      batch = await submitBatch(submitDepsFor(services), 'local', request);
    } catch (error) {
      if (error instanceof RequestValidationError) throw catalogError(error, catalog.rows);
      throw error;
    }
    say(`  batch ${batch.id} queued`);
    const startedAt = Date.now();
    workers = startRenderWorkers(services);
    const finished = await waitForManifest(services, batch.id, startedAt);
    const seconds = (Date.now() - startedAt) / 1000;

    const manifest = await buildManifest(
      finished,
      await services.store.items(batch.id),
      (key) => services.storage.uri(key),
      await providerBatchProgress(new ProviderBatchStore(services.state), finished),
    );
    const outDir = path.resolve(options.out ?? path.join(config.dataDir, 'output', batch.id));
    await exportBatch(services, manifest, outDir);
    printSummary(services, finished, manifest, seconds, outDir);
    const allGood = finished.counts.succeeded + finished.counts.cached === finished.total;
    return allGood ? EXIT.ok : EXIT.itemsFailed;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await shutdown();
  }
}

/** Names the catalog line of the first bad item, which is what a person fixes. */
function catalogError(error: RequestValidationError, rows: { line: number }[]): CatalogError {
  const match = /^items\[(\d+)\]/.exec(error.field ?? '');
  const line = match ? rows[Number(match[1])]?.line : undefined;
  return new CatalogError(line ? `catalog line ${line}: ${error.message}` : error.message);
}

async function waitForManifest(
  services: Services,
  batchId: string,
  startedAt: number,
): Promise<BatchRecord> {
  const progress = createSnapshotDisplay(process.stdout, startedAt);
  const providerBatches = new ProviderBatchStore(services.state);
  try {
    for (;;) {
      const batch = await services.store.get(batchId);
      if (!batch) throw new Error(`batch ${batchId} disappeared from Redis`);
      const parts = await providerBatchProgress(providerBatches, batch);
      progress.update(recordSnapshot(batch, parts && providerBatchSummary(batch, parts)));
      if (batch.status === 'completed' && batch.manifest_key) return batch;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    progress.stop();
  }
}

const safeName = (text: string) => text.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100);

/** Copies every image and the manifest to a plain folder a person can open. */
async function exportBatch(services: Services, manifest: Manifest, outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  for (const item of manifest.items) {
    for (const [i, image] of item.images.entries()) {
      const object = await services.storage.get(image.key);
      if (!object)
        throw new Error(`image ${image.key} of item ${item.id} is missing from the bucket`);
      const ext = path.extname(image.key);
      const suffix = item.images.length > 1 ? `-${i}` : '';
      await writeFile(path.join(outDir, `${safeName(item.id)}${suffix}${ext}`), object.body);
    }
  }
  await writeFile(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

function printSummary(
  services: Services,
  batch: BatchRecord,
  manifest: Manifest,
  seconds: number,
  outDir: string,
) {
  const images = manifest.items.reduce((sum, item) => sum + item.images.length, 0);
  const c = batch.counts;
  const bucket = services.storage.bucket;
  say('');
  say(
    `Batch ${batch.id} ${batch.status} in ${seconds.toFixed(1)} s: ${images} images, ${(images / seconds).toFixed(1)} images/s`,
  );
  say(
    `  items     ${batch.total} total · ${c.succeeded} rendered · ${c.cached} cached · ${c.failed} failed · ${c.budget_exceeded} over budget`,
  );
  say(
    `  spend     ${formatUsd(batch.spent_micros)}${batch.budget_micros === undefined ? '' : ` of ${formatUsd(batch.budget_micros)} budget`}${batch.saved_micros > 0 ? ` · ${formatUsd(batch.saved_micros)} saved by the cache` : ''}`,
  );
  say(`  routes    ${routeLine(manifest)}`);
  say(`  mode      ${modeLine(manifest.batch)}`);
  say(`  images    s3://${bucket}/images/`);
  say(`  manifest  s3://${bucket}/${manifestKey(batch.id, 'json')} (and .csv, .jsonl)`);
  say(`  local     ${outDir}/ (images and manifest.json)`);
  const failures = manifest.items.filter((i) => i.error);
  for (const item of failures.slice(0, 5))
    say(`  ✗ ${item.id}: ${item.error?.code} — ${item.error?.message}`);
  if (failures.length > 5) say(`  … and ${failures.length - 5} more failures in the manifest`);
  say('');
  say('  first items:');
  for (const item of manifest.items.slice(0, 3)) {
    say(`    ${item.id}  ${item.status}  $${item.cost_usd}  ${item.images[0]?.key ?? '-'}`);
  }
}

/** Where the items were rendered and what each route cost: `replicate 40 · $0.12, fal 10 · $0.04`. */
function routeLine(manifest: Manifest): string {
  const byRoute = new Map<string, { items: number; usd: number }>();
  for (const item of manifest.items) {
    if (!item.route) continue;
    const route = byRoute.get(item.route) ?? { items: 0, usd: 0 };
    route.items += 1;
    route.usd += item.cost_usd;
    byRoute.set(item.route, route);
  }
  if (byRoute.size === 0) return 'none (every item from the cache)';
  return [...byRoute]
    .map(([name, r]) => `${name} ${r.items} · ${formatUsd(Math.round(r.usd * 1_000_000))}`)
    .join(', ');
}
