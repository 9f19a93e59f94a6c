import { crc32, deflateSync } from 'node:zlib';

/**
 * Images this small skip sharp: its fixed cost per call (~2 ms of CPU, SVG text rendering
 * included) would make the simulator, not the rate limit, the ceiling of a benchmark that
 * asks for hundreds of images a second on a small machine. Text would not be legible at this
 * size anyway.
 */
export const TINY_EDGE = 64;

/** Whether both sides are within {@link TINY_EDGE}, so the image is drawn without sharp. */
export const isTiny = (width: number, height: number) => width <= TINY_EDGE && height <= TINY_EDGE;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** An identicon of GRID × GRID cells, mirrored left to right like the familiar avatars. */
const GRID = 8;

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** What {@link tinyPng} draws. */
export interface TinyPngOptions {
  /** Its bytes from the fifth on pick the identicon's cells. */
  digest: Buffer;
  colour: [number, number, number];
  width: number;
  height: number;
  transparent: boolean;
}

/**
 * A real PNG (8-bit RGB, or RGBA when transparent) of the requested size: an identicon drawn
 * from `digest`, in `colour` on a light ground (or on transparency), so different prompts
 * and variants give different pictures and different bytes.
 */
export function tinyPng(options: TinyPngOptions): Buffer {
  const { digest, colour, width, height, transparent } = options;
  const channels = transparent ? 4 : 3;
  const ground = transparent ? [0, 0, 0, 0] : [0xf2, 0xf2, 0xf2];
  const ink = transparent ? [...colour, 0xff] : colour;
  const on = (cellX: number, cellY: number) => {
    const mirrored = cellX < GRID / 2 ? cellX : GRID - 1 - cellX;
    const bit = cellY * (GRID / 2) + mirrored;
    return ((digest[4 + (bit >> 3)]! >> (bit & 7)) & 1) === 1;
  };
  const stride = 1 + width * channels;
  const raw = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    // Filter type 0 (none) at the start of every scanline.
    const cellY = Math.floor((y * GRID) / height);
    for (let x = 0; x < width; x++) {
      const pixel = on(Math.floor((x * GRID) / width), cellY) ? ink : ground;
      for (let c = 0; c < channels; c++) raw[y * stride + 1 + x * channels + c] = pixel[c]!;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = transparent ? 6 : 2; // colour type: RGBA or RGB
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
