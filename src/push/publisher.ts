// Decides what to push and when: the last round window's top when a window closes on the clock or a
// late counter changes it, and the open window's running top at most once per live interval, only
// when it changed. Each window kind is asked of the shards once, for the largest limit subscribed,
// and sliced per limit; the front end publishes each (window, limit) once to all its subscribers.

import { EventEmitter } from 'node:events';
import type { Clock, Timer } from '../clock.ts';
import type { TopFrame } from '../api/ws-protocol.ts';
import type { StatsService, WindowStats } from '../query/stats.ts';
import { windowIndex, type WindowKind } from '../window.ts';
import type { WindowTicker } from './window-ticker.ts';

interface Topic {
  subscribers: number;
  /** Subscribers that also want the running top. */
  live: number;
  /** Bumped on every final push, so a snapshot can tell it was overtaken. */
  seq: number;
  lastFinal?: TopFrame;
  lastLive?: TopFrame;
}

/** Per window kind: its topics by limit, and the state of its two jobs. */
interface KindState {
  topics: Map<number, Topic>;
  /** The newest closed window known to be final (-1: none yet): the one a final push is for. */
  finalIndex: number;
  finalRunning: boolean;
  finalAgain: boolean;
  liveRunning: boolean;
  liveDirty: boolean;
  liveScheduled: boolean;
  liveTimer: Timer | null;
  lastLiveAt: number;
}

export interface PublisherOptions {
  stats: StatsService;
  clock: Clock;
  tickers: Record<WindowKind, WindowTicker>;
  liveIntervalMs: number;
  /**
   * Resolves once a closed window's answer is final (cluster mode: every live node has flushed
   * past its end); without it a window is final as it closes.
   */
  whenFinal?: (kind: WindowKind, index: number) => Promise<void>;
  onError: (err: unknown) => void;
}

/** Emits 'push' once per update of a (window kind, limit); the front end delivers it to every subscriber. */
export class Publisher extends EventEmitter<{ push: [kind: WindowKind, limit: number, frame: TopFrame] }> {
  readonly #options: PublisherOptions;
  readonly #kinds: Record<WindowKind, KindState> = { minute: newKindState(), hour: newKindState() };
  readonly #unlisten: (() => void)[] = [];
  #stopped = false;

