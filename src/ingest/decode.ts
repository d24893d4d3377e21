// Bytes to candidate counters: a JSON object, a JSON array of objects, or NDJSON (one object a line).
// Nothing here judges the counters themselves; that is validate.ts.

import { TopTallyError, type ErrorDetails } from '../errors.ts';

export type BodyFormat = 'json' | 'ndjson';

export interface Decoded {
  items: unknown[];
  /** Where item i came from, for error messages: its array index or NDJSON line. */
  where(i: number): ErrorDetails;
}

const JSON_TYPES = new Set(['', 'application/json', 'text/plain', 'application/x-www-form-urlencoded']);
const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl']);

/** Content-Type headers already parsed: clients send the same one or two on every request. */
const formats = new Map<string, BodyFormat>();
const FORMATS_KEPT = 64;

/** The body format for a Content-Type header (parameters such as charset are ignored). */
export function formatOf(contentType: string): BodyFormat {
  let format = formats.get(contentType);
  if (format === undefined) {
    format = parseFormat(contentType);
    if (formats.size < FORMATS_KEPT) formats.set(contentType, format);
  }
  return format;
}

function parseFormat(contentType: string): BodyFormat {
  const type = contentType.split(';', 1)[0].trim().toLowerCase();
  if (JSON_TYPES.has(type)) return 'json';
  if (NDJSON_TYPES.has(type)) return 'ndjson';
  throw new TopTallyError(
    'TOPTALLY_ERR_UNSUPPORTED_MEDIA_TYPE',
    `Content-Type ${JSON.stringify(type)} is not supported: send application/json or application/x-ndjson`,
  );
}

export function decode(text: string, format: BodyFormat): Decoded {
  return format === 'json' ? decodeJson(text) : decodeNdjson(text);
}

function parse(text: string, details: ErrorDetails): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new TopTallyError('TOPTALLY_ERR_MALFORMED_JSON', `The body is not valid JSON: ${reason}`, details);
  }
}

function decodeJson(text: string): Decoded {
  if (text.trim() === '') throw new TopTallyError('TOPTALLY_ERR_MALFORMED_JSON', 'The body is empty');
  const value = parse(text, {});
  if (Array.isArray(value)) return { items: value, where: (index) => ({ index }) };
  return { items: [value], where: () => ({}) };
}

function decodeNdjson(text: string): Decoded {
  const items: unknown[] = [];
  const lines: number[] = [];
  let start = 0;
  for (let line = 1; start < text.length; line++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const source = text.slice(start, end);
    if (source.trim() !== '') {
      items.push(parse(source, { line }));
      lines.push(line);
    }
    start = end + 1;
  }
  return { items, where: (i) => ({ line: lines[i] }) };
}
