// Body bytes to per-shard parts: the stateless work of ingest, run on the main thread for small
// bodies and on the decode pool for large ones. Errors come back as data, never as a crash.

import type { ErrorBody } from '../errors.ts';
import { toTopTallyError, TopTallyError } from '../errors.ts';
import type { Partitioned } from '../routing/partition.ts';
import { decode, type BodyFormat } from './decode.ts';
import { fastDecodeParts } from './fast-decode.ts';
import { checkStrictJson } from './strict-json.ts';
import { validate, type InputLimits, type TimeBounds } from './validate.ts';

export interface DecodeTask {
  body: Uint8Array;
  format: BodyFormat;
  bounds: TimeBounds;
  shards: number;
  limits: InputLimits;
}

export type DecodeOutcome = { ok: true; value: Partitioned } | { ok: false; error: ErrorBody };

// fatal: a byte string that is not UTF-8 would be stored as U+FFFD, merging different domains.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeParts(task: DecodeTask): DecodeOutcome {
  try {
    return { ok: true, value: fastDecodeParts(task) ?? slowDecodeParts(task) };
  } catch (err) {
    return { ok: false, error: toTopTallyError(err).toJSON() };
  }
}

/** Every body, every error: the reference the fast path must match (it throws a TopTallyError). */
export function slowDecodeParts(task: DecodeTask): Partitioned {
  const text = decodeUtf8(task.body);
  const decoded = decode(text, task.format);
  checkStrictJson(text, task.format, decoded);
  return validate(decoded, task.bounds, task.shards, task.limits);
}

function decodeUtf8(body: Uint8Array): string {
  try {
    return utf8.decode(body);
  } catch {
    throw new TopTallyError('TOPTALLY_ERR_INVALID_UTF8', 'The body is not valid UTF-8: a domain must be UTF-8 text, not other bytes');
  }
}
