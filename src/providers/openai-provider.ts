import OpenAI, { toFile } from 'openai';
import type { APIPromise } from 'openai';
import { PaidResultError } from '../errors.js';
import type { ProviderUsage } from '../errors.js';
import type { ModelRegistry } from '../models/model-registry.js';
import type { ModelSpec } from '../models/registry-schema.js';
import type { RenderSpec } from '../models/render-spec.js';
import type {
  ImageProvider,
  InputImage,
  ProviderCapabilities,
  ProviderRequest,
  ProviderResult,
  RenderedImage,
} from './image-provider.js';
import { createHttpFetch } from '../net/http-fetch.js';
import { accountIdFor } from './account-id.js';
import { downloadPaidImage } from './download-image.js';
import { readImagesAnswer, type AnsweredImage } from './images-answer.js';
import { toProviderError } from './provider-errors.js';
import { rateReport } from './rate-limit-headers.js';
import { sniffImageFormat } from './sniff-format.js';

export interface OpenAIProviderOptions {
  baseURL: string;
  apiKey: string;
  registry: ModelRegistry;
  /** Per-request timeout; a timed-out call is a retryable ProviderUnavailableError. */
  timeoutMs: number;
  /**
   * What DALL·E models are asked to answer with. b64_json saves a second download; `url`
   * exists for gateways that only return URLs. Either way a URL is downloaded at once,
   * because OpenAI's image URLs expire after an hour.
   */
  responseFormat?: 'b64_json' | 'url';
  fetch?: typeof fetch;
}

/**
 * An account on OpenAI's Images API or a gateway that speaks it, through the official SDK.
 * The SDK's own retries are off (`maxRetries: 0`): rendermill decides retries from typed errors.
 */
export class OpenAIImageProvider implements ImageProvider {
  readonly kind = 'openai';
  readonly accountId: string;
  private readonly client: OpenAI;
  private readonly fetchImpl: typeof fetch;
  /**
   * Downloads of the images the provider answered with a URL, over node:http like the calls
   * (~1 ms of CPU less an image than Node's fetch); a host that redirects is asked again by
   * `fetchImpl`, which follows.
   */
  private readonly downloadFetch: typeof fetch;

  constructor(private readonly options: OpenAIProviderOptions) {
    this.accountId = accountIdFor(options.baseURL, options.apiKey);
    this.fetchImpl = options.fetch ?? fetch;
    this.downloadFetch = createHttpFetch({
      fallback: this.fetchImpl,
      bodyIdleMs: options.timeoutMs,
      redirects: 'fallback',
    });
    this.client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseURL,
      maxRetries: 0,
      timeout: options.timeoutMs,
      // The calls themselves over node:http (net/http-fetch.ts): a millisecond of CPU less per
      // call than Node's fetch. Edits' multipart bodies still go through `fetchImpl`.
      fetch: createHttpFetch({ fallback: this.fetchImpl, bodyIdleMs: options.timeoutMs }),
    });
  }

  /** What the Images API takes for `model`: the registry's sizes, images per call and formats. */
  capabilities(model: ModelSpec): ProviderCapabilities {
    return {
      operations: model.operations,
      sizing: 'size',
      maxImagesPerCall: model.images_per_call ?? model.n.max,
      // DALL·E models answer PNG only; gpt-image models take `output_format`.
      outputFormats: model.output_formats ?? ['png'],
      mode: 'sync',
    };
  }

  async render({
    spec,
    remoteModel,
    images,
    mask,
    hold,
  }: ProviderRequest): Promise<ProviderResult> {
    const model = this.options.registry.get(spec.model);
    const responseFormat = model?.response_formats
      ? { response_format: this.options.responseFormat ?? 'b64_json' }
      : {};
    const common = {
      model: remoteModel ?? spec.model,
      n: spec.n,
      size: spec.size,
      ...responseFormat,
    };
    try {
      let call: APIPromise<OpenAI.Images.ImagesResponse>;
      if (spec.operation === 'generate') {
        call = this.client.images.generate({
          ...generationParams(spec, common.model),
          ...responseFormat,
        });
      } else if (spec.operation === 'edit') {
        const files = await Promise.all(images.map(upload));
        call = this.client.images.edit({
          ...common,
          prompt: spec.prompt ?? '',
          image: files.length === 1 ? files[0]! : files,
          ...(mask ? { mask: await upload(mask) } : {}),
          ...optional('quality', spec.quality),
          ...optional('background', spec.background),
          ...optional('output_format', spec.output_format),
          ...optional('output_compression', spec.output_compression),
        } as OpenAI.Images.ImageEditParamsNonStreaming);
      } else {
        call = this.client.images.createVariation({
          ...common,
          image: await upload(images[0]!),
        } as OpenAI.Images.ImageCreateVariationParams);
      }
      // The SDK makes the request and turns refusals into its errors; the answer's bytes are
      // rendermill's to read, without copying its base64 images through JSON.parse.
      const raw = await call.asResponse();
      // From here on the call is paid for: failures must not make anyone call again.
      const { data = [], usage } = await readImagesAnswer(raw, this.options.timeoutMs, hold);
      if (data.length !== spec.n) {
        throw new PaidResultError(
          `provider returned ${data.length} image(s) where ${spec.n} were asked for`,
          usage,
        );
      }
      const rendered = await Promise.all(data.map((d) => this.decode(d, usage)));
      const tokensUsed = usage ? (usage.input_tokens ?? 0) + (usage.output_tokens ?? 0) : undefined;
      return {
        images: rendered,
        usage,
        rate: rateReport(raw.headers, { refused: false, tokensUsed }),
      };
    } catch (error) {
      throw toProviderError(error);
    }
  }

  private async decode(
    datum: AnsweredImage,
    usage: ProviderUsage | undefined,
  ): Promise<RenderedImage> {
    if (datum.url) {
      return downloadPaidImage(datum.url, {
        fetch: this.downloadFetch,
        timeoutMs: this.options.timeoutMs,
        provider: 'the provider',
        usage,
      });
    }
    return paidImage(datum.b64, usage);
  }
}

/**
 * The Images API's body for a generation (`response_format` aside): what a realtime call sends
 * and what a provider batch's request line carries.
 */
export function generationParams(
  spec: RenderSpec,
  remoteModel: string,
): OpenAI.Images.ImageGenerateParamsNonStreaming {
  return {
    model: remoteModel,
    n: spec.n,
    size: spec.size,
    prompt: spec.prompt ?? '',
    ...optional('quality', spec.quality),
    ...optional('style', spec.style),
    ...optional('background', spec.background),
    ...optional('output_format', spec.output_format),
    ...optional('output_compression', spec.output_compression),
  } as OpenAI.Images.ImageGenerateParamsNonStreaming;
}

/** A paid image answered as base64: its bytes and format, or PaidResultError if it is none. */
export function decodeB64Image(
  b64: string | undefined,
  usage: ProviderUsage | undefined,
): RenderedImage {
  return paidImage(b64 ? Buffer.from(b64, 'base64') : undefined, usage);
}

/** A paid image's decoded bytes and their format, or PaidResultError if they are none. */
function paidImage(data: Buffer | undefined, usage: ProviderUsage | undefined): RenderedImage {
  if (!data) throw new PaidResultError('provider answered without b64_json or url', usage);
  const format = sniffImageFormat(data);
  if (!format) throw new PaidResultError('provider returned bytes that are not an image', usage);
  return { data, format };
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

function upload(image: InputImage) {
  return toFile(image.data, image.filename, { type: image.contentType });
}
