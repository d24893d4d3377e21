// Candidate counters to per-shard parts, all or nothing: the first invalid counter rejects the whole
// request with a reason and its place, before anything reaches a shard. A counter is a JSON object or,
// from MessagePack, a Map; both pass the same rules.

import { TopTallyError, type ErrorCode, type ErrorDetails } from '../errors.ts';
import { hashDomain } from '../routing/hash.ts';
import { Partitioner, type Partitioned } from '../routing/partition.ts';
import type { Decoded } from './decode.ts';

/** What one request may hold (--max-counters, --max-domains, --max-domain-bytes); each has its own error. */
export interface InputLimits {
  counters: number;
  domains: number;
  domainBytes: number;
}

export const DEFAULT_LIMITS: InputLimits = { counters: 100_000, domains: 10_000, domainBytes: 255 };

export interface TimeBounds {
  /** The oldest Unix second still accepted (the start of the oldest retained hour). */
  oldest: number;
  /** The newest Unix second accepted. */
  newest: number;
  /** Why the bounds are where they are, for the error messages: --retain-hours and --max-future. */
  retainHours: number;
  maxFuture: number;
}

/** Unix seconds in ISO 8601, to the second: 2021-11-04T12:54:16Z. */
export const isoSeconds = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

const tooOld = (ts: number, { oldest, retainHours }: TimeBounds): string =>
  `timestamp ${ts} (${isoSeconds(ts)}) is older than the retention: the open hour and the ${retainHours} closed ` +
  `hour${retainHours === 1 ? '' : 's'} before it are kept, so the oldest accepted is ${oldest} (${isoSeconds(oldest)}); ` +
  `--retain-hours keeps more`;

const tooNew = (ts: number, { newest, maxFuture }: TimeBounds): string =>
  `timestamp ${ts} (${isoSeconds(ts)}) is more than ${maxFuture} seconds ahead of the server's clock, so after the ` +
  `newest accepted, ${newest} (${isoSeconds(newest)}); --max-future allows more`;

/** A timestamp string: digits, without leading zeros (which some readers take for octal). */
const DIGITS = /^(0|[1-9][0-9]{0,15})$/;
/** C0 and C1 controls and DEL: invisible, and a NUL ends the name in C tools that read it. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function validate(decoded: Decoded, bounds: TimeBounds, shards: number, limits = DEFAULT_LIMITS): Partitioned {
  const { items } = decoded;
  if (items.length > limits.counters) {
    throw new TopTallyError(
      'TOPTALLY_ERR_TOO_MANY_COUNTERS',
      `${items.length} counters, over the limit of ${limits.counters} in one request (--max-counters)`,
      { limit: limits.counters },
    );
  }
  const out = new Partitioner(shards);
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      fail(decoded, i, 'TOPTALLY_ERR_INVALID_COUNTER', `A counter must be a JSON object, not ${describe(item)}`);
    }
    // MessagePack counters arrive as Maps: msgpackr would rename a "__proto__" key in an object.
    const map = item instanceof Map ? (item as Map<unknown, unknown>) : undefined;
    const counter = item as Record<string, unknown>;
    const hasTimestamp = map ? map.has('timestamp') : Object.hasOwn(counter, 'timestamp');
    const rawTimestamp = map ? map.get('timestamp') : counter.timestamp;
    const ts = hasTimestamp ? timestampOf(rawTimestamp) : undefined;
    if (ts === undefined) {
      const message = hasTimestamp
        ? `"timestamp" must be Unix seconds, an integer or a string of digits (no leading zeros), not ${describe(rawTimestamp)}`
        : 'The counter has no "timestamp"';
      fail(decoded, i, 'TOPTALLY_ERR_INVALID_COUNTER', message, 'timestamp');
    }
    if (ts < bounds.oldest) {
      fail(decoded, i, 'TOPTALLY_ERR_TIMESTAMP_TOO_OLD', tooOld(ts, bounds), 'timestamp');
    }
    if (ts > bounds.newest) {
      fail(decoded, i, 'TOPTALLY_ERR_TIMESTAMP_IN_FUTURE', tooNew(ts, bounds), 'timestamp');
    }
    const minute = Math.floor(ts / 60);
    const keys = map ? undefined : Object.keys(counter);
    const domains = (map ? map.size : keys!.length) - 1;
    if (domains > limits.domains) {
      const message = `${domains} domains, over the limit of ${limits.domains} in one counter (--max-domains)`;
      fail(decoded, i, 'TOPTALLY_ERR_TOO_MANY_DOMAINS', message, undefined, { limit: limits.domains });
    }
    if (map) for (const [key, value] of map) addEntry(out, key, value, minute, decoded, i, limits);
    else for (const key of keys!) addEntry(out, key, counter[key], minute, decoded, i, limits);
  }
  return out.finish(items.length);
}

function addEntry(out: Partitioner, rawKey: unknown, value: unknown, minute: number, decoded: Decoded, i: number, limits: InputLimits): void {
  if (rawKey === 'timestamp') return;
  if (typeof rawKey !== 'string') {
    fail(decoded, i, 'TOPTALLY_ERR_INVALID_COUNTER', `A domain must be a string, not ${describe(rawKey)}`, String(rawKey));
  }
  const key = rawKey as string;
  if (typeof value === 'object' && value !== null) {
    const message = `The count of ${JSON.stringify(key)} must be a number; a counter is flat, not ${describe(value)}`;
    fail(decoded, i, 'TOPTALLY_ERR_NESTED_VALUE', message, key);
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    const message = `The count of ${JSON.stringify(key)} must be a non-negative integer, not ${describe(value)}`;
    fail(decoded, i, 'TOPTALLY_ERR_INVALID_COUNTER', message, key);
  }
  if (key.length === 0) fail(decoded, i, 'TOPTALLY_ERR_INVALID_COUNTER', 'A domain must not be empty', key);
  if (CONTROL.test(key)) fail(decoded, i, 'TOPTALLY_ERR_INVALID_COUNTER', 'A domain must not hold control characters (U+0000-U+001F, U+007F-U+009F)', key);
  const hash = hashDomain(key);
  if (hash < 0) fail(decoded, i, 'TOPTALLY_ERR_INVALID_COUNTER', 'A domain must be valid Unicode text', key);
  // A UTF-16 unit is at most 3 UTF-8 bytes, so short keys need no byte count.
  if (key.length > limits.domainBytes / 3 && Buffer.byteLength(key) > limits.domainBytes) {
    const message = `A domain must be at most ${limits.domainBytes} UTF-8 bytes (--max-domain-bytes)`;
    fail(decoded, i, 'TOPTALLY_ERR_DOMAIN_TOO_LONG', message, key.slice(0, 64), { limit: limits.domainBytes });
  }
  out.add(hash, key, value as number, minute);
}

function fail(decoded: Decoded, i: number, code: ErrorCode, message: string, key?: string, extra: ErrorDetails = {}): never {
  const details: ErrorDetails = { ...decoded.where(i), ...extra };
  if (key !== undefined) details.key = key;
  throw new TopTallyError(code, message, details);
}

function timestampOf(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value === 'string' && DIGITS.test(value)) return Number(value);
  return undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return `${typeof value} ${String(value)}`;
}
