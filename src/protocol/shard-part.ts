// The counters bound for one shard, packed in one ArrayBuffer that crosses threads by transfer, not
// by copy. With n entries and b name bytes the buffer holds, in order: counts (n × f64), name ends
// (n × u32), minutes (n × i32), domain hashes (n × u32), then the UTF-8 names back to back (b bytes).
// The shard keys its tables by hash and bytes, so it never builds a string for a counter.

export interface ShardPart {
  readonly entries: number;
  /** The part's own buffer, which a transfer moves; read the bytes with partBytes() instead. */
  readonly buffer: ArrayBuffer;
}

/**
 * The ingest path's parts are carved out of shared chunks instead of having a buffer each: every
 * ArrayBuffer is an allocation V8 tracks for its collector, and these parts never leave the main
 * thread but as the copy a shard handle joins them into (docs/performance.md). A part that does need
 * a buffer of its own (to be moved to a thread whole) gets it, copied, on first use.
 */
const ARENA_BYTES = 64 * 1024;
/** Larger parts are sliced out of their builder's scratch as before: the copy is the cost there. */
const ARENA_PART_BYTES = 4096;
/** A chunk parts are carved out of, with the views their copies read it through. */
interface Chunk {
  bytes: Uint8Array;
  words: Uint32Array;
  floats: Float64Array;
}

function chunk(size: number): Chunk {
  const buffer = new ArrayBuffer(size);
  return { bytes: new Uint8Array(buffer), words: new Uint32Array(buffer), floats: new Float64Array(buffer) };
}

let arena = chunk(0);
let arenaAt = 0;

class ArenaPart implements ShardPart {
  readonly entries: number;
  readonly #chunk: Chunk;
  readonly #offset: number;
  readonly #size: number;
  #own: ArrayBuffer | null = null;

  constructor(entries: number, chunk: Chunk, offset: number, size: number) {
    this.entries = entries;
    this.#chunk = chunk;
    this.#offset = offset;
    this.#size = size;
  }

