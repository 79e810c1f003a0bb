// The one-name cases (private, cached, uncached forward): each server of a
// case is driven twice per round, once flat out (peak qps) and once at a fixed
// offered load (CPU µs per answered query), servers alternating order per
// round; medians over the rounds, eipdns beside dnsmasq and Unbound.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuPerQuery, dnsperf, type Measurement } from './dnsperf.js';
import {
  FORWARDED_IP,
  FORWARDED_NAME,
  FORWARDED_TTL,
  PRIVATE_IP,
  PRIVATE_NAME,
  startDnsmasq,
  startEipdns,
  startUnbound,
  type Server,
} from './peers.js';
import { sleep, stop, type Pinning } from './procs.js';
import { describeMemory, describeRun, DISTURBED, fmtPct, fmtQps, fmtMs, fmtUs, median, range, SATURATED_IDLE, summarize, table } from './report.js';

export type CaseName = 'private' | 'cached' | 'uncached';
export const CASE_NAMES: readonly CaseName[] = ['private', 'cached', 'uncached'];

export interface CaseOptions {
  readonly cases: ReadonlySet<CaseName>;
  readonly rounds: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** dnsperf -Q of the fixed-load runs. */
  readonly fixedQps: number;
}

interface Case {
  readonly name: CaseName;
  readonly query: string;
  readonly dataFile: string;
  /** eipdns ≥ floor × dnsmasq (peak qps). */
  readonly floor: number;
  /** eipdns first, dnsmasq second, then the others. */
  readonly servers: readonly Server[];
  /** Processes sharing the client CPU (the upstream), for the CPU accounting. */
  readonly helpers: readonly number[];
}

/** What each server is, per case, for the table's legend. */
const SETUP: Record<CaseName, string> = {
  private: `${PRIVATE_NAME} A: eipdns from its inventory; dnsmasq --address; unbound local-data`,
  cached: `${FORWARDED_NAME} A again and again (upstream TTL ${FORWARDED_TTL} s): eipdns cache on (defaults); dnsmasq --cache-size=10000; unbound forward-zone, its cache`,
  uncached: `${FORWARDED_NAME} A, every query forwarded: eipdns cache: false, upstream.max_qps 1000000; dnsmasq --cache-size=0`,
};

export interface CaseResults {
  /** Exit status contribution: every floor met. */
  readonly pass: boolean;
}

/** The shared upstream: a dnsmasq answering fwd.test, pinned with dnsperf so the server CPU holds the forwarder only. */
export async function startUpstream(dir: string, pin: Pinning): Promise<Server> {
  return startDnsmasq('upstream', 'upstream', dir, pin.client, [`--address=/fwd.test/${FORWARDED_IP}`, `--local-ttl=${FORWARDED_TTL}`], [FORWARDED_NAME, FORWARDED_IP]);
}

