// What JSON.parse forgives and a counter must not have: a key twice in one object (JSON.parse keeps
// the last, so which count was meant is a guess), and a count or timestamp spelled other than as
// digits (`1.0`, `1e2`, `-0`: JSON.parse makes them integers, hiding that the sender's number was not
// one). Run on text JSON.parse has accepted, on the slow path only: the fast path takes neither.
// Numbers JSON.parse does not make a non-negative safe integer (-1, 1.5, 1e400) are left to
// validate.ts, which names what they are.

import { TopTallyError } from '../errors.ts';
import type { BodyFormat, Decoded } from './decode.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const PLAIN_INTEGER = /^(0|[1-9][0-9]*)$/;

interface Frame {
  /** The keys so far, for an object; null for an array. */
  keys: Set<string> | null;
  /** An object's next string is a key. */
  expectKey: boolean;
  /** The key whose value comes next, or came last. */
  key: string;
}

/** Throws the first duplicate key or non-digit integer in `text` (valid JSON, or NDJSON of it). */
export function checkStrictJson(text: string, format: BodyFormat, decoded: Decoded): void {
  const stack: Frame[] = [];
  // Items are the top-level array's elements, the single top-level value, or each NDJSON line's.
  let itemDepth = format === 'ndjson' ? 0 : -1;
  let item = -1;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c === 0x3a) continue; // white space, ':'
    const top = stack[stack.length - 1];
    if (c === COMMA) {
      if (top?.keys) top.expectKey = true;
      continue;
    }
    if (c === RBRACE || c === RBRACKET) {
      stack.pop();
      continue;
    }
    if (itemDepth === -1) itemDepth = c === LBRACKET ? 1 : 0;
    if (stack.length === itemDepth && !(top?.keys && top.expectKey)) item++;
    if (c === LBRACE || c === LBRACKET) {
      stack.push({ keys: c === LBRACE ? new Set() : null, expectKey: true, key: '' });
      continue;
    }
    if (c === QUOTE) {
      let end = i + 1;
      let escaped = false;
      for (; text.charCodeAt(end) !== QUOTE; end++) {
        if (text.charCodeAt(end) === BACKSLASH) {
          escaped = true;
          end++;
        }
      }
      if (top?.keys && top.expectKey) {
        const key = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (top.keys.has(key)) fail(decoded, item, key, `${JSON.stringify(key)} appears twice in one counter: which count was meant is ambiguous`);
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = end;
      continue;
    }
    // A number, or true/false/null: to the next delimiter.
    let end = i;
    while (end < n && !isDelimiter(text.charCodeAt(end))) end++;
    const token = text.slice(i, end);
    i = end - 1;
    if ((c === 0x2d || (c >= 0x30 && c <= 0x39)) && !PLAIN_INTEGER.test(token)) {
      const value = Number(token);
      if (Number.isSafeInteger(value) && value >= 0) {
        const key = top?.keys ? top.key : '';
        fail(decoded, item, key, `${JSON.stringify(key)} must be written as digits, not ${token}: counts and timestamps are whole numbers`);
      }
    }
  }
}

function isDelimiter(c: number): boolean {
  return c <= 0x20 || c === COMMA || c === RBRACE || c === RBRACKET || c === 0x3a;
}

function fail(decoded: Decoded, item: number, key: string, message: string): never {
  throw new TopTallyError('TOPTALLY_ERR_INVALID_COUNTER', message, { ...decoded.where(Math.max(item, 0)), key });
}
