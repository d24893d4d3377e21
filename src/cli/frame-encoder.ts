// NDJSON lines to one MessagePack events message, `{"type": "events", "id", "events": [...]}`.
// JSON.parse of a counter costs more than the server spends on it (every domain is a new property
// name for V8), so a flat object whose keys and string values are plain ASCII and whose numbers are
// non-negative integers is copied byte for byte into a MessagePack map. Any other line goes through
// JSON.parse and msgpackr, which also gives its error message when the line is not JSON.

import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const ZERO = 0x30;
const NINE = 0x39;
const MAX_DIGITS = 15; // below 2^53, so the number is exact

// fixmap(3) "type" "events" "id" uint32(id) "events" array32(count)
const HEADER = Buffer.from([
  0x83, 0xa4, ...Buffer.from('type'), 0xa6, ...Buffer.from('events'),
  0xa2, ...Buffer.from('id'), 0xce, 0, 0, 0, 0,
  0xa6, ...Buffer.from('events'), 0xdd, 0, 0, 0, 0,
]);
const ID_AT = 1 + 5 + 7 + 3 + 1;
const COUNT_AT = HEADER.length - 4;

export class NotJsonError extends Error {
  override name = 'NotJsonError';
}

export class FrameEncoder {
  #buf = Buffer.allocUnsafe(64 * 1024);
  #pos = HEADER.length;
  #count = 0;

  get count(): number {
    return this.#count;
  }

  /**
   * Appends the line bytes[start, end) as one event and returns true, or false for a blank line;
   * throws NotJsonError when it is not JSON.
   */
  add(bytes: Buffer, start: number, end: number): boolean {
    if (skip(bytes, start, end) === end) return false;
    const mark = this.#pos;
    if (!this.#flat(bytes, start, end)) {
      this.#pos = mark;
      let value: unknown;
      try {
        value = JSON.parse(bytes.toString('utf8', start, end));
      } catch (err) {
        throw new NotJsonError((err as Error).message);
      }
      const packed = packr.pack(value);
      this.#ensure(packed.length);
      this.#pos += packed.copy(this.#buf, this.#pos);
    }
    this.#count++;
    return true;
  }

  /** The message holding every event added since the last call, under `id`. */
  finish(id: number): Buffer {
    HEADER.copy(this.#buf, 0);
    this.#buf.writeUInt32BE(id >>> 0, ID_AT);
    this.#buf.writeUInt32BE(this.#count, COUNT_AT);
    const frame = this.#buf.subarray(0, this.#pos);
    this.#buf = Buffer.allocUnsafe(Math.max(64 * 1024, this.#pos + (this.#pos >> 2)));
    this.#pos = HEADER.length;
    this.#count = 0;
    return frame;
  }

  /** Writes a flat object as a map; false (with junk after the mark) for anything else. */
  #flat(src: Buffer, start: number, end: number): boolean {
    let i = skip(src, start, end);
    if (src[i] !== OPEN) return false;
    const mapAt = this.#pos;
    this.#ensure(3);
    this.#pos += 3; // map16 header, written once the entries are counted
    let entries = 0;
    i = skip(src, i + 1, end);
    if (src[i] === CLOSE && i < end) {
      i++;
    } else {
      for (;;) {
        if (src[i] !== QUOTE || i >= end) return false;
        const keyEnd = asciiStringEnd(src, i + 1, end);
        if (keyEnd < 0) return false;
        this.#str(src, i + 1, keyEnd);
        i = skip(src, keyEnd + 1, end);
        if (src[i] !== COLON || i >= end) return false;
        i = skip(src, i + 1, end);
        const c = src[i];
        if (i >= end) return false;
        if (c === QUOTE) {
          const valueEnd = asciiStringEnd(src, i + 1, end);
          if (valueEnd < 0) return false;
          this.#str(src, i + 1, valueEnd);
          i = valueEnd + 1;
        } else if (c >= ZERO && c <= NINE) {
          let j = i;
          let value = 0;
          for (; j < end && src[j] >= ZERO && src[j] <= NINE; j++) value = value * 10 + (src[j] - ZERO);
          // Leading zeros, fractions and exponents are JSON.parse's business.
          if (j - i > MAX_DIGITS || (c === ZERO && j - i > 1)) return false;
          if (j < end && (src[j] === 0x2e || src[j] === 0x65 || src[j] === 0x45)) return false;
          this.#uint(value);
          i = j;
        } else {
          return false;
        }
        entries++;
        i = skip(src, i, end);
        if (i >= end) return false;
        if (src[i] === COMMA) {
          i = skip(src, i + 1, end);
          continue;
        }
        if (src[i] !== CLOSE) return false;
        i++;
        break;
      }
    }
    if (skip(src, i, end) !== end || entries > 0xffff) return false;
    this.#buf[mapAt] = 0xde;
    this.#buf.writeUInt16BE(entries, mapAt + 1);
    return true;
  }

  #str(src: Buffer, from: number, to: number): void {
    const length = to - from;
    this.#ensure(length + 5);
    const buf = this.#buf;
    if (length < 32) {
      buf[this.#pos++] = 0xa0 | length;
    } else if (length < 256) {
      buf[this.#pos++] = 0xd9;
      buf[this.#pos++] = length;
    } else if (length < 65536) {
      buf[this.#pos++] = 0xda;
      buf.writeUInt16BE(length, this.#pos);
      this.#pos += 2;
    } else {
      buf[this.#pos++] = 0xdb;
      buf.writeUInt32BE(length, this.#pos);
      this.#pos += 4;
    }
    this.#pos += src.copy(buf, this.#pos, from, to);
  }

  #uint(value: number): void {
    this.#ensure(9);
    const buf = this.#buf;
    if (value < 0x80) {
      buf[this.#pos++] = value;
    } else if (value < 0x100) {
      buf[this.#pos++] = 0xcc;
      buf[this.#pos++] = value;
    } else if (value < 0x10000) {
      buf[this.#pos++] = 0xcd;
      buf.writeUInt16BE(value, this.#pos);
      this.#pos += 2;
    } else if (value < 0x100000000) {
      buf[this.#pos++] = 0xce;
      buf.writeUInt32BE(value, this.#pos);
      this.#pos += 4;
    } else {
      buf[this.#pos++] = 0xcf;
      buf.writeUInt32BE(Math.floor(value / 0x100000000), this.#pos);
      buf.writeUInt32BE(value >>> 0, this.#pos + 4);
      this.#pos += 8;
    }
  }

  #ensure(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + bytes));
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#buf = grown;
  }
}

function skip(src: Buffer, i: number, end: number): number {
  while (i < end) {
    const c = src[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) break;
    i++;
  }
  return i;
}

/** The closing quote of a string of printable ASCII without escapes, or -1. */
function asciiStringEnd(src: Buffer, from: number, end: number): number {
  for (let j = from; j < end; j++) {
    const c = src[j];
    if (c === QUOTE) return j;
    if (c === BACKSLASH || c < 0x20 || c >= 0x7f) return -1;
  }
  return -1;
}
