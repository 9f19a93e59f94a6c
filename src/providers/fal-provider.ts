import { setTimeout as sleep } from 'node:timers/promises';
import {
  PaidResultError,
  ProviderUnavailableError,
  ProviderQuotaError,
  ProviderRejectedError,
  RendermillError,
} from '../errors.js';
import type { ModelSpec } from '../models/registry-schema.js';
import type { ImageFormat } from '../models/render-spec.js';
import type {
  ImageProvider,
  PendingPrediction,
  ProviderCapabilities,
  QueuedProviderOptions,
  ProviderRequest,
  ProviderResult,
  RenderedImage,
} from './image-provider.js';
import { accountIdFor } from './account-id.js';
import { downloadPaidImage } from './download-image.js';
import { notCollectedYet } from './pending-prediction.js';
import { errorForNoAnswer, errorForStatus } from './provider-errors.js';
import { rateReport } from './rate-limit-headers.js';

/** The formats fal's FLUX endpoints answer (`output_format`: jpeg | png). */
const FAL_FORMATS: readonly ImageFormat[] = ['jpeg', 'png'];
/** fal answers a spent account with 403 "User is locked. Reason: Exhausted balance…". */
const EXHAUSTED_BALANCE = /exhausted balance/i;

export type FalProviderOptions = QueuedProviderOptions;

/** What fal's submit answers: the request's id and its absolute URLs. */
interface QueueAnswer {
  request_id: string;
  status_url: string;
  response_url: string;
  cancel_url: string;
}

/** One image of a FLUX output. */
interface FalImage {
  url?: string;
  content_type?: string;
}

/**
 * An account on fal's queue API (https://fal.ai/docs/inference-api): a render is submitted,
 * then followed on its status URL for `followInlineMs`; one still running is handed back as a
 * PredictionPendingError whose handle any worker can follow with resume(). The URLs fal
 * answers are absolute and followed as given — they are the only way to reach the request.
 */
export class FalImageProvider implements ImageProvider {
  readonly kind = 'fal';
  readonly accountId: string;
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly followInlineMs: number;
  private readonly recheckMs: number;
  private readonly pollMs: number;

  constructor(private readonly options: FalProviderOptions) {
    this.base = options.baseURL.replace(/\/+$/, '');
    this.accountId = accountIdFor(options.baseURL, options.apiKey);
    this.fetchImpl = options.fetch ?? fetch;
    this.followInlineMs = options.followInlineMs ?? 20_000;
    this.recheckMs = options.recheckMs ?? 10_000;
    this.pollMs = options.pollMs ?? 500;
  }

  /** Text to image only; sizes as fal's `image_size` {width, height}; jpeg or png. */
  capabilities(model: ModelSpec): ProviderCapabilities {
    const formats = (model.output_formats ?? []).filter((f) => FAL_FORMATS.includes(f));
    return {
      operations: model.operations.filter((operation) => operation === 'generate'),
      sizing: 'image_size',
      maxImagesPerCall: model.images_per_call ?? model.n.max,
      outputFormats: formats.length > 0 ? formats : ['png'],
      mode: 'queued',
    };
  }

