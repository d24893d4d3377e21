// Byte-level mutations of a body for property tests: each test draws them with its own arbitrary
// (its own tokens and sizes) and applies them here.

export type Mutation = { at: number } & (
  | { kind: 'set'; byte: number }
  | { kind: 'delete'; length: number }
  | { kind: 'insert'; bytes: Uint8Array }
  | { kind: 'truncate' }
);

/** `bytes` with the mutations applied in order; each position wraps around the current length. */
export function mutate(bytes: Uint8Array, mutations: Mutation[]): Buffer {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    const at = m.at % (out.length + 1);
    if (m.kind === 'set' && at < out.length) out[at] = m.byte;
    if (m.kind === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
    if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
    if (m.kind === 'truncate') out = out.subarray(0, at);
  }
  return out;
}
