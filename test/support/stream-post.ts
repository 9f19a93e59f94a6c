import { connect } from 'node:net';

export interface StreamedAnswer {
  status: number;
  body: string;
  /** From the first byte sent to the answer's status line. */
  ms: number;
}

/**
 * POSTs a large body the way an attacker's client does — 1 MiB writes that wait for the socket
 * to drain — over a raw socket, and stops sending once the server answers. A server that
 * refuses a body while it streams (over a limit, a line too long) answers and closes the
 * connection while the body is still coming: Node's HTTP client then reports the broken pipe
 * and drops the answer it has received, so the answer is read off the socket here.
 */
export function streamPost(
  url: string,
  headers: Record<string, string>,
  body: { bytes: number; chunk: (offset: number, length: number) => Buffer },
  options: {
    /**
     * Wait this long after the headers for an answer before sending the body: a server that
     * refuses on the declared length answers from the headers alone, and then closes the
     * connection with a reset that could cost the client the answer if the body were in flight.
     */
    bodyAfterMs?: number;
  } = {},
): Promise<StreamedAnswer> {
  const { hostname, port, pathname, search } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let received = Buffer.alloc(0);
    let answeredAt: number | undefined;
    const socket = connect(Number(port), hostname);
    const finish = () => {
      const text = received.toString('utf8');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
      if (!status || answeredAt === undefined) {
        reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const chunked = /transfer-encoding: chunked/i.test(head);
      const raw = rest.join('\r\n\r\n');
      resolve({
        status: Number(status),
        body: chunked ? raw.replace(/^[0-9a-f]+\r\n|\r\n[0-9a-f]+\r\n|\r\n0\r\n\r\n$/gi, '') : raw,
        ms: answeredAt - started,
      });
    };
    socket.on('data', (data: Buffer) => {
      answeredAt ??= performance.now();
      received = Buffer.concat([received, data]);
      const text = received.toString('utf8');
      const length = /content-length: (\d+)/i.exec(text)?.[1];
      const headEnd = text.indexOf('\r\n\r\n');
      const complete =
        headEnd >= 0 &&
        (length === undefined
          ? text.endsWith('\r\n0\r\n\r\n')
          : Buffer.byteLength(text.slice(headEnd + 4)) >= Number(length));
      if (complete) {
        socket.destroy();
        finish();
      }
    });
    // EPIPE / ECONNRESET once the server has answered and closed: what is received counts.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (socket.readableEnded || answeredAt !== undefined) finish();
      else reject(new Error('the connection closed without an answer'));
    });
    const head = [
      `POST ${pathname}${search} HTTP/1.1`,
      `host: ${hostname}:${port}`,
      `content-length: ${body.bytes}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ].join('\r\n');
    socket.write(`${head}\r\n\r\n`);
    const WRITE = 1024 * 1024;
    let sent = 0;
    const send = () => {
      while (answeredAt === undefined && !socket.destroyed && sent < body.bytes) {
        const length = Math.min(WRITE, body.bytes - sent);
        const part = body.chunk(sent, length);
        sent += length;
        if (!socket.write(part)) {
          socket.once('drain', send);
          return;
        }
      }
    };
    if (options.bodyAfterMs) setTimeout(send, options.bodyAfterMs);
    else send();
  });
}

/** `[[[[…]]]]`, `levels` deep (2 bytes a level), produced slice by slice. */
export const nestedBrackets = (levels: number) => ({
  bytes: levels * 2,
  chunk: (offset: number, length: number) => {
    const slice = Buffer.alloc(length, '[');
    const closingFrom = Math.max(0, levels - offset);
    if (closingFrom < length) slice.fill(']', closingFrom);
    return slice;
  },
});

/** `prefix` followed by `x`s up to `bytes` in all, without a newline: one very long line. */
export const oneLongLine = (prefix: string, bytes: number) => ({
  bytes,
  chunk: (offset: number, length: number) => {
    const slice = Buffer.alloc(length, 'x');
    if (offset < prefix.length) slice.write(prefix.slice(offset, offset + length));
    return slice;
  },
});
