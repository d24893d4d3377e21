// Shard workers that fail in the ways a dead worker does not: an error reply to ingest, an exit or
// silence before ready, a heap that runs away. Each must end in a restart (and a rebuild), never in a
// hang, a crash of the process or counters silently missing.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { startToptally } from '../../src/app.ts';
import { ManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { ShardHandle } from '../../src/shards/shard-handle.ts';
import { request, T0, tempDir } from '../helpers/server.ts';
import { within } from '../helpers/within.ts';

const fixture = (name: string): string => new URL(`../helpers/workers/${name}`, import.meta.url).href;

test('a shard that answers an early-acknowledged ingest with an error is logged, restarted and rebuilt from the journal', async (t) => {
  const logs = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  logs.on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n').map((l) => JSON.parse(l))));
  const config = { ...loadConfig([], {}), port: 0, shards: 2, dataDir: await tempDir(t) };
  const app = await startToptally(config, { clock: new ManualClock(T0 * 1000), log: createLogger('info', logs) });
  t.after(() => app.stop());
  const url = `http://127.0.0.1:${app.port}`;
  const counter = Object.fromEntries([['timestamp', T0 - 60], ...Array.from({ length: 20 }, (_, i) => [`d${i}`, i + 1])]);
  assert.equal((await request(`${url}/api/events`, { method: 'POST', body: JSON.stringify(counter) })).status, 200);

  // A query is answered after every part queued before it was sent, so the bad part below travels
  // alone and is not joined with the acknowledged one (joining reads it on this thread).
  assert.equal((await request(`${url}/api/stats?window=minute&open=true&at=${T0 - 60}`)).status, 200);
  // A part whose entry count does not fit its buffer: the worker's apply throws and it replies with an error.
  const restarted = once(app.pool, 'restarted');
  await app.pool.ingest({ parts: [{ entries: 1000, buffer: new ArrayBuffer(8) }, undefined] }, true);
  assert.deepEqual(await within(20_000, 'restart', restarted), [0, true]);

  const died = lines.find((l) => l.level === 50 && l.shard === 0);
  assert.match(String(died?.msg), /shard worker died/);
  assert.match(JSON.stringify(died?.err), /shard 0 failed to apply counters/);
  const stats = await request(`${url}/api/stats?window=minute&limit=100&at=${Math.floor(T0 / 60) * 60}`);
  assert.equal(stats.status, 200);
  assert.equal(stats.body.total, 210, 'every acknowledged counter is back in the rebuilt shard');
});

test('a shard worker that exits before it is ready fails its start instead of hanging it', async () => {
  await assert.rejects(within(20_000, 'start outcome', ShardHandle.start(0, { entry: fixture('exits-before-ready.mjs') })), /shard 0 exited with code 3 before it was ready/);
});

test('a shard worker that never says it is ready fails its start after the start timeout', async () => {
  const start = ShardHandle.start(0, { entry: fixture('never-ready.mjs'), startTimeoutMs: 500 });
  await assert.rejects(within(20_000, 'start outcome', start), /shard 0 was not ready within 500 ms/);
});

test('a shard worker whose heap runs past its limit is ended as a dead shard; the process goes on', async (t) => {
  const handle = await ShardHandle.start(0, { entry: fixture('runaway.mjs'), heapMb: 32 });
  t.after(() => handle.terminate());
  const exited = once(handle, 'exit');
  const census = handle.census();
  const [cause] = (await within(30_000, 'exit', exited)) as [Error];
  assert.match(cause.message, /memory limit/);
  assert.equal(handle.failed, true);
  await assert.rejects(census, { code: 'TOPTALLY_ERR_SHARD_UNAVAILABLE' });
});
