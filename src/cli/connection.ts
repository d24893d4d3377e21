// What both client commands share: the server URL, opening the WebSocket, and reading its frames.

import { once } from 'node:events';
import { Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { WS_PATH, type ServerMessage } from '../api/ws-protocol.ts';

export const DEFAULT_URL = `ws://127.0.0.1:5000${WS_PATH}`;

// Server frames have fixed keys (domains are values), so plain objects are safe here.
const unpackr = new Unpackr({ useRecords: false });

export class CliError extends Error {
  override name = 'CliError';
}

/** Accepts ws://, wss://, http:// or https://, with or without the /ws path. */
export function wsUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`--url: not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new CliError(`--url: expected ws:// or http://, got ${raw}`);
  if (url.pathname === '/') url.pathname = WS_PATH;
  return url.href;
}

export async function connect(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  socket.binaryType = 'nodebuffer';
  try {
    await once(socket, 'open');
  } catch (err) {
    throw new CliError(`cannot connect to ${url}: ${(err as Error).message}`);
  }
  return socket;
}

export function onServerMessage(socket: WebSocket, handle: (message: ServerMessage) => void): void {
  socket.on('message', (data: Buffer, binary: boolean) => {
    handle((binary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8'))) as ServerMessage);
  });
}
