/**
 * What a straightforward single-threaded service keeps: per minute, one Map from domain to requests.
 * Shared by the naive baselines so they differ only in transport.
 */

export interface TopEntry {
  Domain: string;
  NumberOfRequests: number;
}

/** Enough minutes to answer the last round hour at any point of the next one (up to 119 minutes back). */
const KEEP_MINUTES = 120;

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

  /** Top domains of the last complete minute before `atSeconds`, sorted the obvious way. */
  topOfLastMinute(atSeconds: number, limit = 10): TopEntry[] {
    return sortedTop(this.minutes.get(Math.floor(atSeconds / 60) - 1), limit);
  }

  /** Top domains of the last complete hour before `atSeconds`: its minutes summed into one Map, then sorted. */
  topOfLastHour(atSeconds: number, limit = 10): TopEntry[] {
    const firstMinute = (Math.floor(atSeconds / 3600) - 1) * 60;
    const hour = new Map<string, number>();
    for (let minute = firstMinute; minute < firstMinute + 60; minute++) {
      for (const [domain, requests] of this.minutes.get(minute) ?? []) hour.set(domain, (hour.get(domain) ?? 0) + requests);
    }
    return sortedTop(hour, limit);
  }

  /** `window` is "minute" or "hour" (anything else is a minute), `at` Unix seconds (default now). */
  top(window: string | undefined, at: string | undefined): TopEntry[] {
    const atSeconds = at === undefined || at === '' ? nowSeconds() : Number(at);
    return window === 'hour' ? this.topOfLastHour(atSeconds) : this.topOfLastMinute(atSeconds);
  }
}

function sortedTop(domains: Map<string, number> | undefined, limit: number): TopEntry[] {
  if (domains === undefined) return [];
  return [...domains]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([Domain, NumberOfRequests]) => ({ Domain, NumberOfRequests }));
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
