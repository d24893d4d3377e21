// One request's record in the journal: what Durability.commit hands the journal, one object (and
// the one promise its caller awaits) instead of a promise and closures per step: each request's
// objects live through a flush cycle, so every one of them is work for the collector.

import type { ByteWriter } from './bytes.ts';
import type { JournalEntry } from './journal.ts';
import { writeCounters, type CounterRecord } from './records.ts';

export class Commit implements JournalEntry {
  readonly #record: Omit<CounterRecord, 'lsn'>;
  readonly #apply: (lsn: number) => Promise<void>;
  readonly #durable: (record: Omit<CounterRecord, 'lsn'>) => void;
  readonly #resolve: (applied: Promise<void>) => void;
  readonly #reject: (err: unknown) => void;

  /**
   * `durable` runs first once the record is on disk, then `apply`; the commit settles as what `apply`
   * returned does.
   */
  constructor(
    record: Omit<CounterRecord, 'lsn'>,
    apply: (lsn: number) => Promise<void>,
    durable: (record: Omit<CounterRecord, 'lsn'>) => void,
    resolve: (applied: Promise<void>) => void,
    reject: (err: unknown) => void,
  ) {
    this.#record = record;
    this.#apply = apply;
    this.#durable = durable;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  encode(lsn: number, into: ByteWriter): void {
    writeCounters(into, this.#record, lsn);
  }

  durable(lsn: number): void {
    this.#durable(this.#record);
    this.#resolve(this.#apply(lsn));
  }

  refused(err: unknown): void {
    this.#reject(err);
  }
}
