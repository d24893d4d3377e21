// What the nodes of one cluster tell each other, through Redis: the settings fixed for the cluster
// (the partition count), heartbeats carrying each node's flushed-through time and whether its
// flushes succeed, and a stream of the minutes each flush changed. From them a node knows when a
// closed window is final (every live node that can flush has flushed past its end) and which cached
// answers and pushes another node's counters changed.
//
// The change stream is what lets a node serve an open window from its cache, so it is kept prompt
// and its health is known: a node appends the minutes a batch changed as soon as Redis confirms the
// batch (one XADD in flight, the minutes confirmed meanwhile go in the next), and reads the stream
// with XREAD BLOCK on a connection of its own, so other nodes learn of a change about a round trip
// after it is in Redis. Every change to a window is in Redis before its entry is appended, so an
// answer read from Redis stays current until an entry for its window is read. The reader is
// `following` while its connection answers in time (a blocked read returns at least every
// BLOCK_MAX_MS); after an error, a late answer or a reconnect it is not, until it has reconnected,
// found the stream's end and emitted 'reset' (any window may have changed meanwhile, and a failover
// may have lost entries).

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../clock.ts';
import { CONFIG_KEY, NODES_KEY } from './keys.ts';
import type { DedicatedConnection, RedisLink } from './redis-link.ts';

const CHANGES_KEY = '{tt}:changes';
/** Entries kept in the change stream: nodes follow it as it grows, so a few seconds' worth is plenty. */
const CHANGES_KEPT = 10_000;
/** Slack past a blocked read's own timeout before its connection counts as stalled (scheduling, a busy event loop). */
const STALL_MARGIN_MS = 500;
/** A read of the change stream blocks for the flush interval, at most this long: it bounds how long a stalled connection goes unnoticed. */
const BLOCK_MAX_MS = 1000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;
export const HEARTBEAT_MS = 250;
/** A node whose last heartbeat is older than this (wall clock) no longer holds finals back. */
export const DEAD_AFTER_MS = 2000;
const NODE_ID_FILE = 'node-id';

/** The node id kept in the data directory, written on first start. */
export async function nodeId(dataDir: string, configured: string): Promise<string> {
  if (configured !== '') return configured;
  const file = path.join(dataDir, NODE_ID_FILE);
  const kept = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (kept !== null && kept.trim() !== '') return kept.trim();
  const id = `node-${randomBytes(6).toString('hex')}`;
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, id + '\n');
  return id;
}

/** The cluster was set up with another partition count: no retry mends that. */
export class PartitionMismatch extends Error {}

/** Records the partition count on first use; throws PartitionMismatch when the cluster was set up with another. */
export async function checkPartitions(link: RedisLink, partitions: number): Promise<void> {
  await link.call(CONFIG_KEY, ['HSETNX', CONFIG_KEY, 'partitions', String(partitions)]);
  const recorded = Number(String(await link.call(CONFIG_KEY, ['HGET', CONFIG_KEY, 'partitions'])));
  if (recorded !== partitions) {
    throw new PartitionMismatch(`this Redis holds a cluster set up with --partitions ${recorded}; this node was started with --partitions ${partitions}: start it with --partitions ${recorded}`);
  }
}

interface Peer {
  through: number;
  beatAt: number;
  /** Whether its flushes reach Redis: one that cannot flush holds no final back. */
  flushing: boolean;
  /** Its process's boot id: another one means the node restarted (and recovered its journal). */
  boot: string;
}

/**
 * What became of the process that claimed something (an idempotency key): still running, restarted
 * since (its recovery is done: it heartbeats only after), or not heard from.
 */
export type Claimant = 'running' | 'restarted' | 'down';

export interface RegistryOptions {
  link: RedisLink;
  nodeId: string;
  clock: Clock;
  /** This node's flushed-through time (toptally's clock, ms). */
  flushedThrough: () => number;
  /** Whether this node's flushes reach Redis now (its last call did not fail). */
  flushing: () => boolean;
  /** The flush interval: how often heartbeats are awaited for finals, and how long a read of the change stream blocks (at most 1 s). */
  pollMs: number;
  onError?: (err: Error) => void;
}

/**
 * 'changed': other nodes changed these minutes' windows (and their hours). 'reset': the change
 * stream could not be read for a while, so any window may have changed meanwhile.
 */
export class Registry extends EventEmitter<{ changed: [minutes: number[]]; reset: [] }> {
  readonly #o: RegistryOptions;
  #peers = new Map<string, Peer>();
  #lastId = '$';
  #beat: NodeJS.Timeout | null = null;
  #pending = new Set<number>();
  #announcing = false;
  /** announce() calls so far, and how many of them are in the stream: what announced() waits for. */
  #announcedSeq = 0;
  #appendedSeq = 0;
  #appendWaiters: { seq: number; resolve: () => void }[] = [];
  #stopped = false;
  /** The change stream's reader: 'following' while it reads every entry promptly. */
  #reader: 'starting' | 'following' | 'lost' = 'starting';
  /** When the reader's connection last answered (performance.now()). */
  #answeredAt = 0;
  #connection: DedicatedConnection | null = null;
  /** This process's boot id, new at every start. */
  readonly boot = randomBytes(6).toString('hex');

