// The realistic case: Zipf-distributed queries over ~10 000 names whose TTLs
// run from 30 s to 1 h, answered by an authoritative NSD that serves each
// name with its own TTL and counts every query that reaches it. eipdns (its
// default cache bounds and budget) and dnsmasq (--cache-size=10000) each
// start cold and get the same query file at the same offered rate for the
// same time. NSD's count is the witness of the packets each sent upstream,
// eipdns's /metrics (admin.listen) what it did itself (cache hits, prefetches,
// budget rejections): eipdns must send no more than dnsmasq for the same work.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scrape, type Exposition } from '../test/helpers/prometheus.js';
import { dnsperf, type Measurement } from './dnsperf.js';
import { startDnsmasq, startEipdns, startNsd, waitForAnswer, type Nsd, type Server } from './peers.js';
import { memoryOf, sleep, stop, type Memory, type Pinning } from './procs.js';
import { fmtMb, fmtPct, fmtQps, median, range, table } from './report.js';

const ZONE = 'zipf.test';
const PROBE = [`probe.${ZONE}`, '192.0.2.53'] as const;
const MIN_TTL = 30;
const MAX_TTL = 3600;

export interface RealisticOptions {
  readonly names: number;
  /** Zipf exponent. */
  readonly s: number;
  /** Offered load, queries per second (dnsperf -Q). */
  readonly qps: number;
  readonly seconds: number;
  readonly rounds: number;
  readonly seed: number;
  /** Also run eipdns with cache.prefetch: true (off by default), to see what prefetch costs upstream. */
  readonly withPrefetch: boolean;
}

type Which = 'eipdns' | 'dnsmasq' | 'eipdns (prefetch: true)';

/** mulberry32: a small seeded PRNG, so the zone and the query file are the same every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const nameOf = (i: number): string => `n${i}.${ZONE}`;

/** The zone: name i has popularity rank i + 1 and a TTL drawn log-uniformly from [30 s, 1 h], independent of its rank. */
export function zipfZone(o: RealisticOptions): { text: string; ttls: number[] } {
  const random = prng(o.seed);
  const ttls: number[] = [];
  const lines = [
    `$ORIGIN ${ZONE}.`,
    `@ 3600 IN SOA ns.${ZONE}. hostmaster.${ZONE}. 1 3600 600 86400 300`,
    '@ 3600 IN NS ns',
    'ns 3600 IN A 192.0.2.53',
    `probe ${MIN_TTL} IN A ${PROBE[1]}`,
  ];
  for (let i = 0; i < o.names; i++) {
    const ttl = Math.round(MIN_TTL * (MAX_TTL / MIN_TTL) ** random());
    ttls.push(ttl);
    lines.push(`n${i} ${ttl} IN A 198.18.${(i >> 8) & 0xff}.${i & 0xff}`);
  }
  return { text: `${lines.join('\n')}\n`, ttls };
}

/** `count` queries drawn from Zipf(s) over the names (rank 1 most popular), in dnsperf's format. */
export function zipfQueries(o: RealisticOptions, count: number): { text: string; distinct: number } {
  const cdf = new Float64Array(o.names);
  let sum = 0;
  for (let i = 0; i < o.names; i++) cdf[i] = sum += 1 / (i + 1) ** o.s;
  const random = prng(o.seed + 1);
  const lines: string[] = [];
  const seen = new Set<number>();
  for (let q = 0; q < count; q++) {
    const x = random() * sum;
    let lo = 0;
    let hi = o.names - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    seen.add(lo);
    lines.push(`${nameOf(lo)} A`);
  }
  return { text: `${lines.join('\n')}\n`, distinct: seen.size };
}

interface Run {
  readonly m: Measurement;
  /** Queries NSD received during the run. */
  readonly upstream: number;
  /** ... during its second half (the cold fill mostly done). */
  readonly upstreamLate: number;
  readonly start: Memory | undefined;
  readonly end: Memory | undefined;
  /** eipdns's own counters over the run, from /metrics. */
  readonly eipdns?: EipdnsCounts;
}

