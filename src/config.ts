// Every setting in one table: its flag, its environment variable, its default and how to parse it.
// `toptally --help` is printed from the same table. A setting comes from, in this order of
// precedence: a flag, an environment variable, the config file (--config), the default.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { DurabilityMode } from './durability/journal.ts';
import type { OffloadMode } from './ingest/offload-policy.ts';

export interface Config {
  port: number;
  host: string;
  shards: number;
  maxBody: number;
  retainMinutes: number;
  retainHours: number;
  maxFuture: number;
  decodeThreads: number;
  offload: OffloadMode;
  offloadBytes: number;
  logLevel: string;
  maxFrame: number;
  maxInflight: number;
  maxBackpressure: number;
  liveInterval: number;
  ingestTokens: string[];
  readTokens: string[];
  maxCounters: number;
  maxDomains: number;
  maxDomainBytes: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  bodyTimeout: number;
  maxInflightBytes: number;
  allowedHosts: string[];
  allowedOrigins: string[];
  wsIdleTimeout: number;
  maxShardBacklog: number;
  dataDir: string;
  durability: DurabilityMode;
  repair: boolean;
  redis: string[];
  partitions: number;
  nodeId: string;
  flushInterval: number;
  clusterAck: ClusterAck;
  maxUnflushed: number;
}

/** When a counter is acknowledged in cluster mode: in this node's journal, or applied in Redis and replicated. */
export type ClusterAck = 'journal' | 'cluster';

interface Option<K extends keyof Config> {
  key: K;
  flag: string;
  env: string;
  /** Read when `env` is not set: PORT, which hosting platforms set. */
  envAlias?: string;
  help: string;
  default: () => Config[K];
  /** How --help shows the default, when not as the value itself. */
  defaultHelp?: string;
  parse: (raw: string) => Config[K];
  /**
   * May be given more than once (flags, or an array in the config file); every value is parsed and
   * the lists are joined, also with other options of the same key (a token and a token file).
   */
  repeatable?: true;
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

/** A duration in milliseconds: `1s`, `500ms`, or a bare number of milliseconds. */
export function parseDuration(raw: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s)?$/i.exec(raw.trim());
  const ms = match ? Math.round(Number(match[1]) * (match[2]?.toLowerCase() === 's' ? 1000 : 1)) : NaN;
  if (!match || ms > 3_600_000) {
    throw new ConfigError(`expected a duration such as 1s or 500ms (at most 1 hour), got ${JSON.stringify(raw)}`);
  }
  return ms;
}

const oneOf = (choices: string[]) => (raw: string): string => {
  if (!choices.includes(raw)) throw new ConfigError(`expected one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw;
};

/** RFC 6750's b64token, long enough not to be guessed. */
const TOKEN = /^[A-Za-z0-9\-._~+/]{16,}=*$/;
const TOKEN_RULE = 'a token is at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (then optional = padding)';

/** One or more tokens, separated by commas or white space. Never echoed: it is a secret. */
function tokens(raw: string): string[] {
  const list = raw.split(/[\s,]+/).filter((token) => token !== '');
  if (list.length === 0) throw new ConfigError('expected a token');
  list.forEach((token, i) => {
    if (!TOKEN.test(token)) throw new ConfigError(`token ${i + 1} is refused: ${TOKEN_RULE}`);
  });
  return list;
}

/** Host names for --allowed-hosts: `*`, `name`, or `.domain` (it and its subdomains). */
function hostList(raw: string): string[] {
  const list = raw.split(/[\s,]+/).filter((host) => host !== '');
  for (const host of list) {
    if (host !== '*' && !/^\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(host)) {
      throw new ConfigError(`expected host names such as toptally.example.com or .example.com (no port), or *, got ${JSON.stringify(host)}`);
    }
  }
  return list;
}

/** Origins for --allowed-origins: `*`, or scheme://host[:port] as browsers send them. */
function originList(raw: string): string[] {
  const list = raw.split(/[\s,]+/).filter((origin) => origin !== '');
  for (const origin of list) {
    if (origin !== '*' && !/^https?:\/\/[a-z0-9.-]+(:[0-9]{1,5})?$|^https?:\/\/\[[0-9a-f:.]+\](:[0-9]{1,5})?$/i.test(origin)) {
      throw new ConfigError(`expected origins such as https://dash.example.com (scheme, host, optional port; no path), or *, got ${JSON.stringify(origin)}`);
    }
  }
  return list;
}

