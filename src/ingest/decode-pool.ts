// The decode pool: interchangeable piscina threads that turn large bodies into shard parts, so the
// I/O thread only reads bytes and forwards parts. Small bodies are cheaper to decode in place.

import { Piscina } from 'piscina';
import { packageFile, threadModule } from '../runtime.ts';
import type { DecodeOutcome, DecodeTask } from './decode-parts.ts';

export class DecodePool {
  readonly #pool: Piscina<DecodeTask, DecodeOutcome>;

  constructor(threads: number) {
    this.#pool = new Piscina({
      filename: packageFile('workers/decode-entry.cjs').href,
      workerData: { entry: threadModule('src/ingest/decode-worker', 'src/ingest/decode-worker.mjs').href },
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
    });
  }

  /**
   * Decodes `task`. A `movable` body that owns its ArrayBuffer is moved to the pool thread and
   * unusable here afterwards; any other (a slice of Node's buffer pool, a reused buffer) is copied.
   */
  run(task: DecodeTask, movable: boolean): Promise<DecodeOutcome> {
    const { body } = task;
    const owned = movable && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : new Uint8Array(body);
    return this.#pool.run({ ...task, body: owned }, { transferList: [owned.buffer as ArrayBuffer] });
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}
