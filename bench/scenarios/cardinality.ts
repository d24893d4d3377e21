/**
 * C: cardinality. 1,000,000 distinct domains into one closed minute (the last of the last complete
 * hour), then: the memory that holds them, the minute's query time, the hour's first (uncached) answer
 * — what a roll-over costs once an hour holds a million domains — and the main thread's event-loop
 * delay from before the fill to the last query, where the server exports it.
 */
import { filledWindows, timeQuery } from '../lib/closed-windows.js';
import { planFill, sendFill } from '../lib/fill.js';
import { MetricsSampler } from '../lib/metrics-sampler.js';
import { RawHttp } from '../lib/raw-http.js';
import type { Scenario } from './types.js';

const DOMAINS = 1_000_000;
const MB = 1024 * 1024;

export const C: Scenario = {
  id: 'C',
  title: `${DOMAINS.toLocaleString('en-US')} distinct domains into one minute (arrays of 100 counters × 10 new domains per POST, 4 connections)`,
  transport: 'http',
  generator: 'the harness itself (raw HTTP/1.1, 4 keep-alive connections)',
  serverCores: 'all',
  targets: ['toptally', 'naive-uws', 'naive-fastify'],
  details: {
    title: `C: ${DOMAINS.toLocaleString('en-US')} domains in one minute`,
    columns: [
      { key: 'rssDeltaMB', label: 'RSS Δ MB' },
      { key: 'peakRssDeltaMB', label: 'peak RSS Δ MB' },
      { key: 'rssBytesPerDomain', label: 'RSS Δ B/domain' },
      { key: 'entries', label: '(domain, window) entries', missing: 'n/a' },
      { key: 'tableBytesPerEntry', label: 'table B/entry', missing: 'n/a' },
      { key: 'minuteFirstMs', label: 'minute: first ms' },
      { key: 'minuteRepeatedMs', label: 'minute: repeated ms' },
      { key: 'hourFirstMs', label: 'hour roll-over: first ms' },
      { key: 'hourRepeatedMs', label: 'hour: repeated ms' },
      { key: 'eventLoopMaxMs', label: 'max event-loop delay ms', missing: 'not exported' },
    ],
    notes: [
      'RSS Δ: the server process (worker threads included) after the fill minus before it; peak: VmHWM at the end minus RSS before. ' +
        'toptally holds each domain twice, in the minute and in its hour, which it keeps as data arrives.',
      'table B/entry: `toptally_shard_table_bytes` / `toptally_shard_entries` summed over shards (/metrics); name tables included.',
      'Event-loop delay: the largest `nodejs_eventloop_lag_max_seconds` over /metrics scrapes every 250 ms from before the fill ' +
        'to after the last query (prom-client resets it at each scrape), minus the 10 ms interval of the timer it samples with ' +
        '(idle reads 10 ms): a stall lies between this figure and 10 ms more. The naive baselines export no metrics.',
    ],
  },
  run: async ({ server, seed }) => {
    const windows = filledWindows();
    const fill = planFill(windows.lastMinute, DOMAINS, seed);
    const client = await RawHttp.connect(server.port);
    let sampler = await MetricsSampler.start(server.port);
    try {
      const before = server.memory();
      const measurement = await sendFill(server, fill);
      const afterFill = server.memory();
      const minute = await timeQuery(client, windows.minutePath(windows.lastMinute), DOMAINS);
      const hour = await timeQuery(client, windows.hourPath, DOMAINS);
      const metrics = await sampler?.stop();
      sampler = undefined;
      const end = server.memory();
      const rssDelta = afterFill.rssBytes - before.rssBytes;
      return {
        measurements: [measurement],
        details: {
          rssDeltaMB: rssDelta / MB,
          peakRssDeltaMB: (end.peakRssBytes - before.rssBytes) / MB,
          rssBytesPerDomain: rssDelta / DOMAINS,
          entries: metrics?.shardEntries ?? Number.NaN,
          tableBytesPerEntry: metrics === undefined ? Number.NaN : metrics.shardTableBytes / metrics.shardEntries,
          minuteFirstMs: minute.firstMs,
          minuteRepeatedMs: minute.repeatedMs,
          hourFirstMs: hour.firstMs,
          hourRepeatedMs: hour.repeatedMs,
          eventLoopMaxMs: metrics?.eventLoopMaxMs ?? Number.NaN,
          eventLoopMaxIntervalMs: metrics?.eventLoopMaxIntervalMs ?? Number.NaN,
        },
      };
    } finally {
      client.close();
      sampler?.cancel();
    }
  },
};
