import { createServer } from 'node:net';

/**
 * Asks the OS for a currently unused TCP port. There is an unavoidable race between closing our
 * probe socket and the caller binding the port; callers that spawn servers should be prepared for
 * the bind to fail.
 */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`Could not determine a free port on ${host}`));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}
