import type { ProviderRateReport, ProviderUsage } from '../errors.js';
import type { ImageFormat, RenderSpec } from '../models/render-spec.js';

/** An input image, already fetched, for an edit or variation. */
export interface InputImage {
  data: Buffer;
  filename: string;
  contentType: string;
}

export interface ProviderRequest {
  spec: RenderSpec;
  /** Input images for edits and variations, in order. */
  images: InputImage[];
  mask?: InputImage | undefined;
}

export interface RenderedImage {
  data: Buffer;
  format: ImageFormat;
}

export interface ProviderResult {
  images: RenderedImage[];
  /** Token usage, reported by gpt-image models; settles the price. */
  usage?: ProviderUsage | undefined;
  /** What the answer's rate-limit headers said (every answer carries them, or some of them). */
  rate?: ProviderRateReport | undefined;
}

/**
 * An image provider account. Implementations translate the provider's failures into the
 * typed errors of src/errors.ts, which decide whether anything is retried.
 */
export interface ImageProvider {
  /** Identifies the account (base URL + key fingerprint), never the key itself. */
  readonly accountId: string;
  render(request: ProviderRequest): Promise<ProviderResult>;
}
