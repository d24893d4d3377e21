// The journal on a bad day: writes that fail, a journal directory that is replaced, segments deleted
// under the running server. Each failure is real (a file size limit, a path that is no longer a
// directory, an unlinked file), none is simulated inside the journal.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { spawnToptally, type Child } from '../helpers/child.ts';
import { request, startServer, T0, tempDir, type Reply, type TestServer } from '../helpers/server.ts';
import { within } from '../helpers/within.ts';

const lastMinute = Math.floor(T0 / 60) * 60 - 60;

async function minute(s: TestServer): Promise<Record<string, number>> {
  const reply = await s.get(`/api/stats?window=minute&limit=1000&at=${lastMinute + 60}`);
  assert.equal(reply.status, 200);
  return Object.fromEntries((reply.body.top as { domain: string; count: number }[]).map((e) => [e.domain, e.count]));
}

function assertRefused(reply: Reply, reason: RegExp): void {
  assert.equal(reply.status, 503);
  assert.equal(reply.body.error.code, 'TOPTALLY_ERR_JOURNAL_FAILED');
  assert.equal(reply.headers['retry-after'], '1');
  assert.match(reply.body.error.message, reason);
}

function logged(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n').map((l) => JSON.parse(l))));
  return { log: createLogger('info', stream), lines };
}

test('a journal directory replaced by a file: 503 with Retry-After, /readyz says why, and ingest resumes by itself once it is back', async (t) => {
  const dir = await tempDir(t);
  const { log, lines } = logged();
  const s1 = await startServer(t, { dataDir: dir }, T0, { log });
  assert.equal((await s1.post({ timestamp: lastMinute, a: 1 })).status, 200);

  // Nothing the journal opens or checks under data/journal exists any more; for root too.
  const journalDir = path.join(dir, 'journal');
  renameSync(journalDir, `${journalDir}.moved`);
  writeFileSync(journalDir, 'not a directory');

  assertRefused(await s1.post({ timestamp: lastMinute, b: 2 }), /deleted or replaced|ENOTDIR|EEXIST/);
  assertRefused(await s1.post({ timestamp: lastMinute, c: 3 }), /./);
  const ready = await s1.get('/readyz');
  assert.equal(ready.status, 503);
  assert.equal(ready.body.ready, false);
  assert.match(ready.body.checks.journal, /deleted or replaced/);
  assert.ok(lines.some((l) => l.level === 50 && /journal segment deleted or replaced/.test(String(l.msg))));

  rmSync(journalDir);
  await within(10_000, 'journal repair', s1.app.durability.whenWritable());
  assert.equal((await s1.get('/readyz')).body.checks.journal, 'ok');
  assert.equal((await s1.post({ timestamp: lastMinute, d: 4 })).status, 200);
  assert.deepEqual(await minute(s1), { a: 1, d: 4 });
  await s1.app.stop();

  // What was acknowledged before the failure is in the checkpoint the repair wrote, what came after
  // it in the new segment; the refused requests are nowhere.
  const s2 = await startServer(t, { dataDir: dir });
  assert.deepEqual(await minute(s2), { a: 1, d: 4 });
});

test('journal segments deleted under the running server are noticed and logged, and what is in memory is checkpointed before more is acknowledged', async (t) => {
  const dir = await tempDir(t);
  const { log, lines } = logged();
  const s1 = await startServer(t, { dataDir: dir }, T0, { log });
  assert.equal((await s1.post({ timestamp: lastMinute, a: 1 })).status, 200);
  const journalDir = path.join(dir, 'journal');
  for (const name of readdirSync(journalDir)) unlinkSync(path.join(journalDir, name));

  const expected: Record<string, number> = { a: 1 };
  // The request that finds the segment gone is refused (its record went to the deleted file); one
  // that comes after the repair is counted. Which of the two the first is depends on the watch timer.
  const first = await s1.post({ timestamp: lastMinute, b: 2 });
  if (first.status === 200) expected.b = 2;
  else assertRefused(first, /deleted or replaced/);
  await within(10_000, 'journal repair', s1.app.durability.whenWritable());
  for (let i = 0; i < 10; i++) {
    assert.equal((await s1.post({ timestamp: lastMinute, [`c${i}`]: i + 1 })).status, 200);
    expected[`c${i}`] = i + 1;
  }
  assert.ok(lines.some((l) => l.level === 50 && /journal segment deleted or replaced/.test(String(l.msg))));
  assert.ok(readdirSync(path.join(dir, 'checkpoints')).length > 0, 'a checkpoint holds what was only in memory');
  await s1.app.stop();

  const s2 = await startServer(t, { dataDir: dir });
  assert.deepEqual(await minute(s2), expected);
});

