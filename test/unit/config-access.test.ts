import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

const A = 'ingest-aaaaaaaaaaaaaaaa';
const B = 'ingest-bbbbbbbbbbbbbbbb';
const R = 'read-rrrrrrrrrrrrrrrrrr';
const S = 'read-ssssssssssssssssss/+=';

function file(t: TestContext, name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'toptally-tokens-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

test('no tokens by default: both scopes are open', () => {
  const config = loadConfig([], {});
  assert.deepEqual([config.ingestTokens, config.readTokens], [[], []]);
});

test('token flags repeat, take comma-separated lists, and join the tokens of token files', (t) => {
  const tokens = file(t, 'ingest.txt', `# ingest tokens\n\n${B}\n  ${A}  \n`);
  const config = loadConfig(['--ingest-token', A, '--read-token', `${R},${S}`, '--ingest-token', B, '--ingest-token-file', tokens], {});
  assert.deepEqual(config.ingestTokens, [A, B, B, A]);
  assert.deepEqual(config.readTokens, [R, S]);
});

test('tokens come from the environment, a list of them, when no flag names them', (t) => {
  const tokens = file(t, 'read.txt', `${S}\n`);
  const env = { TOPTALLY_INGEST_TOKEN: `${A}, ${B}`, TOPTALLY_READ_TOKEN: R, TOPTALLY_READ_TOKEN_FILE: tokens };
  assert.deepEqual(loadConfig([], env).ingestTokens, [A, B]);
  assert.deepEqual(loadConfig([], env).readTokens, [R, S]);
  // A flag replaces its environment variable, as for every option.
  assert.deepEqual(loadConfig(['--ingest-token', B], env).ingestTokens, [B]);
});

test('the config file takes a token, an array of tokens, or token files', (t) => {
  const tokens = file(t, 'read.txt', `${S}\n`);
  const config = file(t, 'toptally.json', JSON.stringify({ 'ingest-token': [A, B], 'read-token': R, 'read-token-file': [tokens] }));
  const loaded = loadConfig(['--config', config], {});
  assert.deepEqual([loaded.ingestTokens, loaded.readTokens], [[A, B], [R, S]]);
  const notRepeatable = file(t, 'bad.json', JSON.stringify({ port: [1, 2] }));
  assert.throws(() => loadConfig(['--config', notRepeatable], {}), {
    message: `${notRepeatable}: "port": expected a string or a number, got [1,2]`,
  });
  const badItem = file(t, 'bad-item.json', JSON.stringify({ 'ingest-token': [A, true] }));
  assert.throws(() => loadConfig(['--config', badItem], {}), /"ingest-token": expected a string, a number or an array of them/);
});

test('a weak or malformed token is refused without being echoed', (t) => {
  const refused = (argv: string[], env: NodeJS.ProcessEnv, message: string | RegExp, secret: string) =>
    assert.throws(() => loadConfig(argv, env), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, typeof message === 'string' ? new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) : message);
      assert.ok(!err.message.includes(secret), `the message shows the token: ${err.message}`);
      return true;
    });
  refused(['--ingest-token', 'short'], {}, '--ingest-token: token 1 is refused: a token is at least 16 characters', 'short');
  refused([], { TOPTALLY_READ_TOKEN: `${R},has space inside!!!!!` }, 'TOPTALLY_READ_TOKEN (--read-token): token 2 is refused', 'inside!!!!!');
  refused(['--read-token', 'ééééééééééééééééééé'], {}, /token 1 is refused/, 'éééé');
  refused(['--read-token', ','], {}, '--read-token: expected a token', '\0');
  const weak = file(t, 'weak.txt', `${A}\nhunter2\n`);
  refused(['--ingest-token-file', weak], {}, `--ingest-token-file: ${weak}: line 2 is refused`, 'hunter2');
  const empty = file(t, 'empty.txt', '# nothing yet\n');
  refused(['--ingest-token-file', empty], {}, `--ingest-token-file: ${empty} holds no token`, '\0');
  refused(['--ingest-token-file', '/nonexistent/tokens'], {}, '--ingest-token-file: cannot read /nonexistent/tokens: ENOENT', '\0');
});

test('an option that does not repeat takes its last value', () => {
  assert.equal(loadConfig(['--port', '1', '--port', '2'], {}).port, 2);
});

test('limits take their units and refuse what they cannot honour', () => {
  const config = loadConfig(
    ['--max-counters', '10', '--max-domains', '5', '--max-domain-bytes', '64', '--max-connections', '3', '--body-timeout', '200ms', '--ws-idle-timeout', '2s', '--max-shard-backlog', '1MiB'],
    {},
  );
  assert.deepEqual(
    [config.maxCounters, config.maxDomains, config.maxDomainBytes, config.maxConnections, config.bodyTimeout, config.wsIdleTimeout, config.maxShardBacklog],
    [10, 5, 64, 3, 200, 2000, 2 ** 20],
  );
  assert.throws(() => loadConfig(['--max-domain-bytes', '256'], {}), { message: '--max-domain-bytes: expected a whole number from 1 to 255, got "256"' });
  assert.equal(loadConfig(['--ws-idle-timeout', '0'], {}).wsIdleTimeout, 0);
});
