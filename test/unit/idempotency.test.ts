import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { checkKey, IDEMPOTENCY_TTL_MS, IdempotencyStore } from '../../src/durability/idempotency.ts';
import { Durability } from '../../src/durability/durability.ts';
import { TopTallyError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import type { StateBackend } from '../../src/backend/state-backend.ts';

/** Fingerprints are 32 hex digits (fingerprint.ts); these stand for three different requests. */
const [PRINT_A, PRINT_B, PRINT_C] = ['a', 'b', 'c'].map((digit) => digit.repeat(32));

const T = 1608102630_000;

/** An execute function that counts its calls and answers like a commit would. */
function committer(store: IdempotencyStore, clock: ManualClock, key: string, print: string) {
  let calls = 0;
  const execute = async () => {
    calls++;
    store.remember({ key, fingerprint: print, atMs: clock.now(), accepted: 1, counters: 3 });
    return { accepted: 1, counters: 3 };
  };
  return { execute, calls: () => calls };
}

test('a retry within ten minutes gets the first answer without running again; after them it runs again', async () => {
  const clock = new ManualClock(T);
  const store = new IdempotencyStore(clock);
  const print = PRINT_A;
  const c = committer(store, clock, 'k', print);
  assert.deepEqual(await store.once('k', print, c.execute), { accepted: 1, counters: 3 });
  clock.advance(IDEMPOTENCY_TTL_MS - 1);
  assert.deepEqual(await store.once('k', print, c.execute), { accepted: 1, counters: 3 });
  assert.equal(c.calls(), 1);
  clock.advance(1);
  await store.once('k', print, c.execute);
  assert.equal(c.calls(), 2);
});

test('a retry while the first is in flight waits for it and shares its answer', async () => {
  const clock = new ManualClock(T);
  const store = new IdempotencyStore(clock);
  const c = committer(store, clock, 'k', 'aa');
  const answers = await Promise.all([store.once('k', 'aa', c.execute), store.once('k', 'aa', c.execute)]);
  assert.deepEqual(answers, [
    { accepted: 1, counters: 3 },
    { accepted: 1, counters: 3 },
  ]);
  assert.equal(c.calls(), 1);
});

test('the same key for a different body is refused with TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED', async () => {
  const clock = new ManualClock(T);
  const store = new IdempotencyStore(clock);
  const c = committer(store, clock, 'k', PRINT_A);
  await store.once('k', PRINT_A, c.execute);
  await assert.rejects(store.once('k', PRINT_B, c.execute), { code: 'TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED', details: { key: 'k' } });
  await assert.rejects(store.once('k', PRINT_C, c.execute), { code: 'TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED' });
  assert.equal(c.calls(), 1);
});

test('a request that failed is not remembered: its retry runs', async () => {
  const clock = new ManualClock(T);
  const store = new IdempotencyStore(clock);
  await assert.rejects(store.once('k', 'aa', async () => Promise.reject(new Error('invalid'))), /invalid/);
  const c = committer(store, clock, 'k', 'aa');
  await store.once('k', 'aa', c.execute);
  assert.equal(c.calls(), 1);
});

test('expired answers are pruned and not handed to a checkpoint', () => {
  const clock = new ManualClock(T);
  const store = new IdempotencyStore(clock);
  store.remember({ key: 'old', fingerprint: 'aa', atMs: T - IDEMPOTENCY_TTL_MS, accepted: 1, counters: 1 });
  store.remember({ key: 'a', fingerprint: 'aa', atMs: T, accepted: 1, counters: 1 });
  clock.advance(60_000);
  store.remember({ key: 'b', fingerprint: 'aa', atMs: clock.now(), accepted: 1, counters: 1 });
  assert.deepEqual(store.answers().map((a) => a.key), ['a', 'b']);
  clock.advance(IDEMPOTENCY_TTL_MS - 60_000);
  assert.deepEqual(store.answers().map((a) => a.key), ['b']);
  assert.equal(store.size, 1);
});

test('keys are 1 to 255 printable ASCII characters', () => {
  assert.equal(checkKey('8e03978e-40d5-43e8-bc93-6894a57f9324'), '8e03978e-40d5-43e8-bc93-6894a57f9324');
  assert.equal(checkKey('x'.repeat(255)), 'x'.repeat(255));
  for (const bad of ['', 'x'.repeat(256), 'tab\there', 'é', 42]) {
    assert.throws(() => checkKey(bad), { code: 'TOPTALLY_ERR_INVALID_IDEMPOTENCY_KEY' }, JSON.stringify(bad));
  }
});

test('with --durability off a key is answered from only once the shards applied its counters: a retry after a shard death is counted', async () => {
  const clock = new ManualClock(T);
  // Mode off touches neither the backend nor the disk on open.
  const durability = await Durability.open(
    { dataDir: '/nonexistent', mode: 'off', repair: false },
    { backend: {} as StateBackend, clock, retention: { minutes: 120, hours: 24 }, log: createLogger('silent') },
  );
  const key = { key: 'k-1', fingerprint: PRINT_A };
  const record = { atMs: T, counters: 1, entries: 2, key, shards: 2, parts: [], minutes: [] };
  let applied = 0;
  const send = (apply: () => Promise<void>) =>
    durability.idempotency.once(key.key, key.fingerprint, async () => {
      await durability.commit(record, apply);
      return { accepted: record.counters, counters: record.entries };
    });

  const died = new TopTallyError('TOPTALLY_ERR_SHARD_UNAVAILABLE', 'Shard 0 is unavailable', { shard: 0, retryAfter: 1 });
  await assert.rejects(send(() => Promise.reject(died)), { code: 'TOPTALLY_ERR_SHARD_UNAVAILABLE' });
  assert.equal(durability.idempotency.size, 0, 'nothing is remembered for counters no shard holds');
  assert.deepEqual(await send(async () => void applied++), { accepted: 1, counters: 2 });
  assert.equal(applied, 1, 'the retry was counted');
  assert.deepEqual(await send(async () => void applied++), { accepted: 1, counters: 2 });
  assert.equal(applied, 1, 'and a retry after it is not');
});
