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
import { CALL_ENTRIES, FlushCalls } from '../../src/cluster/flush-calls.ts';
import { Flusher } from '../../src/cluster/flusher.ts';
import { ShardPool } from '../../src/shards/shard-pool.ts';
import { totalKey, watermarkKey, windowKey } from '../../src/cluster/keys.ts';
import { packPairs } from '../../src/cluster/pairs-pack.ts';
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
import { eventually } from '../helpers/within.ts';

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

/** Partition `tag`'s batch of one closed minute with one member, as flushArgs lays it out. */
function batch(tag: string, lo: number, hi: number, member: string, delta: number): (string | Buffer)[] {
  return [tag, String(lo), String(hi), '1', String(MINUTE), String(HOUR), '1', '600', '7200', String(delta), packPairs([encodeCesu8(member)], [delta])];
}

async function apply(target: RedisLink, tag: string, lo: number, hi: number, member: string, delta: number): Promise<string[]> {
  const hwm = watermarkKey(tag);
  // A closed minute that was never folded: the deltas go to the hour at once.
  const reply = (await target.call(hwm, ['FCALL', 'tt_flush', '1', hwm, 'node-a', ...batch(tag, lo, hi, member, delta)])) as Buffer[];
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
  test(`tt_flush applies a batch once to its minute and hour, refuses a gap, and says the watermark (${which})`, async () => {
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

/** One tt_flush call with one batch, for partition `tag`: per minute, whether it is closed on the sender's clock, and its deltas. */
async function applyMinutes(tag: string, lo: number, hi: number, minutes: { minute: number; closed: boolean; deltas: Map<string, number> }[]): Promise<string> {
  const hwm = watermarkKey(tag);
  const args: (string | Buffer)[] = ['node-fold', tag, String(lo), String(hi), String(minutes.length)];
  for (const { minute, closed, deltas } of minutes) {
    const sum = [...deltas.values()].reduce((a, b) => a + b, 0);
    args.push(String(minute), String(Math.floor(minute / 60)), closed ? '1' : '0', '600', '7200', String(sum), packPairs([...deltas.keys()].map(encodeCesu8), [...deltas.values()]));
  }
  const reply = (await link.call(hwm, ['FCALL', 'tt_flush', '1', hwm, ...args])) as Buffer[];
  return String(reply[0]);
}

test('tt_flush unpacks members and counts of every size the packing has a form for, in both paths', async () => {
  const lengths = [1, 31, 32, 255, 256, 70_000];
  const counts = [0, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
  const deltas = new Map<string, number>();
  lengths.forEach((length, i) => deltas.set(`${'é'.repeat(Math.floor(length / 2))}${'x'.repeat(length % 2)}`, counts[i]));
  counts.slice(lengths.length).forEach((count, i) => deltas.set(`😀${i}`, count));
  const many = new Map(Array.from({ length: 40_000 }, (_, i) => [`m${i}`, i] as [string, number])); // past array16
  for (const closed of [true, false]) {
    const tag = `pack-${closed}`;
    assert.equal(await applyMinutes(tag, 0, 1, [{ minute: MINUTE, closed, deltas }]), 'ok');
    assert.equal(await applyMinutes(tag, 1, 2, [{ minute: MINUTE - 1, closed, deltas: many }]), 'ok');
    const z = windowKey(tag, 'minute', MINUTE);
    for (const [name, count] of deltas) assert.equal(String(await link.call(z, ['ZSCORE', z, encodeCesu8(name)])), String(count), `${closed}: ${name.length} chars`);
    const zm = windowKey(tag, 'minute', MINUTE - 1);
    assert.equal(Number(await link.call(zm, ['ZCARD', zm])), many.size);
    assert.equal(String(await link.call(zm, ['ZSCORE', zm, 'm39999'])), '39999');
  }
});


test('an hour answers exactly before, while and after its minutes are folded into it: summed with unfolded minutes, ties at the cut, late counters', async () => {
  const tags = partitionTags(4).map((tag) => `${tag}-fold`);
  const reader = new ClusterReader(link, tags);
  const hour = Math.floor(MINUTE / 60); // MINUTE - 3 to MINUTE are all in it
  const rand = mulberry32(0xf01d);
  // About 100 members per partition, more than one block of the summed read (32): it must read on.
  const names = [...Array.from({ length: 400 }, (_, i) => `h${i}.example`), '😀x', '\uff01x', 'é', '__proto__'];
  const expected = { hour: new Map<string, number>(), minutes: new Map<number, Map<string, number>>() };
  const marks = new Map<string, number>();
  /** Per minute sent while open, the partitions it went to: each is one minute to fold. */
  const sentOpen = new Map<number, number>();
  /** `draws` deltas of 1 to `most`, skewed to the front of `names`, or to its back when `reversed`. */
  const send = async (minute: number, closed: boolean, draws: number, most: number, reversed = false): Promise<void> => {
    const byTag = new Map<string, Map<string, number>>();
    for (let i = 0; i < draws; i++) {
      const skewed = Math.floor(rand() ** 2 * names.length);
      const name = names[reversed ? names.length - 1 - skewed : skewed];
      const delta = 1 + Math.floor(rand() * most); // small counts: ties everywhere, in the hour's sums too
      const tag = tags[hashDomain(name) % tags.length];
      const deltas = byTag.get(tag) ?? new Map<string, number>();
      byTag.set(tag, deltas.set(name, (deltas.get(name) ?? 0) + delta));
      expected.hour.set(name, (expected.hour.get(name) ?? 0) + delta);
      const inMinute = expected.minutes.get(minute) ?? new Map<string, number>();
      expected.minutes.set(minute, inMinute.set(name, (inMinute.get(name) ?? 0) + delta));
    }
    if (!closed) sentOpen.set(minute, byTag.size);
    for (const [tag, deltas] of byTag) {
      const lo = marks.get(tag) ?? 0;
      assert.equal(await applyMinutes(tag, lo, lo + 1, [{ minute, closed, deltas }]), 'ok');
      marks.set(tag, lo + 1);
    }
  };
  const fold = async (through: number): Promise<number> => {
    let folded = 0;
    for (const tag of tags) folded += Number(await link.call(watermarkKey(tag), ['FCALL', 'tt_fold', '1', watermarkKey(tag), tag, String(through), '600', String(hour - 1), String(hour)]));
    return folded;
  };
  const check = async (when: string): Promise<void> => {
    const want = (counts: Map<string, number>) => [...counts].map(([domain, count]) => ({ domain, count })).sort(compareRanked);
    for (const limit of [1, 3, 10, 40, 1000]) {
      const answer = merge(await reader.top('hour', hour, limit), limit);
      assert.deepEqual(answer.top, want(expected.hour).slice(0, limit), `${when}: the hour's top ${limit}`);
      assert.equal(answer.domains, expected.hour.size, `${when}: the hour's domains`);
      assert.equal(answer.total, [...expected.hour.values()].reduce((a, b) => a + b, 0), `${when}: the hour's total`);
    }
    for (const [minute, counts] of expected.minutes) {
      assert.deepEqual(merge(await reader.top('minute', minute, 1000), 1000).top, want(counts), `${when}: minute ${minute}`);
    }
  };

  // Two minutes taken while open: the hour lists their members only, and reads add the minutes.
  await send(MINUTE - 3, false, 1500, 3);
  await send(MINUTE - 2, false, 1500, 3, true);
  await check('two unfolded minutes');
  assert.equal(await fold(MINUTE - 3), sentOpen.get(MINUTE - 3));
  await check('one minute folded, one not');
  // Late counters: to the folded minute (straight into the hour too), to the unfolded one (closed on
  // the sender's clock, but not folded: the minute alone), to a closed minute that never had any,
  // and to the open one.
  await send(MINUTE - 3, true, 300, 4);
  await send(MINUTE - 3, false, 100, 2); // from a node whose clock is behind: the minute is still folded
  await send(MINUTE - 2, true, 300, 4, true);
  await send(MINUTE - 1, true, 300, 4);
  await send(MINUTE, false, 3000, 6, true);
  await check('late counters');
  assert.equal(await fold(MINUTE - 1), sentOpen.get(MINUTE - 2), 'only the minute still listed as unfolded');
  await check('all but the open minute folded');
  assert.equal(await fold(MINUTE), sentOpen.get(MINUTE));
  assert.equal(await fold(MINUTE), 0, 'a second fold changes nothing');
  await check('every minute folded');
  for (const tag of tags) {
    const unfolded = `${windowKey(tag, 'hour', hour)}:u`;
    assert.equal(Number(await link.call(unfolded, ['SCARD', unfolded])), 0);
  }
});

test('an hour summed from its unfolded minutes finds a member that is in no set\'s first block', async () => {
  // x is below 40 others in every set (the folded hour and two open minutes), and first by its sum.
  const tag = 'sum-deep';
  const hour = Math.floor(MINUTE / 60);
  const only = (prefix: string, count: number) => new Map(Array.from({ length: 40 }, (_, i) => [`${prefix}${i}`, count] as [string, number]));
  assert.equal(await applyMinutes(tag, 0, 1, [{ minute: MINUTE - 2, closed: false, deltas: only('c', 12).set('x', 5) }]), 'ok');
  assert.equal(Number(await link.call(watermarkKey(tag), ['FCALL', 'tt_fold', '1', watermarkKey(tag), tag, String(MINUTE - 2), '600', String(hour)])), 1);
  assert.equal(await applyMinutes(tag, 1, 2, [{ minute: MINUTE - 1, closed: false, deltas: only('a', 10).set('x', 9) }, { minute: MINUTE, closed: false, deltas: only('b', 10).set('x', 9) }]), 'ok');
  const answer = merge(await new ClusterReader(link, [tag]).top('hour', hour, 2), 2);
  assert.deepEqual(answer.top, [{ domain: 'x', count: 23 }, { domain: 'c0', count: 12 }]);
  assert.equal(answer.domains, 121);
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
  for (const [kind, index] of [['minute', MINUTE], ['hour', Math.floor(MINUTE / 60)]] as const) {
    const merged = merge(await new ClusterReader(link, tags).top(kind, index, 3), 3);
    assert.equal(merged.domains, 4500, kind);
    assert.equal(merged.total, 2 * Object.values(counts).reduce((a, b) => a + b, 0) + 10, kind);
    assert.deepEqual(merged.top[0], { domain: 'big0.example', count: 12 }, kind);
  }
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
  const clock = clockAt();
  const make = (): Flusher =>
    new Flusher({ link, drain: () => pool.drain(), tags, nodeId: 'node-f', clock, retention: { minutes: 10, hours: 2 }, flushIntervalMs: 20, segments: () => segments, waitReplicas: false });
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
  // the hour 2 retained hours after it closes, plus 120 s; the minute, open and so not folded into
  // its hour yet, as long as its hour.
  const someTag = tags[hashDomain(want[0].domain) % tags.length];
  const ttlOf = async (key: string) => Number(await link.call(key, ['TTL', key]));
  const hour = Math.floor(MINUTE / 60);
  const hourLeft = (hour + 3) * 3600 - (MINUTE * 60 + 30) + 120;
  for (const key of [windowKey(someTag, 'hour', hour), windowKey(someTag, 'minute', MINUTE)]) {
    const ttl = await ttlOf(key);
    assert.ok(ttl <= hourLeft && ttl > hourLeft - 10, `${key}: ttl ${ttl}, expected about ${hourLeft}`);
  }

  // Redis loses one partition's keys (a failover that dropped acknowledged writes): the verify pass
  // sees the lower watermark and the journal puts the counts back, once.
  const lost = tags[hashDomain(want[0].domain) % tags.length];
  const z = windowKey(lost, 'minute', MINUTE);
  const lostHour = windowKey(lost, 'hour', Math.floor(MINUTE / 60));
  await link.call(z, ['DEL', z, totalKey(lost, 'minute', MINUTE), lostHour, `${lostHour}:u`, totalKey(lost, 'hour', Math.floor(MINUTE / 60)), watermarkKey(lost)]);
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

  // Once the minute has closed on the node's clock, the node folds it into its hour in every partition.
  const unfolded = async () => (await Promise.all(tags.map((tag) => link.call(windowKey(tag, 'hour', hour), ['SCARD', `${windowKey(tag, 'hour', hour)}:u`])))).map(Number);
  assert.ok((await unfolded()).some((n) => n > 0), 'the open minute is not folded');
  clock.set((MINUTE + 1) * 60_000 + 1000);
  await eventually('the minute folded in every partition', async () => ((await unfolded()).some((n) => n > 0) ? String(await unfolded()) : null), 5000);
  assert.deepEqual(await unfolded(), tags.map(() => 0));
  assert.deepEqual(merge(await reader.top('hour', hour, 100), 100), hours);
  // Folded, the minute keeps its own retention: 10 minutes after it closes, plus 120 s, from MINUTE+1:01.
  const minuteTtl = await ttlOf(windowKey(someTag, 'minute', MINUTE));
  assert.ok(minuteTtl <= 10 * 60 - 1 + 120 && minuteTtl > 10 * 60 - 1 + 110, `folded minute ttl ${minuteTtl}`);
});

test('queries that arrive while a flush is under way are flushed for at once, not at the next interval', async (t) => {
  // No interval flush within the test: only waiters (queries, cluster acks) make the flusher send.
  const tags = ['prompt-f'];
  const pool = await shards(t);
  const flusher = new Flusher({ link, drain: () => pool.drain(), tags, nodeId: 'node-prompt', clock: clockAt(), retention: { minutes: 10, hours: 2 }, flushIntervalMs: 60_000, segments: () => [], waitReplicas: false });
  t.after(() => flusher.stop());
  await flusher.sync(0);
  const waits: Promise<void>[] = [];
  // Records of many domains, so that a call takes Redis longer than a drain takes the shards.
  const many = (lsn: number) => Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`p${i}.example`, lsn]));
  for (let lsn = 1; lsn <= 30; lsn++) {
    take(flusher, pool, record(lsn, many(lsn)));
    // Each waits for its own record, while the drains and calls for the ones before are in flight.
    waits.push(flusher.settled({ timeoutMs: 5000 }));
    if (lsn % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(waits);
  const merged = merge(await new ClusterReader(link, tags).top('minute', MINUTE, 10), 10);
  assert.equal(merged.total, 1500 * ((30 * 31) / 2));
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

async function score(target: RedisLink, tag: string, member: string): Promise<string> {
  const z = windowKey(tag, 'minute', MINUTE);
  return String(await target.call(z, ['ZSCORE', z, member]));
}

test('tt_flush judges each batch of one call by its own partition\'s watermark', async () => {
  const [a, b, c] = ['multi-a', 'multi-b', 'multi-c'];
  const flush = async (...batches: (string | Buffer)[][]): Promise<string[]> => {
    const hwm = watermarkKey(String(batches[0][0]));
    return ((await singleLink.call(hwm, ['FCALL', 'tt_flush', '1', hwm, 'node-m', ...batches.flat()])) as Buffer[]).map(String);
  };
  assert.deepEqual(await flush(batch(a, 0, 5, 'x.com', 2), batch(b, 0, 3, 'x.com', 7)), ['ok', '5', 'ok', '3']);
  assert.deepEqual(await flush(batch(a, 0, 5, 'x.com', 2), batch(b, 5, 9, 'x.com', 7), batch(c, 0, 2, 'x.com', 4)), ['dup', '5', 'gap', '3', 'ok', '2']);
  assert.deepEqual([await score(singleLink, a, 'x.com'), await score(singleLink, b, 'x.com'), await score(singleLink, c, 'x.com')], ['2', '7', '4']);
});

test('the flusher\'s batches go as one call per master (several when they are large), and one call each when the slot map is stale, counted once', async () => {
  for (const [stale, entries] of [[false, 1], [false, CALL_ENTRIES / 2.5], [true, 1]] as const) {
    const tags = partitionTags(24); // spread evenly over the slots, so over the three masters
    const member = `y-${stale}-${entries}.com`;
    let calls = 0;
    const counting: RedisLink = {
      ...link,
      call: (key, args) => {
        calls++;
        return link.call(key, args);
      },
      // A stale map: every partition taken for one master's, so the first call names slots of all three.
      masterOf: stale ? () => ({ address: 'stale', replicas: 0 }) : link.masterOf,
    };
    const flushCalls = new FlushCalls(counting, `node-calls-${stale}-${entries}`);
    const outcomes = await Promise.all(tags.map((tag, i) => flushCalls.send(tag, batch(tag, 0, 10 + i, member, i + 1), entries)));
    // 'ok' everywhere: the call that failed for a stale map wrote no watermark (else a 'dup' here).
    assert.deepEqual(outcomes, tags.map((_, i) => ['ok', 10 + i]));
    const masters = new Set(tags.map((tag) => link.masterOf(watermarkKey(tag)).address)).size;
    assert.equal(masters, 3);
    // Two batches of CALL_ENTRIES / 2.5 entries fit in a call, three do not: four calls for a master's eight.
    assert.equal(calls, stale ? 1 + tags.length : entries === 1 ? masters : masters * 4);
    assert.deepEqual(await Promise.all(tags.map((tag) => score(link, tag, member))), tags.map((_, i) => String(i + 1)));
  }
});
