// Cluster mode put together: connect to the seeds (or keep trying in the background), load the
// function library, check the partition count, and build the flusher, reader, registry and
// backend. startToptally calls openCluster() before recovery (the backend is what recovery fills)
// and start() after it (the flusher replays what Redis lacks from the recovered journal).

import type { LocalBackend } from '../backend/local-backend.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Durability } from '../durability/durability.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Retention } from '../retention.ts';
import { span, type WindowKind } from '../window.ts';
import { ClusterBackend } from './cluster-backend.ts';
import { clusterMetrics } from './cluster-metrics.ts';
import { Flusher } from './flusher.ts';
import { ClusterReader } from './reader.ts';
import { DeferredLink } from './deferred-link.ts';
import { connectRedis, type RedisLink } from './redis-link.ts';
import { checkPartitions, nodeId as loadNodeId, PartitionMismatch, Registry } from './registry.ts';
import { sharedKeys, type SharedKeys } from './shared-keys.ts';
import { partitionTags } from './slots.ts';

/** Unflushed counters older than this make /readyz say the node is behind. */
const LAG_NOT_READY_MS = 5000;

export interface ClusterMode {
  backend: ClusterBackend;
  nodeId: string;
  /** Starts flushing once recovery opened the journal; resolves once Redis has been reached. */
  start(durability: Durability): Promise<void>;
  /** null when Redis answers and the flush keeps up, else why not (for /readyz). */
  notReady(): string | null;
  /** Resolves once a closed window's answer is final: every live node flushed past its end. */
  whenFinal(kind: WindowKind, index: number): Promise<void>;
  /** Idempotency keys in Redis, for the ingestor. */
  sharedKeys: SharedKeys;
  /** For the start line. */
  summary: string;
}

export interface ClusterDeps {
  local: LocalBackend;
  clock: Clock;
  retention: Retention;
  log: Logger;
  metrics: Metrics;
}

export async function openCluster(config: Config, deps: ClusterDeps): Promise<ClusterMode> {
  const { clock, retention, log } = deps;
  if (config.durability === 'off') {
    throw new Error('cluster mode (--redis) needs the journal: use --durability fsync or interval, not off');
  }
  const id = await loadNodeId(config.dataDir, config.nodeId);
  let flusher!: Flusher;
  let registry!: Registry;
  const metrics = clusterMetrics(deps.metrics.registry, () => flusher, () => registry, clock);
  let warned = false;
  let lastError: Error | null = null;
  const onError = (err: Error): void => {
    lastError = err;
    metrics.redisError();
    if (!warned) log.warn({ err: err.message }, 'Redis error; retrying (counters stay journaled meanwhile)');
    warned = true;
  };
  // Connected, with the function library loaded and the partition count checked.
  const reach = async (): Promise<RedisLink> => {
    const link = await connectRedis(config.redis, { onError });
    try {
      await link.loadLibrary();
      await checkPartitions(link, config.partitions);
      return link;
    } catch (err) {
      await link.close();
      throw err;
    }
  };
  // A node whose Redis is down at start still starts, and rides it out as it would an outage; one
  // set up against another partition count refuses to start.
  const link: RedisLink = await reach().catch((err: Error) => {
    if (err instanceof PartitionMismatch) throw err;
    lastError = err;
    log.warn({ err: err.message }, `cannot reach Redis at ${config.redis.join(', ')}; trying again every second, counters stay journaled meanwhile`);
    return new DeferredLink(reach, err, { onError, fatal: (e) => e instanceof PartitionMismatch });
  });
  const connected = link instanceof DeferredLink ? link.connected : Promise.resolve(link);
  const tags = partitionTags(config.partitions);
  let durability: Durability | null = null;
  flusher = new Flusher({
    link,
    drain: () => deps.local.drain(),
    tags,
    nodeId: id,
    clock,
    retention,
    flushIntervalMs: config.flushInterval,
    segments: () => durability?.journalSegments ?? [],
    waitReplicas: config.clusterAck === 'cluster',
    onError,
    onFlush: (entries, seconds) => {
      warned = false;
      metrics.flushed(entries, seconds);
    },
    onApplied: (minutes) => registry.announce(minutes),
    onGap: (partition, from, to) => {
      metrics.gap();
      log.warn({ partition, from, to }, `Redis lacks this node's batches after LSN ${from} for partition ${partition}: replaying them from the journal`);
    },
  });
  registry = new Registry({ link, nodeId: id, clock, flushedThrough: () => flusher.flushedThrough(), flushing: () => flusher.lastError === null, pollMs: config.flushInterval, onError });
  const keys = sharedKeys({ link, nodeId: id, boot: registry.boot, claimant: (node, boot) => registry.claimant(node, boot) });
  const reader = new ClusterReader(link, tags);
  const backend = new ClusterBackend({
    local: deps.local,
    flusher,
    reader,
    registry,
    clock,
    retention,
    ack: config.clusterAck,
    maxUnflushedBytes: config.maxUnflushed,
    close: () => link.close(),
  });
  return {
    backend,
    nodeId: id,
    async start(opened) {
      durability = opened;
      if ((await connected) === null) return; // stopped first
      await flusher.sync(opened.journalLsn);
      // Before the first heartbeat: other nodes take a claim this node left pending over once it
      // heartbeats again, so every key it journaled must be marked answered by then.
      for (;;) {
        try {
          await keys.restore(opened.idempotency.answers(), clock.now());
          break;
        } catch (err) {
          onError(err as Error);
          if (flusher.stopped) return;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      await registry.start();
    },
    notReady() {
      if (!flusher.synced) {
        const why = flusher.lastError ?? lastError;
        return `Redis not reached yet${why ? `: ${why.message}` : ''}`;
      }
      if (flusher.lastError && flusher.sinceLastOkMs > 1000) return `Redis unreachable: ${flusher.lastError.message}`;
      const lag = clock.now() - flusher.flushedThrough();
      if (lag > LAG_NOT_READY_MS) return `behind: ${flusher.unflushedBytes} bytes of counters not in Redis for ${Math.round(lag / 1000)} s`;
      return null;
    },
    async whenFinal(kind, index) {
      await registry.whenFinal(span(kind, index).to * 1000);
    },
    sharedKeys: keys,
    summary: `cluster mode: node ${id}, ${config.partitions} partitions on ${link instanceof DeferredLink ? 'Redis (not reached yet)' : link.cluster ? 'Redis Cluster' : 'a single Redis'} at ${config.redis.join(',')}, ack ${config.clusterAck}`,
  };
}
