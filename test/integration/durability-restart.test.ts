import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startServer, T0, tempDir, type TestServer } from '../helpers/server.ts';
import { mulberry32 } from '../helpers/random.ts';
import { readWindows, Reference } from '../helpers/windows.ts';

const DOMAINS = ['a.example', 'b.example', 'c.example', '__proto__', 'constructor', 'é.example', '🦊.example', 'x'.repeat(255)];

/** Posts `batches` requests of 5 counters each, timestamps drawn from [from, to). */
async function postRandom(s: TestServer, ref: Reference, random: () => number, batches: number, from: number, to: number): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const counters = Array.from({ length: 5 }, () => {
      const counter: Record<string, number> = { timestamp: from + Math.floor(random() * (to - from)) };
      for (let d = 0; d < 3; d++) counter[DOMAINS[Math.floor(random() * DOMAINS.length)]] = 1 + Math.floor(random() * 50);
      return counter;
    });
    const reply = await s.post(counters);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    for (const counter of counters) ref.addCounter(counter);
  }
}

const now = (s: TestServer): number => Math.floor(s.clock.now() / 1000);

test('after a clean stop, a start on the same directory answers every retained window identically', async (t) => {
  const dir = await tempDir(t);
  const random = mulberry32(7);
  const ref = new Reference();
  const s1 = await startServer(t, { dataDir: dir });

  // Hours across the day, then minutes of the last two hours, each followed by a checkpoint, then a
  // journal tail that only the log holds.
  await postRandom(s1, ref, random, 20, (Math.floor(T0 / 3600) - 23) * 3600, T0);
  s1.clock.advance(60_000);
  await s1.app.durability.checkpoint();
  await postRandom(s1, ref, random, 20, now(s1) - 110 * 60, now(s1));
  s1.clock.advance(60_000);
  await s1.app.durability.checkpoint();
  await postRandom(s1, ref, random, 10, now(s1) - 110 * 60, now(s1));

  const before = await readWindows(s1.get, now(s1));
  // The answers are the reference's, so the comparison after the restart is not of two empty sets.
  let checked = 0;
  for (const [key, answer] of before) {
    const expected = ref.top(key);
    assert.deepEqual((answer as { top: unknown }).top, expected, key);
    if (expected.length > 0) checked++;
  }
  assert.ok(checked > 40, `only ${checked} non-empty windows`);
  await s1.app.stop();

  const s2 = await startServer(t, { dataDir: dir }, now(s1));
  const recovery = s2.app.durability.recovery!;
  assert.ok(recovery.checkpoint! > 0 && recovery.windows > 0 && recovery.entries > 0, JSON.stringify(recovery));
  assert.equal(recovery.records, 10);
  assert.deepEqual(await readWindows(s2.get, now(s2)), before);
  await s2.app.stop();

  // Another shard count: the snapshot's chunks are re-partitioned on the way in.
  const s3 = await startServer(t, { dataDir: dir, shards: 3 }, now(s1));
  assert.deepEqual(await readWindows(s3.get, now(s3)), before);
});

test('interval mode keeps what a clean stop flushed; off mode writes nothing at all', async (t) => {
  const dir = await tempDir(t);
  const lastMinute = Math.floor(T0 / 60) * 60 - 60;
  const s1 = await startServer(t, { dataDir: dir, durability: 'interval' });
  assert.equal((await s1.post({ timestamp: lastMinute, A: 5 })).status, 200);
  await s1.app.stop();
  const s2 = await startServer(t, { dataDir: dir, durability: 'interval' });
  assert.deepEqual((await s2.get('/api/stats/minutes')).body, [{ Domain: 'A', NumberOfRequests: 5 }]);
  await s2.app.stop();

  const nowhere = path.join(await tempDir(t), 'not-created');
  const s3 = await startServer(t, { dataDir: nowhere, durability: 'off' });
  assert.equal((await s3.post({ timestamp: lastMinute, A: 5 })).status, 200);
  assert.equal(s3.app.durability.recovery, null);
  await s3.app.stop();
  assert.deepEqual(readdirSync(path.dirname(nowhere)), []);
});
