import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InputImageError } from '../../src/errors.js';
import { MAX_INPUT_PIXELS, decodeInputImage } from '../../src/render/decode-input-image.js';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('decodeInputImage', () => {
  it('reads a good image: size and alpha', async () => {
    const png = await sharp({
      create: { width: 32, height: 16, channels: 4, background: '#00000000' },
    })
      .png()
      .toBuffer();
    expect(await decodeInputImage(png, 'a.png')).toEqual({ width: 32, height: 16, hasAlpha: true });
  });

  it('refuses magic bytes followed by garbage, naming the file', async () => {
    const error = await decodeInputImage(
      Buffer.concat([PNG_MAGIC, Buffer.from('garbage'.repeat(50))]),
      'evil.png',
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputImageError);
    expect((error as Error).message).toMatch(/^evil\.png cannot be read as an image: /);
    expect((error as Error).message).not.toContain('\n');
  });

  it('refuses an image whose body is cut short behind a good header', async () => {
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#123' } })
      .png()
      .toBuffer();
    await expect(decodeInputImage(png.subarray(0, png.length - 20), 'cut.png')).rejects.toThrow(
      InputImageError,
    );
  });

  it('refuses more pixels than MAX_INPUT_PIXELS from the header alone', async () => {
    // A 9000×1 PNG whose header is rewritten to say 9000×9000 (81 MP).
    const png = await sharp({ create: { width: 9000, height: 1, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    png.writeUInt32BE(9000, 20);
    png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
    expect(9000 * 9000).toBeGreaterThan(MAX_INPUT_PIXELS);
    await expect(decodeInputImage(png, 'huge.png')).rejects.toThrow(
      /huge\.png cannot be read as an image: it has more than 67108864 pixels/,
    );
  });
});
