/** Turns measurements into per-row metrics, medians, and the Markdown tables. */
import type { DetailColumn } from '../scenarios/types.js';
import type { Measurement } from './generator.js';
import { median } from './stats.js';

/** Above this, the generator (one core) rather than the server may be what limits the row. */
export const GENERATOR_BOUND_PCT = 90;
/** Above this, other processes took enough CPU (in % of one core) to distort the row. */
export const CONTENDED_PCT = 25;

export interface Metrics {
  requestsPerS: number;
  countersPerS: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  serverCpuMsPerRequest: number;
  serverCpuMsPerMillionCounters: number;
  generatorCpuPct: number;
  /** CPU used by neither server nor generator, in % of one core: the harness, other users, the OS. */
  otherCpuPct: number;
  errors: number;
}

export interface CellResult {
  scenario: string;
  target: string;
  subject: boolean;
  status: 'ok' | 'skipped' | 'failed';
  note?: string;
  generatorBound?: boolean;
  firstError?: string;
  /** Median of each metric over the repeats, taken independently. */
  median?: Metrics;
  /** The scenario's own figures: medians of the phases' `extra`, and the cell's one-off details. */
  details?: Record<string, number>;
  repeats?: Array<{ metrics: Metrics; measurement: Measurement }>;
}

export function metricsOf({ report, serverCpuMs, machineBusyMs }: Measurement): Metrics {
  const seconds = report.durationS;
  const otherCpuMs = Math.max(0, machineBusyMs - serverCpuMs - report.generatorCpuMs);
  return {
    requestsPerS: report.requests / seconds,
    countersPerS: report.counters / seconds,
    latencyP50Ms: report.latencyP50Ms,
    latencyP99Ms: report.latencyP99Ms,
    serverCpuMsPerRequest: report.requests > 0 ? serverCpuMs / report.requests : Number.NaN,
    serverCpuMsPerMillionCounters: report.counters > 0 ? (serverCpuMs / report.counters) * 1e6 : Number.NaN,
    generatorCpuPct: (report.generatorCpuMs / (seconds * 1000)) * 100,
    otherCpuPct: (otherCpuMs / (seconds * 1000)) * 100,
    errors: report.errors,
  };
}

export function okCell(
  scenario: string,
  target: string,
  subject: boolean,
  measurements: Measurement[],
  runDetails: Record<string, number> = {},
): CellResult {
  const repeats = measurements.map((measurement) => ({ metrics: metricsOf(measurement), measurement }));
  const pick = (key: keyof Metrics) => median(repeats.map((r) => r.metrics[key]));
  const medianMetrics: Metrics = {
    requestsPerS: pick('requestsPerS'),
    countersPerS: pick('countersPerS'),
    latencyP50Ms: pick('latencyP50Ms'),
    latencyP99Ms: pick('latencyP99Ms'),
    serverCpuMsPerRequest: pick('serverCpuMsPerRequest'),
    serverCpuMsPerMillionCounters: pick('serverCpuMsPerMillionCounters'),
    generatorCpuPct: pick('generatorCpuPct'),
    otherCpuPct: pick('otherCpuPct'),
    errors: repeats.reduce((sum, r) => sum + r.metrics.errors, 0),
  };
  const firstError = measurements.find((m) => m.report.firstError !== undefined)?.report.firstError;
  const details: Record<string, number> = {};
  for (const key of new Set(measurements.flatMap((m) => Object.keys(m.report.extra ?? {})))) {
    details[key] = median(measurements.map((m) => m.report.extra?.[key] ?? Number.NaN));
  }
  Object.assign(details, runDetails);
  return {
    scenario,
    target,
    subject,
    status: 'ok',
    generatorBound: medianMetrics.generatorCpuPct > GENERATOR_BOUND_PCT,
    ...(firstError === undefined ? {} : { firstError }),
    median: medianMetrics,
    ...(Object.keys(details).length === 0 ? {} : { details }),
    repeats,
  };
}

// ---------------------------------------------------------------------------------------------------
// Formatting

