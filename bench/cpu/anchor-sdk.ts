import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import OpenAI from 'openai';

/**
 * The unavoidable work of one image, in one process, as a team would write it with no
 * service: the official `openai` SDK's `images.generate`, the image's bytes (decoded from
 * `b64_json`, or downloaded from the `url`), and one `PutObject` of them. The driver starts
 * it with BENCH_JOB (JSON); it warms up, then prints `RESULT {…}` with its own CPU over the
 * measured images.
 */
export interface SdkAnchorJob {
  baseUrl: string;
  s3: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string };
  size: string;
  images: number;
  concurrency: number;
  warmup: number;
  /** Distinguishes keys between rows and runs. */
  label: string;
  /** Measured images start no faster than this many a second (the warm-up is not paced). */
  perSecond?: number | undefined;
}

export interface SdkAnchorResult {
  images: number;
  cpuMs: number;
  wallMs: number;
  bytes: number;
}

const raw = process.env.BENCH_JOB;
if (!raw) throw new Error('BENCH_JOB is not set: this file is started by the CPU bench');
const job = JSON.parse(raw) as SdkAnchorJob;

const openai = new OpenAI({ baseURL: job.baseUrl, apiKey: 'sk-bench', maxRetries: 0 });
const s3 = new S3Client({
  endpoint: job.s3.endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: job.s3.accessKeyId, secretAccessKey: job.s3.secretAccessKey },
});

let bytes = 0;

async function oneImage(index: number): Promise<void> {
  const answer = await openai.images.generate({
    model: 'gpt-image-2',
    prompt: `anchor ${job.label} image ${index}: red ceramic mug, studio light`,
    size: job.size as '1024x1024',
    quality: 'low',
    n: 1,
  });
  const datum = answer.data?.[0];
  let body: Buffer;
  if (datum?.b64_json) body = Buffer.from(datum.b64_json, 'base64');
  else if (datum?.url) {
    const response = await fetch(datum.url);
    if (!response.ok) throw new Error(`image download: HTTP ${response.status}`);
    body = Buffer.from(await response.arrayBuffer());
  } else throw new Error('answer without an image');
  bytes += body.length;
  await s3.send(
    new PutObjectCommand({
      Bucket: job.s3.bucket,
      Key: `anchor/${job.label}/${index}.png`,
      Body: body,
      ContentType: 'image/png',
    }),
  );
}

/** `count` images from `first`, at most `concurrency` at once, and `perSecond` if given. */
async function run(first: number, count: number, perSecond?: number): Promise<void> {
  let next = first;
  const end = first + count;
  const started = performance.now();
  const lane = async () => {
    while (next < end) {
      const index = next++;
      const wait = perSecond
        ? started + ((index - first) * 1000) / perSecond - performance.now()
        : 0;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await oneImage(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.concurrency, count) }, lane));
}

// Warm-up: module loading, JIT and the first connections are not per-image work.
await run(0, job.warmup);
bytes = 0;
const cpuBefore = process.cpuUsage();
const started = performance.now();
await run(job.warmup, job.images, job.perSecond);
const cpu = process.cpuUsage(cpuBefore);
const result: SdkAnchorResult = {
  images: job.images,
  cpuMs: (cpu.user + cpu.system) / 1000,
  wallMs: performance.now() - started,
  bytes,
};
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
s3.destroy();
process.exit(0);
