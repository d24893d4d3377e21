// A RedisLink for a node that starts while Redis cannot be reached: it keeps trying to connect in
// the background, and until it has, every command fails as it would during an outage (so ingest is
// journaled, stats and keyed requests answer 503, and /readyz says why), then it passes them on.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Arg, DedicatedConnection, RedisLink } from './redis-link.ts';

const RETRY_MS = 1000;

export class DeferredLink implements RedisLink {
  #link: RedisLink | null = null;
  #closed = false;
  #lastError: Error;
  /**
   * Resolves with the link once `connect` succeeded, or null once closed first; rejects when
   * `connect` threw an error that retrying cannot mend (`fatal`).
   */
  readonly connected: Promise<RedisLink | null>;

  /** `connect` is tried again every second until it resolves; `failure` is what it threw at start. */
  constructor(connect: () => Promise<RedisLink>, failure: Error, options: { onError: (err: Error) => void; fatal: (err: Error) => boolean }) {
    this.#lastError = failure;
    this.connected = (async () => {
      while (!this.#closed) {
        await sleep(RETRY_MS);
        if (this.#closed) break;
        try {
          const link = await connect();
          if (this.#closed) {
            await link.close();
            break;
          }
          return (this.#link = link);
        } catch (err) {
          if (options.fatal(err as Error)) throw err;
          this.#lastError = err as Error;
          options.onError(err as Error);
        }
      }
      return null;
    })();
    this.connected.catch(() => {}); // the caller awaits it when it starts
  }

  get cluster(): boolean {
    return this.#link?.cluster ?? false;
  }

  call(key: string, args: Arg[]): Promise<unknown> {
    return this.#link ? this.#link.call(key, args) : Promise.reject(this.#notYet());
  }

  masterOf(key: string): { address: string; replicas: number } {
    return this.#link?.masterOf(key) ?? { address: 'unknown', replicas: 0 };
  }

  eachMaster(args: Arg[]): Promise<unknown[]> {
    return this.#link ? this.#link.eachMaster(args) : Promise.reject(this.#notYet());
  }

  loadLibrary(): Promise<void> {
    return this.#link ? this.#link.loadLibrary() : Promise.reject(this.#notYet());
  }

  dedicated(): Promise<DedicatedConnection> {
    return this.#link ? this.#link.dedicated() : Promise.reject(this.#notYet());
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#link?.close();
  }

  #notYet(): Error {
    return new Error(`Redis not reached yet (${this.#lastError.message})`);
  }
}
