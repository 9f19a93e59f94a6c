import { randomBytes } from 'node:crypto';
import Bottleneck from 'bottleneck';
import type { Logger } from 'pino';
import { AccountPausedError, ShutdownError, type ProviderRateReport } from '../errors.js';
import { luaCommands, type LuaCommands } from '../redis/lua-scripts.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { limiterKeys, rateWindowKeys } from '../redis/redis-keys.js';
import { readPause } from './account-gate.js';
import { waitUnlessShutdown } from './backoff.js';
import type { CallCost, RateGrant, RateLimiter } from './rate-limiter.js';

/** A route's limits per minute; a dimension left out (or 0) is not limited. */
export interface RouteRateLimit {
  imagesPerMinute: number;
  tokensPerMinute?: number | undefined;
  requestsPerMinute?: number | undefined;
}

export interface RedisRateLimiterOptions {
  /** The provider account (base URL + key fingerprint). */
  accountId: string;
  /** The model: providers limit each model separately. */
  model: string;
  limit: RouteRateLimit;
  /** The length of the minute the limits are counted in (ms): 60 000 but in tests. */
  minuteMs: number;
  /** A connection that waits out Redis outages (maxRetriesPerRequest: null). */
  redis: RedisConnection;
  logger: Logger;
}

/**
 * The fraction of a window added to it, so that a request that reaches the provider a little
 * later than the one before it (network and event-loop jitter) still lands in the provider's
 * next window: 1.5 % of a one-second window is 15 ms. The steady rate is 1/(1 + margin) of the
 * limit, ~98.5 %. A 429 the window did not expect grows it (rate-observe.lua).
 */
const BASE_MARGIN = 0.015;

/**
 * How much longer the calls a process makes while its path to the provider is cold stay in the
 * window: they reach the provider later than the calls after them (new connections, code
 * warming up on both sides), so a call granted one window later, on a warm path, could
 * otherwise arrive inside the provider's window of the first. Measured at ~20–30 ms against a
 * local provider; more over the internet.
 */
const COLD_START_MS = 100; // at most 10 % of the window (rate-acquire.lua)

/** The path counts as cold until this long after the first answer came back. */
const WARM_UP_MS = 2_000;

/** rate-acquire.lua's answers. */
const GRANTED = 0;
const BLOCKED = 2;
const PAUSED = 3;

/** How long a declared limit this process has passed on is trusted before it is passed on again. */
const DECLARED_REFRESH_MS = 60_000;

/**
 * One window's allowance in images: the whole images a window of at least a second (a
 * sixtieth of the minute) holds at `imagesPerMinute` — the rule of
 * src/redis/lua/includes/rate-window.lua, where it is enforced.
 */
export const windowAllowance = (imagesPerMinute: number) =>
  Math.max(1, Math.ceil(imagesPerMinute / 60));