interface EipdnsCounts {
  /** Queries written upstream (eipdns_upstream_requests_total, all servers). */
  readonly sent: number;
  readonly budgetRejections: number;
  readonly hits: number;
  readonly misses: number;
  readonly prefetches: number;
  readonly refreshes: number;
  readonly coalesced: number;
  readonly staleServed: number;
  readonly evictions: number;
}

function counts(x: Exposition): EipdnsCounts {
  const v = (name: string): number => x.value(name);
  return {
    sent: x.samples('eipdns_upstream_requests_total').reduce((n, m) => n + Number(m.value), 0),
    budgetRejections: v('eipdns_upstream_budget_rejections_total'),
    hits: v('eipdns_cache_hits_total'),
    misses: v('eipdns_cache_misses_total'),
    prefetches: v('eipdns_cache_prefetches_total'),
    refreshes: v('eipdns_cache_refreshes_total'),
    coalesced: v('eipdns_cache_coalesced_total'),
    staleServed: v('eipdns_cache_stale_served_total'),
    evictions: v('eipdns_cache_evictions_total'),
  };
}

function minus(a: EipdnsCounts, b: EipdnsCounts): EipdnsCounts {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a) as (keyof EipdnsCounts)[]) out[k] = a[k] - b[k];
  return out as unknown as EipdnsCounts;
}

export async function runRealistic(o: RealisticOptions, dir: string, pin: Pinning): Promise<boolean> {
  const rdir = join(dir, 'realistic');
  mkdirSync(rdir, { recursive: true });
  const zone = zipfZone(o);
  const count = o.qps * o.seconds;
  const queries = zipfQueries(o, count);
  const dataFile = join(rdir, 'queries.txt');
  writeFileSync(dataFile, queries.text);
  const ttlShare = (limit: number): string => fmtPct(zone.ttls.filter((t) => t < limit).length / zone.ttls.length);
  console.log(
    `\nrealistic: ${o.names} names in ${ZONE} (NSD, TTL log-uniform ${MIN_TTL} s–${MAX_TTL / 3600} h: ${ttlShare(60)} under 1 min, ${ttlShare(600)} under 10 min), ` +
      `${count} queries Zipf s=${o.s} (${queries.distinct} distinct names), dnsperf -Q ${o.qps} -l ${o.seconds}, each server started cold; ${o.rounds} round(s)`,
  );

  const nsd = await startNsd(rdir, pin.client, ZONE, zone.text, PROBE);
  const runs = new Map<string, Run[]>();
  try {
    for (let round = 1; round <= o.rounds; round++) {
      const servers: Which[] = ['eipdns', 'dnsmasq', ...(o.withPrefetch ? (['eipdns (prefetch: true)'] as const) : [])];
      const order = round % 2 === 1 ? servers : [...servers].reverse();
      for (const which of order) {
        const run = await runOne(which, round, rdir, pin, nsd, dataFile, o);
        runs.set(which, [...(runs.get(which) ?? []), run]);
        const c = run.eipdns;
        console.log(
          `  round ${round}  ${which.padEnd(24)}  ${fmtQps(run.m.qps)} qps${run.m.lost > 0 ? ` (lost ${run.m.lost})` : ''}, upstream ${run.upstream} queries (${(run.upstream / run.m.runTime).toFixed(0)}/s; ${(run.upstreamLate / (run.m.runTime / 2)).toFixed(0)}/s in the 2nd half), ` +
            `hit ratio ${fmtPct(1 - run.upstream / run.m.completed)}, RSS ${fmtMb(run.start?.rss ?? NaN)} → peak ${fmtMb(run.end?.peak ?? NaN)} → ${fmtMb(run.end?.rss ?? NaN)}` +
            `${c ? `, budget rejections ${c.budgetRejections}` : ''}  [${run.m.rcodes}]`,
        );
      }
    }
  } finally {
    await stop(nsd.started);
  }
  return reportRealistic(runs, o, zone.ttls);
}

