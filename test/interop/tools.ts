// Shared plumbing for the interop tests: find the real tools (and fail loudly
// when one is missing), pick free loopback ports, run dnsmasq instances that
// are cleaned up reliably, and run and parse dig/kdig.
//
// Every dnsmasq here is isolated from the machine's own configuration:
// --conf-file=/dev/null (no /etc/dnsmasq.conf), --no-resolv (no
// /etc/resolv.conf), --no-hosts (no /etc/hosts), bound to 127.0.0.1 only, on
// an explicit port, in the foreground with its pid file in a temp dir.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { buildQuery, sendUdp } from '../helpers/dns-client.js';

// ---- tools ------------------------------------------------------------------

/** Absolute path of an executable, looking in PATH and the sbin directories. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Resolves each tool to its path, or throws one error naming everything that
 * is missing. Call it in beforeAll: a missing tool must fail the suite, not
 * skip it (a skipped interop test looks like a passing one in CI).
 */
export function requireTools<const T extends readonly string[]>(...names: T): Record<T[number], string> {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of names) {
    const path = findTool(name);
    if (path === undefined) missing.push(name);
    else found[name] = path;
  }
  if (missing.length > 0) {
    throw new Error(
      `interop test needs ${missing.join(', ')} on PATH (Debian: apt-get install dnsmasq bind9-dnsutils knot-dnsutils; see .ci/run)`,
    );
  }
  return found as Record<T[number], string>;
}

// ---- ports ------------------------------------------------------------------

/**
 * The kernel's ephemeral range (Linux: 32768-60999 by default). Every socket
 * bound to port 0 gets a port from it: eipdns's upstream queries (a fresh one
 * per query), dig, dnsperf, TCP clients. A port handed out from inside it can
 * be taken by any of those between this probe and the server's bind (seen:
 * EADDRINUSE when bench:failover starts 50 servers), so ports are drawn below it.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 21_000) return low;
  } catch {
    // not Linux: assume the IANA dynamic range (49152-65535)
  }
  return 32_768;
}
/** Above the fixed ports the demo and docs use (53, 5353, 5354, 9153). */
const PORTS_FROM = 20_000;
const PORTS_TO = ephemeralLow() - 1;

/** A loopback port, outside the ephemeral range, that is free for both UDP and TCP right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = PORTS_FROM + Math.floor(Math.random() * (PORTS_TO - PORTS_FROM + 1));
    const udp = createSocket('udp4');
    const udpOk = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, host, () => resolve(true));
    });
    if (!udpOk) {
      udp.close();
      continue;
    }
    const tcp = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (ok) await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (ok) return port;
  }
  throw new Error(`no port in ${PORTS_FROM}-${PORTS_TO} free for both UDP and TCP on loopback`);
}

// ---- waiting ------------------------------------------------------------------

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
    }
    await sleep(everyMs);
  }
}

/** True once anything at all answers a UDP DNS query on the port. */
export async function answersDns(port: number, host = '127.0.0.1'): Promise<boolean> {
  return (await sendUdp(port, buildQuery('readiness.probe.invalid', 'A'), { host, timeoutMs: 200 })) !== null;
}

// ---- processes ----------------------------------------------------------------

/** Children still running; killed when the test process exits, whatever happens. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null if killed). */
export function stopProcess(child: ChildProcess, graceMs = 3000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

// ---- dnsmasq ------------------------------------------------------------------

export interface Dnsmasq {
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  /** The --log-facility file (only written with `logQueries`). */
  readonly logFile: string;
  log(): string;
  /** Everything dnsmasq printed on stderr (startup errors). */
  stderr(): string;
  stop(): Promise<void>;
}

export interface DnsmasqOptions {
  /** Extra dnsmasq options, e.g. ["--address=/example.test/192.0.2.7"]. */
  readonly args: readonly string[];
  /** Log every query to `logFile` (--log-queries --log-facility). */
  readonly logQueries?: boolean;
  /** Fixed port; default a free one (retried if another process takes it first). */
  readonly port?: number;
}

export async function startDnsmasq(binary: string, opts: DnsmasqOptions): Promise<Dnsmasq> {
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      return await startDnsmasqOn(binary, port, opts);
    } catch (err) {
      const inUse = err instanceof Error && /Address already in use/i.test(err.message);
      if (!inUse || opts.port !== undefined || attempt >= 5) throw err;
    }
  }
}

/** Flags every dnsmasq here runs with: foreground, no system config or hosts, loopback only. */
export function isolatedDnsmasqArgs(port: number, pidFile: string): string[] {
  return [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    `--port=${port}`,
    `--pid-file=${pidFile}`,
  ];
}

async function startDnsmasqOn(binary: string, port: number, opts: DnsmasqOptions): Promise<Dnsmasq> {
  const dir = mkdtempSync(join(tmpdir(), 'eipdns-dnsmasq-'));
  const logFile = join(dir, 'queries.log');
  const args = [
    ...isolatedDnsmasqArgs(port, join(dir, 'dnsmasq.pid')),
    ...(opts.logQueries ? ['--log-queries', `--log-facility=${logFile}`] : []),
    ...opts.args,
  ];
  const child = track(spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  const stop = async (): Promise<void> => {
    await stopProcess(child);
    cleanup();
  };

  try {
    await waitFor(`dnsmasq on 127.0.0.1:${port}`, async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`dnsmasq exited (${child.exitCode ?? child.signalCode}): ${stderr.trim()}`);
      }
      return (await answersDns(port)) ? true : undefined;
    });
  } catch (err) {
    // An early exit usually means the port was taken: report dnsmasq's own words.
    await Promise.race([exited, sleep(200)]);
    await stop();
    const detail = stderr.trim();
    throw new Error(`${(err as Error).message}${detail && !(err as Error).message.includes(detail) ? `: ${detail}` : ''}`);
  }
  return {
    port,
    pid: child.pid!,
    dir,
    logFile,
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    stderr: () => stderr,
    stop,
  };
}

