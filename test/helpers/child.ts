// toptally as a child process (bin/toptally.js, real clock), for the tests that kill it. Its port is
// read from the start-up log line, which carries `address`.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Child {
  process: ChildProcess;
  url: string;
  /** Every stdout line so far (JSON logs). */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  /**
   * The shell's `ulimit -f` (512-byte blocks in dash) for the process: a write past it fails with
   * EFBIG, a real write failure that needs no full disk and no privileges.
   */
  fileSizeBlocks?: number;
}

/** Runs `bin/toptally.js args`; resolves once it listens, rejects with its stderr if it exits first. */
export function spawnToptally(t: Pick<TestContext, 'after'>, args: string[], options: SpawnOptions = {}): Promise<Child> {
  const argv = ['bin/toptally.js', '--port', '0', '--shards', '2', ...args];
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  const child =
    options.fileSizeBlocks === undefined
      ? spawn(process.execPath, argv, { cwd: ROOT, stdio })
      : spawn('/bin/sh', ['-c', `ulimit -f ${options.fileSizeBlocks} && exec "$0" "$@"`, process.execPath, ...argv], { cwd: ROOT, stdio });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }) as { code: number | null; signal: NodeJS.Signals | null });
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        lines.push(line);
        const address = (JSON.parse(line) as { address?: string }).address;
        if (address) resolve({ process: child, url: `http://${address}`, lines, exited });
      }
    });
    void exited.then(({ code, signal }) => reject(Object.assign(new Error(`toptally exited (${code ?? signal}): ${stderr}`), { code, stderr })));
  });
}
