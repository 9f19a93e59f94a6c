Error.stackTraceLimit = 80;
import { Socket } from 'node:net';
import { afterAll, beforeAll, it } from 'vitest';
import { startHarness, submit, waitForBatch, type Harness } from './support/harness.js';

const counts = new Map<string, number>();
const bytes = new Map<string, number>();
const big: string[] = [];
const seq: string[] = [];
let counting = false;
let redisPort = 0;
const origWrite = Socket.prototype.write;
function owner(): string {
  const stack = new Error().stack ?? '';
  const lines = stack.split('\n').slice(2).map((l) => l.trim());
  const own = lines.find((l) => /\/work\/main\/(src|jobs|workers)\//.test(l));
  if (stack.includes('/bullmq/')) {
    const b = lines.find((l) => l.includes('/bullmq/dist/esm/classes/') && !l.includes('redis-connection'));
    return 'bullmq ' + (b ?? '').replace(/^at /, '').replace(/\(.*\/classes\//, '(');
  }
  if (stack.includes('Pipeline.js') || stack.includes('autoPipelining')) return 'autopipeline ' + (own ?? '');
  return (own ?? lines.slice(0, 3).join(' | ')).replace('/work/main/', '');
}
(Socket.prototype as unknown as { write: typeof origWrite }).write = function (this: Socket, ...args: unknown[]) {
  if (counting && this.remotePort === redisPort) {
    const k = owner();
    counts.set(k, (counts.get(k) ?? 0) + 1);
    const data = args[0] as string | Buffer;
    const len = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    bytes.set(k, (bytes.get(k) ?? 0) + len);
    seq.push(`${k.split(' ')[0]} ${String(data).split('\r\n').filter((x, i, a) => i > 0 && a[i - 1]!.startsWith('$') && /^[a-z]+$/i.test(x) && x.length < 20).join(',')}`);
    if (len > 4000) big.push(`${len} ${k} ${String(data).slice(0, 300).replace(/\r\n/g, ' ')}`);
  }
  return (origWrite as (...a: unknown[]) => boolean).apply(this, args);
} as typeof origWrite;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ simulator: { imagesPerMinute: 60000 }, env: { RENDERMILL_IMAGES_PER_MINUTE: '60000', RENDERMILL_CONCURRENCY: '1' } });
  redisPort = Number(new URL(h.env.REDIS_URL!).port);
}, 60_000);
afterAll(async () => h?.stop());

it('counts', async () => {
  const N = 3;
  const items = (tag: string) => Array.from({ length: N }, (_, i) => ({ id: `i${i}`, prompt: `${tag} mug ${i}` }));
  const w = await submit(h, { model: 'gpt-image-2', size: '256x256', quality: 'low', items: items('warm') });
  await waitForBatch(h, w.json().id, 60_000);
  counting = true;
  const r = await submit(h, { model: 'gpt-image-2', size: '256x256', quality: 'low', items: items('count') });
  await waitForBatch(h, r.json().id, 60_000);
  counting = false;
  const rows = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  let total = 0;
  for (const [, c] of rows) total += c;
  console.log(`socket writes to redis: ${total} = ${(total / N).toFixed(1)} per item`);
  for (const [k, c] of rows) console.log(`${(c / N).toFixed(2).padStart(6)}  ${((bytes.get(k) ?? 0) / N).toFixed(0).padStart(7)} B  ${k.slice(0, 200)}`);
  console.log(seq.join('\n'));
}, 120_000);
