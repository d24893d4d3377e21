// The fast path of decodeParts. For batch bodies, JSON.parse plus validate's hashing were most of the
// main thread's time, and most of the objects and strings they built were dropped straight away: a
// shard part needs only each domain's UTF-8 bytes, its FNV-1a hash, the count and the minute. This
// scanner checks the body's bytes while it reads them and writes entries straight into the
// Partitioner, with no objects or strings in between.
//
// It takes only plain input and returns exactly what the slow path (decode + validate) would. On
// anything else it returns undefined and the slow path decodes the body again and writes the error,
// so every error message still comes from one place. It gives up on: a backslash escape, a control
// byte, DEL or a byte >= 0x80 in a key (the body is then pure ASCII, so its bytes are its text and a
// key's bytes are its UTF-8); a number that is not plain digits (sign, fraction, exponent, leading
// zero) or has more than 15 digits (so it is a safe integer); a value that is not such a number,
// except a timestamp given as a string of 1-15 digits without leading zeros; a nested value; an
// empty key; a key of digits only (an array index, which an object lists first, out of text order);
// a duplicate key (refused by the slow path); more than 63 domains in an object; no timestamp, or one out of bounds; any
// input limit exceeded; anything else that is not a plain object, array of objects, or NDJSON line.

import { FNV_OFFSET, FNV_PRIME, hashDomain } from '../routing/hash.ts';
import { Partitioner, type Partitioned } from '../routing/partition.ts';
import type { DecodeTask } from './decode-parts.ts';
import type { InputLimits, TimeBounds } from './validate.ts';

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const ZERO = 0x30;
const ONE = 0x31;
const NINE = 0x39;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const DEL = 0x7f;
/** skipSpace()'s answer at the end of the range. */
const END = -1;

const TIMESTAMP = Buffer.from('timestamp');
const TIMESTAMP_HASH = hashDomain('timestamp');
/** Keeps the duplicate check (each key against the object's earlier ones) small. */
const MAX_DOMAINS = 63;
/** Digits in a number this scanner takes: below 2^53, so the value is exact. */
const MAX_DIGITS = 15;

// One object's domains, held until its '}' because the timestamp (hence the minute) may come last.
// Module-level and reused: a thread runs one scan at a time.
const starts = new Int32Array(MAX_DOMAINS);
const ends = new Int32Array(MAX_DOMAINS);
const hashes = new Uint32Array(MAX_DOMAINS);
const counts = new Float64Array(MAX_DOMAINS);

/** The body's parts, exactly as the slow path would give them, or undefined: "use the slow path". */
export function fastDecodeParts(task: DecodeTask): Partitioned | undefined {
  const scanner = new Scanner(task.body, task.bounds, task.limits, new Partitioner(task.shards));
  const taken = task.format === 'json' ? scanner.json() : scanner.ndjson();
  return taken ? scanner.out.finish(scanner.counters) : undefined;
}

class Scanner {
  readonly body: Uint8Array;
  readonly bounds: TimeBounds;
  readonly limits: InputLimits;
  readonly out: Partitioner;
  counters = 0;
  pos = 0;
  /** Where the current range ends: the body, or an NDJSON line. */
  end: number;

  constructor(body: Uint8Array, bounds: TimeBounds, limits: InputLimits, out: Partitioner) {
    this.body = body;
    this.bounds = bounds;
    this.limits = limits;
    this.out = out;
    this.end = body.length;
  }

  json(): boolean {
    let c = this.skipSpace();
    if (c === LBRACE) {
      if (!this.object()) return false;
    } else if (c === LBRACKET) {
      this.pos++;
      c = this.skipSpace();
      if (c !== RBRACKET) {
        for (;;) {
          if (c !== LBRACE || !this.object()) return false;
          c = this.skipSpace();
          if (c === RBRACKET) break;
          if (c !== COMMA) return false;
          this.pos++;
          c = this.skipSpace();
        }
      }
      this.pos++;
    } else {
      return false;
    }
    return this.skipSpace() === END;
  }

  ndjson(): boolean {
    const body = this.body;
    const length = body.length;
    // The lines are split as decode.ts splits the text: the body is ASCII if this scan succeeds.
    for (let start = 0; start < length; ) {
      let lineEnd = body.indexOf(LF, start);
      if (lineEnd < 0) lineEnd = length;
      this.pos = start;
      this.end = lineEnd;
      const c = this.skipSpace();
      if (c !== END && (c !== LBRACE || !this.object() || this.skipSpace() !== END)) return false;
      start = lineEnd + 1;
    }
    return true;
  }

