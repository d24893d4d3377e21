// The service as a child process on the real clock, killed with SIGKILL while clients send. The
// counters' timestamps are a few minutes to a few hours old, well inside the retention, so the
// windows they land in are closed and readable for the whole test.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FRAME_HEADER_BYTES, scanFrames } from '../../src/durability/frame.ts';
import { spawnToptally, type Child } from '../helpers/child.ts';
import { request, tempDir } from '../helpers/server.ts';
import { mulberry32 } from '../helpers/random.ts';
import { readWindows, Reference } from '../helpers/windows.ts';

const DOMAINS = ['a.example', 'b.example', 'c.example', 'd.example', '__proto__', 'é.example'];
const CLIENTS = 8;

const post = (child: Child, body: unknown) =>
  request(`${child.url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('SIGKILL under load loses nothing acknowledged, at several kill points, in fsync and interval mode', async (t) => {
  const dir = await tempDir(t);
  const now = Math.floor(Date.now() / 1000);
  const random = mulberry32(11);
  const counter = (): Record<string, number> => {
    const c: Record<string, number> = { timestamp: now - 120 - Math.floor(random() * 4 * 3600) };
    for (let d = 0; d < 3; d++) c[DOMAINS[Math.floor(random() * DOMAINS.length)]] = 1 + Math.floor(random() * 9);
    return c;
  };
  const acked = new Reference();
  const inFlight = new Reference();

  let child = await spawnToptally(t, ['--data-dir', dir]);
  for (const { killAt, mode } of [
    { killAt: 20, mode: 'fsync' },
    { killAt: 150, mode: 'interval' },
    { killAt: 400, mode: 'fsync' },
  ]) {
    let ackedNow = 0;
    let killed = false;
    const target = child;
    const client = async (): Promise<void> => {
      while (!killed) {
        const body = [counter(), counter()];
        let status = 0;
        try {
          status = (await post(target, body)).status;
        } catch {
          // the connection died with the server: this request may or may not have been counted
        }
        if (status === 200) {
          body.forEach((c) => acked.addCounter(c));
          if (++ackedNow === killAt) {
            killed = true;
            target.process.kill('SIGKILL');
          }
        } else {
          assert.ok(killed, `HTTP ${status} while the server was up`);
          body.forEach((c) => inFlight.addCounter(c));
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    assert.equal((await target.exited).signal, 'SIGKILL');

    child = await spawnToptally(t, ['--data-dir', dir, '--durability', mode]);
    const windows = await readWindows((p) => request(child.url + p), Math.floor(Date.now() / 1000));
    let checked = 0;
    for (const [key, answer] of windows) {
      const got = new Map((answer as { top: { domain: string; count: number }[] }).top.map((e) => [e.domain, e.count]));
      for (const domain of new Set([...got.keys(), ...(acked.windows.get(key)?.keys() ?? [])])) {
        const count = got.get(domain) ?? 0;
        const low = acked.get(key, domain);
        const high = low + inFlight.get(key, domain);
        assert.ok(count >= low && count <= high, `${key} ${domain}: ${count} not in [${low}, ${high}] after kill at ${killAt}`);
        checked++;
      }
    }
    assert.ok(checked > 50, `only ${checked} window entries checked`);
  }
  child.process.kill('SIGTERM');
  assert.equal((await child.exited).code, 0);
});

test('the command refuses a damaged data directory with exit code 1, naming file and offset; --repair starts', async (t) => {
  const dir = await tempDir(t);
  const minute = (Math.floor(Date.now() / 60_000) - 2) * 60;
  const first = await spawnToptally(t, ['--data-dir', dir]);
  for (let i = 0; i < 3; i++) assert.equal((await post(first, { timestamp: minute, [`d${i}`]: i + 1 })).status, 200);
  first.process.kill('SIGTERM');
  assert.equal((await first.exited).code, 0);

  const segment = path.join('journal', '0000000000000001.log');
  const data = readFileSync(path.join(dir, segment));
  const { frames } = scanFrames(data);
  assert.equal(frames.length, 3);
  data[frames[1].offset + FRAME_HEADER_BYTES] ^= 0x10;
  writeFileSync(path.join(dir, segment), data);

  const refused = await spawnToptally(t, ['--data-dir', dir]).then(
    () => assert.fail('started on damaged data'),
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    `toptally: ${path.join(dir, segment)} at offset ${frames[1].offset}: checksum mismatch. ` +
      'Start with --repair to keep what is intact and drop the damaged part.\n',
  );

  const repaired = await spawnToptally(t, ['--data-dir', dir, '--repair']);
  const report = repaired.lines.map((line) => JSON.parse(line)).find((entry) => entry.reason === 'checksum mismatch');
  assert.deepEqual([report.file, report.offset], [segment, frames[1].offset]);
  const stats = await request(`${repaired.url}/api/stats?window=minute&at=${minute + 60}`);
  assert.deepEqual(stats.body.top, [
    { domain: 'd2', count: 3 },
    { domain: 'd0', count: 1 },
  ]);
  repaired.process.kill('SIGTERM');
  assert.equal((await repaired.exited).code, 0);
});
