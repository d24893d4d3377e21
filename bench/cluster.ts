/**
 * Cluster-mode benchmark: the B shape (JSON arrays of 100 counters x 5 Zipf domains, autocannon in
 * its own process) against one toptally node in local mode, one node in cluster mode and two nodes in
 * cluster mode on a local 3-master Redis Cluster (no replicas: the machine has two cores), all in the
 * same run, alternated per repeat.
 *
 *   node --import tsx bench/cluster.ts [--duration 8] [--repeats 2] [--flush-interval 100ms]
 *
 * Each setup's load has two measured phases of --duration seconds after a 2 s warm-up, and its
 * counters carry the second they are sent in (BENCH_FRESH_TIMESTAMPS: as real counters do; a pool
 * stamped once would turn every counter late once its minute closed). Reports per node:
 * - B counters/s, with the ratio to local mode in the same repeat (first phase);
 * - toptally CPU and Redis CPU (all masters) per million counters, both from /proc and both read at
 *   the first measured phase's start and end as the generator reports them. With two nodes each node's
 *   CPU is read over its own generator's phase, and Redis's over the first generator's phase, divided
 *   by both nodes' counters: the two generators start together with the same warm-up, so their
 *   phases differ by their start-up skew (tens of ms in 5 s), and Redis serves both nodes throughout;
 * - flush lag p99 (toptally_cluster_lag_seconds sampled every 100 ms during the load);
 * - open-minute stats p50/p99 under load: sequential GETs from this process on one keep-alive
 *   connection to the first node throughout its second measured phase (the generator runs in a
 *   process of its own), so what a cache saves while counters keep arriving shows, and what it cannot
 *   save; the first phase has no reader, as each query makes the node flush first;
 * - stats p50/p99 for a closed and for the open minute after the load: once the node has nothing
 *   unflushed (toptally_cluster_unflushed_bytes 0, waited for at most 5 s), 1,000 sequential GETs
 *   after 5,000 unmeasured ones (see WARM_REQUESTS), on one keep-alive connection, from a client
 *   that adds as little as it can (raw-http.ts);
 * - with two nodes, how long after the minute's end a WebSocket subscriber on the first node gets the
 *   window-close push (the load is timed so the minute ends halfway through it).
 *
 * Needs Debian's redis-server.
 * Environment: BENCH_SEED, BENCH_UNIVERSE (10,000), BENCH_CONNECTIONS (32 per node).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import WebSocket from 'ws';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileScope, startRedisCluster, type RedisCluster } from '../test/helpers/redis-cluster.ts';
import { runGenerator, type Measurement } from './lib/generator.js';
import { numberEnv } from './lib/load-protocol.js';
import { RawHttp } from './lib/raw-http.js';
import { clockTicksPerSecond, statFields, STIME, UTIME } from './lib/proc.js';
import { metricsOf } from './lib/report.js';
import { freePort, pinning, ServerProcess } from './lib/server-process.js';
import { median } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: { duration: { type: 'string', default: '8' }, repeats: { type: 'string', default: '2' }, 'flush-interval': { type: 'string', default: '100ms' } },
});
const durationS = Number(flags.duration);
const repeats = Number(flags.repeats);
const seed = numberEnv('BENCH_SEED', 42);
const universe = numberEnv('BENCH_UNIVERSE', 10_000);
const connections = numberEnv('BENCH_CONNECTIONS', 32);
const log = (line: string): void => void process.stderr.write(`${line}\n`);

type Setup = 'local' | 'cluster, 1 node' | 'cluster, 2 nodes';

interface Row {
  setup: Setup;
  repeat: number;
  /** Per node: counter objects per second. */
  countersPerS: number;
  toptallyCpuMsPerMillion: number;
  redisCpuMsPerMillion: number;
  lagP99Ms: number;
  closedP50Ms: number;
  closedP99Ms: number;
  openP50Ms: number;
  openP99Ms: number;
  /** Open-minute GETs to the first node during its second measured phase. */
  loadedOpenP50Ms: number;
  loadedOpenP99Ms: number;
  /** From the minute's end to the close push on node 1's subscriber (two nodes only). */
  closePushMs: number;
}

