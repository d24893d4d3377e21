// The local backend acknowledges a batch once it is handed to the shard workers, journaled or not
// (queries are queued behind every part handed over), and waits for them once one owes more than its
// share of the backlog bound, as journaled ingest does.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalBackend } from '../../src/backend/local-backend.ts';
import { hashDomain } from '../../src/routing/hash.ts';
import { Partitioner, type Partitioned } from '../../src/routing/partition.ts';
import { ShardPool } from '../../src/shards/shard-pool.ts';

const MINUTE = 26_835_043;

function batch(domains: string[], count: number): Partitioned {
  const out = new Partitioner(2);
  for (const domain of domains) out.add(hashDomain(domain), domain, count, MINUTE);
  return out.finish(1);
}

async function startBackend(t: { after(fn: () => Promise<void>): void }, maxBacklogBytes: number): Promise<LocalBackend> {
  const backend = new LocalBackend(await ShardPool.start(2, { maxBacklogBytes }));
  t.after(() => backend.stop());
  return backend;
}

const owed = (backend: LocalBackend): number => backend.owed().reduce((n, load) => n + load.backlogBytes, 0);

async function topOf(backend: LocalBackend): Promise<[string, number][]> {
  const tops = await backend.top('minute', MINUTE, 10);
  return tops.flatMap((t) => t.domains.map((domain, i): [string, number] => [domain, t.counts[i]])).sort();
}

test('an unjournaled batch is acknowledged once handed over, and a query after the ack sees it', async (t) => {
  const backend = await startBackend(t, 64 * 2 ** 20);
  const b = batch(['a.example', 'b.example', 'c.example'], 2);
  await backend.admit(b).apply(null);
  assert.ok(owed(backend) > 0, 'still owed to the shards when acknowledged');
  assert.deepEqual(await topOf(backend), [['a.example', 2], ['b.example', 2], ['c.example', 2]]);
  assert.equal(owed(backend), 0);
});

test('past its share of the backlog bound a shard makes unjournaled acknowledgements wait for it', async (t) => {
  // A bound of 160 bytes leaves a share of 10: the first batch owes more than that.
  const backend = await startBackend(t, 160);
  const domains = ['a.example', 'b.example', 'c.example', 'd.example'];
  await backend.admit(batch(domains, 1)).apply(null);
  assert.ok(owed(backend) > 10);
  await backend.admit(batch(domains, 1)).apply(null);
  assert.equal(owed(backend), 0, 'the second acknowledgement waited until both batches were applied');
  assert.deepEqual(await topOf(backend), domains.map((d): [string, number] => [d, 2]));
});
