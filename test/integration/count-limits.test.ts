// Counts are doubles: exact up to 2^53 - 1, silently wrong past it. A counter that would take a
// window's total (and so possibly a count) past it is refused before anything records it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer, T0, tempDir, type Reply, type TestServer } from '../helpers/server.ts';

const MAX = Number.MAX_SAFE_INTEGER;
/** Minutes of two closed hours, so that both their minutes and their hours can be read. */
const hourStart = Math.floor(T0 / 3600) * 3600 - 3600;
const minute = hourStart + 600;
const otherMinute = hourStart + 660;
const earlierMinute = hourStart - 1800;

async function window(s: TestServer, kind: 'minute' | 'hour', at: number): Promise<{ total: number; top: Record<string, number> }> {
  const reply = await s.get(`/api/stats?window=${kind}&limit=1000&at=${at}`);
  assert.equal(reply.status, 200);
  return { total: reply.body.total, top: Object.fromEntries((reply.body.top as { domain: string; count: number }[]).map((e) => [e.domain, e.count])) };
}

function assertOverflow(reply: Reply, kind: 'minute' | 'hour', at: number): void {
  assert.equal(reply.status, 422);
  assert.equal(reply.body.error.code, 'TOPTALLY_ERR_COUNT_OVERFLOW');
  assert.equal(reply.body.error.window, kind);
  assert.equal(reply.body.error.at, at);
  assert.equal(reply.body.error.limit, MAX);
}

test('a counter that would take a count or a window total past 2^53 - 1 is refused with TOPTALLY_ERR_COUNT_OVERFLOW, and nothing of it is counted, also after a restart', async (t) => {
  const dir = await tempDir(t);
  const s1 = await startServer(t, { dataDir: dir });
  assert.equal((await s1.post({ timestamp: minute, Y: MAX })).status, 200);
  for (let i = 0; i < 4; i++) assertOverflow(await s1.post({ timestamp: minute, Y: 1 }), 'minute', minute);
  assertOverflow(await s1.post({ timestamp: minute, Z: 1 }), 'minute', minute);
  // Another minute of the same hour: that minute has room, the hour has not.
  assertOverflow(await s1.post({ timestamp: otherMinute, Y: 1 }), 'hour', hourStart);
  // Two counters of one request that only together pass it: the whole request is refused.
  assertOverflow(await s1.post([{ timestamp: earlierMinute, W: MAX }, { timestamp: earlierMinute, V: 1 }]), 'minute', earlierMinute);
  assert.deepEqual(await window(s1, 'minute', minute + 60), { total: MAX, top: { Y: MAX } });
  assert.deepEqual(await window(s1, 'minute', otherMinute + 60), { total: 0, top: {} });
  assert.deepEqual(await window(s1, 'hour', hourStart + 3600), { total: MAX, top: { Y: MAX } });
  assert.deepEqual(await window(s1, 'minute', earlierMinute + 60), { total: 0, top: {} });
  // Other windows still take counters, up to the limit exactly.
  assert.equal((await s1.post({ timestamp: earlierMinute, W: MAX - 1 })).status, 200);
  assert.equal((await s1.post({ timestamp: earlierMinute, W: 1 })).status, 200);
  await s1.app.stop();

  // After a restart the totals come back from what recovery loaded.
  const s2 = await startServer(t, { dataDir: dir });
  assertOverflow(await s2.post({ timestamp: minute, Z: 1 }), 'minute', minute);
  assertOverflow(await s2.post({ timestamp: earlierMinute, W: 1 }), 'minute', earlierMinute);
  assert.deepEqual(await window(s2, 'minute', minute + 60), { total: MAX, top: { Y: MAX } });
  assert.deepEqual(await window(s2, 'minute', earlierMinute + 60), { total: MAX, top: { W: MAX } });
});
