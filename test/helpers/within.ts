// Every wait in a test is bounded: a promise the system resolves, or a failure naming what did not
// come. The bound is far above what the wait takes, so it only decides how a broken build fails.

import { setTimeout as sleep } from 'node:timers/promises';

export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  const timer = sleep(ms, undefined, { ref: false }).then(() => Promise.reject(new Error(`no ${what} within ${ms} ms`)));
  return Promise.race([promise, timer]);
}
