import assert from 'node:assert/strict';
import { test } from 'node:test';
import { availableParallelism } from 'node:os';
import { helpText, loadConfig, OPTIONS, parseSize } from '../../src/config.ts';

test('defaults: the seed port on loopback, one shard per CPU, 8 MiB bodies', () => {
  const config = loadConfig([], {});
  assert.deepEqual(config, {
    port: 5000,
    host: '127.0.0.1',
    shards: availableParallelism(),
    maxBody: 8 * 1024 * 1024,
    retainMinutes: 120,
    retainHours: 24,
    maxFuture: 300,
    decodeThreads: availableParallelism(),
    offload: 'auto',
    offloadBytes: 4096,
    logLevel: 'info',
  });
});

test('flags win over environment variables', () => {
  const config = loadConfig(['--port', '8080', '--shards=3', '--max-body', '512KiB'], { PORT: '9090', SHARDS: '5', HOST: '0.0.0.0' });
  assert.deepEqual([config.port, config.shards, config.host, config.maxBody], [8080, 3, '0.0.0.0', 512 * 1024]);
});

test('bad values and unknown flags are one clear message naming their source', () => {
  assert.throws(() => loadConfig(['--port', '70000'], {}), { message: '--port: expected a whole number from 0 to 65535, got "70000"' });
  assert.throws(() => loadConfig([], { SHARDS: '0' }), { message: 'SHARDS (--shards): expected a whole number from 1 to 256, got "0"' });
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

test('--help names every option with its environment variable', () => {
  const help = helpText();
  for (const o of OPTIONS) {
    assert.ok(help.includes(`--${o.flag}`), o.flag);
    assert.ok(help.includes(`env ${o.env}`), o.env);
  }
});
