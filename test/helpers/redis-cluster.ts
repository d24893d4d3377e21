// Real Redis servers for the cluster tests, from Debian's redis-server and redis-cli: a single
// non-cluster server, or a Redis Cluster of 3 masters and 3 replicas, on free loopback ports in a
// temporary directory, stopped in t.after. Never the machine's Redis on 6379.
//
// Ports: a cluster node also listens on its bus port (port + 10000). Other test runs share the
// machine, so a port is picked at random below the ephemeral range (outgoing connections never take
// it), checked free together with its bus port, and a server that still fails to bind is started
// again on another one.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, mkdir } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';

const run = promisify(execFile);

/** Ports from here to PORT_MAX (and bus ports 10000 above) stay below Linux's ephemeral range (32768). */
const PORT_MIN = 11_000;
const PORT_MAX = 19_999;
const BUS_OFFSET = 10_000;
const START_TIMEOUT_MS = 15_000;
const CLUSTER_TIMEOUT_MS = 30_000;

export interface RedisNode {
  port: number;
  url: string;
  dir: string;
  /** The process, or null while it is killed. */
  process: ChildProcess | null;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: the server stops answering and stays in memory. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Starts it again on the same port and directory (cluster state and AOF kept). */
  restart(): Promise<void>;
}

export interface RedisCluster {
  nodes: RedisNode[];
  /** Seed URLs, one per node. */
  urls: string[];
  /** The nodes that serve slots now (masters), from CLUSTER NODES of a live node. */
  masters(): Promise<RedisNode[]>;
  /** Waits until every live node says cluster_state:ok and every master has an online replica (if `replicas`). */
  waitHealthy(options?: { replicas?: boolean; timeoutMs?: number }): Promise<void>;
  /** redis-cli against one node, e.g. cli(node, 'CLUSTER', 'INFO'). */
  cli(node: RedisNode, ...args: string[]): Promise<string>;
}

function randomPort(): number {
  return PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN + 1));
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function freePort(cluster: boolean, taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = randomPort();
    if (port === 6379 || taken.has(port) || taken.has(port + BUS_OFFSET)) continue;
    if ((await portFree(port)) && (!cluster || (await portFree(port + BUS_OFFSET)))) return port;
  }
  throw new Error('no free loopback port found for redis-server');
}

export async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout.trim();
}

async function answersPing(port: number): Promise<boolean> {
  try {
    return (await cli(port, 'PING')) === 'PONG';
  } catch {
    return false;
  }
}

function serverArgs(port: number, dir: string, cluster: boolean): string[] {
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no',
    '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '',
    '--logfile', path.join(dir, 'redis.log'), '--daemonize', 'no',
    // A replica's first sync starts at once, not after the default 5 s wait for more replicas.
    '--repl-diskless-sync-delay', '0',
  ];
  if (cluster) {
    args.push(
      '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'),
      '--cluster-node-timeout', '2000', '--cluster-require-full-coverage', 'no',
    );
  }
  return args;
}

/** Every server started here and still running: killed when this process exits, however it ends. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Spawns redis-server and waits for PING; rejects with its log when it exits first. */
async function spawnServer(port: number, dir: string, cluster: boolean): Promise<ChildProcess> {
  const child = spawn('redis-server', serverArgs(port, dir, cluster), { stdio: 'ignore' });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const exited = once(child, 'exit');
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await answersPing(port)) return child;
    await Promise.race([sleep(50), exited]);
  }
  child.kill('SIGKILL');
  const log = await readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => '');
  throw Object.assign(new Error(`redis-server on ${port} did not start: ${log.slice(-500)}`), { log });
}

async function startNode(base: string, name: string, cluster: boolean, taken: Set<number>): Promise<RedisNode> {
  const dir = path.join(base, name);
  await mkdir(dir, { recursive: true });
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort(cluster, taken);
    try {
      const child = await spawnServer(port, dir, cluster);
      taken.add(port).add(port + BUS_OFFSET);
      return makeNode(port, dir, cluster, child);
    } catch (err) {
      lastError = err; // most likely another run took the port between the check and the bind
    }
  }
  throw lastError;
}

