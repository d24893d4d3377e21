// Reads every closed window inside the retention, and keeps the brute-force reference of what each
// should hold, for the durability tests.

import assert from 'node:assert/strict';
import type { Reply } from './server.ts';

export type Kind = 'minute' | 'hour';
const SIZE: Record<Kind, number> = { minute: 60, hour: 3600 };

export interface Retained {
  minutes: number;
  hours: number;
}

/** GET /api/stats for every closed retained window at `nowSeconds`, keyed `kind:index`. */
export async function readWindows(
  get: (path: string) => Promise<Reply>,
  nowSeconds: number,
  retained: Retained = { minutes: 120, hours: 24 },
): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (const kind of ['minute', 'hour'] as const) {
    const current = Math.floor(nowSeconds / SIZE[kind]);
    const back = kind === 'minute' ? retained.minutes : retained.hours;
    for (let index = current - back; index < current; index++) {
      const reply = await get(`/api/stats?window=${kind}&limit=1000&at=${(index + 1) * SIZE[kind]}`);
      assert.equal(reply.status, 200, `${kind} ${index}: ${JSON.stringify(reply.body)}`);
      out.set(`${kind}:${index}`, reply.body);
    }
  }
  return out;
}

/** Counts per window per domain, as the tests expect them. */
export class Reference {
  readonly windows = new Map<string, Map<string, number>>();

  add(timestamp: number, domain: string, count: number): void {
    for (const kind of ['minute', 'hour'] as const) {
      const key = `${kind}:${Math.floor(timestamp / SIZE[kind])}`;
      let window = this.windows.get(key);
      if (!window) this.windows.set(key, (window = new Map()));
      window.set(domain, (window.get(domain) ?? 0) + count);
    }
  }

  addCounter(counter: Record<string, number>): void {
    for (const [domain, count] of Object.entries(counter)) {
      if (domain !== 'timestamp') this.add(counter.timestamp, domain, count);
    }
  }

  get(key: string, domain: string): number {
    return this.windows.get(key)?.get(domain) ?? 0;
  }

  /** The answer /api/stats gives for the window: count descending, ties by domain. */
  top(key: string): { domain: string; count: number }[] {
    return [...(this.windows.get(key) ?? [])]
      .map(([domain, count]) => ({ domain, count }))
      .sort((a, b) => b.count - a.count || (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  }
}
