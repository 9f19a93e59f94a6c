import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { RequestValidationError } from '../errors.js';

/**
 * The SSRF guard. Webhooks and edit inputs given as URLs are requests rendermill makes on a
 * tenant's behalf from inside its own network, so they must not reach the machine itself, the
 * private network, or the cloud's metadata service (169.254.169.254 hands out credentials).
 *
 * Two halves, both needed: `checkPublicUrl` before a request (it is the only check for IP
 * literals, which a socket connects to without a lookup), and `guardedLookup` as the
 * connection's DNS lookup, so the socket connects only to addresses that were checked — a name
 * that resolved to a public address a moment ago and to 127.0.0.1 now (DNS rebinding) is
 * refused all the same.
 */

/** The setting that turns the guard off, named in messages. */
export const ALLOW_PRIVATE_SETTING = 'RENDERMILL_ALLOW_PRIVATE_URLS';

type Range = readonly [network: string, prefix: number];

/** IPv4 ranges no guarded request may reach. */
const REFUSED_IPV4: readonly Range[] = [
  ['0.0.0.0', 8], // "this network", including the unspecified 0.0.0.0
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT, private in practice
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, the cloud metadata service
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments (DS-Lite, NAT64 discovery …)
  ['192.0.2.0', 24], // documentation (TEST-NET-1)
  ['192.88.99.0', 24], // the former 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking: used inside networks, never on the internet
  ['198.51.100.0', 24], // documentation (TEST-NET-2)
  ['203.0.113.0', 24], // documentation (TEST-NET-3)
  ['224.0.0.0', 4], // multicast: never an HTTP server
  ['240.0.0.0', 4], // reserved, and the broadcast address
];

/**
 * IPv6 ranges refused whole. The ranges that embed an IPv4 address where it can be found —
 * IPv4-mapped, IPv4-translated, NAT64 `64:ff9b::/96` and 6to4 — are decoded instead
 * (`embeddedIPv4`) and refused when that IPv4 address is.
 */
const REFUSED_IPV6: readonly Range[] = [
  ['::', 96], // `::`, `::1` and the deprecated IPv4-compatible `::a.b.c.d`
  ['100::', 64], // discard-only
  // Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the prefix length the
  // operator chose (/48 to /96), so it cannot be decoded reliably; it is refused whole.
  ['64:ff9b:1::', 48],
  ['2001::', 32], // Teredo: the IPv4 address inside is obfuscated; refused whole
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (private)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still private where used)
  ['ff00::', 8], // multicast
];

const refusedIPv4 = new BlockList();
for (const [network, prefix] of REFUSED_IPV4) refusedIPv4.addSubnet(network, prefix, 'ipv4');
const refusedIPv6 = new BlockList();
for (const [network, prefix] of REFUSED_IPV6) refusedIPv6.addSubnet(network, prefix, 'ipv6');

/**
 * Whether an IP address (v4 or v6, with or without brackets or a `%zone`) is one a guarded
 * request may not reach. Anything that is not an IP address is refused: there is nothing to
 * connect to safely.
 *
 * An IPv6 address that carries an IPv4 address — `::ffff:a.b.c.d`, `::ffff:0:a.b.c.d`, NAT64
 * `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::/48` — is refused exactly when that IPv4 address
 * is. So `[64:ff9b::a9fe:a9fe]`, which a NAT64 gateway turns into 169.254.169.254, is refused,
 * while `64:ff9b::808:808` (8.8.8.8) passes: on an IPv6-only network with DNS64 that is how
 * every IPv4-only public host is reached.
 */
