import { loadSharp } from './load-sharp.js';
import { InputImageError } from '../errors.js';

/**
 * The most pixels an input image may have: 64 megapixels (8192×8192; a 48 MP phone photo
 * passes). Decoding is what costs memory, and a PNG of a few hundred kilobytes can declare
 * 20000×20000 — 1.6 GB of pixels — in its header; such an image is refused from its header,
 * before any of it is decoded.
 */
export const MAX_INPUT_PIXELS = 64 * 1024 * 1024;

/** What the checks of an input image need from it. */
export interface DecodedInputImage {
  width: number;
  height: number;
  hasAlpha: boolean;
}

/**
 * Decodes an edit/variation input whole — not only its header, so that a file whose magic
 * bytes are followed by garbage, or that is cut short, is found out here — within
 * MAX_INPUT_PIXELS. Anything sharp cannot read is the sender's InputImageError (a 400 at the
 * API, a failed item in a worker) naming the file and why, never an error of rendermill's own.
 */
export async function decodeInputImage(data: Buffer, filename: string): Promise<DecodedInputImage> {
  const options = { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' } as const;
  const sharp = await loadSharp();
  try {
    const { width, height, hasAlpha } = await sharp(data, options).metadata();
    // Reading every pixel is what finds a corrupt body behind a good header.
    await sharp(data, options).stats();
    return { width, height, hasAlpha };
  } catch (error) {
    throw new InputImageError(`${filename} cannot be read as an image: ${decodeProblem(error)}`);
  }
}

/** sharp's message, on one line, with its own wording for the pixel limit. */
function decodeProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(message)) {
    return `it has more than ${MAX_INPUT_PIXELS} pixels (${Math.sqrt(MAX_INPUT_PIXELS)}x${Math.sqrt(MAX_INPUT_PIXELS)})`;
  }
  const firstLine = message.split('\n')[0]!.trim().replace(/:$/, '');
  return firstLine.length > 200 ? `${firstLine.slice(0, 200)}…` : firstLine;
}
