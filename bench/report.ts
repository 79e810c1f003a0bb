// Formatting for the bench's output: medians, one line per run, tables.

import type { Measurement } from './dnsperf.js';
import { memoryOf } from './procs.js';

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export const fmtQps = (n: number): string => `${(n / 1000).toFixed(1)}k`;
export const fmtMs = (s: number): string => `${(s * 1000).toFixed(3)} ms`;
export const fmtPct = (x: number): string => `${(x * 100).toFixed(0)}%`;
export const fmtUs = (us: number): string => `${us.toFixed(1)} µs`;
export const fmtMb = (mb: number): string => `${mb.toFixed(1)} MB`;
export const range = (xs: readonly number[], f: (x: number) => string): string =>
  xs.length === 0 ? 'n/a' : xs.length === 1 ? f(xs[0]!) : `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;

/** Other work above this share of a pinned CPU during a run makes its number suspect. */
export const DISTURBED = 0.05;
/** A CPU less idle than this is saturated: the bottleneck. */
export const SATURATED_IDLE = 0.05;

export function describeRun(m: Measurement): string {
  const lost = m.lost > 0 ? `, lost ${m.lost}/${m.sent}` : '';
  const cpu = m.cpu
    ? `  CPU server ${fmtPct(m.cpu.server)} (idle ${fmtPct(m.cpu.serverCpuIdle)}), dnsperf ${fmtPct(m.cpu.dnsperf)} (client CPU idle ${fmtPct(m.cpu.clientCpuIdle)}), other ${fmtPct(m.cpu.otherOnServerCpu)}/${fmtPct(m.cpu.otherOnClientCpu)}`
    : '';
  return `${fmtQps(m.qps).padStart(7)} qps  avg ${fmtMs(m.avgLatency)}${lost}${cpu}  [${m.rcodes}]`;
}

export interface Summary {
  readonly qps: number;
  readonly qpsAll: readonly number[];
  readonly latency: number;
  readonly server?: number;
  readonly idle?: number;
  readonly clientIdle?: number;
  readonly dnsperf?: number;
  /** The most other processes took from either pinned CPU in one run. */
  readonly other?: number;
  /** Share of responses that were not NOERROR, the worst run. */
  readonly notAnswered: number;
}

export function summarize(ms: readonly Measurement[]): Summary {
  const cpu = ms.every((m) => m.cpu !== undefined) ? ms.map((m) => m.cpu!) : undefined;
  return {
    qps: median(ms.map((m) => m.qps)),
    qpsAll: ms.map((m) => m.qps),
    latency: median(ms.map((m) => m.avgLatency)),
    notAnswered: Math.max(...ms.map((m) => (m.completed === 0 ? 1 : 1 - (m.byRcode.get('NOERROR') ?? 0) / m.completed))),
    ...(cpu
      ? {
          server: median(cpu.map((c) => c.server)),
          idle: median(cpu.map((c) => c.serverCpuIdle)),
          clientIdle: median(cpu.map((c) => c.clientCpuIdle)),
          dnsperf: median(cpu.map((c) => c.dnsperf)),
          other: Math.max(...cpu.map((c) => Math.max(c.otherOnServerCpu, c.otherOnClientCpu))),
        }
      : {}),
  };
}

export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...r[i]!].length)));
  const line = (r: readonly string[]): string => `| ${r.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

export function describeMemory(servers: readonly { label: string; pid: number | undefined }[], which: 'rss' | 'peak'): string {
  return servers
    .map((s) => {
      const m = memoryOf(s.pid);
      return `${s.label} ${m === undefined ? 'n/a' : fmtMb(m[which])}`;
    })
    .join(', ');
}
