import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ConfigError, defaultHelp, envHelp, helpText, loadConfig, OPTIONS, parseSize } from '../../src/config.ts';

/** Every setting's default, written out: a changed default must change this test. */
const DEFAULTS = {
  port: 5000,
  host: '127.0.0.1',
  shards: availableParallelism(),
  maxBody: 8 * 1024 * 1024,
  retainMinutes: 120,
  retainHours: 24,
  maxFuture: 300,
  decodeThreads: availableParallelism(),
  offload: 'auto',
  offloadBytes: 256 * 1024,
  logLevel: 'info',
  maxFrame: 1024 * 1024,
  maxInflight: 64,
  maxBackpressure: 1024 * 1024,
  liveInterval: 1000,
  ingestTokens: [],
  readTokens: [],
  maxCounters: 100_000,
  maxDomains: 10_000,
  maxDomainBytes: 255,
  maxConnections: 4096,
  maxConnectionsPerAddress: 1024,
  bodyTimeout: 30_000,
  maxInflightBytes: 64 * 1024 * 1024,
  allowedHosts: [],
  allowedOrigins: [],
  wsIdleTimeout: 120_000,
  maxShardBacklog: 64 * 1024 * 1024,
  dataDir: './data',
  durability: 'fsync',
  repair: false,
  redis: [],
  partitions: 64,
  nodeId: '',
  flushInterval: 100,
  clusterAck: 'journal',
  maxUnflushed: 256 * 1024 * 1024,
};

test('defaults: the seed port on loopback, one shard per CPU, 8 MiB bodies', () => {
  assert.deepEqual(loadConfig([], {}), DEFAULTS);
});

test('flags win over environment variables', () => {
  const config = loadConfig(['--port', '8080', '--shards=3', '--max-body', '512KiB'], { TOPTALLY_PORT: '9090', TOPTALLY_SHARDS: '5', TOPTALLY_HOST: '0.0.0.0' });
  assert.deepEqual([config.port, config.shards, config.host, config.maxBody], [8080, 3, '0.0.0.0', 512 * 1024]);
});

test('bad values and unknown flags are one clear message naming their source', () => {
  assert.throws(() => loadConfig(['--port', '70000'], {}), { message: '--port: expected a whole number from 0 to 65535, got "70000"' });
  assert.throws(() => loadConfig([], { TOPTALLY_SHARDS: '0' }), { message: 'TOPTALLY_SHARDS (--shards): expected a whole number from 1 to 256, got "0"' });
  assert.throws(() => loadConfig(['--prot', '1'], {}), { message: 'unknown option --prot (see --help)' });
  assert.throws(() => loadConfig(['--port'], {}), { message: '--port needs a value' });
  assert.throws(() => loadConfig(['serve'], {}), { message: 'unexpected argument "serve" (see --help)' });
});

test('sizes take units', () => {
  assert.equal(parseSize('8MiB'), 8 * 2 ** 20);
  assert.equal(parseSize('100'), 100);
  assert.equal(parseSize('2 k'), 2048);
  assert.throws(() => parseSize('0'));
  assert.throws(() => parseSize('1 parsec'));
});

test('--help shows every size default in one format, a number and a binary unit, that parses back to it', () => {
  const sizes = OPTIONS.filter((o) => o.parse === parseSize);
  assert.ok(sizes.length >= 5);
  for (const o of sizes) {
    const shown = defaultHelp(o);
    assert.match(shown, /^[0-9]+(KiB|MiB|GiB)$/, o.flag);
    assert.equal(parseSize(shown), o.default(), o.flag);
  }
});

test('--help names every option with its environment variable', () => {
  const help = helpText();
  for (const o of OPTIONS) {
    assert.ok(help.includes(`--${o.flag}`), o.flag);
    assert.ok(help.includes(`env ${o.env}`), o.env);
  }
});

function configFile(t: TestContext, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'toptally-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'toptally.json');
  writeFileSync(path, content);
  return path;
}

