import type { ProviderRateReport, ProviderUsage } from '../errors.js';
import type { ModelRegistry } from '../models/model-registry.js';
import type { ModelSpec, Operation, RouteKind } from '../models/registry-schema.js';
import type { ImageFormat, RenderSpec } from '../models/render-spec.js';
import type { AnswerHold } from '../limits/answer-budget.js';

/** An input image, already fetched, for an edit or variation. */
export interface InputImage {
  data: Buffer;
  filename: string;
  contentType: string;
}

export interface ProviderRequest {
  /**
   * What to render, already fitted to the route: `n` at most the capabilities'
   * `maxImagesPerCall`, `output_format` one the route produces (or absent).
   */
  spec: RenderSpec;
  /**
   * The route's own id for `spec.model` (Replicate's `owner/name`, fal's `fal-ai/…`); default
   * `spec.model`.
   */
  remoteModel?: string | undefined;
  /** Input images for edits and variations, in order. */
  images: InputImage[];
  mask?: InputImage | undefined;
  /**
   * The render attempt's share of the process's answer budget: an adapter that reads an
   * answer of images takes room in it first (see readImagesAnswer). The attempt releases it.
   */
  hold?: AnswerHold | undefined;
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
  /** The prompt the provider actually used, when it rewrote it (the Responses API does). */
  revisedPrompt?: string | undefined;
}

/**
 * What one route can do for one model: the adapter's answer, from the registry entry and its
 * own API's rules. rendermill fits every request to it and says so on the item (a warning):
 * more images than one call returns are several calls, a format it cannot return is converted.
 */
export interface ProviderCapabilities {
  operations: readonly Operation[];
  /** How sizes are asked for: `size` (WxH), `aspect_ratio` ("16:9"), or fal's `image_size`. */
  sizing: 'size' | 'aspect_ratio' | 'image_size';
  /** The most images one call returns. */
  maxImagesPerCall: number;
  /** The formats the route returns; others are converted with sharp. */
  outputFormats: readonly ImageFormat[];
  /** `sync`: the answer carries the images; `queued`: a prediction is followed until it ends. */
  mode: 'sync' | 'queued';
}

/**
 * A queued prediction that had not ended when the adapter stopped following it inline: what
 * is needed to follow it again, from any worker (it is stored on the item, as JSON).
 */
export interface PendingPrediction {
  /** The provider's id of the prediction or request. */
  id: string;
  /** Where its status, result and cancellation live (the provider's own URLs). */
  urls: { status: string; result?: string | undefined; cancel?: string | undefined };
  /** When it was submitted (epoch ms). */
  submittedAt: number;
}

/**
 * An image provider account on one route. Implementations translate the provider's failures
 * into the typed errors of src/errors.ts, which decide whether anything is retried.
 */
export interface ImageProvider {
  readonly kind: RouteKind;
  /** Identifies the account (base URL + key fingerprint), never the key itself. */
  readonly accountId: string;
  capabilities(model: ModelSpec): ProviderCapabilities;
  /**
   * Renders, or for a queued route submits and follows the prediction for a while; one that
   * has not ended by then throws PredictionPendingError (src/errors.ts) with its handle.
   */
  render(request: ProviderRequest): Promise<ProviderResult>;
  /** Queued routes: follows a prediction again; PredictionPendingError while it still runs. */
  resume?(prediction: PendingPrediction, request: ProviderRequest): Promise<ProviderResult>;
  /** Queued routes: asks the provider to stop a prediction nobody wants any more. */
  cancel?(prediction: PendingPrediction): Promise<void>;
}

/** What the adapters of queued APIs (Replicate, fal) are built with. */
export interface QueuedProviderOptions {
  /** The API's base URL, e.g. https://api.replicate.com/v1 or https://queue.fal.run. */
  baseURL: string;
  apiKey: string;
  registry: ModelRegistry;
  /** Per-request timeout of each HTTP call (submit, status, result, download). */
  timeoutMs: number;
  fetch?: typeof fetch;
  /** How long render() and resume() follow a prediction before handing it back as pending. Default 20 s. */
  followInlineMs?: number;
  /** When a pending prediction is worth looking at again, from the moment it was handed back. Default 10 s. */
  recheckMs?: number;
  /** The pause between status polls while following. Default 500 ms. */
  pollMs?: number;
}