  constructor(options: PublisherOptions) {
    super();
    this.#options = options;
    for (const kind of ['minute', 'hour'] as const) {
      const onClose = (closed: number): void => {
        this.#requestFinalOnceFinal(kind, closed);
        // The new open window may already hold counters sent ahead of time.
        this.#requestLive(kind);
      };
      options.tickers[kind].on('close', onClose);
      this.#unlisten.push(() => options.tickers[kind].off('close', onClose));
    }
    const onTouched = (kind: WindowKind, index: number): void => {
      if (this.#kinds[kind].topics.size === 0) return;
      const open = windowIndex(kind, this.#nowSeconds());
      if (index === open) this.#requestLive(kind);
      else if (index === open - 1) this.#requestFinalOnceFinal(kind, index);
    };
    options.stats.on('touched', onTouched);
    this.#unlisten.push(() => options.stats.off('touched', onTouched));
  }

  add(kind: WindowKind, limit: number, live: boolean): void {
    const state = this.#kinds[kind];
    let topic = state.topics.get(limit);
    if (!topic) state.topics.set(limit, (topic = { subscribers: 0, live: 0, seq: 0 }));
    topic.subscribers++;
    if (live && topic.live++ === 0) this.#requestLive(kind);
  }

  remove(kind: WindowKind, limit: number, live: boolean): void {
    const state = this.#kinds[kind];
    const topic = state.topics.get(limit);
    if (!topic) return;
    if (live) topic.live--;
    if (--topic.subscribers === 0) state.topics.delete(limit);
  }

  /**
   * The last round window's top for a new subscriber (added first), or null when a push on its topic
   * went out while this was computed: that push is newer, and the subscriber already has it.
   */
  async snapshot(kind: WindowKind, limit: number): Promise<TopFrame | null> {
    const topic = this.#kinds[kind].topics.get(limit);
    if (!topic) throw new Error(`snapshot of ${kind}/${limit} without a subscriber`);
    const seq = topic.seq;
    const stats = await this.#options.stats.top(kind, windowIndex(kind, this.#nowSeconds()) - 1, limit);
    if (topic.seq !== seq) return null;
    const frame = frameOf(stats, limit, true);
    // A new topic starts from what its first subscriber saw, so a late counter that changes nothing
    // visible is not pushed again.
    topic.lastFinal ??= frame;
    return frame;
  }

  /** The running top last pushed on a live topic, while its window is still open. */
  currentLive(kind: WindowKind, limit: number): TopFrame | undefined {
    const last = this.#kinds[kind].topics.get(limit)?.lastLive;
    return last && last.to > this.#nowSeconds() ? last : undefined;
  }

  stop(): void {
    this.#stopped = true;
    for (const unlisten of this.#unlisten) unlisten();
    for (const state of Object.values(this.#kinds)) state.liveTimer?.cancel();
  }

  #nowSeconds(): number {
    return Math.floor(this.#options.clock.now() / 1000);
  }

  /**
   * A final push for the closed window `index`, once its answer is final: a counter that touches it
   * soon after it closed (a late one, or one this node had yet to count) must not push it as final
   * while another node may still hold counters for it.
   */
  #requestFinalOnceFinal(kind: WindowKind, index: number): void {
    const ready = (): void => {
      const state = this.#kinds[kind];
      state.finalIndex = Math.max(state.finalIndex, index);
      this.#requestFinal(kind);
    };
    const final = this.#options.whenFinal?.(kind, index);
    if (final) void final.then(ready, this.#options.onError);
    else ready();
  }

  /** One final computation at a time per kind; requests made meanwhile cause exactly one more. */
  #requestFinal(kind: WindowKind): void {
    const state = this.#kinds[kind];
    if (state.finalRunning) {
      state.finalAgain = true;
      return;
    }
    state.finalRunning = true;
    // Deferred so an ingest that reported the touch has queued its counters before the query.
    queueMicrotask(async () => {
      do {
        state.finalAgain = false;
        if (this.#stopped) break;
        await this.#computeFinal(kind).catch(this.#options.onError);
      } while (state.finalAgain);
      state.finalRunning = false;
    });
  }

  /**
   * Pushes the newest window known to be final, not the newest closed one: a window whose finality
   * came late (a node lagged) may be followed by one that closed meanwhile and is not final yet.
   */
  async #computeFinal(kind: WindowKind): Promise<void> {
    const { topics, finalIndex } = this.#kinds[kind];
    if (topics.size === 0 || finalIndex < 0) return;
    const wanted = new Map(topics);
    const stats = await this.#options.stats.top(kind, finalIndex, maxLimit(wanted));
    for (const [limit, topic] of wanted) {
      if (topics.get(limit) !== topic) continue;
      const frame = frameOf(stats, limit, true);
      const last = topic.lastFinal;
      if (last && (last.from > frame.from || sameTop(last, frame))) continue;
      topic.lastFinal = frame;
      topic.seq++;
      this.emit('push', kind, limit, frame);
    }
  }

  /** At most one live computation per interval per kind, and only once something touched the window. */
  #requestLive(kind: WindowKind): void {
    const state = this.#kinds[kind];
    state.liveDirty = true;
    if (state.liveScheduled || state.liveRunning || this.#stopped) return;
    state.liveScheduled = true;
    const fire = (): void => {
      state.liveScheduled = false;
      state.liveTimer = null;
      if (!this.#stopped) void this.#runLive(kind);
    };
    const at = state.lastLiveAt + this.#options.liveIntervalMs;
    if (at <= this.#options.clock.now()) queueMicrotask(fire);
    else state.liveTimer = this.#options.clock.at(at, fire);
  }

  async #runLive(kind: WindowKind): Promise<void> {
    const state = this.#kinds[kind];
    state.liveDirty = false;
    state.liveRunning = true;
    state.lastLiveAt = this.#options.clock.now();
    await this.#computeLive(kind).catch(this.#options.onError);
    state.liveRunning = false;
    if (state.liveDirty) this.#requestLive(kind);
  }

  async #computeLive(kind: WindowKind): Promise<void> {
    const { topics } = this.#kinds[kind];
    const wanted = new Map([...topics].filter(([, topic]) => topic.live > 0));
    if (wanted.size === 0) return;
    const stats = await this.#options.stats.top(kind, windowIndex(kind, this.#nowSeconds()), maxLimit(wanted));
    // Closed meanwhile: its final push says the rest.
    if (stats.window.to <= this.#nowSeconds()) return;
    for (const [limit, topic] of wanted) {
      if (topics.get(limit) !== topic || topic.live === 0) continue;
      const frame = frameOf(stats, limit, false);
      const last = topic.lastLive?.from === frame.from ? topic.lastLive : undefined;
      if (last ? sameTop(last, frame) : frame.top.length === 0) continue;
      topic.lastLive = frame;
      this.emit('push', kind, limit, frame);
    }
  }
}

function newKindState(): KindState {
  return {
    topics: new Map(),
    finalIndex: -1,
    finalRunning: false,
    finalAgain: false,
    liveRunning: false,
    liveDirty: false,
    liveScheduled: false,
    liveTimer: null,
    lastLiveAt: -Infinity,
  };
}

function maxLimit(topics: Map<number, Topic>): number {
  return Math.max(...topics.keys());
}

function frameOf(stats: WindowStats, limit: number, final: boolean): TopFrame {
  const { kind, from, to } = stats.window;
  return { type: 'top', window: kind, from, to, top: stats.top.slice(0, limit), final };
}

function sameTop(a: TopFrame, b: TopFrame): boolean {
  if (a.from !== b.from || a.top.length !== b.top.length) return false;
  return a.top.every((entry, i) => entry.domain === b.top[i].domain && entry.count === b.top[i].count);
}
