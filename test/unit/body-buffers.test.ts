import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyBuffers } from '../../src/frontend/body-buffers.ts';

test('bodies of a few KiB share reused buffers, never two at once; others are not pooled', () => {
  const buffers = new BodyBuffers();
  assert.equal(buffers.take(100), undefined, 'small bodies come from Node’s pool');
  assert.equal(buffers.take(65 * 1024), undefined, 'large bodies get a buffer of their own');
  const a = buffers.take(10_000)!;
  const b = buffers.take(20_000)!;
  assert.deepEqual([a.length, b.length], [10_000, 20_000]);
  assert.notEqual(a.buffer, b.buffer, 'bodies in flight at once never share memory');
  buffers.give(a);
  const c = buffers.take(5_000)!;
  assert.equal(c.buffer, a.buffer, 'a given-back buffer is used again');
  assert.equal(c.length, 5_000);
});
