/**
 * The soak client's own account: what the server acknowledged, by minute and domain, and every
 * outcome by code. At the end it is compared with what the server answers for each minute.
 */

export type Counter = Record<string, number>;

export class Tally {
  /** Minute start (Unix seconds) -> domain -> count, from acknowledged counters only. */
  readonly minutes = new Map<number, Map<string, number>>();
  /** Outcome -> how many: "200", "ack", error codes, "aborted: ..." and the like. */
  readonly outcomes = new Map<string, number>();
  counters = 0;

  acknowledged(counters: Counter[]): void {
    for (const counter of counters) {
      const minute = Math.floor(counter.timestamp / 60) * 60;
      let counts = this.minutes.get(minute);
      if (!counts) this.minutes.set(minute, (counts = new Map()));
      for (const domain in counter) {
        if (domain === 'timestamp') continue;
        counts.set(domain, (counts.get(domain) ?? 0) + counter[domain]);
        this.counters++;
      }
    }
  }

  outcome(name: string): void {
    this.outcomes.set(name, (this.outcomes.get(name) ?? 0) + 1);
  }

  get handled(): number {
    let sum = 0;
    for (const n of this.outcomes.values()) sum += n;
    return sum;
  }
}

export interface Ranked {
  domain: string;
  count: number;
}

/** The tally of one minute in the server's order: count descending, then domain ascending. */
export function ranked(counts: Map<string, number>): Ranked[] {
  return [...counts]
    .map(([domain, count]) => ({ domain, count }))
    .sort((a, b) => b.count - a.count || (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
}
