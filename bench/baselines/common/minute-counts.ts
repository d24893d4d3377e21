/**
 * What a straightforward single-threaded service keeps: per minute, one Map from domain to requests.
 * Shared by the naive baselines so they differ only in transport.
 */

export interface TopEntry {
  Domain: string;
  NumberOfRequests: number;
}

const KEEP_MINUTES = 60;

export class MinuteCounts {
  private readonly minutes = new Map<number, Map<string, number>>();

  /** Counts one `{"timestamp": s, domain: n, ...}` object; returns false if it is not one. */
  add(counter: unknown): boolean {
    if (typeof counter !== 'object' || counter === null || Array.isArray(counter)) return false;
    const fields = counter as Record<string, unknown>;
    const timestamp = fields['timestamp'];
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) return false;
    const minute = Math.floor(timestamp / 60);
    let domains = this.minutes.get(minute);
    if (domains === undefined) {
      domains = new Map();
      this.minutes.set(minute, domains);
      this.minutes.delete(minute - KEEP_MINUTES);
    }
    for (const key in fields) {
      if (key === 'timestamp') continue;
      const requests = fields[key];
      if (typeof requests === 'number') domains.set(key, (domains.get(key) ?? 0) + requests);
    }
    return true;
  }

  /** Counts an object or an array of them; returns how many were accepted. */
  addBody(body: unknown): number {
    if (!Array.isArray(body)) return this.add(body) ? 1 : 0;
    let accepted = 0;
    for (const counter of body) if (this.add(counter)) accepted++;
    return accepted;
  }

  /** Top domains of the last complete minute before `nowSeconds`, sorted the obvious way. */
  topOfLastMinute(nowSeconds: number, limit = 10): TopEntry[] {
    const domains = this.minutes.get(Math.floor(nowSeconds / 60) - 1);
    if (domains === undefined) return [];
    return [...domains]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([Domain, NumberOfRequests]) => ({ Domain, NumberOfRequests }));
  }
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
