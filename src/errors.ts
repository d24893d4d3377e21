// One table of error codes: the same codes appear in HTTP bodies, WebSocket error frames and the docs
// (docs/errors.md; a test fails when a code is missing there).

export const ERRORS = {
  TOPTALLY_ERR_MALFORMED_JSON: { status: 400, message: 'The body is not valid JSON' },
  TOPTALLY_ERR_INVALID_COUNTER: { status: 400, message: 'A counter is invalid' },
  TOPTALLY_ERR_TIMESTAMP_TOO_OLD: { status: 400, message: 'A counter is older than the retention' },
  TOPTALLY_ERR_TIMESTAMP_IN_FUTURE: { status: 400, message: 'A counter is too far in the future' },
  TOPTALLY_ERR_INVALID_PARAMETER: { status: 400, message: 'A query parameter is invalid' },
  TOPTALLY_ERR_MALFORMED_MSGPACK: { status: 400, message: 'The frame is not valid MessagePack' },
  TOPTALLY_ERR_INVALID_MESSAGE: { status: 400, message: 'The WebSocket message is not one the server knows' },
  TOPTALLY_ERR_OUT_OF_RETENTION: { status: 400, message: 'The window asked for is outside the retention' },
  TOPTALLY_ERR_NOT_FOUND: { status: 404, message: 'No such path' },
  TOPTALLY_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed on this path' },
  TOPTALLY_ERR_BODY_TOO_LARGE: { status: 413, message: 'The body is larger than the limit' },
  TOPTALLY_ERR_FRAME_TOO_LARGE: { status: 413, message: 'The WebSocket message is larger than the limit' },
  TOPTALLY_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported content type' },
  TOPTALLY_ERR_TOO_MANY_IN_FLIGHT: { status: 429, message: 'Too many unacknowledged events messages' },
  TOPTALLY_ERR_SHARD_UNAVAILABLE: { status: 503, message: 'A shard worker is unavailable' },
  TOPTALLY_ERR_SLOW_CONSUMER: { status: 503, message: 'The connection reads too slowly' },
  TOPTALLY_ERR_SHUTTING_DOWN: { status: 503, message: 'The server is shutting down' },
  TOPTALLY_ERR_INTERNAL: { status: 500, message: 'Internal error' },
  TOPTALLY_ERR_UNAUTHORIZED: { status: 401, message: 'A valid token is required' },
  TOPTALLY_ERR_FORBIDDEN: { status: 403, message: 'The token does not allow this' },
  TOPTALLY_ERR_BODY_TIMEOUT: { status: 408, message: 'The body did not arrive in time' },
  TOPTALLY_ERR_IDLE_TIMEOUT: { status: 408, message: 'The connection was idle for too long' },
  TOPTALLY_ERR_TOO_MANY_COUNTERS: { status: 413, message: 'Too many counters in one request' },
  TOPTALLY_ERR_TOO_MANY_DOMAINS: { status: 413, message: 'Too many domains in one counter' },
  TOPTALLY_ERR_DOMAIN_TOO_LONG: { status: 400, message: 'A domain is longer than the limit' },
  TOPTALLY_ERR_NESTED_VALUE: { status: 400, message: 'A counter value is an object or an array' },
  TOPTALLY_ERR_TOO_MANY_CONNECTIONS: { status: 503, message: 'The server has as many connections as it takes' },
  TOPTALLY_ERR_OVERLOADED: { status: 503, message: 'The shards are behind; try again shortly' },
  TOPTALLY_ERR_INVALID_IDEMPOTENCY_KEY: { status: 400, message: 'The idempotency key is invalid' },
  TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'The idempotency key was used for a different request' },
  TOPTALLY_ERR_COUNT_OVERFLOW: { status: 422, message: 'The counters would take a window past 2^53 - 1, where counts stop being exact' },
  TOPTALLY_ERR_JOURNAL_FAILED: { status: 503, message: 'The journal cannot write to disk' },
  TOPTALLY_ERR_BODIES_OVER_BUDGET: { status: 503, message: 'The request bodies in progress hold as many bytes as the server takes' },
  TOPTALLY_ERR_DATA_DIR_IN_USE: { status: 500, message: 'Another process holds the data directory' },
  TOPTALLY_ERR_PORT_IN_USE: { status: 500, message: 'The port is in use' },
  TOPTALLY_ERR_HOST_NOT_ALLOWED: { status: 421, message: 'The server does not answer for this Host' },
  TOPTALLY_ERR_ORIGIN_NOT_ALLOWED: { status: 403, message: 'Requests from this web origin are refused' },
  TOPTALLY_ERR_BAD_FRAMING: { status: 400, message: 'The request framing is ambiguous' },
  TOPTALLY_ERR_INVALID_UTF8: { status: 400, message: 'The text is not valid UTF-8' },
  TOPTALLY_ERR_DATA_CORRUPT: { status: 500, message: 'The data directory is corrupt' },
  TOPTALLY_ERR_CLUSTER_UNAVAILABLE: { status: 503, message: 'Redis, which holds the shared windows, does not answer' },
  TOPTALLY_ERR_UNFLUSHED_LIMIT: { status: 503, message: 'Too many counters wait to reach Redis' },
  TOPTALLY_ERR_IDEMPOTENCY_KEY_HELD: { status: 503, message: 'The node that took the first request with this idempotency key does not answer' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Extra, machine-readable context: where in the input the problem is. */
export type ErrorDetails = { index?: number; line?: number; key?: string; limit?: number; [k: string]: unknown };

export class TopTallyError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message?: string, details: ErrorDetails = {}) {
    super(message ?? ERRORS[code].message);
    this.name = 'TopTallyError';
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  /** The shape errors take on the wire: HTTP bodies, WebSocket frames and across threads. */
  toJSON(): ErrorBody {
    return { code: this.code, message: this.message, ...this.details };
  }
}

export type ErrorBody = { code: ErrorCode; message: string } & ErrorDetails;

export function toTopTallyError(err: unknown): TopTallyError {
  if (err instanceof TopTallyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TopTallyError('TOPTALLY_ERR_INTERNAL', message);
}

export function fromErrorBody(body: ErrorBody): TopTallyError {
  const { code, message, ...details } = body;
  return new TopTallyError(code in ERRORS ? code : 'TOPTALLY_ERR_INTERNAL', message, details);
}
