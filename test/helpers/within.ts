// Every wait in a test is bounded: a promise the system resolves, or a failure naming what did not
// come. The bound is far above what the wait takes, so it only decides how a broken build fails.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  const timer = sleep(ms, undefined, { ref: false }).then(() => Promise.reject(new Error(`no ${what} within ${ms} ms`)));
  return Promise.race([promise, timer]);
}

/**
 * Polls `check` until it answers null (done), for at most `timeoutMs`; fails with what it answered
 * last (why not yet).
 */
export async function eventually(what: string, check: () => Promise<string | null>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string | null = null;
  while (Date.now() < deadline) {
    last = await check();
    if (last === null) return;
    await sleep(20);
  }
  assert.fail(`${what}: not within ${timeoutMs} ms (${last})`);
}
