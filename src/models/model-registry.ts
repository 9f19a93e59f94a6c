import { readFileSync } from 'node:fs';
import { z } from 'zod';
import builtIn from './models.json' with { type: 'json' };
import {
  USAGE_TIERS,
  registryFileSchema,
  type ModelSpec,
  type RateLimitsPatch,
  type UsageTierKey,
} from './registry-schema.js';

/** Raised when a registry file cannot be read or does not match the schema. */
export class RegistryFileError extends Error {
  override name = 'RegistryFileError';
}

/**
 * The models rendermill knows: what each accepts, what it costs and its rate limits. Built from
 * the registry shipped with rendermill plus, optionally, a user's file whose entries add or
 * replace models by id and whose `rate_limits` correct single tiers' figures — so a new model,
 * a price change or a changed limit needs no release.
 */
export class ModelRegistry {
  private readonly byId: Map<string, ModelSpec>;

  constructor(models: readonly ModelSpec[]) {
    this.byId = new Map(models.map((m) => [m.id, m]));
  }

  static load(userFile?: string): ModelRegistry {
    const models = new Map(
      parseRegistry(builtIn, 'built-in models.json').models.map((m) => [m.id, m]),
    );
    if (userFile) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(userFile, 'utf8'));
      } catch (err) {
        throw new RegistryFileError(
          `cannot read model registry ${userFile}: ${(err as Error).message}`,
        );
      }
      const file = parseRegistry(raw, userFile);
      for (const model of file.models) models.set(model.id, model);
      // After the file's models: a patch may correct a model the same file adds.
      for (const [id, patch] of Object.entries(file.rate_limits ?? {})) {
        const model = models.get(id);
        if (!model) {
          throw new RegistryFileError(
            `model registry ${userFile}: rate_limits names model "${id}", which is not in the registry (known: ${[...models.keys()].join(', ')})`,
          );
        }
        models.set(id, withRateLimitsPatch(model, patch, userFile));
      }
    }
    return new ModelRegistry([...models.values()]);
  }

  get(id: string): ModelSpec | undefined {
    return this.byId.get(id);
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }
}

function parseRegistry(raw: unknown, source: string) {
  const parsed = registryFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new RegistryFileError(
      `model registry ${source} is invalid:\n${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data;
}

/**
 * The model with a user file's corrections to its rate limits: each field a tier's row gives
 * replaces the model's, the others stay; a tier the model had no row for is added, and then
 * needs its images_per_minute. The source names the file (and the patch's own source).
 */
function withRateLimitsPatch(model: ModelSpec, patch: RateLimitsPatch, file: string): ModelSpec {
  const tiers = { ...model.rate_limits.tiers };
  for (const tier of USAGE_TIERS) {
    const row = patch.tiers[tier];
    if (!row) continue;
    const merged = { ...tiers[tier], ...definedFields(row) };
    if (merged.images_per_minute === undefined) {
      throw new RegistryFileError(
        `model registry ${file}: rate_limits.${model.id}.tiers.${tier} adds usage tier ${tier}, which ${model.id} has no row for, so it needs images_per_minute`,
      );
    }
    tiers[tier as UsageTierKey] = { ...merged, images_per_minute: merged.images_per_minute };
  }
  const corrected = `corrected by ${file}${patch.source ? ` (${patch.source})` : ''}`;
  return {
    ...model,
    rate_limits: {
      ...model.rate_limits,
      source: `${model.rate_limits.source}; ${corrected}`,
      tiers,
    },
  };
}

const definedFields = <T extends object>(row: T): Partial<T> =>
  Object.fromEntries(Object.entries(row).filter(([, v]) => v !== undefined)) as Partial<T>;

/** Whether OpenAI itself had stopped serving the model on the given day. */
export function isRetired(model: ModelSpec, today: Date): boolean {
  return model.retired_on !== undefined && model.retired_on <= today.toISOString().slice(0, 10);
}
