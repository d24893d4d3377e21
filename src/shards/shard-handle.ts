// The main thread's side of one shard actor: request/reply matched by id, ingest parts coalesced
// into few large messages, and a dying worker answering everything it owed with 503.
//
// Coalescing: while one ingest message is on its way the next parts wait for its answer, so under
// load each message carries everything that arrived meanwhile. Each message costs both threads a
// wake-up (docs/performance.md). A part someone waits for (an
// acknowledgement that needs it applied) goes at the end of its event-loop turn; a part nobody waits
// for (its request was acknowledged early) waits up to COALESCE_MS for company, which keeps the
// messages to a few hundred a second per shard whatever the request rate. Nothing reads a shard
// without posting what is queued first, so the wait delays no answer.

import { EventEmitter, once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { TopTallyError, fromErrorBody } from '../errors.ts';
import { assertNever, send, type Census, type Drained, type ExportedWindow, type FromShard, type ToShard, type TopEntries, type WindowTotal } from '../protocol/messages.ts';
import { partSize, postableParts, type ShardPart } from '../protocol/shard-part.ts';
import { built, packageFile, threadModule } from '../runtime.ts';
import type { WindowKind } from '../window.ts';

const ENTRY = threadModule('workers/shard-worker', 'workers/boot.mjs');
const TSX_ENTRY = packageFile('workers/shard-worker.ts').href;
const COALESCE_MS = 4;

/**
 * The JS heap a shard may take. Its tables are typed arrays outside the heap, so the heap holds
 * little but messages and cached top-N answers; a shard past this has run away, and is ended and
 * rebuilt like one that died, instead of growing until the whole process is killed.
 */
const SHARD_HEAP_MB = 1024;
/** A worker that neither says it is ready nor exits in this time is ended: its start failed. */
const START_TIMEOUT_MS = 30_000;

export interface ShardWorkerOptions {
  /** The worker's entry module (a URL of plain JavaScript); tests start stand-ins. */
  entry?: string;
  heapMb?: number;
  startTimeoutMs?: number;
}

/** Ingest parts not yet posted; `done` resolves when the worker has applied them. */
interface Batch {
  parts: ShardPart[];
  bytes: number;
  /** Whether anyone waits for `done` (see ingest). */
  waited: boolean;
  done: Promise<void>;
  settle: (applied: Promise<unknown>) => void;
}

interface Waiter {
  kind: ToShard['kind'];
  resolve(reply: FromShard): void;
  reject(err: TopTallyError): void;
}

export class ShardHandle extends EventEmitter<{ exit: [Error] }> {
  readonly index: number;
  readonly #worker: Worker;
  readonly #waiting = new Map<number, Waiter>();
  #nextId = 1;
  #failure: TopTallyError | null = null;
  #queued: Batch | null = null;
  /** Ingest messages posted and not yet answered. */
  #posted = 0;
  /** Bytes of parts queued or posted and not yet applied: what this shard owes. */
  #backlog = 0;
  /** The queued batch's flush, when one is scheduled: at the end of the turn, or in COALESCE_MS. */
  #flushSoon: NodeJS.Immediate | null = null;
  #flushLater: NodeJS.Timeout | null = null;

  private constructor(index: number, options: ShardWorkerOptions) {
    super();
    this.index = index;
    // A stand-in entry (tests) is plain JavaScript, started as it is.
    const [entry, workerData] = options.entry ? [new URL(options.entry), undefined] : [ENTRY, built ? undefined : { entry: TSX_ENTRY }];
    this.#worker = new Worker(entry, {
      workerData,
      name: `shard-${index}`,
      resourceLimits: { maxOldGenerationSizeMb: options.heapMb ?? SHARD_HEAP_MB },
    });
    this.#worker.on('message', (message: FromShard) => this.#onMessage(message));
    this.#worker.on('error', (err) => this.#fail(err));
    this.#worker.on('exit', (code) => this.#fail(new Error(`shard ${index} exited with code ${code}`)));
  }

  /** Starts a worker; rejects (and ends it) when it errs, exits or stays silent before it is ready. */
  static async start(index: number, options: ShardWorkerOptions = {}): Promise<ShardHandle> {
    const handle = new ShardHandle(index, options);
    const worker = handle.#worker;
    const timeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
    const settled = new AbortController();
    const { signal } = settled;
    try {
      const [message] = (await Promise.race([
        once(worker, 'message', { signal }),
        once(worker, 'error', { signal }).then(([err]) => Promise.reject(err)),
        once(worker, 'exit', { signal }).then(([code]) => Promise.reject(new Error(`shard ${index} exited with code ${code} before it was ready`))),
        sleep(timeoutMs, undefined, { signal }).then(() => Promise.reject(new Error(`shard ${index} was not ready within ${timeoutMs} ms`))),
      ])) as [FromShard];
      if (message.kind !== 'ready') throw new Error(`shard ${index} sent ${message.kind} before ready`);
    } catch (err) {
      await handle.terminate();
      throw err;
    } finally {
      settled.abort();
    }
    return handle;
  }

  get pending(): number {
    return this.#waiting.size;
  }

  /** Bytes of counters queued for this worker and not yet applied (overload is judged on it). */
  get backlogBytes(): number {
    return this.#backlog;
  }

  /** True once the worker has died or been stopped: every request to it fails. */
  get failed(): boolean {
    return this.#failure !== null;
  }

  /**
   * Queues a part for this shard; the promise resolves once the worker has applied it. `waited`:
   * whether someone waits for that promise, which sends the part at the end of this turn.
   */
  ingest(part: ShardPart, waited = true): Promise<void> {
    const batch = (this.#queued ??= this.#newBatch());
    batch.parts.push(part);
    const size = partSize(part);
    batch.bytes += size;
    batch.waited ||= waited;
    this.#backlog += size;
    if (this.#posted === 0) this.#schedule(batch);
    return batch.done;
  }

  async top(window: WindowKind, index: number, limit: number): Promise<TopEntries> {
    // Posted after any queued ingest, so the answer includes every counter accepted before the query.
    this.#flush();
    const reply = await this.#request({ kind: 'top', id: this.#nextId++, window, index, limit });
    if (reply.kind !== 'top') throw new Error(`shard ${this.index} answered top with ${reply.kind}`);
    return reply;
  }

  /**
   * A snapshot of these windows: posted after any queued ingest, as a query is, so it covers exactly
   * what was ingested before it.
   */
  async export(windows: { window: WindowKind; index: number }[]): Promise<ExportedWindow[]> {
    this.#flush();
    const reply = await this.#request({ kind: 'export', id: this.#nextId++, windows });
    if (reply.kind !== 'exported') throw new Error(`shard ${this.index} answered export with ${reply.kind}`);
    return reply.windows;
  }

  /** Adds a window's snapshot to that window; the part's buffer is moved to the worker. */
  async load(window: WindowKind, index: number, part: ShardPart): Promise<void> {
    await this.#request({ kind: 'load', id: this.#nextId++, window, index, part });
  }

  /** What the shard holds, queued ingest included: domains, entries, table bytes. */
  async census(): Promise<Census> {
    this.#flush();
    const reply = await this.#request({ kind: 'census', id: this.#nextId++ });
    if (reply.kind !== 'census') throw new Error(`shard ${this.index} answered census with ${reply.kind}`);
    const { domains, entries, bytes } = reply;
    return { domains, entries, bytes };
  }

  /** Every window's total, queued ingest included. */
  async totals(): Promise<WindowTotal[]> {
    this.#flush();
    const reply = await this.#request({ kind: 'totals', id: this.#nextId++ });
    if (reply.kind !== 'totals') throw new Error(`shard ${this.index} answered totals with ${reply.kind}`);
    return reply.windows;
  }

  /** The deltas applied since the last drain, queued ingest included (see ShardState.drain). */
  async drain(): Promise<Drained> {
    this.#flush();
    const reply = await this.#request({ kind: 'drain', id: this.#nextId++ });
    if (reply.kind !== 'drained') throw new Error(`shard ${this.index} answered drain with ${reply.kind}`);
    return { fresh: reply.fresh, parts: reply.parts };
  }

  retain(oldestMinute: number, oldestHour: number): void {
    if (!this.#failure) send(this.#worker, { kind: 'retain', oldestMinute, oldestHour });
  }

  async stop(): Promise<void> {
    this.#flush();
    if (!this.#failure) await this.#request({ kind: 'stop', id: this.#nextId++ });
    this.#failure ??= new TopTallyError('TOPTALLY_ERR_SHUTTING_DOWN', `shard ${this.index} has stopped`);
    this.removeAllListeners('exit');
    await this.#worker.terminate();
  }

  /** Ends the worker at once, without the stop handshake; what it owed is answered with 503. */
  terminate(): Promise<number> {
    return this.#worker.terminate();
  }

  #newBatch(): Batch {
    let settle!: Batch['settle'];
    const done = new Promise<unknown>((resolve) => (settle = resolve)).then(() => undefined);
    // Handled here, once per message: parts nobody waits for (their worker, if it dies, is rebuilt
    // from the journal or loses its memory) must not make an unhandled rejection.
    done.catch(() => {});
    return { parts: [], bytes: 0, waited: false, done, settle };
  }

  /** Arranges for the queued batch to go: now that nothing is in flight, or when it was waited for. */
  #schedule(batch: Batch): void {
    if (this.#flushSoon) return;
    if (batch.waited) {
      if (this.#flushLater) clearTimeout(this.#flushLater);
      this.#flushLater = null;
      this.#flushSoon = setImmediate(() => this.#flush());
    } else {
      this.#flushLater ??= setTimeout(() => this.#flush(), COALESCE_MS);
    }
  }

  /** Posts the queued parts now, in one message. */
  #flush(): void {
    if (this.#flushSoon) clearImmediate(this.#flushSoon);
    if (this.#flushLater) clearTimeout(this.#flushLater);
    this.#flushSoon = this.#flushLater = null;
    const batch = this.#queued;
    if (!batch) return;
    this.#queued = null;
    this.#posted++;
    const applied = this.#request({ kind: 'ingest', id: this.#nextId++, parts: postableParts(batch.parts) });
    const next = (): void => {
      this.#backlog -= batch.bytes;
      if (--this.#posted === 0 && this.#queued) this.#schedule(this.#queued);
    };
    applied.then(next, next);
    batch.settle(applied);
  }

  #request(message: ToShard & { id: number }): Promise<FromShard> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting.set(message.id, { kind: message.kind, resolve, reject });
      send(this.#worker, message);
    });
  }

  #onMessage(message: FromShard): void {
    switch (message.kind) {
      case 'ready':
        return;
      case 'applied':
      case 'top':
      case 'census':
      case 'totals':
      case 'exported':
      case 'drained':
      case 'stopped':
      case 'error': {
        const waiter = this.#waiting.get(message.id);
        if (!waiter) throw new Error(`shard ${this.index} answered unknown request ${message.id}`);
        this.#waiting.delete(message.id);
        if (message.kind !== 'error') return waiter.resolve(message);
        // Counters the shard could not take may be half applied, and some were acknowledged once
        // journaled: only a rebuild from the journal makes its state whole again.
        if (waiter.kind === 'ingest') return this.#end(new Error(`shard ${this.index} failed to apply counters: ${message.error.message}`));
        waiter.reject(fromErrorBody(message.error));
        return;
      }
      default:
        assertNever(message);
    }
  }

  /** Treats the worker as dead (see #fail) and ends it. */
  #end(cause: Error): void {
    this.#fail(cause);
    void this.#worker.terminate();
  }

  #fail(cause: Error): void {
    if (this.#failure) return;
    this.#failure = new TopTallyError(
      'TOPTALLY_ERR_SHARD_UNAVAILABLE',
      `Shard ${this.index} is unavailable: ${cause.message}`,
      { shard: this.index, retryAfter: 1 },
    );
    for (const waiter of this.#waiting.values()) waiter.reject(this.#failure);
    this.#waiting.clear();
    this.emit('exit', cause);
  }
}
