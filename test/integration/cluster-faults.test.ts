// Faults in cluster mode, with toptally nodes as child processes on the real clock and real Redis
// servers: kill -9 of nodes (then restarts on their data directories), kill -9 of a Redis master
// under load (a failover) and then another master stopped with SIGSTOP for 5 s, and Redis gone then
// back. After each, every node answers a total with acknowledged <= stored <= acknowledged + in
// flight (requests whose answer was lost with a killed node), once Redis has settled.
//
// Also: an Idempotency-Key whose first node died between journaling the request and storing its
// answer in Redis is neither counted twice nor stuck once that node is back.
//
// All counters of one test carry one timestamp, in a closed minute of its own, so one window holds
// them all, whichever node took them.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnToptally, type Child } from '../helpers/child.ts';
import { cli, fileScope, startRedis, startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.ts';
import { tempDir } from '../helpers/server.ts';

const hooks = fileScope();
let cluster: RedisCluster;
before(async () => {
  cluster = await startRedisCluster(hooks);
});
after(hooks.close);

const DOMAINS = ['a.example', 'b.example', 'é.example', '😀.io', '__proto__'];

/** Posts counters to the nodes in turn, keeping what was acknowledged apart from what is unknown. */
class Load {
  acked = 0;
  /** Sent, and no answer came (the node died, the request timed out): counted or not. */
  unknown = 0;
  refused = new Map<string, number>();
  #stopped = false;
  #running: Promise<void>[] = [];
  readonly minute: number;
  targets: () => Child[];

  /** `minutesBack`: which closed minute the counters go to; each test takes its own (they share the cluster). */
  constructor(minutesBack: number, targets: () => Child[]) {
    this.targets = targets;
    this.minute = Math.floor(Date.now() / 60_000) - minutesBack;
  }

  start(clients = 4): void {
    for (let c = 0; c < clients; c++) this.#running.push(this.#client(c));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#running);
  }

  async #client(c: number): Promise<void> {
    for (let i = 0; !this.#stopped; i++) {
      const nodes = this.targets();
      if (nodes.length === 0) {
        await sleep(20);
        continue;
      }
      const node = nodes[(c + i) % nodes.length];
      const count = 1 + ((c + i) % 5);
      const body = JSON.stringify([{ timestamp: this.minute * 60 + 7, [DOMAINS[i % DOMAINS.length]]: count }]);
      try {
        const res = await fetch(`${node.url}/api/events`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000) });
        const text = await res.text();
        if (res.status === 200) this.acked += count;
        else {
          const code = (JSON.parse(text) as { error: { code: string } }).error.code;
          this.refused.set(code, (this.refused.get(code) ?? 0) + 1);
          await sleep(20);
        }
      } catch {
        this.unknown += count;
        await sleep(20);
      }
    }
  }
}

