import type { IncomingMessage } from 'node:http';

/**
 * Reads and throws away what is left of a request body that was refused while it streamed in
 * (a catalog line too long, a catalog over its limit). Left unread, the socket is closed with
 * bytes in its receive buffer, which makes the kernel reset the connection — and a reset makes
 * the client drop the answer it has received: the sender would see "connection reset", not the
 * 413 naming the line. Nothing is kept. `maxBytes` is what the route would have read anyway
 * (the catalog limit): a sender that goes on past it is cut off.
 */
export function discardRestOfBody(raw: IncomingMessage, maxBytes: number): void {
  if (raw.complete || raw.destroyed) return;
  let discarded = 0;
  raw.unpipe();
  raw.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > maxBytes) raw.destroy();
  });
  raw.resume();
}
