import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashDomain, shardOf } from '../../src/routing/hash.ts';

/** FNV-1a over the bytes of Buffer.from(s): what hashDomain must equal. */
function fnv1aBytes(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(s, 'utf8')) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

test('the hash is FNV-1a of the UTF-8 bytes, for ASCII, 2-, 3- and 4-byte characters', () => {
  assert.equal(hashDomain(''), 0x811c9dc5);
  assert.equal(hashDomain('a'), 0xe40c292c, 'the published FNV-1a test vector');
  assert.equal(hashDomain('foobar'), 0xbf9cf968, 'the published FNV-1a test vector');
  for (const s of ['example.com', 'é.fr', 'ü', '中文.cn', '😀.io', 'a😀b€c', '\u07ff\u0800\uffff']) {
    assert.equal(hashDomain(s), fnv1aBytes(s), s);
  }
});

test('a lone surrogate has no UTF-8 form and hashes to -1', () => {
  for (const s of ['\ud800', 'a\udc00', '\ud83d', '\ud83dx']) assert.equal(hashDomain(s), -1, JSON.stringify(s));
});

test('domains spread evenly over shards', () => {
  for (const shards of [2, 3, 4, 8]) {
    const counts = new Array(shards).fill(0);
    const n = 40_000;
    for (let i = 0; i < n; i++) counts[shardOf(hashDomain(`d${i}.example.com`), shards)]++;
    for (const c of counts) assert.ok(Math.abs(c - n / shards) < (n / shards) * 0.05, `${shards} shards: ${counts}`);
  }
});
