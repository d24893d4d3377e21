// Starts a real toptally (uWS on port 0, real shard workers, a real data directory) on a manual
// clock, stopped in t.after.

import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { startToptally, type StartOptions, type Toptally } from '../../src/app.ts';
import { ManualClock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';

/** 2020-12-16T07:10:30Z: mid-minute, so "the last round minute" is 07:09. */
export const T0 = 1608102630;

export interface TestServer {
  app: Toptally;
  clock: ManualClock;
  url: string;
  config: Config;
  post(body: string | object, headers?: Record<string, string>): Promise<Reply>;
  get(path: string): Promise<Reply>;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** Servers started on each temp dir, stopped before the dir is removed. */
const onDir = new Map<string, Toptally[]>();

/** A fresh data directory, removed after the test (once every server on it has stopped). */
export async function tempDir(t: Pick<TestContext, 'after'>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toptally-test-'));
  onDir.set(dir, []);
  t.after(async () => {
    await Promise.all(onDir.get(dir)!.map((app) => app.stop()));
    onDir.delete(dir);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

export async function startServer(
  t: Pick<TestContext, 'after'>,
  overrides: Partial<Config> = {},
  startSeconds = T0,
  options: Omit<StartOptions, 'clock'> = {},
): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? (await tempDir(t));
  const config = { ...loadConfig([], {}), port: 0, shards: 2, ...overrides, dataDir };
  const clock = new ManualClock(startSeconds * 1000);
  const app = await startToptally(config, { clock, log: createLogger('silent'), ...options });
  onDir.get(dataDir)?.push(app);
  t.after(() => app.stop());
  const url = `http://127.0.0.1:${app.port}`;
  return {
    app,
    clock,
    url,
    config,
    post: (body, headers = {}) =>
      request(`${url}/api/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    get: (path) => request(url + path),
  };
}

/**
 * A server whose restarted shards stay down, rebuilt only once `release()` is called: for tests
 * that look at a shard while it is down. Call release() in a finally, or the stop waits for it.
 */
export async function startServerHoldingRestarts(
  t: Pick<TestContext, 'after'>,
  options: Omit<StartOptions, 'clock' | 'recoverShard'> = {},
): Promise<{ s: TestServer; release: () => void }> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const s: TestServer = await startServer(t, {}, T0, {
    ...options,
    recoverShard: async (shard, handle) => {
      await held;
      return s.app.durability.rebuildShard(shard, handle);
    },
  });
  return { s, release };
}

export interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** One request on its own connection (no keep-alive), so a stopped server leaves nothing open. */
export async function request(url: string, init: RequestInit = {}): Promise<Reply> {
  const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false });
  req.end(init.body);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}
