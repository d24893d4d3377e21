import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServer, T0, type TestServer } from '../helpers/server.ts';

const BIN = fileURLToPath(new URL('../../bin/toptally.js', import.meta.url));
const minuteStart = Math.floor(T0 / 60) * 60;
const lastMinute = minuteStart - 60;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

async function run(args: string[], stdin = ''): Promise<Run> {
  const child = start(args);
  child.stdin!.end(stdin);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

async function tempFile(t: TestContext, name: string, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'toptally-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

const wsUrl = (s: TestServer): string => s.url.replace('http', 'ws') + '/ws';

test('toptally send streams an NDJSON file and the server counts every line', async (t) => {
  const s = await startServer(t);
  // Plain ASCII lines take the byte-copy path; escapes, non-ASCII and "__proto__" must come out the same.
  const domains = ['a.example', 'b.example', 'c.example', '__proto__', 'ünïcode.example', 'quote"d.example', 'back\\slash.example'];
  const expected = new Map<string, number>();
  const lines: string[] = [];
  let entries = 0;
  for (let i = 0; i < 2500; i++) {
    const timestamp = i % 2 === 0 ? lastMinute + (i % 60) : String(lastMinute + (i % 60));
    const pairs: [string, unknown][] = [['timestamp', timestamp]];
    for (let d = 0; d < 1 + (i % 3); d++) {
      const domain = domains[(i + d * 3) % domains.length];
      const count = (i * 31 + d) % 17;
      pairs.push([domain, count]);
      expected.set(domain, (expected.get(domain) ?? 0) + count);
      entries++;
    }
    // fromEntries, not assignment: `counter.__proto__ = 3` would set no key at all.
    lines.push(JSON.stringify(Object.fromEntries(pairs)));
    if (i % 500 === 0) lines.push('', '   ');
  }
  lines[10] += '\r';
  const file = await tempFile(t, 'counters.ndjson', lines.join('\n') + '\n');

  const result = await run(['send', '--url', wsUrl(s), '--batch', '1000', '--quiet', file]);
  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
  assert.match(result.stdout, new RegExp(`^sent 2500 counters \\(${entries} domain entries\\) in `));

  const stats = await s.get('/api/stats?window=minute&limit=1000');
  const reference = [...expected]
    .map(([domain, count]) => ({ domain, count }))
    .sort((a, b) => b.count - a.count || (a.domain < b.domain ? -1 : 1));
  assert.deepEqual(stats.body.top, reference);
});

test('toptally send reads stdin, reports the line the server refused, and keeps what was acked before', async (t) => {
  const s = await startServer(t);
  const input = [
    JSON.stringify({ timestamp: lastMinute, A: 1 }),
    JSON.stringify({ timestamp: lastMinute, A: 2 }),
    JSON.stringify({ timestamp: lastMinute, B: 5 }),
    JSON.stringify({ timestamp: lastMinute, C: -1 }),
    JSON.stringify({ timestamp: lastMinute, D: 1 }),
  ].join('\n');
  const result = await run(['send', '--url', wsUrl(s), '--batch', '2', '--inflight', '1'], input);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /line 4: TOPTALLY_ERR_INVALID_COUNTER: The count of "C" must be a non-negative integer/);
  assert.match(result.stdout, /^sent 2 counters \(2 domain entries\)/);
  assert.deepEqual((await s.get('/api/stats/minutes')).body, [{ Domain: 'A', NumberOfRequests: 3 }]);
});

test('toptally send stops at a line that is not JSON, after sending the lines before it', async (t) => {
  const s = await startServer(t);
  const input = `${JSON.stringify({ timestamp: lastMinute, A: 1 })}\n{"timestamp": ${lastMinute}, "B": 1,}\n`;
  const result = await run(['send', '--url', wsUrl(s), '-'], input);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /line 2: not JSON/);
  assert.match(result.stdout, /^sent 1 counters/);
  assert.deepEqual((await s.get('/api/stats/minutes')).body, [{ Domain: 'A', NumberOfRequests: 1 }]);
});

test('toptally send adapts to a server whose in-flight limit is lower than its own', async (t) => {
  const s = await startServer(t, { maxInflight: 1 });
  const input = Array.from({ length: 100 }, (_, i) => JSON.stringify({ timestamp: lastMinute, A: i })).join('\n');
  const result = await run(['send', '--url', s.url, '--batch', '10', '--inflight', '8', '--quiet'], input);
  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^sent 100 counters/);
  assert.deepEqual((await s.get('/api/stats/minutes')).body, [{ Domain: 'A', NumberOfRequests: 4950 }]);
});

