/**
 * The APIs rendermill speaks, one adapter each (src/providers): OpenAI's Images API and the
 * gateways that copy it, OpenAI's Responses API image tool, Replicate's predictions, fal's
 * queue. Declared in the foundation layer: the configuration names them, the registry too.
 */
export const ROUTE_KINDS = ['openai', 'openai-responses', 'replicate', 'fal'] as const;
export type RouteKind = (typeof ROUTE_KINDS)[number];

/**
 * How a batch's items choose among the routes that can render them:
 * - `priority`: the configured order, the next route only when one gives up;
 * - `cheapest`: the least money — the cheapest route that is up, waiting for its limit rather
 *   than paying more elsewhere;
 * - `spread`: the least time — every capable route's limit filled at once.
 */
export const ROUTING_STRATEGIES = ['priority', 'cheapest', 'spread'] as const;
export type RoutingStrategy = (typeof ROUTING_STRATEGIES)[number];
