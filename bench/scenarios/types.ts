/**
 * A scenario is one kind of load, run against every target that speaks its transport. To add one
 * (say Q, stats queries during ingest, or C, a million-name universe), write a file here exporting a
 * Scenario and list it in index.ts; the harness handles servers, repeats, medians and the report.
 */
import type { Measurement } from '../lib/generator.js';
import type { PhasePlan } from '../lib/load-protocol.js';
import type { ServerProcess } from '../lib/server-process.js';

export type Transport = 'http' | 'ws';

export interface ScenarioContext {
  /** A freshly started, ready server; the harness stops it afterwards. */
  server: ServerProcess;
  plan: PhasePlan;
  seed: number;
  /** Zipf universe of domain names. */
  universe: number;
}

export interface Scenario {
  /** Short id used by --only and in the table. */
  id: string;
  title: string;
  transport: Transport;
  /**
   * 'one': the server is pinned to its own core, the generator to the other (the generator is the
   * heavy side, as in S). 'all': the server may use every core (toptally's shards are the point).
   */
  serverCores: 'one' | 'all';
  /** Runs the plan's warm-up and measured phases; one Measurement per measured phase. */
  run(context: ScenarioContext): Promise<Measurement[]>;
}
