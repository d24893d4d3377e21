// The payloads inside frames. A journal segment holds counter records, one per accepted request,
// carrying the request's shard parts as they are (protocol/shard-part.ts); a checkpoint holds window
// chunks (one shard's part of one window) and idempotency chunks (the keys answered in the last ten
// minutes). Parts are stored byte for byte, so writing one is a copy and recovery hands them back
// to the shards without parsing them, as long as the shard count is the same.

import { partBytes, type ShardPart } from '../protocol/shard-part.ts';
import type { WindowKind } from '../window.ts';
import { ByteReader, ByteWriter, DecodeError } from './bytes.ts';
import { FRAME_HEADER_BYTES, sealFrame, sealFrameAt } from './frame.ts';

const COUNTERS = 1;
const WINDOW = 2;
const KEYS = 3;
const FINGERPRINT_BYTES = 16;

/** What a request with an Idempotency-Key was answered, kept to answer its retries the same way. */
export interface KeyedAnswer {
  key: string;
  /** Hex digest of the request: the same key with another request is refused. */
  fingerprint: string;
  /** The service clock (ms) when the answer was given; it counts for ten minutes from then. */
  atMs: number;
  accepted: number;
  counters: number;
}

/** One accepted request, as the journal keeps it. */
export interface CounterRecord {
  /** Log sequence number: records are numbered 1, 2, 3… without gaps across segments. */
  lsn: number;
  atMs: number;
  /** Counter objects and domain entries in the request: its answer. */
  counters: number;
  entries: number;
  key?: { key: string; fingerprint: string };
  /** The shard count the parts were made for. */
  shards: number;
  /** parts[s] holds shard s's entries, or is undefined when there are none for it. */
  parts: (ShardPart | undefined)[];
  /** The minutes the request touched (their hours follow). */
  minutes: number[];
}

export interface WindowChunk {
  window: WindowKind;
  index: number;
  /** The shard the entries came from, and how many shards there were: a different count re-partitions. */
  shard: number;
  shards: number;
  part: ShardPart;
}

export type Payload =
  | ({ type: 'counters' } & CounterRecord)
  | ({ type: 'window' } & WindowChunk)
  | { type: 'keys'; answers: KeyedAnswer[] };

function framed(capacity: number): ByteWriter {
  const writer = new ByteWriter(FRAME_HEADER_BYTES + capacity);
  for (let i = 0; i < FRAME_HEADER_BYTES; i++) writer.u8(0);
  return writer;
}

function writePart(w: ByteWriter, part: ShardPart): void {
  w.varint(part.entries);
  const bytes = partBytes(part);
  w.varint(bytes.length);
  w.bytes(bytes);
}

/** A part copied out of the payload into its own buffer, which can be moved to a shard. */
function readPart(r: ByteReader): ShardPart {
  const entries = r.varint();
  const bytes = r.bytes(r.varint());
  if (bytes.length < 20 * entries) throw new DecodeError(`a part of ${entries} entries in ${bytes.length} bytes`);
  return { entries, buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer };
}

/** A record's frame on its own (the journal writes frames straight into its buffer: writeCounters). */
export function encodeCounters(record: CounterRecord): Buffer {
  const w = new ByteWriter();
  writeCounters(w, record, record.lsn);
  return w.finish();
}

/**
 * Appends the frame of `record`, numbered `lsn`, to `w`: the journal encodes straight into its
 * write buffer, one record per request, numbering it as it goes instead of copying it.
 */
