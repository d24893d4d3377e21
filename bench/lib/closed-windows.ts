/**
 * The closed windows Q and C fill and query, and how one query is timed. They are the last minutes of
 * the last complete hour: closed, so their answers can be cached; inside every server's retention (120
 * minutes each); and named with `at=`, so the window a query reads does not move while the bench runs.
 */
import type { RawHttp } from './raw-http.js';
import { median } from './stats.js';

export interface FilledWindows {
  /** Index of the last complete hour. */
  hour: number;
  /** Index of that hour's last minute; Q also fills the two before it. */
  lastMinute: number;
  /** Path of the parameterised stats query for a minute. */
  minutePath(minute: number): string;
  /** The seed's endpoint for the same minute. */
  seedMinutePath(minute: number): string;
  hourPath: string;
}

export function filledWindows(nowSeconds = Math.floor(Date.now() / 1000)): FilledWindows {
  const hour = Math.floor(nowSeconds / 3600) - 1;
  return {
    hour,
    lastMinute: hour * 60 + 59,
    minutePath: (minute) => `/api/stats?window=minute&at=${(minute + 1) * 60}`,
    seedMinutePath: (minute) => `/api/stats/minutes?at=${(minute + 1) * 60}`,
    hourPath: `/api/stats?window=hour&at=${(hour + 1) * 3600}`,
  };
}

export interface QueryTimes {
  /** The first query after the window was filled: nothing cached yet. */
  firstMs: number;
  /** Median of the queries after it. */
  repeatedMs: number;
}

const REPEATS = 20;
const REPEAT_BUDGET_MS = 2000;
const MIN_REPEATS = 3;

/**
 * Times the first query of `path` and up to 20 more (fewer when each takes long, at least 3), and
 * checks the answer: toptally's `domains` must equal `domains`, a naive server's list must be full.
 */
export async function timeQuery(client: RawHttp, path: string, domains: number): Promise<QueryTimes> {
  const first = await client.get(path);
  check(path, first.status, first.body, domains);
  const repeated: number[] = [];
  const budgetEnd = performance.now() + REPEAT_BUDGET_MS;
  while (repeated.length < REPEATS && (repeated.length < MIN_REPEATS || performance.now() < budgetEnd)) {
    const response = await client.get(path);
    check(path, response.status, response.body, domains);
    repeated.push(response.ms);
  }
  return { firstMs: first.ms, repeatedMs: median(repeated) };
}

function check(path: string, status: number, body: Buffer, domains: number): void {
  const text = body.toString('utf8');
  if (status !== 200) throw new Error(`GET ${path}: HTTP ${status} ${text.slice(0, 200)}`);
  const answer = JSON.parse(text) as unknown;
  const held = Array.isArray(answer) ? undefined : (answer as { domains?: unknown }).domains;
  const listed = Array.isArray(answer) ? answer.length : undefined;
  const ok = typeof held === 'number' ? held === domains : listed === Math.min(10, domains);
  if (!ok) throw new Error(`GET ${path}: expected ${domains} domains in the window, got ${text.slice(0, 200)}`);
}
