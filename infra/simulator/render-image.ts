import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { isTiny, tinyPng } from './tiny-png.js';

const escapeXml = (text: string) =>
  text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );

function wrap(text: string, perLine: number, maxLines: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if ((line + ' ' + word).trim().length > perLine && line) {
      lines.push(line);
      line = word;
    } else line = `${line} ${word}`.trim();
    if (lines.length === maxLines) break;
  }
  if (line && lines.length < maxLines) lines.push(line);
  return lines;
}

/** What {@link renderImage} draws. */
export interface RenderOptions {
  /** Decides the colour (and a tiny PNG's pattern): the same text gives the same image. */
  seedText: string;
  /** Written on the image, wrapped to its width. */
  label: string;
  width: number;
  height: number;
  format: 'png' | 'jpeg' | 'webp';
  /** No background (jpeg, which has no alpha, gets white instead). */
  transparent: boolean;
  /** The input image of an edit or variation, drawn under the label. */
  base?: Buffer | undefined;
}

/**
 * Renders a deterministic image: the colour comes from the prompt and variant (so different
 * prompts give different bytes), the prompt is written on it (so a person can tell them apart).
 * Tiny PNGs (both sides up to 64 px) are an identicon from the same digest instead, encoded
 * without sharp (see tiny-png.ts).
 */
export async function renderImage(options: RenderOptions): Promise<Buffer> {
  const { seedText, label, width, height, format, transparent, base } = options;
  const digest = createHash('sha256').update(seedText).digest();
  const rgb: [number, number, number] = [digest[0]! & 0x9f, digest[1]! & 0x9f, digest[2]! & 0x9f];
  if (format === 'png' && !base && isTiny(width, height)) {
    return tinyPng({ digest, colour: rgb, width, height, transparent });
  }
  const colour = `rgb(${rgb.join(',')})`;
  const fontSize = Math.max(8, Math.round(Math.min(width, height) / 16));
  const lines = wrap(
    label,
    Math.max(8, Math.floor((width - fontSize) / (fontSize * 0.6))),
    Math.floor(height / (fontSize * 1.3)) - 1,
  );
  const text = lines
    .map(
      (l, i) =>
        `<text x="${fontSize / 2}" y="${(i + 1.5) * fontSize * 1.25}">${escapeXml(l)}</text>`,
    )
    .join('');
  const background = transparent
    ? ''
    : base
      ? `<rect width="100%" height="100%" fill="${colour}" fill-opacity="0.45"/>`
      : `<rect width="100%" height="100%" fill="${colour}"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${background}<g font-family="sans-serif" font-size="${fontSize}" fill="#fff">${text}</g></svg>`;
  let image = base
    ? sharp(base)
        .resize(width, height, { fit: 'cover' })
        .composite([{ input: Buffer.from(svg) }])
    : sharp(Buffer.from(svg));
  if (transparent && format === 'jpeg') image = image.flatten({ background: '#ffffff' });
  if (format === 'jpeg') return image.jpeg({ quality: 85 }).toBuffer();
  if (format === 'webp') return image.webp().toBuffer();
  return image.png({ compressionLevel: 6 }).toBuffer();
}
