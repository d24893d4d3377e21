import assert from 'node:assert/strict';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { decodePayload } from '../../src/durability/records.ts';
import { FRAME_HEADER_BYTES, scanFrames } from '../../src/durability/frame.ts';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';
import { startServer, T0, tempDir, type TestServer } from '../helpers/server.ts';

const lastMinute = Math.floor(T0 / 60) * 60 - 60;
const SEGMENT = path.join('journal', '0000000000000001.log');

/** Five requests, each its own journal record (d<i> gets i + 1, "shared" 10 each time), then a stop. */
async function fiveRecords(t: TestContext) {
  const dir = await tempDir(t);
  const s = await startServer(t, { dataDir: dir });
  for (let i = 0; i < 5; i++) {
    const reply = await s.post({ timestamp: lastMinute + i, [`d${i}`]: i + 1, shared: 10 });
    assert.equal(reply.status, 200);
  }
  await s.app.stop();
  const file = path.join(dir, SEGMENT);
  const data = readFileSync(file);
  const frames = scanFrames(data).frames;
  assert.equal(frames.length, 5);
  return { dir, file, data, frames };
}

async function minute(s: TestServer, start = lastMinute): Promise<Record<string, number>> {
  const reply = await s.get(`/api/stats?window=minute&limit=1000&at=${start + 60}`);
  assert.equal(reply.status, 200);
  return Object.fromEntries((reply.body.top as { domain: string; count: number }[]).map((e) => [e.domain, e.count]));
}

test('a record torn at the end of the journal is discarded, start-up goes on, and the journal stays usable', async (t) => {
  const { dir, file, data, frames } = await fiveRecords(t);
  truncateSync(file, data.length - 3);

  const s2 = await startServer(t, { dataDir: dir });
  assert.deepEqual(s2.app.durability.recovery!.tornTail, {
    file: SEGMENT,
    offset: frames[4].offset,
    bytes: data.length - 3 - frames[4].offset,
    reason: 'truncated frame',
  });
  assert.deepEqual(await minute(s2), { shared: 40, d0: 1, d1: 2, d2: 3, d3: 4 });
  assert.equal(readFileSync(file).length, frames[4].offset);

  assert.equal((await s2.post({ timestamp: lastMinute, d5: 6 })).status, 200);
  await s2.app.stop();
  const s3 = await startServer(t, { dataDir: dir });
  assert.equal(s3.app.durability.recovery!.tornTail, null);
  assert.deepEqual(await minute(s3), { shared: 40, d0: 1, d1: 2, d2: 3, d3: 4, d5: 6 });
});

test('a flipped byte in the last record, whole on disk, refuses start-up naming file and offset; --repair drops that record only', async (t) => {
  const { dir, file, data, frames } = await fiveRecords(t);
  data[frames[4].offset + FRAME_HEADER_BYTES + 5] ^= 0xff;
  writeFileSync(file, data);

  await assert.rejects(startServer(t, { dataDir: dir }), (err: Error & { code: string; details: object }) => {
    assert.equal(err.code, 'TOPTALLY_ERR_DATA_CORRUPT');
    assert.deepEqual(err.details, { file: SEGMENT, offset: frames[4].offset });
    assert.match(err.message, /at offset \d+: checksum mismatch\. Start with --repair/);
    return true;
  });
  assert.equal(readFileSync(file).length, data.length, 'a refused start-up cuts nothing off');

  const s2 = await startServer(t, { dataDir: dir, repair: true });
  assert.equal(s2.app.durability.recovery!.tornTail, null);
  assert.deepEqual(s2.app.durability.recovery!.dropped, [
    { file: SEGMENT, offset: frames[4].offset, bytes: frames[4].payload.length + FRAME_HEADER_BYTES, reason: 'checksum mismatch' },
  ]);
  assert.deepEqual(await minute(s2), { shared: 40, d0: 1, d1: 2, d2: 3, d3: 4 });
});