test('toptally watch shows the top 10 and redraws it live', async (t) => {
  const s = await startServer(t);
  assert.equal((await s.post({ timestamp: lastMinute + 5, A: 3, B: 4, C: 8 })).status, 200);
  const child = start(['watch', '--url', s.url, '--live']);
  t.after(() => child.kill());
  let output = '';
  const waitFor = async (pattern: RegExp): Promise<void> => {
    while (!pattern.test(output)) {
      const [chunk] = await Promise.race([
        once(child.stdout!, 'data'),
        once(child, 'exit').then(() => Promise.reject(new Error(`watch exited; output:\n${output}`))),
      ]);
      output += chunk;
    }
  };
  await waitFor(/last round minute 2020-12-16 07:09–07:10 UTC\n +1 +C +8\n +2 +B +4\n +3 +A +3\n/);

  assert.equal((await s.post({ timestamp: T0, D: 2 })).status, 200);
  s.clock.advance(1000);
  await waitFor(/running minute 2020-12-16 07:10–07:11 UTC \(live\)\n +1 +D +2\n/);

  s.clock.set((minuteStart + 60) * 1000);
  await waitFor(/last round minute 2020-12-16 07:10–07:11 UTC\n +1 +D +2\n\nrunning minute: no counters yet/);
  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});

test('send and watch take a token from --token, --token-file or TOPTALLY_TOKEN, sent as a header', async (t) => {
  const INGEST = 'ingest-token-0123456789';
  const READ = 'read-token-0123456789ab';
  const s = await startServer(t, { ingestTokens: [INGEST], readTokens: [READ] });
  const input = `{"timestamp":${lastMinute + 1},"A":1}\n`;
  const refused = await run(['send', '--url', s.url, '--quiet'], input);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /refused the connection \(401\): TOPTALLY_ERR_UNAUTHORIZED: .*; the server needs a token: --token, --token-file or TOPTALLY_TOKEN/);
  const wrong = await run(['send', '--url', s.url, '--quiet', '--token', 'not-a-valid-token-at-all'], input);
  assert.match(wrong.stderr, /\(401\).*; check the token/);

  assert.equal((await run(['send', '--url', s.url, '--quiet', '--token', INGEST], input)).code, 0);
  const file = await tempFile(t, 'token', `# the ingest token\n\n${INGEST}\n`);
  assert.equal((await run(['send', '--url', s.url, '--quiet', '--token-file', file], input)).code, 0);
  const child = spawn(process.execPath, [BIN, 'send', '--url', s.url, '--quiet'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TOPTALLY_TOKEN: INGEST } });
  child.stdin!.end(input);
  assert.equal((await once(child, 'close'))[0], 0, 'TOPTALLY_TOKEN');

  const watch = spawn(process.execPath, [BIN, 'watch', '--url', s.url], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TOPTALLY_TOKEN: READ } });
  t.after(() => watch.kill());
  let output = '';
  while (!/ +1 +A +3\n/.test(output)) {
    const [chunk] = await Promise.race([once(watch.stdout!, 'data'), once(watch, 'exit').then(() => Promise.reject(new Error(`watch exited: ${output}`)))]);
    output += chunk;
  }
});

/**
 * A TCP proxy at a fixed address in front of whichever server `target` names: a restart on the same
 * address without the 60 s wait the kernel imposes on a port its old connections are leaving.
 */
async function proxy(t: TestContext, target: () => number): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target(), '127.0.0.1');
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
      a.pipe(b);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

test('toptally watch reconnects when the server restarts, and shows the new server’s top', async (t) => {
  const first = await startServer(t);
  let current = first;
  const url = await proxy(t, () => current.app.port);
  assert.equal((await first.post({ timestamp: lastMinute + 5, A: 3 })).status, 200);
  const child = start(['watch', '--url', url]);
  t.after(() => child.kill());
  let output = '';
  let errors = '';
  child.stderr!.on('data', (chunk) => (errors += chunk));
  const waitFor = async (pattern: RegExp): Promise<void> => {
    while (!pattern.test(output)) {
      const [chunk] = await Promise.race([
        once(child.stdout!, 'data'),
        once(child, 'exit').then(() => Promise.reject(new Error(`watch exited; output:\n${output}\nstderr:\n${errors}`))),
      ]);
      output += chunk;
    }
  };
  await waitFor(/ +1 +A +3\n/);
  await first.app.stop();
  current = await startServer(t);
  assert.equal((await current.post({ timestamp: lastMinute + 5, B: 7 })).status, 200);
  await waitFor(/ +1 +B +7\n/);
  assert.match(errors, /the server closed the connection \(1001 server shutting down\); reconnecting\ntoptally watch: reconnected/);
  child.kill('SIGINT');
  assert.equal((await once(child, 'exit'))[0], 0);
});