async function runOne(which: Which, round: number, rdir: string, pin: Pinning, nsd: Nsd, dataFile: string, o: RealisticOptions): Promise<Run> {
  let server: Server;
  let adminPort: number | undefined;
  if (which !== 'dnsmasq') {
    const prefetch = which === 'eipdns (prefetch: true)';
    const d = join(rdir, `eipdns-${prefetch ? 'prefetch-' : ''}${round}`);
    mkdirSync(d, { recursive: true });
    // The defaults a host would run: cache bounds, serve-stale, max_qps 900 (prefetch off).
    // admin.listen for its own counters, read before and after the run.
    const e = await startEipdns({ label: which, dir: d, cpu: pin.server, upstreamPort: nsd.port, admin: true, ...(prefetch ? { prefetch: true } : {}) });
    adminPort = e.adminPort;
    server = e;
  } else {
    server = await startDnsmasq('dnsmasq', `zipf-${round}`, rdir, pin.server, ['--cache-size=10000', `--server=127.0.0.1#${nsd.port}`], PROBE);
  }
  await waitForAnswer(server, PROBE[0], PROBE[1]);
  await sleep(1000);
  const startMem = memoryOf(server.started.pid);
  const before = await nsd.queries();
  const ownBefore = adminPort !== undefined ? counts(await scrape(adminPort)) : undefined;
  const half = sleep((o.seconds * 1000) / 2).then(() => nsd.queries());
  const m = await dnsperf({ port: server.port, dataFile, seconds: o.seconds, qps: o.qps, pin, serverPid: server.started.pid, clientHelpers: [nsd.started.pid] });
  const after = await nsd.queries();
  const upstream = after - before;
  const upstreamLate = after - (await half);
  const endMem = memoryOf(server.started.pid);
  const own = adminPort !== undefined && ownBefore !== undefined ? minus(counts(await scrape(adminPort)), ownBefore) : undefined;
  await stop(server.started);
  return { m, upstream, upstreamLate, start: startMem, end: endMem, ...(own ? { eipdns: own } : {}) };
}

