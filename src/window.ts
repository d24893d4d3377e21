// Window arithmetic, all in UTC Unix seconds. A window is identified by its kind and its index:
// minute m covers [m·60, m·60 + 60), hour h covers [h·3600, h·3600 + 3600). A counter belongs to
// the window holding its timestamp, whenever it arrives (event time).

export type WindowKind = 'minute' | 'hour';

export const WINDOW_SECONDS: Record<WindowKind, number> = { minute: 60, hour: 3600 };

export interface WindowRef {
  kind: WindowKind;
  index: number;
}

export interface WindowSpan extends WindowRef {
  /** Unix seconds, inclusive. */
  from: number;
  /** Unix seconds, exclusive. */
  to: number;
}

export function windowIndex(kind: WindowKind, unixSeconds: number): number {
  return Math.floor(unixSeconds / WINDOW_SECONDS[kind]);
}

export function span(kind: WindowKind, index: number): WindowSpan {
  const size = WINDOW_SECONDS[kind];
  return { kind, index, from: index * size, to: index * size + size };
}

/** The last round window before the instant `atSeconds`: at 54:30 the minute 53:00–54:00. */
export function lastRound(kind: WindowKind, atSeconds: number): WindowSpan {
  return span(kind, windowIndex(kind, atSeconds) - 1);
}

/** The window that is still open at `atSeconds`. */
export function openWindow(kind: WindowKind, atSeconds: number): WindowSpan {
  return span(kind, windowIndex(kind, atSeconds));
}

export function minuteToHour(minute: number): number {
  return Math.floor(minute / 60);
}
