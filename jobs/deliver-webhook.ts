import type { JobProcessor } from './catalog.js';

// Placeholder while webhook delivery is built (issue 5): refuses, so nothing is dropped silently.
export function createDeliverWebhookProcessor(): JobProcessor<'deliver-webhook'> {
  return async () => {
    throw new Error('webhook delivery is not built yet');
  };
}