export function writeCounters(w: ByteWriter, record: Omit<CounterRecord, 'lsn'>, lsn: number): void {
  const start = w.length;
  for (let i = 0; i < FRAME_HEADER_BYTES; i++) w.u8(0);
  w.u8(COUNTERS);
  w.f64(lsn);
  w.f64(record.atMs);
  w.varint(record.counters);
  w.varint(record.entries);
  const key = record.key;
  if (key) {
    w.string8(key.key);
    w.bytes(Buffer.from(key.fingerprint, 'hex'));
  } else {
    w.u8(0); // string8('')
  }
  const { minutes, parts } = record;
  w.varint(minutes.length);
  let minute = 0;
  for (let i = 0; i < minutes.length; i++) {
    w.zigzag(minutes[i] - minute);
    minute = minutes[i];
  }
  w.u16(record.shards);
  let present = 0;
  for (let shard = 0; shard < parts.length; shard++) if (parts[shard] !== undefined) present++;
  w.varint(present);
  for (let shard = 0; shard < parts.length; shard++) {
    const part = parts[shard];
    if (part === undefined) continue;
    w.u16(shard);
    writePart(w, part);
  }
  sealFrameAt(w.buffer, start, w.length);
}

export function encodeWindowChunk(chunk: WindowChunk): Buffer {
  const w = framed(32 + chunk.part.buffer.byteLength);
  w.u8(WINDOW);
  w.u8(chunk.window === 'minute' ? 0 : 1);
  w.i32(chunk.index);
  w.u16(chunk.shard);
  w.u16(chunk.shards);
  writePart(w, chunk.part);
  return sealFrame(w.finish());
}

export function encodeKeys(answers: readonly KeyedAnswer[]): Buffer {
  const w = framed(answers.length * 64);
  w.u8(KEYS);
  w.varint(answers.length);
  for (const a of answers) {
    w.string8(a.key);
    w.bytes(Buffer.from(a.fingerprint, 'hex'));
    w.f64(a.atMs);
    w.varint(a.accepted);
    w.varint(a.counters);
  }
  return sealFrame(w.finish());
}

/** Throws DecodeError on bytes no encoder here wrote (a checksum collision or a bug). */
export function decodePayload(payload: Buffer): Payload {
  const r = new ByteReader(payload);
  const type = r.u8();
  switch (type) {
    case COUNTERS: {
      const lsn = r.f64();
      const atMs = r.f64();
      const counters = r.varint();
      const entries = r.varint();
      const key = r.string8();
      const fingerprint = key === '' ? '' : r.bytes(FINGERPRINT_BYTES).toString('hex');
      const minutes: number[] = new Array(r.varint());
      let minute = 0;
      for (let i = 0; i < minutes.length; i++) minutes[i] = minute += r.zigzag();
      const shards = r.u16();
      const parts: (ShardPart | undefined)[] = new Array(shards);
      for (let n = r.varint(); n > 0; n--) {
        const shard = r.u16();
        if (shard >= shards) throw new DecodeError(`part for shard ${shard} of ${shards}`);
        parts[shard] = readPart(r);
      }
      const record: Payload = { type: 'counters', lsn, atMs, counters, entries, shards, parts, minutes };
      if (key !== '') record.key = { key, fingerprint };
      return end(r, record);
    }
    case WINDOW: {
      const window: WindowKind = r.u8() === 0 ? 'minute' : 'hour';
      const index = r.i32();
      const shard = r.u16();
      const shards = r.u16();
      if (shard >= shards) throw new DecodeError(`shard ${shard} of ${shards}`);
      return end(r, { type: 'window', window, index, shard, shards, part: readPart(r) });
    }
    case KEYS: {
      const answers: KeyedAnswer[] = new Array(r.varint());
      for (let i = 0; i < answers.length; i++) {
        const key = r.string8();
        const fingerprint = r.bytes(FINGERPRINT_BYTES).toString('hex');
        answers[i] = { key, fingerprint, atMs: r.f64(), accepted: r.varint(), counters: r.varint() };
      }
      return end(r, { type: 'keys', answers });
    }
    default:
      throw new DecodeError(`unknown record type ${type}`);
  }
}

function end<T>(r: ByteReader, value: T): T {
  if (!r.done) throw new DecodeError(`trailing bytes at ${r.position}`);
  return value;
}
