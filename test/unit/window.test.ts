import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lastRound, minuteToHour, openWindow, span, windowIndex } from '../../src/window.ts';

test('the last round minute at 54:30 is 53:00-54:00', () => {
  const at = Date.UTC(2020, 11, 16, 7, 54, 30) / 1000;
  const w = lastRound('minute', at);
  assert.equal(w.from, Date.UTC(2020, 11, 16, 7, 53) / 1000);
  assert.equal(w.to, Date.UTC(2020, 11, 16, 7, 54) / 1000);
});

test('minute edges: second 59 belongs to its minute, second 0 starts the next', () => {
  const m = Date.UTC(2020, 11, 16, 7, 53) / 1000;
  assert.equal(windowIndex('minute', m + 59), windowIndex('minute', m));
  assert.equal(windowIndex('minute', m + 60), windowIndex('minute', m) + 1);
  assert.equal(lastRound('minute', m + 59).from, m - 60);
  assert.equal(lastRound('minute', m + 60).from, m, 'at exactly 54:00 the minute 53 is complete');
});

test('hour and day boundaries, in UTC', () => {
  const midnight = Date.UTC(2021, 0, 1) / 1000;
  assert.deepEqual([lastRound('hour', midnight).from, lastRound('hour', midnight).to], [midnight - 3600, midnight]);
  assert.deepEqual([lastRound('minute', midnight).from, lastRound('minute', midnight).to], [midnight - 60, midnight]);
  assert.equal(lastRound('hour', midnight - 1).from, midnight - 7200);
  assert.equal(openWindow('hour', midnight + 3599).from, midnight);
  assert.equal(minuteToHour(windowIndex('minute', midnight - 1)), windowIndex('hour', midnight - 1));
  assert.equal(minuteToHour(windowIndex('minute', midnight)), windowIndex('hour', midnight));
});

test('a span covers [index*size, index*size + size)', () => {
  assert.deepEqual(span('hour', 2), { kind: 'hour', index: 2, from: 7200, to: 10800 });
  assert.deepEqual(span('minute', 0), { kind: 'minute', index: 0, from: 0, to: 60 });
});
