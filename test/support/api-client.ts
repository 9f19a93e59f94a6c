import { expect } from 'vitest';
import type { Manifest } from '../../src/batches/batch-view.js';

/** A tenant talking to a running `rendermill api` over HTTP, as the e2e tests do. */
export function apiClient(apiUrl: () => string, key: string) {
  return {
    /** POSTs a batch and expects it accepted (202). */
    async post(body: object): Promise<{ id: string }> {
      const response = await fetch(`${apiUrl()}/v1/batches`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(202);
      return (await response.json()) as { id: string };
    },

    /** Polls the batch's manifest until it is completed and written, or fails after `timeoutMs`. */
    async manifestWhenDone(id: string, timeoutMs: number, pollMs: number): Promise<Manifest> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const response = await fetch(`${apiUrl()}/v1/batches/${id}/manifest`, {
          headers: { authorization: `Bearer ${key}` },
        });
        const manifest = (await response.json()) as Manifest;
        if (manifest.batch.status === 'completed' && manifest.batch.manifest_key) return manifest;
        if (Date.now() > deadline)
          throw new Error(`batch ${id} not done: ${JSON.stringify(manifest.batch)}`);
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    },
  };
}
