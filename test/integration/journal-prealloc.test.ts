// The zeros a journal segment keeps ahead of its records (src/durability/journal.ts), as start-up
// recovery sees them after an unclean stop.

import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FRAME_HEADER_BYTES, scanFrames } from '../../src/durability/frame.ts';
import { startServer, T0, tempDir, type TestServer } from '../helpers/server.ts';

const lastMinute = Math.floor(T0 / 60) * 60 - 60;
const SEGMENT = path.join('journal', '0000000000000001.log');

/** The minute's total, its domains, and its top three. */
async function minute(s: TestServer): Promise<{ total: number; domains: number; top: Record<string, number> }> {
  const reply = await s.get(`/api/stats?window=minute&limit=3&at=${lastMinute + 60}`);
  assert.equal(reply.status, 200);
  const { total, domains, top } = reply.body as { total: number; domains: number; top: { domain: string; count: number }[] };
  return { total, domains, top: Object.fromEntries(top.map((e) => [e.domain, e.count])) };
}

function dataEnd(data: Buffer): number {
  const last = scanFrames(data).frames.at(-1)!;
  return last.offset + FRAME_HEADER_BYTES + last.payload.length;
}

/** The journal and checkpoints of a running server, as a crash would leave them (its page cache is the disk here). */
async function copyWhileRunning(t: Parameters<typeof tempDir>[0], from: string): Promise<string> {
  const to = await tempDir(t);
  for (const sub of ['journal', 'checkpoints']) cpSync(path.join(from, sub), path.join(to, sub), { recursive: true });
  return to;
}

/**
 * A running server whose segment holds three records and zeros after them: the second record is
 * large enough to reach the zeros the first one started writing ahead, so its write waited for them.
 */
async function runningWithZeros(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  const s = await startServer(t, { dataDir: dir });
  assert.equal((await s.post({ timestamp: lastMinute, first: 1 })).status, 200);
  // Few domains with long names: the record's size is what matters here, not its domain count.
  const name = (i: number): string => `d${String(i).padStart(4, '0')}.${'x'.repeat(200)}.example`;
  const large: Record<string, number> = { timestamp: lastMinute };
  for (let i = 0; i < 1000; i++) large[name(i)] = 2;
  assert.equal((await s.post(large)).status, 200);
  assert.equal((await s.post({ timestamp: lastMinute, last: 3 })).status, 200);
  const expected = { total: 1 + 2000 + 3, domains: 1002, top: { last: 3, [name(0)]: 2, [name(1)]: 2 } };
  return { dir, s, expected };
}

test('a restart after an unclean stop recovers every record and cuts the zeros ahead of them off without reporting a torn tail', async (t) => {
  const { dir, expected } = await runningWithZeros(t);
  const copy = await copyWhileRunning(t, dir);
  const file = path.join(copy, SEGMENT);
  const data = readFileSync(file);
  const end = dataEnd(data);
  assert.equal(scanFrames(data).frames.length, 3);
  assert.ok(data.length > end && data.subarray(end).every((byte) => byte === 0), `${data.length} bytes for ${end} of records, then zeros`);

  const s2 = await startServer(t, { dataDir: copy });
  const recovery = s2.app.durability.recovery!;
  assert.equal(recovery.tornTail, null);
  assert.deepEqual(recovery.dropped, []);
  assert.equal(recovery.records, 3);
  assert.equal(recovery.journalBytes, end, 'the zeros are not journal');
  assert.equal(readFileSync(file).length, end);
  assert.deepEqual(await minute(s2), expected);
});

