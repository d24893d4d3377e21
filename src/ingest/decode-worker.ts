// A decode-pool task (piscina): stateless, so any pool thread can take any body. The parts' buffers
// are moved back to the main thread, not copied.

import { move, transferableSymbol, valueSymbol } from 'piscina';
import type { ShardPart } from '../protocol/shard-part.ts';
import { decodeParts, type DecodeOutcome, type DecodeTask } from './decode-parts.ts';

export default function decodeTask(task: DecodeTask): DecodeOutcome {
  const outcome = decodeParts(task);
  if (!outcome.ok) return outcome;
  const parts = outcome.value.parts.filter((p): p is ShardPart => p !== undefined);
  return move({
    get [transferableSymbol]() {
      return parts.map((part) => part.buffer);
    },
    get [valueSymbol]() {
      return outcome;
    },
  }) as unknown as DecodeOutcome;
}
