import OpenAI from 'openai';
import {
  PaidResultError,
  ProviderRejectedError,
  ProviderUnavailableError,
  type ProviderUsage,
} from '../errors.js';
import type { ModelRegistry } from '../models/model-registry.js';
import type { ModelSpec, Operation } from '../models/registry-schema.js';
import type {
  ImageProvider,
  InputImage,
  ProviderCapabilities,
  ProviderRequest,
  ProviderResult,
} from './image-provider.js';
import { accountIdFor } from './account-id.js';
import { toProviderError } from './provider-errors.js';
import { rateReport } from './rate-limit-headers.js';
import { sniffImageFormat } from './sniff-format.js';
import { createHttpFetch } from '../net/http-fetch.js';

/**
 * The mainline model that calls the image tool: the one OpenAI's image-generation tool guide
 * uses (https://developers.openai.com/api/docs/guides/tools-image-generation). It only reads
 * the prompt and calls the tool; the image is rendered and priced by the tool's own model.
 */
export const DEFAULT_RESPONSES_MODEL = 'gpt-5';

/** What the image tool renders through this route. */
const TOOL_OPERATIONS: readonly Operation[] = ['generate', 'edit'];
/** The formats the tool's `output_format` takes. */
const TOOL_FORMATS = new Set(['png', 'jpeg', 'webp']);
/** `Response.error` codes that refuse the content: the item fails, nothing is retried. */
const CONTENT_CODES = new Set([
  'moderation_blocked',
  'content_policy_violation',
  'image_content_policy_violation',
]);

export interface OpenAIResponsesProviderOptions {
  baseURL: string;
  apiKey: string;
  registry: ModelRegistry;
  /** Per-request timeout; a timed-out call is a retryable ProviderUnavailableError. */
  timeoutMs: number;
  /** The mainline model that calls the tool (default {@link DEFAULT_RESPONSES_MODEL}). */
  responsesModel?: string;
}

/**
 * The image tool's token usage, which the Responses API reports beside the mainline model's
 * `usage` as `tool_usage.image_gen` (not in the SDK's types, hence read here by hand).
 */
interface ImageGenUsage {
  input_tokens?: number;
  output_tokens?: number;
  input_tokens_details?: { text_tokens?: number; image_tokens?: number };
}

/**
 * An account on OpenAI's Responses API, rendering through its `image_generation` tool, forced
 * so every call renders exactly one image. The SDK's own retries are off (`maxRetries: 0`):
 * rendermill decides retries from typed errors. Its account id is that of the Images API
 * adapter on the same base URL and key, because both spend the same account's limits.
 */
export class OpenAIResponsesImageProvider implements ImageProvider {
  readonly kind = 'openai-responses';
  readonly accountId: string;
  private readonly client: OpenAI;
  private readonly responsesModel: string;

