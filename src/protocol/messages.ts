// The one module that owns every message crossing between the main thread and a shard worker.
// Requests carry a numeric id; the worker answers each with the same id, or with an error.

import type { MessagePort, Worker } from 'node:worker_threads';
import type { ErrorBody } from '../errors.ts';
import type { WindowKind } from '../window.ts';

/** Counters for one shard, columnar: entry i is `counts[i]` requests for `domains[i]` in `minutes[i]`. */
export interface IngestColumns {
  domains: string[];
  counts: Float64Array;
  minutes: Int32Array;
}

export interface TopEntries {
  /** Sorted by count descending, then domain ascending. */
  domains: string[];
  counts: number[];
  /** Sum of all counts in the window (this shard's part). */
  total: number;
  /** Distinct domains in the window (this shard's part). */
  size: number;
}

/** A window's entries in one shard, packed (see packed.ts); empty when the shard holds none. */
export interface PackedWindow {
  window: WindowKind;
  index: number;
  chunks: Uint8Array[];
}

export type ToShard =
  | ({ kind: 'ingest'; id: number } & IngestColumns)
  | { kind: 'export'; id: number; windows: { window: WindowKind; index: number }[] }
  /** Adds a snapshot of one window to that window only; `packed` must own its ArrayBuffer (it is transferred). */
  | { kind: 'load'; id: number; window: WindowKind; index: number; packed: Uint8Array }
  | { kind: 'retain'; oldestMinute: number; oldestHour: number }
  | { kind: 'top'; id: number; window: WindowKind; index: number; limit: number }
  | { kind: 'stop'; id: number };

export type FromShard =
  | { kind: 'ready' }
  | { kind: 'applied'; id: number; entries: number }
  | ({ kind: 'top'; id: number } & TopEntries)
  | { kind: 'exported'; id: number; windows: PackedWindow[] }
  | { kind: 'stopped'; id: number }
  | { kind: 'error'; id: number; error: ErrorBody };

export type Port = Pick<MessagePort | Worker, 'postMessage'>;

/** The only caller of postMessage for shard traffic, so every message is typed. */
export function send(port: Port, message: ToShard | FromShard): void {
  if (message.kind === 'ingest') {
    port.postMessage(message, [message.counts.buffer as ArrayBuffer, message.minutes.buffer as ArrayBuffer]);
  } else if (message.kind === 'load') {
    port.postMessage(message, [message.packed.buffer as ArrayBuffer]);
  } else if (message.kind === 'exported') {
    port.postMessage(message, message.windows.flatMap((w) => w.chunks.map((c) => c.buffer as ArrayBuffer)));
  } else {
    port.postMessage(message);
  }
}

export function assertNever(value: never): never {
  throw new Error(`unknown message kind: ${JSON.stringify(value)}`);
}
