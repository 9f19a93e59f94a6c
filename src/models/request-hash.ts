import { createHash } from 'node:crypto';
import type { RenderSpec } from './render-spec.js';

/**
 * Normalises a prompt so that trivially different spellings of the same request hash alike:
 * Unicode NFC, outer whitespace trimmed, runs of whitespace collapsed to one space.
 */
export function normalizePrompt(prompt: string): string {
  return prompt.normalize('NFC').trim().replace(/\s+/g, ' ');
}

/**
 * The canonical hash of what a request asks the provider to render. Everything that changes
 * the pixels goes in; who asked (batch, item id, tenant) and what it may cost (budget) do not.
 * Input images enter by reference for now; the dedupe work replaces them by content hashes.
 * Keys are emitted in a fixed order, absent options as null, so the hash is stable.
 */
export function requestHash(spec: RenderSpec): string {
  const canonical = [
    'v1',
    spec.operation,
    spec.model,
    spec.prompt === undefined ? null : normalizePrompt(spec.prompt),
    spec.size,
    spec.quality ?? null,
    spec.style ?? null,
    spec.background ?? null,
    spec.output_format ?? null,
    spec.output_compression ?? null,
    spec.images ?? null,
    spec.mask ?? null,
  ];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}
