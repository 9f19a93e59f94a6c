import { textTokens } from '../../infra/simulator/server.js';

/**
 * What the simulator bills for one gpt-image-2 256x256 low image, worked out independently of
 * rendermill's pricing code: its token rates (USD per million = micro-dollars per token) and the
 * registry's 272 output tokens at 1024x1024 scaled by area.
 */
const RATES = { text: 5, output: 32 };
const OUTPUT_TOKENS_256_LOW = Math.ceil((272 * 256 * 256) / (1024 * 1024));

/** One 256² low image of `prompt` realtime, in micro-dollars (whole: the rates are). */
export const realtimeMicros = (prompt: string) =>
  textTokens(prompt) * RATES.text + OUTPUT_TOKENS_256_LOW * RATES.output;

/** The same through the Batch API: half, rounded up per line as rendermill settles it. */
export const batchMicros = (prompt: string) => Math.ceil(realtimeMicros(prompt) * 0.5);

/** A catalog's items `sku-0…` with distinct prompts `<prefix> product <i>`. */
export const productItems = (count: number, prefix: string) =>
  Array.from({ length: count }, (_, i) => ({ id: `sku-${i}`, prompt: `${prefix} product ${i}` }));
