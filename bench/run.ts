// eipdns against dnsmasq under dnsperf, the method of docs/dns2-and-speed.md:
// `dnsperf -c 10 -q 100` over loopback, servers pinned to CPU 0, dnsperf to
// CPU 1, both servers measured in the same run (alternating), medians of the
// rounds. Ratios matter, not absolute numbers.
//
//   npm run bench                      3 rounds × 10 s per server and case
//   npm run bench -- --quick           1 round × 3 s (a smoke test)
//   npm run bench -- --rounds 5 --seconds 20
//   npm run bench -- --quick --profile also profile eipdns (private case) with
//                                      --cpu-prof; top 15 by self time
//   npm run bench -- --admin           also run a second eipdns with admin.listen
//                                      set (scraped once a second) in each case,
//                                      and print what the metrics cost
//
// Cases:
//   private    `db.internal A`: eipdns answers from an inventory file; dnsmasq
//              from --address=/db.internal/10.0.1.10.
//   forwarded  `www.fwd.test A`: both forward every query (dnsmasq with
//              --cache-size=0; eipdns has no cache) to the SAME upstream, a
//              third dnsmasq answering --address=/fwd.test/192.0.2.1, pinned to
//              CPU 1 with dnsperf so the server CPU holds the forwarder only.
//
// Exit status: 0 when every ratio meets its floor, 1 when one does not (or on
// an error). Everything started here is stopped on exit, Ctrl-C included.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import http from 'node:http';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { inventory, inventoryConfig } from '../test/helpers/server.js';
import { freePort, isolatedDnsmasqArgs, stopProcess } from '../test/interop/tools.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = join(ROOT, 'bench', 'out');
const CLIENTS = 10;
const OUTSTANDING = 100;
const PRIVATE_IP = '10.0.1.10';
const FORWARDED_IP = '192.0.2.1';

// ---- options ------------------------------------------------------------------

interface Options {
  readonly rounds: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly profile: boolean;
  readonly build: boolean;
  readonly admin: boolean;
}