function redisCpuMs(cluster: RedisCluster): number {
  let ticks = 0;
  for (const node of cluster.nodes) {
    const fields = node.process?.pid === undefined ? undefined : statFields(node.process.pid);
    if (fields) ticks += Number(fields[UTIME]) + Number(fields[STIME]);
  }
  return (ticks * 1000) / clockTicksPerSecond;
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve(text));
      })
      .on('error', reject);
  });
}

async function sampleLag(ports: number[], until: Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    for (const port of ports) {
      const text = await get(port, '/metrics').catch(() => '');
      const match = /^toptally_cluster_lag_seconds ([0-9.e+-]+)$/m.exec(text);
      if (match) samples.push(Number(match[1]) * 1000);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return samples;
}

/**
 * Unmeasured GETs before the timed ones: enough for V8 to have optimized the request's path, in the
 * node and in this client, before timing starts. It optimizes a function once it is hot, on
 * background threads, and the node's share the one core it is pinned to: with too few, that
 * compilation fell inside the timed requests and took the core from the node's I/O thread (or from
 * this client) for milliseconds at a time. The setups come to this point unequally warm: local
 * mode's under-load reader sends many times more stats queries than a cluster node's, each of whose
 * queries waits for a flush.
 */
const WARM_REQUESTS = 5000;
const TIMED_REQUESTS = 1000;
const SETTLE_MS = 5000;

function quantiles(times: number[]): { p50: number; p99: number } {
  if (times.length === 0) return { p50: Number.NaN, p99: Number.NaN };
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length / 2)], p99: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))] };
}

