// What the nodes of one cluster tell each other, through Redis: the settings fixed for the cluster
// (the partition count), heartbeats carrying each node's flushed-through time and whether its
// flushes succeed, and a stream of the minutes each flush changed. From them a node knows when a
// closed window is final (every live node that can flush has flushed past its end) and which cached
// answers and pushes another node's counters changed.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../clock.ts';
import { CONFIG_KEY, NODES_KEY } from './keys.ts';
import type { RedisLink } from './redis-link.ts';

const CHANGES_KEY = '{tt}:changes';
/** Entries kept in the change stream: nodes read it every flush interval, so a few seconds' worth is plenty. */
const CHANGES_KEPT = 10_000;
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
  #poll: NodeJS.Timeout | null = null;
  #polling = false;
  #pending = new Set<number>();
  #stopped = false;
  #missed = false;
  /** This process's boot id, new at every start. */
  readonly boot = randomBytes(6).toString('hex');

  constructor(options: RegistryOptions) {
    super();
    this.#o = options;
  }

  async start(): Promise<void> {
    // Changes from now on: what came before is already in Redis for any query.
    const last = (await this.#o.link.call(CHANGES_KEY, ['XREVRANGE', CHANGES_KEY, '+', '-', 'COUNT', '1'])) as [Buffer, unknown][] | null;
    this.#lastId = last && last.length > 0 ? String(last[0][0]) : '0-0';
    await this.#heartbeat();
    this.#beat = setInterval(() => void this.#heartbeat(), HEARTBEAT_MS);
    this.#beat.unref();
    this.#poll = setInterval(() => void this.#readChanges(), this.#o.pollMs);
    this.#poll.unref();
  }

  /** Minutes this node's last flushes changed: announced with the next poll. */
  announce(minutes: Iterable<number>): void {
    for (const minute of minutes) this.#pending.add(minute);
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
    if (this.#poll) clearInterval(this.#poll);
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

  async #readChanges(): Promise<void> {
    if (this.#polling || this.#stopped) return;
    this.#polling = true;
    const { link, nodeId } = this.#o;
    try {
      if (this.#pending.size > 0) {
        const minutes = [...this.#pending];
        this.#pending.clear();
        await link.call(CHANGES_KEY, ['XADD', CHANGES_KEY, 'MAXLEN', '~', String(CHANGES_KEPT), '*', 'node', nodeId, 'minutes', minutes.join(',')]);
      }
      const reply = (await link.call(CHANGES_KEY, ['XRANGE', CHANGES_KEY, `(${this.#lastId}`, '+', 'COUNT', '1000'])) as [Buffer, Buffer[]][];
      const changed = new Set<number>();
      for (const [id, fields] of reply) {
        this.#lastId = String(id);
        const values = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) values.set(String(fields[i]), String(fields[i + 1]));
        if (values.get('node') === nodeId) continue;
        for (const minute of (values.get('minutes') ?? '').split(',')) if (minute !== '') changed.add(Number(minute));
      }
      if (changed.size > 0) this.emit('changed', [...changed]);
      if (this.#missed) this.emit('reset');
      this.#missed = false;
    } catch (err) {
      // A failover may also lose stream entries: after an outage every cached answer is suspect.
      this.#missed = true;
      this.#o.onError?.(err as Error);
    } finally {
      this.#polling = false;
    }
  }
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
