import { z } from 'zod';
import type { FieldProblem } from '../errors.js';
import { quotedValue } from '../request-validation.js';

/**
 * A line of an OpenAI Batch API input file: `{custom_id, method, url, body}`. rendermill takes
 * such files as they are, so a team that already builds them for OpenAI changes nothing.
 */
export const isOpenAiBatchLine = (values: Record<string, unknown>) =>
  Object.hasOwn(values, 'custom_id') &&
  Object.hasOwn(values, 'url') &&
  Object.hasOwn(values, 'body');

/** A Map, not an object: a `url` of `"constructor"` or `"__proto__"` must find nothing. */
const OPERATION_BY_URL = new Map<string, 'generate' | 'edit'>([
  ['/v1/images/generations', 'generate'],
  ['/v1/images/edits', 'edit'],
]);

/** Body fields passed on as they are. */
const RENDER_FIELDS = [
  'model',
  'prompt',
  'size',
  'quality',
  'n',
  'style',
  'background',
  'output_format',
  'output_compression',
] as const;

/** Body fields OpenAI accepts that change nothing rendermill stores. */
const IGNORED_FIELDS = new Set(['response_format', 'user', 'moderation', 'input_fidelity']);

/** An input image as OpenAI's lines give it: a URL, or `{ "image_url": … }`. */
const imageFieldSchema = z.union([
  z.string(),
  z.looseObject({ image_url: z.string() }).transform((value) => value.image_url),
]);

/**
 * An input image as rendermill names it (a URL or a key in its bucket), or undefined for
 * anything else the line holds there — null, a number, `{ "file_id": … }`.
 */
function imageRef(value: unknown): string | undefined {
  const parsed = imageFieldSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** Turns one OpenAI Batch line into a batch item, or the problems that keep it from being one. */
export function openAiBatchItem(
  values: Record<string, unknown>,
): { item: Record<string, unknown> } | { problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const problem = (field: string, message: string) => problems.push({ field, message });
  const { custom_id: id, method, url, body } = values;
  if (typeof id !== 'string' || id === '') problem('custom_id', 'must be a non-empty string');
  if (method !== 'POST') problem('method', `must be "POST", not ${quotedValue(method)}`);
  const operation = typeof url === 'string' ? OPERATION_BY_URL.get(url) : undefined;
  if (!operation) {
    problem('url', `must be ${[...OPERATION_BY_URL.keys()].join(' or ')}, not ${quotedValue(url)}`);
    // Another endpoint's body means nothing here: its fields are not worth listing.
    return { problems };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    problem('body', 'must be a JSON object');
    return { problems };
  }
  const item: Record<string, unknown> = { id, operation };
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if ((RENDER_FIELDS as readonly string[]).includes(key)) item[key] = value;
    else if (key === 'image' || key === 'images') {
      const list: unknown[] = Array.isArray(value) ? value : [value];
      const refs = list.map(imageRef);
      if (refs.some((ref) => ref === undefined)) {
        problem(
          `body.${key}`,
          'images must be URLs or { "image_url": … } (file ids are not supported)',
        );
      } else item.image = refs.length === 1 ? refs[0] : refs;
    } else if (key === 'mask') {
      const ref = imageRef(value);
      if (ref === undefined) problem('body.mask', 'must be a URL or { "image_url": … }');
      else item.mask = ref;
    } else if (key === 'stream' && value === false) continue;
    else if (!IGNORED_FIELDS.has(key)) problem(`body.${key}`, 'is not supported');
  }
  return problems.length > 0 ? { problems } : { item };
}
