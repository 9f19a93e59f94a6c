import { request as httpRequest, type Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { escapeUri } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import type { S3Client } from '@aws-sdk/client-s3';
import { keptAliveAgent } from '../net/kept-alive-agent.js';

/**
 * The two S3 requests a render makes for every image it buys — the PutObject of its bytes, and
 * the ListObjects of its folder right before paying — sent without the SDK's middleware stack.
 *
 * The SDK spends about a millisecond of CPU on each command (resolving and running some twenty
 * middlewares, building the request, XML-parsing the answer), as much as all of rendermill's
 * own work on an image. These requests are the simplest the S3 API has, and everything that
 * decides what goes on the wire is still the SDK's: the endpoint and signing region come from
 * the client's own endpoint resolver, the credentials from its credential chain (refreshed as
 * it refreshes them), the signature from its signer (`@smithy/signature-v4`, as S3 signs: no
 * double-encoded path), the clock from its skew correction. What is left out is retry (uploads
 * are retried by store-images.ts; a listing that fails here is asked again through the SDK,
 * which retries), checksums (`WHEN_REQUIRED`: none for these) and the XML deserialiser: a
 * listing that holds anything goes back to the SDK to be read.
 */
export class S3DirectRequests {
  private readonly signer: SignatureV4;
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;

  private constructor(
    private readonly base: URL,
    private readonly client: S3Client,
    signingRegion: string,
    private readonly timeoutMs: number,
  ) {
    const config = client.config;
    this.signer = new SignatureV4({
      service: 's3',
      region: signingRegion,
      credentials: config.credentials,
      sha256: config.sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const https = base.protocol === 'https:';
    this.agent = keptAliveAgent(https ? 'https:' : 'http:', { maxSockets: MAX_SOCKETS });
    this.send = https ? httpsRequest : httpRequest;
  }

  /**
   * Direct requests for `bucket` as `client` would address it, or undefined where the SDK must
   * do it all: FIPS, dual-stack or accelerated endpoints (as the client's own configuration or
   * AWS_USE_FIPS_ENDPOINT … say), or an endpoint rule it would sign another way (S3 Express,
   * SigV4a, access points).
   */
  static async forBucket(
    client: S3Client,
    bucket: string,
    settings: { region: string; endpoint?: string; forcePathStyle: boolean; timeoutMs?: number },
  ): Promise<S3DirectRequests | undefined> {
    let resolved: { url: URL; properties?: { authSchemes?: unknown } };
    try {
      const config = client.config;
      const [fips, dualStack] = await Promise.all([
        config.useFipsEndpoint(),
        config.useDualstackEndpoint(),
      ]);
      if (fips || dualStack || config.useAccelerateEndpoint) return undefined;
      resolved = config.endpointProvider({
        Bucket: bucket,
        Region: settings.region,
        Endpoint: settings.endpoint,
        ForcePathStyle: settings.forcePathStyle,
        UseFIPS: false,
        UseDualStack: false,
        Accelerate: false,
      }) as typeof resolved;
    } catch {
      return undefined;
    }
    const schemes = resolved.properties?.authSchemes;
    const scheme = (Array.isArray(schemes) ? schemes[0] : undefined) as
      { name?: string; signingName?: string; signingRegion?: string } | undefined;
    if (scheme && (scheme.name !== 'sigv4' || (scheme.signingName ?? 's3') !== 's3')) {
      return undefined;
    }
    const base = new URL(resolved.url.href);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    return new S3DirectRequests(
      base,
      client,
      scheme?.signingRegion ?? settings.region,
      settings.timeoutMs ?? REQUEST_TIMEOUT_MS,
    );
  }

  /** PutObject: the body as it is, its SHA-256 left out of the signature where that is safe. */
  async put(input: {
    key: string;
    body: Buffer;
    contentType: string;
    metadata?: Record<string, string>;
  }): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': input.contentType,
      'content-length': String(input.body.byteLength),
      'x-amz-content-sha256': this.bodyMayGoUnsigned()
        ? 'UNSIGNED-PAYLOAD'
        : await this.hashOf(input.body),
    };
    for (const [name, value] of Object.entries(input.metadata ?? {})) {
      headers[`x-amz-meta-${name}`] = value;
    }
    const answer = await this.request('PUT', objectPath(input.key), {}, headers, input.body);
    if (answer.status !== 200) throw s3Error('PutObject', input.key, answer);
  }

  /**
   * Whether nothing is stored under `prefix`: true for an empty listing; false when something
   * is there — the caller reads the listing through the SDK, whose XML parser handles every
   * form of it.
   */
  async isEmpty(prefix: string): Promise<boolean> {
    const query = { prefix, 'max-keys': '1' };
    const answer = await this.request('GET', '', query, { 'x-amz-content-sha256': EMPTY_SHA256 });
    if (answer.status !== 200) throw s3Error('ListObjects', prefix, answer);
    // Keys are XML-escaped in a listing, so "<Contents>" appears only as the element itself.
    return !answer.body.includes('<Contents>');
  }

  close(): void {
    this.agent.destroy();
  }

  /** TLS protects the body already; a server on this machine has no network in between. */
  private bodyMayGoUnsigned(): boolean {
    return this.base.protocol === 'https:' || LOOPBACK_HOSTS.has(this.base.hostname);
  }

  private async hashOf(body: Buffer): Promise<string> {
    const hash = new this.client.config.sha256();
    hash.update(body);
    return Buffer.from(await hash.digest()).toString('hex');
  }

  private async request(
    method: 'GET' | 'PUT',
    subPath: string,
    query: Record<string, string>,
    headers: Record<string, string>,
    body?: Buffer,
  ): Promise<Answer> {
    const { hostname, port, protocol } = this.base;
    const path = this.base.pathname + subPath;
    const signed = await this.signer.sign(
      {
        method,
        protocol,
        hostname,
        port: port ? Number(port) : undefined,
        path,
        query,
        // The signer signs `host` as the server will read it: with the port when it is not the
        // scheme's own.
        headers: { ...headers, host: port ? `${hostname}:${port}` : hostname },
        body,
      },
      { signingDate: new Date(Date.now() + (this.client.config.systemClockOffset ?? 0)) },
    );
    const search = Object.entries(query)
      .map(([name, value]) => `${escapeUri(name)}=${escapeUri(value)}`)
      .join('&');
    return new Promise<Answer>((resolve, reject) => {
      const outgoing = this.send(
        {
          method,
          protocol,
          hostname: hostname.replace(/^\[|\]$/g, ''),
          port: port || undefined,
          path: search ? `${path}?${search}` : path,
          headers: signed.headers,
          agent: this.agent,
          timeout: this.timeoutMs,
        },
        (response) => readAnswer(response).then(resolve, reject),
      );
      outgoing.on('timeout', () =>
        outgoing.destroy(new Error(`S3 did not answer within ${this.timeoutMs} ms`)),
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }
}

/** An S3 answer: its status, and its body as text (an XML listing or error; PutObject's is empty). */
interface Answer {
  status: number;
  body: string;
}

async function readAnswer(response: IncomingMessage): Promise<Answer> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return { status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') };
}

/** The error the SDK would have thrown, as far as callers look at it: a name and the status. */
function s3Error(operation: string, subject: string, answer: Answer): Error {
  const code = /<Code>([^<]+)<\/Code>/.exec(answer.body)?.[1] ?? `HTTP ${answer.status}`;
  const message = /<Message>([^<]*)<\/Message>/.exec(answer.body)?.[1];
  const error = new Error(
    `S3 ${operation} ${subject}: ${code}${message ? ` (${message})` : ''} (HTTP ${answer.status})`,
  );
  return Object.assign(error, { name: code, $metadata: { httpStatusCode: answer.status } });
}

/**
 * An object's path as S3 signs and reads it: every byte percent-encoded but RFC 3986's
 * unreserved characters and `/`, by the signer's own encoder (it encodes the query the same
 * way when it signs it).
 */
export function objectPath(key: string): string {
  return key.split('/').map(escapeUri).join('/');
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);
/** The SHA-256 of nothing, the payload hash of a GET. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Connections kept per S3 endpoint, as the SDK's own handler allows. */
const MAX_SOCKETS = 50;
/** A request S3 has not answered in this long is abandoned (and retried by the caller). */
const REQUEST_TIMEOUT_MS = 60_000;
