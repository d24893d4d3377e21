// The domains a shard holds, each stored once as UTF-8 bytes in an arena and named by a small id.
// Lookups use the domain's FNV-1a hash (computed once on the ingest path) and compare bytes, so
// counting builds no strings and allocates nothing per counter. An id is reference-counted by the
// count tables holding it and freed with the last one; the arena is compacted when half is garbage.

const EMPTY = -1;
const decoder = new TextDecoder();

export class NameTable {
  /** Open addressing, linear probing: slot -> id. */
  #slots = new Int32Array(1024).fill(EMPTY);
  #shift = 32 - 10;
  #hashes = new Uint32Array(512);
  #starts = new Uint32Array(512);
  #lengths = new Uint8Array(512);
  #refs = new Int32Array(512);
  #arena = new Uint8Array(16 * 1024);
  #arenaUsed = 0;
  #garbage = 0;
  #ids = 0;
  #free: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Bytes held, for memory accounting. */
  get bytes(): number {
    return this.#slots.byteLength + this.#arena.byteLength + this.#hashes.length * 13;
  }

  /** The id of the name `bytes[start..end)` with this hash, added when new. */
  idOf(hash: number, bytes: Uint8Array, start: number, end: number): number {
    const length = end - start;
    const mask = this.#slots.length - 1;
    let slot = Math.imul(hash, 0x9e3779b1) >>> this.#shift;
    for (;;) {
      const id = this.#slots[slot];
      if (id === EMPTY) break;
      if (this.#hashes[id] === hash && this.#lengths[id] === length && this.#sameBytes(id, bytes, start, length)) return id;
      slot = (slot + 1) & mask;
    }
    const id = this.#free.length > 0 ? this.#free.pop()! : this.#ids++;
    if (id >= this.#hashes.length) this.#growIds();
    if (this.#arenaUsed + length > this.#arena.length) this.#makeRoom(length);
    this.#arena.set(bytes.subarray(start, end), this.#arenaUsed);
    this.#starts[id] = this.#arenaUsed;
    this.#arenaUsed += length;
    this.#lengths[id] = length;
    this.#hashes[id] = hash;
    this.#refs[id] = 0;
    this.#slots[slot] = id;
    if (++this.#size * 2 > this.#slots.length) this.#rehash(this.#slots.length * 2);
    return id;
  }

  /** The name's UTF-8 bytes, a view valid until the table next changes. */
  bytesOf(id: number): Uint8Array {
    const start = this.#starts[id];
    return this.#arena.subarray(start, start + this.#lengths[id]);
  }

  hashOf(id: number): number {
    return this.#hashes[id];
  }

  name(id: number): string {
    const start = this.#starts[id];
    return decoder.decode(this.#arena.subarray(start, start + this.#lengths[id]));
  }

  /**
   * Negative when name a ranks before name b in UTF-16 code-unit order (JavaScript's string order),
   * from the bytes: UTF-8 byte order is code-point order, which differs from code-unit order only
   * between U+E000–U+FFFF (lead bytes EE–EF) and supplementary characters (lead bytes F0–F4).
   */
  compare(a: number, b: number): number {
    const arena = this.#arena;
    const sa = this.#starts[a];
    const sb = this.#starts[b];
    const la = this.#lengths[a];
    const lb = this.#lengths[b];
    const n = Math.min(la, lb);
    for (let i = 0; i < n; i++) {
      const x = arena[sa + i];
      const y = arena[sb + i];
      if (x === y) continue;
      if (x >= 0xee && y >= 0xee && x >= 0xf0 !== y >= 0xf0) return x >= 0xf0 ? -1 : 1;
      return x - y;
    }
    return la - lb;
  }

  retain(id: number): void {
    this.#refs[id]++;
  }

  release(id: number): void {
    if (--this.#refs[id] > 0) return;
    this.#remove(id);
    this.#garbage += this.#lengths[id];
    this.#free.push(id);
    this.#size--;
  }

  #sameBytes(id: number, bytes: Uint8Array, start: number, length: number): boolean {
    const arena = this.#arena;
    const at = this.#starts[id];
    for (let i = 0; i < length; i++) if (arena[at + i] !== bytes[start + i]) return false;
    return true;
  }

  /** Backward-shift deletion keeps every probe chain unbroken without tombstones. */
  #remove(id: number): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let hole = Math.imul(this.#hashes[id], 0x9e3779b1) >>> this.#shift;
    while (slots[hole] !== id) hole = (hole + 1) & mask;
    let next = (hole + 1) & mask;
    while (slots[next] !== EMPTY) {
      const home = Math.imul(this.#hashes[slots[next]], 0x9e3779b1) >>> this.#shift;
      // Move the entry back into the hole unless its home lies cyclically within (hole, next].
      if ((next - home & mask) >= (next - hole & mask)) {
        slots[hole] = slots[next];
        hole = next;
      }
      next = (next + 1) & mask;
    }
    slots[hole] = EMPTY;
  }

  #rehash(capacity: number): void {
    this.#slots = new Int32Array(capacity).fill(EMPTY);
    this.#shift = 32 - Math.log2(capacity);
    const mask = capacity - 1;
    const free = new Set(this.#free);
    for (let id = 0; id < this.#ids; id++) {
      if (free.has(id)) continue;
      let slot = Math.imul(this.#hashes[id], 0x9e3779b1) >>> this.#shift;
      while (this.#slots[slot] !== EMPTY) slot = (slot + 1) & mask;
      this.#slots[slot] = id;
    }
  }

  #growIds(): void {
    const n = this.#hashes.length * 2;
    const grow = <T extends Uint32Array | Uint8Array | Int32Array>(old: T, next: T): T => (next.set(old), next);
    this.#hashes = grow(this.#hashes, new Uint32Array(n));
    this.#starts = grow(this.#starts, new Uint32Array(n));
    this.#lengths = grow(this.#lengths, new Uint8Array(n));
    this.#refs = grow(this.#refs, new Int32Array(n));
  }

  /** Compacts the arena when half of it is garbage, else doubles it. */
  #makeRoom(need: number): void {
    const live = this.#arenaUsed - this.#garbage;
    const size = live + need <= this.#arena.length / 2 ? this.#arena.length : Math.max(this.#arena.length * 2, live + need);
    const arena = new Uint8Array(size);
    const free = new Set(this.#free);
    let used = 0;
    for (let id = 0; id < this.#ids; id++) {
      if (free.has(id)) continue;
      const start = this.#starts[id];
      arena.set(this.#arena.subarray(start, start + this.#lengths[id]), used);
      this.#starts[id] = used;
      used += this.#lengths[id];
    }
    this.#arena = arena;
    this.#arenaUsed = used;
    this.#garbage = 0;
  }
}