test('writes that fail past a file size limit (EFBIG) are refused with 503 and Retry-After, ingest resumes by itself, and after kill -9 every acknowledged counter is there exactly once', async (t) => {
  const dir = await tempDir(t);
  // 32 blocks: a segment takes a hundred or two of these records before its write fails.
  let child: Child = await spawnToptally(t, ['--data-dir', dir], { fileSizeBlocks: 32 });
  const ts = Math.floor(Date.now() / 1000) - 120;
  const post = (body: unknown): Promise<Reply> =>
    request(`${child.url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  let acked = 0;
  let refused = 0;
  let ackedAfterRefusal = 0;
  for (let i = 0; i < 5000 && ackedAfterRefusal < 30; i++) {
    const reply = await post({ timestamp: ts, 'a.example': 1, 'b.example': 2 });
    if (reply.status === 200) {
      acked++;
      if (refused > 0) ackedAfterRefusal++;
    } else {
      assertRefused(reply, /EFBIG|too large/i);
      refused++;
    }
  }
  assert.ok(refused > 0, 'some write failed');
  assert.equal(ackedAfterRefusal, 30, 'ingest came back by itself');

  child.process.kill('SIGKILL');
  await child.exited;
  child = await spawnToptally(t, ['--data-dir', dir]);
  const start = Math.floor(ts / 60) * 60;
  const stats = await request(`${child.url}/api/stats?window=minute&limit=10&at=${start + 60}`);
  assert.equal(stats.status, 200);
  const counts = Object.fromEntries((stats.body.top as { domain: string; count: number }[]).map((e) => [e.domain, e.count]));
  assert.deepEqual(counts, { 'b.example': 2 * acked, 'a.example': acked });
});

test('a segment whose unlink fails stays in the journal list and is dropped by the next checkpoint', async (t) => {
  const dir = await tempDir(t);
  const s1 = await startServer(t, { dataDir: dir });
  assert.equal((await s1.post({ timestamp: lastMinute, a: 1 })).status, 200);
  const journalDir = path.join(dir, 'journal');
  const [segment] = readdirSync(journalDir);
  const file = path.join(journalDir, segment);
  // A checkpoint cuts the journal (the segment is closed) but cannot unlink a directory, root or not.
  const checkpointing = s1.app.durability.checkpoint();
  renameSync(file, `${file}.aside`);
  mkdirSync(file);
  await assert.rejects(checkpointing, { code: 'EISDIR' });
  rmSync(file, { recursive: true });
  renameSync(`${file}.aside`, file);

  assert.equal((await s1.post({ timestamp: lastMinute, b: 2 })).status, 200);
  await s1.app.durability.checkpoint();
  assert.deepEqual(readdirSync(journalDir).filter((name) => name === segment), [], 'the first segment is gone');
  assert.ok(statSync(journalDir).isDirectory());
  await s1.app.stop();
  const s2 = await startServer(t, { dataDir: dir });
  assert.deepEqual(await minute(s2), { a: 1, b: 2 });
});

test('the checkpoint-by-size budget counts from the last checkpoint, not from the cut a shard rebuild takes', async (t) => {
  // One record's size in the journal, from a server of its own.
  const probeDir = await tempDir(t);
  const probe = await startServer(t, { dataDir: probeDir });
  assert.equal((await probe.post({ timestamp: lastMinute, d0: 1 })).status, 200);
  await probe.app.stop();
  const [probeSegment] = readdirSync(path.join(probeDir, 'journal'));
  const recordBytes = statSync(path.join(probeDir, 'journal', probeSegment)).size;

  const dir = await tempDir(t);
  const s = await startServer(t, { dataDir: dir }, T0, { checkpointEvery: { bytes: Math.round(4.5 * recordBytes), records: 1_000_000 } });
  for (let i = 1; i <= 3; i++) assert.equal((await s.post({ timestamp: lastMinute, [`d${i}`]: 1 })).status, 200);
  const restarted = once(s.app.pool, 'restarted');
  await s.app.pool.shards[0].terminate();
  assert.deepEqual(await within(20_000, 'shard restart', restarted), [0, true]);
  for (let i = 4; i <= 6; i++) assert.equal((await s.post({ timestamp: lastMinute, [`d${i}`]: 1 })).status, 200);
  await s.app.stop(); // waits for a checkpoint under way
  assert.equal(readdirSync(path.join(dir, 'checkpoints')).length, 1, 'five records written when the sixth came passed the budget of four and a half');
});

test('a checkpoint also runs once enough records were journaled since the last one, however small they are', async (t) => {
  const dir = await tempDir(t);
  const s = await startServer(t, { dataDir: dir }, T0, { checkpointEvery: { bytes: 2 ** 40, records: 5 } });
  for (let i = 1; i <= 5; i++) assert.equal((await s.post({ timestamp: lastMinute, [`d${i}`]: 1 })).status, 200);
  assert.deepEqual(readdirSync(path.join(dir, 'checkpoints')), [], 'five records are not past the budget yet');
  assert.equal((await s.post({ timestamp: lastMinute, d6: 1 })).status, 200);
  await s.app.stop(); // waits for a checkpoint under way
  assert.equal(readdirSync(path.join(dir, 'checkpoints')).length, 1);
  const s2 = await startServer(t, { dataDir: dir });
  assert.equal(s2.app.durability.recovery!.checkpoint, 5, 'the checkpoint covers the first five; the sixth is replayed');
  assert.equal(s2.app.durability.recovery!.records, 1);
  assert.deepEqual(await minute(s2), { d1: 1, d2: 1, d3: 1, d4: 1, d5: 1, d6: 1 });
});
