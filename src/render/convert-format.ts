import { loadSharp } from './load-sharp.js';
import type { RenderedImage } from '../providers/image-provider.js';
import type { ImageFormat } from '../models/render-spec.js';

/** JPEG has no alpha channel: transparent pixels become white rather than sharp's black. */
const JPEG_BACKGROUND = '#ffffff';

/**
 * Re-encodes a rendered image as `format`, for items asking a format their model cannot
 * produce (avif from any model, webp from DALL·E …). `compression` is the item's
 * output_compression, used as the encoder's quality (sharp takes 1–100). An image already in
 * the format is returned as is, not re-encoded (that would only lose quality).
 */
export async function convertImage(
  image: RenderedImage,
  format: ImageFormat,
  compression?: number,
): Promise<RenderedImage> {
  if (image.format === format) return image;
  const quality = compression === undefined ? {} : { quality: Math.max(1, compression) };
  const sharp = await loadSharp();
  const input = sharp(image.data);
  const encoded =
    format === 'png'
      ? input.png()
      : format === 'jpeg'
        ? input.flatten({ background: JPEG_BACKGROUND }).jpeg(quality)
        : format === 'webp'
          ? input.webp(quality)
          : input.avif(quality);
  return { data: await encoded.toBuffer(), format };
}