/** A file of tokens, one a line; blank lines and lines starting with # are skipped. */
function tokenFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = text.split('\n').map((line) => line.trim());
  const list = lines.filter((line) => line !== '' && !line.startsWith('#'));
  if (list.length === 0) throw new ConfigError(`${path} holds no token`);
  list.forEach((token) => {
    if (!TOKEN.test(token)) throw new ConfigError(`${path}: line ${lines.indexOf(token) + 1} is refused: ${TOKEN_RULE}`);
  });
  return list;
}

const bool = (raw: string): boolean => {
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no', ''].includes(raw)) return false;
  throw new ConfigError(`expected true or false, got ${JSON.stringify(raw)}`);
};

/** Seed URLs, redis://host:port, comma-separated. */
function redisUrls(raw: string): string[] {
  const list = raw.split(/[\s,]+/).filter((url) => url !== '');
  if (list.length === 0) throw new ConfigError('expected one or more URLs such as redis://127.0.0.1:7000');
  for (const url of list) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      // reported below
    }
    if (parsed?.protocol !== 'redis:' || !parsed.hostname) throw new ConfigError(`expected a URL such as redis://127.0.0.1:7000, got ${JSON.stringify(url)}`);
  }
  return list;
}

const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function option<K extends keyof Config>(o: Option<K>): Option<K> {
  return o;
}

