// One toptally per port and per data directory: a second one refuses to start and says who holds
// what, instead of splitting the counts with the first.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnToptally } from '../helpers/child.ts';
import { startServer, tempDir } from '../helpers/server.ts';

test('a second toptally on the same port exits 1 with "port N is in use", and the first keeps serving', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const first = await spawnToptally(t, ['--data-dir', dir]);
  const port = new URL(first.url).port;
  // The same data directory, as a second `npm start` would use: the port is what it is told about.
  await assert.rejects(spawnToptally(t, ['--data-dir', dir, '--port', port]), (err: Error & { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, new RegExp(`port ${port} is in use`));
    return true;
  });
  const other = await tempDir(t);
  await assert.rejects(spawnToptally(t, ['--data-dir', other, '--port', port]), (err: Error & { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, new RegExp(`port ${port} is in use`));
    return true;
  });
  const health = await fetch(`${first.url}/healthz`);
  assert.equal(health.status, 200);
});

test('a data directory in use by another server is refused with the holder named, and free again after it stops', async (t) => {
  const dir = await tempDir(t);
  const first = await startServer(t, { dataDir: dir });
  await assert.rejects(startServer(t, { dataDir: dir }), (err: Error & { code: string }) => {
    assert.equal(err.code, 'TOPTALLY_ERR_DATA_DIR_IN_USE');
    assert.match(err.message, new RegExp(`in use by another toptally \\(pid ${process.pid}, see .*toptally\\.lock\\)`));
    return true;
  });
  assert.equal((await first.get('/healthz')).status, 200);
  await first.app.stop();
  const second = await startServer(t, { dataDir: dir });
  assert.equal((await second.get('/healthz')).status, 200);
});

test('a process holding the data directory is named by pid; the lock it leaves when killed -9 is taken over', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const first = await spawnToptally(t, ['--data-dir', dir]);
  await assert.rejects(spawnToptally(t, ['--data-dir', dir]), (err: Error & { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, new RegExp(`data directory ${dir} is in use by another toptally \\(pid ${first.process.pid},`));
    return true;
  });
  first.process.kill('SIGKILL');
  await first.exited;
  const second = await spawnToptally(t, ['--data-dir', dir]);
  assert.equal((await fetch(`${second.url}/healthz`)).status, 200);
});