function makeNode(port: number, dir: string, cluster: boolean, child: ChildProcess): RedisNode {
  const node: RedisNode = {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    process: child,
    async kill() {
      const proc = node.process;
      node.process = null;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill('SIGCONT'); // a paused process still dies on SIGKILL, but say so plainly
      proc.kill('SIGKILL');
      await exited;
    },
    pause() {
      node.process?.kill('SIGSTOP');
    },
    resume() {
      node.process?.kill('SIGCONT');
    },
    async restart() {
      await node.kill();
      node.process = await spawnServer(port, dir, cluster);
    },
  };
  return node;
}

async function tempBase(t: Pick<TestContext, 'after'>, nodes: RedisNode[]): Promise<string> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'toptally-redis-'));
  t.after(async () => {
    await Promise.all(nodes.map((node) => node.kill()));
    await rm(base, { recursive: true, force: true });
  });
  return base;
}

/**
 * For servers one test file shares: node:test runs an after() registered inside before() at once, so
 * the cleanups are collected here; register `after(scope.close)` at the top level.
 */
export function fileScope(): { after(fn: () => Promise<void>): void; close(): Promise<void> } {
  const cleanups: (() => Promise<void>)[] = [];
  return {
    after: (fn) => void cleanups.push(fn),
    close: async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    },
  };
}

/** One non-cluster redis-server. */
export async function startRedis(t: Pick<TestContext, 'after'>): Promise<RedisNode> {
  const nodes: RedisNode[] = [];
  const base = await tempBase(t, nodes);
  const node = await startNode(base, 'single', false, new Set());
  nodes.push(node);
  return node;
}

/** A Redis Cluster of `masters` masters with `replicas` replicas each (default 3 and 1). */
export async function startRedisCluster(
  t: Pick<TestContext, 'after'>,
  { masters = 3, replicas = 1 }: { masters?: number; replicas?: number } = {},
): Promise<RedisCluster> {
  const nodes: RedisNode[] = [];
  const base = await tempBase(t, nodes);
  const taken = new Set<number>();
  const count = masters * (1 + replicas);
  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => startNode(base, `n${i}`, true, taken)));
  for (const result of started) if (result.status === 'fulfilled') nodes.push(result.value);
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  await run(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
    { timeout: CLUSTER_TIMEOUT_MS },
  );
  const cluster: RedisCluster = {
    nodes,
    urls: nodes.map((node) => node.url),
    cli: (node, ...args) => cli(node.port, ...args),
    async masters() {
      const live = nodes.filter((node) => node.process);
      for (const node of live) {
        try {
          const text = await cli(node.port, 'CLUSTER', 'NODES');
          const ports = text
            .split('\n')
            .map((line) => line.split(' '))
            .filter((f) => f[2]?.includes('master') && !f[2].includes('fail') && f.length > 8)
            .map((f) => Number(/:(\d+)@/.exec(f[1])![1]));
          return nodes.filter((n) => ports.includes(n.port));
        } catch {
          // try the next live node
        }
      }
      throw new Error('no live Redis node answers CLUSTER NODES');
    },
    async waitHealthy({ replicas: withReplicas = replicas > 0, timeoutMs = CLUSTER_TIMEOUT_MS } = {}) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        try {
          last = await health(nodes.filter((node) => node.process), withReplicas);
          if (last === '') return;
        } catch (err) {
          last = (err as Error).message;
        }
        await sleep(100);
      }
      throw new Error(`Redis Cluster not healthy after ${timeoutMs} ms: ${last}`);
    },
  };
  await cluster.waitHealthy();
  return cluster;
}

/** '' when healthy, else what is not. */
async function health(live: RedisNode[], withReplicas: boolean): Promise<string> {
  for (const node of live) {
    const info = await cli(node.port, 'CLUSTER', 'INFO');
    if (!info.includes('cluster_state:ok')) return `${node.port}: ${/cluster_state:\w+/.exec(info)?.[0]}`;
    if (!info.includes('cluster_slots_ok:16384')) return `${node.port}: ${/cluster_slots_ok:\d+/.exec(info)?.[0]}`;
    if (!withReplicas) continue;
    const replication = await cli(node.port, 'INFO', 'replication');
    if (replication.includes('role:master') && !/slave0:.*state=online/.test(replication)) return `${node.port}: master without an online replica`;
    if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return `${node.port}: replica link down`;
  }
  return '';
}
