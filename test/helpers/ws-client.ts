// A real `ws` client for the tests: frames are queued as they arrive and read in order with next(),
// so a test waits on what the server sends, never on a timer.

import { once } from 'node:events';
import type http from 'node:http';
import type { TestContext } from 'node:test';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

export interface UpgradeInit {
  headers?: Record<string, string>;
  /** Appended to /ws, e.g. "?token=...". */
  query?: string;
  /** false: pings go unanswered, as from a client that is gone. */
  autoPong?: boolean;
}

function connect(url: string, { headers, query = '', autoPong = true }: UpgradeInit): WebSocket {
  return new WebSocket(url.replace(/^http/, 'ws') + '/ws' + query, { perMessageDeflate: false, headers, autoPong });
}

export interface Frame {
  binary: boolean;
  body: any;
}

export interface Closed {
  code: number;
  reason: string;
}

export class TestSocket {
  readonly socket: WebSocket;
  readonly closed: Promise<Closed>;
  readonly #frames: Frame[] = [];
  #waiting: ((frame: Frame) => void) | null = null;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    socket.on('message', (data: Buffer, binary: boolean) => {
      const frame = { binary, body: binary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8')) };
      if (this.#waiting) {
        const waiting = this.#waiting;
        this.#waiting = null;
        waiting(frame);
      } else {
        this.#frames.push(frame);
      }
    });
  }

  static async open(t: Pick<TestContext, 'after'>, url: string, init: UpgradeInit = {}): Promise<TestSocket> {
    const socket = connect(url, init);
    socket.on('error', () => {}); // a refused or cut connection shows up as its close code
    t.after(() => socket.terminate());
    await once(socket, 'open');
    return new TestSocket(socket);
  }

  /** An upgrade the server refuses: its HTTP status, headers and JSON body. */
  static async refused(url: string, init: UpgradeInit = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
    const socket = connect(url, init);
    socket.on('error', () => {});
    const [, res] = (await once(socket, 'unexpected-response')) as [unknown, http.IncomingMessage];
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return { status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  }

  /** Sends a message as JSON (text frame) or MessagePack (binary frame). */
  send(message: unknown, binary = false): void {
    this.socket.send(binary ? packr.pack(message) : JSON.stringify(message), { binary });
  }

  sendRaw(data: Buffer | string, binary: boolean): void {
    this.socket.send(data, { binary });
  }

  /** The next frame the server sent, in order. */
  next(): Promise<Frame> {
    const queued = this.#frames.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.#waiting = resolve;
      this.closed.then((closed) => reject(new Error(`closed (${closed.code} ${closed.reason}) while waiting for a frame`)));
    });
  }

  /** The next frame's body. */
  async body(): Promise<any> {
    return (await this.next()).body;
  }

  /** Frames received but not read yet. */
  get queued(): number {
    return this.#frames.length;
  }
}
