// What an idempotency key is checked against: the counters a request counts, in a canonical form,
// not the bytes that carried them. A retry that re-serialises (other white space, key order, NDJSON
// instead of an array, MessagePack instead of JSON) is the same request; different counters are not.
// The form is the multiset of (minute, domain, count) entries the request adds, sorted, so it does
// not depend on the order of counters or keys nor on how many shards the entries are split over
// (keys outlive a restart with another --shards). Two requests that add exactly the same counts to
// the same windows are one request: their effect is the same.

import { createHash } from 'node:crypto';
import { viewPart } from '../protocol/shard-part.ts';
import type { Partitioned } from '../routing/partition.ts';

interface Entry {
  hash: number;
  minute: number;
  count: number;
  name: Uint8Array;
}

/** 128 bits of SHA-256 over the canonical form of `partitioned`. */
export function fingerprintCounters(partitioned: Partitioned): string {
  const entries: Entry[] = [];
  for (const part of partitioned.parts) {
    if (!part) continue;
    const view = viewPart(part);
    let start = 0;
    for (let i = 0; i < view.entries; i++) {
      const end = view.nameEnds[i];
      entries.push({ hash: view.hashes[i], minute: view.minutes[i], count: view.counts[i], name: view.names.subarray(start, end) });
      start = end;
    }
  }
  entries.sort((a, b) => a.hash - b.hash || a.minute - b.minute || compareBytes(a.name, b.name) || a.count - b.count);
  const hash = createHash('sha256');
  const head = new Float64Array([partitioned.counters, partitioned.entries]);
  hash.update(new Uint8Array(head.buffer));
  const fixed = new DataView(new ArrayBuffer(16));
  for (const entry of entries) {
    fixed.setInt32(0, entry.minute);
    fixed.setUint32(4, entry.name.length);
    fixed.setFloat64(8, entry.count);
    hash.update(new Uint8Array(fixed.buffer)).update(entry.name);
  }
  return hash.digest('hex').slice(0, 32);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