/**
 * The rate limit of one model on one provider account, shared by every worker through Redis.
 *
 * Bottleneck (local to this process) queues the process's calls in arrival order and lets one
 * at a time ask Redis for a turn, so a process with fifty calls waiting sends one request to
 * Redis per turn, not fifty. The turn itself is decided by a sliding window log in Redis, on
 * Redis' clock (rate-acquire.lua): Bottleneck's shared reservoir is a token bucket, which
 * releases a burst on top of its refill and so cannot promise "never more than the limit in
 * any window", and its clustered mode has every process publish a heartbeat to every other
 * (work that grows with the square of the processes, even when idle). Nothing here runs on a
 * timer: an idle worker costs nothing. A paused account (AccountGate) gets no turn: the script
 * reads the pause in the turn's own round trip.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly scripts: LuaCommands;
  private readonly keys: ReturnType<typeof rateWindowKeys>;
  private readonly pauseKey: string;
  /** The turn-takers of this process, one at a time, first come first served. */
  private readonly queue = new Bottleneck({ maxConcurrent: 1 });
  /** The turn being asked for outside the queue, until it ends (see acquire). */
  private askingAtOnce: Promise<void> | undefined;
  private stopped = false;
  private allowance: number;
  /** When the first answer came back (performance.now()), if one has. */
  private firstAnswerAt: number | undefined;
  /** The declared limits last passed on to Redis, and when. */
  private declared = { key: '', at: 0 };

  constructor(private readonly options: RedisRateLimiterOptions) {
    this.scripts = luaCommands(options.redis);
    this.keys = rateWindowKeys(options.accountId, options.model);
    this.pauseKey = limiterKeys(options.accountId).pause;
    this.allowance = windowAllowance(options.limit.imagesPerMinute);
  }

  /** Whether calls still reach the provider later than they will once everything is warm. */
  private cold(): boolean {
    return this.firstAnswerAt === undefined || performance.now() - this.firstAnswerAt < WARM_UP_MS;
  }

  get imagesPerMinute(): number {
    return this.options.limit.imagesPerMinute;
  }

  get maxImagesPerCall(): number {
    return this.allowance;
  }

  async acquire(
    cost: CallCost,
    options: { shutdown?: AbortSignal | undefined; maxWaitMs?: number | undefined } = {},
  ): Promise<RateGrant> {
    const { shutdown } = options;
    if (shutdown?.aborted || this.stopped) throw new ShutdownError();
    // A caller with nobody ahead of it asks at once; callers that come meanwhile wait in the
    // queue, the first of them for that turn to end: still one at a time, first come first
    // served. (A call through the queue costs ~0.2 ms of CPU; most calls of a busy worker
    // find nobody ahead.)
    const turn = this.nobodyAhead()
      ? this.askAtOnce(cost, options)
      : this.queue.schedule(async () => {
          await this.askingAtOnce;
          return this.takeTurn(cost, options);
        });
    if (!shutdown) return turn;
    // A shutdown ends the wait at once; the queued turn then finds the signal aborted.
    let onAbort: () => void = () => undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new ShutdownError());
      shutdown.addEventListener('abort', onAbort, { once: true });
    });
    turn.catch(() => undefined);
    try {
      return await Promise.race([turn, aborted]);
    } finally {
      shutdown.removeEventListener('abort', onAbort);
    }
  }

  private nobodyAhead(): boolean {
    if (this.askingAtOnce) return false;
    const { RECEIVED, QUEUED, RUNNING, EXECUTING } = this.queue.counts();
    return RECEIVED + QUEUED + RUNNING + EXECUTING === 0;
  }

  private askAtOnce(
    cost: CallCost,
    options: { shutdown?: AbortSignal | undefined; maxWaitMs?: number | undefined },
  ): Promise<RateGrant> {
    const turn = this.takeTurn(cost, options);
    const ended = turn.then(
      () => undefined,
      () => undefined,
    );
    this.askingAtOnce = ended;
    void ended.then(() => {
      if (this.askingAtOnce === ended) this.askingAtOnce = undefined;
    });
    return turn;
  }

  /**
   * Asks Redis for a turn until one is given, sleeping exactly as long as the window says. A
   * turn due soon is granted at once for the moment it falls due (rate-acquire.lua), and slept
   * for here: one ask a turn even with several workers waiting on the same window.
   */
  private async takeTurn(
    cost: CallCost,
    { shutdown, maxWaitMs }: { shutdown?: AbortSignal | undefined; maxWaitMs?: number | undefined },
  ): Promise<RateGrant> {
    for (;;) {
      if (shutdown?.aborted) throw new ShutdownError();
      const id = randomBytes(8).toString('hex');
      const [answer, first, second, dueInMs] = await this.scripts.rmRateAcquire(
        ...this.keyList(),
        this.pauseKey,
        ...this.limitArgs(cost.images, cost.tokens, id),
        this.cold() ? COLD_START_MS : 0,
      );
      if (answer === GRANTED) {
        this.allowance = first;
        // A turn granted for a moment ahead: taken then, without asking again.
        if (dueInMs) await sleepAtLeast(dueInMs, shutdown);
        return { id, cost };
      }
      if (answer === PAUSED) {
        // The message is the pause's reason: whoever calls names the route it was for.
        const pause = readPause(String(second), first);
        throw new AccountPausedError(pause.reason, pause.code, Date.now() + pause.remainingMs);
      }
      const waitMs = first;
      const blocked = answer === BLOCKED;
      if (!blocked) this.allowance = Number(second);
      if (blocked && maxWaitMs !== undefined && waitMs > maxWaitMs) {
        throw new AccountPausedError(
          `the provider asked every call of ${this.options.model} to wait ${Math.ceil(waitMs / 1000)} s`,
          'rate_limited',
          Date.now() + waitMs,
        );
      }
      await waitUnlessShutdown(waitMs, shutdown);
    }
  }

  async observe(grant: RateGrant | undefined, report: ProviderRateReport): Promise<void> {
    const firstAnswer = this.firstAnswerAt === undefined;
    this.firstAnswerAt ??= performance.now();
    const { limit } = this.options;
    const settle =
      grant !== undefined &&
      (limit.tokensPerMinute ?? 0) > 0 &&
      report.tokensUsed !== undefined &&
      report.tokensUsed !== grant.cost.tokens;
    const declaredKey = JSON.stringify(report.limits);
    const now = Date.now();
    const declaredNews =
      declaredKey !== '{}' &&
      (declaredKey !== this.declared.key || now - this.declared.at > DECLARED_REFRESH_MS);
    if (!report.refused && !settle && !declaredNews && !firstAnswer) return;
    if (declaredNews) this.declared = { key: declaredKey, at: now };
    const [perMinute, allowance, lowered] = await this.scripts.rmRateObserve(
      ...this.keyList(),
      ...this.limitArgs(
        grant?.id ?? '',
        settle ? String(report.tokensUsed) : '',
        report.refused ? 1 : 0,
      ),
      report.limits.images ?? '',
      report.limits.tokens ?? '',
      report.limits.requests ?? '',
      report.retryAfterMs ?? '',
      firstAnswer ? 1 : 0,
    );
    this.allowance = Math.max(1, allowance);
    if (lowered === 1) {
      this.options.logger.warn(
        {
          model: this.options.model,
          configured: limit.imagesPerMinute,
          images_per_minute: perMinute,
          declared: report.limits,
        },
        report.limits.images !== undefined || report.limits.tokens !== undefined
          ? "the provider's declared limit is below the configured one: every worker follows it"
          : 'the provider refused calls the configured limit allows: every worker slows to what it accepted (is the usage tier set too high?)',
      );
    }
  }

  /** Images the window would let through now (a metrics gauge); undefined without an images limit. */
  async headroom(): Promise<number | undefined> {
    const images = await this.scripts.rmRateHeadroom(
      ...this.keyList(),
      ...this.limitArgs(0, 0, ''),
    );
    return images < 0 ? undefined : images;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue.stop({ dropWaitingJobs: true }).catch(() => undefined);
  }

  private keyList(): string[] {
    const { grants, weights, used, learned, block } = this.keys;
    return [grants, weights, used, learned, block];
  }

  /**
   * ARGV [1]–[8] of the rate scripts: the limits, the minute, three that each script reads its
   * own way (rate-acquire: images, tokens, grant id; rate-observe: grant id, tokens used,
   * refused), and the base margin.
   */
  private limitArgs(
    fifth: string | number,
    sixth: string | number,
    seventh: string | number,
  ): (string | number)[] {
    const { limit, minuteMs } = this.options;
    return [
      limit.imagesPerMinute,
      limit.tokensPerMinute ?? 0,
      limit.requestsPerMinute ?? 0,
      minuteMs,
      fifth,
      sixth,
      seventh,
      BASE_MARGIN,
    ];
  }
}

/**
 * Sleeps at least `ms` of real time. A timer counts from the event loop's time, read when the
 * loop last woke: on a busy worker it can fire milliseconds early. A turn granted for a moment
 * ahead is not asked again (where Redis' clock would say "not yet"), so the time is checked here.
 */
async function sleepAtLeast(ms: number, shutdown: AbortSignal | undefined): Promise<void> {
  const due = performance.now() + ms;
  for (let left = ms; left > 0; left = due - performance.now()) {
    await waitUnlessShutdown(Math.ceil(left), shutdown);
  }
}
