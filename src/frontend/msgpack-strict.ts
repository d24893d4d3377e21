// What msgpackr forgives in a client's MessagePack and toptally must not take: strings that are not
// UTF-8 (decoded to U+FFFD, so different byte strings would become one domain), extension types
// (msgpackr turns them into Dates, Sets, Errors, typed arrays: none is part of the protocol), and a
// key twice in one map (a Map keeps the last; which count was meant is a guess). The bytes are
// walked once before they are decoded, and each map's declared size is then checked against the Map
// msgpackr built, in the same order.

import { isUtf8 } from 'node:buffer';
import { TopTallyError } from '../errors.ts';

/** Walks one MessagePack value that must fill `bytes`; the entry counts of its maps, in order. */
export function walkMessagePack(bytes: Uint8Array): number[] {
  const maps: number[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  let p = 0;
  // Values still to read, summed over every open array and map: the value ends when it is 0.
  let pending = 1;
  const need = (k: number): void => {
    if (p + k > n) throw malformed('it ends inside a value');
  };
  while (pending > 0) {
    need(1);
    const b = bytes[p++];
    pending--;
    let strLength = -1;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) continue;
    if (b <= 0x8f) {
      maps.push(b & 0x0f);
      pending += 2 * (b & 0x0f);
    } else if (b <= 0x9f) {
      pending += b & 0x0f;
    } else if (b <= 0xbf) {
      strLength = b & 0x1f;
    } else {
      switch (b) {
        case 0xc4: need(1); p += 1 + bytes[p]; break; // bin 8
        case 0xc5: need(2); p += 2 + view.getUint16(p); break;
        case 0xc6: need(4); p += 4 + view.getUint32(p); break;
        case 0xca: p += 4; break; // float 32
        case 0xcb: p += 8; break;
        case 0xcc: case 0xd0: p += 1; break;
        case 0xcd: case 0xd1: p += 2; break;
        case 0xce: case 0xd2: p += 4; break;
        case 0xcf: case 0xd3: p += 8; break;
        case 0xd9: need(1); strLength = bytes[p]; p += 1; break;
        case 0xda: need(2); strLength = view.getUint16(p); p += 2; break;
        case 0xdb: need(4); strLength = view.getUint32(p); p += 4; break;
        case 0xdc: need(2); pending += view.getUint16(p); p += 2; break;
        case 0xdd: need(4); pending += view.getUint32(p); p += 4; break;
        case 0xde: need(2); maps.push(view.getUint16(p)); pending += 2 * view.getUint16(p); p += 2; break;
        case 0xdf: need(4); maps.push(view.getUint32(p)); pending += 2 * view.getUint32(p); p += 4; break;
        case 0xc1: throw malformed('0xc1 is never used');
        default: throw malformed(`extension types (0x${b.toString(16)}) are refused: the protocol has none`);
      }
    }
    if (p > n) throw malformed('it ends inside a value');
    if (strLength >= 0) {
      need(strLength);
      if (!isUtf8Range(bytes, p, p + strLength)) {
        throw new TopTallyError('TOPTALLY_ERR_INVALID_UTF8', 'A MessagePack string is not valid UTF-8: a domain must be UTF-8 text, not other bytes');
      }
      p += strLength;
    }
  }
  if (p !== n) throw malformed(`${n - p} bytes follow the message`);
  return maps;
}

/** Throws when a Map in `value` (msgpackr's output) has fewer entries than its map declared: a key came twice. */
export function checkMapSizes(value: unknown, declared: readonly number[]): void {
  let next = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v instanceof Map) {
      if (v.size !== declared[next++]) {
        throw new TopTallyError('TOPTALLY_ERR_MALFORMED_MSGPACK', 'A MessagePack map has a key twice: which value was meant is ambiguous');
      }
      // Pushed in reverse, so they are visited in the order the bytes hold them.
      const entries = [...v];
      for (let i = entries.length - 1; i >= 0; i--) stack.push(entries[i][1], entries[i][0]);
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    }
  }
}

function isUtf8Range(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] >= 0x80) return isUtf8(bytes.subarray(start, end));
  return true;
}

function malformed(why: string): TopTallyError {
  return new TopTallyError('TOPTALLY_ERR_MALFORMED_MSGPACK', `The binary frame is not valid MessagePack: ${why}`);
}
