import { InputImageError, RequestValidationError } from '../errors.js';
import { DownloadTooLargeError, guardedGet } from '../net/guarded-get.js';
import { HostUnresolvedError, PrivateUrlError, RefusedAddressError } from '../net/url-guard.js';
import type { ModelSpec } from '../models/registry-schema.js';
import { CONTENT_TYPES } from '../models/render-spec.js';
import type { InputImage } from '../providers/image-provider.js';
import { sniffImageFormat } from '../providers/sniff-format.js';
import { decodeInputImage } from './decode-input-image.js';
import type { ImageStorage } from '../storage/image-storage.js';

const DOWNLOAD_TIMEOUT_MS = 30_000;
const MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024;

/**
 * Where a tenant's uploaded edit inputs live: the Images API's edits and variations store
 * their files here, content-addressed (`uploads/<scope>/<sha256>.<ext>`). `scope` is the
 * result cache's (ResultCache.scopeFor): one folder per tenant, or `shared` when the cache is.
 */
export const uploadsFolder = (scope: string) => `uploads/${scope}/`;

/**
 * The uploads folder of the scope whose renders live in `ownRenders`: both areas are
 * `<area>/<scope>/`. Undefined for a folder of any other shape, so that no key under
 * uploads/ counts as the tenant's own: the check then fails closed.
 */
function uploadsBeside(ownRenders: string): string | undefined {
  const scope = /^images\/([^/]+)\/$/.exec(ownRenders)?.[1];
  return scope === undefined ? undefined : uploadsFolder(scope);
}

/**
 * Refuses an input key in the parts of the bucket rendermill writes for tenants — other
 * tenants' renders (`images/<their scope>/…`), other tenants' uploads (`uploads/<their
 * scope>/…`) and batch manifests (`batches/…`) — so that an edit cannot read, or probe for,
 * what another tenant rendered or uploaded. Its own renders (`ownFolder`), its own uploads
 * (`ownUploads`, by default the uploads folder of the same scope) and any other key are fine;
 * URLs are the caller's own business. A key with `.` or `..` segments is refused as well: some
 * S3-compatible stores resolve them, which would step out of the folder that was checked.
 */
