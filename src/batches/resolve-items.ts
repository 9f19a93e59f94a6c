import { completeHit, renderedByCache, reusable, savedBy, storedImage } from '../cache/reuse.js';
import type { CachedImage, ResultCache } from '../cache/result-cache.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { hashNeedsInputs, requestHash } from '../models/request-hash.js';
import { resolveItem } from './validate-item.js';
import { type FieldProblem } from '../errors.js';
import { derivationName, type DeriveSpec } from '../contracts/derive-spec.js';
import { MAX_REPORTED_PROBLEMS, validationError, zodProblems } from '../request-validation.js';
import {
  emptyTally,
  tallyItems,
  type ItemRecord,
  type ItemTally,
} from '../contracts/batch-records.js';
import { batchItemSchema } from '../contracts/batch-request.js';
import type { BatchSource } from './batch-source.js';
import { whyNotBatchable } from './batch-mode.js';
import type { RouteOffers } from './route-offers.js';

export interface ResolveDeps {
  /** When given, items whose every image is already cached are settled at once, $0, no job. */
  cache?: ResultCache | undefined;
  registry: ModelRegistry;
  defaultModel: string;
  enforceRetirements: boolean;
  /** The routes serving a model, their prices, limits and Batch APIs. */
  routeOffers?: RouteOffers | undefined;
}

/** Items resolved and handed on in groups of this many: memory stays flat whatever the size. */
export const RESOLVE_CHUNK = 1_000;

/** What a source resolved to: the accepted items' tally, and the rows that were not. */
export interface ResolvedItems {
  tally: ItemTally;
  /** Problems of rejected rows, in line order (the first 50). */
  problems: FieldProblem[];
  /** Rows rejected in all. */
  rejected: number;
  /** Accepted items no provider batch could take (mode `auto` only; else 0). */
  unbatchable: number;
}

/**
 * Validates a batch's items as they arrive — shape, duplicates, then every item against the
 * model registry — and resolves each: its spec, its request hash, and whether the cache
 * already holds all its images (then it is `cached`, at $0). Accepted items go to `accept` in
 * chunks. With `onInvalid: 'reject'` any bad row refuses the whole batch: reading goes on, to
 * report every problem at once (RequestValidationError), but nothing more is accepted.
 */
