// Model-based: random counters through the real server, every window compared with a brute-force
// reference computed here, for 1, 2 and 4 shards.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32, pick } from '../helpers/random.ts';
import { startServer, T0 } from '../helpers/server.ts';

const NAMES = ['A', 'B', 'C', 'a', 'b', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'é.example', '😀.io', 'x'.repeat(200)];
const domainPool = [...NAMES, ...Array.from({ length: 40 }, (_, i) => `d${i}.example`)];

type Counter = Record<string, number> & { timestamp: number };

function reference(counters: Counter[], size: number, from: number) {
  const counts = new Map<string, number>();
  for (const c of counters) {
    if (c.timestamp < from || c.timestamp >= from + size) continue;
    for (const key of Object.keys(c)) {
      if (key !== 'timestamp' && c[key] > 0) counts.set(key, (counts.get(key) ?? 0) + c[key]);
    }
  }
  const ranked = [...counts].map(([domain, count]) => ({ domain, count }));
  ranked.sort((x, y) => y.count - x.count || (x.domain < y.domain ? -1 : x.domain > y.domain ? 1 : 0));
  return { total: ranked.reduce((sum, e) => sum + e.count, 0), domains: ranked.length, top: ranked };
}

// Bodies decode on the I/O thread or on the decode pool: cover both.
for (const [shards, offload] of [[1, 'never'], [2, 'always'], [4, 'auto']] as const) {
  test(`random counters across minutes and hours give the reference answer with ${shards} shard(s), decoded on the pool: ${offload}`, async (t) => {
    const seed = 0x5eed + shards;
    const rand = mulberry32(seed);
    // In auto mode bodies of 2 KB or more take the pool, smaller ones not: both in one run.
    const s = await startServer(t, { shards, offload, offloadBytes: 2048 });
    // Five hours back from T0, so minutes and hours both roll over many times.
    const start = T0 - 5 * 3600;
    const counters: Counter[] = [];
    for (let request = 0; request < 60; request++) {
      const batch: Counter[] = [];
      const n = 1 + Math.floor(rand() * 20);
      for (let i = 0; i < n; i++) {
        const counter: Counter = { timestamp: start + Math.floor(rand() * (T0 - start)) } as Counter;
        const domains = Math.floor(rand() * 6);
        for (let d = 0; d < domains; d++) counter[pick(rand, domainPool)] = Math.floor(rand() * (rand() < 0.1 ? 1e6 : 10));
        batch.push(counter);
        if (rand() < 0.1) batch.push({ ...counter }); // an exact duplicate counts twice
      }
      const ndjson = rand() < 0.3;
      const reply = ndjson
        ? await s.post(batch.map((c) => JSON.stringify(c)).join('\n'), { 'content-type': 'application/x-ndjson' })
        : await s.post(batch);
      assert.equal(reply.status, 200, `seed ${seed}: ${JSON.stringify(reply.body)}`);
      counters.push(...batch);
    }

    const check = async (window: 'minute' | 'hour', from: number, size: number, limit: number) => {
      const reply = await s.get(`/api/stats?window=${window}&limit=${limit}&at=${from + size}`);
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      const want = reference(counters, size, from);
      const what = `seed ${seed}, ${window} from ${from}, limit ${limit}`;
      assert.deepEqual(
        { total: reply.body.total, domains: reply.body.domains, top: reply.body.top },
        { total: want.total, domains: want.domains, top: want.top.slice(0, limit) },
        what,
      );
    };
    const firstMinute = Math.floor(T0 / 60) * 60 - 120 * 60;
    for (let from = firstMinute; from + 60 <= T0; from += 60) await check('minute', from, 60, pick(rand, [3, 10, 1000]));
    for (let from = Math.floor(start / 3600) * 3600; from + 3600 <= T0; from += 3600) {
      await check('hour', from, 3600, 10);
      await check('hour', from, 3600, 1000);
    }
  });
}
