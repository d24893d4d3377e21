// The Redis layer of cluster mode against real servers: one Redis Cluster (3 masters, 3 replicas)
// and one single redis-server for the whole file. The apply function's watermark rule, the exact
// tie order of the reader, and the flusher's replay of what Redis lost.

import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { encodeCesu8, decodeCesu8 } from '../../src/cluster/cesu8.ts';
import { Flusher } from '../../src/cluster/flusher.ts';
import { ShardPool } from '../../src/shards/shard-pool.ts';
import { totalKey, watermarkKey, windowKey } from '../../src/cluster/keys.ts';
import { ClusterReader } from '../../src/cluster/reader.ts';
import { connectRedis, type RedisLink } from '../../src/cluster/redis-link.ts';
import { Registry, type RegistryOptions } from '../../src/cluster/registry.ts';
import { keySlot, partitionTags } from '../../src/cluster/slots.ts';
import { encodeCounters, type CounterRecord } from '../../src/durability/records.ts';
import { compareRanked, merge } from '../../src/query/merge.ts';
import { hashDomain } from '../../src/routing/hash.ts';
import { Partitioner } from '../../src/routing/partition.ts';
import type { Segment } from '../../src/durability/journal.ts';
import { fileScope, startRedis, startRedisCluster, type RedisCluster, type RedisNode } from '../helpers/redis-cluster.ts';
import { mulberry32, pick } from '../helpers/random.ts';

const hooks = fileScope();
let cluster: RedisCluster;
let single: RedisNode;
let link: RedisLink;
let singleLink: RedisLink;

before(async () => {
  [cluster, single] = await Promise.all([startRedisCluster(hooks), startRedis(hooks)]);
  link = await connectRedis(cluster.urls.slice(0, 2));
  singleLink = await connectRedis([single.url]);
  await Promise.all([link.loadLibrary(), singleLink.loadLibrary()]);
});
after(async () => {
  await link?.close();
  await singleLink?.close();
  await hooks.close();
});

const MINUTE = 26801710; // 2020-12-16T07:10Z
const clockAt = (): ManualClock => new ManualClock(MINUTE * 60_000 + 30_000);

/** One journal record for counters at MINUTE. */
function record(lsn: number, counts: Record<string, number>, atMs = MINUTE * 60_000): CounterRecord {
  const partitioner = new Partitioner(2);
  for (const [domain, count] of Object.entries(counts)) partitioner.add(hashDomain(domain), domain, count, MINUTE);
  const { counters, entries, parts, minutes } = partitioner.finish(1);
  return { lsn, atMs, counters, entries, shards: 2, parts, minutes };
}

const HOUR = Math.floor(MINUTE / 60);

async function apply(target: RedisLink, tag: string, lo: number, hi: number, member: string, delta: number): Promise<string[]> {
  const z = windowKey(tag, 'minute', MINUTE);
  const keys = [watermarkKey(tag), z, totalKey(tag, 'minute', MINUTE), windowKey(tag, 'hour', HOUR), totalKey(tag, 'hour', HOUR)];
  const reply = (await target.call(z, ['FCALL', 'tt_apply', String(keys.length), ...keys, 'node-a', String(lo), String(hi), '600', '7200', String(delta), '1', encodeCesu8(member), String(delta)])) as Buffer[];
  return reply.map(String);
}

test('partition tags are deterministic and spread evenly over the slots', async () => {
  const tags = partitionTags(64);
  assert.deepEqual(tags, partitionTags(64));
  assert.equal(new Set(tags).size, 64);
  tags.forEach((tag, p) => assert.equal(Math.floor((keySlot(`{${tag}}:m:1`) * 64) / 16384), p));
  // Redis agrees on the slot (CLUSTER KEYSLOT).
  await Promise.all(tags.slice(0, 4).map(async (tag) => assert.equal(Number(await cluster.cli(cluster.nodes[0], 'CLUSTER', 'KEYSLOT', `{${tag}}:hwm`)), keySlot(`{${tag}}:hwm`))));
});