export async function resolveItems(
  deps: ResolveDeps,
  tenant: string,
  source: BatchSource,
  now: Date,
  accept: (items: ItemRecord[]) => Promise<void>,
): Promise<ResolvedItems> {
  const {
    budget_usd: _budget,
    metadata: _metadata,
    webhook_url: _webhook,
    cache,
    derive,
    mode,
    complete_by: _completeBy,
    on_expiry: _onExpiry,
    ...defaults
  } = source.options;
  const catalog = source.format !== 'json';
  const problems: FieldProblem[] = [];
  let rejected = 0;
  let unbatchable = 0;
  const duplicateDerivations = findDuplicateDerivations(derive ?? []);
  if (duplicateDerivations) throw validationError([duplicateDerivations], 'invalid_request');

  // Ids and where they were seen (a line, or an index), not items: what a catalog keeps in
  // memory while it streams, about 50 bytes a row.
  const seen = new Map<string, number>();
  const tally = emptyTally();
  let chunk: ItemRecord[] = [];
  const refusing = () => source.onInvalid === 'reject' && rejected > 0;
  const flush = async () => {
    const items = chunk;
    chunk = [];
    if (items.length === 0 || refusing()) return;
    if (deps.cache && cache !== 'refresh') {
      settleCachedItems(items, await cachedImages(deps.cache, tenant, items));
    }
    tallyItems(items, tally);
    await accept(items);
  };
  const reject = (rowProblems: FieldProblem[]) => {
    rejected += 1;
    for (const problem of rowProblems) {
      if (problems.length < MAX_REPORTED_PROBLEMS) problems.push(problem);
    }
  };
  // A catalog's rows are named by line; a JSON body's by `items[i]`.
  const where = (at: number) => (catalog ? `line ${at}` : `items[${at}]`);
  const local = (field: string, index: number) =>
    catalog ? field.replace(`items[${index}].`, '') : field;

  for await (const candidate of source.candidates) {
    const { index, line } = candidate;
    if (candidate.problems) {
      reject(candidate.problems);
      continue;
    }
    const parsed = batchItemSchema.safeParse(candidate.item);
    if (!parsed.success) {
      reject(
        zodProblems(parsed.error).map((p) => ({
          ...p,
          field: catalog ? p.field : `items[${index}]${p.field ? `.${p.field}` : ''}`,
          line,
        })),
      );
      continue;
    }
    const input = parsed.data;
    const earlier = seen.get(input.id);
    if (earlier !== undefined) {
      reject([
        {
          field: catalog ? 'id' : `items[${index}].id`,
          message: `id "${input.id}" is also used by ${where(earlier)}`,
          line,
        },
      ]);
      continue;
    }
    seen.set(input.id, line ?? index);
    const resolved = resolveItem(input, index, defaults, {
      registry: deps.registry,
      defaultModel: deps.defaultModel,
      enforceRetirements: deps.enforceRetirements,
      today: now,
    });
    if (!resolved.spec) {
      reject(resolved.problems.map((p) => ({ ...p, field: local(p.field, index), line })));
      continue;
    }
    const notBatchable =
      mode === 'provider_batch' || mode === 'auto'
        ? whyNotBatchable(resolved.spec, deps.registry, deps.routeOffers)
        : undefined;
    if (notBatchable && mode === 'provider_batch') {
      reject([{ field: catalog ? 'mode' : `items[${index}]`, message: notBatchable, line }]);
      continue;
    }
    if (notBatchable) unbatchable += 1;
    if (refusing()) continue;
    chunk.push({
      id: input.id,
      index,
      status: 'queued',
      spec: resolved.spec,
      // An edit's hash depends on its input images' content: the worker computes it.
      hash: hashNeedsInputs(resolved.spec) ? null : requestHash(resolved.spec),
      cost_micros: 0,
      images: [],
      reuse_after: cache === 'refresh' ? now.getTime() : undefined,
      derive,
      warnings: resolved.warnings.length > 0 ? resolved.warnings : undefined,
      attempts: 0,
      updated_at: now.toISOString(),
    });
    if (chunk.length >= RESOLVE_CHUNK) await flush();
  }
  await flush();

  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  if (refusing())
    throw validationError(problems, catalog ? 'invalid_rows' : 'invalid_item', rejected);
  if (tally.total === 0) {
    throw validationError(
      rejected > 0
        ? [
            { field: '', message: `no row could become an item (${rejected} rejected)` },
            ...problems,
          ]
        : [
            {
              field: catalog ? '' : 'items',
              message: catalog ? 'the catalog has no rows' : 'a batch needs at least one item',
            },
          ],
      catalog ? 'invalid_rows' : 'invalid_item',
    );
  }
  return { tally, problems, rejected, unbatchable };
}

/** The cache index's entries for the items' requests (generations; edits are hashed by workers). */
async function cachedImages(cache: ResultCache, tenant: string, items: ItemRecord[]) {
  const hashes = items.flatMap((item) => (item.hash ? [item.hash] : []));
  return cache.indexed(cache.scopeFor(tenant), hashes);
}

/**
 * Marks `cached` the items whose every variant, with every derived copy asked, is indexed:
 * they cost nothing and need no job. A re-run catalog completes at submission.
 */
function settleCachedItems(items: ItemRecord[], found: Map<string, Map<number, CachedImage>>) {
  for (const item of items) {
    const entries = item.hash ? found.get(item.hash) : undefined;
    if (!entries) continue;
    const rules = { n: item.spec.n, reuseAfter: item.reuse_after, derive: item.derive ?? [] };
    const hit = completeHit(reusable(entries, rules), rules);
    if (!hit) continue;
    item.status = 'cached';
    item.images = hit.map((image) => storedImage(image, true));
    item.saved_micros = savedBy(hit);
    item.rendered_by = renderedByCache(hit[0]);
  }
}

function findDuplicateDerivations(derive: DeriveSpec[]): FieldProblem | undefined {
  const names = derive.map(derivationName);
  const twice = names.findIndex((name, i) => names.indexOf(name) !== i);
  if (twice < 0) return undefined;
  return { field: `derive[${twice}]`, message: `asks for ${names[twice]} twice` };
}