/** Sequential GETs on one keep-alive connection, timed by a client that adds as little as it can (raw-http.ts). */
async function statsLatency(port: number, path: string): Promise<{ p50: number; p99: number }> {
  const client = await RawHttp.connect(port);
  try {
    const request = RawHttp.format('GET', path);
    const times: number[] = [];
    for (let i = 0; i < WARM_REQUESTS; i++) await client.send(request);
    for (let i = 0; i < TIMED_REQUESTS; i++) {
      const response = await client.send(request);
      if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${response.body.toString()}`);
      times.push(response.ms);
    }
    return quantiles(times);
  } finally {
    client.close();
  }
}

/**
 * Sequential GETs of `path` while the phase runs (between start() and stop()): the stats a user
 * reads while counters keep arriving.
 */
function underLoad(port: number, path: string): { start(): void; stop(): Promise<{ p50: number; p99: number }> } {
  let running = false;
  let loop: Promise<number[]> = Promise.resolve([]);
  return {
    start() {
      running = true;
      loop = (async () => {
        const client = await RawHttp.connect(port);
        const request = RawHttp.format('GET', path);
        const times: number[] = [];
        try {
          while (running) {
            const response = await client.send(request);
            if (response.status !== 200) throw new Error(`GET ${path} under load: ${response.status} ${response.body.toString()}`);
            times.push(response.ms);
          }
        } finally {
          client.close();
        }
        return times;
      })();
    },
    async stop() {
      running = false;
      return quantiles(await loop);
    },
  };
}

/** Waits (at most SETTLE_MS) until the node holds nothing unflushed, so the figures after the load do not time its backlog. */
async function settled(port: number): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  while (Date.now() < deadline) {
    const text = await get(port, '/metrics');
    if (/^toptally_cluster_unflushed_bytes 0$/m.test(text)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  log(`node on port ${port} still had unflushed counters after ${SETTLE_MS} ms`);
}

/** Subscribes to the minute on `port`; resolves with the ms from `endMs` to the push that closes that minute. */
async function closePush(port: number, endMs: number): Promise<{ ready: Promise<void>; pushed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let ready!: () => void;
  const readyP = new Promise<void>((resolve) => (ready = resolve));
  const pushed = new Promise<number>((resolve) => {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as { type: string; from?: number; final?: boolean };
      if (frame.type !== 'top') return;
      ready();
      if (frame.final && frame.from === endMs / 1000 - 60) {
        resolve(Date.now() - endMs);
        ws.close();
      }
    });
  });
  ws.send(JSON.stringify({ type: 'subscribe', window: 'minute', limit: 10 }));
  return { ready: readyP, pushed };
}

async function runSetup(setup: Setup, repeat: number, cluster: RedisCluster): Promise<Row> {
  const nodes = setup === 'cluster, 2 nodes' ? 2 : 1;
  const dirs = Array.from({ length: nodes }, () => mkdtempSync(path.join(os.tmpdir(), 'toptally-bench-cluster-')));
  const servers: ServerProcess[] = [];
  try {
    for (const dir of dirs) {
      const port = await freePort();
      const args = ['bin/toptally.js', '--port', String(port), '--shards', '2', '--data-dir', dir, '--log-level', 'warn'];
      if (setup !== 'local') args.push('--redis', cluster.urls.join(','), '--flush-interval', flags['flush-interval']!);
      servers.push(await ServerProcess.start({ name: `toptally (${setup})`, command: process.execPath, args, ...(pinning ? { cpu: pinning.server } : {}) }, { port }));
    }
    let push: { ready: Promise<void>; pushed: Promise<number> } | undefined;
    if (nodes === 2) {
      // The minute ends halfway through the measured phase.
      const endMs = Math.ceil((Date.now() + (2 + durationS / 2) * 1000) / 60_000) * 60_000;
      await new Promise((resolve) => setTimeout(resolve, endMs - (2 + durationS / 2) * 1000 - Date.now()));
      push = await closePush(servers[0].port, endMs);
      await push.ready;
    }
    log(`${setup}, repeat ${repeat + 1}: 2 x ${durationS} s after 2 s warm-up`);
    // The first measured phase gives throughput and CPU; the reader runs in the second only, so
    // that its queries (each flushes the node first) do not change those figures.
    const loaded = underLoad(servers[0].port, '/api/stats?window=minute&open=true');
    let phase = 0;
    const onPhase = (kind: 'start' | 'end'): void => {
      if (kind === 'start') phase++;
      if (phase !== 2) return;
      if (kind === 'start') loaded.start();
      else void loaded.stop().catch(() => {}); // its error, if any, comes from the stop() below
    };
    const load = Promise.all(
      servers.map((server, i) =>
        runGenerator(
          { name: 'http-load B', entry: 'bench/lib/http-load.ts', env: { BENCH_SHAPE: 'B', BENCH_CONNECTIONS: connections, BENCH_POOL: 200, BENCH_SEED: seed, BENCH_UNIVERSE: universe, BENCH_FRESH_TIMESTAMPS: 1 } },
          server,
          { warmupS: 2, durationS, repeats: 2 },
          i > 0 ? {} : { probe: () => redisCpuMs(cluster), onPhase },
        ),
      ),
    );
    const [measured, lag] = await Promise.all([load, setup === 'local' ? Promise.resolve([]) : sampleLag(servers.map((s) => s.port), load)]);
    const loadedOpen = await loaded.stop();
    const measurements = measured.map((m) => m[0] as Measurement);
    const redisMs = measurements[0].probed;
    const metrics = measurements.map(metricsOf);
    const counters = measurements.reduce((sum, m) => sum + m.report.counters, 0);
    const toptallyMs = measurements.reduce((sum, m) => sum + m.serverCpuMs, 0);
    if (setup !== 'local') await settled(servers[0].port);
    const nowMinute = Math.floor(Date.now() / 60_000);
    const closed = await statsLatency(servers[0].port, `/api/stats?window=minute&at=${nowMinute * 60}`);
    const open = await statsLatency(servers[0].port, '/api/stats?window=minute&open=true');
    const closePushMs = push ? await Promise.race([push.pushed, new Promise<number>((resolve) => setTimeout(() => resolve(Number.NaN), 10_000))]) : Number.NaN;
    lag.sort((a, b) => a - b);
    return {
      setup,
      repeat,
      countersPerS: median(metrics.map((m) => m.countersPerS)),
      toptallyCpuMsPerMillion: (toptallyMs / counters) * 1e6,
      redisCpuMsPerMillion: setup === 'local' ? Number.NaN : (redisMs / counters) * 1e6,
      lagP99Ms: lag.length > 0 ? lag[Math.min(lag.length - 1, Math.floor(lag.length * 0.99))] : Number.NaN,
      closedP50Ms: closed.p50,
      closedP99Ms: closed.p99,
      openP50Ms: open.p50,
      openP99Ms: open.p99,
      loadedOpenP50Ms: loadedOpen.p50,
      loadedOpenP99Ms: loadedOpen.p99,
      closePushMs,
    };
  } finally {
    await Promise.all(servers.map((server) => server.stop(30_000)));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits)) : '—');

const scope = fileScope();
try {
  const cluster = await startRedisCluster(scope, { masters: 3, replicas: 0 });
  // Redis shares the generators' core, not the servers': a node's figures are its own cost, as they
  // would be with Redis on other machines. Redis's CPU is still read from /proc.
  if (pinning) for (const node of cluster.nodes) spawnSync('taskset', ['-a', '-cp', String(pinning.generator), String(node.process!.pid)]);
  const rows: Row[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    // Alternated, so drift in the machine's load hits every setup alike.
    const order: Setup[] = repeat % 2 === 0 ? ['local', 'cluster, 1 node', 'cluster, 2 nodes'] : ['cluster, 2 nodes', 'cluster, 1 node', 'local'];
    for (const setup of order) rows.push(await runSetup(setup, repeat, cluster));
  }
  const lines = [
    `Cluster benchmark: B shape, ${connections} connections per node, ${durationS} s x ${repeats} repeats, flush interval ${flags['flush-interval']}, 3-master Redis Cluster on loopback (median of repeats; ratio: to local mode in the same repeat)`,
    '',
    '| setup | B counters/s per node | ratio to local | toptally CPU ms / M counters | Redis CPU ms / M counters | Redis / toptally CPU | flush lag p99 ms | closed stats p50 / p99 ms | open stats p50 / p99 ms | open stats p50 / p99 under load ms | close push ms after the minute |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const setup of ['local', 'cluster, 1 node', 'cluster, 2 nodes'] as const) {
    const mine = rows.filter((r) => r.setup === setup);
    const ratios = mine.map((r) => r.countersPerS / rows.find((l) => l.setup === 'local' && l.repeat === r.repeat)!.countersPerS);
    const m = (key: keyof Row) => median(mine.map((r) => r[key] as number));
    lines.push(
      `| ${setup} | ${fmt(m('countersPerS'))} | ${fmt(median(ratios))} | ${fmt(m('toptallyCpuMsPerMillion'))} | ${fmt(m('redisCpuMsPerMillion'))} | ${fmt(m('redisCpuMsPerMillion') / m('toptallyCpuMsPerMillion'))} | ${fmt(m('lagP99Ms'))} | ${fmt(m('closedP50Ms'))} / ${fmt(m('closedP99Ms'))} | ${fmt(m('openP50Ms'))} / ${fmt(m('openP99Ms'))} | ${fmt(m('loadedOpenP50Ms'))} / ${fmt(m('loadedOpenP99Ms'))} | ${fmt(m('closePushMs'))} |`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n\n' + JSON.stringify(rows) + '\n');
} finally {
  await scope.close();
}
