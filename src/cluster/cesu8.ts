// Domains are stored in Redis as CESU-8: UTF-8, except that a character above U+FFFF is written as
// its two UTF-16 surrogates, three bytes each. Redis orders members of equal score by their bytes,
// and CESU-8's byte order is UTF-16 code-unit order, the order local mode breaks ties in (JS `<`).
// With plain UTF-8 they differ: U+FF01 sorts before U+1F600 in UTF-8 and after it in UTF-16.

/** CESU-8 of the UTF-8 bytes `utf8[start..end)`, as a Buffer of its own. */
export function cesu8Bytes(utf8: Buffer, start: number, end: number): Buffer {
  let plain = true;
  for (let i = start; i < end; i++) {
    if (utf8[i] >= 0xf0) {
      plain = false;
      break;
    }
  }
  if (plain) return Buffer.from(utf8.subarray(start, end));
  let out = '';
  for (let i = start; i < end; ) {
    const b = utf8[i];
    if (b < 0xf0) {
      const len = b < 0x80 ? 1 : b < 0xe0 ? 2 : 3;
      out += utf8.toString('latin1', i, i + len);
      i += len;
      continue;
    }
    const cp = ((b & 0x07) << 18) | ((utf8[i + 1] & 0x3f) << 12) | ((utf8[i + 2] & 0x3f) << 6) | (utf8[i + 3] & 0x3f);
    const high = 0xd800 + ((cp - 0x10000) >> 10);
    const low = 0xdc00 + ((cp - 0x10000) & 0x3ff);
    out += threeBytes(high) + threeBytes(low);
    i += 4;
  }
  return Buffer.from(out, 'latin1');
}

function threeBytes(unit: number): string {
  return String.fromCharCode(0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f));
}

/** The CESU-8 of a JS string (tests and the reader's own checks). */
export function encodeCesu8(s: string): Buffer {
  const utf8 = Buffer.from(s, 'utf8');
  return cesu8Bytes(utf8, 0, utf8.length);
}

/** The JS string a CESU-8 member stands for. */
export function decodeCesu8(bytes: Uint8Array): string {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Only surrogates start with 0xED 0xA0..0xBF; without them CESU-8 is UTF-8.
  let surrogates = false;
  for (let i = 0; i + 1 < buffer.length; i++) {
    if (buffer[i] === 0xed && buffer[i + 1] >= 0xa0) {
      surrogates = true;
      break;
    }
  }
  if (!surrogates) return buffer.toString('utf8');
  let out = '';
  let from = 0;
  for (let i = 0; i < buffer.length; ) {
    if (buffer[i] === 0xed && buffer[i + 1] >= 0xa0) {
      out += buffer.toString('utf8', from, i);
      out += String.fromCharCode(((buffer[i] & 0x0f) << 12) | ((buffer[i + 1] & 0x3f) << 6) | (buffer[i + 2] & 0x3f));
      i += 3;
      from = i;
    } else i++;
  }
  return out + buffer.toString('utf8', from);
}
