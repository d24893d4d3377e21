// Answers "top N of a window": asks the backend's partitions, merges, and keeps a closed window's answer until an
// ingest touches that window again, so reading stats costs the same at 10 or 1,000,000 domains. An open
// window's answer is kept the same way while the backend says every change reaches the versions
// promptly (openCacheable: cluster mode while it follows the change stream), and is neither served
// nor stored otherwise.

import { EventEmitter } from 'node:events';
import type { StateBackend } from '../backend/state-backend.ts';
import type { Clock } from '../clock.ts';
import { TopTallyError } from '../errors.ts';
import { oldestRetained, type Retention } from '../retention.ts';
import { minuteToHour, span, type WindowKind, type WindowSpan } from '../window.ts';
import { merge, type MergedTop } from './merge.ts';

export interface WindowStats extends MergedTop {
  window: WindowSpan;
}

interface Cached {
  version: number;
  limit: number;
  merged: MergedTop;
}

/**
 * 'touched' fires for every window the backend is about to change or says changed elsewhere (the
 * push publisher listens).
 */
export class StatsService extends EventEmitter<{ touched: [kind: WindowKind, index: number] }> {
  readonly #backend: StateBackend;
  readonly #clock: Clock;
  readonly #retention: Retention;
  /**
   * By window index, per kind: bumped whenever an ingest touches the window, so an answer computed
   * before is not kept. Keyed by number, not by a string built per ingest.
   */
  readonly #versions: Record<WindowKind, Map<number, number>> = { minute: new Map(), hour: new Map() };
  readonly #cache: Record<WindowKind, Map<number, Cached>> = { minute: new Map(), hour: new Map() };
  /** Answers served from the cache, for /metrics. */
  readonly hits = { open: 0, closed: 0 };

  constructor(backend: StateBackend, clock: Clock, retention: Retention) {
    super();
    this.#backend = backend;
    this.#clock = clock;
    this.#retention = retention;
    const touched = (minutes: readonly number[]): void => this.touched(minutes);
    backend.on('touched', touched);
    backend.on('changedElsewhere', touched);
  }

  /** Forgets answers for these minutes' windows (and their hours): they are about to change. */
  touched(minutes: Iterable<number>): void {
    for (const minute of minutes) {
      const hour = minuteToHour(minute);
      this.#bump('minute', minute);
      this.#bump('hour', hour);
      this.emit('touched', 'minute', minute);
      this.emit('touched', 'hour', hour);
    }
  }

  /** Checks the window is inside the retention and not in the future; throws a 400 otherwise. */
  check(kind: WindowKind, index: number): WindowSpan {
    const window = span(kind, index);
    const nowSeconds = Math.floor(this.#clock.now() / 1000);
    const oldest = oldestRetained(this.#retention, kind, nowSeconds);
    if (index < oldest) {
      throw new TopTallyError(
        'TOPTALLY_ERR_OUT_OF_RETENTION',
        `The ${kind} starting at ${window.from} is older than the retention (oldest kept starts at ${span(kind, oldest).from})`,
      );
    }
    if (window.from > nowSeconds) {
      throw new TopTallyError('TOPTALLY_ERR_INVALID_PARAMETER', `The ${kind} starting at ${window.from} has not begun`);
    }
    return window;
  }

  async top(kind: WindowKind, index: number, limit: number): Promise<WindowStats> {
    const window = this.check(kind, index);
    const versions = this.#versions[kind];
    const cache = this.#cache[kind];
    const closed = window.to * 1000 <= this.#clock.now();
    const cacheable = (): boolean => closed || (this.#backend.openCacheable?.() ?? false);
    const version = versions.get(index) ?? 0;
    const cached = cache.get(index);
    if (cached && cached.version === version && cached.limit >= limit && cacheable()) {
      this.hits[closed ? 'closed' : 'open']++;
      return { window, ...slice(cached.merged, limit) };
    }
    // Asked in the same step as the version is read: the backend's answer covers every change that
    // bumped the version before, and one that bumps it later keeps this answer out of the cache.
    const wasCacheable = cacheable();
    const merged = merge(await this.#backend.top(kind, index, limit), limit);
    if (wasCacheable && cacheable() && (versions.get(index) ?? 0) === version) cache.set(index, { version, limit, merged });
    return { window, ...merged };
  }

  /** Forgets windows that left the retention. */
  prune(nowSeconds: number): void {
    const oldest = {
      minute: oldestRetained(this.#retention, 'minute', nowSeconds),
      hour: oldestRetained(this.#retention, 'hour', nowSeconds),
    };
    for (const kind of ['minute', 'hour'] as const) {
      for (const map of [this.#versions[kind], this.#cache[kind]]) {
        for (const index of map.keys()) if (index < oldest[kind]) map.delete(index);
      }
    }
  }

  #bump(kind: WindowKind, index: number): void {
    const versions = this.#versions[kind];
    versions.set(index, (versions.get(index) ?? 0) + 1);
    this.#cache[kind].delete(index);
  }
}

function slice(merged: MergedTop, limit: number): MergedTop {
  return merged.top.length <= limit ? merged : { ...merged, top: merged.top.slice(0, limit) };
}
