// A window's (domain, count) entries as compact bytes: how shards hand a window over for a snapshot
// and take one back on recovery. One transferable buffer per chunk instead of arrays of strings, and
// the same bytes are what a snapshot file stores, so recovery passes them through unparsed.
//
// Chunk: u32 entries, then per entry: u8 UTF-8 length, the domain's bytes, varint count.

import { ByteReader, ByteWriter } from './bytes.ts';

export const CHUNK_ENTRIES = 65_536;

export class WindowPacker {
  readonly #maxEntries: number;
  readonly #chunks: Buffer[] = [];
  #writer = new ByteWriter();
  #entries = 0;

  constructor(maxEntries = CHUNK_ENTRIES) {
    this.#maxEntries = maxEntries;
    this.#writer.u32(0);
  }

  add(domain: string, count: number): void {
    this.#writer.string8(domain);
    this.#writer.varint(count);
    if (++this.#entries === this.#maxEntries) this.#cut();
  }

  finish(): Buffer[] {
    if (this.#entries > 0) this.#cut();
    return this.#chunks;
  }

  #cut(): void {
    this.#writer.patchU32(0, this.#entries);
    this.#chunks.push(this.#writer.finish());
    this.#writer = new ByteWriter(this.#writer.length);
    this.#writer.u32(0);
    this.#entries = 0;
  }
}

export interface Unpacked {
  domains: string[];
  counts: Float64Array;
}

export function packedEntries(chunk: Uint8Array): number {
  return new ByteReader(chunk).u32();
}

/** Throws DecodeError when the chunk is not what WindowPacker wrote. */
export function unpack(chunk: Uint8Array): Unpacked {
  const reader = new ByteReader(chunk);
  const entries = reader.u32();
  const domains: string[] = new Array(entries);
  const counts = new Float64Array(entries);
  for (let i = 0; i < entries; i++) {
    domains[i] = reader.string8();
    counts[i] = reader.varint();
  }
  return { domains, counts };
}
