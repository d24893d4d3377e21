// Model-based, cluster mode: seeded random traffic spread over two toptally nodes sharing one Redis
// Cluster, and the same traffic to one local-mode node (the oracle). Every stats answer of every
// retained window, on both nodes, must be byte for byte the oracle's: the same top, totals, domain
// counts and tie order. The traffic has ties, non-ASCII and astral names, names whose hashes
// collide, late counters, counters ahead of the clock and windows at the retention's edge.
// Also: a single non-cluster Redis works; a node refuses another partition count; read-your-writes
// and --cluster-ack cluster; an Idempotency-Key retried on the other node counts once; pushes on one
// node cover the other's counters (a close push waits for a lagging node, a late counter through
// one node is pushed again on the other); the journal outlives a Redis outage across a checkpoint.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { mulberry32, pick } from '../helpers/random.ts';
import { fileScope, startRedis, startRedisCluster, type RedisCluster, type RedisNode } from '../helpers/redis-cluster.ts';
import { startServer, T0, tempDir, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';
import { eventually, within } from '../helpers/within.ts';
import type { Config } from '../../src/config.ts';
import { compareRanked } from '../../src/query/merge.ts';

const hooks = fileScope();
let cluster: RedisCluster;
let single: RedisNode;
before(async () => {
  [cluster, single] = await Promise.all([startRedisCluster(hooks), startRedis(hooks)]);
});
after(hooks.close);

const NAMES = ['costarring', 'liquid', 'A', 'B', 'a', 'b', 'ab', '__proto__', 'constructor', 'é.example', '\uff01.example', '😀.io', '😀😀', '\u{10000}', '\ue000', 'x'.repeat(200)];
const POOL = [...NAMES, ...Array.from({ length: 30 }, (_, i) => `d${i}.example`)];
type Counter = Record<string, number> & { timestamp: number };

/** The raw bytes of a GET (the comparison is byte for byte), on a connection of its own. */
async function raw(s: TestServer, path: string): Promise<{ status: number; text: string }> {
  const req = http.get(s.url + path, { agent: false });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') };
}

/** A cluster node on a manual clock, once ready: it has reached Redis and announced itself. */
async function clusterNode(t: Parameters<typeof startServer>[0], seeds: string[], extra: Partial<Config> = {}): Promise<TestServer> {
  // Interval durability: fsyncs would make the test slow and prove nothing more here.
  const s = await startServer(t, { redis: seeds, partitions: 8, flushInterval: 20, durability: 'interval', ...extra }, START);
  await eventually('ready', async () => {
    const ready = await s.get('/readyz');
    return ready.status === 200 ? null : JSON.stringify(ready.body);
  });
  return s;
}

/** Three hours before T0, so minutes and hours roll over many times and old ones leave the retention. */
const START = T0 - 3 * 3600;

async function modelRun(t: Parameters<typeof startServer>[0], seeds: string[], seed: number, requests: number): Promise<void> {
  const rand = mulberry32(seed);
  const [a, b, oracle] = await Promise.all([clusterNode(t, seeds), clusterNode(t, seeds), startServer(t, { durability: 'off' }, START)]);
  const nodes = [a, b];
  const clocks = [a.clock, b.clock, oracle.clock];
  let now = START;
  for (let request = 0; request < requests; request++) {
    now += Math.floor(rand() * 300);
    for (const clock of clocks) clock.set(now * 1000 + 500);
    const batch: Counter[] = [];
    for (let i = 1 + Math.floor(rand() * 6); i > 0; i--) {
      // Mostly recent, some late (up to the retention's edge and past it), a few ahead of the clock.
      const r = rand();
      const age = r < 0.6 ? Math.floor(rand() * 120) : r < 0.9 ? Math.floor(rand() * 2.2 * 3600) : -Math.floor(rand() * 200);
      const counter = { timestamp: now - age } as Counter;
      for (let d = Math.floor(rand() * 5); d >= 0; d--) counter[pick(rand, POOL)] = 1 + Math.floor(rand() * 3); // small counts: many ties
      batch.push(counter);
    }
    const node = pick(rand, nodes);
    const [got, want] = await Promise.all([node.post(batch), oracle.post(batch)]);
    assert.equal(got.status, want.status, `seed ${seed}, request ${request}: ${JSON.stringify(got.body)} vs ${JSON.stringify(want.body)}`);
    assert.deepEqual(got.body, want.body);
    if (request % 10 === 0) {
      // Midway, on the other node: the other node's counters appear within a flush interval or so.
      const other = nodes[1 - nodes.indexOf(node)];
      await eventually(`seed ${seed}, request ${request}, the other node`, async () => {
        for (const path of ['/api/stats?window=minute&open=true&limit=1000', '/api/stats?window=minute&limit=1000', '/api/stats?window=hour&open=true&limit=1000']) {
          const [mine, oracles] = await Promise.all([raw(other, path), raw(oracle, path)]);
          if (mine.text !== oracles.text) return `${path}: ${mine.text.slice(0, 200)} vs ${oracles.text.slice(0, 200)}`;
        }
        return null;
      });
    }
  }
  const paths: string[] = [];
  for (let minute = Math.floor(now / 60) - 125; minute <= Math.floor(now / 60); minute++) {
    paths.push(`/api/stats?window=minute&limit=${pick(rand, [1, 3, 10, 1000])}&at=${(minute + 1) * 60}`);
  }
  for (let hour = Math.floor(now / 3600) - 4; hour < Math.floor(now / 3600); hour++) {
    paths.push(`/api/stats?window=hour&limit=10&at=${(hour + 1) * 3600}`, `/api/stats?window=hour&limit=1000&at=${(hour + 1) * 3600}`);
  }
  paths.push('/api/stats/minutes', '/api/stats/hours', '/api/stats?window=hour&open=true&limit=1000');
  let compared = 0;
  for (const s of nodes) {
    await eventually(`seed ${seed}: every window on ${s.url} as the oracle answers`, async () => {
      for (const path of paths) {
        const [mine, oracles] = await Promise.all([raw(s, path), raw(oracle, path)]);
        if (mine.status !== oracles.status || mine.text !== oracles.text) return `${path}: ${mine.status} ${mine.text.slice(0, 300)} vs ${oracles.status} ${oracles.text.slice(0, 300)}`;
      }
      return null;
    });
    compared += paths.length;
  }
  assert.equal(compared, 2 * paths.length);
  // The comparison covered windows that hold counters (the oracle is not empty everywhere).
  const busy = await Promise.all(paths.map((path) => raw(oracle, path)));
  assert.ok(busy.filter((r) => r.status === 200 && !r.text.includes('"total":0')).length > 20);
}

test('two nodes on a Redis Cluster answer every window byte for byte as one local node does', (t) => modelRun(t, cluster.urls.slice(0, 3), 0xc1, 80));

test('two nodes on a single (non-cluster) Redis answer as one local node does', (t) => modelRun(t, [single.url], 0x51, 30));

test('a node started with another --partitions than the cluster was set up with refuses to start, naming both', async (t) => {
  await clusterNode(t, [cluster.urls[0]]); // records 8, if the model test has not already
  await assert.rejects(clusterNode(t, [cluster.urls[0]], { partitions: 16 }), /--partitions 8.*--partitions 16/);
});

test('the same Idempotency-Key sent to two nodes is counted once, and both answer the same', async (t) => {
  const [a, b] = await Promise.all([clusterNode(t, cluster.urls), clusterNode(t, cluster.urls)]);
  const minute = Math.floor((START + 7 * 3600) / 60);
  for (const s of [a, b]) s.clock.set(minute * 60_000 + 5000);
  const body = [{ timestamp: minute * 60 + 1, 'idem.example': 5 }];
  const key = { 'idempotency-key': `k-${Math.random()}` };
  const [first, second] = await Promise.all([a.post(body, key), b.post(body, key)]);
  assert.equal(first.status, 200);
  assert.deepEqual(second, { ...second, status: 200, body: first.body });
  const third = await b.post(body, key);
  assert.deepEqual(third.body, first.body);
  const reused = await a.post([{ timestamp: minute * 60 + 1, 'idem.example': 6 }], key);
  assert.equal(reused.status, 422);
  assert.equal(reused.body.error.code, 'TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED');
  for (const s of [a, b]) s.clock.set((minute + 1) * 60_000 + 5000);
  await eventually('counted once', async () => {
    const stats = await b.get('/api/stats?window=minute&limit=10');
    const top = stats.body.top as { domain: string; count: number }[];
    return top?.[0]?.count === 5 ? null : JSON.stringify(stats.body);
  });
});

/** The next frame's body, or a failure after `ms`. */
function nextBody(ws: TestSocket, ms = 10_000): Promise<any> {
  return within(ms, 'frame', ws.body());
}

for (const aAfterClose of [false, true]) {
  const name = aAfterClose
    ? 'a counter for the window that just closed is not pushed as final while a live node that lags has not flushed past its end'
    : 'the window-close push waits for a live node that lags behind, however long, and includes its counters';
  test(name, async (t) => {
    // b flushes every 4 s: longer than a node that stopped beating is waited for (DEAD_AFTER_MS).
    const [a, b] = await Promise.all([clusterNode(t, cluster.urls), clusterNode(t, cluster.urls, { flushInterval: 4000 })]);
    const minute = Math.floor((START + (aAfterClose ? 10 : 9) * 3600) / 60);
    for (const s of [a, b]) s.clock.set(minute * 60_000 + 1000);
    const ws = await TestSocket.open(t, a.url);
    ws.send({ type: 'subscribe', window: 'minute', limit: 3 });
    assert.deepEqual((await nextBody(ws)).top, []);
    const postA = async (): Promise<void> => assert.equal((await a.post([{ timestamp: minute * 60 + 2, 'a.example': 2 }])).status, 200);
    if (!aAfterClose) await postA();
    assert.equal((await b.post([{ timestamp: minute * 60 + 3, 'b.example': 5 }])).status, 200);
    for (const s of [a, b]) s.clock.set((minute + 1) * 60_000 + 10);
    if (aAfterClose) await postA(); // it touches the window that just closed
    const pushed = await nextBody(ws);
    assert.deepEqual(
      { from: pushed.from, top: pushed.top, final: pushed.final },
      { from: minute * 60, top: [{ domain: 'b.example', count: 5 }, { domain: 'a.example', count: 2 }], final: true },
    );
  });
}

/** The first final frame for the window that starts at `from`: earlier windows' are skipped, a later one's fails. */
async function firstFinal(ws: TestSocket, from: number): Promise<{ top: unknown }> {
  for (;;) {
    const body = await nextBody(ws);
    if (body.type !== 'top' || !body.final || body.from < from) continue;
    assert.equal(body.from, from, `pushed the window from ${body.from} as final first: ${JSON.stringify(body.top)}`);
    return { top: body.top };
  }
}

test('a window that became final late is pushed as itself, not as the newer window that closed meanwhile and is not final yet', async (t) => {
  // b and c flush only when queried (read-your-writes), so the test decides when each is past which end.
  const lagging = { flushInterval: 60_000 };
  const [a, b, c] = await Promise.all([clusterNode(t, cluster.urls), clusterNode(t, cluster.urls, lagging), clusterNode(t, cluster.urls, lagging)]);
  const minute = Math.floor((START + 12 * 3600) / 60);
  const setClocks = (ms: number): void => {
    for (const s of [a, b, c]) s.clock.set(ms);
  };
  setClocks((minute - 1) * 60_000 + 1000);
  const ws = await TestSocket.open(t, a.url);
  ws.send({ type: 'subscribe', window: 'minute', limit: 3 });
  assert.equal((await c.post([{ timestamp: (minute - 1) * 60 + 2, 'c.example': 3 }])).status, 200);
  setClocks(minute * 60_000 + 1000); // minute - 1 closes; final once c has flushed
  assert.equal((await b.post([{ timestamp: minute * 60 + 2, 'b.example': 5 }])).status, 200);
  setClocks((minute + 1) * 60_000 + 10); // minute closes; final once b and c have flushed
  assert.equal((await c.get('/api/stats?window=minute')).status, 200); // c flushes: minute - 1 is final
  assert.deepEqual(await firstFinal(ws, (minute - 1) * 60), { top: [{ domain: 'c.example', count: 3 }] });
  assert.equal((await b.get('/api/stats?window=minute')).status, 200); // b flushes: minute is final
  assert.deepEqual(await firstFinal(ws, minute * 60), { top: [{ domain: 'b.example', count: 5 }] });
});

test('a late counter taken by node A is pushed again to a subscriber on node B', async (t) => {
  const [a, b] = await Promise.all([clusterNode(t, cluster.urls), clusterNode(t, cluster.urls)]);
  const minute = Math.floor((START + 11 * 3600) / 60);
  for (const s of [a, b]) s.clock.set(minute * 60_000 + 1000);
  assert.equal((await b.post([{ timestamp: minute * 60 + 2, 'first.example': 3 }])).status, 200);
  const ws = await TestSocket.open(t, b.url);
  ws.send({ type: 'subscribe', window: 'minute', limit: 2 });
  assert.deepEqual((await nextBody(ws)).top, []);
  for (const s of [a, b]) s.clock.set((minute + 1) * 60_000 + 10);
  assert.deepEqual((await nextBody(ws)).top, [{ domain: 'first.example', count: 3 }]);
  // Late: for the minute that just closed, through the other node.
  assert.equal((await a.post([{ timestamp: minute * 60 + 30, 'late.example': 9 }])).status, 200);
  const again = await nextBody(ws);
  assert.deepEqual(
    { from: again.from, top: again.top, final: again.final },
    { from: minute * 60, top: [{ domain: 'late.example', count: 9 }, { domain: 'first.example', count: 3 }], final: true },
  );
});

test('a shard worker that dies in cluster mode is rebuilt, and Redis holds every acknowledged counter once', async (t) => {
  // Only queries drain the shards here, so the worker dies holding deltas nobody has drained.
  const a = await clusterNode(t, [single.url], { flushInterval: 60_000 });
  const minute = Math.floor((START + 15 * 3600) / 60);
  a.clock.set(minute * 60_000 + 1000);
  const acked = new Map<string, number>();
  const post = async (i: number): Promise<void> => {
    const counter = { timestamp: minute * 60 + 1, [`s${i % 7}.example`]: 1 + (i % 5), [`t${i % 11}.example`]: 2 };
    const res = await a.post([counter]);
    if (res.status !== 200) return; // refused while the shard was down: not counted
    for (const [domain, count] of Object.entries(counter)) if (domain !== 'timestamp') acked.set(domain, (acked.get(domain) ?? 0) + count);
  };
  for (let i = 0; i < 30; i++) await post(i);
  await a.get('/api/stats?window=minute&open=true'); // flushed: the shards have been drained
  for (let i = 30; i < 40; i++) await post(i); // held by the shards, not drained yet
  await a.app.pool.shards[0].terminate();
  await a.app.pool.restored(0);
  for (let i = 40; i < 70; i++) await post(i);
  const want = [...acked].map(([domain, count]) => ({ domain, count })).sort(compareRanked);
  const stats = await a.get('/api/stats?window=minute&open=true&limit=100');
  assert.deepEqual(stats.body.top, want);
  assert.equal(stats.body.total, [...acked.values()].reduce((x, y) => x + y, 0));
});

test('a node started while Redis is down takes counters, says why it is not ready, and sends them once Redis is up', async (t) => {
  const redis = await startRedis(t);
  await redis.kill();
  const minute = Math.floor((START + 14 * 3600) / 60);
  const s = await startServer(t, { redis: [redis.url], partitions: 8, flushInterval: 20, durability: 'interval' }, START);
  s.clock.set(minute * 60_000 + 1000);
  assert.equal((await s.post([{ timestamp: minute * 60 + 1, 'early.example': 6, 'other.example': 2 }])).status, 200);
  const stats = await s.get('/api/stats?window=minute&open=true&limit=5');
  assert.equal(stats.status, 503);
  assert.equal(stats.body.error.code, 'TOPTALLY_ERR_CLUSTER_UNAVAILABLE');
  const ready = await s.get('/readyz');
  assert.equal(ready.status, 503);
  assert.match(JSON.stringify(ready.body), /Redis not reached yet/);
  await redis.restart();
  await eventually('ready', async () => ((await s.get('/readyz')).status === 200 ? null : JSON.stringify((await s.get('/readyz')).body)));
  const sent = await s.get('/api/stats?window=minute&open=true&limit=5');
  assert.deepEqual(sent.body.top, [{ domain: 'early.example', count: 6 }, { domain: 'other.example', count: 2 }]);
});

test('a node that reaches Redis after its start and finds another --partitions there stays not ready, naming both', async (t) => {
  const redis = await startRedis(t);
  await clusterNode(t, [redis.url], { partitions: 16 });
  await redis.restart(); // kept in its AOF: the cluster was set up with 16
  await redis.kill();
  const s = await startServer(t, { redis: [redis.url], partitions: 8, flushInterval: 20, durability: 'interval' }, START);
  await redis.restart();
  await eventually('refused', async () => {
    const ready = await s.get('/readyz');
    return ready.status === 503 && /--partitions 16.*--partitions 8/.test(JSON.stringify(ready.body)) ? null : JSON.stringify(ready.body);
  });
});

test('the journal keeps what Redis has not taken through checkpoints, so a restart after an outage still sends it', async (t) => {
  const redis = await startRedis(t);
  const dataDir = await tempDir(t);
  const minute = Math.floor((START + 13 * 3600) / 60);
  const first = await clusterNode(t, [redis.url], { dataDir });
  first.clock.set(minute * 60_000 + 1000);
  assert.equal((await first.post([{ timestamp: minute * 60 + 1, 'kept.example': 4 }])).status, 200);
  assert.equal((await first.get('/api/stats?window=minute&open=true&limit=5')).body.total, 4);
  await redis.kill();
  assert.equal((await first.post([{ timestamp: minute * 60 + 2, 'kept.example': 3, 'later.example': 2 }])).status, 200);
  // The minute closes: a checkpoint covers both records, and would drop the journal segment.
  const segments = await readdir(path.join(dataDir, 'journal'));
  first.clock.set((minute + 1) * 60_000 + 1000);
  await eventually('a checkpoint', async () => ((await readdir(path.join(dataDir, 'checkpoints'))).length > 0 ? null : 'none yet'));
  await first.app.stop();
  assert.ok((await readdir(path.join(dataDir, 'journal'))).some((name) => segments.includes(name)), 'the segment Redis lacks is kept');
  await redis.restart();
  const second = await clusterNode(t, [redis.url], { dataDir });
  second.clock.set((minute + 1) * 60_000 + 2000);
  await eventually('every counter in Redis', async () => {
    const stats = await second.get('/api/stats?window=minute&limit=5');
    const want = [{ domain: 'kept.example', count: 7 }, { domain: 'later.example', count: 2 }];
    return JSON.stringify(stats.body.top) === JSON.stringify(want) && stats.body.total === 9 ? null : JSON.stringify(stats.body);
  });
});

test('a node sees what it acknowledged at once; with --cluster-ack cluster, every other node a round trip later, long before a flush', async (t) => {
  // Neither flushes by itself within the test: only a query (or the cluster ack) sends counters.
  const [journal, acked] = await Promise.all([
    clusterNode(t, cluster.urls, { flushInterval: 60_000 }),
    clusterNode(t, cluster.urls, { clusterAck: 'cluster', flushInterval: 60_000 }),
  ]);
  const minute = Math.floor((START + 5 * 3600) / 60);
  for (const s of [journal, acked]) s.clock.set(minute * 60_000 + 1000);
  for (let i = 1; i <= 3; i++) {
    const domain = `ryw-${i}.example`;
    assert.equal((await journal.post([{ timestamp: minute * 60 + 1, [domain]: 1000 + i }])).status, 200);
    const seen = await journal.get('/api/stats?window=minute&open=true&limit=1');
    assert.deepEqual(seen.body.top, [{ domain, count: 1000 + i }], `after post ${i}`);
  }
  // The other node reads Redis: what the first node's queries flushed is there.
  assert.deepEqual((await acked.get('/api/stats?window=minute&open=true&limit=1')).body.top, [{ domain: 'ryw-3.example', count: 1003 }]);
  assert.equal((await acked.post([{ timestamp: minute * 60 + 2, 'acked.example': 5000 }])).status, 200);
  // Acknowledged in cluster mode: in Redis and in the change stream already, though that node has
  // not been asked anything; the other node drops its cached open minute once it reads the stream.
  await eventually('the other node drops its cached open minute', async () => {
    const top = (await journal.get('/api/stats?window=minute&open=true&limit=1')).body.top;
    return JSON.stringify(top) === JSON.stringify([{ domain: 'acked.example', count: 5000 }]) ? null : JSON.stringify(top);
  }, 1000);
});
