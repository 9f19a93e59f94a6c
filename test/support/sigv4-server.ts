import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the server received it, and whether its SigV4 signature held. */
export interface ReceivedRequest {
  method: string;
  /** The raw request target: path and query as they came over the wire. */
  url: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Why the signature was refused, or undefined when it verified. */
  refused?: string;
}

/**
 * A stand-in S3 endpoint that checks every request's AWS Signature Version 4 the way S3 does,
 * from the raw request alone and with node:crypto only — no AWS code — so a request signed
 * wrongly (a path or query encoded otherwise than it is signed, a header left out, the wrong
 * key) is refused with 403 SignatureDoesNotMatch. s3rver, which the other tests use, takes any
 * signature. PUT answers 200; GET answers a ListObjects listing of `listing` (keys).
 */
export async function startSigV4Server(
  credentials: { accessKeyId: string; secretAccessKey: string },
  options: { host?: string; region?: string } = {},
) {
  const host = options.host ?? '127.0.0.1';
  const region = options.region ?? 'eu-west-1';
  const received: ReceivedRequest[] = [];
  let listing: string[] = [];
  /** Answers every listing with this status (a server error) while set. */
  let failListings: number | undefined;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const refused = verify(request, body, credentials, region);
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers as Record<string, string>,
        body,
        refused,
      });
      if (refused) {
        response.writeHead(403, { 'content-type': 'application/xml' });
        response.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>${refused}</Message></Error>`,
        );
        return;
      }
      if (request.method === 'GET' && failListings) {
        response.writeHead(failListings, { 'content-type': 'application/xml' });
        response.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>',
        );
        return;
      }
      if (request.method === 'GET') {
        response.writeHead(200, { 'content-type': 'application/xml' });
        response.end(listingXml(listing));
        return;
      }
      response.writeHead(200, { etag: '"etag"' });
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    received,
    /** What the next listings hold. */
    list(keys: string[]) {
      listing = keys;
    },
    /** Every listing fails with `status` from now on (undefined: they work again). */
    failListingsWith(status: number | undefined) {
      failListings = status;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function listingXml(keys: string[]): string {
  const contents = keys
    .map((key) => `<Contents><Key>${key}</Key><Size>1</Size></Contents>`)
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>images</Name><Prefix></Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`;
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** Returns why the request's signature does not hold, or undefined when it does. */
function verify(
  request: IncomingMessage,
  body: Buffer,
  credentials: { accessKeyId: string; secretAccessKey: string },
  expectedRegion: string,
): string | undefined {
  const match = AUTHORIZATION.exec(request.headers.authorization ?? '');
  if (!match) return 'no SigV4 Authorization header';
  const [, accessKeyId, day, region, signedHeaderList, signature] = match;
  if (accessKeyId !== credentials.accessKeyId) return 'unknown access key';
  if (region !== expectedRegion) return `signed for region ${region}, not ${expectedRegion}`;
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(day!)) return 'x-amz-date is not the credential scope’s day';
  const signedHeaders = signedHeaderList!.split(';');
  if (!signedHeaders.includes('host')) return 'host is not signed';
  if (!signedHeaders.includes('x-amz-content-sha256')) return 'the payload hash is not signed';
  // S3 wants every x-amz-* header signed (metadata included); the SDK's own user agent aside.
  const unsigned = Object.keys(request.headers).filter(
    (name) =>
      name.startsWith('x-amz-') && name !== 'x-amz-user-agent' && !signedHeaders.includes(name),
  );
  if (unsigned.length > 0) return `headers not signed: ${unsigned.join(', ')}`;
  const payloadHash = String(request.headers['x-amz-content-sha256'] ?? '');
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256(body)) {
    return 'x-amz-content-sha256 is not the body’s hash';
  }
  const [rawPath, rawQuery = ''] = (request.url ?? '').split('?', 2);
  const canonicalRequest = [
    request.method,
    // S3 signs the key's path once encoded, strictly, whatever encoding the request used:
    // not normalised (no dot segments resolved), not encoded twice.
    rawPath!
      .split('/')
      .map((segment) => strict(decodeURIComponent(segment)))
      .join('/'),
    canonicalQuery(rawQuery),
    signedHeaders
      .map((name) => `${name}:${headerValue(request, name).trim().replace(/\s+/g, ' ')}\n`)
      .join(''),
    signedHeaderList,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key: Buffer = hmac(`AWS4${credentials.secretAccessKey}`, day!);
  for (const part of [region!, 's3', 'aws4_request']) key = hmac(key, part);
  const expected = createHmac('sha256', key).update(stringToSign).digest('hex');
  return expected === signature ? undefined : 'the signature does not match';
}

function headerValue(request: IncomingMessage, name: string): string {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

/** Query parameters decoded, encoded again strictly (RFC 3986), sorted: SigV4's canonical form. */
function canonicalQuery(raw: string): string {
  if (raw === '') return '';
  return raw
    .split('&')
    .map((pair) => {
      const [name = '', value = ''] = pair.split('=', 2);
      return [strict(decode(name)), strict(decode(value))] as const;
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

const decode = (text: string) => decodeURIComponent(text.replace(/\+/g, ' '));
const strict = (text: string) =>
  encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) =>
  createHmac('sha256', key).update(data).digest();
