// WebSocket frames to values and back: text frames carry JSON, binary frames MessagePack, checked
// strictly first (msgpack-strict.ts). MessagePack is read with records and structured-clone references off, and with maps kept as Maps: msgpackr
// renames a "__proto__" key when it builds an object, and "__proto__" is a domain like any other.
// 64-bit integers become numbers: one past 2^53 can only round to an unsafe integer, which validation
// refuses, so no count is ever silently changed.

import { Packr, Unpackr } from 'msgpackr';
import { TopTallyError } from '../errors.ts';
import { checkMapSizes, walkMessagePack } from './msgpack-strict.ts';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, structuredClone: false, int64AsType: 'number' });
const packr = new Packr({ useRecords: false });
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes one frame; a frame that does not parse is an error naming the format. */
export function decodeFrame(data: ArrayBuffer | Uint8Array, binary: boolean): unknown {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (!binary) {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new TopTallyError('TOPTALLY_ERR_INVALID_UTF8', 'The text frame is not valid UTF-8');
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new TopTallyError('TOPTALLY_ERR_MALFORMED_JSON', `The text frame is not valid JSON: ${reason(err)}`);
    }
  }
  const maps = walkMessagePack(bytes);
  let value: unknown;
  try {
    value = unpackr.unpack(bytes);
  } catch (err) {
    throw new TopTallyError('TOPTALLY_ERR_MALFORMED_MSGPACK', `The binary frame is not valid MessagePack: ${reason(err)}`);
  }
  checkMapSizes(value, maps);
  return value;
}

/** Encodes a value in the frame type the client used. */
export function encodeFrame(value: unknown, binary: boolean): string | Uint8Array {
  return binary ? packr.pack(value) : JSON.stringify(value);
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
