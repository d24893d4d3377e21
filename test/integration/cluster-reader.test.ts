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

/** The link, counting the functions it calls. */
function counting(target: RedisLink): { link: RedisLink; calls: string[] } {
  const calls: string[] = [];
  return { calls, link: { ...target, call: (key: string, args: Arg[]) => (calls.push(String(args[1])), target.call(key, args)) } };
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
  assert.deepEqual(calls, ['tt_top_many', 'tt_top_many', 'tt_top_many'], 'one call per master');

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
  assert.ok(calls.includes('tt_top'), `the stale master's partitions were read one by one: ${calls.join(', ')}`);
});