  /** Moves past JSON whitespace; the byte there, or END. */
  skipSpace(): number {
    const body = this.body;
    const end = this.end;
    let p = this.pos;
    while (p < end) {
      const c = body[p];
      if (c !== SPACE && c !== LF && c !== CR && c !== TAB) {
        this.pos = p;
        return c;
      }
      p++;
    }
    this.pos = p;
    return END;
  }

  /** One counter, from its '{'; its entries go to `out` only once all of it checked out. */
  object(): boolean {
    if (++this.counters > this.limits.counters) return false;
    const body = this.body;
    const end = this.end;
    let timestamp = -1;
    let n = 0;
    this.pos++;
    let c = this.skipSpace();
    for (;;) {
      if (c !== QUOTE) return false; // also the '}' of an empty object, which has no timestamp
      const start = this.pos + 1;
      let p = start;
      let h = FNV_OFFSET;
      for (;;) {
        if (p >= end) return false;
        c = body[p];
        if (c === QUOTE) break;
        if (c < SPACE || c === BACKSLASH || c >= DEL) return false;
        h = Math.imul(h ^ c, FNV_PRIME);
        p++;
      }
      const keyEnd = p;
      h >>>= 0;
      this.pos = p + 1;
      if (this.skipSpace() !== COLON) return false;
      this.pos++;
      c = this.skipSpace();
      if (h === TIMESTAMP_HASH && isTimestamp(body, start, keyEnd)) {
        if (timestamp >= 0) return false;
        timestamp = c === QUOTE ? this.digitString() : this.integer(c);
        if (timestamp < 0) return false;
      } else {
        const length = keyEnd - start;
        if (length === 0 || length > this.limits.domainBytes || n === MAX_DOMAINS) return false;
        if (allDigits(body, start, keyEnd)) return false;
        for (let i = 0; i < n; i++) {
          if (hashes[i] === h && ends[i] - starts[i] === length && sameBytes(body, starts[i], body, start, length)) return false;
        }
        const count = this.integer(c);
        if (count < 0) return false;
        starts[n] = start;
        ends[n] = keyEnd;
        hashes[n] = h;
        counts[n] = count;
        n++;
      }
      c = this.skipSpace();
      if (c === RBRACE) break;
      if (c !== COMMA) return false;
      this.pos++;
      c = this.skipSpace();
    }
    this.pos++;
    const { oldest, newest } = this.bounds;
    if (timestamp < 0 || timestamp < oldest || timestamp > newest || n > this.limits.domains) return false;
    const minute = Math.floor(timestamp / 60);
    for (let i = 0; i < n; i++) this.out.addBytes(hashes[i], body, starts[i], ends[i], counts[i], minute);
    return true;
  }

  /**
   * A plain non-negative integer starting with `c`, or -1. A leading "0" is read alone: whatever
   * follows it ("01", "0.5") is then not a ',' or '}', and the caller gives up.
   */
  integer(c: number): number {
    if (c === ZERO) {
      this.pos++;
      return 0;
    }
    if (c < ONE || c > NINE) return -1;
    const first = this.pos;
    const value = this.digits();
    return this.pos - first > MAX_DIGITS ? -1 : value;
  }

  /** A timestamp string, from its '"': digits without leading zeros, as validate takes them. */
  digitString(): number {
    const first = ++this.pos;
    const value = this.digits();
    const p = this.pos;
    if (p === first || p - first > MAX_DIGITS || p >= this.end || this.body[p] !== QUOTE) return -1;
    if (this.body[first] === ZERO && p - first > 1) return -1; // leading zeros: refused by the slow path
    this.pos = p + 1;
    return value;
  }

  digits(): number {
    const body = this.body;
    const end = this.end;
    let p = this.pos;
    let value = 0;
    while (p < end) {
      const d = body[p];
      if (d < ZERO || d > NINE) break;
      value = value * 10 + (d - ZERO);
      p++;
    }
    this.pos = p;
    return value;
  }
}

function isTimestamp(body: Uint8Array, start: number, end: number): boolean {
  return end - start === TIMESTAMP.length && sameBytes(body, start, TIMESTAMP, 0, TIMESTAMP.length);
}

function allDigits(body: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (body[i] < ZERO || body[i] > NINE) return false;
  return true;
}

function sameBytes(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}
