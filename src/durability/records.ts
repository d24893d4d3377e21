// The payloads inside frames. A journal segment holds counter records, one per accepted request;
// a checkpoint holds window chunks (a shard's part of one window, packed as the shards exchange it)
// and idempotency chunks (the keys answered in the last ten minutes).

import { ByteReader, ByteWriter, DecodeError } from '../protocol/bytes.ts';
import type { WindowKind } from '../window.ts';
import { FRAME_HEADER_BYTES, sealFrame } from './frame.ts';

const COUNTERS = 1;
const WINDOW = 2;
const KEYS = 3;

/** What a request with an Idempotency-Key was answered, kept to answer its retries the same way. */
export interface KeyedAnswer {
  key: string;
  /** Hex digest of the request body: the same key with another body is refused. */
  fingerprint: string;
  /** The service clock (ms) when the answer was given; it counts for ten minutes from then. */
  atMs: number;
  accepted: number;
  counters: number;
}

/** One accepted request, as the journal keeps it: its validated entries, not its text. */
export interface CounterRecord {
  /** Log sequence number: records are numbered 1, 2, 3… without gaps across segments. */
  lsn: number;
  atMs: number;
  /** Objects in the request, for answering a retry. */
  accepted: number;
  key?: { key: string; fingerprint: string };
  domains: string[];
  counts: number[];
  minutes: number[];
}

export interface WindowChunk {
  window: WindowKind;
  index: number;
  /** The shard the entries came from, and how many shards there were: a different count re-partitions. */
  shard: number;
  shards: number;
  packed: Uint8Array;
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

export function encodeCounters(record: CounterRecord): Buffer {
  const { domains, counts, minutes } = record;
  const w = framed(64 + domains.length * 24);
  w.u8(COUNTERS);
  w.f64(record.lsn);
  w.f64(record.atMs);
  w.varint(record.accepted);
  w.string8(record.key?.key ?? '');
  if (record.key) w.bytes(Buffer.from(record.key.fingerprint, 'hex'));
  w.varint(domains.length);
  let minute = 0;
  for (let i = 0; i < domains.length; i++) {
    w.zigzag(minutes[i] - minute);
    minute = minutes[i];
    w.string8(domains[i]);
    w.varint(counts[i]);
  }
  return sealFrame(w.finish());
}

export function encodeWindowChunk(chunk: WindowChunk): Buffer {
  const w = framed(16 + chunk.packed.length);
  w.u8(WINDOW);
  w.u8(chunk.window === 'minute' ? 0 : 1);
  w.i32(chunk.index);
  w.u16(chunk.shard);
  w.u16(chunk.shards);
  w.bytes(chunk.packed);
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

const FINGERPRINT_BYTES = 16;

/** Throws DecodeError on bytes no encoder here wrote (a checksum collision or a bug). */
export function decodePayload(payload: Buffer): Payload {
  const r = new ByteReader(payload);
  const type = r.u8();
  switch (type) {
    case COUNTERS: {
      const lsn = r.f64();
      const atMs = r.f64();
      const accepted = r.varint();
      const key = r.string8();
      const fingerprint = key === '' ? '' : r.bytes(FINGERPRINT_BYTES).toString('hex');
      const n = r.varint();
      const domains: string[] = new Array(n);
      const counts: number[] = new Array(n);
      const minutes: number[] = new Array(n);
      let minute = 0;
      for (let i = 0; i < n; i++) {
        minute += r.zigzag();
        minutes[i] = minute;
        domains[i] = r.string8();
        counts[i] = r.varint();
      }
      const record: Payload = { type: 'counters', lsn, atMs, accepted, domains, counts, minutes };
      if (key !== '') record.key = { key, fingerprint };
      return end(r, record);
    }
    case WINDOW: {
      const window: WindowKind = r.u8() === 0 ? 'minute' : 'hour';
      const index = r.i32();
      const shard = r.u16();
      const shards = r.u16();
      if (shard >= shards) throw new DecodeError(`shard ${shard} of ${shards}`);
      return { type: 'window', window, index, shard, shards, packed: payload.subarray(r.position) };
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
