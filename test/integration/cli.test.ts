// The toptally command as operators run it: a real process, its output and its exit code.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultHelp, envHelp, OPTIONS } from '../../src/config.ts';
import { request } from '../helpers/server.ts';

const BIN = fileURLToPath(new URL('../../bin/toptally.js', import.meta.url));
// Only PATH, and a fresh data directory: no PORT, LOG_LEVEL or TOPTALLY_CONFIG from the environment
// running the tests, and no ./data left behind.
const DATA_DIR = mkdtempSync(path.join(os.tmpdir(), 'toptally-cli-'));
after(() => rmSync(DATA_DIR, { recursive: true, force: true }));
const ENV = { PATH: process.env.PATH, TOPTALLY_DATA_DIR: DATA_DIR };
/** npm itself needs a home for its cache. */
const ENV_WITH_HOME = { ...ENV, HOME: process.env.HOME ?? os.homedir() };

function toptally(args: string[]) {
  return spawn(process.execPath, [BIN, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = toptally(args);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

test('--help lists every option with its flag, environment variable and default', async () => {
  const { code, stdout, stderr } = await run(['--help']);
  assert.equal(code, 0);
  assert.equal(stderr, '');
  const lines = stdout.split('\n');
  for (const o of OPTIONS) {
    const def = defaultHelp(o);
    const line = lines.find((l) => l.startsWith(`  --${o.flag} `));
    assert.ok(line, `--${o.flag} is listed`);
    assert.ok(line.endsWith(`[env ${envHelp(o)}, default ${def}]`), line);
  }
  assert.ok(lines.some((l) => l.startsWith('  --config ') && l.endsWith('[env TOPTALLY_CONFIG, default none]')));
});

test('an invalid setting stops start-up with one clear line and exit code 2', async () => {
  const bad = await run(['--port', 'nope']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  assert.equal(bad.stderr, 'toptally: --port: expected a whole number from 0 to 65535, got "nope"\n');

  const missing = await run(['--config', '/nonexistent/toptally.json']);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, 'toptally: config file /nonexistent/toptally.json: cannot be read as JSON: ENOENT\n');
});

test('an unknown flag, even one with no value after it, says "unknown option" and exits 2', async () => {
  const bogus = await run(['--bogus']);
  assert.deepEqual([bogus.code, bogus.stdout, bogus.stderr], [2, '', 'toptally: unknown option --bogus (see --help)\n']);
  const afterKnown = await run(['--port', '0', '--bogus', 'x']);
  assert.deepEqual([afterKnown.code, afterKnown.stderr], [2, 'toptally: unknown option --bogus (see --help)\n']);
});

test('--version prints the package version and exits 0', async () => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.match(version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(await run(['--version']), { code: 0, stdout: `${version}\n`, stderr: '' });
});

test('an address it cannot listen on stops start-up with one line and exit code 1', async () => {
  // 192.0.2.1 is TEST-NET-1: never an address of this machine.
  const { code, stdout, stderr } = await run(['--host', '192.0.2.1', '--port', '0', '--shards', '1']);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.equal(stderr, 'toptally: cannot listen on 192.0.2.1:0: EADDRNOTAVAIL\n');
});

test('logs one JSON line at start, two at stop (signal, stopped), none per request, and exits 0', async () => {
  const child = toptally(['--port', '0', '--shards', '1']);
  const exited = once(child, 'exit');
  const stdout = createInterface({ input: child.stdout });
  const closed = once(stdout, 'close');
  const lines: Record<string, unknown>[] = [];
  stdout.on('line', (line) => lines.push(JSON.parse(line)));
  await once(stdout, 'line');
  const [started] = lines;
  // A warning: without tokens, anyone who can connect may ingest and read.
  assert.equal(started.level, 40);
  assert.equal(started.service, 'toptally');
  assert.equal(started.shards, 1);
  assert.match(String(started.msg), /^toptally listening on http:\/\/127\.0\.0\.1:[0-9]+ /);
  assert.match(String(started.msg), /; no --ingest-token or --read-token: anyone who can connect to this machine \(127\.0\.0\.1:[0-9]+\) may post counters and read stats$/);
  assert.deepEqual(started.open, ['ingest', 'read']);
  const url = `http://${started.address}`;

  const posted = await request(`${url}/api/events`, { method: 'POST', body: `{"timestamp": ${Math.floor(Date.now() / 1000)}, "A": 1}` });
  assert.equal(posted.status, 200);
  assert.equal((await request(`${url}/api/stats/minutes`)).status, 200);
  assert.equal((await request(`${url}/nope`)).status, 404);
  assert.equal((await request(`${url}/readyz`)).status, 200);

  child.kill('SIGTERM');
  const [code] = await exited;
  await closed;
  assert.equal(code, 0);
  assert.deepEqual(
    lines.slice(1).map(({ level, msg, signal }) => ({ level, msg, signal })),
    [
      { level: 30, msg: 'stopping: no new requests, answering those in flight', signal: 'SIGTERM' },
      { level: 30, msg: 'toptally stopped', signal: undefined },
    ],
  );
});

test('`npx toptally`, the form the README gives for a clone, runs this checkout\'s command without the registry', async () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const commands = readme.match(/^(?:npx )?toptally (?:send|watch)\b.*$/gm) ?? [];
  assert.ok(commands.length >= 2, 'the README shows the send and watch commands');
  for (const line of commands) assert.match(line, /^npx toptally (send|watch) /, line);
  // --offline: were the project's own bin not found, npm would look for a "toptally" package on the
  // registry; this way it fails instead.
  const child = spawn('npm', ['exec', '--offline', '--', 'toptally', 'send', '--help'], { cwd: root, env: ENV_WITH_HOME, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^Usage: toptally send \[options\] \[FILE\]/);
});