export async function runCases(opts: CaseOptions, dir: string, pin: Pinning, upstream: Server): Promise<CaseResults> {
  const privateData = join(dir, 'private.txt');
  const forwardedData = join(dir, 'forwarded.txt');
  writeFileSync(privateData, `${PRIVATE_NAME} A\n`);
  writeFileSync(forwardedData, `${FORWARDED_NAME} A\n`);
  const sub = (name: string): string => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  const want = (c: CaseName): boolean => opts.cases.has(c);
  const withCache = want('private') || want('cached');

  // eipdns and dnsmasq with their cache serve both the private and the cached case.
  const eipdns = withCache ? await startEipdns({ label: 'eipdns', dir: sub('eipdns'), cpu: pin.server, upstreamPort: upstream.port }) : undefined;
  const eipdnsUncached = want('uncached')
    ? await startEipdns({ label: 'eipdns', dir: sub('eipdns-uncached'), cpu: pin.server, upstreamPort: upstream.port, cache: false, maxQps: 1_000_000 })
    : undefined;
  const dnsmasq = withCache
    ? await startDnsmasq('dnsmasq', 'resolver', dir, pin.server, [`--address=/${PRIVATE_NAME}/${PRIVATE_IP}`, '--cache-size=10000', `--server=127.0.0.1#${upstream.port}`], [PRIVATE_NAME, PRIVATE_IP])
    : undefined;
  const dnsmasqUncached = want('uncached')
    ? await startDnsmasq('dnsmasq', 'uncached', dir, pin.server, ['--cache-size=0', `--server=127.0.0.1#${upstream.port}`], [FORWARDED_NAME, FORWARDED_IP])
    : undefined;
  const unbound = withCache
    ? await startUnbound(
        'unbound',
        sub('unbound'),
        pin.server,
        { localData: [{ zone: 'internal', record: `${PRIVATE_NAME}. 5 IN A ${PRIVATE_IP}` }], forward: { zone: 'fwd.test', port: upstream.port } },
        [PRIVATE_NAME, PRIVATE_IP],
      )
    : undefined;
  const all = [eipdns, eipdnsUncached, dnsmasq, dnsmasqUncached, unbound].filter((s): s is NonNullable<typeof s> => s !== undefined);

  // Memory with the servers started, data loaded and one query answered each.
  await sleep(2000);
  const idle = [eipdns ?? eipdnsUncached, dnsmasq ?? dnsmasqUncached, unbound].filter((s) => s !== undefined);
  console.log(`idle RSS: ${describeMemory(idle.map((s) => ({ label: s.label, pid: s.started.pid })), 'rss')}`);

  const cases: Case[] = [];
  if (want('private')) {
    cases.push({ name: 'private', query: `${PRIVATE_NAME} A`, dataFile: privateData, floor: 0.5, servers: [eipdns!, dnsmasq!, unbound!], helpers: [] });
  }
  if (want('cached')) {
    cases.push({
      name: 'cached',
      query: `${FORWARDED_NAME} A`,
      dataFile: forwardedData,
      floor: 0.5,
      servers: [eipdns!, dnsmasq!, unbound!],
      helpers: [upstream.started.pid],
    });
  }
  if (want('uncached')) {
    // 0.25 until each upstream query got a socket of its own (RFC 5452 port
    // entropy, issue 6 §4): a bind and a close per query, measured at +7 µs
    // (34 → 42 µs per query, a third of the peak). Under the 900/s budget a
    // real upstream never sees more than 900 of these a second: 0.6 % of a core.
    cases.push({ name: 'uncached', query: `${FORWARDED_NAME} A`, dataFile: forwardedData, floor: 0.2, servers: [eipdnsUncached!, dnsmasqUncached!], helpers: [upstream.started.pid] });
  }

  // Warm-up (JIT, socket buffers, the caches' first fills): not counted.
  for (const c of cases) for (const s of c.servers) await dnsperf({ port: s.port, dataFile: c.dataFile, seconds: opts.warmupSeconds, pin });

  const peak = new Map<string, Measurement[]>();
  const fixed = new Map<string, Measurement[]>();
  const add = (m: Map<string, Measurement[]>, key: string, x: Measurement): void => void m.set(key, [...(m.get(key) ?? []), x]);
  for (let round = 1; round <= opts.rounds; round++) {
    for (const c of cases) {
      // Alternate who goes first, so a drift in machine load hits all alike.
      const order = round % 2 === 1 ? c.servers : [...c.servers].reverse();
      for (const s of order) {
        const run = { port: s.port, dataFile: c.dataFile, seconds: opts.seconds, pin, serverPid: s.started.pid, clientHelpers: c.helpers };
        const m = await dnsperf(run);
        add(peak, `${c.name}|${s.label}`, m);
        console.log(`  round ${round}  ${c.name.padEnd(8)}  ${s.label.padEnd(12)}  peak   ${describeRun(m)}`);
        const f = await dnsperf({ ...run, qps: opts.fixedQps });
        add(fixed, `${c.name}|${s.label}`, f);
        const us = cpuPerQuery(f);
        console.log(`  round ${round}  ${c.name.padEnd(8)}  ${s.label.padEnd(12)}  -Q ${opts.fixedQps}  ${us === undefined ? 'n/a' : fmtUs(us)}/query  ${describeRun(f)}`);
      }
    }
  }

  const pass = report(cases, peak, fixed, opts);
  console.log(`peak RSS over the runs: ${describeMemory(all.map((s) => ({ label: s === eipdnsUncached ? 'eipdns (cache: false)' : s === dnsmasqUncached ? 'dnsmasq (--cache-size=0)' : s.label, pid: s.started.pid })), 'peak')}`);
  for (const e of [eipdns, eipdnsUncached]) {
    if (e === undefined) continue;
    const lines = e.budgetLog();
    if (lines.length > 0) console.log(`note: ${e.label}${e === eipdnsUncached ? ' (cache: false)' : ''}: the upstream budget ran out during these cases:\n  ${lines.join('\n  ')}`);
  }
  await Promise.all(all.map((s) => stop(s.started)));
  return { pass };
}

