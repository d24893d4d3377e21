// A little binary writer and reader for the on-disk formats. Counts are JavaScript numbers up to
// 2^53, so varints use arithmetic, not 32-bit shifts.

export class ByteWriter {
  #buf: Buffer;
  #pos = 0;

  /** A small writer takes its buffer from Node's shared pool: a record a request costs no allocation of its own. */
  constructor(capacity = 4096) {
    this.#buf = Buffer.allocUnsafe(capacity);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  /** Where they are (a larger buffer replaces it when it runs out of room). */
  get buffer(): Buffer {
    return this.#buf;
  }

  /** Forgets what was written after the first `length` bytes; reset() forgets all, keeping the buffer for reuse. */
  truncate(length: number): void {
    this.#pos = Math.min(this.#pos, length);
  }

  reset(): void {
    this.#pos = 0;
  }

  u8(value: number): void {
    this.#room(1);
    this.#buf[this.#pos++] = value;
  }

  u16(value: number): void {
    this.#fixed(2, value, Buffer.prototype.writeUInt16LE);
  }

  i32(value: number): void {
    this.#fixed(4, value, Buffer.prototype.writeInt32LE);
  }

  f64(value: number): void {
    this.#fixed(8, value, Buffer.prototype.writeDoubleLE);
  }

  /** A non-negative integer up to 2^53, 7 bits a byte. */
  varint(value: number): void {
    this.#room(8);
    const buf = this.#buf;
    while (value >= 0x80) {
      buf[this.#pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buf[this.#pos++] = value;
  }

  /** A signed integer, zigzag-encoded so that small deltas of either sign stay short. */
  zigzag(value: number): void {
    this.varint(value < 0 ? -2 * value - 1 : 2 * value);
  }

  /** UTF-8 text of at most 255 bytes (idempotency keys are validated to fit), with a length byte. */
  string8(text: string): void {
    this.#room(1 + text.length * 3);
    const written = this.#buf.write(text, this.#pos + 1, 'utf8');
    if (written > 255) throw new RangeError(`string of ${written} bytes does not fit a length byte`);
    this.#buf[this.#pos] = written;
    this.#pos += 1 + written;
  }

  bytes(data: Uint8Array): void {
    this.#room(data.length);
    this.#buf.set(data, this.#pos);
    this.#pos += data.length;
  }

  /** The bytes written so far, not copied (so the writer is done with). */
  finish(): Buffer {
    return this.#buf.subarray(0, this.#pos);
  }

  #fixed(bytes: number, value: number, write: (this: Buffer, value: number, offset: number) => number): void {
    this.#room(bytes);
    this.#pos = write.call(this.#buf, value, this.#pos);
  }

  #room(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.#buf.length * 2, this.#pos + bytes));
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#buf = grown;
  }
}

/** Thrown when bytes end early or hold an impossible value: the caller names the file and offset. */
export class DecodeError extends Error {
  override name = 'DecodeError';
}

export class ByteReader {
  readonly #buf: Buffer;
  #pos: number;
  readonly #end: number;

  constructor(data: Uint8Array, start = 0, end = data.length) {
    this.#buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#pos = start;
    this.#end = end;
  }

  get done(): boolean {
    return this.#pos >= this.#end;
  }

  get position(): number {
    return this.#pos;
  }

  u8(): number {
    this.#need(1);
    return this.#buf[this.#pos++];
  }

  u16(): number {
    return this.#fixed(2, Buffer.prototype.readUInt16LE);
  }

  i32(): number {
    return this.#fixed(4, Buffer.prototype.readInt32LE);
  }

  f64(): number {
    return this.#fixed(8, Buffer.prototype.readDoubleLE);
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
    throw new DecodeError(`varint longer than 8 bytes at ${this.#pos}`);
  }

  zigzag(): number {
    const raw = this.varint();
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }

  string8(): string {
    const length = this.u8();
    this.#need(length);
    const text = this.#buf.toString('utf8', this.#pos, this.#pos + length);
    this.#pos += length;
    return text;
  }

  bytes(length: number): Buffer {
    this.#need(length);
    const out = this.#buf.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    return out;
  }

  #fixed(bytes: number, read: (this: Buffer, offset: number) => number): number {
    this.#need(bytes);
    const value = read.call(this.#buf, this.#pos);
    this.#pos += bytes;
    return value;
  }

  #need(bytes: number): void {
    if (this.#pos + bytes > this.#end) {
      throw new DecodeError(`needed ${bytes} bytes at ${this.#pos}, only ${this.#end - this.#pos} left`);
    }
  }
}
