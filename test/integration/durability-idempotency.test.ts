import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startServer, T0, tempDir, type TestServer } from '../helpers/server.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const lastMinute = Math.floor(T0 / 60) * 60 - 60;
const body = { timestamp: lastMinute + 1, A: 2, B: 3 };
const key = (k: string) => ({ 'idempotency-key': k });

async function minute(s: TestServer): Promise<Record<string, number>> {
  const reply = await s.get(`/api/stats?window=minute&at=${lastMinute + 60}`);
  return Object.fromEntries((reply.body.top as { domain: string; count: number }[]).map((e) => [e.domain, e.count]));
}

test('a retried Idempotency-Key gets the first answer and counts once, before and after restarts', async (t) => {
  const dir = await tempDir(t);
  const s1 = await startServer(t, { dataDir: dir });
  const first = await s1.post(body, key('k-1'));
  assert.deepEqual([first.status, first.body], [200, { accepted: 1, counters: 2 }]);
  const retry = await s1.post(body, key('k-1'));
  assert.deepEqual([retry.status, retry.body], [200, { accepted: 1, counters: 2 }]);

  // Two copies in flight at once: one is counted, both get its answer.
  const both = await Promise.all([1, 2].map(() => s1.post({ timestamp: lastMinute, C: 5 }, key('k-2'))));
  assert.deepEqual(both.map((r) => [r.status, r.body]), [
    [200, { accepted: 1, counters: 1 }],
    [200, { accepted: 1, counters: 1 }],
  ]);

  const reused = await s1.post({ ...body, A: 20 }, key('k-1'));
  assert.equal(reused.status, 422);
  assert.equal(reused.body.error.code, 'TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED');
  const tooLong = await s1.post(body, key('x'.repeat(256)));
  assert.equal(tooLong.status, 400);
  assert.equal(tooLong.body.error.code, 'TOPTALLY_ERR_INVALID_IDEMPOTENCY_KEY');

  // An answer that counted nothing is not kept: the corrected retry is counted.
  const invalid = await s1.post({ timestamp: 'soon', D: 1 }, key('k-3'));
  assert.equal(invalid.body.error.code, 'TOPTALLY_ERR_INVALID_COUNTER');
  assert.equal((await s1.post({ timestamp: lastMinute, D: 1 }, key('k-3'))).status, 200);
  assert.deepEqual(await minute(s1), { A: 2, B: 3, C: 5, D: 1 });
  await s1.app.stop();

  // Restart: the keys come back from the journal.
  const s2 = await startServer(t, { dataDir: dir });
  assert.deepEqual((await s2.post(body, key('k-1'))).body, { accepted: 1, counters: 2 });
  assert.equal((await s2.post({ ...body, A: 20 }, key('k-1'))).status, 422);
  assert.deepEqual(await minute(s2), { A: 2, B: 3, C: 5, D: 1 });
  s2.clock.advance(60_000);
  await s2.app.durability.checkpoint();
  await s2.app.stop();

  // Restart after a checkpoint dropped the journal: the keys come back from the checkpoint.
  assert.deepEqual(readdirSync(path.join(dir, 'journal')), []);
  const s3 = await startServer(t, { dataDir: dir }, T0 + 60);
  assert.equal(s3.app.durability.recovery!.keys, 3);
  assert.deepEqual((await s3.post(body, key('k-1'))).body, { accepted: 1, counters: 2 });
  assert.deepEqual(await minute(s3), { A: 2, B: 3, C: 5, D: 1 });

  // Ten minutes after the first answer the key is forgotten: the same request counts again.
  s3.clock.set((T0 + 600) * 1000);
  assert.equal((await s3.post(body, key('k-1'))).status, 200);
  assert.deepEqual(await minute(s3), { A: 4, B: 6, C: 5, D: 1 });
});

test('a WebSocket events message takes a "key" the same way, in JSON or MessagePack, across a restart too', async (t) => {
  const dir = await tempDir(t);
  const events = [{ timestamp: lastMinute, E: 4 }, { timestamp: lastMinute + 2, E: 1, F: 2 }];
  const s1 = await startServer(t, { dataDir: dir });
  const ws1 = await TestSocket.open(t, s1.url);
  ws1.send({ type: 'events', id: 1, events, key: 'ws-1' });
  assert.deepEqual(await ws1.body(), { type: 'ack', id: 1, accepted: 2, counters: 3 });
  ws1.send({ type: 'events', id: 2, events, key: 'ws-1' }, true);
  assert.deepEqual(await ws1.body(), { type: 'ack', id: 2, accepted: 2, counters: 3 });
  ws1.send({ type: 'events', id: 3, events: [events[0]], key: 'ws-1' }, true);
  assert.equal((await ws1.body()).error.code, 'TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED');
  ws1.send({ type: 'events', id: 4, events, key: 7 });
  assert.deepEqual((await ws1.body()).error, { code: 'TOPTALLY_ERR_INVALID_MESSAGE', message: '"key" must be a string', field: 'key' });
  await s1.app.stop();

  const s2 = await startServer(t, { dataDir: dir });
  const ws2 = await TestSocket.open(t, s2.url);
  ws2.send({ type: 'events', id: 5, events, key: 'ws-1' });
  assert.deepEqual(await ws2.body(), { type: 'ack', id: 5, accepted: 2, counters: 3 });
  assert.deepEqual(await minute(s2), { E: 5, F: 2 });
});

test('disk use follows the retention: checkpoints drop the journal, and windows that left the retention', async (t) => {
  const dir = await tempDir(t);
  const s = await startServer(t, { dataDir: dir });
  const hour = Math.floor(T0 / 3600) * 3600;
  const counters = [0, 1, 2, 3].flatMap((h) => [0, 1].map((m) => ({ timestamp: hour - h * 3600 - m * 60 - 1, A: 1 })));
  assert.equal((await s.post(counters)).status, 200);
  s.clock.advance(60_000);
  await s.app.durability.checkpoint();

  const checkpoints = path.join(dir, 'checkpoints');
  const [first] = readdirSync(checkpoints);
  const windowFiles = readdirSync(path.join(checkpoints, first)).filter((f) => f.endsWith('.win'));
  // Four hours, but only the minutes of the last two hours (the minute retention) are kept.
  assert.deepEqual(windowFiles.sort(), [
    ...[1, 2, 3, 4].map((h) => `hour-${hour / 3600 - h}.win`),
    ...[1, 2, 61, 62].map((m) => `minute-${hour / 60 - m}.win`),
  ].sort());
  assert.deepEqual(readdirSync(path.join(dir, 'journal')), []);

  // A day later every window has left the retention: the next minute's checkpoint keeps none.
  s.clock.advance(25 * 3600_000);
  await s.app.durability.checkpoint();
  const [last] = readdirSync(checkpoints);
  assert.notEqual(last, first);
  assert.deepEqual(readdirSync(checkpoints), [last]);
  assert.deepEqual(readdirSync(path.join(checkpoints, last)), ['keys.idem']);
  const old = await s.get(`/api/stats?window=hour&at=${hour}`);
  assert.equal(old.body.error.code, 'TOPTALLY_ERR_OUT_OF_RETENTION');
});
