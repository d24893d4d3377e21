// The flusher's bookkeeping, kept incremental: it is consulted on every ingest (the unflushed bound)
// and after every batch, so nothing here may cost more than the records it moves past.

/** LSNs of the records that touched one partition, ascending: those before `verified` are kept by
 * Redis (read back, replicated), those before `confirmed` were answered ok. */
export class Touches {
  #lsns: number[] = [];
  #verified = 0;
  #confirmed = 0;

  push(lsn: number): void {
    this.#lsns.push(lsn);
  }

  confirm(mark: number): void {
    while (this.#confirmed < this.#lsns.length && this.#lsns[this.#confirmed] <= mark) this.#confirmed++;
  }

  verify(mark: number): void {
    while (this.#verified < this.#confirmed && this.#lsns[this.#verified] <= mark) this.#verified++;
    if (this.#verified > 1024 && this.#verified * 2 > this.#lsns.length) {
      this.#lsns.splice(0, this.#verified);
      this.#confirmed -= this.#verified;
      this.#verified = 0;
    }
  }

  firstUnconfirmed(): number | undefined {
    return this.#lsns[this.#confirmed];
  }

  firstUnverified(): number | undefined {
    return this.#lsns[this.#verified];
  }

  /** Not yet verified, for a rewind to keep what lies outside the replayed range. */
  unverified(): number[] {
    return this.#lsns.slice(this.#verified);
  }

  /** After a rewind: the unverified LSNs, and the marks they are confirmed and verified to. */
  reset(lsns: number[], mark: number, verified: number): void {
    this.#lsns = lsns;
    this.#verified = this.#confirmed = 0;
    this.confirm(mark);
    this.verify(verified);
  }
}

export interface RecordInfo {
  lsn: number;
  atMs: number;
  bytes: number;
}

/** Every record not yet verified everywhere, in LSN order, with a cursor at the first unconfirmed one. */
export class RecordQueue {
  #items: RecordInfo[] = [];
  #head = 0;
  /** First index with lsn >= #lowest, and the bytes from it to the end. */
  #cursor = 0;
  #after = 0;
  #lowest = 0;

  push(record: RecordInfo): void {
    this.#items.push(record);
    if (record.lsn >= this.#lowest) this.#after += record.bytes;
  }

  /** Puts back a record a replay read again (it may have been dropped once verified). */
  restore(record: RecordInfo): void {
    for (let i = this.#head; i < this.#items.length; i++) if (this.#items[i].lsn === record.lsn) return;
    this.#items.push(record);
    this.#items.sort((a, b) => a.lsn - b.lsn);
    this.#lowest = Infinity; // recount at the next moveTo
  }

  /** Moves the cursor to the first record with lsn >= `lowest` (the lowest LSN some partition has not confirmed). */
  moveTo(lowest: number): void {
    if (lowest < this.#lowest) {
      this.#cursor = this.#head;
      this.#after = 0;
      for (let i = this.#head; i < this.#items.length; i++) this.#after += this.#items[i].bytes;
    }
    while (this.#cursor < this.#items.length && this.#items[this.#cursor].lsn < lowest) this.#after -= this.#items[this.#cursor++].bytes;
    this.#lowest = lowest;
  }

  /** Forgets the records below `lsn` (verified everywhere), never past the cursor. */
  prune(lsn: number): void {
    while (this.#head < this.#cursor && this.#items[this.#head].lsn < lsn) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#cursor -= this.#head;
      this.#head = 0;
    }
  }

  /** Bytes of the records from the cursor on. */
  get unconfirmedBytes(): number {
    return this.#after;
  }

  /** When the first unconfirmed record was acknowledged, or undefined when there is none. */
  get firstUnconfirmedAtMs(): number | undefined {
    return this.#items[this.#cursor]?.atMs;
  }
}
