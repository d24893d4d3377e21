// A shard worker stand-in that says it is ready, then, on its first message, fills its JS heap up to
// 256 MiB (bounded, so that without a heap limit it stops there instead of taking the machine).
import { parentPort } from 'node:worker_threads';

parentPort.postMessage({ kind: 'ready' });
parentPort.once('message', () => {
  const held = [];
  for (let mib = 0; mib < 256; mib++) held.push(Array.from({ length: 32_768 }, (_, i) => ({ i })));
  parentPort.postMessage({ kind: 'census', id: 1, domains: held.length, entries: 0, bytes: 0 });
});
