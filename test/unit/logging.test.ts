import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.js';

describe('createLogger', () => {
  it('never writes keys or credentials', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('info', sink);
    logger.info(
      {
        apiKey: 'sk-live-secret-1',
        provider: { apiKey: 'sk-live-secret-2' },
        req: { headers: { authorization: 'Bearer tenant-secret-3' } },
        s3: { secretAccessKey: 'aws-secret-4' },
        item: 'sku-1',
      },
      'item finished',
    );
    const line = lines.join('');
    expect(line).toContain('"item":"sku-1"');
    expect(line).toContain('[redacted]');
    for (const secret of [
      'sk-live-secret-1',
      'sk-live-secret-2',
      'tenant-secret-3',
      'aws-secret-4',
    ]) {
      expect(line).not.toContain(secret);
    }
  });
});
