// How far back windows are kept, and so which counters and queries are still inside it.

import { windowIndex, type WindowKind } from './window.ts';

export interface Retention {
  /** Closed minute windows kept (besides the open one). */
  minutes: number;
  /** Closed hour windows kept (besides the open one). */
  hours: number;
}

export function oldestRetained(retention: Retention, kind: WindowKind, nowSeconds: number): number {
  return windowIndex(kind, nowSeconds) - (kind === 'minute' ? retention.minutes : retention.hours);
}