export const OPTIONS = [
  option({ key: 'port', flag: 'port', env: 'TOPTALLY_PORT', envAlias: 'PORT', help: 'TCP port to listen on (0 picks a free one)', default: () => 5000, parse: integer(0, 65535) }),
  option({ key: 'host', flag: 'host', env: 'TOPTALLY_HOST', help: 'address to bind', default: () => '127.0.0.1', parse: (raw) => raw }),
  option({ key: 'shards', flag: 'shards', env: 'TOPTALLY_SHARDS', help: 'shard worker threads', default: () => availableParallelism(), defaultHelp: 'number of CPUs', parse: integer(1, 256) }),
  option({ key: 'maxBody', flag: 'max-body', env: 'TOPTALLY_MAX_BODY', help: 'largest request body accepted', default: () => 8 * 2 ** 20, defaultHelp: '8MiB', parse: parseSize }),
  option({ key: 'retainMinutes', flag: 'retain-minutes', env: 'TOPTALLY_RETAIN_MINUTES', help: 'closed minute windows kept', default: () => 120, parse: integer(1, 100_000) }),
  option({ key: 'retainHours', flag: 'retain-hours', env: 'TOPTALLY_RETAIN_HOURS', help: 'closed hour windows kept', default: () => 24, parse: integer(1, 10_000) }),
  option({ key: 'maxFuture', flag: 'max-future', env: 'TOPTALLY_MAX_FUTURE', help: 'seconds a timestamp may be ahead of the clock', default: () => 300, parse: integer(0, 86_400) }),
  option({ key: 'decodeThreads', flag: 'decode-threads', env: 'TOPTALLY_DECODE_THREADS', help: 'decode pool threads', default: () => availableParallelism(), defaultHelp: 'number of CPUs', parse: integer(1, 256) }),
  option({ key: 'offload', flag: 'offload', env: 'TOPTALLY_OFFLOAD', help: 'decode bodies on the pool: auto (bodies of --offload-bytes or more), always, never', default: () => 'auto' as OffloadMode, parse: oneOf(['auto', 'always', 'never']) as (raw: string) => OffloadMode }),
  option({ key: 'offloadBytes', flag: 'offload-bytes', env: 'TOPTALLY_OFFLOAD_BYTES', help: 'smallest body auto mode decodes on the pool', default: () => 256 * 1024, defaultHelp: '256KiB', parse: parseSize }),
  option({ key: 'maxFrame', flag: 'max-frame', env: 'TOPTALLY_MAX_FRAME', help: 'largest WebSocket message accepted (larger ones close with 1009)', default: () => 2 ** 20, defaultHelp: '1MiB', parse: parseSize }),
  option({ key: 'maxInflight', flag: 'max-inflight', env: 'TOPTALLY_MAX_INFLIGHT', help: 'unacknowledged events messages a WebSocket may have', default: () => 64, parse: integer(1, 65_536) }),
  option({ key: 'maxBackpressure', flag: 'max-backpressure', env: 'TOPTALLY_MAX_BACKPRESSURE', help: 'bytes queued for a slow WebSocket before it is closed with 1013', default: () => 2 ** 20, defaultHelp: '1MiB', parse: parseSize }),
  option({ key: 'liveInterval', flag: 'live-interval', env: 'TOPTALLY_LIVE_INTERVAL', help: 'least time between two live top-N pushes (ms, or 1s, 500ms)', default: () => 1000, defaultHelp: '1s', parse: parseDuration }),
  option({ key: 'ingestTokens', flag: 'ingest-token', env: 'TOPTALLY_INGEST_TOKEN', help: 'a token that may post counters; repeatable, or comma-separated (none: ingest is open)', default: () => [], defaultHelp: 'none', parse: tokens, repeatable: true }),
  option({ key: 'ingestTokens', flag: 'ingest-token-file', env: 'TOPTALLY_INGEST_TOKEN_FILE', help: 'a file of ingest tokens, one a line; repeatable', default: () => [], defaultHelp: 'none', parse: tokenFile, repeatable: true }),
  option({ key: 'readTokens', flag: 'read-token', env: 'TOPTALLY_READ_TOKEN', help: 'a token that may read stats, metrics and subscribe; repeatable, or comma-separated (none: reading is open)', default: () => [], defaultHelp: 'none', parse: tokens, repeatable: true }),
  option({ key: 'readTokens', flag: 'read-token-file', env: 'TOPTALLY_READ_TOKEN_FILE', help: 'a file of read tokens, one a line; repeatable', default: () => [], defaultHelp: 'none', parse: tokenFile, repeatable: true }),
  option({ key: 'maxCounters', flag: 'max-counters', env: 'TOPTALLY_MAX_COUNTERS', help: 'counter objects in one request or events message', default: () => 100_000, parse: integer(1, 10_000_000) }),
  option({ key: 'maxDomains', flag: 'max-domains', env: 'TOPTALLY_MAX_DOMAINS', help: 'domains in one counter object', default: () => 10_000, parse: integer(1, 10_000_000) }),
  option({ key: 'maxDomainBytes', flag: 'max-domain-bytes', env: 'TOPTALLY_MAX_DOMAIN_BYTES', help: 'UTF-8 bytes of one domain', default: () => 255, parse: integer(1, 255) }),
  option({ key: 'maxConnections', flag: 'max-connections', env: 'TOPTALLY_MAX_CONNECTIONS', help: 'open WebSockets plus HTTP requests in progress; more are refused with 503', default: () => 4096, parse: integer(1, 1_000_000) }),
  option({ key: 'maxConnectionsPerAddress', flag: 'max-connections-per-address', env: 'TOPTALLY_MAX_CONNECTIONS_PER_ADDRESS', help: 'open WebSockets one client address may hold; more are refused with 503', default: () => 1024, parse: integer(1, 1_000_000) }),
  option({ key: 'bodyTimeout', flag: 'body-timeout', env: 'TOPTALLY_BODY_TIMEOUT', help: 'longest time to receive a request body (0: no limit but uWS\'s own)', default: () => 30_000, defaultHelp: '30s', parse: parseDuration }),
  option({ key: 'maxInflightBytes', flag: 'max-inflight-bytes', env: 'TOPTALLY_MAX_INFLIGHT_BYTES', help: 'bytes of all request bodies being received or decoded together; past it a body gets 503', default: () => 64 * 2 ** 20, defaultHelp: '64MiB', parse: parseSize }),
  option({ key: 'allowedHosts', flag: 'allowed-hosts', env: 'TOPTALLY_ALLOWED_HOSTS', help: 'Host names answered besides IP addresses, localhost and --host (DNS-rebinding defence); repeatable or comma-separated, .example.com for a domain, * for any', default: () => [], defaultHelp: 'none', parse: hostList, repeatable: true }),
  option({ key: 'allowedOrigins', flag: 'allowed-origins', env: 'TOPTALLY_ALLOWED_ORIGINS', help: 'web origins (https://dash.example.com) whose pages may use the API, with CORS; repeatable or comma-separated, * for any', default: () => [], defaultHelp: 'none', parse: originList, repeatable: true }),
  option({ key: 'wsIdleTimeout', flag: 'ws-idle-timeout', env: 'TOPTALLY_WS_IDLE_TIMEOUT', help: 'a WebSocket that sends nothing, not even a pong, for this long is closed (0: never)', default: () => 120_000, defaultHelp: '120s', parse: parseDuration }),
  option({ key: 'maxShardBacklog', flag: 'max-shard-backlog', env: 'TOPTALLY_MAX_SHARD_BACKLOG', help: 'counter bytes a shard may owe before new ingest for it gets 503', default: () => 64 * 2 ** 20, defaultHelp: '64MiB', parse: parseSize }),
  option({ key: 'dataDir', flag: 'data-dir', env: 'TOPTALLY_DATA_DIR', help: 'where counters are kept across restarts (created on start)', default: () => './data', parse: (raw) => raw }),
  option({ key: 'durability', flag: 'durability', env: 'TOPTALLY_DURABILITY', help: 'fsync: ack once on disk; interval: fsync every second; off: memory only', default: () => 'fsync' as DurabilityMode, parse: oneOf(['fsync', 'interval', 'off']) as (raw: string) => DurabilityMode }),
  option({ key: 'repair', flag: 'repair', env: 'TOPTALLY_REPAIR', help: 'start despite damaged data: keep what is intact, report what is dropped', default: () => false, parse: bool, boolean: true }),
  option({ key: 'redis', flag: 'redis', env: 'TOPTALLY_REDIS', help: 'cluster mode: Redis seed URLs, comma-separated (a Redis Cluster is discovered; a single Redis works too); none: local mode', default: () => [], defaultHelp: 'none', parse: redisUrls }),
  option({ key: 'partitions', flag: 'partitions', env: 'TOPTALLY_PARTITIONS', help: 'cluster mode: how domains are spread over Redis; fixed for a cluster', default: () => 64, parse: integer(1, 16384) }),
  option({ key: 'nodeId', flag: 'node-id', env: 'TOPTALLY_NODE_ID', help: 'cluster mode: this node\'s name (1-64 of A-Z a-z 0-9 . _ -)', default: () => '', defaultHelp: 'generated once, kept in the data directory', parse: (raw) => { if (!NODE_ID.test(raw)) throw new ConfigError(`expected 1 to 64 of A-Z a-z 0-9 . _ -, got ${JSON.stringify(raw)}`); return raw; } }),
  option({ key: 'flushInterval', flag: 'flush-interval', env: 'TOPTALLY_FLUSH_INTERVAL', help: 'cluster mode: how often counters go to Redis', default: () => 100, defaultHelp: '100ms', parse: (raw) => { const ms = parseDuration(raw); if (ms < 1) throw new ConfigError('expected at least 1ms'); return ms; } }),
  option({ key: 'clusterAck', flag: 'cluster-ack', env: 'TOPTALLY_CLUSTER_ACK', help: 'cluster mode: journal: ack once in this node\'s journal; cluster: once applied in Redis and replicated', default: () => 'journal' as ClusterAck, parse: oneOf(['journal', 'cluster']) as (raw: string) => ClusterAck }),
  option({ key: 'maxUnflushed', flag: 'max-unflushed', env: 'TOPTALLY_MAX_UNFLUSHED', help: 'cluster mode: journaled bytes not yet in Redis before ingest gets 503', default: () => 256 * 2 ** 20, defaultHelp: '256MiB', parse: parseSize }),
  option({ key: 'logLevel', flag: 'log-level', env: 'TOPTALLY_LOG_LEVEL', help: `log level (${LOG_LEVELS.join(', ')})`, default: () => 'info', parse: oneOf(LOG_LEVELS) }),
] as const;

