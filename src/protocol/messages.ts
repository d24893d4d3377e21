// The one module that owns every message crossing between the main thread and a shard worker.
// Requests carry a numeric id; the worker answers each with the same id, or with an error.

import type { MessagePort, Worker } from 'node:worker_threads';
import type { ErrorBody } from '../errors.ts';
import type { WindowKind } from '../window.ts';
import type { ShardPart } from './shard-part.ts';

/** Re-exported so that workers/ imports nothing from src/ but the protocol. */
export type { WindowKind };

export interface TopEntries {
  /** Sorted by count descending, then domain ascending. */
  domains: string[];
  counts: number[];
  /** Sum of all counts in the window (this shard's part). */
  total: number;
  /** Distinct domains in the window (this shard's part). */
  size: number;
}

export interface Census {
  /** Distinct domains held in any retained window. */
  domains: number;
  /** (domain, window) entries held, minute and hour windows together. */
  entries: number;
  /** Bytes of the shard's name and count tables. */
  bytes: number;
}

/** A window's total, the sum of its counts (one shard's part of it). */
export interface WindowTotal {
  window: WindowKind;
  index: number;
  total: number;
}

/** One window's entries in one shard, as parts (their minutes unused); none when it holds none. */
export interface ExportedWindow {
  window: WindowKind;
  index: number;
  parts: ShardPart[];
}

/**
 * A shard's (minute, domain) deltas applied since its last drain, as parts; `fresh` when it kept none
 * before this drain (a worker keeps them only once a first drain asked, so one that just started
 * cannot say what it applied before).
 */
export interface Drained {
  fresh: boolean;
  parts: ShardPart[];
}

export type ToShard =
  | { kind: 'ingest'; id: number; parts: ShardPart[] }
  /** A snapshot of these windows, for a checkpoint. */
  | { kind: 'export'; id: number; windows: { window: WindowKind; index: number }[] }
  /** Adds a window's snapshot to that window alone (an hour's must not touch its minutes). */
  | { kind: 'load'; id: number; window: WindowKind; index: number; part: ShardPart }
  | { kind: 'retain'; oldestMinute: number; oldestHour: number }
  | { kind: 'top'; id: number; window: WindowKind; index: number; limit: number }
  /** How much the shard holds, for /metrics. */
  | { kind: 'census'; id: number }
  /** The total of every window it holds. */
  | { kind: 'totals'; id: number }
  /** The (minute, domain) deltas applied since the last drain (cluster mode's flusher). */
  | { kind: 'drain'; id: number }
  | { kind: 'stop'; id: number };

export type FromShard =
  | { kind: 'ready' }
  | { kind: 'applied'; id: number; entries: number }
  | ({ kind: 'top'; id: number } & TopEntries)
  | ({ kind: 'census'; id: number } & Census)
  | { kind: 'totals'; id: number; windows: WindowTotal[] }
  | { kind: 'exported'; id: number; windows: ExportedWindow[] }
  | ({ kind: 'drained'; id: number } & Drained)
  | { kind: 'stopped'; id: number }
  | { kind: 'error'; id: number; error: ErrorBody };

export type Port = Pick<MessagePort | Worker, 'postMessage'>;

/** The only caller of postMessage for shard traffic, so every message is typed. */
export function send(port: Port, message: ToShard | FromShard): void {
  if (message.kind === 'ingest') {
    port.postMessage(message, message.parts.map((part) => part.buffer));
  } else if (message.kind === 'load') {
    port.postMessage(message, [message.part.buffer]);
  } else if (message.kind === 'drained') {
    port.postMessage(message, message.parts.map((part) => part.buffer));
  } else if (message.kind === 'exported') {
    port.postMessage(message, message.windows.flatMap((w) => w.parts.map((part) => part.buffer)));
  } else {
    port.postMessage(message);
  }
}

export function assertNever(value: never): never {
  throw new Error(`unknown message kind: ${JSON.stringify(value)}`);
}
