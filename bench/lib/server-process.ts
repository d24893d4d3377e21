/**
 * Child processes for the bench: servers and load generators run apart from the harness (and from each
 * other), pinned to separate cores when possible, and the server's CPU time is read from /proc so the
 * cost per request is the server's own, not an estimate from the generator side.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { clockTicksPerSecond, memoryOf, PPID, statFields, STIME, UTIME } from './proc.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface ProcessSpec {
  /** Shown in the report and in error messages. */
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** Core to pin to with `taskset -c`; ignored when pinning is unavailable. */
  cpu?: number;
  /** What a served port answers: any HTTP response (the default), or Redis's PONG. */
  ready?: 'http' | 'redis';
}

/** Cores for the server and the generator, or undefined when taskset or a second core is missing. */
export const pinning: { server: number; generator: number } | undefined = detectPinning();

function detectPinning(): { server: number; generator: number } | undefined {
  if (os.availableParallelism() < 2) return undefined;
  const works = (cpu: number) => spawnSync('taskset', ['-c', String(cpu), 'true']).status === 0;
  return works(0) && works(1) ? { server: 0, generator: 1 } : undefined;
}

const OUTPUT_TAIL_LINES = 20;

/** A spawned process that keeps the last lines of its output for error messages. */
export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly tailLines: string[] = [];
  private readonly lineListeners: Array<(line: string) => void> = [];
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(spec: ProcessSpec) {
    this.name = spec.name;
    const pinned = spec.cpu !== undefined && pinning !== undefined;
    const [command, args] = pinned
      ? ['taskset', ['-c', String(spec.cpu), spec.command, ...spec.args]]
      : [spec.command, spec.args];
    // taskset execs the command, so the pid below is the server's own and /proc reads are direct.
    this.child = spawn(command, args, {
      cwd: repoRoot,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      this.child.once('error', (error) => {
        this.remember(`spawn error: ${error.message}`);
        this.exitInfo = { code: null, signal: null };
        resolve(this.exitInfo);
      });
    });
    this.readLines(this.child.stdout, true);
    this.readLines(this.child.stderr, false);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** Calls `listener` for every later stdout line. */
  onLine(listener: (line: string) => void): void {
    this.lineListeners.push(listener);
  }

  tail(): string {
    return this.tailLines.join('\n');
  }

  describeExit(): string {
    const info = this.exitInfo;
    if (info === undefined) return `${this.name} is still running`;
    const how = info.signal !== null ? `signal ${info.signal}` : `code ${info.code}`;
    return `${this.name} exited with ${how}${this.reason()}`;
  }

  /** SIGTERM, then SIGKILL if it has not gone within `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.hasExited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** The most telling output: a `fatal:` line if any, else the last error-looking or plain lines. */
  private reason(): string {
    const lines = this.tailLines.map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('at '));
    const telling =
      lines.find((line) => line.startsWith('fatal:')) ??
      lines.filter((line) => /\b(Error|error)\b/.test(line)).pop() ??
      lines.slice(-2).join(' | ');
    return telling === '' ? '' : `: ${telling}`;
  }

  private readLines(stream: NodeJS.ReadableStream | null, isStdout: boolean): void {
    if (stream === null) return;
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        this.remember(line);
        if (isStdout) for (const listener of this.lineListeners) listener(line);
      }
    });
  }

  private remember(line: string): void {
    this.tailLines.push(line);
    if (this.tailLines.length > OUTPUT_TAIL_LINES) this.tailLines.shift();
  }
}

export interface ServerOptions {
  port: number;
  readyTimeoutMs?: number;
}

/** A server under test: started, awaited until it answers HTTP, measured, stopped. */
export class ServerProcess extends ManagedProcess {
  readonly port: number;

  private constructor(spec: ProcessSpec, port: number) {
    super(spec);
    this.port = port;
  }

  /** Spawns the server and resolves once any HTTP response comes back from its port. */
  static async start(spec: ProcessSpec, options: ServerOptions): Promise<ServerProcess> {
    const server = new ServerProcess(spec, options.port);
    try {
      await waitUntilServing(server, options.readyTimeoutMs ?? 20_000, spec.ready === 'redis' ? answersPing : answersHttp);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /** User + system CPU time of the server and any descendants (shard workers are threads, included). */
  cpuMs(): number {
    const pid = this.pid;
    if (pid === undefined) return 0;
    let ticks = 0;
    for (const p of processTree(pid)) ticks += readCpuTicks(p);
    return (ticks * 1000) / clockTicksPerSecond;
  }

  /** Resident memory of the server process itself (worker threads included: they share it). */
  memory(): { rssBytes: number; peakRssBytes: number } {
    if (this.pid === undefined) throw new Error(`${this.name} has no pid`);
    return memoryOf(this.pid);
  }
}

async function waitUntilServing(server: ServerProcess, timeoutMs: number, answers: (port: number) => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.hasExited) throw new Error(server.describeExit());
    if (await answers(server.port)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${server.name} did not answer HTTP on 127.0.0.1:${server.port} within ${timeoutMs} ms`);
}

/** True on any HTTP response (404 included): the port is served, which is all readiness means here. */
function answersHttp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000 }, (response) => {
      response.resume();
      resolve(true);
    });
    request.once('timeout', () => request.destroy());
    request.once('error', () => resolve(false));
  });
}

/** True when a Redis server on the port answers PING (it refuses commands while it loads its files). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, timeout: 1000 });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/** A port that was free a moment ago on the loopback interface. */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  probe.close();
  await once(probe, 'close');
  if (address === null || typeof address === 'string') throw new Error('could not read a free port');
  return address.port;
}

function readCpuTicks(pid: number): number {
  const fields = statFields(pid);
  return fields === undefined ? 0 : Number(fields[UTIME]) + Number(fields[STIME]);
}

/**
 * CPU time all processes on the machine spent busy (all cores, from the `cpu` line of /proc/stat).
 * Compared with the server's and generator's own time, it shows when something else (a test run, a
 * build) competed for the cores during a measurement.
 */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu  user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy (guest
  // time is already counted inside user).
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1000) / clockTicksPerSecond;
}

/** `root` and its live descendants, in case the server command is a wrapper (npm, sh) around node. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const ppid = Number(statFields(pid)?.[PPID]);
    if (!Number.isInteger(ppid)) continue;
    const siblings = children.get(ppid);
    if (siblings === undefined) children.set(ppid, [pid]);
    else siblings.push(pid);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}
