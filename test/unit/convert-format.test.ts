import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { convertImage } from '../../src/render/convert-format.js';
import { sniffImageFormat } from '../../src/providers/sniff-format.js';
import type { RenderedImage } from '../../src/providers/image-provider.js';

/** A 96x64 png with a gradient, so encoders have something to compress. */
async function gradientPng(): Promise<RenderedImage> {
  const [width, height] = [96, 64];
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    pixels[i * 3] = (i % width) * 2;
    pixels[i * 3 + 1] = Math.floor(i / width) * 3;
    pixels[i * 3 + 2] = 128;
  }
  const data = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  return { data, format: 'png' };
}

describe('convertImage', () => {
  it.each(['avif', 'jpeg', 'webp'] as const)(
    'converts png to %s, same dimensions',
    async (format) => {
      const png = await gradientPng();
      const converted = await convertImage(png, format, 60);
      expect(converted.format).toBe(format);
      expect(sniffImageFormat(converted.data)).toBe(format);
      const meta = await sharp(converted.data).metadata();
      expect([meta.width, meta.height]).toEqual([96, 64]);
      expect(meta.format).toBe(format === 'avif' ? 'heif' : format);
    },
  );

  it('takes output_compression as quality: lower compression value, smaller file', async () => {
    const png = await gradientPng();
    const low = await convertImage(png, 'jpeg', 10);
    const high = await convertImage(png, 'jpeg', 95);
    expect(low.data.length).toBeLessThan(high.data.length);
  });

  it('returns the same image when it is already in the format', async () => {
    const png = await gradientPng();
    expect(await convertImage(png, 'png', 50)).toBe(png);
  });

  it('puts transparent pixels on white in a jpeg (it has no alpha)', async () => {
    const clear = await sharp({
      create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const jpeg = await convertImage({ data: clear, format: 'png' }, 'jpeg');
    const { data } = await sharp(jpeg.data).raw().toBuffer({ resolveWithObject: true });
    expect(Math.min(...data)).toBeGreaterThan(250);
  });

  it('converts back to png', async () => {
    const webp = await convertImage(await gradientPng(), 'webp');
    const png = await convertImage(webp, 'png');
    expect(sniffImageFormat(png.data)).toBe('png');
  });
});

describe('sniffImageFormat', () => {
  it('recognises AVIF by its ftyp box and brand, and not another ISO BMFF file', () => {
    const box = (brand: string) =>
      Buffer.concat([Buffer.from([0, 0, 0, 0x1c]), Buffer.from(`ftyp${brand}`, 'latin1')]);
    expect(sniffImageFormat(box('avif'))).toBe('avif');
    expect(sniffImageFormat(box('avis'))).toBe('avif');
    expect(sniffImageFormat(box('heic'))).toBeUndefined();
    expect(sniffImageFormat(box('mp42'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from('ftypavif'))).toBeUndefined();
  });
});
