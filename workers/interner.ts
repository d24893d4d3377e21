// Each domain string is held once per shard and named by a small integer id; count tables store ids.
// An id is reference-counted by the tables holding it, so domains leave memory with their last window.

export class Interner {
  readonly #ids = new Map<string, number>();
  #names: string[] = [];
  #refs = new Int32Array(1024);
  readonly #free: number[] = [];

  get size(): number {
    return this.#ids.size;
  }

  idOf(name: string): number {
    const known = this.#ids.get(name);
    if (known !== undefined) return known;
    const id = this.#free.length > 0 ? this.#free.pop()! : this.#names.length;
    if (id >= this.#refs.length) {
      const grown = new Int32Array(this.#refs.length * 2);
      grown.set(this.#refs);
      this.#refs = grown;
    }
    this.#names[id] = name;
    this.#ids.set(name, id);
    return id;
  }

  name(id: number): string {
    return this.#names[id];
  }

  retain(id: number): void {
    this.#refs[id]++;
  }

  release(id: number): void {
    if (--this.#refs[id] > 0) return;
    this.#ids.delete(this.#names[id]);
    this.#names[id] = '';
    this.#free.push(id);
  }
}
