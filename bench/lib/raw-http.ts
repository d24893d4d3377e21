/**
 * A minimal keep-alive HTTP/1.1 client on one socket, one request at a time. Query and fill timings
 * are fractions of a millisecond on loopback, so the client must add as little as possible: request
 * bytes are written as they are and the response is framed by its Content-Length alone (every server
 * under test sends one; a chunked reply is an error here).
 */
import net from 'node:net';

export interface RawResponse {
  status: number;
  body: Buffer;
  /** From the request's write to the response's last byte. */
  ms: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

export class RawHttp {
  private readonly socket: net.Socket;
  private buffered: Buffer = Buffer.alloc(0);
  private pending: { resolve: (response: RawResponse) => void; reject: (error: Error) => void; sentAt: number } | undefined;
  private closedWith: Error | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  static async connect(port: number): Promise<RawHttp> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawHttp(socket);
  }

  /** Builds the bytes of a request once, for callers that send the same one many times. */
  static format(method: string, path: string, body?: Buffer | string): Buffer {
    const payload = body === undefined ? undefined : Buffer.from(body);
    const head =
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      (payload === undefined ? '' : `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n`) +
      '\r\n';
    return payload === undefined ? Buffer.from(head) : Buffer.concat([Buffer.from(head), payload]);
  }

  get(path: string): Promise<RawResponse> {
    return this.send(RawHttp.format('GET', path));
  }

  /** Sends pre-formatted request bytes; rejects if a request is already outstanding. */
  send(request: Buffer): Promise<RawResponse> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    if (this.pending !== undefined) return Promise.reject(new Error('RawHttp: one request at a time'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject, sentAt: performance.now() };
      this.socket.write(request);
    });
  }

  close(): void {
    this.closedWith ??= new Error('closed');
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const pending = this.pending;
    if (pending === undefined) return;
    const headerEnd = this.buffered.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const head = this.buffered.subarray(0, headerEnd).toString('latin1');
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (length === null) {
      this.fail(new Error(`response without Content-Length: ${head.split('\r\n', 1)[0]}`));
      return;
    }
    const bodyStart = headerEnd + HEADER_END.length;
    const bodyEnd = bodyStart + Number(length[1]);
    if (this.buffered.length < bodyEnd) return;
    const body = this.buffered.subarray(bodyStart, bodyEnd);
    this.buffered = this.buffered.subarray(bodyEnd);
    this.pending = undefined;
    pending.resolve({ status, body, ms: performance.now() - pending.sentAt });
  }

  private fail(error: Error): void {
    this.closedWith ??= error;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }
}
