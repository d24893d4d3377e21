import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';

test('cluster options: seeds from --redis or TOPTALLY_REDIS, and each value checked', () => {
  const config = loadConfig(['--redis', 'redis://127.0.0.1:7000,redis://127.0.0.1:7001', '--partitions', '32', '--node-id', 'web-1', '--flush-interval', '250ms', '--cluster-ack', 'cluster', '--max-unflushed', '1GiB'], {});
  assert.deepEqual(
    [config.redis, config.partitions, config.nodeId, config.flushInterval, config.clusterAck, config.maxUnflushed],
    [['redis://127.0.0.1:7000', 'redis://127.0.0.1:7001'], 32, 'web-1', 250, 'cluster', 2 ** 30],
  );
  assert.deepEqual(loadConfig([], { TOPTALLY_REDIS: 'redis://10.0.0.5:6380' }).redis, ['redis://10.0.0.5:6380']);
  assert.throws(() => loadConfig(['--redis', 'http://x:1'], {}), { message: '--redis: expected a URL such as redis://127.0.0.1:7000, got "http://x:1"' });
  assert.throws(() => loadConfig(['--partitions', '0'], {}), /--partitions: expected a whole number from 1 to 16384/);
  assert.throws(() => loadConfig(['--node-id', 'a b'], {}), /--node-id: expected 1 to 64 of/);
  assert.throws(() => loadConfig(['--cluster-ack', 'wait'], {}), /--cluster-ack: expected one of journal, cluster/);
  assert.throws(() => loadConfig(['--flush-interval', '0'], {}), /--flush-interval: expected at least 1ms/);
});
