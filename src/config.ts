// Every setting in one table: its flag, its environment variable, its default and how to parse it.
// `toptally --help` is printed from the same table.

import { availableParallelism } from 'node:os';

export interface Config {
  port: number;
  host: string;
  shards: number;
  maxBody: number;
  retainMinutes: number;
  retainHours: number;
  maxFuture: number;
  logLevel: string;
  dataDir: string;
  durability: 'fsync' | 'interval' | 'off';
  repair: boolean;
}

interface Option<K extends keyof Config> {
  key: K;
  flag: string;
  env: string;
  help: string;
  default: () => Config[K];
  parse: (raw: string) => Config[K];
  /** A switch: `--flag` alone means true. */
  boolean?: true;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const integer = (min: number, max: number) => (raw: string): number => {
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw) || value < min || value > max) {
    throw new ConfigError(`expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
};

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 2 ** 20, mb: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gb: 2 ** 30, gib: 2 ** 30 };

export function parseSize(raw: string): number {
  const match = /^([0-9]+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined || Number(match[1]) === 0) {
    throw new ConfigError(`expected a size such as 8MiB, 512KiB or 1048576, got ${JSON.stringify(raw)}`);
  }
  return Number(match[1]) * unit;
}

const oneOf = <T extends string>(choices: T[]) => (raw: string): T => {
  if (!(choices as string[]).includes(raw)) throw new ConfigError(`expected one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
};

const bool = (raw: string): boolean => {
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no', ''].includes(raw)) return false;
  throw new ConfigError(`expected true or false, got ${JSON.stringify(raw)}`);
};

function option<K extends keyof Config>(o: Option<K>): Option<K> {
  return o;
}

export const OPTIONS = [
  option({ key: 'port', flag: 'port', env: 'PORT', help: 'TCP port to listen on (0 picks a free one)', default: () => 5000, parse: integer(0, 65535) }),
  option({ key: 'host', flag: 'host', env: 'HOST', help: 'address to bind', default: () => '127.0.0.1', parse: (raw) => raw }),
  option({ key: 'shards', flag: 'shards', env: 'SHARDS', help: 'shard worker threads', default: () => availableParallelism(), parse: integer(1, 256) }),
  option({ key: 'maxBody', flag: 'max-body', env: 'MAX_BODY', help: 'largest request body accepted', default: () => 8 * 2 ** 20, parse: parseSize }),
  option({ key: 'retainMinutes', flag: 'retain-minutes', env: 'RETAIN_MINUTES', help: 'closed minute windows kept', default: () => 120, parse: integer(1, 100_000) }),
  option({ key: 'retainHours', flag: 'retain-hours', env: 'RETAIN_HOURS', help: 'closed hour windows kept', default: () => 24, parse: integer(1, 10_000) }),
  option({ key: 'maxFuture', flag: 'max-future', env: 'MAX_FUTURE', help: 'seconds a timestamp may be ahead of the clock', default: () => 300, parse: integer(0, 86_400) }),
  option({ key: 'dataDir', flag: 'data-dir', env: 'DATA_DIR', help: 'where counters are kept across restarts (created on start)', default: () => './data', parse: (raw) => raw }),
  option({ key: 'durability', flag: 'durability', env: 'DURABILITY', help: 'fsync: ack once on disk; interval: fsync every second; off: memory only', default: () => 'fsync' as const, parse: oneOf(['fsync', 'interval', 'off']) }),
  option({ key: 'repair', flag: 'repair', env: 'REPAIR', help: 'start despite damaged data: keep what is intact, report what is dropped', default: () => false, parse: bool, boolean: true }),
  option({ key: 'logLevel', flag: 'log-level', env: 'LOG_LEVEL', help: 'log level', default: () => 'info', parse: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) }),
] as const;

/** Flags win over environment variables, which win over defaults. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (see --help)`);
    const isSwitch = OPTIONS.some((o) => o.flag === match[1] && 'boolean' in o);
    const value = match[2] ?? (isSwitch ? 'true' : argv[++i]);
    if (value === undefined) throw new ConfigError(`--${match[1]} needs a value`);
    flags.set(match[1], value);
  }
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const o of OPTIONS) {
    const fromFlag = flags.has(o.flag);
    const raw = fromFlag ? flags.get(o.flag) : env[o.env];
    flags.delete(o.flag);
    try {
      config[o.key] = raw === undefined ? o.default() : o.parse(raw);
    } catch (err) {
      const source = fromFlag ? `--${o.flag}` : `${o.env} (--${o.flag})`;
      throw new ConfigError(`${source}: ${(err as Error).message}`);
    }
  }
  const unknown = [...flags.keys()];
  if (unknown.length > 0) throw new ConfigError(`unknown option --${unknown[0]} (see --help)`);
  return config as Config;
}

export function helpText(): string {
  const rows = OPTIONS.map((o) => {
    const def = o.key === 'shards' ? 'number of CPUs' : String(o.default());
    return `  --${o.flag.padEnd(16)} ${o.help} [env ${o.env}, default ${def}]`;
  });
  return [
    'toptally — exact top-10 domains of the last round minute and hour',
    '',
    'Usage: toptally [options]      start the service',
    '       toptally --help         show this text',
    '',
    'Options:',
    ...rows,
  ].join('\n');
}
