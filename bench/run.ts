// eipdns beside dnsmasq and Unbound under dnsperf, the method of
// docs/dns2-and-speed.md: `dnsperf -c 10 -q 100` over loopback, servers pinned
// to CPU 0, dnsperf (and the shared upstream) to CPU 1, every server of a case
// measured in the same run, alternating order per round, medians of the
// rounds. Ratios matter, not absolute numbers; on a shared machine the CPU
// time per query at a fixed load is the steady figure, peak qps is not.
//
//   npm run bench                       3 rounds × 10 s per server and case, realistic 1 × 60 s
//   npm run bench -- --quick            1 round × 3 s, realistic 10 s (a smoke test)
//   npm run bench -- --cases private,cached --rounds 5 --seconds 20
//   npm run bench -- --quick --profile cached    also profile eipdns in that case
//   npm run bench -- --admin            eipdns with and without admin.listen (issue 8)
//
// Cases (see the HELP below and the README's Performance section):
//   private    db.internal A: eipdns from an inventory; dnsmasq --address; Unbound local-data
//   cached     one forwarded name again and again: each server's cache
//   uncached   every query forwarded (eipdns cache: false, no budget in the way; dnsmasq --cache-size=0)
//   realistic  Zipf queries over 10 000 names with TTLs 30 s–1 h from NSD: upstream packets, hit ratio, RSS
// Module map: procs.ts (processes, pinning, /proc), dnsperf.ts (runs and CPU
// accounting), peers.ts (the servers), cases.ts, realistic.ts, profile.ts,
// report.ts (formatting).
//
// Exit status: 0 when every floor and check holds, 1 when one does not (or on
// an error). Everything started here is stopped on exit, Ctrl-C included.

import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { runAdminCost } from './admin-cost.js';
import { CASE_NAMES, runCases, startUpstream, type CaseName } from './cases.js';
import { CLIENTS, OUTSTANDING } from './dnsperf.js';
import { PRIVATE_NAME } from './peers.js';
import { profile } from './profile.js';
import { benchDir, cleanupNow, loadavg, ROOT, stop, tool, type Pinning } from './procs.js';
import { runRealistic, type RealisticOptions } from './realistic.js';

type Which = CaseName | 'realistic';
const ALL: readonly Which[] = [...CASE_NAMES, 'realistic'];

interface Options {
  readonly cases: ReadonlySet<Which>;
  readonly rounds: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly fixedQps: number;
  readonly admin: boolean;
  readonly profile: CaseName | undefined;
  readonly realistic: RealisticOptions;
  readonly build: boolean;
}

const HELP = `Usage: npm run bench -- [options]
  --cases LIST      comma-separated, of ${ALL.join(', ')}
                    (default all; "" for none, e.g. with --profile alone)
  --rounds N        measured rounds per case and server (default 3)
  --seconds S       length of each dnsperf run (default 10)
  --fixed-qps Q     offered load of the CPU-per-query runs, dnsperf -Q (default 15000)
  --quick           1 round of 3 s; realistic 10 s
  --admin           what admin.listen costs the private case: 2 × rounds (at
                    least 4) fresh pairs of eipdns processes, without and with
                    admin.listen (/metrics scraped every second), medians over
                    the processes; checked: qps ratio ≥ 0.95 (issue 8)
  --profile [CASE]  also run eipdns under --cpu-prof in CASE (private, cached or
                    uncached; default private) and print the top 15 functions
                    by self time (profile in bench/out/)
  --zipf-qps Q      realistic: offered load (default 2000)
  --zipf-seconds S  realistic: run length (default 60; 10 with --quick)
  --zipf-names N    realistic: names in the zone (default 10000)
  --zipf-s S        realistic: Zipf exponent (default 1)
  --zipf-rounds N   realistic: rounds, servers alternating (default 1)
  --zipf-prefetch   realistic: also run eipdns with cache.prefetch: true (off by
                    default), to see what prefetch costs upstream
  --no-build        use dist/ as it is instead of bundling it first
`;

