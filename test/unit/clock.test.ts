import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { WindowTicker } from '../../src/push/window-ticker.ts';

test('a manual clock fires due timers in time order, and not before', () => {
  const clock = new ManualClock(1000);
  const fired: string[] = [];
  clock.at(3000, () => fired.push('b'));
  clock.at(2000, () => fired.push('a'));
  const cancelled = clock.at(2500, () => fired.push('never'));
  cancelled.cancel();
  clock.advance(999);
  assert.deepEqual(fired, []);
  clock.set(5000);
  assert.deepEqual(fired, ['a', 'b']);
  assert.throws(() => clock.set(4000), /cannot go back/);
});

test('the window ticker reports each minute that closes, once per crossing', () => {
  const clock = new ManualClock(60_000 * 100 + 30_000);
  const ticker = new WindowTicker(clock, 'minute');
  const closed: number[] = [];
  ticker.on('close', (index) => closed.push(index));
  clock.set(60_000 * 101 - 1);
  assert.deepEqual(closed, []);
  clock.set(60_000 * 101);
  clock.set(60_000 * 101 + 59_000);
  clock.set(60_000 * 105 + 10);
  assert.deepEqual(closed, [100, 104]);
  ticker.stop();
  clock.set(60_000 * 110);
  assert.deepEqual(closed, [100, 104]);
});
