import type { FastifyRequest } from 'fastify';
import { InputImageError } from '../errors.js';
import { extension } from '../cache/result-cache.js';
import type { ModelRegistry } from '../models/model-registry.js';
import type { ModelSpec } from '../models/registry-schema.js';
import { CONTENT_TYPES } from '../models/render-spec.js';
import { contentHash } from '../models/request-hash.js';
import type { InputImage } from '../providers/image-provider.js';
import { sniffImageFormat } from '../providers/sniff-format.js';
import { checkInputImages, uploadsFolder } from '../render/input-images.js';
import type { ImageStorage } from '../storage/image-storage.js';
import { formReadError } from './input-errors.js';
import { invalidRequest, OpenAiError } from './openai-error.js';

/** A file of an edit or variation form, with the bucket key it is (or will be) stored under. */
export interface UploadedImage extends InputImage {
  /** `uploads/<scope>/<sha256>.<ext>`: content-addressed, so an upload is stored once. */
  key: string;
}

export interface ImageForm {
  fields: Record<string, string>;
  images: UploadedImage[];
  mask?: UploadedImage | undefined;
}

/**
 * The multipart limits of the edit and variation routes: a file may be as large as the
 * registry's most generous model allows (gpt-image: 50 MB) — a larger one is refused with 413
 * while it streams in — and each model's own limit (dall-e-2: under 4 MB) is checked once the
 * form says which model it is (400, as OpenAI answers). Files: as many inputs as a model
 * takes, plus the mask.
 */
export function formLimits(registry: ModelRegistry) {
  const inputs = registry.ids().flatMap((id) => {
    const rules = registry.get(id)?.edit_input;
    return rules ? [rules] : [];
  });
  return {
    fileSize: Math.max(4 * 1024 * 1024, ...inputs.map((rules) => rules.max_bytes)),
    files: Math.max(1, ...inputs.map((rules) => rules.max_images)) + 1,
    fields: 32,
    parts: 64,
  };
}

/** The form fields that must be files. */
const FILE_FIELDS = new Set(['image', 'image[]', 'mask']);

/**
 * Reads an edit or variation form: text fields, the image(s) (`image`, or `image[]` as the SDK
 * sends a list) and the mask, each keyed under the tenant's uploads folder by its SHA-256. The
 * whole body is read before anything is refused, so the client gets the answer rather than
 * a connection cut mid-upload.
 */
export async function readImageForm(
  request: FastifyRequest,
  scope: string,
  /** All the form's files together (RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST). */
  maxTotalBytes: number,
): Promise<ImageForm> {
  if (!request.isMultipart()) {
    throw invalidRequest(
      'this endpoint takes multipart/form-data, with the image as a file part named image',
      null,
      'invalid_content_type',
    );
  }
  const fields: Record<string, string> = {};
  const images: UploadedImage[] = [];
  const masks: UploadedImage[] = [];
  const unexpected: string[] = [];
  let totalBytes = 0;
  try {
    for await (const part of request.parts()) {
      if (part.type !== 'file') {
        if (FILE_FIELDS.has(part.fieldname)) unexpected.push(part.fieldname);
        else fields[part.fieldname] = String(part.value);
        continue;
      }
      const data = await readWithin(part.file, maxTotalBytes - totalBytes);
      totalBytes += data?.length ?? Number.POSITIVE_INFINITY;
      if (!data) continue;
      if (part.fieldname === 'image' || part.fieldname === 'image[]') {
        images.push(uploaded(data, part.filename, scope, 'image'));
      } else if (part.fieldname === 'mask') {
        masks.push(uploaded(data, part.filename, scope, 'mask'));
      } else unexpected.push(part.fieldname);
    }
  } catch (error) {
    // A truncated or malformed form is the sender's 400, not an error of rendermill's.
    throw formReadError(error);
  }
  if (totalBytes > maxTotalBytes) {
    throw new OpenAiError(
      413,
      'invalid_request_error',
      `the files of this request are larger than ${maxTotalBytes} bytes together, the most one ` +
        'request may upload (RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST)',
      'image',
      'request_too_large',
    );
  }
  if (unexpected.length > 0) {
    const [field] = unexpected as [string];
    throw invalidRequest(
      `${field}: send images as files — the image as image (several as image[]), the mask as mask`,
      FILE_FIELDS.has(field) ? field.replace('[]', '') : field,
    );
  }
  if (masks.length > 1) throw invalidRequest('mask: send one mask', 'mask');
  const invalid = [...images, ...masks].find((file) => file.key === '');
  if (invalid) {
    throw invalidRequest(
      `${invalid.filename} is not a PNG, JPEG or WebP image`,
      masks.includes(invalid) ? 'mask' : 'image',
      'invalid_image_format',
    );
  }
  return { fields, images, mask: masks[0] };
}

/**
 * A file's bytes if they fit in `budget`, else undefined — having read the file to its end
 * and kept none of it once past the budget: the form's memory is bounded by the budget of the
 * whole request, not by the number of files times each file's limit.
 */
async function readWithin(
  file: AsyncIterable<Buffer>,
  budget: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = budget < 0;
  for await (const chunk of file) {
    if (over) continue;
    size += chunk.length;
    if (size > budget) {
      over = true;
      chunks.length = 0;
    } else chunks.push(chunk);
  }
  return over ? undefined : Buffer.concat(chunks);
}

function uploaded(data: Buffer, filename: string, scope: string, field: string): UploadedImage {
  const format = sniffImageFormat(data);
  const name = filename || field;
  if (!format) return { data, filename: name, contentType: 'application/octet-stream', key: '' };
  return {
    data,
    filename: name,
    contentType: CONTENT_TYPES[format],
    key: `${uploadsFolder(scope)}${contentHash(data)}.${extension(format)}`,
  };
}

/**
 * Checks the files against the model's input rules (format, size, square, the mask's size and
 * alpha) before anything is stored or queued, as the worker will again: a bad input is the
 * caller's 400, naming `image` or `mask`, not a failed render.
 */
export async function checkFormImages(model: ModelSpec, form: ImageForm): Promise<void> {
  try {
    await checkInputImages(model, form.images, undefined);
  } catch (error) {
    if (error instanceof InputImageError) throw invalidRequest(error.message, 'image', error.code);
    throw error;
  }
  if (!form.mask) return;
  try {
    await checkInputImages(model, form.images, form.mask);
  } catch (error) {
    if (error instanceof InputImageError) throw invalidRequest(error.message, 'mask', error.code);
    throw error;
  }
}

/** Stores the files under their content-addressed keys; one already there is not sent again. */
export async function storeFormImages(storage: ImageStorage, form: ImageForm): Promise<void> {
  const files = [...form.images, ...(form.mask ? [form.mask] : [])];
  const unique = [...new Map(files.map((file) => [file.key, file])).values()];
  await Promise.all(
    unique.map(async (file) => {
      if (await storage.head(file.key)) return;
      await storage.put({ key: file.key, body: file.data, contentType: file.contentType });
    }),
  );
}
