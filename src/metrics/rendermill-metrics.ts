import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProviderRoute } from '../providers/provider-route.js';
import type { FinishedItem, ProviderCall, RenderMetrics } from './render-metrics.js';

/**
 * How often the event-loop lag histogram samples (prom-client's default is every 10 ms): a
 * timer 100 times a second costs an idle worker ~6 ms of CPU a second, three times everything
 * else it does while idle. Every 100 ms still sees any stall worth alerting on.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

/** Queue states reported by `rendermill_queue_jobs`. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/**
 * Provider latency buckets (seconds): a low-quality thumbnail answers in well under a second
 * from a fast gateway, a high-quality gpt-image render can take a minute or two.
 */
export const PROVIDER_SECONDS_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120];

/**
 * How long a scrape waits for Redis (queue counts, limiter, pauses) before it answers without
 * those gauges. Fixed, not configured: a scrape must answer while Redis is away, well inside
 * Prometheus's own scrape timeout (10 s by default).
 */
const SCRAPE_REDIS_TIMEOUT_MS = 1_000;

export interface RendermillMetricsOptions {
  /** Longest wait for Redis in a scrape. Default {@link SCRAPE_REDIS_TIMEOUT_MS}. */
  collectTimeoutMs?: number;
  /** Node.js process metrics (CPU, memory, event loop, GC). Default true. */
  defaultMetrics?: boolean;
}

/**
 * rendermill's metrics in a registry of their own (not prom-client's global one, so a test
 * can build several processes' worth): counters recorded where things happen, through
 * RenderMetrics, and gauges read from Redis when scraped.
 */
export class RendermillMetrics implements RenderMetrics {
  readonly registry = new Registry();
  private readonly collectTimeoutMs: number;
  private readonly queues: Queue[] = [];
  private readonly routes: ProviderRoute[] = [];

  private readonly images = new Counter({
    name: 'rendermill_images_total',
    help: 'Images by the model the item asked for and what became of them: rendered (bought), cached (reused), derived (copies made), failed (not delivered: the item failed).',
    labelNames: ['model', 'outcome'],
    registers: [this.registry],
  });
  private readonly items = new Counter({
    name: 'rendermill_items_total',
    help: 'Items that reached a final status, by status.',
    labelNames: ['status'],
    registers: [this.registry],
  });
  private readonly spend = new Counter({
    name: 'rendermill_spend_usd_total',
    help: 'US dollars counted as paid to the provider, by tenant (what it billed, and calls that got no answer).',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  private readonly providerSeconds = new Histogram({
    name: 'rendermill_provider_request_seconds',
    help: 'Duration of each request to a provider (limiter and backoff waits excluded), by route, model and outcome.',
    labelNames: ['route', 'model', 'outcome'],
    buckets: PROVIDER_SECONDS_BUCKETS,
    registers: [this.registry],
  });
  private readonly rateLimited = new Counter({
    name: 'rendermill_provider_rate_limited_total',
    help: '429 rate-limit answers from the provider, by route.',
    labelNames: ['route'],
    registers: [this.registry],
  });

  constructor(options: RendermillMetricsOptions = {}) {
    this.collectTimeoutMs = options.collectTimeoutMs ?? SCRAPE_REDIS_TIMEOUT_MS;
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({
        register: this.registry,
        eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
      });
    }
    const queueJobs: Gauge = new Gauge({
      name: 'rendermill_queue_jobs',
      help: 'Jobs in each BullMQ queue by state, read when scraped.',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      collect: async () => {
        queueJobs.reset(); // a queue Redis did not answer for is left out, not reported stale
        await Promise.all(
          this.queues.map(async (queue) => {
            const counts = await this.bounded(queue.getJobCounts(...QUEUE_STATES));
            for (const state of QUEUE_STATES) {
              if (counts) queueJobs.set({ queue: queue.name, state }, counts[state] ?? 0);
            }
          }),
        );
      },
    });
    const headroom: Gauge = new Gauge({
      name: 'rendermill_limiter_headroom_images',
      help: 'Images the shared rate window of a model on a route would let through now.',
      labelNames: ['route', 'model'],
      registers: [this.registry],
      collect: async () => {
        headroom.reset();
        await Promise.all(
          this.routes.flatMap((route) =>
            route.limits.active().map(async ({ model, limiter }) => {
              const images = await this.bounded(limiter.headroom());
              if (images !== undefined) headroom.set({ route: route.name, model }, images);
            }),
          ),
        );
      },
    });
    const paused: Gauge = new Gauge({
      name: 'rendermill_account_paused',
      help: 'Whether every worker leaves the route’s account alone right now (1: out of quota or key refused; a 429 blocks only its model’s rate window).',
      labelNames: ['route'],
      registers: [this.registry],
      collect: async () => {
        paused.reset();
        await Promise.all(
          this.routes.map(async (route) => {
            const pause = await this.bounded(route.gate.current().then((p) => p ?? null));
            if (pause !== undefined) paused.set({ route: route.name }, pause ? 1 : 0);
          }),
        );
      },
    });
  }

  /** Reports these queues' job counts on every scrape. */
  watchQueues(queues: readonly Queue[]): void {
    this.queues.push(...queues);
  }

  /** Reports these routes' limiter headroom and pause on every scrape. */
  watchRoutes(routes: readonly ProviderRoute[]): void {
    this.routes.push(...routes);
  }

  /** The text exposition of every metric, and its content type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  itemFinished({ status, model, images }: FinishedItem): void {
    this.items.inc({ status });
    for (const [outcome, count] of Object.entries(images)) {
      if (count) this.images.inc({ model, outcome }, count);
    }
  }

  /** Items a submission settled from the cache: they never reach a render job. */
  cachedAtSubmission(model: string, items: number, images: number): void {
    this.items.inc({ status: 'cached' }, items);
    if (images > 0) this.images.inc({ model, outcome: 'cached' }, images);
  }

  spent(tenant: string, micros: number): void {
    if (micros > 0) this.spend.inc({ tenant }, micros / 1_000_000);
  }

  providerCall({ route, model, seconds, outcome }: ProviderCall): void {
    this.providerSeconds.observe({ route, model, outcome }, seconds);
    if (outcome === 'rate_limited') this.rateLimited.inc({ route });
  }

  /** The value, or undefined if it failed or took longer than a scrape may wait. */
  private async bounded<T>(work: Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.collectTimeoutMs);
    });
    try {
      return await Promise.race([work.catch(() => undefined), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
