// The one module that talks to the Redis client library (node-redis), so the rest of src/cluster/
// sees a small surface: send a command to the master of a key's slot, or to every master. It finds
// out from the first seed whether Redis runs as a cluster (then the topology is discovered from the
// seeds) or as a single server. Bulk strings come back as Buffers: members are CESU-8 bytes.

import { createClient, createCluster, RESP_TYPES } from 'redis';
import type { RedisClientType, RedisClusterType } from 'redis';
import { LIBRARY } from './library.ts';
import { keySlot } from './slots.ts';

/**
 * A command that gets no reply in this long fails (a batch is retried, a query answers 503): a
 * stopped master must not hold a partition or a request. node-redis's own timeout only covers the
 * wait before a command is written, so the reply is timed here.
 */
const COMMAND_TIMEOUT_MS = 2000;

function timed<T>(reply: Promise<T>, ms = COMMAND_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  reply.catch(() => {}); // a reply that fails after the timeout is nobody's business
  return Promise.race([reply, late]).finally(() => clearTimeout(timer));
}
const CONNECT_TIMEOUT_MS = 2000;
const RECONNECT_MAX_MS = 1000;

export type Arg = string | Buffer;

/** A connection of its own, for commands that block (XREAD BLOCK) and so must not hold up the others. */
export interface DedicatedConnection {
  /** Sends `args` to the master that owns `key`'s slot; fails when no reply comes within `timeoutMs`. */
  call(key: string, args: Arg[], timeoutMs: number): Promise<unknown>;
  /** Drops the connection; a call in flight fails. */
  close(): void;
}

export interface RedisLink {
  /** Whether the seeds run Redis Cluster. */
  readonly cluster: boolean;
  /** Sends `args` to the master that owns `key`'s slot. */
  call(key: string, args: Arg[]): Promise<unknown>;
  /** The master that owns `key`'s slot now ("host:port"), and how many replicas it has. */
  masterOf(key: string): { address: string; replicas: number };
  /** Sends `args` to every master (each answer, in no particular order). */
  eachMaster(args: Arg[]): Promise<unknown[]>;
  /** Loads (or replaces) the function library on every master. */
  loadLibrary(): Promise<void>;
  /**
   * Opens a dedicated connection. On Redis Cluster it finds the slot's master when it connects and
   * follows MOVED: after a failover, a new one reaches the new master.
   */
  dedicated(): Promise<DedicatedConnection>;
  close(): Promise<void>;
}

const TYPES = { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer } as const;

export interface LinkOptions {
  /** Told about connection errors (the client reconnects by itself). */
  onError?: (err: Error) => void;
}

function socket(url: URL) {
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    connectTimeout: CONNECT_TIMEOUT_MS,
    reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, RECONNECT_MAX_MS),
  };
}

/** Connects to the seeds; rejects when none answers. */
export async function connectRedis(seeds: readonly string[], options: LinkOptions = {}): Promise<RedisLink> {
  const urls = seeds.map((seed) => new URL(seed));
  const onError = options.onError ?? (() => {});
  const probe = createClient({ socket: { ...socket(urls[0]), reconnectStrategy: false } });
  probe.on('error', () => {});
  let clusterEnabled: boolean;
  try {
    await probe.connect();
    clusterEnabled = /cluster_enabled:1/.test(await probe.info('cluster'));
  } finally {
    probe.destroy();
  }
  if (!clusterEnabled) return singleLink(urls[0], onError);
  return clusterLink(urls, onError);
}

