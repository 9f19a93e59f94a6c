import Bottleneck from 'bottleneck';
import { ProviderRejectedError, ShutdownError } from '../errors.js';

/** Paces calls to one provider account by the number of images they ask for. */
export interface RateLimiter {
  /**
   * Runs fn once `weight` images of the per-minute allowance are available. If `shutdown` is
   * aborted before fn has started, the wait ends with ShutdownError and fn never runs; once
   * fn has started it is seen through.
   */
  schedule<T>(weight: number, fn: () => Promise<T>, shutdown?: AbortSignal): Promise<T>;
  stop(): Promise<void>;
}

/**
 * The most images one request may ask for under a limit: one second's worth. Providers
 * enforce limits over short windows, so a heavier request is refused every time.
 */
export const imagesAllowedAtOnce = (imagesPerMinute: number) => Math.ceil(imagesPerMinute / 60);

/** Refill at least this often, so the allowance arrives smoothly rather than once a minute. */
const MIN_REFILL_INTERVAL_MS = 50;

/**
 * An in-process images-per-minute limiter on Bottleneck. The minute's allowance is spread
 * evenly (k images every 60000·k/ipm ms) and at most one second's worth can pile up, because
 * providers enforce their limits over short windows: a minute's worth in one second is a 429
 * storm. (Sharing the limit across processes through Redis is the rate-limit work's part.)
 */
export class LocalRateLimiter implements RateLimiter {
  private readonly bottleneck: Bottleneck;
  readonly burst: number;

  constructor(imagesPerMinute: number) {
    const perRefill = Math.max(1, Math.ceil((MIN_REFILL_INTERVAL_MS * imagesPerMinute) / 60_000));
    this.burst = imagesAllowedAtOnce(imagesPerMinute);
    const refillMs = (60_000 * perRefill) / imagesPerMinute;
    this.bottleneck = new Bottleneck({
      reservoir: this.burst,
      reservoirIncreaseAmount: perRefill,
      // Bottleneck checks for a refill only on its heartbeat (default 250 ms) and only once
      // `interval` has fully passed since the last one, so an interval equal to the heartbeat
      // would skip every other beat on timer jitter. Refill on every beat instead.
      heartbeatInterval: refillMs,
      reservoirIncreaseInterval: refillMs * 0.9,
      reservoirIncreaseMaximum: this.burst,
    });
  }

  schedule<T>(weight: number, fn: () => Promise<T>, shutdown?: AbortSignal): Promise<T> {
    if (weight > this.burst) {
      // Bottleneck would hold a job heavier than the reservoir forever.
      return Promise.reject(
        new ProviderRejectedError(
          `a request for ${weight} images can never pass a limit that allows ${this.burst} at once; lower n`,
          'request_exceeds_rate_limit',
        ),
      );
    }
    if (!shutdown) return this.bottleneck.schedule({ weight }, fn);
    return new Promise<T>((resolve, reject) => {
      let started = false;
      const giveUp = () => {
        if (!started) reject(new ShutdownError());
      };
      if (shutdown.aborted) return giveUp();
      shutdown.addEventListener('abort', giveUp, { once: true });
      this.bottleneck
        .schedule({ weight }, () => {
          // Its turn came after the shutdown: spend nothing.
          if (shutdown.aborted) return Promise.reject(new ShutdownError());
          started = true;
          return fn();
        })
        .then(resolve, reject)
        .finally(() => shutdown.removeEventListener('abort', giveUp));
    });
  }

  async stop(): Promise<void> {
    await this.bottleneck.stop({ dropWaitingJobs: true });
  }
}
