// Cluster mode's additions to /metrics, registered in the instance's own registry.

import { Counter, Gauge, Histogram, type Registry as PromRegistry } from 'prom-client';
import type { Clock } from '../clock.ts';
import type { Flusher } from './flusher.ts';
import type { Registry } from './registry.ts';

export interface ClusterMetrics {
  flushed(entries: number, seconds: number): void;
  gap(): void;
  redisError(): void;
}

export function clusterMetrics(registry: PromRegistry, flusher: () => Flusher, nodes: () => Registry, clock: Clock): ClusterMetrics {
  const registers = [registry];
  const flushes = new Counter({ name: 'toptally_cluster_flushes_total', help: 'Batches applied in Redis (one per partition and flush; a tt_flush call carries those of one master)', registers });
  const entries = new Histogram({
    name: 'toptally_cluster_flush_entries',
    help: 'Distinct (window, domain) entries per batch sent to Redis',
    buckets: [1, 10, 100, 500, 1000, 2000, 5000],
    registers,
  });
  const latency = new Histogram({
    name: 'toptally_cluster_flush_seconds',
    help: 'Time from sending a batch to Redis to its answer',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
    registers,
  });
  const gaps = new Counter({ name: 'toptally_cluster_gaps_replayed_total', help: 'Partitions rewound and replayed from the journal because Redis lost applied batches', registers });
  const errors = new Counter({ name: 'toptally_cluster_redis_errors_total', help: 'Redis calls that failed (timeouts, connection errors, failovers)', registers });
  new Gauge({
    name: 'toptally_cluster_unflushed_bytes',
    help: 'Journaled counter bytes not yet applied in Redis (ingest gets 503 past --max-unflushed)',
    registers,
    collect() {
      this.set(flusher().unflushedBytes);
    },
  });
  new Gauge({
    name: 'toptally_cluster_lag_seconds',
    help: "How far this node's flushed-through time is behind its clock",
    registers,
    collect() {
      this.set(Math.max(0, clock.now() - flusher().flushedThrough()) / 1000);
    },
  });
  new Gauge({
    name: 'toptally_cluster_live_nodes',
    help: 'Nodes heard from recently (heartbeats), this one included',
    registers,
    collect() {
      this.set(nodes().live().length);
    },
  });
  new Gauge({
    name: 'toptally_cluster_changes_following',
    help: "1 while this node follows the change stream promptly (open windows may be answered from its cache), else 0",
    registers,
    collect() {
      this.set(nodes().following ? 1 : 0);
    },
  });
  return {
    flushed(n, seconds) {
      flushes.inc();
      entries.observe(n);
      latency.observe(seconds);
    },
    gap: () => gaps.inc(),
    redisError: () => errors.inc(),
  };
}
