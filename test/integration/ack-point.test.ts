// When an ingest is acknowledged, on real shard workers: a journaled batch as soon as it is handed
// over (a dying worker is rebuilt from the journal), an unjournaled one once applied, and a journaled
// one once applied too while a shard owes more than its share of the backlog bound. Either way a
// query asked after the acknowledgement sees the batch.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashDomain } from '../../src/routing/hash.ts';
import { Partitioner, type Partitioned } from '../../src/routing/partition.ts';
import { ShardPool } from '../../src/shards/shard-pool.ts';

const MINUTE = 26_835_043;

function batch(domains: string[], count: number): Partitioned {
  const out = new Partitioner(2);
  for (const domain of domains) out.add(hashDomain(domain), domain, count, MINUTE);
  return out.finish(1);
}

const owed = (pool: ShardPool): number => pool.shards.reduce((n, shard) => n + shard.backlogBytes, 0);

async function topOf(pool: ShardPool): Promise<[string, number][]> {
  const tops = await pool.top('minute', MINUTE, 10);
  return tops.flatMap((t) => t.domains.map((domain, i): [string, number] => [domain, t.counts[i]])).sort();
}

async function startPool(t: { after(fn: () => Promise<void>): void }, maxBacklogBytes?: number): Promise<ShardPool> {
  const pool = await ShardPool.start(2, { maxBacklogBytes });
  t.after(() => pool.stop());
  return pool;
}

test('a journaled batch is acknowledged before the shards apply it, and a query after the ack sees it', async (t) => {
  const pool = await startPool(t, 64 * 2 ** 20);
  await pool.ingest(batch(['a.example', 'b.example', 'c.example'], 2), true);
  assert.ok(owed(pool) > 0, 'still owed to the shards when acknowledged');
  assert.deepEqual(await topOf(pool), [['a.example', 2], ['b.example', 2], ['c.example', 2]]);
  assert.equal(owed(pool), 0);
});

test('an unjournaled batch is acknowledged once every shard has applied it', async (t) => {
  const pool = await startPool(t, 64 * 2 ** 20);
  await pool.ingest(batch(['a.example', 'b.example', 'c.example'], 3), false);
  assert.equal(owed(pool), 0);
  assert.deepEqual(await topOf(pool), [['a.example', 3], ['b.example', 3], ['c.example', 3]]);
});

test('past its share of the backlog bound a shard makes journaled acknowledgements wait for it', async (t) => {
  // A bound of 160 bytes leaves a share of 10: the first batch owes more than that.
  const pool = await startPool(t, 160);
  const domains = ['a.example', 'b.example', 'c.example', 'd.example'];
  await pool.ingest(batch(domains, 1), true);
  assert.ok(owed(pool) > 10);
  await pool.ingest(batch(domains, 1), true);
  assert.equal(owed(pool), 0, 'the second acknowledgement waited until both batches were applied');
  assert.deepEqual(await topOf(pool), domains.map((d): [string, number] => [d, 2]));
});

test('counters acknowledged before a retention change are dropped with their window, not brought back after it', async (t) => {
  const pool = await startPool(t, 64 * 2 ** 20);
  await pool.ingest(batch(['a.example', 'b.example'], 1), true);
  assert.ok(owed(pool) > 0, 'still queued when the retention moves past its minute');
  pool.retain(MINUTE + 1, Math.floor((MINUTE + 60) / 60));
  const census = await Promise.all(pool.shards.map((shard) => shard.census()));
  assert.deepEqual(census.map((c) => c.entries), [0, 0]);
});
