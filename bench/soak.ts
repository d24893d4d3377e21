/**
 * Soak: a spawned toptally (tokens on, small limits) under mixed valid, invalid and aborted traffic
 * over HTTP and WebSocket, then the client's own tally compared with the server's answer for every
 * minute it sent to. Loopback only, bounded in time; the journal goes to a temporary directory.
 *
 *   node --import tsx bench/soak.ts [--quick] [--duration 180]
 *
 * --quick runs 20 s, the default 180 s. Prints a table and one JSON line; writes
 * bench/results/soak-<time>.json. Exit code 1 when the stats differ from the tally or the server died.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePort, repoRoot, ServerProcess } from './lib/server-process.js';
import { abortedHttp, invalidHttp, readers, slowLoris, validHttp, wsIngest, type Traffic } from './lib/soak-traffic.js';
import { ranked, Tally } from './lib/tally.js';

const { values: flags } = parseArgs({ options: { quick: { type: 'boolean', default: false }, duration: { type: 'string' } } });
const seconds = Number(flags.duration ?? (flags.quick ? 20 : 180));
if (!(seconds > 0 && seconds <= 600)) throw new Error('--duration must be 1 to 600 seconds');

const INGEST_TOKEN = 'soak-ingest-0123456789abcdef';
const READ_TOKEN = 'soak-read-0123456789abcdef';
const SERVER_ARGS = {
  shards: '2',
  'max-body': '1MiB',
  'max-counters': '1000',
  'max-domains': '100',
  'max-connections': '256',
  'body-timeout': '2s',
  'ws-idle-timeout': '10s',
  'max-shard-backlog': '64KiB',
  'log-level': 'warn',
};

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+([0-9]+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

const port = await freePort();
// The journal (fsync, the default) in a fresh directory, removed at the end.
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'toptally-soak-'));
const server = await ServerProcess.start(
  {
    name: 'toptally',
    command: process.execPath,
    args: ['bin/toptally.js', '--port', String(port), '--data-dir', dataDir, ...Object.entries(SERVER_ARGS).flatMap(([k, v]) => [`--${k}`, v])],
    // Tokens through the environment, as in production: not visible in ps.
    env: { TOPTALLY_INGEST_TOKEN: INGEST_TOKEN, TOPTALLY_READ_TOKEN: READ_TOKEN },
  },
  { port },
);
const pid = server.pid!;
const startRss = rssBytes(pid);
let peakRss = startRss;
const sampler = setInterval(() => {
  if (!server.hasExited) peakRss = Math.max(peakRss, rssBytes(pid));
}, 200);

const tally = new Tally();
const traffic: Traffic = {
  port,
  ingestToken: INGEST_TOKEN,
  readToken: READ_TOKEN,
  deadline: Date.now() + seconds * 1000,
  tally,
  seed: 42,
  universe: 500,
};
process.stderr.write(`soak: ${seconds} s against toptally on 127.0.0.1:${port} (pid ${pid})\n`);
const started = performance.now();
const [pushed] = await Promise.all([
  readers(traffic),
  ...Array.from({ length: 4 }, (_, i) => validHttp(traffic, i)),
  ...Array.from({ length: 2 }, (_, i) => wsIngest(traffic, i)),
  invalidHttp(traffic),
  abortedHttp(traffic),
  slowLoris(traffic),
  slowLoris(traffic),
]);
const elapsed = (performance.now() - started) / 1000;
await sleep(300); // the last samples of RSS after the load
clearInterval(sampler);

// Every minute the client sent to, as the server now answers it.
let compared = 0;
const mismatches: string[] = [];
for (const [minute, counts] of tally.minutes) {
  const res = await fetch(`http://127.0.0.1:${port}/api/stats?window=minute&open=true&at=${minute}&limit=1000`, {
    headers: { authorization: `Bearer ${READ_TOKEN}` },
  });
  const body = (await res.json()) as { top: unknown };
  compared++;
  if (JSON.stringify(body.top) !== JSON.stringify(ranked(counts))) mismatches.push(new Date(minute * 1000).toISOString());
}
const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${READ_TOKEN}` } })).text();
const serverRejected = Object.fromEntries(
  [...metrics.matchAll(/^toptally_rejected_total\{code="([A-Z_]+)"\} ([0-9]+)$/gm)].map((m) => [m[1], Number(m[2])]),
);
const alive = !server.hasExited;
await server.stop();
rmSync(dataDir, { recursive: true, force: true });

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const outcomes = [...tally.outcomes].sort((a, b) => b[1] - a[1]);
const lines = [
  `toptally soak: ${elapsed.toFixed(0)} s, 2 shards, loopback; server flags ${Object.entries(SERVER_ARGS).map(([k, v]) => `--${k} ${v}`).join(' ')}`,
  '',
  `| outcome | client saw | server counted (toptally_rejected_total) |`,
  `| --- | ---: | ---: |`,
  ...outcomes.map(([name, n]) => `| ${name} | ${n} | ${serverRejected[name] ?? ''} |`),
  '',
  `requests and messages handled: ${tally.handled} (${(tally.handled / elapsed).toFixed(0)}/s); counters acknowledged: ${tally.counters}; live pushes received: ${pushed}`,
  `server RSS: ${mib(startRss)} MiB at start, ${mib(peakRss)} MiB peak`,
  `server alive at the end: ${alive ? 'yes' : 'NO'}`,
  `final stats equal the client's tally: ${mismatches.length === 0 ? 'yes' : 'NO'} (${compared} minutes compared${mismatches.length ? `; differ: ${mismatches.join(', ')}` : ''})`,
];
process.stdout.write(lines.join('\n') + '\n');
const result = {
  seconds: elapsed,
  handled: tally.handled,
  countersAcknowledged: tally.counters,
  outcomes: Object.fromEntries(outcomes),
  serverRejected,
  rssStartBytes: startRss,
  rssPeakBytes: peakRss,
  alive,
  minutesCompared: compared,
  mismatches,
};
process.stdout.write(JSON.stringify(result) + '\n');
const dir = path.join(repoRoot, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2));
if (!alive || mismatches.length > 0) process.exitCode = 1;
