// --profile CASE: eipdns configured as in that case, run under --cpu-prof
// for one measured dnsperf run; prints the top functions by self time over
// the run (startup left out) and keeps the profile in bench/out/.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaseName } from './cases.js';
import { dnsperf } from './dnsperf.js';
import { FORWARDED_NAME, PRIVATE_NAME, startEipdns } from './peers.js';
import { OUT_DIR, ROOT, stop, type Pinning } from './procs.js';
import { describeRun, table } from './report.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  /** Microseconds, monotonic clock. */
  readonly startTime: number;
  readonly endTime: number;
  /** Node id per sample, and the time since the previous sample (µs). */
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export async function profile(which: CaseName, seconds: number, dir: string, pin: Pinning, upstreamPort: number): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  const name = `eipdns-${which}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
  console.log(`\nprofiling eipdns (${which} case, ${seconds} s) with --cpu-prof...`);
  const flags = ['--cpu-prof', `--cpu-prof-dir=${OUT_DIR}`, `--cpu-prof-name=${name}`];
  const profDir = join(dir, `profile-${which}`);
  mkdirSync(profDir, { recursive: true });
  const server = await startEipdns({
    label: `eipdns (profiled, ${which})`,
    dir: profDir,
    cpu: pin.server,
    upstreamPort,
    nodeFlags: flags,
    ...(which === 'uncached' ? { cache: false, maxQps: 1_000_000 } : {}),
  });
  const dataFile = join(profDir, 'queries.txt');
  writeFileSync(dataFile, `${which === 'private' ? PRIVATE_NAME : FORWARDED_NAME} A\n`);
  const m = await dnsperf({ port: server.port, dataFile, seconds, pin, serverPid: server.started.pid });
  console.log(`  under the profiler: ${describeRun(m)}`);
  // Stopped right after the run; the profile is written on a normal exit
  // (SIGTERM → graceful shutdown), so its last seconds are the run.
  const code = await stop(server.started, 15_000);
  const file = join(OUT_DIR, name);
  if (code !== 0 || !readdirSync(OUT_DIR).includes(name)) {
    throw new Error(`no profile written (eipdns exit ${code}); expected ${file}\n${server.started.output()}`);
  }
  console.log(`  profile: ${relative(ROOT, file)} (open in Chrome DevTools › Performance, or speedscope)\n`);
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  // Startup (module loading, first encodes) is not what we want to see: keep
  // the samples of the run, which ended a moment before the profile did.
  const windowUs = { from: p.endTime - (seconds - 0.2) * 1e6 - 300_000, to: p.endTime - 300_000 };
  console.log(summarizeProfile(p, 15, windowUs));
}

interface Hits {
  readonly name: string;
  readonly where: string;
  hits: number;
  us: number;
}

/**
 * Top functions by self time: samples summed per function (name + location).
 * With a window (µs on the profile's clock) only samples inside it count.
 */
export function summarizeProfile(p: CpuProfile, top: number, window?: { from: number; to: number }): string {
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, { hits: number; us: number }>();
  let t = p.startTime;
  if (p.samples && p.timeDeltas && p.samples.length === p.timeDeltas.length) {
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i]!;
      if (window && (t < window.from || t > window.to)) continue;
      // A sample stands for the time until the next one.
      const dt = p.timeDeltas[i + 1] ?? 0;
      const e = selfUs.get(p.samples[i]!) ?? { hits: 0, us: 0 };
      e.hits++;
      e.us += Math.max(0, dt);
      selfUs.set(p.samples[i]!, e);
    }
  } else {
    // Older format: only per-node hit counts, no timing: spread the profile's span evenly.
    const total = p.nodes.reduce((n, node) => n + (node.hitCount ?? 0), 0);
    const each = total > 0 ? (p.endTime - p.startTime) / total : 0;
    for (const node of p.nodes) if (node.hitCount) selfUs.set(node.id, { hits: node.hitCount, us: node.hitCount * each });
  }

  const byFunction = new Map<string, Hits>();
  for (const [id, { hits, us }] of selfUs) {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    const name = functionName || '(anonymous)';
    const where = url === '' ? '' : `${shortUrl(url)}:${lineNumber + 1}`;
    const key = `${name}@${where}`;
    const entry = byFunction.get(key) ?? { name, where, hits: 0, us: 0 };
    entry.hits += hits;
    entry.us += us;
    byFunction.set(key, entry);
  }
  const totalUs = [...byFunction.values()].reduce((n, e) => n + e.us, 0);
  const totalHits = [...byFunction.values()].reduce((n, e) => n + e.hits, 0);
  const idleUs = byFunction.get('(idle)@')?.us ?? 0;
  const busyUs = Math.max(totalUs - idleUs, 1);
  const ranked = [...byFunction.values()].filter((e) => e.name !== '(idle)').sort((a, b) => b.us - a.us).slice(0, top);
  const rows = [['#', 'self % of busy', 'self ms', 'samples', 'function', 'where']];
  ranked.forEach((e, i) => {
    rows.push([String(i + 1), `${((100 * e.us) / busyUs).toFixed(1)}%`, (e.us / 1000).toFixed(0), String(e.hits), e.name, e.where]);
  });
  const span = window ? 'the measured run' : 'the whole profile';
  const header =
    `${totalHits} samples, ${(totalUs / 1e6).toFixed(2)} s of ${span}; ` +
    `busy ${((100 * (totalUs - idleUs)) / Math.max(totalUs, 1)).toFixed(1)}%, idle ${((100 * idleUs) / Math.max(totalUs, 1)).toFixed(1)}%`;
  return `${header}\n${table(rows)}`;
}

function shortUrl(url: string): string {
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (path.startsWith(ROOT)) {
    const rel = relative(ROOT, path);
    // node_modules/.pnpm-style depth is irrelevant here: keep package/file.
    return rel.replace(/^node_modules\//, '');
  }
  return path;
}

