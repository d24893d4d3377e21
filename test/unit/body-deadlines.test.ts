// The one sweep that ends bodies read too slowly: at the deadline or after it, never before, by the
// pace when the deadline is off, and never a read that was forgotten.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyDeadlines, PACE_MS, type BodyRead } from '../../src/frontend/body-deadlines.ts';

function read(startedAt: number, pacedAt = startedAt): BodyRead & { ended: Promise<boolean> } {
  let expire!: (paced: boolean) => void;
  const ended = new Promise<boolean>((resolve) => (expire = resolve));
  return { startedAt, pacedAt, expire, ended };
}

test('a body read is ended by the deadline, not before it, and a forgotten one is never ended', async () => {
  const deadlines = new BodyDeadlines(100);
  const started = performance.now();
  const slow = read(started);
  const done = read(started);
  let doneEnded = false;
  void done.ended.then(() => (doneEnded = true));
  deadlines.watch(slow);
  deadlines.watch(done);
  deadlines.forget(done);
  assert.equal(await slow.ended, false, 'the deadline, not the pace');
  assert.ok(performance.now() - started >= 100, 'never before the deadline');
  assert.equal(doneEnded, false);
});

test('without a deadline, a body that has not reached the next 16 KiB within the pace is ended by the pace', async () => {
  const deadlines = new BodyDeadlines(0);
  const now = performance.now();
  const trickling = read(now, now - PACE_MS);
  deadlines.watch(trickling);
  assert.equal(await trickling.ended, true);
});
