import { readFileSync } from 'node:fs';
import { z } from 'zod';
import builtIn from './models.json' with { type: 'json' };
import { registryFileSchema, type ModelSpec } from './registry-schema.js';

/** Raised when a registry file cannot be read or does not match the schema. */
export class RegistryFileError extends Error {
  override name = 'RegistryFileError';
}

/**
 * The models rendermill knows: what each accepts and what it costs. Built from the registry
 * shipped with rendermill plus, optionally, a user's file whose entries add or replace models
 * by id — so a new model or a price change needs no release.
 */
export class ModelRegistry {
  private readonly byId: Map<string, ModelSpec>;

  constructor(models: readonly ModelSpec[]) {
    this.byId = new Map(models.map((m) => [m.id, m]));
  }

  static load(userFile?: string): ModelRegistry {
    const models = new Map(parseRegistry(builtIn, 'built-in models.json').map((m) => [m.id, m]));
    if (userFile) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(userFile, 'utf8'));
      } catch (err) {
        throw new RegistryFileError(
          `cannot read model registry ${userFile}: ${(err as Error).message}`,
        );
      }
      for (const model of parseRegistry(raw, userFile)) models.set(model.id, model);
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

function parseRegistry(raw: unknown, source: string): ModelSpec[] {
  const parsed = registryFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new RegistryFileError(
      `model registry ${source} is invalid:\n${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data.models;
}

/** Whether OpenAI itself had stopped serving the model on the given day. */
export function isRetired(model: ModelSpec, today: Date): boolean {
  return model.retired_on !== undefined && model.retired_on <= today.toISOString().slice(0, 10);
}
