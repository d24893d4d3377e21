// One HTTP exchange written byte for byte on a socket of its own, for requests no client library
// would send (ambiguous framing, raw header bytes).

import { once } from 'node:events';
import net from 'node:net';

/** Everything the server wrote until it closed the connection, or until one whole JSON reply is in (then the client closes). */
export async function rawExchange(port: number, request: string | Buffer): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let reply = '';
  socket.on('data', (chunk) => {
    reply += chunk.toString();
    if (reply.endsWith('}')) socket.destroy();
  });
  socket.on('error', () => {});
  socket.write(request);
  await once(socket, 'close');
  return reply;
}