const HELP = `Usage: npm run bench -- [--quick] [--rounds N] [--seconds S] [--profile] [--no-build]
  --rounds N    measured rounds per case and server (default 3)
  --seconds S   dnsperf run length (default 10)
  --quick       1 round of 3 s
  --profile     also run eipdns under --cpu-prof for the private case and
                print the top 15 functions by self time (profile in bench/out/)
  --no-build    use dist/ as it is instead of bundling it first
  --admin       also measure "eipdns+admin": a second eipdns with admin.listen
                set, its /metrics scraped every second throughout (Prometheus
                scrapes every 15-60 s: this is the pessimistic case), and
                print its qps against plain eipdns (the limit is a 5 % loss)
`;

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      quick: { type: 'boolean' },
      profile: { type: 'boolean' },
      admin: { type: 'boolean' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const positive = (name: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} wants a positive integer, got "${text}"`);
    return n;
  };
  const quick = values.quick === true;
  const seconds = positive('seconds', values.seconds, quick ? 3 : 10);
  return {
    rounds: positive('rounds', values.rounds, quick ? 1 : 3),
    seconds,
    warmupSeconds: Math.min(2, seconds),
    profile: values.profile === true,
    build: values['no-build'] !== true,
    admin: values.admin === true,
  };
}

// ---- processes ------------------------------------------------------------------

const children = new Set<ChildProcess>();
/** Children whose exit is expected (not reported as an early exit). */
const stopping = new WeakSet<ChildProcess>();
const tempDirs: string[] = [];

function cleanupNow(): void {
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

function findTool(name: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin']) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // keep looking
    }
  }
  throw new Error(`${name} not found (Debian: apt-get install dnsmasq dnsperf util-linux)`);
}

interface Started {
  readonly child: ChildProcess;
  /** The last 8 KB the process wrote, for error messages. */
  output(): string;
}

/** Starts `command` (optionally pinned to a CPU with taskset, which execs it: the pid is the command's). */
function start(command: string, args: readonly string[], cpu: number | undefined, label: string): Started {
  const argv = cpu === undefined ? [command, ...args] : [TOOLS.taskset, '-c', String(cpu), command, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-8192);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (!stopping.has(child)) process.stderr.write(`warning: ${label} exited early (${code ?? signal})\n${output}\n`);
  });
  return { child, output: () => output };
}

/** Stops a child we started, without the early-exit warning. */
function stop(child: ChildProcess, graceMs = 5000): Promise<number | null> {
  stopping.add(child);
  return stopProcess(child, graceMs);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- DNS probing (enough to check an answer before measuring) -------------------

function encodeQuery(name: string, id: number): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]); // QTYPE A, QCLASS IN
}

/** The first A record's address in a reply, or undefined. Assumes a compressed owner name (as both servers send). */
function firstA(reply: Buffer, queryLength: number): string | undefined {
  if (reply.length < queryLength + 16 || reply.readUInt16BE(6) === 0) return undefined;
  const rr = queryLength; // the answer follows the echoed question
  if (reply.readUInt16BE(rr + 2) !== 1 || reply.readUInt16BE(rr + 10) !== 4) return undefined;
  return [...reply.subarray(rr + 12, rr + 16)].join('.');
}

function askA(port: number, name: string, timeoutMs = 300): Promise<string | undefined> {
  const query = encodeQuery(name, Math.floor(Math.random() * 0x10000));
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    const done = (value: string | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', () => done(undefined));
    socket.on('message', (msg) => done(firstA(msg, query.length)));
    socket.send(query, port, '127.0.0.1');
  });
}

async function waitForAnswer(label: string, port: number, name: string, expected: string, server: Started): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last: string | undefined;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) break;
    last = await askA(port, name);
    if (last === expected) return;
    await sleep(100);
  }
  throw new Error(`${label} on port ${port} did not answer ${name} A ${expected} (last: ${last ?? 'no reply'})\n${server.output()}`);
}


// ---- the servers ------------------------------------------------------------------

interface Pinning {
  readonly server: number | undefined;
  readonly client: number | undefined;
}

interface Server {
  readonly label: string;
  readonly port: number;
  readonly started: Started;
}

function dnsmasqArgs(port: number, dir: string, name: string, extra: readonly string[]): string[] {
  return [...isolatedDnsmasqArgs(port, join(dir, `${name}.pid`)), ...extra];
}

async function startDnsmasq(
  label: string,
  id: string,
  dir: string,
  cpu: number | undefined,
  extra: readonly string[],
  probe: [string, string],
): Promise<Server> {
  const port = await freePort();
  const started = start(TOOLS.dnsmasq, dnsmasqArgs(port, dir, id, extra), cpu, `${label} (${id})`);
  await waitForAnswer(label, port, probe[0], probe[1], started);
  return { label, port, started };
}

function writeEipdnsConfig(dir: string, port: number, upstreamPort: number, adminPort?: number): string {
  writeFileSync(
    join(dir, 'inventory.json'),
    inventory([{ publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: PRIVATE_IP, tags: { Role: 'db' } }]),
  );
  const file = join(dir, adminPort === undefined ? 'eipdns.yaml' : 'eipdns-admin.yaml');
  const yaml = inventoryConfig({
    listen: `127.0.0.1:${port}`,
    upstream: upstreamPort,
    timeoutMs: 1000,
    records: ['db: { elastic_ip: { tag: { Role: db } } }'],
  });
  writeFileSync(file, adminPort === undefined ? yaml : `${yaml}admin: { listen: "127.0.0.1:${adminPort}" }\n`);
  return file;
}

async function startEipdns(
  label: string,
  dir: string,
  cpu: number | undefined,
  upstreamPort: number,
  nodeFlags: readonly string[] = [],
  adminPort?: number,
): Promise<Server> {
  const port = await freePort();
  const config = writeEipdnsConfig(dir, port, upstreamPort, adminPort);
  const started = start(process.execPath, [...nodeFlags, join(ROOT, 'bin', 'eipdns.js'), 'serve', '--config', config], cpu, label);
  await waitForAnswer(label, port, 'db.internal', PRIVATE_IP, started);
  return { label, port, started };
}

/** Scrapes /metrics once a second until stopped; a failed scrape is an error (the admin port must keep answering under load). */
function scrapeEverySecond(port: number): () => void {
  let failures = 0;
  const timer = setInterval(() => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      res.resume();
      if (res.statusCode !== 200) failures++;
    });
    req.on('error', () => failures++);
  }, 1000);
  return () => {
    clearInterval(timer);
    if (failures > 0) process.stderr.write(`warning: ${failures} /metrics scrape(s) failed during the run\n`);
  };
}

// ---- dnsperf ------------------------------------------------------------------

interface Measurement {
  readonly qps: number;
  /** Seconds. */
  readonly avgLatency: number;
  readonly lost: number;
  readonly sent: number;
  readonly rcodes: string;
  /** Where the CPU time went during the run, when it could be read from /proc. */
  readonly cpu?: CpuUse;
}

function parseDnsperf(text: string): Measurement {
  const num = (re: RegExp): number => {
    const m = re.exec(text);
    if (m === null) throw new Error(`dnsperf output lacks ${re.source}:\n${text}`);
    return Number(m[1]);
  };
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgLatency: num(/Average Latency \(s\):\s+([\d.]+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    rcodes: /Response codes:\s+(.*)/.exec(text)?.[1]?.trim() ?? '',
  };
}

async function dnsperf(port: number, dataFile: string, seconds: number, pin: Pinning, serverPid?: number, helperPids: readonly number[] = []): Promise<Measurement> {
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', dataFile, '-c', String(CLIENTS), '-q', String(OUTSTANDING), '-l', String(seconds)];
  const run = start(TOOLS.dnsperf, args, pin.client, 'dnsperf');
  stopping.add(run.child); // its exit is expected
  const exited = new Promise<number | null>((resolve) => run.child.once('exit', (c) => resolve(c)));

  // CPU accounting over the steady middle of the run (dnsperf's own pid must still exist).
  let cpu: Promise<CpuUse | undefined> = Promise.resolve(undefined);
  if (pin.server !== undefined && pin.client !== undefined && serverPid !== undefined && seconds >= 2) {
    const w: Watch = { serverCpu: pin.server, clientCpu: pin.client, serverPid, clientPids: [run.child.pid!, ...helperPids] };
    cpu = (async () => {
      await sleep(500);
      const a = sampleCpu(w);
      await sleep(seconds * 1000 - 1000);
      const b = sampleCpu(w);
      return a && b && cpuUse(a, b);
    })();
  }
  const code = await exited;
  if (code !== 0) throw new Error(`dnsperf exited ${code}:\n${run.output()}`);
  const use = await cpu;
  return { ...parseDnsperf(run.output()), ...(use ? { cpu: use } : {}) };
}

// ---- CPU accounting: who was busy, and was anything else in the way? ------------

/** USER_HZ: the unit of /proc/stat and /proc/PID/stat times; 100 on every mainstream Linux. */
const CLOCK_TICKS = 100;

interface Watch {
  readonly serverCpu: number;
  readonly clientCpu: number;
  readonly serverPid: number;
  /** dnsperf, plus the shared upstream in the forwarded case (they share the client CPU). */
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

interface CpuUse {
  /** Shares of one CPU, 0..1. */
  readonly server: number;
  /** Idle share of the server's CPU: near 0 means the server side was saturated (process time + network interrupts). */
  readonly serverCpuIdle: number;
  /** Idle share of the client's CPU (dnsperf, and the upstream in the forwarded case). */
  readonly clientCpuIdle: number;
  readonly dnsperf: number;
  /** Time other processes (and the hypervisor, as steal) took on the server's CPU and on the client's. */
  readonly otherOnServerCpu: number;
  readonly otherOnClientCpu: number;
}

/**
 * busy: user + nice + system of one CPU, comparable with process times
 * (interrupt time is left out: the loopback traffic itself lands there),
 * plus steal (a virtual CPU's time taken by the hypervisor for other guests:
 * a disturbance like any other process); idle: idle + iowait.
 */
function cpuTimes(stat: string, cpu: number): { busy: number; idle: number } {
  const f = stat
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `))!
    .trim()
    .split(/\s+/)
    .map(Number); // name user nice system idle iowait irq softirq steal
  return { busy: f[1]! + f[2]! + f[3]! + (f[8] ?? 0), idle: f[4]! + f[5]! };
}

