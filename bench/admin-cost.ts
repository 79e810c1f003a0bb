// What admin.listen costs the DNS hot path (issue 8: at most 5 % of private
// qps). Two eipdns processes of the same build differ by several percent in
// qps and CPU per query (JIT decisions, memory layout: measured 4 % and 7 %),
// so one process of each, however many rounds, cannot resolve 5 %. Each round
// here starts a FRESH pair, plain and with admin.listen (its /metrics scraped
// every second: Prometheus scrapes every 15-60 s, so this is pessimistic),
// run back to back in alternating order; the figures are medians over the
// processes.

import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpuPerQuery, dnsperf } from './dnsperf.js';
import { startEipdns, type Eipdns } from './peers.js';
import { stop, type Pinning } from './procs.js';
import { fmtQps, fmtUs, median, range } from './report.js';

export interface AdminCostOptions {
  /** Fresh process pairs. */
  readonly pairs: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly fixedQps: number;
  /** The private case's query file. */
  readonly dataFile: string;
}

/** The limit, as a ratio of qps. */
const LIMIT = 0.95;

export async function runAdminCost(o: AdminCostOptions, dir: string, pin: Pinning, upstreamPort: number): Promise<boolean> {
  const qps: Record<'plain' | 'admin', number[]> = { plain: [], admin: [] };
  const us: Record<'plain' | 'admin', number[]> = { plain: [], admin: [] };
  console.log(`\nadmin cost: ${o.pairs} fresh pairs of eipdns processes, without and with admin.listen (/metrics scraped every second), private case`);
  for (let pair = 1; pair <= o.pairs; pair++) {
    const order = pair % 2 === 1 ? (['plain', 'admin'] as const) : (['admin', 'plain'] as const);
    for (const which of order) {
      const d = join(dir, `admin-cost-${pair}-${which}`);
      mkdirSync(d, { recursive: true });
      const e = await startEipdns({ label: which, dir: d, cpu: pin.server, upstreamPort, admin: which === 'admin' });
      const stopScraping = which === 'admin' ? scrapeEverySecond(e) : () => undefined;
      try {
        const run = { port: e.port, dataFile: o.dataFile, pin, serverPid: e.started.pid, clientHelpers: [] };
        await dnsperf({ ...run, seconds: o.warmupSeconds });
        const peak = await dnsperf({ ...run, seconds: o.seconds });
        const fixed = await dnsperf({ ...run, seconds: o.seconds, qps: o.fixedQps });
        const u = cpuPerQuery(fixed);
        qps[which].push(peak.qps);
        if (u !== undefined) us[which].push(u);
        console.log(`  pair ${pair}  ${which.padEnd(5)}  peak ${fmtQps(peak.qps)} qps  ${u === undefined ? 'n/a' : fmtUs(u)}/query at -Q ${o.fixedQps}`);
      } finally {
        stopScraping();
        await stop(e.started);
      }
    }
  }
  const ratio = median(qps.admin) / median(qps.plain);
  const cpu = us.plain.length > 0 && us.admin.length > 0 ? median(us.admin) / median(us.plain) - 1 : undefined;
  const ok = ratio >= LIMIT;
  console.log(
    `admin cost: qps with admin ${fmtQps(median(qps.admin))} (${range(qps.admin, fmtQps)}) vs without ${fmtQps(median(qps.plain))} (${range(qps.plain, fmtQps)}): ` +
      `ratio ${ratio.toFixed(3)} (limit ≥ ${LIMIT}) ${ok ? 'PASS' : 'FAIL'}` +
      (cpu === undefined ? '' : `; CPU per query ${fmtUs(median(us.admin))} (${range(us.admin, (x) => x.toFixed(1))}) vs ${fmtUs(median(us.plain))} (${range(us.plain, (x) => x.toFixed(1))}): ${(cpu * 100).toFixed(1)} %`),
  );
  return ok;
}

function scrapeEverySecond(e: Eipdns): () => void {
  const url = `http://127.0.0.1:${e.adminPort}/metrics`;
  let failures = 0;
  const timer = setInterval(() => {
    const req = http.get(url, { agent: false }, (r) => {
      r.resume();
      if (r.statusCode !== 200) failures++;
    });
    req.on('error', () => failures++);
  }, 1000);
  return () => {
    clearInterval(timer);
    if (failures > 0) console.log(`note: ${failures} /metrics scrape(s) failed`);
  };
}

