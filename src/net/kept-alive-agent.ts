import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

/**
 * How long a kept-alive connection may sit unused before it is closed: undici's default. Node's
 * agent keeps idle connections for ever unless the server says how long it will, and a
 * connection the server has closed meanwhile fails the next request on it (ECONNRESET) — which,
 * for a provider call, counts as possibly billed.
 */
const IDLE_CONNECTION_MS = 4_000;

/**
 * An HTTP(S) agent that keeps connections alive between requests (a new TCP and TLS connection
 * per image would cost more than the request itself) and closes those idle for
 * IDLE_CONNECTION_MS. Its `timeout` touches idle connections only: one in use just gets a
 * 'timeout' event nobody acts on, so requests bound their own time.
 */
export function keptAliveAgent(
  protocol: 'http:' | 'https:',
  options: { maxSockets?: number } = {},
): HttpAgent {
  const settings = { keepAlive: true, timeout: IDLE_CONNECTION_MS, ...options };
  return protocol === 'https:' ? new HttpsAgent(settings) : new HttpAgent(settings);
}