  async render({ spec, remoteModel }: ProviderRequest): Promise<ProviderResult> {
    const model = this.options.registry.get(spec.model);
    const falModel = remoteModel ?? model?.remote_ids?.fal ?? spec.model;
    const [width, height] = spec.size.split('x').map(Number) as [number, number];
    const input = {
      prompt: spec.prompt ?? '',
      image_size: { width, height },
      num_images: spec.n,
      ...(spec.output_format && FAL_FORMATS.includes(spec.output_format)
        ? { output_format: spec.output_format }
        : {}),
    };
    const submittedAt = Date.now();
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.base}/${falModel}`, {
        method: 'POST',
        headers: { ...this.auth(), 'content-type': 'application/json' },
        body: JSON.stringify(input),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      // A submit that timed out may have been queued, and so billed: errorForNoAnswer says so.
      throw errorForNoAnswer(error, 'fal submit got no answer');
    }
    if (!response.ok) throw await failure(response);
    const queued = (await response.json().catch(() => undefined)) as QueueAnswer | undefined;
    if (!queued?.request_id || !queued.status_url) {
      // Queued, perhaps, with no handle to follow it by: it may run and bill.
      throw new ProviderUnavailableError('fal answered the submit without its request id', true);
    }
    const prediction: PendingPrediction = {
      id: queued.request_id,
      urls: { status: queued.status_url, result: queued.response_url, cancel: queued.cancel_url },
      submittedAt,
    };
    const result = await this.follow(prediction, spec.n, submittedAt);
    return { ...result, rate: rateReport(response.headers, { refused: false }) };
  }

  /** Follows a handed-back request again, for up to `followInlineMs` from now. */
  resume(prediction: PendingPrediction, { spec }: ProviderRequest): Promise<ProviderResult> {
    return this.follow(prediction, spec.n, Date.now());
  }

  async cancel(prediction: PendingPrediction): Promise<void> {
    const url = prediction.urls.cancel ?? prediction.urls.status.replace(/\/status$/, '/cancel');
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: 'PUT',
        headers: this.auth(),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      throw errorForNoAnswer(error, 'fal cancel got no answer');
    }
    if (response.ok) return;
    const body = (await response.json().catch(() => ({}))) as { status?: unknown };
    // Ended already (or its result dropped): there is nothing left to stop.
    if (body.status === 'ALREADY_COMPLETED' || response.status === 404) return;
    throw await failure(response, body);
  }

  private auth() {
    return { authorization: `Key ${this.options.apiKey}` };
  }

  /**
   * Polls the status URL until the request is COMPLETED, then reads its result; still running
   * `followInlineMs` after `since` (its submission, or the resume) it is handed back. A poll that fails for a moment
   * hands it back too: the job must follow the same request later, never submit another.
   */
  private async follow(
    prediction: PendingPrediction,
    n: number,
    since: number,
  ): Promise<ProviderResult> {
    for (;;) {
      if (await this.completed(prediction)) return this.result(prediction, n);
      if (Date.now() - since >= this.followInlineMs) {
        throw this.pending(prediction, 'is still running');
      }
      await sleep(this.pollMs);
    }
  }

  private async completed(prediction: PendingPrediction): Promise<boolean> {
    let response: Response;
    try {
      response = await this.fetchImpl(prediction.urls.status, {
        headers: this.auth(),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      throw this.pending(prediction, `could not be polled (${(error as Error).message})`);
    }
    if (response.status === 404) {
      // fal drops a result an hour after the request ended: it may have run and been billed.
      throw new PaidResultError(`fal no longer knows request ${prediction.id}`);
    }
    if (!response.ok) {
      // Whatever a poll answers (a refused key, a 5xx), the request runs on and may bill.
      const error = await failure(response);
      throw this.pending(prediction, `could not be polled (${error.message})`);
    }
    const status = (await response.json().catch(() => undefined)) as
      { status?: unknown } | undefined;
    if (!status) throw this.pending(prediction, 'answered its status poll with no status');
    return status.status === 'COMPLETED';
  }

  /** Reads a COMPLETED request's result: the model's output, or the model's error. */
  private async result(prediction: PendingPrediction, n: number): Promise<ProviderResult> {
    const url = prediction.urls.result ?? prediction.urls.status.replace(/\/status$/, '');
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        headers: this.auth(),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      // fal keeps the result for an hour: reading it again later costs nothing.
      throw this.pending(
        prediction,
        `ended but its result could not be read (${(error as Error).message})`,
      );
    }
    if (response.status === 404) {
      throw new PaidResultError(`fal's result of request ${prediction.id} is gone (kept an hour)`);
    }
    // The result answers the model's own error (content checker, runner failure): not billed.
    if (!response.ok) throw await failure(response);
    const output = (await response.json().catch(() => undefined)) as
      { images?: FalImage[]; has_nsfw_concepts?: boolean[] } | undefined;
    if (!output) throw this.pending(prediction, 'ended but its result could not be read');
    // From here on the request is paid for: a failure must not make anyone submit it again.
    const images = output.images ?? [];
    if (images.length < n) {
      throw new PaidResultError(`fal returned ${images.length} image(s) where ${n} were asked for`);
    }
    if (output.has_nsfw_concepts?.slice(0, n).some(Boolean)) {
      // fal's safety checker answers such images blacked out, and bills them.
      throw new PaidResultError("fal's safety checker blacked out an image as NSFW");
    }
    return { images: await Promise.all(images.slice(0, n).map((image) => this.decode(image))) };
  }

  private async decode(image: FalImage): Promise<RenderedImage> {
    if (!image.url) throw new PaidResultError('fal answered an image without a url');
    return downloadPaidImage(image.url, {
      fetch: this.fetchImpl,
      timeoutMs: this.options.timeoutMs,
      provider: 'fal',
    });
  }

  private pending(prediction: PendingPrediction, why: string) {
    return notCollectedYet('fal', prediction, why, this.recheckMs);
  }
}

/**
 * The typed error for a fal answer that is not a success. fal's bodies carry `detail`: a
 * string, or a list of typed problems ({loc, msg, type}) whose first type is the code.
 */
async function failure(response: Response, parsed?: unknown): Promise<RendermillError> {
  const body = (parsed ?? (await response.json().catch(() => ({})))) as { detail?: unknown };
  const { message, code } = readDetail(body.detail, response.status);
  if (response.status === 403 && EXHAUSTED_BALANCE.test(message)) {
    return new ProviderQuotaError(`fal account out of balance: ${message}`);
  }
  if (code === 'content_policy_violation') return new ProviderRejectedError(message, code);
  // A runner failure (5xx) is a ProviderUnavailableError that was not billed: fal bills only
  // requests that complete with an output.
  return errorForStatus(response.status, code, message, response.headers);
}

function readDetail(detail: unknown, status: number): { message: string; code?: string } {
  if (typeof detail === 'string') return { message: detail };
  if (Array.isArray(detail) && detail.length > 0) {
    const problems = detail as { msg?: unknown; type?: unknown; loc?: unknown }[];
    const message = problems
      .map((p) => {
        const where = Array.isArray(p.loc)
          ? `${p.loc.filter((l) => l !== 'body').join('.')}: `
          : '';
        return `${where}${typeof p.msg === 'string' ? p.msg : 'invalid'}`;
      })
      .join('; ');
    const type = problems[0]?.type;
    return typeof type === 'string' ? { message, code: type } : { message };
  }
  return { message: `fal answered HTTP ${status}` };
}
