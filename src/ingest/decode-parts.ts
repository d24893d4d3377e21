// Body bytes to per-shard parts: the stateless work of ingest, run on the main thread for small
// bodies and on the decode pool for large ones. Errors come back as data, never as a crash.

import type { ErrorBody } from '../errors.ts';
import { toTopTallyError } from '../errors.ts';
import type { Partitioned } from '../routing/partition.ts';
import { decode, type BodyFormat } from './decode.ts';
import { fastDecodeParts } from './fast-decode.ts';
import { validate, type InputLimits, type TimeBounds } from './validate.ts';

export interface DecodeTask {
  body: Uint8Array;
  format: BodyFormat;
  bounds: TimeBounds;
  shards: number;
  limits: InputLimits;
}

export type DecodeOutcome = { ok: true; value: Partitioned } | { ok: false; error: ErrorBody };

const utf8 = new TextDecoder();

export function decodeParts(task: DecodeTask): DecodeOutcome {
  try {
    return { ok: true, value: fastDecodeParts(task) ?? slowDecodeParts(task) };
  } catch (err) {
    return { ok: false, error: toTopTallyError(err).toJSON() };
  }
}

/** Every body, every error: the reference the fast path must match (it throws a TopTallyError). */
export function slowDecodeParts(task: DecodeTask): Partitioned {
  return validate(decode(utf8.decode(task.body), task.format), task.bounds, task.shards, task.limits);
}
