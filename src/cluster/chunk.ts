// A chunk: one partition's pre-aggregated share of this node's journal records (lo, hi], as a
// tt_flush call sends it. Deltas are kept per minute and domain (found by hash, compared by bytes);
// each minute's deltas reach its hour too, in Redis (at once, or when the minute is folded).

import { minuteToHour, type WindowKind } from '../window.ts';
import { cesu8Bytes } from './cesu8.ts';
import { packPairs } from './pairs-pack.ts';
import type { Arg } from './redis-link.ts';

/**
 * Distinct (minute, domain) entries after which a chunk takes no more records: bounds one batch's
 * time in Redis (and so a call's, see flush-calls.ts), except for a single record larger than
 * that, which goes whole.
 */
const CHUNK_ENTRIES = 2000;

export interface Chunk {
  hi: number;
  /** Minute index → domain hash → its deltas; the hours are summed from them when sent. */
  minutes: Map<number, Map<number, Delta>>;
  entries: number;
  sealed: boolean;
}

/** A domain's delta in one minute of a chunk; `next` chains domains whose hashes collide. */
interface Delta {
  /** The domain in CESU-8, as Redis stores it. */
  member: Buffer;
  delta: number;
  next?: Delta;
}

export function minutesOf(chunk: Chunk): number[] {
  return [...chunk.minutes.keys()];
}

export function emptyChunk(hi: number, sealed: boolean): Chunk {
  return { hi, minutes: new Map(), entries: 0, sealed };
}

/**
 * The chunk the entries of record `lsn` go to: the last one, unless it is sealed (sent) or full. A
 * full chunk still takes the rest of a record it holds part of: chunks split only between records,
 * since a chunk is applied by the LSN range it covers, and a second chunk ending at the same LSN
 * would be taken for a duplicate.
 */
export function openChunk(chunks: Chunk[], lsn: number): Chunk {
  let chunk = chunks[chunks.length - 1];
  if (!chunk || chunk.sealed || (chunk.entries >= CHUNK_ENTRIES && chunk.hi !== lsn)) {
    chunk = emptyChunk(lsn, false);
    chunks.push(chunk);
  }
  chunk.hi = lsn;
  return chunk;
}

/**
 * Adds the delta of the domain `names[start..end)` (UTF-8) with FNV hash `hash`; 1 when the domain is
 * new to the minute. Found by hash and compared by bytes, so the member is built once per domain and
 * chunk, not once per entry.
 */
export function addDelta(members: Map<number, Delta>, hash: number, names: Buffer, start: number, end: number, delta: number): number {
  const first = members.get(hash);
  for (let d = first; d; d = d.next) {
    if (sameName(d.member, names, start, end)) {
      d.delta += delta;
      return 0;
    }
  }
  members.set(hash, { member: cesu8Bytes(names, start, end), delta, next: first });
  return 1;
}

function sameName(member: Buffer, names: Buffer, start: number, end: number): boolean {
  if (member.length !== end - start) return member.equals(cesu8Bytes(names, start, end)); // astral characters: CESU-8 is longer
  for (let i = 0; i < member.length; i++) if (member[i] !== names[start + i]) return false;
  return true;
}

/**
 * The chunk's part of a tt_flush call (see library.ts): the partition's tag, lo, hi and number of
 * minutes, then per minute its index, its hour, whether it is closed, the TTLs, the sum of its
 * deltas and each domain's delta once (packed, see pairs-pack.ts). Minutes before `openMinute`
 * (this node's current one) are closed: the function may add their deltas to the hour at once.
 */
export function flushArgs(chunk: Chunk, tag: string, lo: number, openMinute: number, ttl: (kind: WindowKind, index: number) => number): Arg[] {
  const args: Arg[] = [tag, String(lo), String(chunk.hi), String(chunk.minutes.size)];
  for (const [minute, members] of chunk.minutes) {
    const hour = minuteToHour(minute);
    let sum = 0;
    const names: Buffer[] = [];
    const deltas: number[] = [];
    for (const first of members.values()) {
      for (let d: Delta | undefined = first; d; d = d.next) {
        sum += d.delta;
        names.push(d.member);
        deltas.push(d.delta);
      }
    }
    args.push(String(minute), String(hour), minute < openMinute ? '1' : '0', String(ttl('minute', minute)), String(ttl('hour', hour)), String(sum), packPairs(names, deltas));
  }
  return args;
}