export function isRefusedAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return refusedIPv4.check(bare, 'ipv4');
  if (family !== 6) return true;
  const groups = ipv6Groups(bare);
  if (!groups) return true;
  const embedded = embeddedIPv4(groups);
  if (embedded !== undefined) return refusedIPv4.check(embedded, 'ipv4');
  return refusedIPv6.check(bare, 'ipv6');
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail read). */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const part = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const left = part(head);
  const right = part(rest);
  const missing = 8 - left.length - right.length;
  const groups = rest === undefined ? left : [...left, ...Array<number>(missing).fill(0), ...right];
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** The IPv4 address an IPv6 address stands for, in the forms where its place is fixed. */
function embeddedIPv4(g: number[]): string | undefined {
  const dotted = (high: number, low: number) =>
    `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d, IPv4-mapped: the socket connects to the IPv4 address itself.
  if (zero(0, 5) && g[5] === 0xffff) return dotted(g[6]!, g[7]!);
  // ::ffff:0:a.b.c.d, IPv4-translated (SIIT).
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return dotted(g[6]!, g[7]!);
  // 64:ff9b::a.b.c.d, the well-known NAT64 prefix: the gateway connects to a.b.c.d.
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return dotted(g[6]!, g[7]!);
  // 2002:AABB:CCDD::/48, 6to4: the site behind the IPv4 router AA.BB.CC.DD.
  if (g[0] === 0x2002) return dotted(g[1]!, g[2]!);
  return undefined;
}

/** `localhost`, `foo.localhost` (RFC 6761 reserves them for loopback), with or without the root dot. */
const isLocalhostName = (host: string) => /(^|\.)localhost\.?$/i.test(host);

/** The URL's host is, or resolves to, a refused address (or is `localhost`). */
export class PrivateUrlError extends RequestValidationError {
  override name = 'PrivateUrlError';
}

/**
 * The URL's host did not resolve. Refused like any bad URL, but marked retryable: DNS failing
 * for a while is not the target being refused.
 */
export class HostUnresolvedError extends RequestValidationError {
  override name = 'HostUnresolvedError';
  override readonly retryable = true;
}

export interface PublicUrlOptions {
  /** Skip the address checks (`RENDERMILL_ALLOW_PRIVATE_URLS`): only the URL's form is checked. */
  allowPrivate: boolean;
  /** The request field the URL came from, named in messages and errors (`webhook_url` …). */
  field: string;
  /** The error code of a refusal (`invalid_webhook_url` …). */
  code: string;
}

/**
 * Checks that `url` is one rendermill may request: `http:` or `https:`, without a user name or
 * password, and — unless `allowPrivate` — a host that is not `localhost` and neither is nor
 * resolves (every address `dns.lookup` gives) to an address `isRefusedAddress` refuses.
 * Returns the parsed URL.
 *
 * Throws `RequestValidationError` (the given field and code): `PrivateUrlError` for a refused
 * address, `HostUnresolvedError` for a host that does not resolve.
 */
export async function checkPublicUrl(url: string, options: PublicUrlOptions): Promise<URL> {
  const { field, code } = options;
  const refuse = (message: string) =>
    new RequestValidationError(`${field}: ${message}`, field, code);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse('not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw refuse(`must be an http or https URL, not ${parsed.protocol}`);
  }
  if (parsed.username || parsed.password) {
    // Credentials in the URL would be logged and stored with the batch: ask for none.
    throw refuse('must not carry a user name or password');
  }
  if (options.allowPrivate) return parsed;

  // WHATWG URL parsing already turned 2130706433, 0x7f.1 and the like into dotted IPv4, and
  // IPv6 into its canonical bracketed form.
  const host = parsed.hostname;
  const privateUrl = (reason: string) =>
    new PrivateUrlError(
      `${field}: ${reason}; only public hosts are allowed (${ALLOW_PRIVATE_SETTING}=true allows others)`,
      field,
      code,
    );
  if (isLocalhostName(host)) throw privateUrl(`${host} is this machine`);
  const literal = host.replace(/^\[|\]$/g, '');
  const addresses = isIP(literal) !== 0 ? [literal] : await resolveAll(host, options);
  const bad = addresses.find(isRefusedAddress);
  if (bad !== undefined) {
    // The address a name resolves to is not said: a refusal must not become a way to map
    // the internal network's DNS from outside.
    throw privateUrl(
      literal === bad
        ? `${host} is a loopback, private, link-local or reserved address`
        : `${host} resolves to a private address (loopback, private, link-local or reserved)`,
    );
  }
  return parsed;
}

async function resolveAll(host: string, { field, code }: PublicUrlOptions): Promise<string[]> {
  try {
    const results = await lookup(host, { all: true, verbatim: true });
    if (results.length === 0) throw new Error('no addresses');
    return results.map((r) => r.address);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new HostUnresolvedError(
      `${field}: the host ${host} does not resolve (${reason})`,
      field,
      code,
    );
  }
}

/** A connection's host resolved, at connection time, to an address that may not be reached. */
export class RefusedAddressError extends Error {
  override name = 'RefusedAddressError';
  readonly code = 'ERR_PRIVATE_ADDRESS';
}

/**
 * A DNS lookup for `http.request`/`https.request` (`lookup` option, with `agent: false` so no
 * kept-alive socket skips it) that fails with `RefusedAddressError` when any address of the
 * name is refused. The socket connects to the very addresses checked here. IP literals are
 * never looked up: check the URL with `checkPublicUrl` first.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, '', 0);
    const refused = addresses.find((a) => isRefusedAddress(a.address));
    if (refused) {
      // Not the address itself: the message may reach the tenant (an item's error, a delivery's).
      const message = `${hostname} resolves to a private address (loopback, private, link-local or reserved)`;
      return callback(new RefusedAddressError(message), '', 0);
    }
    if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
    const [first] = addresses;
    if (!first) return callback(new Error(`${hostname} has no address`), '', 0);
    callback(null, first.address, first.family);
  });
};