async function totalOn(node: Child, minute: number): Promise<number | string> {
  try {
    const res = await fetch(`${node.url}/api/stats?window=minute&limit=10&at=${(minute + 1) * 60}`, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { total?: number; error?: { code: string } };
    return res.status === 200 ? body.total! : `${res.status} ${body.error?.code}`;
  } catch (err) {
    return String(err);
  }
}

/** Waits (bounded) until every node's total is within [acked, acked + unknown] and they agree. */
async function settled(load: Load, nodes: Child[], timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown[] = [];
  while (Date.now() < deadline) {
    last = await Promise.all(nodes.map((node) => totalOn(node, load.minute)));
    const ok = last.every((total) => typeof total === 'number' && total >= load.acked && total <= load.acked + load.unknown && total === last[0]);
    if (ok) return last[0] as number;
    await sleep(100);
  }
  assert.fail(`totals ${JSON.stringify(last)} not within acknowledged ${load.acked} .. ${load.acked + load.unknown} (refused: ${JSON.stringify([...load.refused])})`);
}

function node(t: TestContext, dataDir: string, seeds: string[], extra: string[] = []): Promise<Child> {
  return spawnToptally(t, ['--redis', seeds.join(','), '--data-dir', dataDir, '--partitions', '16', '--flush-interval', '50ms', ...extra]);
}

async function kill(child: Child): Promise<void> {
  child.process.kill('SIGKILL');
  await child.exited;
}

test('kill -9 of nodes while they flush and while they hold unflushed counters, then restarts on their data directories: nothing lost, nothing doubled', async (t) => {
  const [dirA, dirB] = await Promise.all([tempDir(t), tempDir(t)]);
  // a flushes every 20 ms (killed mid-flush, most likely); b every 10 s, so everything it
  // acknowledged before the kill is in its journal only.
  let a = await node(t, dirA, cluster.urls, ['--flush-interval', '20ms']);
  let b = await node(t, dirB, cluster.urls, ['--flush-interval', '10s']);
  const started = JSON.parse(b.lines.find((line) => line.includes('"address"'))!) as { msg: string };
  assert.match(started.msg, /; cluster mode: node node-[0-9a-f]{12}, 16 partitions on Redis Cluster at redis:\/\/127\.0\.0\.1:\d+,.*, ack journal$/);
  let live = [a, b];
  const load = new Load(1, () => live);
  load.start();
  await sleep(800);
  live = [b];
  await kill(a);
  await sleep(300);
  live = [];
  await kill(b);
  [a, b] = await Promise.all([node(t, dirA, cluster.urls), node(t, dirB, cluster.urls)]);
  live = [a, b];
  await sleep(300);
  await load.stop();
  assert.ok(load.acked > 0);
  const total = await settled(load, [a, b]);
  assert.ok(total >= load.acked);
});

test('a Redis master killed with kill -9 under load (a failover), then another stopped with SIGSTOP for 5 s: nothing acknowledged is lost', async (t) => {
  await cluster.waitHealthy();
  const [dirA, dirB] = await Promise.all([tempDir(t), tempDir(t)]);
  const a = await node(t, dirA, cluster.urls);
  const b = await node(t, dirB, cluster.urls);
  const load = new Load(3, () => [a, b]);
  load.start();
  await sleep(500);
  const [killed] = await cluster.masters();
  await killed.kill();
  await sleep(4000); // the replica takes over after about 3 s; ingest goes on meanwhile
  await killed.restart(); // it rejoins as a replica
  await cluster.waitHealthy();
  const [stopped] = await cluster.masters();
  stopped.pause();
  await sleep(500);
  // A query needing the stopped master is answered, not held: 200, or 503 with the cluster's code.
  const started = Date.now();
  const during = await fetch(`${a.url}/api/stats?window=minute&limit=3&at=${(load.minute + 1) * 60}`, { signal: AbortSignal.timeout(8000) });
  const body = (await during.json()) as { error?: { code: string } };
  assert.ok(during.status === 200 || body.error?.code === 'TOPTALLY_ERR_CLUSTER_UNAVAILABLE', `${during.status} ${JSON.stringify(body)}`);
  await sleep(Math.max(0, 4500 - (Date.now() - started)));
  stopped.resume();
  await sleep(500);
  await load.stop();
  assert.equal(load.unknown, 0, 'no node died: every request was answered');
  await settled(load, [a, b]);
  await cluster.waitHealthy();
});

test('Redis unreachable, then back: ingest is journaled up to --max-unflushed, stats answer 503, then the backlog drains exactly', async (t) => {
  const redis = await startRedis(t);
  const dir = await tempDir(t);
  const a = await node(t, dir, [redis.url], ['--max-unflushed', '16KiB']);
  const load = new Load(5, () => [a]);
  load.start(2);
  await sleep(300);
  await redis.kill();
  // Ingest goes on into the journal until the bound, then 503 with Retry-After.
  const deadline = Date.now() + 20_000;
  while (!load.refused.has('TOPTALLY_ERR_UNFLUSHED_LIMIT') && Date.now() < deadline) await sleep(50);
  assert.ok(load.refused.has('TOPTALLY_ERR_UNFLUSHED_LIMIT'), `refused: ${JSON.stringify([...load.refused])}`);
  const limited = await fetch(`${a.url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timestamp: load.minute * 60, x: 1 }) });
  assert.equal(limited.status, 503);
  assert.equal(limited.headers.get('retry-after'), '1');
  assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'TOPTALLY_ERR_UNFLUSHED_LIMIT');
  const stats = await fetch(`${a.url}/api/stats?window=minute&limit=3`);
  assert.equal(stats.status, 503);
  assert.equal(((await stats.json()) as { error: { code: string } }).error.code, 'TOPTALLY_ERR_CLUSTER_UNAVAILABLE');
  const ready = await fetch(`${a.url}/readyz`);
  assert.equal(ready.status, 503);
  assert.match(await ready.text(), /Redis unreachable/);
  await redis.restart();
  await load.stop();
  assert.equal(load.unknown, 0);
  await settled(load, [a]);
  const readyAgain = await fetch(`${a.url}/readyz`);
  assert.equal(readyAgain.status, 200, await readyAgain.text());
});

/** The counts of `domains` in `minute` on `node` (0 for a domain not in the window). */
async function countsOn(node: Child, minute: number, domains: string[]): Promise<Record<string, number>> {
  const res = await fetch(`${node.url}/api/stats?window=minute&limit=1000&at=${(minute + 1) * 60}`, { signal: AbortSignal.timeout(3000) });
  const top = ((await res.json()) as { top?: { domain: string; count: number }[] }).top ?? [];
  return Object.fromEntries(domains.map((domain) => [domain, top.find((entry) => entry.domain === domain)?.count ?? 0]));
}

/** A keyed POST to `node`: its status, error code or answer. */
async function keyedPost(node: Child, key: string, body: string): Promise<{ status: number; code?: string; answer?: unknown }> {
  const res = await fetch(`${node.url}/api/events`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'idempotency-key': key }, signal: AbortSignal.timeout(15_000) });
  const json = (await res.json()) as { error?: { code: string } };
  return res.status === 200 ? { status: 200, answer: json } : { status: res.status, code: json.error?.code };
}

test('an Idempotency-Key whose node died before its answer reached Redis: a retry elsewhere is refused while that node is down, gets its answer once it is back, and a claim it never journaled is taken over', async (t) => {
  const [dirA, dirB] = await Promise.all([tempDir(t), tempDir(t)]);
  let a = await node(t, dirA, cluster.urls);
  const b = await node(t, dirB, cluster.urls);
  const aId = /cluster mode: node (node-[0-9a-f]{12})/.exec(a.lines.join('\n'))![1];
  const port = new URL(cluster.urls[0]).port;
  const redis = (...args: string[]) => cli(Number(port), '-c', ...args);
  const idemKey = (key: string): string => {
    const digest = createHash('sha256').update(key).digest('hex');
    return `idem:{${digest.slice(0, 8)}}:${digest}`;
  };
  const minute = Math.floor(Date.now() / 60_000) - 4;
  const first = JSON.stringify([{ timestamp: minute * 60 + 7, 'first.example': 3 }]);
  const never = JSON.stringify([{ timestamp: minute * 60 + 7, 'never.example': 5 }]);
  const [k1, k2, k3] = [1, 2, 3].map((i) => `dead-node-${i}-${Math.random()}`);

  const answered = await keyedPost(a, k1, first);
  assert.equal(answered.status, 200);
  // The fingerprint of `never`, from a request that b counts under another key.
  assert.equal((await keyedPost(b, k3, never)).status, 200);
  const [fp1, fp2] = [await redis('GET', idemKey(k1)), await redis('GET', idemKey(k3))].map((done) => done.split(':')[1]);
  const boot = (await redis('HGET', '{tt}:nodes', aId)).split(':')[3];
  assert.match(boot, /^[0-9a-f]{12}$/);
  await kill(a);
  // As if a had died after journaling k1's request and before storing its answer, and after claiming
  // k2 and before journaling it.
  await redis('SET', idemKey(k1), `pending:${fp1}:${aId}:${boot}:x`, 'PX', '600000');
  await redis('SET', idemKey(k2), `pending:${fp2}:${aId}:${boot}:y`, 'PX', '600000');

  // Once b hears a is gone (no heartbeat for 2 s), it refuses at once, counting nothing.
  const deadline = Date.now() + 15_000;
  let refused = await keyedPost(b, k1, first);
  while (refused.code !== 'TOPTALLY_ERR_IDEMPOTENCY_KEY_HELD' && Date.now() < deadline) refused = await keyedPost(b, k1, first);
  assert.deepEqual(refused, { status: 503, code: 'TOPTALLY_ERR_IDEMPOTENCY_KEY_HELD' });
  assert.equal((await keyedPost(b, k2, never)).code, 'TOPTALLY_ERR_IDEMPOTENCY_KEY_HELD');

  a = await node(t, dirA, cluster.urls);
  // Back, a stores k1's answer from its journal before it heartbeats; b then sees a restarted.
  const once = async (key: string, body: string) => {
    const until = Date.now() + 15_000;
    for (;;) {
      const reply = await keyedPost(b, key, body);
      if (reply.status === 200 || Date.now() > until) return reply;
      assert.equal(reply.code, 'TOPTALLY_ERR_IDEMPOTENCY_KEY_HELD');
      await sleep(100);
    }
  };
  assert.deepEqual(await once(k1, first), answered, 'the first answer, not counted again');
  const takenOver = await once(k2, never);
  assert.equal(takenOver.status, 200, 'the claim a never journaled, taken over');
  assert.deepEqual(await keyedPost(a, k2, never), takenOver);

  // first.example once; never.example under k3 and under k2. Read per domain: other tests of this
  // file may have put counters into the same minute (theirs are chosen as minutes back from their start).
  const wanted = { 'first.example': 3, 'never.example': 10 };
  const until = Date.now() + 30_000;
  let last = '';
  for (;;) {
    const seen = await Promise.all([a, b].map((n) => countsOn(n, minute, Object.keys(wanted))));
    last = JSON.stringify(seen);
    if (seen.every((counts) => JSON.stringify(counts) === JSON.stringify(wanted)) || Date.now() > until) break;
    await sleep(100);
  }
  assert.equal(last, JSON.stringify([wanted, wanted]));
});
