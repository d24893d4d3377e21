// uWS request/response plumbing: abort tracking, body reading with a size limit, JSON replies.
// uWS rules: register onAborted before any async work, copy each onData chunk before returning, and
// cork every write made after an await.

import { TopTallyError, toTopTallyError, type ErrorCode } from '../errors.ts';
import { PACE_BYTES, PACE_MS, type BodyDeadlines, type BodyRead } from './body-deadlines.ts';
import { IncomingBody, type BodyMemory } from './incoming-body.ts';
import type { HttpResponse } from './uws.ts';

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  421: '421 Misdirected Request',
  422: '422 Unprocessable Content',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** How bodies are read: their memory, and the deadlines of those being read. */
export interface BodyReading extends BodyMemory {
  deadlines: BodyDeadlines;
}

/** One HTTP exchange: the response plus whether the client went away. */
export class Exchange {
  readonly res: HttpResponse;
  aborted = false;
  done = false;
  /** The status replied with; 0 while there is none (and for ever when the client went away first). */
  status = 0;
  /** The code of the error replied with, if any. */
  errorCode: ErrorCode | null = null;
  /** Headers every reply of this exchange carries (CORS for a listed origin). */
  headers: Record<string, string> | null = null;
  readonly #onFinish: (exchange: Exchange) => void;
  readonly #reading: BodyReading | undefined;
  /** Ends a body read in progress when the client goes away. */
  #abortRead: (() => void) | null = null;
  /** What readBody() read into, until releaseBody(). */
  #body: IncomingBody | null = null;

  /** `reading`: how bodies are read; an exchange without it never reads one. */
  constructor(res: HttpResponse, onFinish: (exchange: Exchange) => void, reading?: BodyReading) {
    this.res = res;
    this.#reading = reading;
    this.#onFinish = onFinish;
    res.onAborted(() => {
      this.aborted = true;
      this.#abortRead?.();
      this.#finish();
    });
  }

  /**
   * Reads the whole body, refusing more than `limit` bytes, more than the shared budget has room
   * for (503), a body still incomplete after the deadline, or one arriving slower than uWS allows
   * (both 408). The bytes may live in a reused buffer: see `bodyLent`.
   */
  readBody(limit: number, declaredLength: string): Promise<Buffer> {
    const declared = declaredLength === '' ? -1 : Number(declaredLength);
    if (declared > limit) return Promise.reject(tooLarge(limit));
    const reading = this.#reading;
    if (!reading) return Promise.reject(new Error('this exchange reads no body'));
    return new Promise((resolve, reject) => {
      const body = (this.#body = new IncomingBody(reading, declared, limit));
      const { deadlines } = reading;
      const now = performance.now();
      let paced = 0;
      const read: BodyRead = {
        startedAt: now,
        pacedAt: now,
        expire: (pace) => stop(pace ? tooSlowPaced(body.length) : tooSlow(deadlines.timeoutMs, body.length)),
      };
      const stop = (err: Error): void => {
        deadlines.forget(read);
        this.#abortRead = null;
        this.releaseBody();
        reject(err);
      };
      deadlines.watch(read);
      this.#abortRead = () => stop(new Error('the client went away before the body was complete'));
      this.res.onData((chunk, isLast) => {
        if (this.#abortRead === null) return; // refused already: the rest is not read
        if (body.length + chunk.byteLength > limit) return stop(tooLarge(limit));
        if (!body.append(chunk)) return stop(overBudget(reading.budget.limit));
        if (isLast) {
          deadlines.forget(read);
          this.#abortRead = null;
          return resolve(body.bytes);
        }
        paced += chunk.byteLength;
        if (paced >= PACE_BYTES) {
          paced = 0;
          read.pacedAt = performance.now();
        }
      });
    });
  }

  /** Whether the body readBody() gave lives in a reused buffer, to be copied before it is moved. */
  get bodyLent(): boolean {
    return this.#body?.lent ?? false;
  }

  /** Gives the body's memory back; call once nothing reads the body readBody() gave. */
  releaseBody(): void {
    this.#body?.release();
    this.#body = null;
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
      const common = this.headers;
      if (common) for (const name in common) this.res.writeHeader(name, common[name]);
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

  /**
   * The last resort of a request that failed where no error was expected: a 500 and a closed
   * connection if nothing was answered yet, nothing otherwise. Never throws.
   */
  fail(err: unknown): void {
    try {
      if (!this.done && !this.aborted) this.error(new TopTallyError('TOPTALLY_ERR_INTERNAL', `Internal error: ${err instanceof Error ? err.message : String(err)}`), {}, true);
    } catch {
      // the socket is gone: there is nobody left to answer
    }
    this.releaseBody();
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

function tooSlowPaced(received: number): TopTallyError {
  return new TopTallyError(
    'TOPTALLY_ERR_BODY_TIMEOUT',
    `The body arrives too slowly: under ${PACE_BYTES} bytes in ${PACE_MS} ms; ${received} bytes had arrived`,
    { limit: PACE_MS },
  );
}

function overBudget(limit: number): TopTallyError {
  return new TopTallyError(
    'TOPTALLY_ERR_BODIES_OVER_BUDGET',
    `The bodies in progress hold ${limit} bytes, the limit (--max-inflight-bytes); try again shortly`,
    { limit, retryAfter: 1 },
  );
}

function tooLarge(limit: number): TopTallyError {
  return new TopTallyError(
    'TOPTALLY_ERR_BODY_TOO_LARGE',
    `The body is larger than the limit of ${limit} bytes (--max-body)`,
    { limit },
  );
}