test('a record cut short inside the zeros is still a torn tail: cut off and reported', async (t) => {
  const { dir, expected } = await runningWithZeros(t);
  const copy = await copyWhileRunning(t, dir);
  const file = path.join(copy, SEGMENT);
  const data = readFileSync(file);
  const end = dataEnd(data);
  const { frames } = scanFrames(data);
  // The first 40 bytes of a record's frame, then the zeros it was being written over.
  const torn = Buffer.concat([data.subarray(0, end), data.subarray(frames[2].offset, frames[2].offset + 40), Buffer.alloc(2 ** 20)]);
  writeFileSync(file, torn);

  const s2 = await startServer(t, { dataDir: copy });
  assert.deepEqual(s2.app.durability.recovery!.tornTail, { file: SEGMENT, offset: end, bytes: torn.length - end, reason: 'truncated frame' });
  assert.equal(s2.app.durability.recovery!.records, 3);
  assert.equal(readFileSync(file).length, end);
  assert.deepEqual(await minute(s2), expected);
});

test('zeros after the last record of a segment that is not the newest (a crash before it was cut back) are cut off too', async (t) => {
  const dir = await tempDir(t);
  const s = await startServer(t, { dataDir: dir });
  for (let i = 0; i < 5; i++) assert.equal((await s.post({ timestamp: lastMinute, [`d${i}`]: i + 1 })).status, 200);
  await s.app.stop();
  const journal = path.join(dir, 'journal');
  const data = readFileSync(path.join(journal, '0000000000000001.log'));
  const { frames } = scanFrames(data);
  assert.equal(frames.length, 5);
  // Records 1-3 in a segment that ends in zeros, 4-5 in the next one.
  writeFileSync(path.join(journal, '0000000000000001.log'), Buffer.concat([data.subarray(0, frames[3].offset), Buffer.alloc(2 ** 20)]));
  writeFileSync(path.join(journal, '0000000000000004.log'), data.subarray(frames[3].offset));

  const s2 = await startServer(t, { dataDir: dir });
  const recovery = s2.app.durability.recovery!;
  assert.deepEqual([recovery.tornTail, recovery.dropped, recovery.records, recovery.segments], [null, [], 5, 2]);
  assert.equal(readFileSync(path.join(journal, '0000000000000001.log')).length, frames[3].offset);
  assert.deepEqual(await minute(s2), { total: 15, domains: 5, top: { d4: 5, d3: 4, d2: 3 } });
  assert.deepEqual(readdirSync(journal).sort(), ['0000000000000001.log', '0000000000000004.log']);
});

test('a write lost by a power cut (a sector of zeros, later records whole) ends the newest segment there; in an older one it is damage', async (t) => {
  const { dir } = await runningWithZeros(t);
  const copy = await copyWhileRunning(t, dir);
  const file = path.join(copy, SEGMENT);
  const data = readFileSync(file);
  const { frames } = scanFrames(data);
  // The large second record lost a page of its middle; the third, written later, reached the disk.
  const page = Math.ceil((frames[1].offset + 8192) / 4096) * 4096;
  const lost = Buffer.from(data);
  lost.fill(0, page, page + 4096);
  writeFileSync(file, lost);
  const older = await tempDir(t);
  cpSync(copy, older, { recursive: true });

  const s2 = await startServer(t, { dataDir: copy });
  const recovery = s2.app.durability.recovery!;
  assert.equal(recovery.tornTail?.offset, frames[1].offset);
  assert.equal(recovery.tornTail?.bytes, lost.length - frames[1].offset);
  assert.match(recovery.tornTail!.reason, /a write lost by a power cut/);
  assert.deepEqual([recovery.records, recovery.dropped], [1, []]);
  assert.equal(readFileSync(file).length, frames[1].offset);
  assert.deepEqual(await minute(s2), { total: 1, domains: 1, top: { first: 1 } });

  // Record 3 in a segment of its own: the journal went on past the lost write, so no power cut explains it.
  writeFileSync(path.join(older, 'journal', '0000000000000004.log'), data.subarray(frames[2].offset, frames[2].offset + FRAME_HEADER_BYTES + frames[2].payload.length));
  writeFileSync(path.join(older, SEGMENT), lost.subarray(0, frames[2].offset));
  await assert.rejects(startServer(t, { dataDir: older }), /0000000000000001.log at offset \d+: checksum mismatch/);
});
