import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { accountFields, perMinuteFigures } from './env-parsers.js';
import { accountRateLimit, type RateLimitSettings } from './rate-limit-settings.js';
import {
  ROUTE_KINDS,
  ROUTING_STRATEGIES,
  type RouteKind,
  type RoutingStrategy,
} from './route-kinds.js';

/**
 * The providers file (RENDERMILL_PROVIDERS_FILE, YAML): every route rendermill may render
 * through — its API, account, tier, and the models it serves at their own prices and limits —
 * and the routing batches use unless they name their own. docs/configuration.md shows one.
 */

/** What a route says about one model it serves. */
export interface RouteModelConfig {
  /** The route's own id for the model; default the registry's `remote_ids` for its kind, else the id. */
  remote?: string | undefined;
  /** The route's price per image in USD, replacing the registry's price on this route. */
  priceUsd?: number | undefined;
  /** This model's limits on this route, replacing the tier's figures. */
  imagesPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
  /** The route's price per image in its Batch API, replacing the registry's batch price. */
  batchPriceUsd?: number | undefined;
}

/** A route's Batch API (OpenAI's `/v1/files` and `/v1/batches`): half price, within 24 h. */
export interface RouteBatchConfig {
  /** The most tokens the account may have enqueued per model; submissions wait for room. */
  queueTokens?: number | undefined;
}

/** One route, as the configuration gives it: an account on one API and what it serves. */
export interface RouteConfig {
  /** How logs, metrics and the manifest name it. */
  name: string;
  kind: RouteKind;
  baseURL: string;
  apiKey: string;
  /** OpenAI itself refuses retired models; gateways may still serve them. */
  enforceRetirements: boolean;
  /**
   * The account's usage tier and its overrides; its limit for a model is
   * `modelRateLimit(model, rateLimit)` (src/models/rate-limits.ts), with the model's own
   * figures from `models` over it.
   */
  rateLimit: RateLimitSettings;
  /**
   * The models it serves, by registry id. Absent: every model of the registry at the
   * registry's prices (the OPENAI_API_KEY account and its RENDERMILL_FALLBACKS).
   */
  models?: Record<string, RouteModelConfig> | undefined;
  /** Render every item with this model instead of the item's (a fallback's `model`). */
  model?: string | undefined;
  /** `openai-responses` routes: the model that calls the image tool. Default: the adapter's. */
  responsesModel?: string | undefined;
  /** Present when the route offers its provider's Batch API (`openai` routes only). */
  batch?: RouteBatchConfig | undefined;
}

/** The providers file, read: the routes in order and the default routing. */
export interface ProvidersFile {
  routing: RoutingStrategy;
  routes: RouteConfig[];
}

const routeModel = z
  .object({
    remote: z.string().min(1).max(200).optional(),
    price_usd: z.number().nonnegative().max(100).optional(),
    batch_price_usd: z.number().nonnegative().max(100).optional(),
    ...perMinuteFigures,
  })
  .strict();

const routeEntry = z
  .object({
    ...accountFields,
    kind: z.enum(ROUTE_KINDS).default('openai'),
    /** A model id → what the route says about it (`{}`: the registry's price and limits). */
    models: z.record(z.string().min(1), routeModel.nullable()).optional(),
    responses_model: z.string().min(1).optional(),
    /** Whether the route offers OpenAI's Batch API. Default: on for OpenAI's own API. */
    batch_api: z.boolean().optional(),
    /** The most tokens enqueued in provider batches per model (OpenAI's batch queue limit). */
    batch_queue_tokens: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((route, ctx) => {
    if (route.batch_api && route.kind !== 'openai') {
      ctx.addIssue({
        code: 'custom',
        path: ['batch_api'],
        message: 'the Batch API is offered on routes of kind openai only',
      });
    }
    if ((route.kind === 'replicate' || route.kind === 'fal') && !route.models) {
      ctx.addIssue({
        code: 'custom',
        path: ['models'],
        message: `a ${route.kind} route serves only the models it lists: give its models`,
      });
    }
    if (route.responses_model && route.kind !== 'openai-responses') {
      ctx.addIssue({
        code: 'custom',
        path: ['responses_model'],
        message: 'responses_model belongs to routes of kind openai-responses',
      });
    }
  });

const providersFileSchema = z
  .object({
    routing: z.enum(ROUTING_STRATEGIES).default('priority'),
    routes: z
      .array(routeEntry)
      .min(1, 'give at least one route')
      .superRefine((routes, ctx) => {
        const seen = new Set<string>();
        for (const [i, route] of routes.entries()) {
          if (seen.has(route.name)) {
            ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${route.name}" twice` });
          }
          seen.add(route.name);
        }
      }),
  })
  .strict();

/**
 * Reads and checks the providers file. Every problem is listed with its place in the file
 * (`routes[1].models.dall-e-2.price_usd: …`), and a route whose key variable is empty is one.
 * Throws an Error whose message lists them; the caller wraps it as a configuration error.
 */
export function readProvidersFile(
  path: string,
  env: NodeJS.ProcessEnv,
  defaults: { tier: number; isOpenAI: (url: string) => boolean },
): ProvidersFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new Error(`${path} is not YAML: ${(error as Error).message}`);
  }
  const parsed = providersFileSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `  ${issue.path.join('.') || '(file)'}: ${issue.message}`,
    );
    throw new Error(`${path}:\n${lines.join('\n')}`);
  }
  const missingKeys = parsed.data.routes
    .filter((route) => !env[route.api_key_env])
    .map((route) => `  route "${route.name}": ${route.api_key_env} is not set (its key)`);
  if (missingKeys.length > 0) throw new Error(`${path}:\n${missingKeys.join('\n')}`);
  return {
    routing: parsed.data.routing,
    routes: parsed.data.routes.map((route) => ({
      name: route.name,
      kind: route.kind,
      baseURL: route.base_url,
      apiKey: String(env[route.api_key_env]),
      enforceRetirements: defaults.isOpenAI(route.base_url),
      rateLimit: accountRateLimit(route, defaults.tier, `route "${route.name}"`),
      models: route.models && routeModels(route.models),
      responsesModel: route.responses_model,
      batch:
        route.kind === 'openai' && (route.batch_api ?? defaults.isOpenAI(route.base_url))
          ? { queueTokens: route.batch_queue_tokens }
          : undefined,
    })),
  };
}

function routeModels(
  models: Record<string, z.infer<typeof routeModel> | null>,
): Record<string, RouteModelConfig> {
  return Object.fromEntries(
    Object.entries(models).map(([id, model]) => [
      id,
      {
        remote: model?.remote,
        priceUsd: model?.price_usd,
        imagesPerMinute: model?.images_per_minute,
        tokensPerMinute: model?.tokens_per_minute,
        batchPriceUsd: model?.batch_price_usd,
      },
    ]),
  );
}
