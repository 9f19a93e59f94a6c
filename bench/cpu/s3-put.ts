import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { S3ImageStorage } from '../../src/storage/s3-image-storage.js';
import { installCleanup } from '../support/children.js';
import { startS3rverChild } from '../support/stack.js';

/**
 * CPU per PutObject: `--puts` uploads of a 139 KB body (the size of the simulator's 256x256
 * PNG; S3 never looks inside, so random bytes stand in for it), at most `--concurrency` at once,
 * to an s3rver child process so that only the client's CPU is counted. Two ways, run in turns so
 * that other load on the machine falls on both alike: S3ImageStorage.put (sent without the
 * SDK's middleware stack: src/storage/s3-direct-requests.ts), and the SDK's
 * `client.send(PutObjectCommand)` with the client S3ImageStorage configures: what `put` was
 * before. Prints each run's CPU per put and the medians, after a warm-up of each.
 *
 *   tsx bench/cpu/s3-put.ts [--puts 2000] [--concurrency 16] [--bytes 139000] [--runs 3]
 */
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!, process.argv[i + 1]!);
const puts = Number(args.get('--puts') ?? 2000);
const concurrency = Number(args.get('--concurrency') ?? 16);
const bytes = Number(args.get('--bytes') ?? 139_000);
const runs = Number(args.get('--runs') ?? 3);
const WARMUP = 200;
const BUCKET = 'put-bench';

installCleanup();
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-s3-put-'));
const { child: s3, endpoint } = await startS3rverChild(dataDir, BUCKET);
const storage = new S3ImageStorage({
  bucket: BUCKET,
  endpoint,
  region: 'us-east-1',
  accessKeyId: 'S3RVER',
  secretAccessKey: 'S3RVER',
  forcePathStyle: true,
});
const sdk = new S3Client({
  region: 'us-east-1',
  endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const body = randomBytes(bytes);
const metadata = { 'rendermill-hash': 'a'.repeat(64), 'rendermill-cost-micros': '40000' };

type Way = 'S3ImageStorage.put' | 'SDK PutObjectCommand';
const WAYS: Way[] = ['SDK PutObjectCommand', 'S3ImageStorage.put'];

const putOne = (way: Way, key: string) =>
  way === 'S3ImageStorage.put'
    ? storage.put({ key, body, contentType: 'image/png', metadata })
    : sdk
        .send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: key,
            Body: body,
            ContentType: 'image/png',
            Metadata: metadata,
          }),
        )
        .then(() => undefined);

async function putMany(way: Way, label: string, count: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await putOne(way, `bench/${label}/${next++}.png`);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

for (const way of WAYS) await putMany(way, `warmup-${way}`, WARMUP);
const perPut = new Map<Way, number[]>(WAYS.map((way) => [way, []]));
for (let run = 0; run < runs; run++) {
  for (const way of WAYS) {
    const before = process.cpuUsage();
    const started = performance.now();
    await putMany(way, `run-${run}-${Date.now()}`, puts);
    const cpu = process.cpuUsage(before);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    perPut.get(way)!.push(cpuMs / puts);
    process.stdout.write(
      `run ${run + 1}, ${way}: ${puts} puts of ${bytes} B, concurrency ${concurrency}: ` +
        `${(cpuMs / puts).toFixed(3)} ms CPU per put ` +
        `(user ${(cpu.user / 1000 / puts).toFixed(3)}, system ${(cpu.system / 1000 / puts).toFixed(3)}), ` +
        `${((puts / (performance.now() - started)) * 1000).toFixed(0)} puts/s\n`,
    );
  }
}
for (const [way, values] of perPut) {
  const sorted = [...values].sort((a, b) => a - b);
  process.stdout.write(
    `median, ${way}: ${sorted[Math.floor(sorted.length / 2)]!.toFixed(3)} ms CPU per put\n`,
  );
}
sdk.destroy();
storage.close();
await s3.stop();
await rm(dataDir, { recursive: true, force: true });
process.exit(0);
