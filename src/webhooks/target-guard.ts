import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { RequestValidationError } from '../errors.js';

/**
 * The SSRF guard: a webhook URL is a request rendermill makes on a tenant's behalf from inside
 * its network, so it must not reach the machine itself, the private network, or the cloud's
 * metadata service (169.254.169.254 hands out credentials).
 */

const FIELD = 'webhook_url';
const CODE = 'invalid_webhook_url';

/** Address ranges a webhook may not reach unless private targets are allowed. */
const REFUSED_RANGES: readonly [network: string, prefix: number, family: 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'], // "this network", including the unspecified 0.0.0.0
  ['10.0.0.0', 8, 'ipv4'], // private
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT, private in practice
  ['127.0.0.0', 8, 'ipv4'], // loopback
  ['169.254.0.0', 16, 'ipv4'], // link-local, the cloud metadata service
  ['172.16.0.0', 12, 'ipv4'], // private
  ['192.168.0.0', 16, 'ipv4'], // private
  ['224.0.0.0', 4, 'ipv4'], // multicast: never an HTTP server
  ['240.0.0.0', 4, 'ipv4'], // reserved, and the broadcast address
  // `::`, `::1` and the deprecated IPv4-compatible `::a.b.c.d`. IPv4-mapped `::ffff:a.b.c.d`
  // is matched by BlockList against the IPv4 ranges above.
  ['::', 96, 'ipv6'],
  ['fc00::', 7, 'ipv6'], // unique local (private)
  ['fe80::', 10, 'ipv6'], // link-local
  ['ff00::', 8, 'ipv6'], // multicast
];

const refused = new BlockList();
for (const [network, prefix, family] of REFUSED_RANGES) refused.addSubnet(network, prefix, family);

/** Whether an IP address (v4 or v6, with or without brackets) is one a webhook may not reach. */
export function isRefusedAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 0) return true; // not an address at all: nothing to connect to safely
  return refused.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

/** `localhost`, `foo.localhost` (RFC 6761 reserves them for loopback), with or without the root dot. */
const isLocalhostName = (host: string) => /(^|\.)localhost\.?$/i.test(host);

/**
 * The host name did not resolve. Refused at submission like any bad URL, but a delivery that
 * meets it retries: DNS failing for a while is not the receiver being refused.
 */
export class WebhookHostUnresolvedError extends RequestValidationError {
  override name = 'WebhookHostUnresolvedError';
  override readonly retryable = true;
}

const refuse = (message: string) => new RequestValidationError(message, FIELD, CODE);

/**
 * Checks that `url` is a webhook target rendermill may POST to: `http:` or `https:`, and —
 * unless `allowPrivate` — a host that neither is nor resolves (every address `dns.lookup`
 * gives) to a loopback, private, link-local, unspecified, CGNAT or multicast address, or an
 * IPv4-mapped IPv6 form of one, and is not `localhost`.
 *
 * Throws `RequestValidationError` (field `webhook_url`, code `invalid_webhook_url`); a host that
 * does not resolve throws its subclass `WebhookHostUnresolvedError`.
 *
 * @param options.allowPrivate Skip the address checks (config `RENDERMILL_WEBHOOK_ALLOW_PRIVATE`,
 *   default false): for receivers on the same private network, and for tests.
 */
export async function checkWebhookUrl(
  url: string,
  options: { allowPrivate: boolean },
): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse(`${FIELD}: not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw refuse(`${FIELD}: must be an http or https URL, not ${parsed.protocol}`);
  }
  if (parsed.username || parsed.password) {
    // Credentials in the URL would be logged and stored with the batch: ask for none.
    throw refuse(`${FIELD}: must not carry a user name or password`);
  }
  if (options.allowPrivate) return;

  // WHATWG URL parsing already turned 2130706433, 0x7f.1 and the like into dotted IPv4, and
  // IPv6 into its canonical bracketed form.
  const host = parsed.hostname;
  if (isLocalhostName(host)) throw refuse(`${FIELD}: ${host} is this machine`);
  const literal = host.replace(/^\[|\]$/g, '');
  if (isIP(literal) !== 0) {
    if (isRefusedAddress(literal)) throw refusedAddress(host, literal);
    return;
  }
  const addresses = await resolveAll(host);
  const bad = addresses.find(isRefusedAddress);
  if (bad !== undefined) throw refusedAddress(host, bad);
}

function refusedAddress(host: string, address: string): RequestValidationError {
  const via = host.replace(/^\[|\]$/g, '') === address ? '' : ` (it resolves to ${address})`;
  return refuse(
    `${FIELD}: ${host}${via} is a loopback, private, link-local or reserved address; ` +
      'webhooks go to public hosts only (RENDERMILL_WEBHOOK_ALLOW_PRIVATE=true allows others)',
  );
}

async function resolveAll(host: string): Promise<string[]> {
  try {
    const results = await lookup(host, { all: true, verbatim: true });
    if (results.length === 0) throw new Error('no addresses');
    return results.map((r) => r.address);
  } catch (error) {
    throw new WebhookHostUnresolvedError(
      `${FIELD}: the host ${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      FIELD,
      CODE,
    );
  }
}