  get buffer(): ArrayBuffer {
    return (this.#own ??= this.#chunk.bytes.buffer.slice(this.#offset, this.#offset + this.#size) as ArrayBuffer);
  }

  /** Still readable once the buffer above was moved: the chunk stays. */
  get bytes(): Uint8Array {
    return this.#chunk.bytes.subarray(this.#offset, this.#offset + this.#size);
  }

  /** Copies the entries into `out` from entry `at` and name byte `nameAt` on, with no view of its own. */
  copyTo(out: PartView, at: number, nameAt: number): void {
    const { words, floats, bytes } = this.#chunk;
    const n = this.entries;
    const first = this.#offset / 4;
    const count = this.#offset / 8;
    for (let i = 0; i < n; i++) {
      out.counts[at + i] = floats[count + i];
      out.nameEnds[at + i] = words[first + 2 * n + i] + nameAt;
      out.minutes[at + i] = words[first + 3 * n + i];
      out.hashes[at + i] = words[first + 4 * n + i];
    }
    out.names.set(bytes.subarray(this.#offset + 20 * n, this.#offset + this.#size), nameAt);
  }

  get size(): number {
    return this.#size;
  }
}

/** A part's bytes, without giving it a buffer of its own. */
export function partBytes(part: ShardPart): Uint8Array {
  return part instanceof ArenaPart ? part.bytes : new Uint8Array(part.buffer);
}

/** A part's size in bytes (what a shard owes for it). */
export function partSize(part: ShardPart): number {
  return part instanceof ArenaPart ? part.size : part.buffer.byteLength;
}

/** The part as a plain object with a buffer of its own: what may be posted to a thread. */
export function movablePart(part: ShardPart): ShardPart {
  return part instanceof ArenaPart ? { entries: part.entries, buffer: part.buffer } : part;
}

/** `size` bytes (a multiple of 8 apart, so typed arrays can view the part) in the current chunk. */
function carve(size: number): number {
  if (arenaAt + size > arena.bytes.length) {
    arena = chunk(ARENA_BYTES);
    arenaAt = 0;
  }
  const at = arenaAt;
  arenaAt += (size + 7) & ~7;
  return at;
}

export interface PartView {
  entries: number;
  counts: Float64Array;
  /** nameEnds[i] is where domain i's bytes end in `names`; it starts where domain i-1's end. */
  nameEnds: Uint32Array;
  minutes: Int32Array;
  /** FNV-1a of each domain's bytes (src/routing/hash.ts). */
  hashes: Uint32Array;
  names: Uint8Array;
}

export function viewPart(part: ShardPart): PartView {
  const n = part.entries;
  const bytes = partBytes(part);
  const { buffer, byteOffset: at } = bytes;
  return {
    entries: n,
    counts: new Float64Array(buffer, at, n),
    nameEnds: new Uint32Array(buffer, at + 8 * n, n),
    minutes: new Int32Array(buffer, at + 12 * n, n),
    hashes: new Uint32Array(buffer, at + 16 * n, n),
    names: new Uint8Array(buffer, at + 20 * n, bytes.length - 20 * n),
  };
}

// A builder writes its entries into a scratch region laid out like a part but with room to spare:
// counts, name ends, minutes and hashes at capacity-sized offsets, then the names. finish() moves the
// regions down to their packed offsets and slices the part out, one allocation and five memmoves,
// so no entry is ever boxed in a JS array. Scratch regions are pooled per thread: a builder takes one
// on its first entry and gives it back in finish(), so two live builders never share one, and a
// builder dropped unfinished (a body the fast path gave up on) only costs the pool a region.
interface Scratch {
  /** Entries it has room for. */
  capacity: number;
  /** Name bytes it has room for. */
  nameCapacity: number;
  buffer: ArrayBuffer;
  bytes: Uint8Array;
  counts: Float64Array;
  nameEnds: Uint32Array;
  minutes: Int32Array;
  hashes: Uint32Array;
  /** A Buffer for its write(): the names region. */
  names: Buffer;
}

const FIRST_CAPACITY = 256;
const FIRST_NAME_CAPACITY = 8192;
/** Regions kept for reuse per thread, and the largest kept: a huge body's region goes to the GC. */
const POOLED = 8;
const POOLED_BYTES = 1 << 18;
const pool: Scratch[] = [];

function scratch(capacity: number, nameCapacity: number): Scratch {
  const buffer = new ArrayBuffer(20 * capacity + nameCapacity);
  return {
    capacity,
    nameCapacity,
    buffer,
    bytes: new Uint8Array(buffer),
    counts: new Float64Array(buffer, 0, capacity),
    nameEnds: new Uint32Array(buffer, 8 * capacity, capacity),
    minutes: new Int32Array(buffer, 12 * capacity, capacity),
    hashes: new Uint32Array(buffer, 16 * capacity, capacity),
    names: Buffer.from(buffer, 20 * capacity, nameCapacity),
  };
}

/** Appends entries; `finish()` packs them into one exactly-sized part and empties the builder. */
export class PartBuilder {
  readonly #arena: boolean;
  #scratch: Scratch | undefined;
  #entries = 0;
  #bytes = 0;

  /** `arena`: small parts are carved out of shared chunks (see ArenaPart); only for parts that stay on this thread. */
  constructor(arena = false) {
    this.#arena = arena;
  }

  add(name: string, hash: number, count: number, minute: number): void {
    const s = this.#room(name.length * 3);
    const names = s.names;
    let at = this.#bytes;
    let i = 0;
    for (; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c >= 0x80) break;
      names[at++] = c;
    }
    if (i < name.length) at += names.write(name.slice(i), at, 'utf8');
    this.#bytes = at;
    this.#push(s, hash, count, minute);
  }

  /** The same, with the name as UTF-8 bytes (a shard's snapshot, a re-partitioned part). */
  addBytes(name: Uint8Array, hash: number, count: number, minute: number): void {
    const s = this.#room(name.length);
    s.names.set(name, this.#bytes);
    this.#bytes += name.length;
    this.#push(s, hash, count, minute);
  }

  /** The same, with the name as `source[start..end)`, copied without a view per entry (the body scanner). */
  addRange(source: Uint8Array, start: number, end: number, hash: number, count: number, minute: number): void {
    const s = this.#room(end - start);
    const names = s.names;
    let at = this.#bytes;
    for (let i = start; i < end; i++) names[at++] = source[i];
    this.#bytes = at;
    this.#push(s, hash, count, minute);
  }

  get entries(): number {
    return this.#entries;
  }

  /** The scratch, with room for one more entry and `bytes` more name bytes. */
  #room(bytes: number): Scratch {
    const s = this.#scratch;
    if (s !== undefined && this.#entries < s.capacity && this.#bytes + bytes <= s.nameCapacity) return s;
    return this.#grow(bytes);
  }

  #grow(bytes: number): Scratch {
    const old = this.#scratch;
    if (old === undefined) {
      const pooled = pool.pop();
      if (pooled !== undefined && bytes <= pooled.nameCapacity) return (this.#scratch = pooled);
      return (this.#scratch = scratch(FIRST_CAPACITY, Math.max(FIRST_NAME_CAPACITY, bytes)));
    }
    const n = this.#entries;
    const s = scratch(n < old.capacity ? old.capacity : 2 * old.capacity, Math.max(2 * old.nameCapacity, this.#bytes + bytes));
    s.counts.set(old.counts.subarray(0, n));
    s.nameEnds.set(old.nameEnds.subarray(0, n));
    s.minutes.set(old.minutes.subarray(0, n));
    s.hashes.set(old.hashes.subarray(0, n));
    s.names.set(old.names.subarray(0, this.#bytes));
    return (this.#scratch = s);
  }

  #push(s: Scratch, hash: number, count: number, minute: number): void {
    const i = this.#entries++;
    s.counts[i] = count;
    s.nameEnds[i] = this.#bytes;
    s.minutes[i] = minute;
    s.hashes[i] = hash;
  }

  finish(): ShardPart {
    const s = this.#scratch;
    const n = this.#entries;
    const b = this.#bytes;
    this.#scratch = undefined;
    this.#entries = this.#bytes = 0;
    if (s === undefined) return { entries: 0, buffer: new ArrayBuffer(0) };
    // Each region moves down, below where the next one starts, so no move overwrites a later source.
    const c = s.capacity;
    const bytes = s.bytes;
    bytes.copyWithin(8 * n, 8 * c, 8 * c + 4 * n);
    bytes.copyWithin(12 * n, 12 * c, 12 * c + 4 * n);
    bytes.copyWithin(16 * n, 16 * c, 16 * c + 4 * n);
    bytes.copyWithin(20 * n, 20 * c, 20 * c + b);
    const size = 20 * n + b;
    let part: ShardPart;
    if (this.#arena && size <= ARENA_PART_BYTES) {
      const at = carve(size);
      arena.bytes.set(bytes.subarray(0, size), at);
      part = new ArenaPart(n, arena, at, size);
    } else {
      part = { entries: n, buffer: s.buffer.slice(0, size) };
    }
    if (pool.length < POOLED && s.buffer.byteLength <= POOLED_BYTES) pool.push(s);
    return part;
  }
}

/**
 * `parts` as they are posted to a worker, in order: each run of parts carved from the arena joined
 * into one buffer (a copy of each costs less than a buffer of its own each), and every part that has
 * a buffer of its own moved as it is. Moving costs the same whatever the size, while a copy would
 * leave that buffer behind as garbage of the main thread, and V8 answers garbage ArrayBuffers past
 * its external-memory budget with full collections: pauses for every request waiting behind them.
 */
export function postableParts(parts: readonly ShardPart[]): ShardPart[] {
  const out: ShardPart[] = [];
  let run: ShardPart[] = [];
  for (const part of parts) {
    if (part instanceof ArenaPart) {
      run.push(part);
      continue;
    }
    if (run.length > 0) out.push(concatParts(run));
    run = [];
    out.push(part);
  }
  if (run.length > 0) out.push(concatParts(run));
  return out;
}

/**
 * The entries of `parts`, in order, as one part with a buffer of its own: many small parts cost a transferred buffer each
 * when posted to a worker, and a view of each when applied, which for one-counter parts is most of
 * the work (a replay of small journal records hands over thousands at once).
 */
export function concatParts(parts: readonly ShardPart[]): ShardPart {
  if (parts.length === 1) return movablePart(parts[0]);
  let n = 0;
  let b = 0;
  for (const part of parts) {
    n += part.entries;
    b += partSize(part) - 20 * part.entries;
  }
  const buffer = new ArrayBuffer(20 * n + b);
  const out = viewPart({ entries: n, buffer });
  let at = 0;
  let nameAt = 0;
  for (const part of parts) {
    if (part instanceof ArenaPart) {
      part.copyTo(out, at, nameAt);
    } else {
      const view = viewPart(part);
      out.counts.set(view.counts, at);
      out.minutes.set(view.minutes, at);
      out.hashes.set(view.hashes, at);
      out.names.set(view.names, nameAt);
      for (let i = 0; i < view.entries; i++) out.nameEnds[at + i] = view.nameEnds[i] + nameAt;
    }
    at += part.entries;
    nameAt += partSize(part) - 20 * part.entries;
  }
  return { entries: n, buffer };
}
