import pino from 'pino';
import { createRenderItemProcessor } from '../../jobs/render-item.js';
import { RouteLoad } from '../../src/render/route-load.js';
import { ImageSpool } from '../../src/storage/image-spool.js';
import type { Harness } from './harness.js';

/**
 * The render-item job's processor on the harness's services, for a test that plays a worker's
 * moves itself (a harness started with `workers: false`).
 */
export function renderItemProcessor(h: Harness) {
  const s = h.services;
  return createRenderItemProcessor({
    store: s.store,
    storage: s.storage,
    spool: new ImageSpool(s.state, s.config.spool),
    cache: s.cache,
    locks: s.locks,
    caps: s.caps,
    routes: s.routes,
    routing: s.config.routing,
    lockTtlMs: s.config.jobLockMs,
    routeLoad: new RouteLoad(),
    registry: s.registry,
    queue: s.queue,
    logger: pino({ level: 'silent' }),
    retryPolicy: s.config.retry,
    allowPrivateUrls: s.config.allowPrivateUrls,
  });
}