test('a setting comes from the flag, else the environment, else the config file, else the default', (t) => {
  const path = configFile(t, JSON.stringify({ port: 7001, host: '10.0.0.1', shards: 3, 'max-body': '1KiB', 'log-level': 'warn' }));
  const config = loadConfig(['--port', '7003', '--config', path], { TOPTALLY_PORT: '7002', TOPTALLY_HOST: '10.0.0.2', TOPTALLY_LOG_LEVEL: 'debug' });
  assert.deepEqual(config, {
    ...DEFAULTS,
    port: 7003, // flag over env and file
    host: '10.0.0.2', // env over file
    shards: 3, // file
    maxBody: 1024, // file, parsed like the flag
    logLevel: 'debug', // env over file; everything else: the default
  });
});

test('settings are read from TOPTALLY_* variables only; PORT is kept, under TOPTALLY_PORT', () => {
  for (const o of OPTIONS) assert.match(o.env, /^TOPTALLY_[A-Z_]+$/, o.flag);
  // tcsh exports HOST as the machine's name: an unprefixed name must never choose what is bound.
  const unprefixed = { HOST: 'myhost.example', SHARDS: '7', REPAIR: '1', DATA_DIR: '/elsewhere', LOG_LEVEL: 'trace' };
  assert.deepEqual(loadConfig([], unprefixed), loadConfig([], {}));
  assert.equal(loadConfig([], { TOPTALLY_HOST: '0.0.0.0', HOST: 'myhost.example' }).host, '0.0.0.0');
  assert.equal(loadConfig([], { PORT: '8080' }).port, 8080);
  assert.equal(loadConfig([], { PORT: '8080', TOPTALLY_PORT: '9090' }).port, 9090);
  assert.throws(() => loadConfig([], { PORT: 'http' }), { name: 'ConfigError', message: /^PORT \(--port\): expected a whole number/ });
});

test('the config file can be named by TOPTALLY_CONFIG, and --config wins over it', (t) => {
  const fromEnv = configFile(t, '{"retain-minutes": 30}');
  const fromFlag = configFile(t, '{"retain-minutes": 45}');
  assert.equal(loadConfig([], { TOPTALLY_CONFIG: fromEnv }).retainMinutes, 30);
  assert.equal(loadConfig([`--config=${fromFlag}`], { TOPTALLY_CONFIG: fromEnv }).retainMinutes, 45);
});

test('a bad config file is refused with a message naming the file and the key', (t) => {
  const cases: [string, (path: string) => string][] = [
    ['{"prot": 5000}', (p) => `${p}: unknown option "prot" (see --help)`],
    ['{"port": "nope"}', (p) => `${p}: "port": expected a whole number from 0 to 65535, got "nope"`],
    ['{"shards": true}', (p) => `${p}: "shards": expected a string or a number, got true`],
    ['[5000]', (p) => `config file ${p}: expected a JSON object such as {"port": 5000}`],
  ];
  for (const [content, message] of cases) {
    const path = configFile(t, content);
    assert.throws(() => loadConfig(['--config', path], {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, message(path));
      return true;
    });
  }
  // The parser's own words differ between Node.js versions: only the start is ours.
  const broken = configFile(t, '{"port": 5000');
  assert.throws(() => loadConfig(['--config', broken], {}), {
    name: 'ConfigError',
    message: new RegExp(`^config file ${broken}: cannot be read as JSON: .*position 13`),
  });
});

test('--live-interval takes milliseconds or a unit', () => {
  const interval = (raw: string) => loadConfig(['--live-interval', raw], {}).liveInterval;
  assert.deepEqual([interval('250'), interval('500ms'), interval('2s'), interval('1.5s')], [250, 500, 2000, 1500]);
  assert.throws(() => interval('soon'), /--live-interval: expected a duration such as 1s or 500ms/);
  assert.throws(() => interval('2h'), ConfigError);
});

test('README documents every option in its configuration table', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const o of OPTIONS) {
    const env = envHelp(o).split(' or ').map((name) => `\`${name}\``).join(' or ');
    assert.ok(readme.includes(`| \`--${o.flag}\` | ${env} |`), o.flag);
  }
});
