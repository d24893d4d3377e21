/**
 * A scenario is one kind of load, run against every target that speaks its transport (or the few it
 * names). To add one, write a file here exporting a Scenario and list it in index.ts; the harness
 * handles servers, repeats, medians and the report.
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
  /** The target's own load generator (an entry file), used instead of the scenario's. */
  generator?: string;
}

export interface ScenarioRun {
  /** One per measured phase; the main table shows their medians. */
  measurements: Measurement[];
  /** Figures measured once per cell (not per phase), for the scenario's own table. */
  details?: Record<string, number>;
}

/** A column of a scenario's own table: a key of LoadReport.extra (median over phases) or of ScenarioRun.details. */
export interface DetailColumn {
  key: string;
  label: string;
  /** Shown instead of a dash when a target does not report this figure. */
  missing?: string;
}

export interface Scenario {
  /** Short id used by --only and in the table. */
  id: string;
  title: string;
  transport: Transport;
  /** The load generator, as the report's header names it. */
  generator: string;
  /**
   * 'one': the server is pinned to its own core, the generator to the other (the generator is the
   * heavy side, as in S). 'all': the server may use every core (toptally's shards are the point).
   */
  serverCores: 'one' | 'all';
  /** Only these targets; by default every target that speaks the transport. */
  targets?: readonly string[];
  /** False when toptally / baseline ratios of the main figures mean nothing (Q paces each server at its own half). */
  compare?: boolean;
  /** The scenario's own table, one row per target, after the main one. */
  details?: { title: string; columns: readonly DetailColumn[]; notes?: readonly string[] };
  /** Runs the plan's warm-up and measured phases. */
  run(context: ScenarioContext): Promise<ScenarioRun>;
}