function reportRealistic(runs: Map<string, Run[]>, o: RealisticOptions, ttls: readonly number[]): boolean {
  const rows: string[][] = [['server', 'client qps', 'NOERROR', 'upstream queries', 'upstream qps', '2nd half', 'hit ratio', 'server CPU', 'RSS start', 'RSS peak', 'RSS end', 'budget rejections']];
  const med = (rs: readonly Run[], f: (r: Run) => number): number => median(rs.map(f));
  for (const [label, rs] of runs) {
    rows.push([
      label,
      fmtQps(med(rs, (r) => r.m.qps)),
      fmtPct(med(rs, (r) => (r.m.byRcode.get('NOERROR') ?? 0) / Math.max(1, r.m.completed))),
      `${med(rs, (r) => r.upstream).toFixed(0)}${rs.length > 1 ? ` (${range(rs.map((r) => r.upstream), (x) => x.toFixed(0))})` : ''}`,
      med(rs, (r) => r.upstream / r.m.runTime).toFixed(0),
      med(rs, (r) => r.upstreamLate / (r.m.runTime / 2)).toFixed(0),
      fmtPct(med(rs, (r) => 1 - r.upstream / r.m.completed)),
      rs.every((r) => r.m.cpu) ? fmtPct(med(rs, (r) => r.m.cpu!.server)) : 'n/a',
      fmtMb(med(rs, (r) => r.start?.rss ?? NaN)),
      fmtMb(med(rs, (r) => r.end?.peak ?? NaN)),
      fmtMb(med(rs, (r) => r.end?.rss ?? NaN)),
      rs.every((r) => r.eipdns) ? rs.map((r) => r.eipdns!.budgetRejections).join(', ') : 'n/a (no budget)',
    ]);
  }
  console.log(`\n${table(rows)}`);
  console.log(
    'upstream queries: counted by NSD (nsd-control stats_noreset, num.queries) over the run (eipdns\'s own count is below); upstream qps: over the run, and over its second half (most of the cold fill done); hit ratio: 1 − upstream queries / client queries answered; ' +
      'RSS start: before the run (process warm, cache empty); peak: VmHWM since the process started; end: right after the run',
  );
  const e = runs.get('eipdns') ?? [];
  const d = runs.get('dnsmasq') ?? [];
  const wp = runs.get('eipdns (prefetch: true)') ?? [];
  if (wp.length > 0 && e.length > 0) {
    const diff = med(wp, (r) => r.upstream) - med(e, (r) => r.upstream);
    console.log(`prefetch: eipdns with prefetch sent ${diff >= 0 ? `${diff.toFixed(0)} more` : `${(-diff).toFixed(0)} fewer`} queries upstream than without (prefetch refreshes a name asked in the last 10 % of its TTL, before it expires)`);
  }
  if (e.length === 0 || d.length === 0) return true;
  const eu = med(e, (r) => r.upstream);
  const du = med(d, (r) => r.upstream);
  const ok = eu <= du;
  const rejected = (rs: readonly Run[]): number => rs.reduce((n, r) => n + (r.eipdns?.budgetRejections ?? 0), 0);
  // Queries the budget refused were not sent, and their clients got SERVFAIL:
  // fewer packets then prove nothing about the cache.
  const verdict = ok && rejected(e) > 0 ? "INCONCLUSIVE (eipdns's budget refused queries: not the same work)" : ok ? 'PASS' : 'FAIL';
  console.log(`check: eipdns sent ${eu.toFixed(0)} queries upstream, dnsmasq ${du.toFixed(0)} (eipdns ≤ dnsmasq for the same work) ${verdict}`);
  for (const [label, rs] of [['eipdns', e], ['eipdns (prefetch: true)', wp]] as const) {
    for (const r of rs) {
      const c = r.eipdns;
      if (c === undefined) continue;
      const asked = c.hits + c.misses;
      console.log(
        `${label}, its own counters (/metrics): sent ${c.sent} upstream (NSD counted ${r.upstream}); cache hits ${c.hits}, misses ${c.misses} ` +
          `(hit ratio ${fmtPct(asked > 0 ? c.hits / asked : 0)}), coalesced ${c.coalesced}, prefetches ${c.prefetches}, refreshes ${c.refreshes}, stale served ${c.staleServed}, evictions ${c.evictions}`,
      );
    }
    if (rs.length === 0) continue;
    console.log(
      rejected(rs) > 0
        ? `note: ${label}: the upstream budget (upstream.max_qps, default 900) refused ${rejected(rs)} queries (eipdns_upstream_budget_rejections_total): ` +
            'those clients got SERVFAIL or a stale answer, and fewer packets went upstream than the work needed'
        : `${label}: the upstream budget (upstream.max_qps, default 900) refused nothing (eipdns_upstream_budget_rejections_total did not move)`,
    );
  }
  const notAnswered = [...e, ...d, ...wp].filter((r) => (r.m.byRcode.get('NOERROR') ?? 0) < r.m.completed || r.m.lost > 0);
  if (notAnswered.length > 0) console.log(`note: some realistic runs had answers other than NOERROR or lost queries (see the rounds above)`);
  const expiring = ttls.filter((t) => t < o.seconds).length / ttls.length;
  if (expiring < 0.25) console.log(`note: in a ${o.seconds} s run only names with a TTL under ${o.seconds} s (${fmtPct(expiring)} of them) can expire and be asked again: it mostly measures the cold fill`);
  return ok;
}
