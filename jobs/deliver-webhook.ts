import { UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import { RequestValidationError } from '../src/errors.js';
import { postWebhook, WebhookTargetRefusedError } from '../src/webhooks/post-webhook.js';
import { signWebhook } from '../src/webhooks/signature.js';
import { checkWebhookUrl, WebhookHostUnresolvedError } from '../src/webhooks/target-guard.js';
import type { WebhookSecrets } from '../src/webhooks/webhook-secrets.js';
import type { JobHandler, JobPayload } from '../src/contracts/job-catalog.js';

export interface DeliverWebhookDeps {
  secrets: Pick<WebhookSecrets, 'signingSecrets'>;
  logger: Logger;
  /** Let webhooks reach private addresses (RENDERMILL_ALLOW_PRIVATE_URLS). */
  allowPrivate: boolean;
  /** How long one attempt may take. Default 10 s. */
  timeoutMs?: number | undefined;
  /** Sent as `user-agent`. */
  userAgent?: string | undefined;
}

/**
 * POSTs one signed event to a batch's webhook URL. One attempt per run: a 2xx ends the job;
 * any other answer, a timeout or a connection error throws, and BullMQ tries again later
 * (13 attempts, exponential backoff). Stops for good — UnrecoverableError — when the receiver
 * answers 410 Gone (it says it wants no more) or the URL now points at an address webhooks may
 * not reach (checked again before each attempt, and at connection time, since DNS changes).
 *
 * The event id is the same on every attempt, so a receiver drops repeats; the timestamp and
 * signature are this attempt's.
 */
export function createDeliverWebhookHandler(
  deps: DeliverWebhookDeps,
): JobHandler<'deliver-webhook'> {
  const { logger, allowPrivate } = deps;
  return {
    async process({ tenant, url, event }, { attempt, maxAttempts }) {
      const where = { tenant, event: event.id, type: event.type, attempt, url: redactedUrl(url) };
      await checkTarget(url, allowPrivate);

      const body = JSON.stringify({
        type: event.type,
        timestamp: event.timestamp,
        data: event.data,
      });
      const timestamp = Math.floor(Date.now() / 1000);
      const secrets = await deps.secrets.signingSecrets(tenant);
      const headers = {
        'webhook-id': event.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': secrets
          .map((secret) => signWebhook(secret, event.id, timestamp, body))
          .join(' '),
        'user-agent': deps.userAgent ?? 'rendermill-webhooks',
      };

      let answer;
      try {
        answer = await postWebhook(url, body, headers, { timeoutMs: deps.timeoutMs, allowPrivate });
      } catch (error) {
        if (error instanceof WebhookTargetRefusedError) {
          logger.warn({ ...where, err: error.message }, 'webhook refused: private address');
          throw new UnrecoverableError(error.message);
        }
        logger.info(
          { ...where, err: (error as Error).message, last: attempt >= maxAttempts },
          'webhook not delivered: no answer',
        );
        throw new Error(`webhook to ${where.url} not delivered: ${(error as Error).message}`);
      }
      if (answer.status >= 200 && answer.status < 300) {
        logger.info({ ...where, status: answer.status }, 'webhook delivered');
        return;
      }
      const summary = `the receiver answered ${answer.status}${answer.excerpt ? `: ${answer.excerpt}` : ''}`;
      if (answer.status === 410) {
        logger.warn({ ...where, status: 410 }, 'webhook receiver is gone (410): not retrying');
        throw new UnrecoverableError(summary);
      }
      logger.info(
        { ...where, status: answer.status, last: attempt >= maxAttempts },
        'webhook not delivered: retrying later',
      );
      throw new Error(summary);
    },

    async onGiveUp(data, reason) {
      const { tenant, url, event } = (data ?? {}) as Partial<JobPayload<'deliver-webhook'>>;
      logger.warn(
        { tenant, event: event?.id, type: event?.type, url: url && redactedUrl(url), reason },
        'webhook given up: not delivered',
      );
    },
  };
}

/** Refused targets end the job; a host that does not resolve just now is tried again later. */
async function checkTarget(url: string, allowPrivate: boolean): Promise<void> {
  try {
    await checkWebhookUrl(url, { allowPrivate });
  } catch (error) {
    if (error instanceof WebhookHostUnresolvedError) throw error;
    if (error instanceof RequestValidationError) throw new UnrecoverableError(error.message);
    throw error;
  }
}

/** The URL without its query string, which may carry a receiver's token: for logs. */
function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}${parsed.search ? '?…' : ''}`;
  } catch {
    return '(invalid URL)';
  }
}