test('CESU-8 round-trips and orders like JS strings', () => {
  const names = ['a', 'b', 'é', '\uff01', '😀', '😀a', '\ud7ff', '\ue000', 'z\u{10ffff}', '__proto__'];
  for (const name of names) assert.equal(decodeCesu8(encodeCesu8(name)), name);
  const byBytes = [...names].sort((x, y) => Buffer.compare(encodeCesu8(x), encodeCesu8(y)));
  assert.deepEqual(byBytes, [...names].sort());
});

for (const which of ['cluster', 'single'] as const) {
  test(`tt_apply applies a batch once to its minute and hour, refuses a gap, and says the watermark (${which})`, async () => {
    const target = which === 'cluster' ? link : singleLink;
    const tag = `apply-${which}`;
    assert.deepEqual(await apply(target, tag, 0, 5, 'x.com', 3), ['ok', '5']);
    assert.deepEqual(await apply(target, tag, 0, 5, 'x.com', 3), ['dup', '5'], 'the same batch again');
    assert.deepEqual(await apply(target, tag, 2, 4, 'x.com', 3), ['dup', '5'], 'an older one');
    assert.deepEqual(await apply(target, tag, 7, 9, 'x.com', 3), ['gap', '5'], 'a batch after a lost one');
    assert.deepEqual(await apply(target, tag, 5, 9, 'x.com', 4), ['ok', '9']);
    for (const [kind, index, expiry] of [['minute', MINUTE, 600], ['hour', HOUR, 7200]] as const) {
      const z = windowKey(tag, kind, index);
      assert.equal(String(await target.call(z, ['ZSCORE', z, 'x.com'])), '7', kind);
      assert.equal(String(await target.call(z, ['GET', totalKey(tag, kind, index)])), '7', kind);
      for (const key of [z, totalKey(tag, kind, index)]) {
        const ttl = Number(await target.call(z, ['TTL', key]));
        assert.ok(ttl > expiry - 100 && ttl <= expiry, `${key}: ttl ${ttl}`);
      }
    }
  });
}

for (const partitions of [1, 8]) test(`the reader answers ties in local mode order, astral characters included (${partitions} partitions)`, async () => {
  const tags = partitionTags(partitions).map((tag) => `${tag}-r${partitions}`);
  const reader = new ClusterReader(link, tags);
  const rand = mulberry32(0x71e5);
  const names = ['a', 'b', 'c', 'd', '\uff01x', '😀x', '\ue000', 'é', 'ab', ...Array.from({ length: 30 }, (_, i) => `d${i}`)];
  const counts = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const name = pick(rand, names);
    counts.set(name, (counts.get(name) ?? 0) + 1 + Math.floor(rand() * 2));
  }
  for (const name of ['a', 'b', 'c', 'd', '\uff01x', '😀x']) counts.set(name, 50); // a tie group at the top
  for (const [name, count] of counts) {
    const tag = tags[hashDomain(name) % tags.length];
    const z = windowKey(tag, 'minute', MINUTE - 1);
    await link.call(z, ['ZINCRBY', z, String(count), encodeCesu8(name)]);
    await link.call(z, ['INCRBY', totalKey(tag, 'minute', MINUTE - 1), String(count)]);
  }
  const expected = [...counts].map(([domain, count]) => ({ domain, count })).sort(compareRanked);
  for (const limit of [1, 3, 5, 10, 100]) {
    const merged = merge(await reader.top('minute', MINUTE - 1, limit), limit);
    assert.deepEqual(merged.top, expected.slice(0, limit), `limit ${limit}`);
    assert.equal(merged.domains, counts.size);
    assert.equal(merged.total, [...counts.values()].reduce((a, b) => a + b, 0));
  }
});