export function checkInputRef(
  ref: string,
  ownFolder: string,
  ownUploads: string | undefined = uploadsBeside(ownFolder),
): void {
  if (/^https?:\/\//i.test(ref)) return;
  if (ref.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new InputImageError(`input image ${ref}: a key must not contain . or .. segments`);
  }
  const foreignRender = ref.startsWith('images/') && !ref.startsWith(ownFolder);
  if (foreignRender || ref.startsWith('batches/')) {
    throw new InputImageError(
      `input image ${ref}: keys under images/ and batches/ are rendermill's own; ` +
        `use your own renders (${ownFolder}…) or upload the image under another prefix`,
    );
  }
  if (ref.startsWith('uploads/') && (ownUploads === undefined || !ref.startsWith(ownUploads))) {
    throw new InputImageError(
      `input image ${ref}: keys under uploads/ are other tenants' uploads; ` +
        `use your own (${ownUploads ?? 'uploads/<your scope>/'}…) or upload the image under another prefix`,
    );
  }
}

/** What `loadInputImage` may do beyond reading the bucket. */
export interface LoadInputOptions {
  /**
   * Let an input URL reach loopback, private, link-local and reserved addresses
   * (`RENDERMILL_ALLOW_PRIVATE_URLS`); off, URLs go to public hosts only.
   */
  allowPrivateUrls: boolean;
}

/**
 * Fetches an edit/variation input — an S3 key in rendermill's bucket or an http(s) URL — and
 * checks it against the model's input rules, so a bad input fails the item with a reason
 * instead of costing a provider round trip.
 *
 * A URL is a request a worker makes from inside rendermill's network on the tenant's behalf,
 * so it goes through the SSRF guard (src/net/guarded-get.ts): a URL, or a redirect, to a
 * private address fails with `InputImageError` "refused: private address", before any request
 * is made to it, and says nothing more about what is there.
 */
export async function loadInputImage(
  ref: string,
  storage: ImageStorage,
  options: LoadInputOptions,
): Promise<InputImage> {
  let data: Buffer;
  if (/^https?:\/\//i.test(ref)) {
    data = await downloadInput(ref, options);
  } else {
    const object = await storage.get(ref);
    if (!object)
      throw new InputImageError(`input image s3://${storage.bucket}/${ref} does not exist`);
    data = object.body;
  }
  const format = sniffImageFormat(data);
  if (!format) throw new InputImageError(`input image ${ref} is not a PNG, JPEG or WebP image`);
  const name = ref.split(/[/?#]/).filter(Boolean).pop() ?? 'image';
  return {
    data,
    filename: name.includes('.') ? name : `${name}.${format}`,
    contentType: CONTENT_TYPES[format],
  };
}

/**
 * Downloads an input URL through the guard. Messages name the URL without its query (it may
 * carry a signature) and never what a refused host resolves to.
 */
async function downloadInput(url: string, options: LoadInputOptions): Promise<Buffer> {
  const shown = withoutQuery(url);
  let answer;
  try {
    answer = await guardedGet(url, {
      allowPrivate: options.allowPrivateUrls,
      timeoutMs: DOWNLOAD_TIMEOUT_MS,
      maxBytes: MAX_DOWNLOAD_BYTES,
      accept: 'image/png, image/jpeg, image/webp, */*;q=0.5',
      field: 'image',
      code: 'invalid_input_image',
    });
  } catch (error) {
    if (error instanceof PrivateUrlError || error instanceof RefusedAddressError) {
      throw new InputImageError(`input image ${shown}: refused: private address`);
    }
    if (error instanceof HostUnresolvedError) {
      throw new InputImageError(`cannot download input image ${shown}: its host does not resolve`);
    }
    if (error instanceof RequestValidationError) {
      // A URL (or a redirect's target) of the wrong form: its message says which rule.
      throw new InputImageError(`input image ${shown}: ${error.message.replace(/^image: /, '')}`);
    }
    if (error instanceof DownloadTooLargeError) {
      throw new InputImageError(`input image ${shown} is too large`);
    }
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new InputImageError(`cannot download input image ${shown}: ${reason}`);
  }
  if (answer.status < 200 || answer.status >= 300) {
    throw new InputImageError(`input image ${shown} answered HTTP ${answer.status}`);
  }
  return answer.body;
}

function withoutQuery(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}${parsed.search ? '?…' : ''}`;
  } catch {
    return url;
  }
}

/** Checks inputs against the model's `edit_input` rules (dall-e-2: one square PNG < 4 MB …). */
export async function checkInputImages(
  model: ModelSpec,
  images: InputImage[],
  mask: InputImage | undefined,
): Promise<void> {
  const rules = model.edit_input;
  if (!rules) return;
  let first: { width: number; height: number } | undefined;
  for (const image of images) {
    const format = sniffImageFormat(image.data);
    if (!format || !(rules.formats as readonly string[]).includes(format)) {
      throw new InputImageError(
        `${image.filename}: ${model.id} accepts ${rules.formats.join('/')} input, got ${format ?? 'unknown'}`,
      );
    }
    if (image.data.length >= rules.max_bytes) {
      throw new InputImageError(
        `${image.filename} is ${image.data.length} bytes; ${model.id} needs less than ${rules.max_bytes}`,
      );
    }
    const { width, height } = await decodeInputImage(image.data, image.filename);
    if (rules.square && width !== height) {
      throw new InputImageError(
        `${image.filename} is ${width}x${height}; ${model.id} needs a square image`,
      );
    }
    first ??= { width, height };
  }
  if (mask && first) {
    const { width, height, hasAlpha } = await decodeInputImage(mask.data, mask.filename);
    if (width !== first.width || height !== first.height) {
      throw new InputImageError(
        `the mask is ${width}x${height} but the image is ${first.width}x${first.height}; they must match`,
      );
    }
    if (!hasAlpha) {
      throw new InputImageError(
        'the mask needs an alpha channel: its transparent pixels mark the area to repaint',
      );
    }
  }
}
