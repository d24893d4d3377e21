// The counters bound for one shard, packed in one ArrayBuffer that crosses threads by transfer, not
// by copy. With n entries and b name bytes the buffer holds, in order: counts (n × f64), name ends
// (n × u32), minutes (n × i32), domain hashes (n × u32), then the UTF-8 names back to back (b bytes).
// The shard keys its tables by hash and bytes, so it never builds a string for a counter.

export interface ShardPart {
  entries: number;
  buffer: ArrayBuffer;
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

export function viewPart({ entries: n, buffer }: ShardPart): PartView {
  return {
    entries: n,
    counts: new Float64Array(buffer, 0, n),
    nameEnds: new Uint32Array(buffer, 8 * n, n),
    minutes: new Int32Array(buffer, 12 * n, n),
    hashes: new Uint32Array(buffer, 16 * n, n),
    names: new Uint8Array(buffer, 20 * n),
  };
}

/** Appends entries; `finish()` packs them into one exactly-sized buffer. */
export class PartBuilder {
  #names = Buffer.allocUnsafe(512);
  #bytes = 0;
  readonly #nameEnds: number[] = [];
  readonly #counts: number[] = [];
  readonly #minutes: number[] = [];
  readonly #hashes: number[] = [];

  add(name: string, hash: number, count: number, minute: number): void {
    this.#room(name.length * 3);
    const names = this.#names;
    let at = this.#bytes;
    let i = 0;
    for (; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c >= 0x80) break;
      names[at++] = c;
    }
    if (i < name.length) at += names.write(name.slice(i), at, 'utf8');
    this.#bytes = at;
    this.#push(hash, count, minute);
  }

  /** The same, with the name as UTF-8 bytes (a shard's snapshot, a re-partitioned part). */
  addBytes(name: Uint8Array, hash: number, count: number, minute: number): void {
    this.#room(name.length);
    this.#names.set(name, this.#bytes);
    this.#bytes += name.length;
    this.#push(hash, count, minute);
  }

  /** The same, with the name as `source[start..end)`, copied without a view per entry (the body scanner). */
  addRange(source: Uint8Array, start: number, end: number, hash: number, count: number, minute: number): void {
    this.#room(end - start);
    const names = this.#names;
    let at = this.#bytes;
    for (let i = start; i < end; i++) names[at++] = source[i];
    this.#bytes = at;
    this.#push(hash, count, minute);
  }

  get entries(): number {
    return this.#counts.length;
  }

  #room(bytes: number): void {
    if (this.#bytes + bytes <= this.#names.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#names.length * 2, this.#bytes + bytes));
    this.#names.copy(grown, 0, 0, this.#bytes);
    this.#names = grown;
  }

  #push(hash: number, count: number, minute: number): void {
    this.#nameEnds.push(this.#bytes);
    this.#counts.push(count);
    this.#minutes.push(minute);
    this.#hashes.push(hash);
  }

  finish(): ShardPart {
    const n = this.#counts.length;
    const part = { entries: n, buffer: new ArrayBuffer(20 * n + this.#bytes) };
    const view = viewPart(part);
    view.counts.set(this.#counts);
    view.nameEnds.set(this.#nameEnds);
    view.minutes.set(this.#minutes);
    view.hashes.set(this.#hashes);
    view.names.set(this.#names.subarray(0, this.#bytes));
    return part;
  }
}

/** One part holding the entries of all `parts`, in order; a single part is returned as it is. */
export function mergeParts(parts: readonly ShardPart[]): ShardPart {
  if (parts.length === 1) return parts[0];
  const views = parts.map(viewPart);
  const entries = views.reduce((n, v) => n + v.entries, 0);
  const bytes = views.reduce((n, v) => n + v.names.length, 0);
  const merged = { entries, buffer: new ArrayBuffer(20 * entries + bytes) };
  const out = viewPart(merged);
  let at = 0;
  let nameAt = 0;
  for (const v of views) {
    out.counts.set(v.counts, at);
    out.minutes.set(v.minutes, at);
    out.hashes.set(v.hashes, at);
    out.names.set(v.names, nameAt);
    for (let i = 0; i < v.entries; i++) out.nameEnds[at + i] = v.nameEnds[i] + nameAt;
    at += v.entries;
    nameAt += v.names.length;
  }
  return merged;
}