  constructor(private readonly options: OpenAIResponsesProviderOptions) {
    this.accountId = accountIdFor(options.baseURL, options.apiKey);
    this.responsesModel = options.responsesModel ?? DEFAULT_RESPONSES_MODEL;
    this.client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseURL,
      maxRetries: 0,
      timeout: options.timeoutMs,
      // Over node:http, as the Images API adapter calls (net/http-fetch.ts).
      fetch: createHttpFetch({ bodyIdleMs: options.timeoutMs }),
    });
  }

  /** The tool renders one image per call (it has no `n`), by `size`, in the model's formats. */
  capabilities(model: ModelSpec): ProviderCapabilities {
    return {
      operations: model.operations.filter((operation) => TOOL_OPERATIONS.includes(operation)),
      sizing: 'size',
      maxImagesPerCall: 1,
      outputFormats: model.output_formats ?? ['png'],
      mode: 'sync',
    };
  }

  async render({ spec, remoteModel, images, mask }: ProviderRequest): Promise<ProviderResult> {
    // rendermill fits n to maxImagesPerCall before calling; more here is a caller's bug.
    if (spec.n !== 1) throw new Error(`the image tool renders 1 image per call, not ${spec.n}`);
    if (spec.operation !== 'generate' && spec.operation !== 'edit') {
      throw new Error(`the image tool cannot do a ${spec.operation}`);
    }
    const edit = spec.operation === 'edit';
    const tool = {
      type: 'image_generation',
      model: remoteModel ?? spec.model,
      action: edit ? 'edit' : 'generate',
      size: spec.size,
      ...optional('quality', spec.quality),
      ...optional('background', spec.background),
      ...(spec.output_format && TOOL_FORMATS.has(spec.output_format)
        ? { output_format: spec.output_format }
        : {}),
      ...optional('output_compression', spec.output_compression),
      ...(edit && mask ? { input_image_mask: { image_url: dataUrl(mask) } } : {}),
    } as OpenAI.Responses.Tool.ImageGeneration;
    const content: OpenAI.Responses.ResponseInputContent[] = [
      { type: 'input_text', text: spec.prompt ?? '' },
      ...(edit
        ? images.map((image): OpenAI.Responses.ResponseInputImage => ({
            type: 'input_image',
            image_url: dataUrl(image),
            detail: 'auto',
          }))
        : []),
    ];
    try {
      const { data: response, response: raw } = await this.client.responses
        .create({
          model: this.responsesModel,
          input: [{ role: 'user', content }],
          tools: [tool],
          tool_choice: { type: 'image_generation' },
          // A batch renderer keeps its images itself: nothing to keep on OpenAI's side.
          store: false,
        })
        .withResponse();
      // From here on the call is paid for: failures must not make anyone call again.
      const usage = imageUsage(response);
      const calls = response.output.filter(
        (item): item is OpenAI.Responses.ResponseOutputItem.ImageGenerationCall =>
          item.type === 'image_generation_call',
      );
      const rendered = calls.find((call) => call.status === 'completed' && call.result);
      if (!rendered?.result) throw refusalOrUnusable(response, calls, usage);
      const data = Buffer.from(rendered.result, 'base64');
      const format = sniffImageFormat(data);
      if (!format)
        throw new PaidResultError('provider returned bytes that are not an image', usage);
      const tokensUsed = usage ? (usage.input_tokens ?? 0) + (usage.output_tokens ?? 0) : undefined;
      // On the call item in the real API's answers, though not in the SDK's types.
      const revisedPrompt = (rendered as { revised_prompt?: unknown }).revised_prompt;
      return {
        images: [{ data, format }],
        usage,
        rate: rateReport(raw.headers, { refused: false, tokensUsed }),
        revisedPrompt: typeof revisedPrompt === 'string' ? revisedPrompt : undefined,
      };
    } catch (error) {
      throw toProviderError(error);
    }
  }
}

/**
 * The image tool's usage in rendermill's form, from `tool_usage.image_gen`; undefined when the
 * answer has none (the mainline model's `usage` is not the image's, so the registry's typical
 * tokens then price it).
 */
function imageUsage(response: OpenAI.Responses.Response): ProviderUsage | undefined {
  const reported = (response as { tool_usage?: { image_gen?: ImageGenUsage | null } }).tool_usage
    ?.image_gen;
  if (!reported || typeof reported.output_tokens !== 'number') return undefined;
  const details = reported.input_tokens_details;
  return {
    input_tokens: reported.input_tokens ?? 0,
    output_tokens: reported.output_tokens,
    input_tokens_details: {
      text_tokens: details?.text_tokens ?? 0,
      image_tokens: details?.image_tokens ?? 0,
    },
  };
}

/**
 * Why a 200 carried no image. A response that failed or stopped for its content (the tool's
 * moderation at the output stage) is a refusal; one that failed on the provider's side may be
 * tried again; a completed one without an image was paid for and is unusable.
 */
function refusalOrUnusable(
  response: OpenAI.Responses.Response,
  calls: OpenAI.Responses.ResponseOutputItem.ImageGenerationCall[],
  usage: ProviderUsage | undefined,
): Error {
  const code = response.error?.code as string | undefined;
  const message = response.error?.message ?? 'the image generation call failed';
  if (code && CONTENT_CODES.has(code)) return new ProviderRejectedError(message, code);
  if (response.incomplete_details?.reason === 'content_filter') {
    return new ProviderRejectedError(
      'the response was stopped by the content filter',
      'content_filter',
    );
  }
  if (response.status === 'failed' || calls.some((call) => call.status === 'failed')) {
    if (!code || code === 'server_error') {
      return new ProviderUnavailableError(`provider failed the response: ${message}`, true);
    }
    return new ProviderRejectedError(message, code);
  }
  return new PaidResultError(
    `the response (status ${response.status ?? 'unknown'}) carried no image`,
    usage,
  );
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

/** An input image as the Responses API takes it inline: a base64 data URL. */
function dataUrl(image: InputImage): string {
  return `data:${image.contentType};base64,${image.data.toString('base64')}`;
}
