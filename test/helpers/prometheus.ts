// Reads a /metrics exposition with a real Prometheus text-format parser, and
// looks samples up by name and labels.

import parsePrometheusTextFormat, { type ParsedFamily, type ParsedSample } from 'parse-prometheus-text-format';
import { get } from './http-client.js';

export class Exposition {
  readonly families: ReadonlyMap<string, ParsedFamily>;
  /**
   * Histogram series (NAME_bucket, NAME_sum, NAME_count) with their labels.
   * parse-prometheus-text-format 1.1.1 folds a labelled histogram into one
   * sample without labels (its flattenMetrics expects no labels but `le`), so
   * the text is parsed a second time without the histograms' TYPE lines:
   * each series then comes back as a family of its own, labels intact.
   */
  private readonly histogramSeries: ReadonlyMap<string, ParsedFamily>;

  constructor(readonly text: string) {
    const families = parsePrometheusTextFormat(text);
    this.families = new Map(families.map((f) => [f.name, f]));
    const histogramTypes = new Set(families.filter((f) => f.type === 'HISTOGRAM').map((f) => `# TYPE ${f.name} histogram`));
    const untyped = text
      .split('\n')
      .filter((line) => !histogramTypes.has(line))
      .join('\n');
    // Series of one histogram alternate (_bucket, _sum, _count per label set): gather them by name.
    const series = new Map<string, ParsedFamily>();
    for (const f of parsePrometheusTextFormat(untyped)) {
      const seen = series.get(f.name);
      series.set(f.name, seen === undefined ? f : { ...seen, metrics: [...seen.metrics, ...f.metrics] });
    }
    this.histogramSeries = series;
  }

  family(name: string): ParsedFamily {
    const f = this.families.get(name);
    if (f === undefined) throw new Error(`no metric family ${name} in the exposition`);
    return f;
  }

  /** Samples of `name` whose labels include all of `labels`. */
  samples(name: string, labels: Readonly<Record<string, string>> = {}): ParsedSample[] {
    return this.family(name).metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  }

  /**
   * A counter's or gauge's value for exactly these labels (0 when the series
   * is absent: counters appear on first use); a histogram's count.
   */
  value(name: string, labels: Readonly<Record<string, string>> = {}): number {
    let family = this.family(name);
    if (family.type === 'HISTOGRAM') {
      const count = this.histogramSeries.get(`${name}_count`);
      if (count === undefined) return 0; // no series observed yet
      family = count;
    }
    const want = Object.entries(labels);
    const sample = family.metrics.find(
      (m) => Object.keys(m.labels ?? {}).length === want.length && want.every(([k, v]) => m.labels?.[k] === v),
    );
    if (sample === undefined) return 0;
    if (sample.value === undefined) throw new Error(`${name} ${JSON.stringify(labels)} has no value`);
    return toNumber(sample.value);
  }
}

export async function scrape(adminPort: number): Promise<Exposition> {
  const r = await get(adminPort, '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}: ${r.body}`);
  return new Exposition(r.body);
}

/** The text format's special values as JavaScript numbers (Number('+Inf') is NaN). */
function toNumber(text: string): number {
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  const n = Number(text);
  if (Number.isNaN(n)) throw new Error(`not a sample value: ${text}`);
  return n;
}
