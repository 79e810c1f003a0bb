// Processes for the bench: started pinned to a CPU with taskset (which execs
// the command, so the pid we hold is the server's own and /proc/PID/stat is
// its CPU time), watched for early exits, and all stopped when the bench ends,
// Ctrl-C included. Also the /proc readers: process CPU time, per-CPU busy and
// idle time, RSS.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool, stopProcess } from '../test/interop/tools.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT_DIR = join(ROOT, 'bench', 'out');

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Which CPU the servers and which the client side (dnsperf, shared upstreams) run on; undefined: not pinned. */
export interface Pinning {
  readonly server: number | undefined;
  readonly client: number | undefined;
}

// ---- tools ------------------------------------------------------------------

const HINT = 'Debian: apt-get install dnsmasq dnsperf unbound nsd util-linux';
const resolved = new Map<string, string>();

/** Absolute path of a tool; throws naming the package when it is missing. */
export function tool(name: string): string {
  let path = resolved.get(name);
  if (path === undefined) {
    path = findTool(name);
    if (path === undefined) throw new Error(`${name} not found (${HINT})`);
    resolved.set(name, path);
  }
  return path;
}

// ---- processes --------------------------------------------------------------

const children = new Set<ChildProcess>();
/** Children whose exit is expected (not reported as an early exit). */
const stopping = new WeakSet<ChildProcess>();
const tempDirs: string[] = [];

export function cleanupNow(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

process.on('exit', cleanupNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping everything\n`);
    cleanupNow();
    process.exit(130);
  });
}

/** A temp dir removed when the bench ends. */
export function benchDir(prefix = 'eipdns-bench-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export interface Started {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly label: string;
  /** The last 8 KB the process wrote, for error messages. */
  output(): string;
  /** Every whole output line that matched `keep` (see start()), in order. */
  kept(): readonly string[];
}

export interface StartOptions {
  /** Pin to this CPU with taskset. */
  readonly cpu?: number;
  readonly cwd?: string;
  /** Output lines to keep in full (the 8 KB tail may have lost them), e.g. log lines the bench reads. */
  readonly keep?: RegExp;
}

export function start(command: string, args: readonly string[], label: string, opts: StartOptions = {}): Started {
  const argv = opts.cpu === undefined ? [command, ...args] : [tool('taskset'), '-c', String(opts.cpu), command, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  let partial = '';
  const kept: string[] = [];
  const take = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    output = (output + text).slice(-8192);
    if (opts.keep === undefined) return;
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (opts.keep.test(line)) kept.push(line);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (!stopping.has(child)) process.stderr.write(`warning: ${label} exited early (${code ?? signal})\n${output}\n`);
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  return { child, pid: child.pid, label, output: () => output, kept: () => kept };
}

/** Marks a child's exit as expected (dnsperf, a tool run to completion). */
export function expectExit(child: ChildProcess): void {
  stopping.add(child);
}

/** Stops a child we started (SIGTERM, then SIGKILL after graceMs), without the early-exit warning. */
export function stop(started: Started, graceMs = 5000): Promise<number | null> {
  stopping.add(started.child);
  return stopProcess(started.child, graceMs);
}

export function exited(started: Started): boolean {
  return started.child.exitCode !== null || started.child.signalCode !== null;
}

/** Runs a tool to completion; rejects with its output on a non-zero exit. */
export async function runTool(command: string, args: readonly string[], label: string): Promise<string> {
  const run = start(command, args, label);
  expectExit(run.child);
  const code = await new Promise<number | null>((resolve) => run.child.once('exit', (c) => resolve(c)));
  if (code !== 0) throw new Error(`${label} exited ${code}:\n${run.output()}`);
  return run.output();
}

// ---- /proc ------------------------------------------------------------------

/** USER_HZ: the unit of /proc/stat and /proc/PID/stat times; 100 on every mainstream Linux. */
export const CLOCK_TICKS = 100;

/** utime + stime of a process (all its threads), in ticks. */
export function processTime(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" closing the command name start at field 3; utime and stime are fields 14 and 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

/**
 * busy: user + nice + system of one CPU, comparable with process times
 * (interrupt time is left out: the loopback traffic itself lands there),
 * plus steal (a virtual CPU's time taken by the hypervisor for other guests:
 * a disturbance like any other process); idle: idle + iowait. In ticks.
 */
export function cpuTimes(stat: string, cpu: number): { busy: number; idle: number } {
  const f = stat
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `))!
    .trim()
    .split(/\s+/)
    .map(Number); // name user nice system idle iowait irq softirq steal
  return { busy: f[1]! + f[2]! + f[3]! + (f[8] ?? 0), idle: f[4]! + f[5]! };
}

export interface Memory {
  /** VmRSS, MB. */
  readonly rss: number;
  /** VmHWM, the peak RSS since the process started, MB. */
  readonly peak: number;
}

export function memoryOf(pid: number | undefined): Memory | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

export function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}
