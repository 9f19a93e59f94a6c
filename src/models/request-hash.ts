import { createHash } from 'node:crypto';
import type { RenderSpec } from './render-spec.js';

/**
 * Normalises a prompt so that trivially different spellings of the same request hash alike:
 * Unicode NFC, outer whitespace trimmed, runs of whitespace collapsed to one space.
 */
export function normalizePrompt(prompt: string): string {
  return prompt.normalize('NFC').trim().replace(/\s+/g, ' ');
}

/** The SHA-256 of some bytes, hex: how input images and masks enter a request hash. */
export const contentHash = (data: Buffer | string) =>
  createHash('sha256').update(data).digest('hex');

/** The content hashes of an edit's input images and mask, in order. */
export interface InputHashes {
  images: string[];
  mask?: string | undefined;
}

/**
 * The canonical hash of what a request asks the provider to render: the result cache's key.
 *
 * In: operation, model, the normalised prompt, size, quality, style, background, output
 * format and compression, and the content hashes of the input images and mask — so an edit of
 * the same photo hashes alike whether it came from a URL or from S3, and a changed photo at
 * the same URL does not.
 *
 * Out: `n`. Each of the n images is a variant of the request, stored under its index; a
 * later request for more variants reuses those already rendered and renders the rest. Also
 * out: who asked and in what context (batch, item id, budget, tenant). Whether another tenant's
 * render may be reused is the cache scope's business (RENDERMILL_CACHE_SCOPE), not the hash's.
 *
 * Keys are emitted in a fixed order, absent options as null, so the hash is stable. A change
 * to what goes in must bump the version tag: old renders then stop matching, never mismatch.
 */
export function requestHash(spec: RenderSpec, inputs?: InputHashes): string {
  if (!inputs && (spec.images?.length || spec.mask)) {
    throw new Error('an edit is hashed by its input images: pass their content hashes');
  }
  const canonical = [
    'v2',
    spec.operation,
    spec.model,
    spec.prompt === undefined ? null : normalizePrompt(spec.prompt),
    spec.size,
    spec.quality ?? null,
    spec.style ?? null,
    spec.background ?? null,
    spec.output_format ?? null,
    spec.output_compression ?? null,
    inputs?.images ?? null,
    inputs?.mask ?? null,
  ];
  return contentHash(JSON.stringify(canonical));
}

/** Whether the request's hash needs its input images read first (edits and variations). */
export const hashNeedsInputs = (spec: RenderSpec) =>
  Boolean(spec.images?.length) || spec.mask !== undefined;
