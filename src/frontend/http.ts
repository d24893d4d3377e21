// uWS request/response plumbing: abort tracking, body reading with a size limit, JSON replies.
// uWS rules: register onAborted before any async work, copy each onData chunk before returning, and
// cork every write made after an await.

import { TopTallyError, toTopTallyError, type ErrorCode } from '../errors.ts';
import type { BodyBuffers } from './body-buffers.ts';
import type { HttpResponse } from './uws.ts';

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  422: '422 Unprocessable Content',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** One HTTP exchange: the response plus whether the client went away. */
export class Exchange {
  readonly res: HttpResponse;
  aborted = false;
  done = false;
  /** The status replied with; 0 while there is none (and for ever when the client went away first). */
  status = 0;
  /** The code of the error replied with, if any. */
  errorCode: ErrorCode | null = null;
  readonly #onFinish: (exchange: Exchange) => void;
  readonly #bodyTimeoutMs: number;
  /** Ends a body read in progress when the client goes away. */
  #abortRead: (() => void) | null = null;
  readonly #buffers: BodyBuffers | undefined;
  /** The pooled buffer readBody() read into, until releaseBody(). */
  #pooled: Buffer | null = null;

  /**
   * `bodyTimeoutMs`: how long readBody waits for the whole body (0: no deadline of ours);
   * `buffers`: where bodies of a few KiB are read into (see releaseBody).
   */
  constructor(res: HttpResponse, onFinish: (exchange: Exchange) => void, bodyTimeoutMs = 0, buffers?: BodyBuffers) {
    this.res = res;
    this.#buffers = buffers;
    this.#onFinish = onFinish;
    this.#bodyTimeoutMs = bodyTimeoutMs;
    res.onAborted(() => {
      this.aborted = true;
      this.#abortRead?.();
      this.#finish();
    });
  }

  /**
   * Reads the whole body, refusing more than `limit` bytes or a body still incomplete after the
   * deadline. uWS drops a client that sends under 16 KiB in 10 s by itself; the deadline also bounds
   * one that trickles faster than that. A small body with a Content-Length goes in Node's shared
   * buffer pool (a buffer of its own costs a backing store each), so it may not own its ArrayBuffer.
   */
  readBody(limit: number, declaredLength: string): Promise<Buffer> {
    const declared = declaredLength === '' ? -1 : Number(declaredLength);
    if (declared > limit) return Promise.reject(tooLarge(limit));
    return new Promise((resolve, reject) => {
      const pooled = declared >= 0 ? this.#buffers?.take(declared) : undefined;
      if (pooled) this.#pooled = pooled;
      let body = pooled ?? (declared >= 0 ? Buffer.allocUnsafe(declared) : Buffer.alloc(0));
      let length = 0;
      const ms = this.#bodyTimeoutMs;
      const timer = ms > 0 ? setTimeout(() => reject(tooSlow(ms, length)), ms) : undefined;
      const stop = (err: Error): void => {
        clearTimeout(timer);
        this.#abortRead = null;
        this.releaseBody();
        reject(err);
      };
      this.#abortRead = () => stop(new Error('the client went away before the body was complete'));
      this.res.onData((chunk, isLast) => {
        if (length + chunk.byteLength > limit) {
          stop(tooLarge(limit));
          return;
        }
        if (length + chunk.byteLength > body.length) {
          const grown = Buffer.allocUnsafeSlow(Math.max(length + chunk.byteLength, body.length * 2));
          body.copy(grown, 0, 0, length);
          body = grown;
        }
        body.set(new Uint8Array(chunk), length);
        length += chunk.byteLength;
        if (isLast) {
          clearTimeout(timer);
          this.#abortRead = null;
          resolve(body.subarray(0, length));
        }
      });
    });
  }

  /** Gives a pooled body buffer back; call once nothing reads the body readBody() gave. */
  releaseBody(): void {
    if (this.#pooled) this.#buffers?.give(this.#pooled);
    this.#pooled = null;
  }

  json(status: number, body: unknown, headers: Record<string, string> = {}, close = false): void {
    this.send(status, 'application/json', JSON.stringify(body), headers, close);
  }

  send(status: number, contentType: string, body: string | Uint8Array, headers: Record<string, string> = {}, close = false): void {
    if (this.aborted || this.done) return;
    this.res.cork(() => {
      this.res.writeStatus(STATUS_TEXT[status] ?? `${status}`);
      this.res.writeHeader('Content-Type', contentType);
      for (const name in headers) this.res.writeHeader(name, headers[name]);
      this.res.end(body, close);
    });
    this.status = status;
    this.#finish();
  }

  /**
   * Replies with the error's status and `{"error": {...}}`. When the body may not have been read,
   * the connection is closed so unread bytes are never taken for the next request.
   */
  error(err: unknown, headers: Record<string, string> = {}, close = false): void {
    const e = toTopTallyError(err);
    if (!this.done) this.errorCode = e.code;
    const retryAfter = e.details.retryAfter;
    this.json(e.status, { error: e.toJSON() }, typeof retryAfter === 'number' ? { 'Retry-After': String(retryAfter), ...headers } : headers, close);
  }

  #finish(): void {
    if (this.done) return;
    this.done = true;
    this.#onFinish(this);
  }
}

function tooSlow(ms: number, received: number): TopTallyError {
  return new TopTallyError(
    'TOPTALLY_ERR_BODY_TIMEOUT',
    `The body was not complete after ${ms} ms (--body-timeout); ${received} bytes had arrived`,
    { limit: ms },
  );
}

function tooLarge(limit: number): TopTallyError {
  return new TopTallyError(
    'TOPTALLY_ERR_BODY_TOO_LARGE',
    `The body is larger than the limit of ${limit} bytes (--max-body)`,
    { limit },
  );
}
