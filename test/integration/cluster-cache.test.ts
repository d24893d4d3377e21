// The stats cache in cluster mode, where open windows are cached too: against real toptally nodes
// (in this process, on manual clocks) and real Redis Clusters. A node sees its own counters right
// after their acknowledgement; another node's counters drop the cached answer as soon as they are in
// Redis (the change stream is appended to at once and followed with XREAD BLOCK); while the change
// stream is not followed, open windows are read from Redis, and once it is again every cached answer
// is dropped. A single (non-cluster) Redis works the same way.
//
// The nodes flush every 10 s, so within a test only queries send counters to Redis: whatever shows
// up sooner on another node came through a query's flush and the change stream, not a timer.

import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { connectRedis } from '../../src/cluster/redis-link.ts';
import type { Config } from '../../src/config.ts';
import { fileScope, startRedis, startRedisCluster, type RedisCluster, type RedisNode } from '../helpers/redis-cluster.ts';
import { startServer, T0, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/within.ts';

const hooks = fileScope();
let cluster: RedisCluster;
before(async () => {
  cluster = await startRedisCluster(hooks);
});
after(hooks.close);

const FLUSH_MS = 10_000;
/** How soon another node must drop its cached answer once a counter is in Redis: well under a flush interval. */
const PROMPT_MS = 2000;
const START = T0 - 3600;

async function clusterNode(t: TestContext, seeds: string[], extra: Partial<Config> = {}): Promise<TestServer> {
  const s = await startServer(t, { redis: seeds, partitions: 8, flushInterval: FLUSH_MS, durability: 'interval', ...extra }, START);
  await eventually('ready and following the change stream', async () => {
    const ready = await s.get('/readyz');
    if (ready.status !== 200) return JSON.stringify(ready.body);
    return (await metric(s, 'toptally_cluster_changes_following')) === 1 ? null : 'not following the change stream';
  });
  return s;
}

async function metric(s: TestServer, name: string): Promise<number> {
  const text = String((await s.get('/metrics')).body);
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

const openHits = (s: TestServer): Promise<number> => metric(s, 'toptally_stats_cache_hits_total{window_state="open"}');

async function openTop(s: TestServer, window: 'minute' | 'hour' = 'minute'): Promise<{ status: number; top: unknown }> {
  const reply = await s.get(`/api/stats?window=${window}&open=true&limit=5`);
  return { status: reply.status, top: reply.status === 200 ? reply.body.top : reply.body };
}

test('a counter posted to node A shows in node B\'s cached open window as soon as A has sent it to Redis', async (t) => {
  const [a, b] = await Promise.all([clusterNode(t, cluster.urls), clusterNode(t, cluster.urls)]);
  const minute = Math.floor((START + 600) / 60);
  for (const s of [a, b]) s.clock.set(minute * 60_000 + 1000);
  assert.equal((await a.post([{ timestamp: minute * 60 + 1, 'first.example': 5 }])).status, 200);
  // A query to A sends what A acknowledged to Redis first.
  assert.deepEqual((await openTop(a)).top, [{ domain: 'first.example', count: 5 }]);
  await eventually('B answers the open minute with A\'s counter', async () => {
    const { top } = await openTop(b);
    return JSON.stringify(top) === JSON.stringify([{ domain: 'first.example', count: 5 }]) ? null : JSON.stringify(top);
  });
  const hits = await openHits(b);
  assert.deepEqual((await openTop(b)).top, [{ domain: 'first.example', count: 5 }]);
  assert.equal(await openHits(b), hits + 1, 'B answered the open minute from its cache');

  for (let i = 1; i <= 3; i++) {
    const domain = `then-${i}.example`;
    assert.equal((await a.post([{ timestamp: minute * 60 + 2, [domain]: 10 * i }])).status, 200);
    assert.deepEqual(((await openTop(a)).top as unknown[])[0], { domain, count: 10 * i }, 'A flushed it');
    const sent = Date.now();
    await eventually(`B drops its cached answer for ${domain}`, async () => {
      const { top } = await openTop(b);
      return JSON.stringify((top as unknown[])[0]) === JSON.stringify({ domain, count: 10 * i }) ? null : JSON.stringify(top);
    }, PROMPT_MS);
    t.diagnostic(`${domain} on B ${Date.now() - sent} ms after it was in Redis`);
    // And B caches the new answer again.
    const before = await openHits(b);
    assert.deepEqual(((await openTop(b)).top as unknown[])[0], { domain, count: 10 * i });
    assert.equal(await openHits(b), before + 1);
  }
  // The open hour is kept and dropped the same way.
  assert.deepEqual(((await openTop(b, 'hour')).top as unknown[])[0], { domain: 'then-3.example', count: 30 });
  assert.equal((await a.post([{ timestamp: minute * 60 + 3, 'hour.example': 100 }])).status, 200);
  await openTop(a);
  await eventually('B drops its cached open hour', async () => {
    const { top } = await openTop(b, 'hour');
    return JSON.stringify((top as unknown[])[0]) === JSON.stringify({ domain: 'hour.example', count: 100 }) ? null : JSON.stringify(top);
  }, PROMPT_MS);
});

test('a node answers its cached open windows with its own counter right after acknowledging it', async (t) => {
  const s = await clusterNode(t, cluster.urls);
  const minute = Math.floor((START + 2 * 3600 + 600) / 60); // an hour of its own: the cluster is shared
  s.clock.set(minute * 60_000 + 1000);
  const counts = new Map<string, number>();
  for (let i = 1; i <= 20; i++) {
    // Read twice (the second answer from the cache), then add a counter that changes the top.
    for (const window of ['minute', 'hour'] as const) await openTop(s, window);
    const hits = await openHits(s);
    await openTop(s);
    assert.equal(await openHits(s), hits + 1, `round ${i}: the open minute came from the cache`);
    const domain = `own-${i % 4}.example`;
    const count = (counts.get(domain) ?? 0) + 100 * i;
    counts.set(domain, count);
    assert.equal((await s.post([{ timestamp: minute * 60 + (i % 50), [domain]: 100 * i }])).status, 200);
    for (const window of ['minute', 'hour'] as const) {
      assert.deepEqual(((await openTop(s, window)).top as unknown[])[0], { domain, count }, `round ${i}, open ${window}`);
    }
  }
});

test('while the change stream is not followed open windows are read from Redis, and once it is every cached answer is dropped', async (t) => {
  // No replicas: the stopped master stays the stream's master.
  const own = await startRedisCluster(hooks, { masters: 3, replicas: 0 });
  const s = await clusterNode(t, own.urls);
  const minute = Math.floor((START + 1800) / 60);
  s.clock.set(minute * 60_000 + 1000);
  assert.equal((await s.post([{ timestamp: minute * 60 + 1, 'kept.example': 7 }])).status, 200);
  assert.deepEqual((await openTop(s)).top, [{ domain: 'kept.example', count: 7 }]);
  const hits = await openHits(s);
  assert.deepEqual((await openTop(s)).top, [{ domain: 'kept.example', count: 7 }]);
  assert.equal(await openHits(s), hits + 1, 'cached while the stream is followed');

  const streamMaster = await masterOf(own, '{tt}:changes');
  streamMaster.pause();
  t.after(() => streamMaster.resume());
  await eventually('the node says it no longer follows the change stream', async () =>
    (await metric(s, 'toptally_cluster_changes_following')) === 0 ? null : 'still following');
  // The stream's master also holds partitions: an answer read from Redis now fails, a cached one would not.
  const during = await s.get('/api/stats?window=minute&open=true&limit=5');
  assert.equal(during.status, 503, JSON.stringify(during.body));
  assert.equal(during.body.error.code, 'TOPTALLY_ERR_CLUSTER_UNAVAILABLE');
  assert.equal(await openHits(s), hits + 1, 'not answered from the cache');

  streamMaster.resume();
  await eventually('following again', async () => ((await metric(s, 'toptally_cluster_changes_following')) === 1 ? null : 'not following'), 15_000);
  assert.deepEqual((await openTop(s)).top, [{ domain: 'kept.example', count: 7 }]);
  assert.equal(await openHits(s), hits + 1, 'the answer cached before was dropped');
  assert.deepEqual((await openTop(s)).top, [{ domain: 'kept.example', count: 7 }]);
  assert.equal(await openHits(s), hits + 2, 'and the new one is cached');
});

test('after the change stream\'s master fails over, a node follows the stream on the new master and sees other nodes\' counters there', async (t) => {
  const own = await startRedisCluster(hooks);
  const [a, b] = await Promise.all([clusterNode(t, own.urls), clusterNode(t, own.urls)]);
  const minute = Math.floor((START + 2400) / 60);
  for (const s of [a, b]) s.clock.set(minute * 60_000 + 1000);
  const killed = await masterOf(own, '{tt}:changes');
  await killed.kill();
  await eventually('B follows the change stream on the promoted replica', async () =>
    (await metric(b, 'toptally_cluster_changes_following')) === 1 && (await masterOf(own, '{tt}:changes')) !== killed ? null : 'not yet', 30_000);
  // Every master answers again before B caches anything.
  await eventually('B answers the open minute', async () => ((await openTop(b)).status === 200 ? null : JSON.stringify((await openTop(b)).top)), 30_000);
  const hits = await openHits(b);
  await openTop(b);
  assert.equal(await openHits(b), hits + 1, 'B answers the open minute from its cache');
  assert.equal((await a.post([{ timestamp: minute * 60 + 1, 'after.example': 3 }])).status, 200);
  await eventually('A flushed it', async () => {
    const { status, top } = await openTop(a);
    return status === 200 && JSON.stringify(top) === JSON.stringify([{ domain: 'after.example', count: 3 }]) ? null : JSON.stringify(top);
  }, 30_000);
  await eventually('B drops its cached answer', async () => {
    const { top } = await openTop(b);
    return JSON.stringify(top) === JSON.stringify([{ domain: 'after.example', count: 3 }]) ? null : JSON.stringify(top);
  }, PROMPT_MS);
});

test('on a single (non-cluster) Redis, nodes follow the change stream the same way', async (t) => {
  const single = await startRedis(hooks);
  const [a, b] = await Promise.all([clusterNode(t, [single.url]), clusterNode(t, [single.url])]);
  const minute = Math.floor((START + 600) / 60);
  for (const s of [a, b]) s.clock.set(minute * 60_000 + 1000);
  assert.equal((await a.post([{ timestamp: minute * 60 + 1, 'one.example': 1 }])).status, 200);
  await openTop(a);
  await eventually('B answers with A\'s counter', async () => (JSON.stringify((await openTop(b)).top) === '[{"domain":"one.example","count":1}]' ? null : 'not yet'));
  const hits = await openHits(b);
  await openTop(b);
  assert.equal(await openHits(b), hits + 1, 'B answers the open minute from its cache');
  assert.equal((await a.post([{ timestamp: minute * 60 + 2, 'two.example': 2 }])).status, 200);
  await openTop(a);
  await eventually('B drops its cached answer', async () => {
    const { top } = await openTop(b);
    return JSON.stringify((top as unknown[])[0]) === '{"domain":"two.example","count":2}' ? null : JSON.stringify(top);
  }, PROMPT_MS);
});

/** The node serving `key`'s slot as master now. */
async function masterOf(redis: RedisCluster, key: string): Promise<RedisNode> {
  const link = await connectRedis(redis.urls.filter((_, i) => redis.nodes[i].process !== null));
  try {
    const { address } = link.masterOf(key);
    const node = redis.nodes.find((n) => address.endsWith(`:${n.port}`));
    if (!node) throw new Error(`no node at ${address}`);
    return node;
  } finally {
    await link.close();
  }
}