/** Three significant digits, grouped thousands above 1,000; an em dash for missing values. */
function num(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return String(Number(value.toPrecision(3)));
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function notes(cell: CellResult): string {
  if (cell.status !== 'ok') return `${cell.status}: ${cell.note ?? ''}`.replaceAll('|', '\\|');
  const parts: string[] = [];
  if (cell.generatorBound) parts.push('**generator-bound**');
  if ((cell.median?.otherCpuPct ?? 0) > CONTENDED_PCT) {
    parts.push(`**contended**: other processes used ${Math.round(cell.median!.otherCpuPct)}% of a core`);
  }
  if ((cell.median?.errors ?? 0) > 0) parts.push(`errors: ${cell.median!.errors} (${cell.firstError ?? 'see JSON'})`);
  return parts.join('; ').replaceAll('|', '\\|');
}

export function resultsTable(cells: readonly CellResult[]): string {
  const lines = [
    row(['Scenario', 'Target', 'req/s', 'counters/s', 'p50 ms', 'p99 ms', 'CPU ms/req', 'CPU ms/M counters', 'gen CPU %', 'Notes']),
    row(['---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---']),
  ];
  for (const cell of cells) {
    const m = cell.median;
    lines.push(
      row([
        cell.scenario,
        cell.subject ? `**${cell.target}**` : cell.target,
        num(m?.requestsPerS),
        num(m?.countersPerS),
        num(m?.latencyP50Ms),
        num(m?.latencyP99Ms),
        num(m?.serverCpuMsPerRequest),
        num(m?.serverCpuMsPerMillionCounters),
        num(m?.generatorCpuPct),
        notes(cell),
      ]),
    );
  }
  return lines.join('\n');
}

function versus(subject: number, baseline: number): string {
  const ratio = Number.isFinite(subject) && Number.isFinite(baseline) && baseline !== 0 ? subject / baseline : Number.NaN;
  return `${num(subject)} / ${num(baseline)} = ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '—'}`;
}

/** toptally beside each baseline of the same scenario, as toptally / baseline ratios. */
export function comparisonTable(cells: readonly CellResult[]): string {
  const lines = [
    row(['Scenario', 'Baseline', 'counters/s (higher is better)', 'p99 ms (lower is better)', 'CPU ms/M counters (lower is better)']),
    row(['---', '---', '---:', '---:', '---:']),
  ];
  let anyBound = false;
  for (const baseline of cells) {
    if (baseline.subject || baseline.status !== 'ok') continue;
    const subject = cells.find((c) => c.subject && c.scenario === baseline.scenario);
    const s = subject?.status === 'ok' ? subject.median : undefined;
    const b = baseline.median!;
    if (s === undefined) {
      lines.push(row([baseline.scenario, baseline.target, `toptally ${subject?.status ?? 'not run'}`, '—', '—']));
      continue;
    }
    const bound = baseline.generatorBound || subject!.generatorBound;
    if (bound) anyBound = true;
    lines.push(
      row([
        baseline.scenario,
        `${baseline.target}${bound ? ' †' : ''}`,
        versus(s.countersPerS, b.countersPerS),
        versus(s.latencyP99Ms, b.latencyP99Ms),
        versus(s.serverCpuMsPerMillionCounters, b.serverCpuMsPerMillionCounters),
      ]),
    );
  }
  if (anyBound) {
    lines.push('', '† a generator-bound row: the load generator, not that server, set its throughput, so read the ratio as a bound.');
  }
  return lines.join('\n');
}

/** A scenario's own table: one row per target, the columns it names. */
export function detailsTable(columns: readonly DetailColumn[], cells: readonly CellResult[]): string {
  const lines = [row(['Target', ...columns.map((c) => c.label)]), row(['---', ...columns.map(() => '---:')])];
  for (const cell of cells) {
    const values = columns.map((column) => {
      if (cell.status !== 'ok') return '—';
      const value = cell.details?.[column.key];
      return value === undefined || !Number.isFinite(value) ? (column.missing ?? '—') : num(value);
    });
    lines.push(row([cell.subject ? `**${cell.target}**` : cell.target, ...values]));
  }
  return lines.join('\n');
}
