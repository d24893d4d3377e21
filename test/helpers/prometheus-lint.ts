// A strict reader of the Prometheus text format (0.0.4) that also applies the rules of
// `promtool check metrics` (Prometheus's promlint), so the test needs no Prometheus install. Returns
// one line per problem, worded like promtool's; an empty list means the exposition passes.

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// What Go's strconv.ParseFloat takes, as Prometheus reads values: NaN and Inf in any case
// (prom-client writes "Nan").
const VALUE = /^(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?inf(?:inity)?|nan)$/i;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
// promlint's lists: units that are not base units, and abbreviations of units.
const NON_BASE_UNITS = ['minutes', 'hours', 'days', 'weeks', 'milliseconds', 'microseconds', 'nanoseconds', 'bits', 'kilobytes', 'megabytes', 'gigabytes', 'terabytes', 'petabytes', 'kilometers', 'percent'];
const ABBREVIATIONS = new Set(['s', 'ms', 'us', 'ns', 'sec', 'b', 'kb', 'mb', 'gb', 'tb', 'pb', 'm', 'h', 'd']);

interface Family {
  type?: string;
  help?: string;
  samples: number;
  labelNames: Set<string>;
}

export function lintExposition(text: string): string[] {
  const problems: string[] = [];
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  if (!text.endsWith('\n')) problems.push('the exposition does not end with a newline');
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { samples: 0, labelNames: new Set() }));
    return f;
  };
  /** The family a sample belongs to: histogram and summary samples carry a suffix. */
  const owner = (name: string): string => {
    for (const suffix of ['_bucket', '_count', '_sum']) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && ['histogram', 'summary'].includes(families.get(base)?.type ?? '')) return base;
    }
    return name;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta) {
      const [, kind, name, rest = ''] = meta;
      if (!NAME.test(name)) problems.push(`${name}: invalid metric name`);
      const f = family(name);
      if (f.samples > 0) problems.push(`${name}: ${kind} after its samples`);
      if (kind === 'TYPE') {
        if (f.type !== undefined) problems.push(`${name}: second TYPE line`);
        if (!TYPES.has(rest)) problems.push(`${name}: unknown type ${JSON.stringify(rest)}`);
        f.type = rest;
      } else {
        if (f.help !== undefined) problems.push(`${name}: second HELP line`);
        f.help = rest;
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([^{\s]+)(?:\{(.*)\})? (\S+)(?: (-?[0-9]+))?$/.exec(line);
    if (!sample) {
      problems.push(`not a sample line: ${line}`);
      continue;
    }
    const [, name, labelText = '', value] = sample;
    if (!NAME.test(name)) problems.push(`${name}: invalid metric name`);
    if (!VALUE.test(value)) problems.push(`${name}: invalid value ${JSON.stringify(value)}`);
    const labels = parseLabels(labelText);
    if (typeof labels === 'string') {
      problems.push(`${name}: ${labels}`);
      continue;
    }
    const f = family(owner(name));
    f.samples++;
    for (const label of labels.keys()) f.labelNames.add(label);
    const identity = `${name}{${[...labels].sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    if (seen.has(identity)) problems.push(`${identity}: duplicate sample`);
    seen.add(identity);
  }
  for (const [name, f] of families) problems.push(...lintFamily(name, f));
  return problems;
}

function parseLabels(text: string): Map<string, string> | string {
  const labels = new Map<string, string>();
  let rest = text;
  while (rest !== '') {
    const match = /^([^=,"]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (!match) return `cannot read labels {${text}}`;
    if (!LABEL.test(match[1]) || match[1].startsWith('__')) return `invalid label name ${JSON.stringify(match[1])}`;
    if (labels.has(match[1])) return `label ${match[1]} given twice`;
    labels.set(match[1], match[2]);
    rest = rest.slice(match[0].length);
  }
  return labels;
}

/** promlint's rules, one family at a time. */
function lintFamily(name: string, f: Family): string[] {
  const problems: string[] = [];
  const type = f.type ?? 'untyped';
  if (f.type === undefined) problems.push(`${name}: no TYPE line`);
  if (!f.help) problems.push(`${name}: no help text`);
  if (type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: counter metrics should have "_total" suffix`);
  if (type !== 'counter' && name.endsWith('_total')) problems.push(`${name}: non-counter metrics should not have "_total" suffix`);
  if (type !== 'histogram' && name.endsWith('_bucket')) problems.push(`${name}: non-histogram metrics should not have "_bucket" suffix`);
  if (type !== 'histogram' && type !== 'summary' && (name.endsWith('_count') || name.endsWith('_sum'))) {
    problems.push(`${name}: non-histogram and non-summary metrics should not have "_count" or "_sum" suffix`);
  }
  if (type !== 'histogram' && f.labelNames.has('le')) problems.push(`${name}: non-histogram metrics should not have "le" label`);
  if (type !== 'summary' && f.labelNames.has('quantile')) problems.push(`${name}: non-summary metrics should not have "quantile" label`);
  if (name.includes(':')) problems.push(`${name}: metric names should not contain ':'`);
  if (/[a-z][A-Z]/.test(name)) problems.push(`${name}: metric names should be written in 'snake_case' not 'camelCase'`);
  for (const label of f.labelNames) {
    if (/[a-z][A-Z]/.test(label)) problems.push(`${name}: label names should be written in 'snake_case' not 'camelCase'`);
  }
  const tokens = name.split('_');
  for (const unit of NON_BASE_UNITS) if (tokens.includes(unit)) problems.push(`${name}: use base unit instead of "${unit}"`);
  if (tokens.some((token) => ABBREVIATIONS.has(token))) problems.push(`${name}: metric names should not contain abbreviated units`);
  for (const kind of ['counter', 'gauge', 'histogram', 'summary']) {
    if (tokens.includes(kind)) problems.push(`${name}: metric name should not include type '${kind}'`);
  }
  return problems;
}