async function singleLink(url: URL, onError: (err: Error) => void): Promise<RedisLink> {
  const client = createClient({
    socket: socket(url),
    username: url.username || undefined,
    password: url.password || undefined,
    disableOfflineQueue: true,
    commandOptions: { timeout: COMMAND_TIMEOUT_MS, typeMapping: TYPES },
  }) as unknown as RedisClientType;
  client.on('error', onError);
  await client.connect();
  const send = (args: Arg[]) => timed(client.sendCommand(args, { typeMapping: TYPES, timeout: COMMAND_TIMEOUT_MS }));
  const replicas = Number(/connected_slaves:(\d+)/.exec(String(await send(['INFO', 'replication'])))?.[1] ?? 0);
  return {
    cluster: false,
    call: (_key, args) => send(args),
    masterOf: () => ({ address: `${url.hostname}:${url.port || 6379}`, replicas }),
    eachMaster: async (args) => [await send(args)],
    loadLibrary: async () => void (await send(['FUNCTION', 'LOAD', 'REPLACE', LIBRARY])),
    dedicated: async () => {
      // Its own reconnects would hide a broken connection from its user, who opens a new one instead.
      const own = client.duplicate({ socket: { ...socket(url), reconnectStrategy: false } }) as unknown as RedisClientType;
      return openDedicated(own, (_key, args, ms) => timed(own.sendCommand(args, { typeMapping: TYPES, timeout: ms }), ms));
    },
    close: async () => void client.destroy(),
  };
}

/** Connects `own` (within the connect timeout) and wraps it; destroys it when that fails. */
async function openDedicated(own: { on(event: 'error', listener: () => void): unknown; connect(): Promise<unknown>; destroy(): void }, call: DedicatedConnection['call']): Promise<DedicatedConnection> {
  own.on('error', () => {}); // its user learns of failures from its calls
  try {
    await timed(own.connect(), 2 * CONNECT_TIMEOUT_MS);
  } catch (err) {
    own.destroy();
    throw err;
  }
  let open = true;
  return {
    call,
    close: () => {
      if (open) own.destroy();
      open = false;
    },
  };
}

async function clusterLink(urls: URL[], onError: (err: Error) => void): Promise<RedisLink> {
  const client = createCluster({
    rootNodes: urls.map((url) => ({ socket: socket(url) })),
    defaults: {
      socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, RECONNECT_MAX_MS) },
      username: urls[0].username || undefined,
      password: urls[0].password || undefined,
      disableOfflineQueue: true,
    },
  }) as unknown as RedisClusterType;
  client.on('error', onError);
  await client.connect();
  const options = { typeMapping: TYPES, timeout: COMMAND_TIMEOUT_MS };
  const eachMaster = async (args: Arg[]): Promise<unknown[]> =>
    Promise.all(
      client.masters.map(async (master) => {
        const node = await client.nodeClient(master);
        return timed(node.sendCommand(args, options));
      }),
    );
  return {
    cluster: true,
    call: (key, args) => timed(client.sendCommand(key, false, args, options)),
    masterOf: (key) => {
      const shard = client.slots[keySlot(key)];
      return { address: shard ? `${shard.master.host}:${shard.master.port}` : 'unknown', replicas: shard?.replicas?.length ?? 0 };
    },
    eachMaster,
    loadLibrary: async () => void (await eachMaster(['FUNCTION', 'LOAD', 'REPLACE', LIBRARY])),
    dedicated: async () => {
      // Discovers the topology afresh from the seeds, and connects to the one master it is asked for.
      const own = client.duplicate({ minimizeConnections: true }) as unknown as RedisClusterType;
      return openDedicated(own, (key, args, ms) => timed(own.sendCommand(key, false, args, { typeMapping: TYPES, timeout: ms }), ms));
    },
    close: async () => void client.destroy(),
  };
}

/** Whether a call failed because the master no longer serves every slot named (or lacks the function). */
export function misrouted(err: Error): boolean {
  return /non local key|MOVED|ASK|CROSSSLOT|TRYAGAIN|function not found/i.test(err.message);
}

/** Whether an error says the function library is missing on that master (a new or restarted empty one). */
export function functionMissing(err: unknown): boolean {
  return err instanceof Error && /function not found/i.test(err.message);
}


