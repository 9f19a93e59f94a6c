import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { WebhookSecretFixedError, type WebhookSecrets } from '../../webhooks/webhook-secrets.js';
import { HttpError } from '../http-errors.js';

export interface WebhookRouteDeps {
  webhookSecrets: Pick<WebhookSecrets, 'current' | 'rotate'>;
}

const secretAnswer = z.object({
  secret: z.string().describe('whsec_ followed by the base64 of the key'),
});

/**
 * `/v1/webhooks/secret`: the calling tenant's signing secret, and its rotation. A tenant sees
 * and rotates only its own; the secret is made on first use.
 */
export async function webhookRoutes(app: FastifyInstance, deps: WebhookRouteDeps): Promise<void> {
  app.get(
    '/v1/webhooks/secret',
    {
      schema: {
        summary: 'The secret your webhooks are signed with (Standard Webhooks, whsec_…)',
        tags: ['webhooks'],
        response: { 200: secretAnswer },
      },
    },
    async (request) => ({ secret: await deps.webhookSecrets.current(request.tenant) }),
  );

  app.post(
    '/v1/webhooks/secret/rotate',
    {
      schema: {
        summary:
          'Replace the secret; for 24 hours webhooks carry a second signature made with the old one',
        tags: ['webhooks'],
        response: { 200: secretAnswer },
      },
    },
    async (request) => {
      try {
        return { secret: await deps.webhookSecrets.rotate(request.tenant) };
      } catch (error) {
        if (error instanceof WebhookSecretFixedError) {
          throw new HttpError(409, error.code, error.message);
        }
        throw error;
      }
    },
  );
}