function parseOptions(argv: readonly string[]): Options {
  // --profile takes an optional case: a bare --profile means private.
  const args = argv.flatMap((a, i) => (a === '--profile' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--')) ? ['--profile', 'private'] : [a]));
  const { values } = parseArgs({
    args,
    options: {
      cases: { type: 'string' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      'fixed-qps': { type: 'string' },
      quick: { type: 'boolean' },
      admin: { type: 'boolean' },
      profile: { type: 'string' },
      'zipf-qps': { type: 'string' },
      'zipf-seconds': { type: 'string' },
      'zipf-names': { type: 'string' },
      'zipf-s': { type: 'string' },
      'zipf-rounds': { type: 'string' },
      'zipf-prefetch': { type: 'boolean' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const positive = (name: string, text: string | undefined, fallback: number, integer = true): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!(n > 0) || (integer && !Number.isInteger(n))) throw new Error(`--${name} wants a positive ${integer ? 'integer' : 'number'}, got "${text}"`);
    return n;
  };
  const cases = new Set<Which>();
  for (const c of (values.cases ?? ALL.join(',')).split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    if (!(ALL as readonly string[]).includes(c)) throw new Error(`--cases: unknown case "${c}" (known: ${ALL.join(', ')})`);
    cases.add(c as Which);
  }
  if (values.profile !== undefined && !(CASE_NAMES as readonly string[]).includes(values.profile)) {
    throw new Error(`--profile: unknown case "${values.profile}" (known: ${CASE_NAMES.join(', ')})`);
  }
  const quick = values.quick === true;
  const seconds = positive('seconds', values.seconds, quick ? 3 : 10);
  return {
    cases,
    rounds: positive('rounds', values.rounds, quick ? 1 : 3),
    seconds,
    warmupSeconds: Math.min(2, seconds),
    fixedQps: positive('fixed-qps', values['fixed-qps'], 15_000),
    admin: values.admin === true,
    profile: values.profile as CaseName | undefined,
    realistic: {
      names: positive('zipf-names', values['zipf-names'], 10_000),
      s: positive('zipf-s', values['zipf-s'], 1, false),
      qps: positive('zipf-qps', values['zipf-qps'], 2000),
      seconds: positive('zipf-seconds', values['zipf-seconds'], quick ? 10 : 60),
      rounds: positive('zipf-rounds', values['zipf-rounds'], 1),
      seed: 6,
      withPrefetch: values['zipf-prefetch'] === true,
    },
    build: values['no-build'] !== true,
  };
}

function build(): void {
  process.stdout.write('building dist/ (node scripts/build.mjs)... ');
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/build.mjs failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  process.stdout.write('ok\n');
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  for (const t of ['dnsmasq', 'dnsperf', 'taskset', 'unbound', 'nsd', 'nsd-control']) tool(t);
  const cpus = availableParallelism();
  const pin: Pinning = cpus >= 2 ? { server: 0, client: 1 } : { server: undefined, client: undefined };
  if (cpus < 2) process.stderr.write('warning: fewer than 2 CPUs: nothing is pinned, numbers mean little\n');
  if (opts.build) build();
  const dir = benchDir();

  const oneName = CASE_NAMES.filter((c) => opts.cases.has(c));
  console.log(
    `method: dnsperf -c ${CLIENTS} -q ${OUTSTANDING} -l ${opts.seconds}, flat out and at -Q ${opts.fixedQps}, ${opts.rounds} round(s), medians; ` +
      `servers on CPU ${pin.server ?? '-'}, dnsperf and the upstream on CPU ${pin.client ?? '-'}; ${opts.warmupSeconds} s warm-up per server and case`,
  );
  console.log(`node ${process.version}, ${cpus} CPUs, load average at start ${loadavg()}`);

  let pass = true;
  const upstream = oneName.length > 0 || opts.profile !== undefined || opts.admin ? await startUpstream(dir, pin) : undefined;
  if (oneName.length > 0) {
    const r = await runCases({ cases: new Set(oneName), rounds: opts.rounds, seconds: opts.seconds, warmupSeconds: opts.warmupSeconds, fixedQps: opts.fixedQps }, dir, pin, upstream!);
    pass &&= r.pass;
  }
  if (opts.admin) {
    const dataFile = join(dir, 'admin-private.txt');
    writeFileSync(dataFile, `${PRIVATE_NAME} A\n`);
    const o = { pairs: Math.max(opts.rounds * 2, 4), seconds: opts.seconds, warmupSeconds: opts.warmupSeconds, fixedQps: opts.fixedQps, dataFile };
    pass = (await runAdminCost(o, dir, pin, upstream!.port)) && pass;
  }
  if (opts.cases.has('realistic')) pass = (await runRealistic(opts.realistic, dir, pin)) && pass;
  console.log(`load average at end ${loadavg()}`);
  if (opts.profile !== undefined) await profile(opts.profile, opts.seconds, dir, pin, upstream!.port);
  if (upstream) await stop(upstream.started);
  console.log(pass ? 'all floors and checks: PASS' : 'a floor or check FAILED (exit 1)');
  return pass ? 0 : 1;
}

main().then(
  (code) => {
    cleanupNow();
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    cleanupNow();
    process.exit(1);
  },
);
