/** The servers a run compares: toptally (the subject) and the baselines under bench/baselines. */
import type { Transport } from '../scenarios/types.js';
import { REDIS_SERVER_PATH, redisPresent, redisVersion } from './redis-load.js';
import { pinning, type ProcessSpec } from './server-process.js';

export interface Target {
  name: string;
  /** True for the system under test; every other target is a baseline it is compared with. */
  subject: boolean;
  transports: readonly Transport[];
  /** Human-readable command, for the report. */
  command: string;
  /** `dataDir` is an empty directory of the cell's own (toptally keeps its journal there). */
  spec(port: number, dataDir: string): ProcessSpec;
  /** Only in these scenarios (by default every one whose transport it speaks). */
  scenarios?: readonly string[];
  /** A load generator of its own (an entry file), which replays the scenario in its own protocol. */
  generator?: string;
}

export const DEFAULT_TOPTALLY_CMD = 'node bin/toptally.js --port {port} --shards 2';

/**
 * toptally's command comes from TOPTALLY_CMD (whitespace-separated, no shell quoting; `{port}` and
 * `{dataDir}` are replaced, and PORT and TOPTALLY_DATA_DIR are set too). A leading `node` means this Node binary.
 * TOPTALLY_DURABILITY and the other settings it reads from the environment pass through from the harness's.
 * `toptally-off` is the same command with `--durability off`: the row target 6 compares with.
 */
function toptally(name: string, extra: readonly string[], transports: readonly Transport[]): Target {
  const template = [process.env['TOPTALLY_CMD']?.trim() || DEFAULT_TOPTALLY_CMD, ...extra].join(' ');
  return {
    name,
    subject: extra.length === 0,
    transports,
    command: template,
    spec: (port, dataDir) => {
      const [command, ...args] = template.replaceAll('{port}', String(port)).replaceAll('{dataDir}', dataDir).split(/\s+/);
      return {
        name,
        command: command === 'node' ? process.execPath : command!,
        args,
        env: { PORT: String(port), TOPTALLY_DATA_DIR: dataDir },
        ...pinned(),
      };
    },
  };
}

function baseline(name: string, transports: readonly Transport[]): Target {
  const file = `bench/baselines/${name}.ts`;
  return {
    name,
    subject: false,
    transports,
    command: `node --import tsx ${file}`,
    spec: (port) => ({
      name,
      command: process.execPath,
      args: ['--import', 'tsx', file],
      env: { PORT: String(port) },
      ...pinned(),
    }),
  };
}

/**
 * Redis with its append-only file fsynced before every reply (`appendfsync always`), the durable store
 * many users would reach for instead: S's three ZINCRBYs per request, pipelined, from
 * bench/lib/redis-load.ts. Listed only when redis-server is installed.
 */
function redisFsync(): Target {
  const args = (port: number | string, dataDir: string): string[] =>
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no'];
  return {
    name: 'redis-fsync',
    subject: false,
    transports: ['http'],
    scenarios: ['S'],
    generator: 'bench/lib/redis-load.ts',
    command: `${REDIS_SERVER_PATH} (${redisVersion()}) ${args('{port}', '{dataDir}').join(' ').replace('--save  ', "--save '' ")}`,
    spec: (port, dataDir) => ({ name: 'redis-fsync', command: REDIS_SERVER_PATH, args: args(port, dataDir), ready: 'redis', ...pinned() }),
  };
}

function pinned(): { cpu?: number } {
  return pinning === undefined ? {} : { cpu: pinning.server };
}

export function allTargets(): Target[] {
  return [
    toptally('toptally', [], ['http', 'ws']),
    toptally('toptally-off', ['--durability', 'off'], ['http']),
    baseline('ceiling', ['http']),
    baseline('naive-uws', ['http']),
    baseline('naive-fastify', ['http']),
    baseline('naive-ws', ['ws']),
    ...(redisPresent() ? [redisFsync()] : []),
  ];
}
