// Listening alone on the port. uWS's default listen sets SO_REUSEPORT: a second server on the same
// port starts without a word and the kernel spreads connections over both, each with half of the
// counts. LIBUS_LISTEN_EXCLUSIVE_PORT leaves that off, so a port in use is a failure to start.

import net from 'node:net';
import { TopTallyError } from '../errors.ts';
import type { TemplatedApp, us_listen_socket } from './uws.ts';

const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;

type ListenWithOptions = (host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void) => void;

export function listenExclusive(app: TemplatedApp, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    (app.listen as unknown as ListenWithOptions).call(app, host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, (socket) => {
      if (socket) resolve(socket);
      else void whyNot(host, port).then(reject);
    });
  });
}

/**
 * Fails at once when the port is taken, before start-up spends time on workers and recovery (and
 * before the data directory's lock, which would name the other process's directory instead).
 */
export async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const err = await whyNot(host, port);
  if (err instanceof TopTallyError) throw err;
}

/** uWS says only "no": ask the kernel why, through a listen of Node's own that is closed at once. */
function whyNot(host: string, port: number): Promise<Error> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        resolve(new TopTallyError('TOPTALLY_ERR_PORT_IN_USE', `cannot listen on ${host}:${port}: port ${port} is in use (another toptally?)`, { port }));
      } else {
        resolve(new Error(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`));
      }
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(new Error(`cannot listen on ${host}:${port}`))));
  });
}
