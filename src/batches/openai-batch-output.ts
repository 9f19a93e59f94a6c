import type { BatchStore } from './batch-store.js';
import type { BatchRecord, ItemRecord } from '../contracts/batch-records.js';

/**
 * The results of a batch as OpenAI's Batch API gives them: an output file with one line per
 * item that rendered (its images as URLs) and an error file with one line per item that did
 * not, each naming the item by `custom_id`. Lines come in no particular order, as OpenAI's do.
 */
export type OpenAiResultFile = 'output' | 'errors';

/** HTTP status an item's failure would have had from the Images API itself. */
const STATUS_BY_CODE: Record<string, number> = {
  content_policy_violation: 400,
  moderation_blocked: 400,
  invalid_input_image: 400,
  invalid_request: 400,
  model_unavailable: 404,
  provider_auth: 401,
  provider_quota_exhausted: 429,
  budget_exceeded: 429,
  rate_limited: 429,
  provider_unavailable: 502,
};

const requestId = (batch: BatchRecord, item: ItemRecord) => `batch_req_${batch.id}_${item.index}`;

export async function* openAiResultLines(
  store: BatchStore,
  batch: BatchRecord,
  file: OpenAiResultFile,
  urlFor: (key: string) => Promise<string>,
): AsyncGenerator<string> {
  for await (const chunk of store.scanItems(batch.id)) {
    for (const item of chunk.sort((a, b) => a.index - b.index)) {
      const rendered = item.status === 'succeeded' || item.status === 'cached';
      if (file === 'output' && rendered)
        yield `${JSON.stringify(await outputLine(batch, item, urlFor))}\n`;
      if (file === 'errors' && !rendered && item.error)
        yield `${JSON.stringify(errorLine(batch, item))}\n`;
    }
  }
}

async function outputLine(
  batch: BatchRecord,
  item: ItemRecord,
  urlFor: (key: string) => Promise<string>,
) {
  return {
    id: requestId(batch, item),
    custom_id: item.id,
    response: {
      status_code: 200,
      request_id: `req_${item.hash ?? item.index}`,
      body: {
        created: Math.floor(Date.parse(item.updated_at) / 1000),
        data: await Promise.all(
          item.images.map(async (image) => ({ url: await urlFor(image.key) })),
        ),
        output_format: item.spec.output_format ?? 'png',
        size: item.spec.size,
        ...(item.spec.quality ? { quality: item.spec.quality } : {}),
      },
    },
    error: null,
  };
}

function errorLine(batch: BatchRecord, item: ItemRecord) {
  const error = item.error ?? { code: item.status, message: item.status };
  // A cancelled item never reached the provider: OpenAI reports those with no response.
  if (item.status === 'cancelled') {
    return {
      id: requestId(batch, item),
      custom_id: item.id,
      response: null,
      error: { code: 'batch_cancelled', message: error.message },
    };
  }
  return {
    id: requestId(batch, item),
    custom_id: item.id,
    response: {
      status_code: STATUS_BY_CODE[error.code] ?? 500,
      request_id: `req_${item.hash ?? item.index}`,
      body: {
        error: {
          message: error.message,
          type: error.code === 'budget_exceeded' ? 'insufficient_quota' : 'invalid_request_error',
          param: null,
          code: error.code,
        },
      },
    },
    error: null,
  };
}
