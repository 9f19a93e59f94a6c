import { loadSharp } from './load-sharp.js';
import type { DeriveSpec } from '../contracts/derive-spec.js';

/** Makes one smaller copy of an image: fit inside px × px, aspect ratio kept. */
export async function deriveImage(original: Buffer, spec: DeriveSpec): Promise<Buffer> {
  const sharp = await loadSharp();
  const resized = sharp(original).resize({
    width: spec.px,
    height: spec.px,
    fit: 'inside',
    withoutEnlargement: true,
  });
  const quality = spec.quality === undefined ? {} : { quality: spec.quality };
  switch (spec.format) {
    case 'png':
      return resized.png().toBuffer();
    case 'jpeg':
      return resized.jpeg(quality).toBuffer();
    case 'webp':
      return resized.webp(quality).toBuffer();
    case 'avif':
      return resized.avif(quality).toBuffer();
  }
}
