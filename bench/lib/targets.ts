/** The servers a run compares: toptally (the subject) and the baselines under bench/baselines. */
import type { Transport } from '../scenarios/types.js';
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
  ];
}