/** utime + stime of a process (all its threads). */
function processTime(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" closing the command name start at field 3; utime and stime are fields 14 and 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

function sampleCpu(w: Watch): CpuSample | undefined {
  try {
    const stat = readFileSync('/proc/stat', 'utf8');
    const [dnsperfPid, ...helpers] = w.clientPids;
    const serverCpu = cpuTimes(stat, w.serverCpu);
    const clientCpu = cpuTimes(stat, w.clientCpu);
    return {
      at: Date.now(),
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
  const wall = ((b.at - a.at) / 1000) * CLOCK_TICKS;
  const share = (x: number): number => Math.min(1, Math.max(0, x / wall));
  return {
    server: share(b.server - a.server),
    serverCpuIdle: share(b.serverCpuIdle - a.serverCpuIdle),
    clientCpuIdle: share(b.clientCpuIdle - a.clientCpuIdle),
    dnsperf: share(b.dnsperf - a.dnsperf),
    otherOnServerCpu: share(b.serverCpuBusy - a.serverCpuBusy - (b.server - a.server)),
    otherOnClientCpu: share(b.clientCpuBusy - a.clientCpuBusy - (b.dnsperf - a.dnsperf) - (b.helpers - a.helpers)),
  };
}

// ---- the run ------------------------------------------------------------------

type CaseName = 'private' | 'forwarded';

interface Case {
  readonly name: CaseName;
  readonly query: string;
  readonly floor: number;
  readonly dataFile: string;
  /** [eipdns, dnsmasq], then eipdns+admin with --admin */
  readonly servers: readonly [Server, Server, ...Server[]];
  /** Other processes on the client CPU (the shared upstream), for CPU accounting. */
  readonly clientCpuHelpers: readonly number[];
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const fmtQps = (n: number): string => `${(n / 1000).toFixed(1)}k`;
const fmtMs = (s: number): string => `${(s * 1000).toFixed(3)} ms`;
const fmtPct = (x: number): string => `${(x * 100).toFixed(0)}%`;
/** Other work above this share of a pinned CPU during a run makes its number suspect. */
const DISTURBED = 0.05;
/** A CPU less idle than 1 - this is saturated: the bottleneck. */
const CLIENT_BOUND = 0.95;

function describeRun(m: Measurement): string {
  const lost = m.lost > 0 ? `, lost ${m.lost}/${m.sent}` : '';
  const cpu = m.cpu
    ? `  CPU server ${fmtPct(m.cpu.server)} (idle ${fmtPct(m.cpu.serverCpuIdle)}), dnsperf ${fmtPct(m.cpu.dnsperf)} (client CPU idle ${fmtPct(m.cpu.clientCpuIdle)}), other ${fmtPct(m.cpu.otherOnServerCpu)}/${fmtPct(m.cpu.otherOnClientCpu)}`
    : '';
  return `${fmtQps(m.qps).padStart(7)} qps  avg ${fmtMs(m.avgLatency)}${lost}${cpu}  [${m.rcodes}]`;
}

interface Summary {
  readonly qps: number;
  readonly latency: number;
  readonly min: number;
  readonly max: number;
  readonly server?: number;
  readonly idle?: number;
  readonly clientIdle?: number;
  readonly dnsperf?: number;
  readonly other?: number;
}

function summarize(ms: readonly Measurement[]): Summary {
  const cpu = ms.every((m) => m.cpu !== undefined) ? ms.map((m) => m.cpu!) : undefined;
  return {
    qps: median(ms.map((m) => m.qps)),
    latency: median(ms.map((m) => m.avgLatency)),
    min: Math.min(...ms.map((m) => m.qps)),
    max: Math.max(...ms.map((m) => m.qps)),
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

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

function build(): void {
  process.stdout.write('building dist/ (node scripts/build.mjs)... ');
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/build.mjs failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  process.stdout.write('ok\n');
}

/** VmRSS and VmHWM (peak) of a process, in MB, from /proc. */
function memoryOf(pid: number | undefined): { rss: number; peak: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

function describeMemory(servers: readonly Server[], which: 'rss' | 'peak'): string {
  return servers
    .map((s) => {
      const m = memoryOf(s.started.child.pid);
      return `${s.label} ${m === undefined ? 'n/a' : `${m[which].toFixed(1)} MB`}`;
    })
    .join(', ');
}

const loadavg = (): string => {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
};

let TOOLS: { dnsmasq: string; dnsperf: string; taskset: string };

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  TOOLS = { dnsmasq: findTool('dnsmasq'), dnsperf: findTool('dnsperf'), taskset: findTool('taskset') };
  const cpus = availableParallelism();
  const pin: Pinning = cpus >= 2 ? { server: 0, client: 1 } : { server: undefined, client: undefined };
  if (cpus < 2) process.stderr.write('warning: fewer than 2 CPUs: nothing is pinned, numbers mean little\n');
  if (opts.build) build();

  const dir = mkdtempSync(join(tmpdir(), 'eipdns-bench-'));
  tempDirs.push(dir);
  const privateData = join(dir, 'private.txt');
  const forwardedData = join(dir, 'forwarded.txt');
  writeFileSync(privateData, 'db.internal A\n');
  writeFileSync(forwardedData, 'www.fwd.test A\n');

  console.log(
    `method: dnsperf -c ${CLIENTS} -q ${OUTSTANDING} -l ${opts.seconds}, ${opts.rounds} round(s), medians; ` +
      `servers on CPU ${pin.server ?? '-'}, dnsperf and the shared upstream on CPU ${pin.client ?? '-'}; ` +
      `${opts.warmupSeconds} s warm-up per server and case`,
  );
  console.log(`node ${process.version}, ${cpus} CPUs, load average at start ${loadavg()}`);

  const upstream = await startDnsmasq('dnsmasq', 'upstream', dir, pin.client, [`--address=/fwd.test/${FORWARDED_IP}`], ['www.fwd.test', FORWARDED_IP]);
  const dnsmasqPrivate = await startDnsmasq('dnsmasq', 'private', dir, pin.server, [`--address=/db.internal/${PRIVATE_IP}`], ['db.internal', PRIVATE_IP]);
  const dnsmasqForward = await startDnsmasq('dnsmasq', 'forwarder', dir, pin.server, ['--cache-size=0', `--server=127.0.0.1#${upstream.port}`], ['www.fwd.test', FORWARDED_IP]);
  const eipdns = await startEipdns('eipdns', dir, pin.server, upstream.port);
  await waitForAnswer('eipdns', eipdns.port, 'www.fwd.test', FORWARDED_IP, eipdns.started);
  // Memory with the servers started, data loaded and one query answered each.
  await sleep(2000);
  console.log(`idle RSS: ${describeMemory([eipdns, { ...dnsmasqPrivate, label: 'dnsmasq' }], 'rss')}`);
  let withAdmin: Server | undefined;
  let stopScraping = (): void => undefined;
  if (opts.admin) {
    const adminPort = await freePort();
    withAdmin = await startEipdns('eipdns+admin', dir, pin.server, upstream.port, [], adminPort);
    await waitForAnswer('eipdns+admin', withAdmin.port, 'www.fwd.test', FORWARDED_IP, withAdmin.started);
    stopScraping = scrapeEverySecond(adminPort);
    console.log(`idle RSS with admin.listen (scraped once a second): ${describeMemory([withAdmin], 'rss')}`);
  }
  const extra = withAdmin !== undefined ? [withAdmin] : [];

  const cases: Case[] = [
    { name: 'private', query: 'db.internal A', floor: 0.5, dataFile: privateData, servers: [eipdns, dnsmasqPrivate, ...extra], clientCpuHelpers: [] },
    { name: 'forwarded', query: 'www.fwd.test A', floor: 0.25, dataFile: forwardedData, servers: [eipdns, dnsmasqForward, ...extra], clientCpuHelpers: [upstream.started.child.pid!] },
  ];

  // Warm-up (JIT, socket buffers, dnsmasq's first forwards): not counted.
  for (const c of cases) for (const s of c.servers) await dnsperf(s.port, c.dataFile, opts.warmupSeconds, pin);

  const results = new Map<string, Measurement[]>();
  for (let round = 1; round <= opts.rounds; round++) {
    for (const c of cases) {
      // Alternate who goes first, so a drift in machine load hits both alike.
      // eipdns+admin runs right next to eipdns, so the pair sees the same machine load.
      const adjacent = [c.servers[0], ...c.servers.slice(2), c.servers[1]];
      const order = round % 2 === 1 ? adjacent : adjacent.reverse();
      for (const s of order) {
        const m = await dnsperf(s.port, c.dataFile, opts.seconds, pin, s.started.child.pid, c.clientCpuHelpers);
        const key = `${c.name}|${s.label}`;
        results.set(key, [...(results.get(key) ?? []), m]);
        console.log(`  round ${round}  ${c.name.padEnd(9)}  ${s.label.padEnd(7)}  ${describeRun(m)}`);
      }
    }
  }

  const rows: string[][] = [
    ['case', 'query', 'server', 'qps (median)', 'qps range', 'avg latency', 'server CPU', 'idle srv/cli', 'dnsperf CPU', 'other load', 'eipdns/dnsmasq', 'floor', 'result'],
  ];
  const notes: string[] = [];
  let allPass = true;
  for (const c of cases) {
    const stats = c.servers.map((s) => summarize(results.get(`${c.name}|${s.label}`)!));
    const ratio = stats[0]!.qps / stats[1]!.qps;
    const ratioOf = (i: number): string => (i === 1 ? '' : (stats[i]!.qps / stats[1]!.qps).toFixed(2));
    const pass = ratio >= c.floor;
    allPass &&= pass;
    c.servers.forEach((s, i) => {
      const st = stats[i]!;
      rows.push([
        i === 0 ? c.name : '',
        i === 0 ? c.query : '',
        s.label,
        fmtQps(st.qps),
        `${fmtQps(st.min)}–${fmtQps(st.max)}`,
        fmtMs(st.latency),
        st.server === undefined ? 'n/a' : fmtPct(st.server),
        st.idle === undefined || st.clientIdle === undefined ? 'n/a' : `${fmtPct(st.idle)}/${fmtPct(st.clientIdle)}`,
        st.dnsperf === undefined ? 'n/a' : fmtPct(st.dnsperf),
        st.other === undefined ? 'n/a' : fmtPct(st.other),
        ratioOf(i),
        i === 0 ? `≥ ${c.floor.toFixed(2)}` : '',
        i === 0 ? (pass ? 'PASS' : 'FAIL') : '',
      ]);
      if (st.other !== undefined && st.other > DISTURBED) {
        notes.push(`${c.name}/${s.label}: other processes took up to ${fmtPct(st.other)} of a pinned CPU during a run: disturbed, rerun on a quiet machine`);
      }
      if (st.idle !== undefined && st.clientIdle !== undefined && st.clientIdle < 1 - CLIENT_BOUND && st.idle >= 1 - CLIENT_BOUND) {
        notes.push(
          `${c.name}/${s.label}: the client CPU (dnsperf${c.clientCpuHelpers.length > 0 ? ' + upstream' : ''}) was saturated (${fmtPct(st.clientIdle)} idle) while the server's CPU was ${fmtPct(st.idle)} idle: ` +
            `this number is the client's limit, not the server's${i === 1 ? ', so the ratio above flatters eipdns' : ''}`,
        );
      }
    });
  }
  console.log(`\n${table(rows)}`);
  console.log(
    'server CPU, idle of the server/client CPU, dnsperf CPU: medians, as shares of one CPU (server CPU + idle < 100%: the rest is network interrupts); ' +
      'other load: the most that other processes or hypervisor steal took from either pinned CPU in one run',
  );
  console.log(`load average at end ${loadavg()}`);
  console.log(`peak RSS over the runs: ${describeMemory([eipdns, { ...dnsmasqPrivate, label: 'dnsmasq (private)' }, { ...dnsmasqForward, label: 'dnsmasq (forwarder)' }], 'peak')}`);
  for (const note of notes) console.log(`note: ${note}`);

  if (withAdmin !== undefined) {
    // qps moves with whatever else the machine runs; the server's CPU time per
    // answered query much less so, which makes it the steadier cost measure
    // on a shared machine.
    const cpuPerQuery = (key: string): number | undefined => {
      const ms = results.get(key)!;
      return ms.every((m) => m.cpu !== undefined) ? median(ms.map((m) => (m.cpu!.server / m.qps) * 1e6)) : undefined;
    };
    for (const c of cases) {
      const plain = summarize(results.get(`${c.name}|eipdns`)!);
      const admin = summarize(results.get(`${c.name}|eipdns+admin`)!);
      const ratio = admin.qps / plain.qps;
      const [cpuPlain, cpuAdmin] = [cpuPerQuery(`${c.name}|eipdns`), cpuPerQuery(`${c.name}|eipdns+admin`)];
      // Each round measured the two back to back: the median of those ratios cancels slow drifts in machine load.
      const plainRuns = results.get(`${c.name}|eipdns`)!;
      const paired = median(results.get(`${c.name}|eipdns+admin`)!.map((m, i) => m.qps / plainRuns[i]!.qps));
      console.log(
        `admin cost, ${c.name}: eipdns+admin ${fmtQps(admin.qps)} (${fmtQps(admin.min)}–${fmtQps(admin.max)}) vs eipdns ${fmtQps(plain.qps)} (${fmtQps(plain.min)}–${fmtQps(plain.max)}) qps: ` +
          `ratio ${ratio.toFixed(3)}, median of per-round ratios ${paired.toFixed(3)} (limit 0.95 in the private case)` +
          (cpuPlain !== undefined && cpuAdmin !== undefined
            ? `; server CPU per query ${cpuAdmin.toFixed(2)} vs ${cpuPlain.toFixed(2)} µs (${((cpuAdmin / cpuPlain - 1) * 100).toFixed(1)} %)`
            : ''),
      );
    }
  }
  stopScraping();
  await Promise.all([eipdns, dnsmasqPrivate, dnsmasqForward, ...extra].map((s) => stop(s.started.child)));

  if (opts.profile) await profile(opts, dir, pin, privateData, upstream.port);
  await stop(upstream.started.child);
  return allPass ? 0 : 1;
}

// ---- --profile ------------------------------------------------------------------

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

async function profile(opts: Options, dir: string, pin: Pinning, dataFile: string, upstreamPort: number): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  const name = `eipdns-private-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
  console.log(`\nprofiling eipdns (private case, ${opts.seconds} s) with --cpu-prof...`);
  const flags = ['--cpu-prof', `--cpu-prof-dir=${OUT_DIR}`, `--cpu-prof-name=${name}`];
  const server = await startEipdns('eipdns (profiled)', dir, pin.server, upstreamPort, flags);
  const m = await dnsperf(server.port, dataFile, opts.seconds, pin, server.started.child.pid);
  console.log(`  under the profiler: ${describeRun(m)}`);
  // Stopped right after the run; the profile is written on a normal exit
  // (SIGTERM → graceful shutdown), so its last seconds are the run.
  const code = await stop(server.started.child, 15_000);
  const file = join(OUT_DIR, name);
  if (code !== 0 || !readdirSync(OUT_DIR).includes(name)) {
    throw new Error(`no profile written (eipdns exit ${code}); expected ${file}\n${server.started.output()}`);
  }
  console.log(`  profile: ${relative(ROOT, file)} (open in Chrome DevTools › Performance, or speedscope)\n`);
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  // Startup (module loading, first encodes) is not what we want to see: keep
  // the samples of the run, which ended a moment before the profile did.
  const windowUs = { from: p.endTime - (opts.seconds - 0.2) * 1e6 - 300_000, to: p.endTime - 300_000 };
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
