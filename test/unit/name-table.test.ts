import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashDomain } from '../../src/routing/hash.ts';
import { NameTable } from '../../workers/name-table.ts';
import { mulberry32 } from '../helpers/random.ts';

const bytesOf = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const idOf = (table: NameTable, s: string) => {
  const b = bytesOf(s);
  return table.idOf(hashDomain(s), b, 0, b.length);
};

test('a name gets one id, found again by hash and bytes, and reads back as the same string', () => {
  const table = new NameTable();
  const names = ['a', 'b', 'é.fr', '😀.io', '__proto__', 'x'.repeat(255)];
  const ids = names.map((n) => idOf(table, n));
  assert.equal(new Set(ids).size, names.length);
  assert.deepEqual(names.map((n) => idOf(table, n)), ids);
  assert.deepEqual(ids.map((id) => table.name(id)), names);
  assert.equal(table.size, names.length);
});

test('names compare in JavaScript string (UTF-16 code-unit) order, also where UTF-8 order differs', () => {
  const table = new NameTable();
  // U+FF21 (lead byte EF) sorts after U+1F600 (lead byte F0) in code points but before in code units.
  const names = ['Ａ', '😀', 'a', 'B', 'ab', '', 'é', '\ue000', '𝄞', 'a\uffff', 'a😀'].filter((s) => s !== '');
  const sorted = [...names].sort();
  const ids = new Map(names.map((n) => [n, idOf(table, n)]));
  const byTable = [...names].sort((x, y) => table.compare(ids.get(x)!, ids.get(y)!));
  assert.deepEqual(byTable, sorted);
});

test('ids are freed with their last reference, and random inserts and releases keep every lookup right', () => {
  const rand = mulberry32(11);
  const table = new NameTable();
  const live = new Map<string, { id: number; refs: number }>();
  for (let step = 0; step < 60_000; step++) {
    const name = `n${Math.floor(rand() * 5000)}.example`;
    const entry = live.get(name);
    if (rand() < 0.55 || !entry) {
      const id = idOf(table, name);
      if (entry) assert.equal(id, entry.id, name);
      table.retain(id);
      live.set(name, { id, refs: (entry?.refs ?? 0) + 1 });
    } else {
      table.release(entry.id);
      if (--entry.refs === 0) live.delete(name);
    }
  }
  assert.equal(table.size, live.size);
  for (const [name, { id }] of live) {
    assert.equal(table.name(id), name);
    assert.equal(idOf(table, name), id);
  }
});
