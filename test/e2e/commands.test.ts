import { describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../support/cli.js';

/** Long-running commands refuse, in one line, to start without what they need. */
describe('rendermill api / worker refusing to start', () => {
  it('worker needs a shared Redis, a bucket and a provider key', async () => {
    const result = await runCli(['worker'], cleanEnv());
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^rendermill: missing configuration: REDIS_URL, AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY \(and AWS_ENDPOINT_URL_S3 for an S3-compatible store\), OPENAI_API_KEY \(or RENDERMILL_PROVIDERS_FILE\)\./,
    );
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('worker never falls back to the simulator on its own', async () => {
    const result = await runCli(
      ['worker'],
      cleanEnv({
        REDIS_URL: 'redis://127.0.0.1:1',
        AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2',
        AWS_ACCESS_KEY_ID: 'a',
        AWS_SECRET_ACCESS_KEY: 'b',
      }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /missing configuration: OPENAI_API_KEY \(or RENDERMILL_PROVIDERS_FILE\)\./,
    );
  });

  it('api needs at least one API key', async () => {
    const result = await runCli(['api'], cleanEnv());
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /the API needs at least one key: set RENDERMILL_API_KEYS=tenant=key/,
    );
  });
});
