import { connect } from 'node:net';

/**
 * A port on 127.0.0.1 that refuses connections and stays that way for the test: below the
 * OS's ephemeral range (32768–60999 on Linux), where the test servers' port-0 binds and
 * `findFreePort` never land. A free ephemeral port was used before, and a server that another
 * test file started in the meantime answered on it.
 */
export async function closedPort(): Promise<number> {
  for (let port = 1; port < 1024; port++) if (await refuses(port)) return port;
  throw new Error('every port below 1024 on 127.0.0.1 accepts connections');
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
