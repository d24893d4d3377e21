// Cluster mode on one machine: a local Redis Cluster (3 masters, 3 replicas, from Debian's
// redis-server, on free loopback ports in a temporary directory) and two toptally nodes on ports
// 5001 and 5002. Ctrl-C stops everything. See docs/cluster.md.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileScope, startRedisCluster } from '../test/helpers/redis-cluster.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const scope = fileScope();

try {
  const cluster = await startRedisCluster(scope);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toptally-demo-'));
  scope.after(() => rm(dir, { recursive: true, force: true }));
  const nodes: ChildProcess[] = [];
  for (const port of [5001, 5002]) {
    const args = ['bin/toptally.js', '--port', String(port), '--data-dir', path.join(dir, `node-${port}`), '--redis', cluster.urls.join(',')];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    nodes.push(child);
    scope.after(async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    });
  }
  process.stdout.write(
    `Redis Cluster: ${cluster.urls.join(' ')}\n` +
      'toptally nodes: http://127.0.0.1:5001 http://127.0.0.1:5002 (Ctrl-C stops everything)\n' +
      `  curl -X POST http://127.0.0.1:5001/api/events -d "{\\"timestamp\\": $(date +%s), \\"A\\": 7}"\n` +
      "  curl 'http://127.0.0.1:5002/api/stats?window=minute&open=true'\n",
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    process.once('SIGHUP', resolve);
    for (const node of nodes) node.once('exit', () => resolve());
  });
} finally {
  await scope.close();
}
