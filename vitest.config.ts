import os from 'node:os';
import { defineConfig } from 'vitest/config';

/** Suites whose assertions are time bounds against real pacing (see `projects` below). */
const PACED = [
  'test/integration/rate-limiter.test.ts',
  'test/integration/tier-limits.test.ts',
  'test/integration/call-provider.test.ts',
  'test/integration/simulator-rate-limits.test.ts',
];

export default defineConfig({
  test: {
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
    // The suites that check pacing against a real clock (a grant, a provider call, within so
    // many ms of the last) run first, among themselves: beside suites that keep simulators
    // busy rendering images they were starved of CPU on a 2-core machine and failed their time
    // bounds. The rest follow, as many files at once as above.
    projects: [
      { extends: true, test: { name: 'paced', include: PACED, sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: PACED,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