/** Real shard workers, which the flusher drains. */
async function shards(t: { after: (fn: () => Promise<void>) => void }): Promise<ShardPool> {
  const pool = await ShardPool.start(2);
  t.after(() => pool.stop());
  return pool;
}

/** What a node does with a journaled record: the flusher takes it, then the shards (moving its parts). */
function take(flusher: Flusher, pool: ShardPool, r: CounterRecord): void {
  flusher.add(r);
  void pool.ingest(r);
}

/** A journal file holding `records`, as the flusher replays it. */
async function journalOf(dir: string, records: CounterRecord[]): Promise<Segment[]> {
  const file = path.join(dir, `seg-${records[0].lsn}`);
  for (const r of records) await appendFile(file, encodeCounters(r));
  return [{ file, firstLsn: records[0].lsn, lastLsn: records.at(-1)!.lsn }];
}

test('the flusher sends a record whose entries for one partition pass a chunk\'s size whole, counted once', async (t) => {
  const tags = ['big-f'];
  const counts: Record<string, number> = {};
  for (let i = 0; i < 4500; i++) counts[`big${i}.example`] = 1 + (i % 3);
  const pool = await shards(t);
  const flusher = new Flusher({ link, drain: () => pool.drain(), tags, nodeId: 'node-big', clock: clockAt(), retention: { minutes: 10, hours: 2 }, flushIntervalMs: 20, segments: () => [], waitReplicas: false });
  t.after(() => flusher.stop());
  await flusher.sync(0);
  take(flusher, pool, record(1, counts));
  await flusher.settled({ timeoutMs: 5000 });
  take(flusher, pool, record(2, counts));
  take(flusher, pool, record(3, { 'big0.example': 10 }));
  await flusher.settled({ timeoutMs: 5000 });
  const merged = merge(await new ClusterReader(link, tags).top('minute', MINUTE, 3), 3);
  assert.equal(merged.domains, 4500);
  assert.equal(merged.total, 2 * Object.values(counts).reduce((a, b) => a + b, 0) + 10);
  assert.deepEqual(merged.top[0], { domain: 'big0.example', count: 12 });
});

