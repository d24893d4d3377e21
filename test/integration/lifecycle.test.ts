import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { startToptally } from '../../src/app.ts';
import { ManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { request, T0, tempDir } from '../helpers/server.ts';

const BIN = new URL('../../bin/toptally.js', import.meta.url).pathname;

test('SIGTERM stops accepting, answers the request in flight, stops the workers and exits 0', async (t) => {
  const dataDir = await tempDir(t);
  const child = spawn(process.execPath, [BIN, '--port', '0', '--shards', '2', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => JSON.parse((await lines.next()).value);

  const started = await next();
  assert.equal(started.uws, 'native', 'this machine runs the native uWebSockets.js build');
  assert.equal(started.shards, 2);
  const url = `http://${started.address}`;

  // A request whose body is only half sent when the signal arrives.
  const now = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({ timestamp: now, A: 1 });
  const req = http.request(`${url}/api/events`, { method: 'POST', agent: false, headers: { 'content-length': body.length } });
  const response = once(req, 'response');
  req.write(body.slice(0, 5));
  // The server has the request once it answers another one on a fresh connection after it.
  assert.equal((await request(`${url}/api/stats/minutes`)).status, 200);

  child.kill('SIGTERM');
  assert.equal((await next()).msg, 'stopping: no new requests, answering those in flight');
  req.end(body.slice(5));
  const [res] = (await response) as [http.IncomingMessage];
  assert.equal(res.statusCode, 200);
  assert.equal((await next()).msg, 'toptally stopped');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  await assert.rejects(request(`${url}/api/stats/minutes`), /ECONNREFUSED/);
});

test('SIGTERM just after the start line still stops the server gracefully, with its decode threads still starting', async (t) => {
  // The signal races the process's own start-up: each round is one chance for it to arrive before
  // the process listens for it, or while a decode thread is loading its module.
  for (let round = 0; round < 6; round++) {
    const dataDir = await tempDir(t);
    const child = spawn(process.execPath, [BIN, '--port', '0', '--shards', '2', '--decode-threads', '2', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const lines = createInterface({ input: child.stdout });
    const messages: string[] = [];
    lines.on('line', (line) => messages.push((JSON.parse(line) as { msg: string }).msg));
    await once(lines, 'line');
    child.kill('SIGTERM');
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    assert.deepEqual([code, signal, stderr], [0, null, ''], `round ${round}`);
    assert.equal(messages.at(-1), 'toptally stopped', `round ${round}`);
  }
});

test('a shard worker that dies is logged and its requests are answered with 503, not left hanging', async (t) => {
  const logs = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  logs.on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n').map((l) => JSON.parse(l))));
  const config = { ...loadConfig([], {}), port: 0, shards: 2, dataDir: await tempDir(t) };
  // Its replacement is held in recovery until the test has seen the 503s.
  let recovered!: () => void;
  const recovery = new Promise<void>((resolve) => (recovered = resolve));
  const app = await startToptally(config, {
    clock: new ManualClock(T0 * 1000),
    log: createLogger('info', logs),
    recoverShard: async (shard, handle) => {
      await recovery;
      return app.durability.rebuildShard(shard, handle);
    },
  });
  t.after(() => app.stop());
  const url = `http://127.0.0.1:${app.port}`;

  // Terminated before the query is sent: the worker never answers, the exit must.
  const dying = app.pool.shards[1];
  void dying.terminate();
  const owed = dying.top('minute', Math.floor(T0 / 60) - 1, 10);
  await assert.rejects(owed, { code: 'TOPTALLY_ERR_SHARD_UNAVAILABLE' });

  const stats = await request(`${url}/api/stats/minutes`);
  assert.deepEqual([stats.status, stats.body.error.code], [503, 'TOPTALLY_ERR_SHARD_UNAVAILABLE']);
  // Enough domains that some hash to the dead shard.
  const counter = Object.fromEntries([['timestamp', T0], ...Array.from({ length: 20 }, (_, i) => [`d${i}`, 1])]);
  const posted = await request(`${url}/api/events`, { method: 'POST', body: JSON.stringify(counter) });
  assert.deepEqual([posted.status, posted.body.error.code, posted.body.error.shard], [503, 'TOPTALLY_ERR_SHARD_UNAVAILABLE', 1]);
  const died = lines.find((l) => l.level === 50);
  assert.equal(died?.shard, 1);
  assert.match(String(died?.msg), /shard worker died/);

  const restarted = once(app.pool, 'restarted');
  recovered();
  assert.deepEqual(await restarted, [1, true]);
  assert.equal((await request(`${url}/api/events`, { method: 'POST', body: JSON.stringify(counter) })).status, 200);
  // The cause is logged as an error object, with its stack, not as its message alone (checked last:
  // a failure before the recovery is released would hold the stop).
  const cause = died?.err as { type?: string; message?: string; stack?: string } | undefined;
  assert.equal(cause?.type, 'Error');
  assert.match(String(cause?.message), /^shard 1 exited with code/);
  assert.match(String(cause?.stack), /^Error: shard 1 exited with code [^\n]*\n\s+at /);
});

test('--help lists every option and a bad option stops start-up with one clear line', async () => {
  const help = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  help.stdout.on('data', (d) => (out += d));
  assert.equal((await once(help, 'exit'))[0], 0);
  for (const flag of ['--port', '--host', '--shards', '--max-body', '--retain-minutes', '--retain-hours', '--max-future', '--log-level']) {
    assert.ok(out.includes(flag), flag);
  }
  const bad = spawn(process.execPath, [BIN, '--shards', 'many'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  bad.stderr.on('data', (d) => (err += d));
  assert.equal((await once(bad, 'exit'))[0], 2);
  assert.equal(err, 'toptally: --shards: expected a whole number from 1 to 256, got "many"\n');
});

test('without a native uWebSockets.js build the start line is a warning that says so', async (t) => {
  const dataDir = await tempDir(t);
  // UWS_USE_FALLBACK loads the fallback as a Node.js without a native build would.
  const child = spawn(process.execPath, [BIN, '--port', '0', '--shards', '1', '--data-dir', dataDir, '--ingest-token', 'a'.repeat(16), '--read-token', 'b'.repeat(16)], {
    env: { ...process.env, UWS_USE_FALLBACK: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => child.kill('SIGKILL'));
  let started: Record<string, unknown> | undefined;
  // The package itself prints a plain line first; the start line is the JSON one with an address.
  for await (const line of createInterface({ input: child.stdout })) {
    if (!line.startsWith('{')) continue;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    if (parsed.address) {
      started = parsed;
      break;
    }
  }
  assert.equal(started?.uws, 'fallback');
  assert.equal(started?.level, 40, 'a warning even though both scopes need a token');
  assert.match(String(started?.msg), /uWebSockets\.js runs its JavaScript fallback \(no native build for Node\.js [0-9.]+; .*\): slower, and not supported/);
});

test('the start line gives the checkpoint and journal bytes it recovered, as the recovery fields count them', async (t) => {
  const dataDir = await tempDir(t);
  const config = { ...loadConfig([], {}), port: 0, shards: 2, dataDir };
  const clock = new ManualClock(T0 * 1000);
  const first = await startToptally(config, { clock, log: createLogger('silent') });
  const counter = { timestamp: T0, 'a.example': 3, 'b.example': 4 };
  for (let i = 0; i < 5; i++) {
    assert.equal((await request(`http://127.0.0.1:${first.port}/api/events`, { method: 'POST', body: JSON.stringify(counter) })).status, 200);
  }
  await first.stop();

  const logs = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  logs.on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n').map((l) => JSON.parse(l))));
  const second = await startToptally(config, { clock, log: createLogger('info', logs) });
  t.after(() => second.stop());
  const started = lines.find((l) => l.address);
  const recovery = started?.recovery as { snapshotBytes: number; journalBytes: number; records: number };
  assert.ok(recovery.journalBytes > 0 && recovery.records === 5, JSON.stringify(recovery));
  assert.ok(
    String(started?.msg).includes(`(${recovery.snapshotBytes} checkpoint bytes, ${recovery.journalBytes} journal bytes)`),
    String(started?.msg),
  );
});

test('the command runs the build: no thread (I/O, shard workers, decode pool) loads tsx or a .ts file', async (t) => {
  const dataDir = await tempDir(t);
  const refuse = new URL('../helpers/refuse-typescript.mjs', import.meta.url).pathname;
  // --offload always: every body is decoded on the pool, so its threads must have started.
  const child = spawn(process.execPath, ['--import', refuse, BIN, '--port', '0', '--shards', '2', '--decode-threads', '2', '--offload', 'always', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = (await lines.next()).value;
  assert.ok(first?.startsWith('{'), `no start line; stderr: ${stderr}`);
  const url = `http://${(JSON.parse(first) as { address: string }).address}`;
  const now = Math.floor(Date.now() / 1000);
  const body = JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ timestamp: now, [`d${i}.example`]: i + 1 })));
  const posted = await request(`${url}/api/events`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  assert.deepEqual([posted.status, posted.body], [200, { accepted: 20, counters: 20 }], stderr);
  // The window that held `now` when the counters were posted, whenever the query runs.
  const open = await request(`${url}/api/stats?window=minute&open=true&at=${now}&limit=1`);
  assert.equal(open.body.total, 210, 'both shards applied their parts');
  child.kill('SIGTERM');
  assert.equal((await once(child, 'exit'))[0], 0);
  assert.doesNotMatch(stderr, /may not load/);
});