export interface LoggedQuery {
  /** dnsmasq's timestamp ("Dec  1 14:23:09"): one-second resolution, wall clock. */
  readonly second: string;
  readonly type: string;
  readonly name: string;
}

/** The queries a dnsmasq run with `logQueries` received, in order (UDP and TCP, recursive and --auth-zone alike). */
export function dnsmasqQueries(log: string): LoggedQuery[] {
  const out: LoggedQuery[] = [];
  for (const m of log.matchAll(/^(\w{3} [ \d]\d \d\d:\d\d:\d\d) dnsmasq\[\d+\]: (?:query|auth)\[(\w+)\] (\S+) from /gm)) {
    out.push({ second: m[1]!, type: m[2]!, name: m[3]! });
  }
  return out;
}

// ---- dig / kdig ---------------------------------------------------------------

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command without a shell; never rejects on a non-zero exit. */
export function run(file: string, args: readonly string[], timeoutMs = 15_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        reject(new Error(`${file}: ${err.message}`));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface DigRecord {
  readonly name: string;
  readonly ttl: number;
  readonly type: string;
  readonly data: string;
}

/** What dig or kdig printed, reduced to what the tests look at. */
export interface DigResult {
  readonly text: string;
  readonly status: string;
  readonly flags: ReadonlySet<string>;
  readonly answer: readonly DigRecord[];
  readonly authority: readonly DigRecord[];
  /** The EDNS UDP size the server advertised, or null when the reply had no OPT. */
  readonly ednsUdpSize: number | null;
  /** The tool said it got TC and retried over TCP. */
  readonly retriedOverTcp: boolean;
  /** Transport of the (last) reply: dig "(UDP)"/"(TCP)", kdig "(UDP)"/"(TCP)". */
  readonly transport: 'UDP' | 'TCP' | undefined;
}

/**
 * Parses the default output of dig (BIND 9) and kdig (Knot); their layouts
 * differ in punctuation only. When a tool prints several replies (dig's TC
 * retry), the last one is described.
 */
export function parseDig(text: string, stderr = ''): DigResult {
  const headers = [...text.matchAll(/->>HEADER<<- opcode: \w+[,;] status: (\w+)/g)];
  if (headers.length === 0) throw new Error(`no reply in tool output:\n${text}`);
  const last = text.slice(headers[headers.length - 1]!.index);
  const flagsLine = /;; [Ff]lags:([^;]*);/.exec(last);
  const flags = new Set((flagsLine?.[1] ?? '').trim().split(/\s+/).filter(Boolean));
  const edns = /(?:; EDNS: version: \d+, flags:[^;]*; udp: (\d+))|(?:;; Version: \d+; flags:[^;]*; UDP size: (\d+) B)/.exec(last);
  const transport = /\((UDP|TCP)\)/.exec(last)?.[1] as 'UDP' | 'TCP' | undefined;
  return {
    text,
    status: headers[headers.length - 1]![1]!,
    flags,
    answer: section(last, 'ANSWER'),
    authority: section(last, 'AUTHORITY'),
    ednsUdpSize: edns === null ? null : Number(edns[1] ?? edns[2]),
    // dig prints its notice on stdout, kdig a warning on stderr.
    retriedOverTcp: /Truncated, retrying in TCP mode|truncated reply .*retrying over TCP/i.test(`${text}\n${stderr}`),
    transport,
  };
}

function section(text: string, name: string): DigRecord[] {
  const start = text.indexOf(`;; ${name} SECTION:`);
  if (start < 0) return [];
  const out: DigRecord[] = [];
  for (const line of text.slice(start).split('\n').slice(1)) {
    if (line.trim() === '' || line.startsWith(';')) break;
    const [name, ttl, , type, ...data] = line.trim().split(/\s+/);
    out.push({ name: name!, ttl: Number(ttl), type: type!, data: data.join(' ') });
  }
  return out;
}

export type DigTool = 'dig' | 'kdig';

export interface DigQuery {
  readonly port: number;
  readonly name: string;
  readonly type?: string;
  readonly tcp?: boolean;
  /** EDNS buffer size to offer; false for a query without OPT; default the tool's own. */
  readonly bufsize?: number | false;
  /** Show a TC reply as it is instead of retrying over TCP. */
  readonly ignoreTc?: boolean;
}

/** The argument list for one query, in each tool's dialect. */
export function digArgs(tool: DigTool, q: DigQuery): string[] {
  const args = [`@127.0.0.1`, '-p', String(q.port), q.name, q.type ?? 'A'];
  if (tool === 'dig') {
    args.push('+time=2', '+tries=2');
    if (q.tcp) args.push('+tcp');
    if (q.bufsize === false) args.push('+noedns');
    else if (q.bufsize !== undefined) args.push(`+bufsize=${q.bufsize}`);
    if (q.ignoreTc) args.push('+ignore');
  } else {
    args.push('+timeout=2', '+retry=1');
    if (q.tcp) args.push('+tcp');
    if (q.bufsize === false) args.push('+noedns');
    else if (q.bufsize !== undefined) args.push(`+bufsize=${q.bufsize}`);
    if (q.ignoreTc) args.push('+ignore');
  }
  return args;
}

export async function dig(binary: string, tool: DigTool, q: DigQuery): Promise<DigResult> {
  const result = await run(binary, digArgs(tool, q));
  if (result.code !== 0) {
    throw new Error(`${tool} ${digArgs(tool, q).join(' ')} exited ${result.code}:\n${result.stdout}${result.stderr}`);
  }
  return parseDig(result.stdout, result.stderr);
}
