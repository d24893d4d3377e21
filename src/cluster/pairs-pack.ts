// Packs a window's (member, delta) pairs into one MessagePack array for tt_flush, which unpacks it
// with the cmsgpack library Redis's Lua carries: one argument per window instead of two per pair,
// which both node-redis and Redis would otherwise handle one by one. Members go as MessagePack
// strings holding their CESU-8 bytes as they are (the bundled cmsgpack reads no bin type and checks
// no UTF-8); deltas as unsigned integers (counts are whole and below 2^53).

export function packPairs(members: readonly Buffer[], deltas: readonly number[]): Buffer {
  let size = 5;
  for (const member of members) size += 5 + member.length + 9;
  const out = Buffer.allocUnsafe(size);
  let at = header(out, 0, 2 * members.length, 0x90, 0xdc, 0xdd, 15);
  for (let i = 0; i < members.length; i++) {
    const member = members[i];
    at = stringHeader(out, at, member.length);
    at += member.copy(out, at);
    at = unsigned(out, at, deltas[i]);
  }
  return out.subarray(0, at);
}

function stringHeader(out: Buffer, at: number, length: number): number {
  if (length > 31 && length <= 0xff) return out.writeUInt8(length, out.writeUInt8(0xd9, at));
  return header(out, at, length, 0xa0, 0xda, 0xdb, 31);
}

/** An array's or string's length: fix form up to `fixMax`, else 16 or 32 bits. */
function header(out: Buffer, at: number, length: number, fix: number, b16: number, b32: number, fixMax: number): number {
  if (length <= fixMax) return out.writeUInt8(fix | length, at);
  if (length <= 0xffff) return out.writeUInt16BE(length, out.writeUInt8(b16, at));
  return out.writeUInt32BE(length, out.writeUInt8(b32, at));
}

function unsigned(out: Buffer, at: number, n: number): number {
  if (n < 0x80) return out.writeUInt8(n, at);
  if (n <= 0xff) return out.writeUInt8(n, out.writeUInt8(0xcc, at));
  if (n <= 0xffff) return out.writeUInt16BE(n, out.writeUInt8(0xcd, at));
  if (n <= 0xffffffff) return out.writeUInt32BE(n, out.writeUInt8(0xce, at));
  at = out.writeUInt8(0xcf, at);
  at = out.writeUInt32BE(Math.floor(n / 0x100000000), at);
  return out.writeUInt32BE(n % 0x100000000, at);
}
