import { connect } from 'node:net';

/**
 * A port on 127.0.0.1 that refuses connections and stays that way for the test: just below the
 * OS's ephemeral range (32768–60999 on Linux), where the test servers' port-0 binds and
 * `findFreePort` never land (a free ephemeral port was used before, and a server that another
 * test file started meanwhile answered on it), and above the ports `fetch` refuses to call
 * (1, 7, … 10080: the Fetch standard's "bad ports").
 */
export async function closedPort(): Promise<number> {
  for (let port = 30_000; port < 32_768; port++) if (await refuses(port)) return port;
  throw new Error('every port from 30000 to 32767 on 127.0.0.1 accepts connections');
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