test('the flusher counts every record once (domains with colliding hashes apart), sets expiry by the toptally clock, and replays what Redis lost from the journal', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toptally-flusher-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const tags = partitionTags(8).map((tag) => `${tag}-f`);
  const reader = new ClusterReader(link, tags);
  const rand = mulberry32(0xf105);
  // Two pairs whose FNV-1a hashes collide: the aggregation must still keep them apart.
  const domains = [...Array.from({ length: 25 }, (_, i) => `f${i}.example`), 'costarring', 'liquid', 'declinate', 'macallums'];
  const records: CounterRecord[] = [];
  const expected = new Map<string, number>();
  for (let lsn = 1; lsn <= 40; lsn++) {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 5; i++) counts[pick(rand, domains)] = 1 + Math.floor(rand() * 9);
    for (const [d, c] of Object.entries(counts)) expected.set(d, (expected.get(d) ?? 0) + c);
    records.push(record(lsn, counts));
  }
  const segments = await journalOf(dir, records);
  const pool = await shards(t);
  const make = (): Flusher =>
    new Flusher({ link, drain: () => pool.drain(), tags, nodeId: 'node-f', clock: clockAt(), retention: { minutes: 10, hours: 2 }, flushIntervalMs: 20, segments: () => segments, waitReplicas: false });
  const flusher = make();
  t.after(() => flusher.stop());
  await flusher.sync(0);
  for (const r of records.slice(0, 20)) take(flusher, pool, r);
  await flusher.settled({ timeoutMs: 5000 });
  for (const r of records.slice(20)) take(flusher, pool, r);
  await flusher.settled({ timeoutMs: 5000 });
  const want = [...expected].map(([domain, count]) => ({ domain, count })).sort(compareRanked);
  assert.ok(['costarring', 'liquid', 'declinate', 'macallums'].every((d) => expected.has(d)));
  const read = async () => merge(await reader.top('minute', MINUTE, 100), 100);
  assert.deepEqual((await read()).top, want);
  // Windows expire with the retention, counted on toptally's clock (MINUTE:30 here), not Redis's:
  // the minute 10 retained minutes after it closes, the hour 2 retained hours after, plus 120 s.
  const someTag = tags[hashDomain(want[0].domain) % tags.length];
  const ttlOf = async (key: string) => Number(await link.call(key, ['TTL', key]));
  const minuteTtl = await ttlOf(windowKey(someTag, 'minute', MINUTE));
  assert.ok(minuteTtl <= 11 * 60 - 30 + 120 && minuteTtl > 11 * 60 - 30 + 110, `minute ttl ${minuteTtl}`);
  const hour = Math.floor(MINUTE / 60);
  const hourTtl = await ttlOf(windowKey(someTag, 'hour', hour));
  const hourLeft = (hour + 3) * 3600 - (MINUTE * 60 + 30) + 120;
  assert.ok(hourTtl <= hourLeft && hourTtl > hourLeft - 10, `hour ttl ${hourTtl}, expected about ${hourLeft}`);

  // Redis loses one partition's keys (a failover that dropped acknowledged writes): the verify pass
  // sees the lower watermark and the journal puts the counts back, once.
  const lost = tags[hashDomain(want[0].domain) % tags.length];
  const z = windowKey(lost, 'minute', MINUTE);
  await link.call(z, ['DEL', z, totalKey(lost, 'minute', MINUTE), windowKey(lost, 'hour', Math.floor(MINUTE / 60)), totalKey(lost, 'hour', Math.floor(MINUTE / 60)), watermarkKey(lost)]);
  const deadline = Date.now() + 10_000;
  while (flusher.stats.gaps === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(flusher.stats.gaps, 1);
  await flusher.settled({ timeoutMs: 5000 });
  assert.deepEqual((await read()).top, want);

  // A restarted node replays its journal past its watermarks: nothing is counted twice.
  flusher.stop();
  const again = make();
  t.after(() => again.stop());
  await again.sync(40);
  await again.settled({ timeoutMs: 5000 });
  const merged = await read();
  assert.deepEqual(merged.top, want);
  assert.equal(merged.total, [...expected.values()].reduce((a, b) => a + b, 0));
  const hours = merge(await reader.top('hour', Math.floor(MINUTE / 60), 100), 100);
  assert.deepEqual(hours.top, want);
});

/** Polls `check` every 20 ms until it holds, for at most `ms`. */
async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a window is final once every live node that flushes is past its end: one whose flushes fail holds it back no longer', async (t) => {
  const end = MINUTE * 60_000;
  let through = end - 1000;
  let flushing = true;
  const registry = (nodeId: string, own: Pick<RegistryOptions, 'flushedThrough' | 'flushing'>): Registry =>
    new Registry({ link: singleLink, nodeId, clock: clockAt(), pollMs: 20, ...own });
  const lagging = registry('reg-lagging', { flushedThrough: () => through, flushing: () => flushing });
  const ahead = registry('reg-ahead', { flushedThrough: () => end + 1000, flushing: () => true });
  t.after(async () => {
    await ahead.stop();
    await lagging.stop();
  });
  await lagging.start();
  await ahead.start();
  assert.ok(ahead.live().includes('reg-lagging'));
  assert.equal(ahead.final(end), false, 'a live node that flushes and is behind holds the window');
  flushing = false; // its calls to Redis fail from now on: it says so in its next heartbeat
  await until('final once the lagging node says its flushes fail', () => ahead.final(end));
  flushing = true;
  await until('held again once it flushes again', () => !ahead.final(end));
  const whenFinal = ahead.whenFinal(end);
  through = end + 1;
  assert.equal(await whenFinal, true, 'final once it has flushed past the end');
});
