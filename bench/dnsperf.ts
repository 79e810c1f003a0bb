// One dnsperf run, and the CPU accounting around it: who was busy during the
// steady middle of the run, and was anything else in the way? From that, the
// server's CPU time per answered query (the figure that stays steady on a
// shared machine, where peak qps swings with everyone else's load).

import { readFileSync } from 'node:fs';
import { CLOCK_TICKS, cpuTimes, expectExit, processTime, sleep, start, tool, type Pinning } from './procs.js';

export const CLIENTS = 10;
export const OUTSTANDING = 100;

export interface DnsperfRun {
  readonly port: number;
  readonly dataFile: string;
  /** Time limit, seconds. */
  readonly seconds: number;
  readonly pin: Pinning;
  /** dnsperf -Q: offered load, queries per second; unset: as fast as answers come (peak). */
  readonly qps?: number;
  /** dnsperf -n: pass through the data file at most this many times. */
  readonly passes?: number;
  /** Sample CPU use of this server (and the CPUs) over the steady middle of the run. */
  readonly serverPid?: number;
  /** Other processes on the client CPU (a shared upstream), so they are not counted as disturbance. */
  readonly clientHelpers?: readonly number[];
}

export interface Measurement {
  readonly qps: number;
  /** Seconds. */
  readonly avgLatency: number;
  readonly sent: number;
  readonly completed: number;
  readonly lost: number;
  /** Run time, seconds. */
  readonly runTime: number;
  /** As dnsperf printed them, e.g. "NOERROR 9983 (100.00%)". */
  readonly rcodes: string;
  /** Responses per RCODE name. */
  readonly byRcode: ReadonlyMap<string, number>;
  /** NOERROR responses per second of sending: what "answered" means below. */
  readonly answeredQps: number;
  /** Where the CPU time went during the middle of the run, when it could be read from /proc. */
  readonly cpu?: CpuUse;
}

