// The reader asks each master once for all the partitions it holds, and still answers exactly when
// its slot map is stale: a slot moved to another master by hand, as `redis-cli --cluster reshard`
// does, before node-redis has heard of it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { encodeCesu8 } from '../../src/cluster/cesu8.ts';
import { totalKey, windowKey } from '../../src/cluster/keys.ts';
import { ClusterReader } from '../../src/cluster/reader.ts';
import { connectRedis, type Arg, type RedisLink } from '../../src/cluster/redis-link.ts';
import { keySlot, partitionTags } from '../../src/cluster/slots.ts';
import { compareRanked, merge } from '../../src/query/merge.ts';
import { hashDomain } from '../../src/routing/hash.ts';
import { cli, fileScope, startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.ts';

const hooks = fileScope();
let cluster: RedisCluster;
let link: RedisLink;

before(async () => {
  cluster = await startRedisCluster(hooks, { masters: 3, replicas: 0 });
  link = await connectRedis(cluster.urls);
  await link.loadLibrary();
});
after(async () => {
  await link?.close();
  await hooks.close();
});

const MINUTE = 26801710;

/** The link, recording how many partitions each tt_top call it sends covers. */
function counting(target: RedisLink): { link: RedisLink; calls: number[] } {
  const calls: number[] = [];
  return { calls, link: { ...target, call: (key: string, args: Arg[]) => (calls.push(String(args[6]).split(',').length), target.call(key, args)) } };
}

async function fill(tags: string[], counts: Map<string, number>): Promise<void> {
  for (const [name, count] of counts) {
    const tag = tags[hashDomain(name) % tags.length];
    const z = windowKey(tag, 'minute', MINUTE);
    await link.call(z, ['ZINCRBY', z, String(count), encodeCesu8(name)]);
    await link.call(z, ['INCRBY', totalKey(tag, 'minute', MINUTE), String(count)]);
  }
}

const expectedTop = (counts: Map<string, number>, limit: number) =>
  [...counts].map(([domain, count]) => ({ domain, count })).sort(compareRanked).slice(0, limit);

test('the reader reads every partition a master holds in one call, and one by one after a slot moved under it', async () => {
  const tags = partitionTags(16).map((tag) => `${tag}-mv`);
  const counts = new Map(Array.from({ length: 60 }, (_, i) => [`d${i}.example`, 1 + ((i * 7) % 13)] as [string, number]));
  await fill(tags, counts);
  const { link: watched, calls } = counting(link);
  const reader = new ClusterReader(watched, tags);

  const first = merge(await reader.top('minute', MINUTE, 10), 10);
  assert.deepEqual(first.top, expectedTop(counts, 10));
  assert.equal(first.total, [...counts.values()].reduce((a, b) => a + b, 0));
  assert.equal(calls.length, 3, 'one call per master');
  assert.equal(calls.reduce((a, b) => a + b, 0), tags.length, 'covering every partition once');

  // Move the slot of a partition that has members to another master, keys and all.
  const tag = tags.find((_, p) => [...counts.keys()].some((name) => hashDomain(name) % tags.length === p))!;
  const slot = keySlot(windowKey(tag, 'minute', MINUTE));
  const masters = await cluster.masters();
  const ids = await Promise.all(masters.map((m) => cli(m.port, 'CLUSTER', 'MYID')));
  const owner = masters.findIndex((m) => link.masterOf(windowKey(tag, 'minute', MINUTE)).address === `127.0.0.1:${m.port}`);
  const target = (owner + 1) % masters.length;
  await cli(masters[target].port, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', ids[owner]);
  await cli(masters[owner].port, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', ids[target]);
  const keys = (await cli(masters[owner].port, 'CLUSTER', 'GETKEYSINSLOT', String(slot), '100')).split('\n').filter(Boolean);
  assert.ok(keys.length >= 2, `keys in slot ${slot}: ${keys.join(', ')}`);
  await cli(masters[owner].port, 'MIGRATE', '127.0.0.1', String(masters[target].port), '', '0', '5000', 'KEYS', ...keys);
  for (const port of [masters[target].port, masters[owner].port]) await cli(port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', ids[target]);

  calls.length = 0;
  const moved = merge(await reader.top('minute', MINUTE, 10), 10);
  assert.deepEqual(moved, first, 'the same answer from the slot’s new master');
  assert.ok(calls.includes(1) && calls.length > 3, `the stale master's partitions were read one by one: ${calls.join(', ')}`);
});

test('the masters cut their partitions to the top N exactly: ties at the cut across partitions, inside one partition, and past N', async () => {
  // Counts of 1–4 over 300 names in 24 partitions: every cut falls among ties, some partitions hold
  // more members at the cut than they list, and names share prefixes and leave ASCII.
  const tags = partitionTags(24).map((tag) => `${tag}-ties`);
  const names = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `é${i}.example` : i % 3 === 1 ? `d${i}` : `\u{1F600}${i % 17}-${i}`));
  const counts = new Map(names.map((name, i) => [name, 1 + ((i * 13) % 4)] as [string, number]));
  await fill(tags, counts);
  const reader = new ClusterReader(link, tags);
  for (const limit of [1, 3, 10, 40, 299, 300, 500]) {
    const answer = merge(await reader.top('minute', MINUTE, limit), limit);
    assert.deepEqual(answer.top, expectedTop(counts, limit), `top ${limit}`);
    assert.equal(answer.domains, counts.size);
    assert.equal(answer.total, [...counts.values()].reduce((a, b) => a + b, 0));
  }
});
