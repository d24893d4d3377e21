// What both client commands share: the server URL, opening the WebSocket, and reading its frames.

import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { WS_PATH, type ServerMessage } from '../api/ws-protocol.ts';

export const DEFAULT_URL = `ws://127.0.0.1:5000${WS_PATH}`;

// Server frames have fixed keys (domains are values), so plain objects are safe here.
const unpackr = new Unpackr({ useRecords: false });

export class CliError extends Error {
  override name = 'CliError';
  /** The HTTP status of a refused upgrade, when that is what failed. */
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
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

/** The options both commands take for a token, for parseArgs. */
export const TOKEN_OPTIONS = {
  token: { type: 'string' },
  'token-file': { type: 'string' },
} as const;

/** The help lines of the token options, their descriptions starting at column `width`. */
export function tokenHelp(width: number): string {
  const line = (label: string, text: string): string => `${label.padEnd(Math.max(width, label.length + 1))}${text}`;
  return [
    line('  --token TOKEN', 'sent as Authorization: Bearer (env TOPTALLY_TOKEN; on the command line it shows in ps)'),
    line('  --token-file FILE', "the token is the file's first line that is not blank or a # comment"),
  ].join('\n');
}

/**
 * The token to send, from --token, --token-file or TOPTALLY_TOKEN (in that order); undefined for
 * none. It goes in a header, never in the URL, where it would show in logs.
 */
export function tokenFrom(values: { token?: string; 'token-file'?: string }, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (values.token !== undefined) return checkToken('--token', values.token);
  const file = values['token-file'];
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CliError(`--token-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
    if (line === undefined) throw new CliError(`--token-file: ${file} holds no token`);
    return checkToken('--token-file', line);
  }
  const fromEnv = env.TOPTALLY_TOKEN;
  return fromEnv === undefined || fromEnv === '' ? undefined : checkToken('TOPTALLY_TOKEN', fromEnv);
}

function checkToken(source: string, token: string): string {
  if (!/^[\x21-\x7e]+$/.test(token)) throw new CliError(`${source}: a token is printable ASCII without spaces`);
  return token;
}

export async function connect(url: string, token?: string): Promise<WebSocket> {
  const headers = token === undefined ? undefined : { authorization: `Bearer ${token}` };
  const socket = new WebSocket(url, { perMessageDeflate: false, headers });
  socket.binaryType = 'nodebuffer';
  // A refused upgrade: its status, and the server's reason when it sent one.
  const refused = new Promise<never>((_, reject) =>
    socket.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => reject(new CliError(refusal(url, res.statusCode ?? 0, body, token !== undefined), res.statusCode)));
    }),
  );
  try {
    await Promise.race([once(socket, 'open'), refused]);
  } catch (err) {
    socket.terminate();
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot connect to ${url}: ${(err as Error).message}`);
  }
  return socket;
}

function refusal(url: string, status: number, body: string, withToken: boolean): string {
  let reason = '';
  try {
    const { error } = JSON.parse(body) as { error: { code: string; message: string } };
    reason = `: ${error.code}: ${error.message}`;
  } catch {
    // not one of ours
  }
  const hint = status === 401 ? (withToken ? '; check the token' : '; the server needs a token: --token, --token-file or TOPTALLY_TOKEN') : '';
  return `${url} refused the connection (${status})${reason}${hint}`;
}

export function onServerMessage(socket: WebSocket, handle: (message: ServerMessage) => void): void {
  socket.on('message', (data: Buffer, binary: boolean) => {
    handle((binary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8'))) as ServerMessage);
  });
}
