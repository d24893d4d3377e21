import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { FRAME_HEADER_BYTES, frameOf, scanFrames } from '../../src/durability/frame.ts';
import { ByteWriter } from '../../src/durability/bytes.ts';
import { Journal } from '../../src/durability/journal.ts';
import type { TopTallyError } from '../../src/errors.ts';
import { tempDir } from '../helpers/server.ts';

const record = (lsn: number, into: ByteWriter): void => into.bytes(frameOf(Buffer.from(`record ${lsn}`)));

/** Appends a record that `apply` applies; resolves once it did, as Durability.commit's records do. */
function append(journal: Journal, apply: () => void): Promise<void> {
  return new Promise((resolve, reject) =>
    journal.append({
      encode: record,
      durable: () => {
        apply();
        resolve();
      },
      refused: reject,
    }),
  );
}

function journalIn(dir: string, mode: 'fsync' | 'interval' = 'fsync'): { journal: Journal; failures: TopTallyError[] } {
  const failures: TopTallyError[] = [];
  return { journal: new Journal(dir, mode, 0, [], ({ error }) => failures.push(error)), failures };
}

test('records appended in one event-loop turn share one write and one fsync, and each is on disk before it is applied', async (t) => {
  const dir = await tempDir(t);
  const { journal } = journalIn(dir);
  t.after(() => journal.close());
  const applied: number[] = [];
  const file = `${dir}/0000000000000001.log`;
  const appends = Array.from({ length: 50 }, (_, i) =>
    append(journal, () => {
      // The whole group is written before the first record of it is applied.
      assert.equal(scanFrames(readFileSync(file)).frames.length, 50);
      applied.push(i + 1);
    }),
  );
  await Promise.all(appends);
  assert.deepEqual(applied, Array.from({ length: 50 }, (_, i) => i + 1));
  assert.deepEqual(journal.stats, { records: 50, writes: 1, syncs: 1 });
  assert.equal(journal.appliedLsn, 50);
});

test('records that arrive during a write go out together in the next one', async (t) => {
  const dir = await tempDir(t);
  const { journal } = journalIn(dir);
  t.after(() => journal.close());
  const first = append(journal, () => {});
  await new Promise(setImmediate); // the first group has started writing
  const later = Array.from({ length: 20 }, () => append(journal, () => {}));
  await Promise.all([first, ...later]);
  assert.deepEqual(journal.stats, { records: 21, writes: 2, syncs: 2 });
});

test('a cut runs between groups, with the last applied LSN, and later records start a new segment', async (t) => {
  const dir = await tempDir(t);
  const { journal } = journalIn(dir);
  t.after(() => journal.close());
  const applied: number[] = [];
  const apply = (lsn: number) => () => applied.push(lsn);
  const before = [1, 2, 3].map((lsn) => append(journal, apply(lsn)));
  await new Promise(setImmediate); // records 1-3 are being written as one group
  let cutAt = -1;
  let appliedAtCut: number[] = [];
  const cut = journal.cut((lsn) => {
    cutAt = lsn;
    appliedAtCut = [...applied];
  });
  const after = [4, 5].map((lsn) => append(journal, apply(lsn)));
  await Promise.all([...before, cut, ...after]);
  assert.equal(cutAt, 3);
  assert.deepEqual(appliedAtCut, [1, 2, 3]);
  assert.deepEqual(readdirSync(dir).sort(), ['0000000000000001.log', '0000000000000004.log']);
  assert.deepEqual(journal.segments.map((s) => [s.firstLsn, s.lastLsn]), [
    [1, 3],
    [4, 5],
  ]);

  await journal.drop(3);
  assert.deepEqual(readdirSync(dir), ['0000000000000004.log']);
  await journal.drop(5); // the segment being written is never dropped
  assert.deepEqual(readdirSync(dir), ['0000000000000004.log']);
});

test('a journal that cannot write refuses the group and everything after it with TOPTALLY_ERR_JOURNAL_FAILED', async (t) => {
  const dir = await tempDir(t);
  rmSync(dir, { recursive: true });
  const { journal, failures } = journalIn(dir, 'interval');
  t.after(() => journal.close());
  let applied = 0;
  await assert.rejects(append(journal, () => void applied++), { code: 'TOPTALLY_ERR_JOURNAL_FAILED' });
  await assert.rejects(append(journal, () => void applied++), { code: 'TOPTALLY_ERR_JOURNAL_FAILED' });
  assert.equal(applied, 0);
  assert.equal(failures.length, 1);
  assert.match(failures[0].message, /ENOENT/);
});

/** Where the last whole frame of `data` ends. */
function dataEnd(data: Buffer): number {
  const last = scanFrames(data).frames.at(-1);
  return last ? last.offset + FRAME_HEADER_BYTES + last.payload.length : 0;
}

/** A record large enough to reach the zeros the segment's first records started writing ahead. */
const large = (_lsn: number, into: ByteWriter): void => into.bytes(frameOf(Buffer.alloc(512 * 1024, 7)));

function appendWith(journal: Journal, encode: (lsn: number, into: ByteWriter) => void): Promise<void> {
  return new Promise((resolve, reject) => journal.append({ encode, durable: () => resolve(), refused: reject }));
}

for (const mode of ['fsync', 'interval'] as const) {
  test(`${mode} mode: the segment being written holds zeros ahead of its records; one that ends is cut back to its last record`, async (t) => {
    const dir = await tempDir(t);
    const { journal } = journalIn(dir, mode);
    t.after(() => journal.close());
    const first = `${dir}/0000000000000001.log`;
    await append(journal, () => {});
    // Its write waits for the zeros' write, which began past the first record.
    await appendWith(journal, large);
    await append(journal, () => {});
    const live = readFileSync(first);
    assert.equal(scanFrames(live).frames.length, 3);
    const end = dataEnd(live);
    assert.ok(live.length > end, `${live.length} bytes for ${end} of records`);
    assert.ok(live.subarray(end).every((byte) => byte === 0), 'only zeros after the last record');

    // A cut ends the segment: it is cut back before the next one is created.
    await journal.cut(() => {});
    await append(journal, () => {});
    assert.deepEqual(readdirSync(dir).sort(), ['0000000000000001.log', '0000000000000004.log']);
    assert.equal(readFileSync(first).length, end);

    // So does closing the journal.
    await appendWith(journal, large);
    const second = `${dir}/0000000000000004.log`;
    assert.ok(readFileSync(second).length > dataEnd(readFileSync(second)));
    await journal.close();
    const closed = readFileSync(second);
    assert.equal(scanFrames(closed).frames.length, 2);
    assert.equal(closed.length, dataEnd(closed));
  });
}
