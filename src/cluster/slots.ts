// Redis Cluster's key → slot mapping (CRC16/XMODEM of the hash tag, mod 16384), and one hash tag per
// partition, chosen so the partitions spread evenly over the slots and so over the masters.

const SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc;
}

/** The slot of a key: only the part inside the first non-empty {...} counts, as in Redis. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  return crc16(Buffer.from(hashed, 'utf8')) % SLOTS;
}

/**
 * Partition p's tag: the first of `t0`, `t1`, … whose slot lies in [p·16384/P, (p+1)·16384/P),
 * so partitions cover the slot range in order and every master that owns a contiguous slot range
 * (what `redis-cli --cluster create` makes) gets about P / masters of them. Deterministic: every
 * node computes the same table.
 */
export function partitionTags(partitions: number): string[] {
  const tags = new Array<string>(partitions);
  let found = 0;
  for (let n = 0; found < partitions; n++) {
    const tag = `t${n}`;
    const p = Math.floor((keySlot(tag) * partitions) / SLOTS);
    if (tags[p] === undefined) {
      tags[p] = tag;
      found++;
    }
  }
  return tags;
}
