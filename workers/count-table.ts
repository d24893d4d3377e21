// An open-addressing hash table from domain id to count: two typed arrays, no per-entry objects,
// about 24 bytes per entry at its highest load. Counts are exact up to 2^53.

const EMPTY = -1;

export class CountTable {
  #keys: Int32Array;
  #counts: Float64Array;
  #mask: number;
  #size = 0;
  #total = 0;

  constructor(capacity = 64) {
    this.#keys = new Int32Array(capacity).fill(EMPTY);
    this.#counts = new Float64Array(capacity);
    this.#mask = capacity - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes the table's arrays take. */
  get bytes(): number {
    return this.#keys.byteLength + this.#counts.byteLength;
  }

  /** Sum of all counts. */
  get total(): number {
    return this.#total;
  }

  /** Adds `count` to `id`; returns true when `id` was not in the table before. */
  add(id: number, count: number): boolean {
    this.#total += count;
    let slot = Math.imul(id, 0x9e3779b1) & this.#mask;
    for (;;) {
      const key = this.#keys[slot];
      if (key === id) {
        this.#counts[slot] += count;
        return false;
      }
      if (key === EMPTY) break;
      slot = (slot + 1) & this.#mask;
    }
    this.#keys[slot] = id;
    this.#counts[slot] = count;
    if (++this.#size * 2 > this.#keys.length) this.#grow();
    return true;
  }

  get(id: number): number {
    let slot = Math.imul(id, 0x9e3779b1) & this.#mask;
    for (;;) {
      const key = this.#keys[slot];
      if (key === id) return this.#counts[slot];
      if (key === EMPTY) return 0;
      slot = (slot + 1) & this.#mask;
    }
  }

  forEach(fn: (id: number, count: number) => void): void {
    const keys = this.#keys;
    for (let slot = 0; slot < keys.length; slot++) {
      if (keys[slot] !== EMPTY) fn(keys[slot], this.#counts[slot]);
    }
  }

  #grow(): void {
    const keys = this.#keys;
    const counts = this.#counts;
    this.#keys = new Int32Array(keys.length * 2).fill(EMPTY);
    this.#counts = new Float64Array(keys.length * 2);
    this.#mask = this.#keys.length - 1;
    for (let old = 0; old < keys.length; old++) {
      if (keys[old] === EMPTY) continue;
      let slot = Math.imul(keys[old], 0x9e3779b1) & this.#mask;
      while (this.#keys[slot] !== EMPTY) slot = (slot + 1) & this.#mask;
      this.#keys[slot] = keys[old];
      this.#counts[slot] = counts[old];
    }
  }
}
