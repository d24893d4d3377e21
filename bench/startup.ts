/**
 * Start-up benchmark: how long toptally takes from spawn to its listening line, and its resident
 * memory (all threads: the I/O thread, the shard workers, the decode pool) once listening and a
 * second later, for the build (`node bin/toptally.js`, what `npm start` runs) against the same
 * sources compiled at run time by tsx in every thread (`node --import tsx src/main.ts`). The two
 * alternate run by run so that noise from other work on the machine falls on both.
 *
 *   npm run build && node --import tsx bench/startup.ts [--runs 10] [--shards 2]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './lib/stats.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, shards: { type: 'string', default: '2' } } });
const RUNS = Number(values.runs);
const ROOT = new URL('..', import.meta.url).pathname;

const VARIANTS = {
  build: ['bin/toptally.js'],
  tsx: ['--import', 'tsx', 'src/main.ts'],
} as const;
type Variant = keyof typeof VARIANTS;

interface Sample {
  listenMs: number;
  /** The service's own startupMs (from startToptally's entry to listening). */
  startupMs: number;
  rssListenMiB: number;
  rssSettledMiB: number;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  return kib / 1024;
}

async function once(variant: Variant): Promise<Sample> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'toptally-startup-'));
  const started = performance.now();
  const child = spawn(process.execPath, [...VARIANTS[variant], '--port', '0', '--shards', values.shards!, '--data-dir', dataDir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const line = await new Promise<{ startupMs: number }>((resolve, reject) => {
      let pending = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        pending += chunk;
        for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
          const parsed = JSON.parse(pending.slice(0, nl)) as { address?: string; startupMs: number };
          pending = pending.slice(nl + 1);
          if (parsed.address) resolve(parsed);
        }
      });
      child.once('exit', (code) => reject(new Error(`${variant} exited with ${code} before listening`)));
      setTimeout(() => reject(new Error(`${variant} did not listen within 30 s`)), 30_000).unref();
    });
    const listenMs = performance.now() - started;
    const rssListenMiB = rssMiB(child.pid!);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return { listenMs, startupMs: line.startupMs, rssListenMiB, rssSettledMiB: rssMiB(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const samples: Record<Variant, Sample[]> = { build: [], tsx: [] };
await once('tsx'); // tsx fills its transform cache on a first run: measure both warm
for (let run = 0; run < RUNS; run++) {
  for (const variant of run % 2 === 0 ? (['build', 'tsx'] as const) : (['tsx', 'build'] as const)) samples[variant].push(await once(variant));
}

const fields = ['listenMs', 'startupMs', 'rssListenMiB', 'rssSettledMiB'] as const;
const table = Object.fromEntries(
  (Object.keys(samples) as Variant[]).map((variant) => {
    const row: Record<string, string> = {};
    for (const field of fields) {
      const xs = samples[variant].map((s) => s[field]);
      row[field] = `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
    }
    return [variant, row];
  }),
);
console.log(`median (min–max) of ${RUNS} runs each, --shards ${values.shards}, Node ${process.version}, ${os.cpus().length} CPUs`);
console.table(table);
const ratio = (field: (typeof fields)[number]): string =>
  (median(samples.tsx.map((s) => s[field])) / median(samples.build.map((s) => s[field]))).toFixed(2);
console.log(`tsx / build: listen ${ratio('listenMs')}×, settled RSS ${ratio('rssSettledMiB')}×`);
console.log(JSON.stringify({ runs: RUNS, samples }));