/** The environment variable a setting is read from, when one of its names is set. */
function envName(o: (typeof OPTIONS)[number], env: NodeJS.ProcessEnv): string | undefined {
  if (env[o.env] !== undefined) return o.env;
  return o.envAlias !== undefined && env[o.envAlias] !== undefined ? o.envAlias : undefined;
}

/** The config file's own option: a path, so it is not part of Config. */
export const CONFIG_FILE_OPTION = { flag: 'config', env: 'TOPTALLY_CONFIG' } as const;

/** Flags win over environment variables, which win over the config file, which wins over defaults. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const flags = parseFlags(argv);
  const filePath = flags.get(CONFIG_FILE_OPTION.flag)?.at(-1) ?? env[CONFIG_FILE_OPTION.env];
  flags.delete(CONFIG_FILE_OPTION.flag);
  const file = filePath === undefined ? new Map<string, string[]>() : readConfigFile(filePath);
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const o of OPTIONS) {
    let raws: string[] | undefined;
    let source: string;
    const fromEnv = envName(o, env);
    if (flags.has(o.flag)) [raws, source] = [flags.get(o.flag), `--${o.flag}`];
    else if (fromEnv) [raws, source] = [[env[fromEnv]!], `${fromEnv} (--${o.flag})`];
    else [raws, source] = [file.get(o.flag), `${filePath}: "${o.flag}"`];
    flags.delete(o.flag);
    try {
      if (!('repeatable' in o)) config[o.key] = raws === undefined ? o.default() : o.parse(raws.at(-1)!);
      else config[o.key] = [...((config[o.key] as string[] | undefined) ?? []), ...(raws ?? []).flatMap((raw) => o.parse(raw))];
    } catch (err) {
      throw new ConfigError(`${source}: ${(err as Error).message}`);
    }
  }
  return config as Config;
}

/** Every value of every flag, in order: a repeatable option takes them all, any other the last. */
function parseFlags(argv: readonly string[]): Map<string, string[]> {
  const known = new Map<string, { type: 'string' | 'boolean'; multiple: true }>(
    [...OPTIONS, CONFIG_FILE_OPTION].map((o) => [o.flag, { type: 'boolean' in o ? 'boolean' : 'string', multiple: true }]),
  );
  const { tokens } = parseArgs({ args: [...argv], options: Object.fromEntries(known), strict: false, allowPositionals: true, tokens: true });
  const flags = new Map<string, string[]>();
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional' || !token.rawName.startsWith('--')) {
      const arg = token.kind === 'positional' ? token.value : token.rawName;
      throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (see --help)`);
    }
    const option = known.get(token.name);
    if (!option) throw new ConfigError(`unknown option --${token.name} (see --help)`);
    const value = token.value ?? (option.type === 'boolean' ? 'true' : undefined);
    if (value === undefined) throw new ConfigError(`--${token.name} needs a value`);
    flags.set(token.name, [...(flags.get(token.name) ?? []), value]);
  }
  return flags;
}

/** A JSON object whose keys are flag names: {"port": 5000, "max-body": "8MiB"}; a repeatable option may take an array. */
function readConfigFile(path: string): Map<string, string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`config file ${path}: cannot be read as JSON: ${reason}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path}: expected a JSON object such as {"port": 5000}`);
  }
  const values = new Map<string, string[]>();
  for (const [key, value] of Object.entries(parsed)) {
    const o = OPTIONS.find((option) => option.flag === key);
    if (!o) throw new ConfigError(`${path}: unknown option ${JSON.stringify(key)} (see --help)`);
    const list: unknown[] = Array.isArray(value) && 'repeatable' in o ? value : [value];
    for (const item of list) {
      if (typeof item !== 'string' && typeof item !== 'number') {
        const expected = 'repeatable' in o ? 'a string, a number or an array of them' : 'a string or a number';
        throw new ConfigError(`${path}: "${key}": expected ${expected}, got ${JSON.stringify(value)}`);
      }
    }
    values.set(key, list.map(String));
  }
  return values;
}

export function defaultHelp(o: (typeof OPTIONS)[number]): string {
  return o.defaultHelp ?? String(o.default());
}

/** A setting's environment variables as --help and the README name them: `TOPTALLY_PORT or PORT`. */
export function envHelp(o: (typeof OPTIONS)[number]): string {
  return o.envAlias === undefined ? o.env : `${o.env} or ${o.envAlias}`;
}

export function helpText(): string {
  const rows = OPTIONS.map((o) => {
    return `  --${o.flag.padEnd(17)} ${o.help} [env ${envHelp(o)}, default ${defaultHelp(o)}]`;
  });
  const { flag, env } = CONFIG_FILE_OPTION;
  rows.push(`  --${flag.padEnd(17)} JSON file of options, keys as the flags: {"port": 5000} [env ${env}, default none]`);
  return [
    'toptally — exact top-10 domains of the last round minute and hour',
    '',
    'Usage: toptally [options]      start the service',
    '       toptally send [FILE]    stream NDJSON counters (stdin or FILE) over WebSocket (send --help)',
    '       toptally watch          live view of the top 10 (watch --help)',
    '       toptally --help         show this text',
    '       toptally --version      print the version',
    '',
    'Options (a flag wins over its environment variable, which wins over the config file):',
    ...rows,
  ].join('\n');
}