export function parseDnsperf(text: string): Omit<Measurement, 'cpu' | 'answeredQps'> {
  const num = (re: RegExp): number => {
    const m = re.exec(text);
    if (m === null) throw new Error(`dnsperf output lacks ${re.source}:\n${text}`);
    return Number(m[1]);
  };
  const rcodes = /Response codes:\s+(.*)/.exec(text)?.[1]?.trim() ?? '';
  const byRcode = new Map<string, number>();
  for (const m of rcodes.matchAll(/([A-Z]+) (\d+) \(/g)) byRcode.set(m[1]!, Number(m[2]));
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgLatency: num(/Average Latency \(s\):\s+([\d.]+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    runTime: num(/Run time \(s\):\s+([\d.]+)/),
    rcodes,
    byRcode,
  };
}

export async function dnsperf(r: DnsperfRun): Promise<Measurement> {
  const args = ['-s', '127.0.0.1', '-p', String(r.port), '-d', r.dataFile, '-c', String(CLIENTS), '-q', String(OUTSTANDING), '-l', String(r.seconds)];
  if (r.qps !== undefined) args.push('-Q', String(r.qps));
  if (r.passes !== undefined) args.push('-n', String(r.passes));
  const run = start(tool('dnsperf'), args, 'dnsperf', { cpu: r.pin.client });
  expectExit(run.child);
  const exited = new Promise<number | null>((resolve) => run.child.once('exit', (c) => resolve(c)));

  // CPU accounting over the steady middle of the run: from 0.5 s in to 0.5 s
  // before the time limit (dnsperf's own pid must still exist to be read).
  let cpu: Promise<CpuUse | undefined> = Promise.resolve(undefined);
  if (r.pin.server !== undefined && r.pin.client !== undefined && r.serverPid !== undefined && r.seconds >= 2) {
    const w: Watch = { serverCpu: r.pin.server, clientCpu: r.pin.client, serverPid: r.serverPid, clientPids: [run.pid, ...(r.clientHelpers ?? [])] };
    cpu = (async () => {
      await sleep(500);
      const a = sampleCpu(w);
      await sleep(r.seconds * 1000 - 1000);
      const b = sampleCpu(w);
      return a && b && cpuUse(a, b);
    })();
  }
  const code = await exited;
  if (code !== 0) throw new Error(`dnsperf exited ${code}:\n${run.output()}`);
  const use = await cpu;
  const m = parseDnsperf(run.output());
  // dnsperf stops sending at the time limit, then waits for what is still
  // outstanding (up to its 5 s timeout for a lost query): that tail is in its
  // run time but sends nothing, so the rate is over the sending time.
  const sending = Math.min(m.runTime, r.seconds);
  const answeredQps = sending > 0 ? (m.byRcode.get('NOERROR') ?? 0) / sending : 0;
  return { ...m, answeredQps, ...(use ? { cpu: use } : {}) };
}

/**
 * The server's CPU time per answered (NOERROR) query, in µs: its utime+stime
 * over the sampled window divided by the queries answered in that window
 * (NOERROR per second over the run × the window: at a fixed offered load the
 * rate is flat, so the window's share is its length's).
 */
export function cpuPerQuery(m: Measurement): number | undefined {
  if (m.cpu === undefined || m.answeredQps <= 0) return undefined;
  return (m.cpu.serverTicks * (1e6 / CLOCK_TICKS)) / (m.answeredQps * m.cpu.windowSeconds);
}

// ---- CPU accounting ------------------------------------------------------------

interface Watch {
  readonly serverCpu: number;
  readonly clientCpu: number;
  readonly serverPid: number;
  /** dnsperf first, then the other processes pinned with it. */
  readonly clientPids: readonly number[];
}

interface CpuSample {
  readonly at: number;
  readonly serverCpuBusy: number;
  readonly serverCpuIdle: number;
  readonly clientCpuBusy: number;
  readonly clientCpuIdle: number;
  readonly server: number;
  readonly dnsperf: number;
  readonly helpers: number;
}

export interface CpuUse {
  /** Shares of one CPU, 0..1. */
  readonly server: number;
  /** The server's utime+stime over the window, in ticks. */
  readonly serverTicks: number;
  readonly windowSeconds: number;
  /** Idle share of the server's CPU: near 0 means the server side was saturated (process time + network interrupts). */
  readonly serverCpuIdle: number;
  /** Idle share of the client's CPU (dnsperf, and the upstream when it shares that CPU). */
  readonly clientCpuIdle: number;
  readonly dnsperf: number;
  /** Time other processes (and the hypervisor, as steal) took on the server's CPU and on the client's. */
  readonly otherOnServerCpu: number;
  readonly otherOnClientCpu: number;
}

function sampleCpu(w: Watch): CpuSample | undefined {
  try {
    const stat = readFileSync('/proc/stat', 'utf8');
    const [dnsperfPid, ...helpers] = w.clientPids;
    const serverCpu = cpuTimes(stat, w.serverCpu);
    const clientCpu = cpuTimes(stat, w.clientCpu);
    return {
      at: performance.now(),
      serverCpuBusy: serverCpu.busy,
      serverCpuIdle: serverCpu.idle,
      clientCpuBusy: clientCpu.busy,
      clientCpuIdle: clientCpu.idle,
      server: processTime(w.serverPid),
      dnsperf: processTime(dnsperfPid!),
      helpers: helpers.reduce((n, pid) => n + processTime(pid), 0),
    };
  } catch {
    return undefined; // no /proc, or a process ended early
  }
}

function cpuUse(a: CpuSample, b: CpuSample): CpuUse {
  const windowSeconds = (b.at - a.at) / 1000;
  const wall = windowSeconds * CLOCK_TICKS;
  const share = (x: number): number => Math.min(1, Math.max(0, x / wall));
  return {
    server: share(b.server - a.server),
    serverTicks: b.server - a.server,
    windowSeconds,
    serverCpuIdle: share(b.serverCpuIdle - a.serverCpuIdle),
    clientCpuIdle: share(b.clientCpuIdle - a.clientCpuIdle),
    dnsperf: share(b.dnsperf - a.dnsperf),
    otherOnServerCpu: share(b.serverCpuBusy - a.serverCpuBusy - (b.server - a.server)),
    otherOnClientCpu: share(b.clientCpuBusy - a.clientCpuBusy - (b.dnsperf - a.dnsperf) - (b.helpers - a.helpers)),
  };
}
