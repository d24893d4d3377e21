// Lines of a byte stream, a chunk at a time (a generator step per line would cost more than the
// line): each step gives a buffer and the offsets of the newlines ending its complete lines.

export interface LineChunk {
  bytes: Buffer;
  /** Line i spans [ends[i - 1] + 1, ends[i]), the first one from 0. */
  ends: number[];
}

export async function* lineChunks(input: AsyncIterable<Buffer | string>): AsyncGenerator<LineChunk> {
  let carry: Buffer | null = null;
  for await (const piece of input) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece) : piece;
    const bytes: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const ends: number[] = [];
    for (let at = bytes.indexOf(10, carry ? carry.length : 0); at >= 0; at = bytes.indexOf(10, at + 1)) ends.push(at);
    const last = ends.length > 0 ? ends[ends.length - 1] + 1 : 0;
    carry = last < bytes.length ? bytes.subarray(last) : null;
    if (ends.length > 0) yield { bytes, ends };
  }
  if (carry) yield { bytes: carry, ends: [carry.length] };
}