test('a flipped byte mid-journal refuses start-up naming file and offset; --repair keeps the rest', async (t) => {
  const { dir, file, data, frames } = await fiveRecords(t);
  data[frames[2].offset + FRAME_HEADER_BYTES + 5] ^= 0xff;
  writeFileSync(file, data);

  await assert.rejects(startServer(t, { dataDir: dir }), (err: Error & { code: string; details: object }) => {
    assert.equal(err.code, 'TOPTALLY_ERR_DATA_CORRUPT');
    assert.deepEqual(err.details, { file: SEGMENT, offset: frames[2].offset });
    assert.equal(
      err.message,
      `${file} at offset ${frames[2].offset}: checksum mismatch. Start with --repair to keep what is intact and drop the damaged part.`,
    );
    return true;
  });

  const s2 = await startServer(t, { dataDir: dir, repair: true });
  assert.deepEqual(s2.app.durability.recovery!.dropped, [
    { file: SEGMENT, offset: frames[2].offset, bytes: frames[2].payload.length + FRAME_HEADER_BYTES, reason: 'checksum mismatch' },
    { file: SEGMENT, offset: frames[3].offset, bytes: 0, reason: 'records 3 to 3 are missing before this one' },
  ]);
  assert.deepEqual(await minute(s2), { shared: 40, d0: 1, d1: 2, d3: 4, d4: 5 });
  await s2.app.stop();

  // The repair wrote what it kept into a checkpoint and left the damaged segment behind.
  assert.deepEqual(readdirSync(path.join(dir, 'journal')), []);
  const s3 = await startServer(t, { dataDir: dir });
  assert.deepEqual(s3.app.durability.recovery!.dropped, []);
  assert.deepEqual(await minute(s3), { shared: 40, d0: 1, d1: 2, d3: 4, d4: 5 });
});

test('a flipped byte in a checkpoint file refuses start-up; --repair loses that shard part of that window only', async (t) => {
  const dir = await tempDir(t);
  const s1 = await startServer(t, { dataDir: dir });
  // The last minute of the previous hour, so that the hour is closed and can be read too.
  const hourEnd = Math.floor(T0 / 3600) * 3600;
  const counter: Record<string, number> = { timestamp: hourEnd - 60 };
  for (let i = 0; i < 20; i++) counter[`domain-${i}`] = i + 1;
  assert.equal((await s1.post(counter)).status, 200);
  s1.clock.advance(60_000);
  await s1.app.durability.checkpoint();
  await s1.app.stop();

  const [checkpoint] = readdirSync(path.join(dir, 'checkpoints'));
  const name = path.join('checkpoints', checkpoint, `minute-${hourEnd / 60 - 1}.win`);
  const file = path.join(dir, name);
  const data = readFileSync(file);
  const frames = scanFrames(data).frames;
  assert.equal(frames.length, 2, 'one frame per shard');
  const kept = decodePayload(frames[0].payload);
  assert.equal(kept.type, 'window');
  data[frames[1].offset + frames[1].payload.length] ^= 0x01;
  writeFileSync(file, data);

  await assert.rejects(startServer(t, { dataDir: dir }, T0 + 60), {
    code: 'TOPTALLY_ERR_DATA_CORRUPT',
    details: { file: name, offset: frames[1].offset },
  });
  const s2 = await startServer(t, { dataDir: dir, repair: true }, T0 + 60);
  assert.deepEqual(s2.app.durability.recovery!.dropped, [
    { file: name, offset: frames[1].offset, bytes: data.length - frames[1].offset, reason: 'checksum mismatch' },
  ]);
  const keptShard = kept.type === 'window' ? kept.shard : -1;
  const all = Object.fromEntries(Object.entries(counter).filter(([domain]) => domain !== 'timestamp'));
  const expected = Object.fromEntries(Object.entries(all).filter(([domain]) => shardOf(hashDomain(domain), 2) === keptShard));
  assert.ok(Object.keys(expected).length > 0 && Object.keys(expected).length < 20);
  assert.deepEqual(await minute(s2, hourEnd - 60), expected);
  const hour = await s2.get(`/api/stats?window=hour&limit=1000&at=${hourEnd}`);
  assert.equal(hour.body.total, 210, 'the hour has its own, intact file');
  await s2.app.stop();

  const s3 = await startServer(t, { dataDir: dir }, T0 + 60);
  assert.deepEqual(await minute(s3, hourEnd - 60), expected);
  assert.equal((await s3.get(`/api/stats?window=hour&limit=1000&at=${hourEnd}`)).body.total, 210);
});
