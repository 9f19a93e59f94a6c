import pRetry, { AbortError } from 'p-retry';
import { PaidResultError, type ProviderUsage } from '../errors.js';
import type { RenderedImage } from './image-provider.js';
import { sniffImageFormat } from './sniff-format.js';

const DOWNLOAD_RETRIES = 3;

/**
 * Fetches an image a provider answered with a URL — now, since such URLs expire (OpenAI's and
 * Replicate's after an hour) — retrying brief network trouble and 5xx; a 4xx (gone, refused)
 * is final. The image is paid for either way: every failure is a PaidResultError carrying the
 * call's `usage`, so the item is never bought again for it.
 */
export async function downloadPaidImage(
  url: string,
  options: {
    fetch: typeof fetch;
    timeoutMs: number;
    /** Who answered, for messages: `the provider`, `fal`, `Replicate`. */
    provider: string;
    usage?: ProviderUsage | undefined;
  },
): Promise<RenderedImage> {
  let data: Buffer;
  try {
    data = await pRetry(
      async () => {
        const response = await options.fetch(url, {
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        if (!response.ok) {
          await response.body?.cancel();
          const failure = new Error(`HTTP ${response.status}`);
          if (response.status >= 400 && response.status < 500 && response.status !== 429) {
            throw new AbortError(failure);
          }
          throw failure;
        }
        return Buffer.from(await response.arrayBuffer());
      },
      { retries: DOWNLOAD_RETRIES, minTimeout: 250 },
    );
  } catch (error) {
    throw new PaidResultError(
      `${options.provider}'s image URL could not be downloaded: ${(error as Error).message}`,
      options.usage,
    );
  }
  const format = sniffImageFormat(data);
  if (!format) {
    throw new PaidResultError(
      `${options.provider} returned bytes that are not an image`,
      options.usage,
    );
  }
  return { data, format };
}
