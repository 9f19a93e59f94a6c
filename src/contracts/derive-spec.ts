import { z } from 'zod';

export const DERIVED_FORMATS = ['png', 'jpeg', 'webp', 'avif'] as const;

/** A smaller copy asked of every image of a batch, e.g. `{ "px": 128, "format": "webp" }`. */
export const deriveSpecSchema = z
  .object({
    /** The longest side, in pixels. Never enlarged: a smaller original is kept at its size. */
    px: z.number().int().min(16).max(4096),
    format: z.enum(DERIVED_FORMATS),
    /** Encoder quality, 1–100 (sharp's default per format when absent). Ignored for PNG. */
    quality: z.number().int().min(1).max(100).optional(),
  })
  .strict();

export type DeriveSpec = z.infer<typeof deriveSpecSchema>;

/** At most this many derived copies per image: each is CPU on the worker. */
export const MAX_DERIVATIONS = 8;

/** A derivation's name, which is also the end of its object key: `128px.webp`, `64px-q50.avif`. */
export function derivationName(spec: DeriveSpec): string {
  const quality = spec.quality === undefined || spec.format === 'png' ? '' : `-q${spec.quality}`;
  return `${spec.px}px${quality}.${spec.format === 'jpeg' ? 'jpg' : spec.format}`;
}

export const DERIVED_CONTENT_TYPES: Record<DeriveSpec['format'], string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
};
