import { setTimeout as sleep } from 'node:timers/promises';
import {
  PaidResultError,
  ProviderAuthError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../errors.js';
import type { ProviderRateReport } from '../errors.js';
import type { ModelSpec } from '../models/registry-schema.js';
import type {
  ImageProvider,
  PendingPrediction,
  ProviderCapabilities,
  QueuedProviderOptions,
  ProviderRequest,
  ProviderResult,
} from './image-provider.js';
import { accountIdFor } from './account-id.js';
import { downloadPaidImage } from './download-image.js';
import { notCollectedYet } from './pending-prediction.js';
import { errorForNoAnswer, errorForStatus } from './provider-errors.js';
import { rateReport } from './rate-limit-headers.js';

/** Replicate holds a `Prefer: wait=N` creation at most 60 s. */
const MAX_PREFER_WAIT_SECONDS = 60;

/**
 * The `aspect_ratio` values Replicate's FLUX models take, and the size each renders at 1
 * megapixel (replicate/cog-flux, ASPECT_RATIOS). A size in the table is its own ratio: 4:3 is
 * 1152x896 there, although 5:4 is the nearer ratio to it.
 */
const REPLICATE_SIZES: Record<string, string> = {
  '1024x1024': '1:1',
  '1344x768': '16:9',
  '1536x640': '21:9',
  '1216x832': '3:2',
  '832x1216': '2:3',
  '896x1088': '4:5',
  '1088x896': '5:4',
  '896x1152': '3:4',
  '1152x896': '4:3',
  '768x1344': '9:16',
  '640x1536': '9:21',
};
const STANDARD_RATIOS = [...new Set(Object.values(REPLICATE_SIZES))];

/**
 * The `aspect_ratio` Replicate expects for a `WxH` size: Replicate's own size for a ratio maps
 * to that ratio; any other size to the ratio nearest to it (compared as logarithms, so 2:1 is
 * as far from 1:1 as 1:2 is) among those the model takes (its registry `aspect_ratios`; FLUX's
 * eleven by default).
 */
export function aspectRatioFor(
  size: string,
  accepted: readonly string[] = STANDARD_RATIOS,
): string {
  const known = REPLICATE_SIZES[size];
  if (known && accepted.includes(known)) return known;
  const match = /^(\d+)x(\d+)$/.exec(size);
  if (!match || Number(match[1]) === 0 || Number(match[2]) === 0) {
    throw new ProviderRejectedError(`not a WxH size: ${size}`, 'invalid_size');
  }
  const logRatio = Math.log(Number(match[1]) / Number(match[2]));
  const distance = (ratio: string) => {
    const [w, h] = ratio.split(':').map(Number) as [number, number];
    return Math.abs(Math.log(w / h) - logRatio);
  };
  return accepted.reduce((best, ratio) => (distance(ratio) < distance(best) ? ratio : best));
}

export interface ReplicateProviderOptions extends QueuedProviderOptions {
  /** `Prefer: wait=N` on creation (1..60 s), never longer than the inline follow. */
  preferWaitSeconds?: number;
}

/** A prediction object as Replicate returns it (the fields rendermill reads). */
interface Prediction {
  id: string;
  status: 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
  output?: unknown;
  error?: unknown;
  urls?: { get?: string; cancel?: string; stream?: string };
}

/** Failures that mean the prediction's output was refused by a safety checker, not a fault. */
const SAFETY_FAILURE = /nsfw|safety|content policy|content_policy|flagged|sensitive/i;

/**
 * An account on Replicate's predictions API, for official models
 * (`POST /v1/models/{owner}/{name}/predictions`). A prediction is created once and then only
 * followed: `Prefer: wait` holds the creation until it ends, polls follow it after that, and one
 * still running when the inline follow ends is handed back as PredictionPendingError — never
 * created again — for resume() to pick up later, from any worker.
 */
export class ReplicateImageProvider implements ImageProvider {
  readonly kind = 'replicate';
  readonly accountId: string;
  private readonly fetchImpl: typeof fetch;
  private readonly base: string;
  private readonly followInlineMs: number;
  private readonly recheckMs: number;
  private readonly pollMs: number;
  private readonly preferWaitSeconds: number;

  constructor(private readonly options: ReplicateProviderOptions) {
    this.base = options.baseURL.replace(/\/+$/, '');
    this.accountId = accountIdFor(options.baseURL, options.apiKey);
    this.fetchImpl = options.fetch ?? fetch;
    this.followInlineMs = options.followInlineMs ?? 20_000;
    this.recheckMs = options.recheckMs ?? 10_000;
    this.pollMs = options.pollMs ?? 500;
    this.preferWaitSeconds = Math.min(
      MAX_PREFER_WAIT_SECONDS,
      Math.max(1, Math.round(options.preferWaitSeconds ?? MAX_PREFER_WAIT_SECONDS)),
    );
  }

  /** Replicate's official image models generate from a prompt, sized by `aspect_ratio`. */
  capabilities(model: ModelSpec): ProviderCapabilities {
    return {
      operations: model.operations.filter((operation) => operation === 'generate'),
      sizing: 'aspect_ratio',
      maxImagesPerCall: model.images_per_call ?? model.n.max,
      outputFormats: model.output_formats ?? ['png'],
      mode: 'queued',
    };
  }

  async render({ spec, remoteModel }: ProviderRequest): Promise<ProviderResult> {
    if (spec.operation !== 'generate') {
      throw new ProviderRejectedError(
        `Replicate's predictions route only generates; ${spec.operation} is not offered`,
        'unsupported_operation',
      );
    }
    const model = this.options.registry.get(spec.model);
    const remote = remoteModel ?? model?.remote_ids?.replicate ?? spec.model;
    const input: Record<string, unknown> = {
      prompt: spec.prompt ?? '',
      aspect_ratio: aspectRatioFor(spec.size, model?.aspect_ratios),
    };
    // Models that render one image per call take no count (Replicate's imagen-4 has none).
    if (spec.n > 1) input.num_outputs = spec.n;
    const format = replicateFormat(spec.output_format);
    if (format) input.output_format = format;
    if (format && format !== 'png' && spec.output_compression !== undefined) {
      input.output_quality = spec.output_compression;
    }

    const submittedAt = Date.now();
    // The hold is never longer than the inline follow, so a slow prediction is handed back on
    // time; a follow shorter than Replicate's shortest hold (1 s) creates without one and polls.
    const waitSeconds = Math.min(this.preferWaitSeconds, Math.floor(this.followInlineMs / 1000));
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.base}/models/${remote}/predictions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.options.apiKey}`,
          'content-type': 'application/json',
          ...(waitSeconds >= 1 ? { prefer: `wait=${waitSeconds}` } : {}),
        },
        body: JSON.stringify({ input }),
        signal: AbortSignal.timeout(this.options.timeoutMs + waitSeconds * 1000),
      });
    } catch (error) {
      // A creation that timed out or was cut may have started a prediction that will be billed.
      throw errorForNoAnswer(error, 'Replicate did not answer the prediction request');
    }
    if (!response.ok) {
      const error = await httpError(response);
      // A gateway's 502/504 after a held creation: the prediction may exist and will bill.
      if (waitSeconds >= 1 && (response.status === 502 || response.status === 504)) {
        throw new ProviderUnavailableError(error.message, true);
      }
      throw error;
    }
    const rate = rateReport(response.headers, { refused: false });
    const created = (await readJson(response)) as Prediction | undefined;
    if (!created?.id || !created.urls?.get) {
      // Created, with no handle to follow it by: it may run and bill, and cannot be fetched.
      throw new PaidResultError('Replicate answered the prediction request without its id or urls');
    }
    const handle: PendingPrediction = {
      id: created.id,
      urls: { status: created.urls.get, cancel: created.urls.cancel },
      submittedAt,
    };
    return this.follow(handle, created, submittedAt + this.followInlineMs, spec.n, rate);
  }

  /** Follows a prediction render() handed back, for another inline follow. */
  async resume(prediction: PendingPrediction, request: ProviderRequest): Promise<ProviderResult> {
    return this.follow(prediction, undefined, Date.now() + this.followInlineMs, request.spec.n);
  }

  /** Asks Replicate to stop a prediction; one that has ended or is unknown needs nothing. */
  async cancel(prediction: PendingPrediction): Promise<void> {
    const url = prediction.urls.cancel ?? `${prediction.urls.status.replace(/\/+$/, '')}/cancel`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.options.apiKey}` },
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      throw errorForNoAnswer(error, 'Replicate did not answer the cancellation');
    }
    if (response.ok || response.status === 404 || response.status === 409) {
      await response.body?.cancel();
      return;
    }
    throw await httpError(response);
  }

  /**
   * Polls the prediction until it ends or `deadline` passes. Polls that fail for a moment are
   * tried again while there is time: the prediction exists and may be billed, so the only way
   * out short of its end is PredictionPendingError, which keeps the handle.
   */
  private async follow(
    handle: PendingPrediction,
    latest: Prediction | undefined,
    deadline: number,
    expected: number,
    rate?: ProviderRateReport,
  ): Promise<ProviderResult> {
    let current = latest;
    let lastTrouble = '';
    // resume() has nothing in hand yet, so it polls at once; render() has the creation's answer.
    let pollNow = latest === undefined;
    for (;;) {
      if (current && isEnded(current)) return this.ended(current, expected, rate);
      if (!pollNow) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        await sleep(Math.min(this.pollMs, remaining));
      }
      pollNow = false;
      try {
        current = await this.poll(handle);
        lastTrouble = '';
      } catch (error) {
        // A refused key or any other trouble on a poll: the prediction runs on and may bill,
        // so it is followed again later (or, past its age, counted as paid) — never re-made.
        if (error instanceof PaidResultError) throw error;
        lastTrouble = `; the last status poll failed: ${(error as Error).message}`;
      }
    }
    throw notCollectedYet(
      'Replicate',
      handle,
      `is still ${current?.status ?? 'running'}${lastTrouble}`,
      this.recheckMs,
    );
  }

  /** One status poll: the prediction, or ProviderUnavailableError for trouble worth retrying. */
  private async poll(handle: PendingPrediction): Promise<Prediction> {
    let response: Response;
    try {
      response = await this.fetchImpl(handle.urls.status, {
        headers: { authorization: `Bearer ${this.options.apiKey}` },
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      throw new ProviderUnavailableError(`no answer: ${(error as Error).message}`, true);
    }
    if (response.ok) {
      const prediction = (await readJson(response)) as Prediction | undefined;
      if (prediction?.status) return prediction;
      throw new ProviderUnavailableError('the status answer held no prediction', true);
    }
    const error = await httpError(response);
    if (error instanceof ProviderAuthError) throw error;
    if (response.status === 404) {
      // Created (perhaps billed) and now unknown: following it again cannot help.
      throw new PaidResultError(`Replicate no longer knows prediction ${handle.id}`);
    }
    // 429s and 5xx on a poll: the prediction runs on regardless; look again shortly.
    throw new ProviderUnavailableError(`status poll: ${error.message}`, true);
  }

  /** What an ended prediction comes to: its images, or the typed error for its end. */
  private async ended(
    prediction: Prediction,
    expected: number,
    rate: ProviderRateReport | undefined,
  ): Promise<ProviderResult> {
    if (prediction.status === 'failed') {
      const reason = typeof prediction.error === 'string' ? prediction.error : 'unknown error';
      if (SAFETY_FAILURE.test(reason)) {
        throw new ProviderRejectedError(reason, 'content_policy_violation');
      }
      throw new ProviderUnavailableError(`Replicate prediction ${prediction.id} failed: ${reason}`);
    }
    if (prediction.status === 'canceled') {
      throw new ProviderUnavailableError(`Replicate prediction ${prediction.id} was canceled`);
    }
    // Succeeded: paid for. Its files are deleted within the hour, so fetch them all now.
    const urls = outputUrls(prediction.output);
    if (urls.length < expected) {
      throw new PaidResultError(
        `Replicate returned ${urls.length} image(s) where ${expected} were asked for`,
      );
    }
    const images = await Promise.all(
      urls.map((url) =>
        downloadPaidImage(url, {
          fetch: this.fetchImpl,
          timeoutMs: this.options.timeoutMs,
          provider: 'Replicate',
        }),
      ),
    );
    return { images, rate };
  }
}

function isEnded(prediction: Prediction): boolean {
  return ['succeeded', 'failed', 'canceled'].includes(prediction.status);
}

/** flux models answer an array of file URLs; some models a single URL. */
function outputUrls(output: unknown): string[] {
  if (typeof output === 'string') return [output];
  if (Array.isArray(output)) return output.filter((u): u is string => typeof u === 'string');
  return [];
}

/** Our format as Replicate's `output_format` (`jpg`, not `jpeg`); none it cannot produce. */
function replicateFormat(format: string | undefined): string | undefined {
  if (format === 'jpeg') return 'jpg';
  if (format === 'png' || format === 'webp') return format;
  return undefined;
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

/** Replicate's errors are problem+json (`{title, detail, status}`); `detail` says what happened. */
async function httpError(response: Response) {
  const text = await response.text().catch(() => '');
  let message = text.slice(0, 500) || response.statusText;
  try {
    const body = JSON.parse(text) as { detail?: unknown; title?: unknown };
    if (typeof body.detail === 'string' && body.detail) message = body.detail;
    else if (typeof body.title === 'string' && body.title) message = body.title;
  } catch {
    // Not JSON (a proxy's page): the text itself is the message.
  }
  return errorForStatus(response.status, undefined, message, response.headers);
}
