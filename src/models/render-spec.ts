import { z } from 'zod';
import { OPERATIONS } from './registry-schema.js';

/**
 * One fully resolved render request: the batch's defaults applied and checked against the
 * model registry. This is what a render job carries and what a provider is asked for.
 */
export const renderSpecSchema = z
  .object({
    operation: z.enum(OPERATIONS),
    model: z.string().min(1),
    prompt: z.string().optional(),
    size: z.string().regex(/^\d+x\d+$/),
    n: z.number().int().positive(),
    quality: z.string().optional(),
    style: z.string().optional(),
    background: z.string().optional(),
    /** What the stored image is; a route that cannot produce it renders png and sharp converts. */
    output_format: z.enum(['png', 'jpeg', 'webp', 'avif']).optional(),
    output_compression: z.number().int().min(0).max(100).optional(),
    images: z.array(z.string()).optional(),
    mask: z.string().optional(),
  })
  .strict();

export type RenderSpec = z.infer<typeof renderSpecSchema>;

export const CONTENT_TYPES = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
} as const;
export type ImageFormat = keyof typeof CONTENT_TYPES;

/**
 * Something rendermill did differently from what an item asked, though it could still render
 * it: a nearer size than the ratio asked, a format converted with sharp. The item is accepted,
 * and the warning stays on it so that no substitution is ever silent.
 */
export interface ItemWarning {
  /** The option concerned, as the request named it (`aspect_ratio`, `output_format` …). */
  field: string;
  /** What the item asked, e.g. `16:9` or `avif`. */
  asked: string;
  /** What is done instead, e.g. `1024x1024`. */
  done: string;
  message: string;
}
