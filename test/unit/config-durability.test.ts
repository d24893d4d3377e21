import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, helpText, loadConfig } from '../../src/config.ts';

test('durability defaults: ./data, fsync, no repair', () => {
  const config = loadConfig([], {});
  assert.equal(config.dataDir, './data');
  assert.equal(config.durability, 'fsync');
  assert.equal(config.repair, false);
});

test('--repair is a switch: alone, before another flag, or with an explicit value', () => {
  assert.equal(loadConfig(['--repair'], {}).repair, true);
  const config = loadConfig(['--repair', '--data-dir', '/var/lib/toptally', '--durability=interval'], {});
  assert.deepEqual([config.repair, config.dataDir, config.durability], [true, '/var/lib/toptally', 'interval']);
  assert.equal(loadConfig(['--repair=false'], {}).repair, false);
  assert.equal(loadConfig([], { TOPTALLY_REPAIR: '1', TOPTALLY_DURABILITY: 'off', TOPTALLY_DATA_DIR: 'd' }).repair, true);
  assert.throws(() => loadConfig(['--repair=maybe'], {}), /--repair: expected true or false/);
});

test('an unknown durability mode is refused with the choices', () => {
  assert.throws(() => loadConfig(['--durability', 'always'], {}), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, '--durability: expected one of fsync, interval, off, got "always"');
    return true;
  });
});

test('--help lists the durability options', () => {
  const help = helpText();
  for (const flag of ['--data-dir', '--durability', '--repair']) assert.match(help, new RegExp(flag));
});