function report(cases: readonly Case[], peak: Map<string, Measurement[]>, fixed: Map<string, Measurement[]>, opts: CaseOptions): boolean {
  const rows: string[][] = [
    ['case', 'server', 'peak qps', 'qps range', 'avg latency', 'server CPU', 'idle srv/cli', 'other', `µs/query @${fmtQps(opts.fixedQps)}`, 'µs range', 'qps vs dnsmasq', 'µs vs dnsmasq', 'floor', 'result'],
  ];
  const notes: string[] = [];
  const disturbed: string[] = [];
  const us = (c: CaseName, label: string): number[] =>
    (fixed.get(`${c}|${label}`) ?? []).map(cpuPerQuery).filter((x): x is number => x !== undefined);
  let pass = true;
  for (const c of cases) {
    const stats = c.servers.map((s) => summarize(peak.get(`${c.name}|${s.label}`)!));
    const usOf = c.servers.map((s) => us(c.name, s.label));
    const ref = stats[1]!;
    const refUs = usOf[1]!.length > 0 ? median(usOf[1]!) : undefined;
    const ratio = stats[0]!.qps / ref.qps;
    const ok = ratio >= c.floor;
    pass &&= ok;
    c.servers.forEach((s, i) => {
      const st = stats[i]!;
      const u = usOf[i]!;
      const mu = u.length > 0 ? median(u) : undefined;
      rows.push([
        i === 0 ? c.name : '',
        s.label,
        fmtQps(st.qps),
        range(st.qpsAll, fmtQps),
        fmtMs(st.latency),
        st.server === undefined ? 'n/a' : fmtPct(st.server),
        st.idle === undefined || st.clientIdle === undefined ? 'n/a' : `${fmtPct(st.idle)}/${fmtPct(st.clientIdle)}`,
        st.other === undefined ? 'n/a' : fmtPct(st.other),
        mu === undefined ? 'n/a' : fmtUs(mu),
        range(u, (x) => x.toFixed(1)),
        // The row checked against its floor gets a third decimal, so 0.248 does not read as 0.25.
        i === 1 ? '1.00' : (st.qps / ref.qps).toFixed(i === 0 ? 3 : 2),
        mu === undefined || refUs === undefined ? 'n/a' : i === 1 ? '1.00' : (mu / refUs).toFixed(2),
        i === 0 ? `≥ ${c.floor.toFixed(2)}` : '',
        i === 0 ? (ok ? 'PASS' : 'FAIL') : '',
      ]);
      if (st.idle !== undefined && st.clientIdle !== undefined && st.clientIdle < SATURATED_IDLE && st.idle >= SATURATED_IDLE) {
        notes.push(
          `${c.name}/${s.label}: the client CPU (dnsperf${c.helpers.length > 0 ? ' + upstream' : ''}) was saturated (${fmtPct(st.clientIdle)} idle) while the server's CPU was ${fmtPct(st.idle)} idle: ` +
            `this peak is the client's limit, not the server's${i === 1 ? ', so the ratios against it flatter the others' : ''}`,
        );
      }
      if (st.notAnswered > 0.01) notes.push(`${c.name}/${s.label}: up to ${fmtPct(st.notAnswered)} of the responses in a peak run were not NOERROR`);
      for (const f of fixed.get(`${c.name}|${s.label}`) ?? []) {
        if (f.answeredQps < 0.97 * opts.fixedQps) {
          notes.push(`${c.name}/${s.label}: a fixed-load run answered ${fmtQps(f.answeredQps)} of ${fmtQps(opts.fixedQps)} offered (NOERROR/s): its µs/query is at a lower load [${f.rcodes}]`);
          break;
        }
      }
      const fixedOther = Math.max(0, ...(fixed.get(`${c.name}|${s.label}`) ?? []).map((f) => (f.cpu ? Math.max(f.cpu.otherOnServerCpu, f.cpu.otherOnClientCpu) : 0)));
      if ((st.other ?? 0) > DISTURBED || fixedOther > DISTURBED) disturbed.push(`${c.name}/${s.label} ${fmtPct(st.other ?? 0)}/${fmtPct(fixedOther)}`);
    });
  }
  console.log(`\n${table(rows)}`);
  console.log(
    'peak: dnsperf flat out; server CPU, idle of the server/client CPU: medians of the peak runs, shares of one CPU (server CPU + idle < 100%: the rest is network interrupts); ' +
      'other: the most that other processes or hypervisor steal took from either pinned CPU in one peak run; ' +
      `µs/query: the server's utime+stime over the middle of a run at dnsperf -Q ${opts.fixedQps}, per NOERROR answer (median, range over rounds)`,
  );
  for (const c of cases) console.log(`  ${c.name}: ${SETUP[c.name]}`);
  const priv = us('private', 'eipdns');
  const hit = us('cached', 'eipdns');
  if (priv.length > 0 && hit.length > 0) {
    console.log(`eipdns: a cache hit costs ${fmtUs(median(hit))} of CPU, a private answer ${fmtUs(median(priv))} (×${(median(hit) / median(priv)).toFixed(2)})`);
  }
  if (disturbed.length > 0) {
    notes.push(
      `other processes took more than ${fmtPct(DISTURBED)} of a pinned CPU (the most in one peak/fixed-load run): ${disturbed.join(', ')}. ` +
        "Peak qps of those runs is disturbed (rerun on a quiet machine); µs/query counts the server's own CPU time and holds up better",
    );
  }
  for (const note of notes) console.log(`note: ${note}`);
  return pass;
}
