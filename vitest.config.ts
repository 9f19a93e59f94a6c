import os from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration suites start their own redis-server / s3rver / simulator processes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Files run in parallel: every suite starts its own servers on free ports. Vitest's default
    // is one file at a time per core less one, which is a single file on a 2-core CI machine;
    // but most of the suite's time is spent waiting (simulated provider latency, backoffs,
    // grace periods, child processes starting), not computing, so 3 files at once took a run
    // from 570 s to 329 s on a busy 2-core machine, with the same results. Larger machines keep
    // Vitest's default.
    maxWorkers: Math.max(os.availableParallelism() - 1, 3),
    // The AWS SDK announces once per process that its 2027 releases need Node 22; the
    // rendermill command silences it the same way (see README, Supported Node.js).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