  constructor(options: RegistryOptions) {
    super();
    this.#o = options;
  }

  async start(): Promise<void> {
    // Changes from now on: what came before is already in Redis for any query.
    this.#lastId = await this.#streamEnd((key, args) => this.#o.link.call(key, args));
    await this.#heartbeat();
    this.#beat = setInterval(() => void this.#heartbeat(), HEARTBEAT_MS);
    this.#beat.unref();
    void this.#follow();
  }

  /**
   * Whether every change other nodes make reaches this node about a round trip after it is in Redis:
   * only then may an answer for a window still open be served from a cache.
   */
  get following(): boolean {
    return this.#reader === 'following' && performance.now() - this.#answeredAt < this.#blockMs + STALL_MARGIN_MS;
  }

  get #blockMs(): number {
    return Math.max(1, Math.round(Math.min(this.#o.pollMs, BLOCK_MAX_MS)));
  }

  /** Minutes a batch of this node's just applied in Redis changed: appended to the change stream now. */
  announce(minutes: Iterable<number>): void {
    for (const minute of minutes) this.#pending.add(minute);
    this.#announcedSeq++;
    void this.#announce();
  }

  /**
   * Resolves once every change announced so far is in the change stream; rejects after `timeoutMs`.
   * An acknowledgement that promises other nodes the counter waits for this.
   */
  announced(timeoutMs: number): Promise<void> {
    const seq = this.#announcedSeq;
    if (this.#appendedSeq >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#appendWaiters = this.#appendWaiters.filter((w) => w !== waiter);
        reject(new Error(`the change stream did not take this node's changes within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = { seq, resolve: () => (clearTimeout(timer), resolve()) };
      this.#appendWaiters.push(waiter);
    });
  }

  /** The nodes heard from within DEAD_AFTER_MS, this one included. */
  live(): string[] {
    const now = Date.now();
    return [this.#o.nodeId, ...[...this.#peers].filter(([id, p]) => id !== this.#o.nodeId && now - p.beatAt < DEAD_AFTER_MS).map(([id]) => id)];
  }

  /**
   * Whether every live node that can flush has flushed everything it acknowledged before `endMs`.
   * A node that stopped beating, or whose flushes fail, no longer holds the window back: what it
   * sends later arrives as late counters.
   */
  final(endMs: number): boolean {
    if (this.#o.flushing() && this.#o.flushedThrough() < endMs) return false;
    const now = Date.now();
    for (const [id, peer] of this.#peers) {
      if (id === this.#o.nodeId || now - peer.beatAt >= DEAD_AFTER_MS || !peer.flushing) continue;
      if (peer.through < endMs) return false;
    }
    return true;
  }

  /**
   * Resolves true once final(endMs), however long a live node that flushes takes to get there; false
   * when the registry stops first. Each node is bounded by itself: by its heartbeats and its flushes.
   */
  async whenFinal(endMs: number): Promise<boolean> {
    // Fresh heartbeats first: the ones at hand may predate the window's end.
    await this.#heartbeat();
    while (!this.#stopped) {
      if (this.final(endMs)) return true;
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.#o.pollMs, HEARTBEAT_MS)));
      await this.#heartbeat();
    }
    return false;
  }

  /** What became of process `boot` of node `nodeId`, by the last heartbeats (this node's own included). */
  claimant(nodeId: string, boot: string): Claimant {
    if (nodeId === this.#o.nodeId) return boot === this.boot ? 'running' : 'restarted';
    const peer = this.#peers.get(nodeId);
    if (!peer || Date.now() - peer.beatAt >= DEAD_AFTER_MS) return 'down';
    return peer.boot === boot ? 'running' : 'restarted';
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#beat) clearInterval(this.#beat);
    this.#connection?.close();
    await this.#o.link.call(NODES_KEY, ['HDEL', NODES_KEY, this.#o.nodeId]).catch(() => {});
  }

  async #heartbeat(): Promise<void> {
    if (this.#stopped) return;
    const { link, nodeId } = this.#o;
    try {
      const mine = `${this.#o.flushedThrough()}:${Date.now()}:${this.#o.flushing() ? 1 : 0}:${this.boot}`;
      const [, all] = await Promise.all([link.call(NODES_KEY, ['HSET', NODES_KEY, nodeId, mine]), link.call(NODES_KEY, ['HGETALL', NODES_KEY])]);
      const peers = new Map<string, Peer>();
      for (const [id, value] of entries(all)) {
        const [through, beatAt, flushing, boot = ''] = value.split(':');
        peers.set(id, { through: Number(through), beatAt: Number(beatAt), flushing: flushing !== '0', boot });
      }
      this.#peers = peers;
    } catch (err) {
      this.#o.onError?.(err as Error);
    }
  }

  /** One XADD in flight; minutes confirmed meanwhile go in the next, and a failed one is tried again. */
  async #announce(): Promise<void> {
    if (this.#announcing || this.#stopped || this.#pending.size === 0) return;
    this.#announcing = true;
    const minutes = [...this.#pending];
    const seq = this.#announcedSeq;
    this.#pending.clear();
    const { link, nodeId } = this.#o;
    let failed = false;
    try {
      await link.call(CHANGES_KEY, ['XADD', CHANGES_KEY, 'MAXLEN', '~', String(CHANGES_KEPT), '*', 'node', nodeId, 'minutes', minutes.join(',')]);
    } catch (err) {
      failed = true;
      for (const minute of minutes) this.#pending.add(minute);
      this.#o.onError?.(err as Error);
    } finally {
      this.#announcing = false;
    }
    if (!failed) {
      this.#appendedSeq = seq;
      const done = this.#appendWaiters.filter((w) => w.seq <= seq);
      this.#appendWaiters = this.#appendWaiters.filter((w) => w.seq > seq);
      for (const w of done) w.resolve();
      return void this.#announce();
    }
    // Not at once: the stream's master may be down for a while.
    const retry = setTimeout(() => void this.#announce(), this.#o.pollMs);
    retry.unref();
  }

  /** Reads the change stream as it grows, on a connection of its own, until stop(). */
  async #follow(): Promise<void> {
    const blockMs = this.#blockMs;
    let failures = 0;
    while (!this.#stopped) {
      try {
        const connection = (this.#connection = await this.#o.link.dedicated());
        if (this.#stopped) break;
        const call = (key: string, args: string[]): Promise<unknown> => connection.call(key, args, blockMs + STALL_MARGIN_MS + 1000);
        if (this.#reader === 'lost') {
          // Entries may have been missed, or lost with a failed master: start again from the
          // stream's end, then drop everything cached, so nothing answered before is kept.
          this.#lastId = await this.#streamEnd(call);
          this.emit('reset');
        }
        for (;;) {
          this.#answeredAt = performance.now();
          this.#reader = 'following';
          failures = 0;
          const reply = await connection.call(CHANGES_KEY, ['XREAD', 'COUNT', '1000', 'BLOCK', String(blockMs), 'STREAMS', CHANGES_KEY, this.#lastId], blockMs + STALL_MARGIN_MS);
          if (this.#stopped) break;
          this.#changes(reply);
        }
      } catch (err) {
        if (this.#stopped) break;
        this.#reader = 'lost';
        this.#o.onError?.(err as Error);
        this.#connection?.close();
        this.#connection = null;
        await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MIN_MS * 2 ** failures++, RETRY_MAX_MS)));
      }
    }
    this.#connection?.close();
  }

  /** The id of the stream's last entry ('0-0' while it is empty). */
  async #streamEnd(call: (key: string, args: string[]) => Promise<unknown>): Promise<string> {
    const last = (await call(CHANGES_KEY, ['XREVRANGE', CHANGES_KEY, '+', '-', 'COUNT', '1'])) as [Buffer, unknown][] | null;
    return last && last.length > 0 ? String(last[0][0]) : '0-0';
  }

  /** Emits 'changed' for the minutes other nodes' entries in an XREAD reply name. */
  #changes(reply: unknown): void {
    const changed = new Set<number>();
    for (const [id, fields] of streamEntries(reply)) {
      this.#lastId = id;
      const values = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) values.set(String(fields[i]), String(fields[i + 1]));
      if (values.get('node') === this.#o.nodeId) continue;
      for (const minute of (values.get('minutes') ?? '').split(',')) if (minute !== '') changed.add(Number(minute));
    }
    if (changed.size > 0) this.emit('changed', [...changed]);
  }
}

/**
 * The entries of an XREAD reply for one stream, whichever RESP version answered: null (the block
 * timed out), [[key, entries]] (RESP2) or a map of key to entries (RESP3).
 */
function streamEntries(reply: unknown): [string, unknown[]][] {
  if (reply === null || reply === undefined) return [];
  let streams: unknown[];
  if (reply instanceof Map) streams = [...reply.values()];
  else if (Array.isArray(reply)) streams = reply.map((stream) => (stream as unknown[])[1]);
  else streams = Object.values(reply as object);
  const out: [string, unknown[]][] = [];
  for (const entries of streams) for (const [id, fields] of entries as [Buffer, unknown[]][]) out.push([String(id), fields ?? []]);
  return out;
}

/** HGETALL's reply as pairs, whichever RESP version answered (a map or a flat array). */
function entries(reply: unknown): [string, string][] {
  if (reply instanceof Map) return [...reply].map(([k, v]) => [String(k), String(v)]);
  if (Array.isArray(reply)) {
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), String(reply[i + 1])]);
    return pairs;
  }
  if (reply && typeof reply === 'object') return Object.entries(reply).map(([k, v]) => [k, String(v)]);
  return [];
}
