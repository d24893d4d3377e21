// The main thread's side of one shard actor: request/reply matched by id, ingest parts coalesced
// into one message per event-loop turn, and a dying worker answering everything it owed with 503.

import { EventEmitter, once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { TopTallyError, fromErrorBody } from '../errors.ts';
import { assertNever, send, type Census, type FromShard, type ToShard, type TopEntries } from '../protocol/messages.ts';
import type { ShardPart } from '../protocol/shard-part.ts';
import type { WindowKind } from '../window.ts';

const BOOT = new URL('../../workers/boot.mjs', import.meta.url);
const ENTRY = new URL('../../workers/shard-worker.ts', import.meta.url).href;

/** Ingest parts queued in one event-loop turn: `flush` posts them (once); `done` resolves when applied. */
interface Turn {
  parts: ShardPart[];
  bytes: number;
  done: Promise<void>;
  flush: () => void;
}

interface Waiter {
  resolve(reply: FromShard): void;
  reject(err: TopTallyError): void;
}

export class ShardHandle extends EventEmitter<{ exit: [Error] }> {
  readonly index: number;
  readonly #worker: Worker;
  readonly #waiting = new Map<number, Waiter>();
  #nextId = 1;
  #failure: TopTallyError | null = null;
  #turn: Turn | null = null;
  /** Bytes of parts queued or sent and not yet applied: what this shard owes. */
  #backlog = 0;

  private constructor(index: number) {
    super();
    this.index = index;
    this.#worker = new Worker(BOOT, { workerData: { entry: ENTRY }, name: `shard-${index}` });
    this.#worker.on('message', (message: FromShard) => this.#onMessage(message));
    this.#worker.on('error', (err) => this.#fail(err));
    this.#worker.on('exit', (code) => this.#fail(new Error(`shard ${index} exited with code ${code}`)));
  }

  static async start(index: number): Promise<ShardHandle> {
    const handle = new ShardHandle(index);
    const [message] = (await Promise.race([
      once(handle.#worker, 'message'),
      once(handle.#worker, 'error').then(([err]) => Promise.reject(err)),
    ])) as [FromShard];
    if (message.kind !== 'ready') throw new Error(`shard ${index} sent ${message.kind} before ready`);
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
   * Queues a part for this shard. Parts queued in the same event-loop turn travel as one message;
   * the promise resolves once the worker has applied them.
   */
  ingest(part: ShardPart): Promise<void> {
    const turn = (this.#turn ??= this.#newTurn());
    turn.parts.push(part);
    turn.bytes += part.buffer.byteLength;
    this.#backlog += part.buffer.byteLength;
    return turn.done;
  }

  async top(window: WindowKind, index: number, limit: number): Promise<TopEntries> {
    // Posted after any queued ingest, so the answer includes every counter accepted before the query.
    this.#turn?.flush();
    const reply = await this.#request({ kind: 'top', id: this.#nextId++, window, index, limit });
    if (reply.kind !== 'top') throw new Error(`shard ${this.index} answered top with ${reply.kind}`);
    return reply;
  }

  /** What the shard holds: domains, entries, table bytes. */
  async census(): Promise<Census> {
    const reply = await this.#request({ kind: 'census', id: this.#nextId++ });
    if (reply.kind !== 'census') throw new Error(`shard ${this.index} answered census with ${reply.kind}`);
    const { domains, entries, bytes } = reply;
    return { domains, entries, bytes };
  }

  retain(oldestMinute: number, oldestHour: number): void {
    if (!this.#failure) send(this.#worker, { kind: 'retain', oldestMinute, oldestHour });
  }

  async stop(): Promise<void> {
    if (!this.#failure) await this.#request({ kind: 'stop', id: this.#nextId++ });
    this.#failure ??= new TopTallyError('TOPTALLY_ERR_SHUTTING_DOWN', `shard ${this.index} has stopped`);
    this.removeAllListeners('exit');
    await this.#worker.terminate();
  }

  /** Ends the worker at once, without the stop handshake; what it owed is answered with 503. */
  terminate(): Promise<number> {
    return this.#worker.terminate();
  }

  #newTurn(): Turn {
    let flushed = false;
    let settle!: (applied: Promise<void>) => void;
    const turn: Turn = {
      parts: [],
      bytes: 0,
      done: new Promise<void>((resolve) => (settle = resolve)),
      flush: () => {
        if (flushed) return;
        flushed = true;
        settle(this.#flush(turn));
      },
    };
    setImmediate(turn.flush);
    return turn;
  }

  async #flush({ parts, bytes }: Turn): Promise<void> {
    this.#turn = null;
    try {
      await this.#request({ kind: 'ingest', id: this.#nextId++, parts });
    } finally {
      this.#backlog -= bytes;
    }
  }

  #request(message: ToShard & { id: number }): Promise<FromShard> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting.set(message.id, { resolve, reject });
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
      case 'stopped':
      case 'error': {
        const waiter = this.#waiting.get(message.id);
        if (!waiter) throw new Error(`shard ${this.index} answered unknown request ${message.id}`);
        this.#waiting.delete(message.id);
        if (message.kind === 'error') waiter.reject(fromErrorBody(message.error));
        else waiter.resolve(message);
        return;
      }
      default:
        assertNever(message);
    }
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
