// The pure state of one shard: per-minute and per-hour count tables for the domains it owns.
// No I/O and no clock: the main thread says which windows are still retained.

import type { Census, Drained, TopEntries, WindowKind, WindowTotal } from '../src/protocol/messages.ts';
import { PartBuilder, viewPart, type ShardPart } from '../src/protocol/shard-part.ts';
import { CountTable } from './count-table.ts';
import { NameTable } from './name-table.ts';
import { topK } from './top-k.ts';

/** What a shard backend must do; another backend (on disk, say) can stand behind the same interface. */
export interface ShardStore {
  /** Adds the counters; returns how many entries it took. */
  apply(part: ShardPart): number;
  top(window: WindowKind, index: number, limit: number): TopEntries;
  /** Drops every window older than these indexes; counters for them are ignored from now on. */
  retain(oldestMinute: number, oldestHour: number): void;
  /** One window's entries as parts of at most `maxEntries` each (minutes unused), for a snapshot. */
  exportWindow(kind: WindowKind, index: number, maxEntries?: number): ShardPart[];
  /** Adds a window's snapshot to that window alone (an hour's must not touch its minutes). */
  load(kind: WindowKind, index: number, part: ShardPart): number;
}

interface Window {
  table: CountTable;
  /** Top entries as last computed, until a counter changes the window. */
  cached: TopEntries | null;
}

const EMPTY_TOP: TopEntries = { domains: [], counts: [], total: 0, size: 0 };

/** Entries per part of a window snapshot: bounds a message, and what a damaged frame can lose. */
const EXPORT_PART_ENTRIES = 65_536;

export class ShardState implements ShardStore {
  readonly #names = new NameTable();
  readonly #windows: Record<WindowKind, Map<number, Window>> = { minute: new Map(), hour: new Map() };
  #oldest: Record<WindowKind, number> = { minute: -Infinity, hour: -Infinity };
  /**
   * Per minute, what apply() added since the last drain (cluster mode reads it instead of every
   * entry): kept only once a first drain asked for it, so local mode keeps nothing.
   */
  #deltas: Map<number, CountTable> | null = null;

  /** What the shard holds: distinct domains, (domain, window) entries, and the bytes of its tables. */
  census(): Census {
    let entries = 0;
    let bytes = this.#names.bytes;
    for (const kind of ['minute', 'hour'] as const) {
      for (const { table } of this.#windows[kind].values()) {
        entries += table.size;
        bytes += table.bytes;
      }
    }
    return { domains: this.#names.size, entries, bytes };
  }

  /** Every window's total. */
  totals(): WindowTotal[] {
    const totals: WindowTotal[] = [];
    for (const window of ['minute', 'hour'] as const) {
      for (const [index, { table }] of this.#windows[window]) totals.push({ window, index, total: table.total });
    }
    return totals;
  }

  apply(part: ShardPart): number {
    const { entries, names, nameEnds, counts, minutes, hashes } = viewPart(part);
    let minuteIndex = NaN;
    let minuteWindow: Window | undefined;
    let hourIndex = NaN;
    let hourWindow: Window | undefined;
    for (let i = 0; i < entries; i++) {
      const count = counts[i];
      if (count === 0) continue;
      if (minutes[i] !== minuteIndex) {
        minuteIndex = minutes[i];
        minuteWindow = this.#window('minute', minuteIndex);
        const hour = Math.floor(minuteIndex / 60);
        if (hour !== hourIndex) {
          hourIndex = hour;
          hourWindow = this.#window('hour', hourIndex);
        }
      }
      if (!minuteWindow && !hourWindow) continue;
      const id = this.#names.idOf(hashes[i], names, i === 0 ? 0 : nameEnds[i - 1], nameEnds[i]);
      this.#add(minuteWindow, id, count);
      this.#add(hourWindow, id, count);
      if (this.#deltas) this.#addDelta(minuteIndex, id, count);
    }
    return entries;
  }

  /**
   * The (minute, domain) deltas applied since the last drain, as parts, and forgets them. The first
   * drain finds none kept (`fresh`): from it on, apply() keeps them.
   */
  drain(maxEntries = EXPORT_PART_ENTRIES): Drained {
    if (!this.#deltas) {
      this.#deltas = new Map();
      return { fresh: true, parts: [] };
    }
    const parts: ShardPart[] = [];
    let builder = new PartBuilder();
    for (const [minute, table] of this.#deltas) {
      table.forEach((id, count) => {
        builder.addBytes(this.#names.bytesOf(id), this.#names.hashOf(id), count, minute);
        this.#names.release(id);
        if (builder.entries === maxEntries) {
          parts.push(builder.finish());
          builder = new PartBuilder();
        }
      });
    }
    if (builder.entries > 0) parts.push(builder.finish());
    this.#deltas.clear();
    return { fresh: false, parts };
  }

  top(kind: WindowKind, index: number, limit: number): TopEntries {
    const window = this.#windows[kind].get(index);
    if (!window) return EMPTY_TOP;
    if (!window.cached || window.cached.domains.length < Math.min(limit, window.table.size)) {
      window.cached = topK(window.table, limit, this.#names);
    }
    const { domains, counts, total, size } = window.cached;
    if (domains.length <= limit) return window.cached;
    return { domains: domains.slice(0, limit), counts: counts.slice(0, limit), total, size };
  }

  retain(oldestMinute: number, oldestHour: number): void {
    this.#oldest = { minute: oldestMinute, hour: oldestHour };
    for (const kind of ['minute', 'hour'] as const) {
      for (const [index, window] of this.#windows[kind]) {
        if (index >= this.#oldest[kind]) continue;
        window.table.forEach((id) => this.#names.release(id));
        this.#windows[kind].delete(index);
      }
    }
  }

  exportWindow(kind: WindowKind, index: number, maxEntries = EXPORT_PART_ENTRIES): ShardPart[] {
    const parts: ShardPart[] = [];
    let builder = new PartBuilder();
    this.#windows[kind].get(index)?.table.forEach((id, count) => {
      builder.addBytes(this.#names.bytesOf(id), this.#names.hashOf(id), count, index);
      if (builder.entries === maxEntries) {
        parts.push(builder.finish());
        builder = new PartBuilder();
      }
    });
    if (builder.entries > 0) parts.push(builder.finish());
    return parts;
  }

  load(kind: WindowKind, index: number, part: ShardPart): number {
    const window = this.#window(kind, index);
    if (!window) return 0;
    const { entries, names, nameEnds, counts, hashes } = viewPart(part);
    for (let i = 0; i < entries; i++) {
      if (counts[i] === 0) continue;
      this.#add(window, this.#names.idOf(hashes[i], names, i === 0 ? 0 : nameEnds[i - 1], nameEnds[i]), counts[i]);
    }
    return entries;
  }

  /** The window to add to, or undefined when it is older than the retention. */
  #window(kind: WindowKind, index: number): Window | undefined {
    if (index < this.#oldest[kind]) return undefined;
    let window = this.#windows[kind].get(index);
    if (!window) {
      window = { table: new CountTable(), cached: null };
      this.#windows[kind].set(index, window);
    }
    return window;
  }

  #addDelta(minute: number, id: number, count: number): void {
    let table = this.#deltas!.get(minute);
    if (!table) this.#deltas!.set(minute, (table = new CountTable()));
    if (table.add(id, count)) this.#names.retain(id);
  }

  #add(window: Window | undefined, id: number, count: number): void {
    if (!window) return;
    window.cached = null;
    if (window.table.add(id, count)) this.#names.retain(id);
  }
}
