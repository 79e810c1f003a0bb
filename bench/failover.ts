// Failover flip time: when a role's Elastic IP moves, how long until a DNS
// client sees the new private IP.
//
// The real CLI (`node bin/eipdns.js serve`, a separate process) polls the EC2
// test server (test/ec2/fake-ec2.ts) through the real SDK. The bench moves the
// `Role=db` Elastic IP back and forth between two instances with the real
// SDK's AssociateAddress, each move after a random 0.5–1.5 × poll interval so
// moves land at random phases of the poll timer. After each move a client
// sends `db.internal A` over UDP every 10 ms on its own socket and records the
// time from the AssociateAddress response to the first answer carrying the new
// IP. A move not seen within 5 poll intervals counts as a failure.
//
// The transfer tier (issue 9) puts zone transfer in the path: an eipdns
// primary polls EC2 and NOTIFYs an eipdns secondary (both processes, TSIG),
// and the probe asks the secondary. Then it counts EC2 calls for 1 primary +
// N secondaries against N independent pollers (all processes on loopback),
// and times the transfer of a 10,000-name zone and the secondary's RSS.
//
//   npm run bench:failover                           both tiers, 20 moves, 1000 ms polls
//   npm run bench:failover -- --tier direct          one eipdns polling EC2 (the original)
//   npm run bench:failover -- --tier transfer --secondaries 50 --zone-names 10000
//   npm run bench:failover -- --poll-ms 2000 --moves 10
//
// Targets: max flip time ≤ poll interval + 100 ms (direct), ≤ poll interval +
// 300 ms through a primary and a secondary (transfer). Exit status 0 when met,
// 1 when not (or on an error), 130 when interrupted. Everything started here
// is stopped on exit, Ctrl-C included.

import { AssociateAddressCommand } from '@aws-sdk/client-ec2';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startFakeEc2, type FakeEc2 } from '../test/ec2/fake-ec2.js';
import { clientFor } from '../test/ec2/helpers.js';
import { buildQuery, decode } from '../test/helpers/dns-client.js';
import { freePort } from '../test/interop/tools.js';
import { tcpExchange } from '../src/transfer/client.js';
import { TransferReader } from '../src/transfer/incoming.js';
import { transferRequest } from '../src/transfer/secondary.js';
import { sign, StreamVerifier, tsigKey, type TsigKey } from '../src/transfer/tsig.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NAME = 'db.internal';
const IP_A = '10.0.1.10';
const IP_B = '10.0.1.20';
const PROBE_EVERY_MS = 10;
/** A move not seen within this many poll intervals is a failure. */
const MOVE_BUDGET_INTERVALS = 5;
const TARGET_SLACK_MS = 100;
/** Through a primary, NOTIFY, IXFR and a secondary. */
const TRANSFER_SLACK_MS = 300;
const KEY_NAME = 'transfer-key';
const STARTUP_BUDGET_MS = 20_000;
const STOP_GRACE_MS = 5_000;
/** A probe reply slower than this is flagged: some process stalled (busy machine). */
const SLOW_REPLY_MS = 20;

// ---- options ------------------------------------------------------------------

interface Options {
  readonly pollMs: number;
  readonly moves: number;
  readonly tier: 'direct' | 'transfer' | 'all';
  readonly secondaries: number;
  readonly zoneNames: number;
}

const HELP = `Usage: npm run bench:failover -- [--tier direct|transfer|all] [--poll-ms MS] [--moves N]
                                   [--secondaries N] [--zone-names N]
  --tier T          direct: one eipdns polling EC2; transfer: through a primary and
                    secondaries (issue 9); all (default): both
  --poll-ms MS      eipdns ec2.poll_interval_ms (default 1000, at least 250)
  --moves N         Elastic IP moves to time (default 20)
  --secondaries N   secondaries (and independent pollers) for the EC2 call count (default 50)
  --zone-names N    names in the zone whose transfer is timed (default 10000)
`;

function parseOptions(argv: readonly string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        'poll-ms': { type: 'string' },
        moves: { type: 'string' },
        tier: { type: 'string' },
        secondaries: { type: 'string' },
        'zone-names': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new BenchError(`${(err as Error).message}\n${HELP}`);
  }
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const integer = (name: string, text: string | undefined, fallback: number, min: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new BenchError(`--${name} wants an integer ≥ ${min}, got "${text}"`);
    return n;
  };
  const tier = values.tier ?? 'all';
  if (tier !== 'direct' && tier !== 'transfer' && tier !== 'all') throw new BenchError(`--tier wants direct, transfer or all, got "${tier}"`);
  return {
    pollMs: integer('poll-ms', values['poll-ms'], 1000, 250),
    moves: integer('moves', values.moves, 20, 1),
    tier,
    secondaries: integer('secondaries', values.secondaries, 50, 1),
    zoneNames: integer('zone-names', values['zone-names'], 10_000, 1),
  };
}

// ---- interruption -------------------------------------------------------------
// Every wait below observes `run.signal`: Ctrl-C, or eipdns dying, aborts it
// with a reason, and main's finally block stops what was started.

/** A failure the bench explains itself: reported without a stack trace. */
class BenchError extends Error {
  override readonly name = 'BenchError';
}

class Interrupted extends Error {
  constructor(signal: string) {
    super(`${signal}: stopped`);
    this.name = 'Interrupted';
  }
}

const run = new AbortController();
/** Every eipdns started and not yet stopped. */
const children = new Set<ChildProcess>();

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (!run.signal.aborted) {
      run.abort(new Interrupted(signal));
      return;
    }
    // A second signal while cleaning up: stop waiting.
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}
// Last resort if the process exits some other way.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- build --------------------------------------------------------------------

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const stat = statSync(join(dir, name));
    if (stat.isFile()) newest = Math.max(newest, stat.mtimeMs);
  }
  return newest;
}

/** Bundles src/ into dist/ when dist/eipdns.js is missing or older than any source file. */
function ensureBuilt(): void {
  const entry = join(ROOT, 'dist', 'eipdns.js');
  if (existsSync(entry) && statSync(entry).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  process.stdout.write('building dist/ (node scripts/build.mjs)... ');
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new BenchError(`scripts/build.mjs failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  process.stdout.write('ok\n');
}

// ---- eipdns as a child process ------------------------------------------------------


function writeConfig(dir: string, opts: { port: number; upstreamPort: number; endpoint: string; pollMs: number }): string {
  const file = join(dir, 'eipdns.yaml');
  writeFileSync(
    file,
    `listen: ["127.0.0.1:${opts.port}"]
upstream:
  servers: ["127.0.0.1:${opts.upstreamPort}"]   # nothing listens there
ec2:
  region: us-east-1
  endpoint: "${opts.endpoint}"
  poll_interval_ms: ${opts.pollMs}
zones:
  - name: internal
    records:
      db: { elastic_ip: { tag: { Role: db } } }
acl:
  allow: ["127.0.0.0/8"]
log:
  level: warn
`,
  );
  return file;
}

interface Eipdns {
  readonly child: ChildProcess;
  /** Its log lines (level warn and above), the last 8 KB. */
  log(): string;
  /** The last 8 KB of stdout and stderr (log lines, Node warnings, crashes). */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

function startEipdns(config: string): Eipdns {
  // Test credentials only: no AWS_* variable of the caller's reaches the child.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  Object.assign(env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' });
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'eipdns.js'), 'serve', '--config', config], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  // pino writes to stdout; stderr has Node's own warnings and crashes.
  let log = '';
  let output = '';
  const tail = (text: string, chunk: Buffer): string => (text + chunk.toString('utf8')).slice(-8192);
  child.stdout!.on('data', (chunk: Buffer) => {
    log = tail(log, chunk);
    output = tail(output, chunk);
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output = tail(output, chunk);
  });
  let stopping = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    if (!stopping) run.abort(new BenchError(`eipdns exited early (${code ?? signal}):\n${output}`));
  });
  return {
    child,
    log: () => log,
    output: () => output,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(kill);
    },
  };
}

// ---- the probing client ----------------------------------------------------------

interface ProbeResult {
  /** ms from `since` to the first answer carrying the wanted IP; undefined if none within the budget. */
  readonly ms: number | undefined;
  readonly sent: number;
  /**
   * The slowest query → reply time among the replies received. Loopback
   * replies take well under 1 ms; much more means a process stalled (a busy
   * machine), which also shows up in the flip time.
   */
  readonly slowestReplyMs: number;
}

/**
 * Sends `db.internal A` every 10 ms on a fresh socket until an answer carries
 * `want` or `budgetMs` after `since` (a performance.now() time) passes. Queries
 * do not wait for each other's replies, so a lost one costs 10 ms, not a stall.
 */
async function probeFor(port: number, want: string, since: number, budgetMs: number, signal: AbortSignal): Promise<ProbeResult> {
  const socket = createSocket('udp4');
  socket.on('error', () => undefined); // e.g. ICMP unreachable before eipdns listens; the next query retries
  const sentAt = new Map<number, number>(); // by DNS id
  let sent = 0;
  let slowestReplyMs = 0;
  let seenAt: number | undefined;
  socket.on('message', (msg) => {
    const at = performance.now();
    const queriedAt = msg.length >= 12 ? sentAt.get(msg.readUInt16BE(0)) : undefined;
    if (queriedAt === undefined) return; // not a reply to us
    slowestReplyMs = Math.max(slowestReplyMs, at - queriedAt);
    try {
      if (seenAt === undefined && decode(msg).addresses.includes(want)) seenAt = at;
    } catch {
      // not a DNS message we can read: not the answer
    }
  });
  try {
    let next = since;
    while (seenAt === undefined && next - since <= budgetMs) {
      await sleep(Math.max(0, next - performance.now()), signal);
      if (seenAt !== undefined) break;
      const id = (sent += 1) & 0xffff;
      sentAt.set(id, performance.now());
      socket.send(buildQuery(NAME, 'A', { id }), port, '127.0.0.1');
      next += PROBE_EVERY_MS;
      // Ticks missed while this process was held up are skipped, not sent in a burst.
      const late = performance.now() - next;
      if (late > 0) next += Math.ceil(late / PROBE_EVERY_MS) * PROBE_EVERY_MS;
    }
    // Let a reply already on its way land before giving up.
    if (seenAt === undefined) await sleep(PROBE_EVERY_MS, signal);
  } finally {
    socket.close();
  }
  return { ms: seenAt === undefined || seenAt - since > budgetMs ? undefined : seenAt - since, sent, slowestReplyMs };
}

// ---- report -------------------------------------------------------------------

interface Move {
  readonly n: number;
  readonly to: string;
  readonly probe: ProbeResult;
}

/** Nearest rank: the smallest value with at least p% of the values at or below it. */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const fmtMs = (ms: number): string => `${Math.round(ms)} ms`;

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

function report(opts: Options, moves: readonly Move[], budgetMs: number, slackMs = TARGET_SLACK_MS): boolean {
  const seen = moves.flatMap((m) => (m.probe.ms === undefined ? [] : [m.probe.ms])).sort((a, b) => a - b);
  const missed = moves.length - seen.length;
  const limit = opts.pollMs + slackMs;
  const count = moves.length === opts.moves ? `${moves.length}` : `${moves.length} of ${opts.moves}`;
  console.log(`\nflip time (AssociateAddress response → first answer with the new IP), ${count} moves:`);
  if (seen.length > 0) {
    const max = missed > 0 ? `> ${fmtMs(budgetMs)} (${missed} not seen)` : fmtMs(seen[seen.length - 1]!);
    console.log(`  p50 ${fmtMs(percentile(seen, 50))}   p95 ${fmtMs(percentile(seen, 95))}   max ${max}`);
  } else {
    console.log(`  no move seen within ${fmtMs(budgetMs)}`);
  }
  const pass = moves.length === opts.moves && missed === 0 && seen[seen.length - 1]! <= limit;
  console.log(`target: max ≤ poll interval + ${slackMs} ms = ${fmtMs(limit)}: ${pass ? 'PASS' : 'FAIL'}`);
  return pass;
}

function reportCalls(fake: FakeEc2, fromIndex: number, windowMs: number): void {
  const counts = new Map<string, number>();
  for (const c of fake.calls.slice(fromIndex)) counts.set(c.action, (counts.get(c.action) ?? 0) + 1);
  const moves = counts.get('AssociateAddress') ?? 0;
  counts.delete('AssociateAddress'); // the bench's own calls, not eipdns's
  const perMinute = (n: number): string => (n / (windowMs / 60_000)).toFixed(1);
  console.log(`\nEC2 API calls by eipdns over ${(windowMs / 1000).toFixed(1)} s:`);
  for (const [action, n] of [...counts].sort()) console.log(`  ${action.padEnd(26)} ${perMinute(n).padStart(6)}/min  (${n})`);
  if (counts.size === 0) console.log('  none');
  console.log(`  (plus the bench's own AssociateAddress: ${moves})`);
}

// ---- the run ------------------------------------------------------------------

interface World {
  readonly fake: FakeEc2;
  readonly allocationId: string;
  /** The Elastic IP starts on the first. */
  readonly instances: readonly [{ id: string; ip: string }, { id: string; ip: string }];
}

async function startWorld(): Promise<World> {
  const fake = await startFakeEc2();
  const instances = [
    { id: fake.addInstance({ privateIps: [IP_A], tags: { Name: 'db-a' } }).instanceId, ip: IP_A },
    { id: fake.addInstance({ privateIps: [IP_B], tags: { Name: 'db-b' } }).instanceId, ip: IP_B },
  ] as const;
  const allocationId = fake.addAddress({ publicIp: '198.51.100.10', tags: { Role: 'db' } }).allocationId;
  fake.associate(allocationId, { instanceId: instances[0].id });
  return { fake, allocationId, instances };
}

/** Moves the Elastic IP `opts.moves` times and times each flip; stops early if eipdns stops following. */
async function runMoves(world: World, port: number, opts: Options, signal: AbortSignal): Promise<Move[]> {
  const client = clientFor(world.fake);
  const budgetMs = MOVE_BUDGET_INTERVALS * opts.pollMs;
  const moves: Move[] = [];
  try {
    for (let n = 1; n <= opts.moves; n++) {
      // Counted from the previous flip, which followed a poll: a random phase of the poll timer.
      await sleep(opts.pollMs * (0.5 + Math.random()), signal);
      const target = otherInstance(world);
      const move = new AssociateAddressCommand({ AllocationId: world.allocationId, InstanceId: target.id, AllowReassociation: true });
      await client.send(move, { abortSignal: signal });
      const probe = await probeFor(port, target.ip, performance.now(), budgetMs, signal);
      moves.push({ n, to: target.ip, probe });

      const result = probe.ms === undefined ? `not seen within ${fmtMs(budgetMs)}` : fmtMs(probe.ms);
      const stall = probe.slowestReplyMs > SLOW_REPLY_MS ? `  (slowest reply ${fmtMs(probe.slowestReplyMs)})` : '';
      console.log(`  move ${String(n).padStart(2)}/${opts.moves} → ${target.ip}: ${result.padStart(7)}${stall}`);
      // The next move goes back to the IP eipdns may still be serving, which
      // would look like an instant flip: wait for eipdns to catch up first.
      if (probe.ms === undefined && (await probeFor(port, target.ip, performance.now(), budgetMs, signal)).ms === undefined) {
        console.log(`  eipdns still does not answer ${target.ip}: no further moves`);
        break;
      }
    }
  } finally {
    client.destroy();
  }
  return moves;
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  ensureBuilt();
  let pass = true;
  if (opts.tier !== 'transfer') {
    console.log('== direct: one eipdns polling EC2 ==\n');
    pass = (await runDirect(opts)) && pass;
  }
  if (opts.tier !== 'direct') {
    console.log(`${opts.tier === 'all' ? '\n' : ''}== transfer: an eipdns primary polling EC2, eipdns secondaries by NOTIFY + IXFR (issue 9) ==\n`);
    pass = (await runTransfer(opts)) && pass;
  }
  return pass ? 0 : 1;
}

async function runDirect(opts: Options): Promise<boolean> {
  const { signal } = run;
  const dir = mkdtempSync(join(tmpdir(), 'eipdns-failover-'));
  let world: World | undefined;
  let eipdns: Eipdns | undefined;
  try {
    world = await startWorld();
    const { fake } = world;
    const port = await freePort();
    const config = writeConfig(dir, { port, upstreamPort: await freePort(), endpoint: fake.url, pollMs: opts.pollMs });
    eipdns = startEipdns(config);
    const ready = await probeFor(port, IP_A, performance.now(), STARTUP_BUDGET_MS, signal);
    if (ready.ms === undefined) {
      throw new BenchError(`eipdns never answered ${NAME} A ${IP_A} within ${fmtMs(STARTUP_BUDGET_MS)}:\n${eipdns.output()}`);
    }
    console.log(`eipdns (pid ${eipdns.child.pid}) on 127.0.0.1:${port}, fake EC2 at ${fake.url}; ${NAME} answered ${IP_A} after ${fmtMs(ready.ms)}`);
    console.log(
      `poll_interval_ms ${opts.pollMs}, ${opts.moves} moves, a probe query every ${PROBE_EVERY_MS} ms; ` +
        `node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg()}\n`,
    );

    const callsFrom = fake.calls.length;
    const started = performance.now();
    const moves = await runMoves(world, port, opts, signal);
    const windowMs = performance.now() - started;

    const pass = report(opts, moves, MOVE_BUDGET_INTERVALS * opts.pollMs);
    reportCalls(fake, callsFrom, windowMs);
    const sent = moves.reduce((sum, m) => sum + m.probe.sent, 0);
    const slowest = Math.max(0, ...moves.map((m) => m.probe.slowestReplyMs));
    console.log(`\nprobe: ${sent} queries, slowest reply ${slowest.toFixed(1)} ms; load average at end ${loadavg()}`);
    if (eipdns.log().trim() !== '') console.log(`\neipdns logged (level warn and above):\n${eipdns.log().trimEnd()}`);
    return pass;
  } finally {
    await eipdns?.stop();
    await world?.fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the transfer tier (issue 9) -------------------------------------------------

interface TransferConfigs {
  readonly dir: string;
  readonly upstreamPort: number;
  readonly endpoint: string;
  readonly pollMs: number;
}

/** A primary of zone `internal`: `db` from the Role=db Elastic IP, plus `extra` record lines; NOTIFY to `notify`. */
function writePrimaryConfig(c: TransferConfigs, file: string, port: number, notify: readonly number[], extra: readonly string[] = []): string {
  const path = join(c.dir, file);
  writeFileSync(
    path,
    `listen: ["127.0.0.1:${port}"]
upstream:
  servers: ["127.0.0.1:${c.upstreamPort}"]   # nothing listens there
ec2:
  region: us-east-1
  endpoint: "${c.endpoint}"
  poll_interval_ms: ${c.pollMs}
zones:
  - name: internal
    # An hour: only NOTIFY can carry a move to the secondaries in time.
    soa: { refresh: 3600, retry: 5, expire: 7200 }
    records:
      db: { elastic_ip: { tag: { Role: db } } }
${extra.map((l) => `      ${l}`).join('\n')}
    transfer:
      allow: ["127.0.0.0/8"]
      notify: [${notify.map((p) => `"127.0.0.1:${p}"`).join(', ')}]
    tsig: { name: ${KEY_NAME}, algorithm: hmac-sha256, secret_file: transfer.key }
acl:
  allow: ["127.0.0.0/8"]
log:
  level: warn
`,
  );
  return path;
}

function writeSecondaryConfig(c: TransferConfigs, file: string, port: number, primaryPort: number): string {
  const path = join(c.dir, file);
  writeFileSync(
    path,
    `listen: ["127.0.0.1:${port}"]
upstream:
  servers: ["127.0.0.1:${c.upstreamPort}"]
zones:
  - name: internal
    primaries: ["127.0.0.1:${primaryPort}"]
    tsig: { name: ${KEY_NAME}, algorithm: hmac-sha256, secret_file: transfer.key }
acl:
  allow: ["127.0.0.0/8"]
log:
  level: warn
`,
  );
  return path;
}

/** Resident set size of a process, from /proc (MB). */
function rssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]) / 1024;
  } catch {
    return NaN;
  }
}

/** Starts `count` eipdns processes a few at a time (2 CPUs: starting 50 at once only queues them). */
async function startMany(configs: readonly string[], readyPort: (i: number) => number, want: string, signal: AbortSignal): Promise<Eipdns[]> {
  const started: Eipdns[] = [];
  for (let i = 0; i < configs.length; i += 5) {
    const batch = configs.slice(i, i + 5).map((c) => startEipdns(c));
    started.push(...batch);
    for (let j = 0; j < batch.length; j++) {
      const ready = await probeFor(readyPort(i + j), want, performance.now(), STARTUP_BUDGET_MS * 3, signal);
      if (ready.ms === undefined) throw new BenchError(`eipdns #${i + j} never answered ${want}:\n${batch[j]!.output()}`);
    }
  }
  return started;
}

function callCount(fake: FakeEc2, from: number): number {
  return fake.calls.slice(from).filter((c) => c.action !== 'AssociateAddress').length;
}

/** The private IP the Role=db Elastic IP points at now. */
function currentIp(world: World): string {
  return world.fake.addresses.get(world.allocationId)?.association?.privateIpAddress ?? IP_A;
}

/** The other instance: where the next move goes. */
function otherInstance(world: World): { id: string; ip: string } {
  return world.instances.find((i) => i.ip !== currentIp(world))!;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function runTransfer(opts: Options): Promise<boolean> {
  const { signal } = run;
  const dir = mkdtempSync(join(tmpdir(), 'eipdns-failover-transfer-'));
  writeFileSync(join(dir, 'transfer.key'), `${randomBytes(32).toString('base64')}\n`);
  let world: World | undefined;
  const started: Eipdns[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(started.splice(0).map((e) => e.stop()));
  };
  let pass = true;
  try {
    world = await startWorld();
    const { fake } = world;
    const c: TransferConfigs = { dir, upstreamPort: await freePort(), endpoint: fake.url, pollMs: opts.pollMs };

    // 1. Flip time through a primary and a secondary.
    {
      const [pPort, sPort] = [await freePort(), await freePort()];
      const primary = startEipdns(writePrimaryConfig(c, 'primary.yaml', pPort, [sPort]));
      started.push(primary);
      if ((await probeFor(pPort, IP_A, performance.now(), STARTUP_BUDGET_MS, signal)).ms === undefined) {
        throw new BenchError(`the primary never answered ${NAME} A ${IP_A}:\n${primary.output()}`);
      }
      const secondary = startEipdns(writeSecondaryConfig(c, 'secondary.yaml', sPort, pPort));
      started.push(secondary);
      const ready = await probeFor(sPort, IP_A, performance.now(), STARTUP_BUDGET_MS, signal);
      if (ready.ms === undefined) throw new BenchError(`the secondary never answered ${NAME} A ${IP_A}:\n${primary.output()}\n${secondary.output()}`);
      console.log(`primary (pid ${primary.child.pid}) on 127.0.0.1:${pPort} polls the fake EC2; secondary (pid ${secondary.child.pid}) on 127.0.0.1:${sPort}, TSIG, SOA refresh 1 h`);
      console.log(`poll_interval_ms ${opts.pollMs}, ${opts.moves} moves, probing the secondary every ${PROBE_EVERY_MS} ms; load average ${loadavg()}\n`);
      const moves = await runMoves(world, sPort, opts, signal);
      pass = report(opts, moves, MOVE_BUDGET_INTERVALS * opts.pollMs, TRANSFER_SLACK_MS) && pass;
      for (const e of [primary, secondary]) if (e.log().trim() !== '') console.log(`\n${e === primary ? 'primary' : 'secondary'} logged (warn and above):\n${e.log().trimEnd()}`);
      await stopAll();
    }

    // 2. EC2 calls: 1 primary + N secondaries, then N independent pollers, over the same window with the same moves.
    const n = opts.secondaries;
    const windowMoves = 3;
    const measure = async (label: string, probePorts: readonly number[]): Promise<{ calls: number; windowMs: number; followedMs: number[] }> => {
      const from = fake.calls.length;
      const t0 = performance.now();
      const followedMs: number[] = [];
      const client = clientFor(fake);
      try {
        for (let m = 0; m < windowMoves; m++) {
          await sleep(opts.pollMs * 2, signal);
          const target = otherInstance(world!);
          await client.send(new AssociateAddressCommand({ AllocationId: world!.allocationId, InstanceId: target.id, AllowReassociation: true }), { abortSignal: signal });
          const since = performance.now();
          // Every server must follow; the slowest one's time is the move's.
          let slowest = 0;
          for (const p of probePorts) {
            const r = await probeFor(p, target.ip, since, MOVE_BUDGET_INTERVALS * opts.pollMs, signal);
            if (r.ms === undefined) throw new BenchError(`${label}: a server on port ${p} never answered ${target.ip}`);
            slowest = Math.max(slowest, r.ms);
          }
          followedMs.push(slowest);
        }
        await sleep(opts.pollMs * 2, signal);
      } finally {
        client.destroy();
      }
      return { calls: callCount(fake, from), windowMs: performance.now() - t0, followedMs };
    };
    console.log(`\nEC2 calls, 1 primary + ${n} secondaries vs ${n} independent pollers (processes on loopback, ${windowMoves} moves in each window):`);
    const pPort = await freePort();
    const sPorts: number[] = [];
    for (let i = 0; i < n; i++) sPorts.push(await freePort());
    const startedAt = performance.now();
    started.push(startEipdns(writePrimaryConfig(c, 'primary-n.yaml', pPort, sPorts)));
    if ((await probeFor(pPort, currentIp(world), performance.now(), STARTUP_BUDGET_MS, signal)).ms === undefined) {
      throw new BenchError(`the primary never answered:\n${started[0]!.output()}`);
    }
    started.push(...(await startMany(sPorts.map((p, i) => writeSecondaryConfig(c, `secondary-${i}.yaml`, p, pPort)), (i) => sPorts[i]!, currentIp(world), signal)));
    console.log(`  started 1 + ${n} in ${fmtMs(performance.now() - startedAt)}; load average ${loadavg()}`);
    const tiered = await measure('secondaries', sPorts);
    const secondaryRss = started.slice(1).map((e) => rssMb(e.child.pid));
    const primaryRss = rssMb(started[0]!.child.pid);
    await stopAll();
    const pollerPorts: number[] = [];
    for (let i = 0; i < n; i++) pollerPorts.push(await freePort());
    // The direct tier's config: each polls EC2 itself.
    const pollerConfigs = pollerPorts.map((p, i) => {
      const d = join(dir, `poller-${i}`);
      mkdirSync(d);
      return writeConfig(d, { port: p, upstreamPort: c.upstreamPort, endpoint: fake.url, pollMs: opts.pollMs });
    });
    const pollersAt = performance.now();
    started.push(...(await startMany(pollerConfigs, (i) => pollerPorts[i]!, currentIp(world), signal)));
    console.log(`  started ${n} pollers in ${fmtMs(performance.now() - pollersAt)}; load average ${loadavg()}`);
    const flat = await measure('pollers', pollerPorts);
    const pollerRss = started.map((e) => rssMb(e.child.pid));
    await stopAll();
    const perMin = (r: { calls: number; windowMs: number }): string => (r.calls / (r.windowMs / 60_000)).toFixed(0);
    console.log(`  1 primary + ${n} secondaries: ${tiered.calls} Describe calls in ${(tiered.windowMs / 1000).toFixed(1)} s = ${perMin(tiered)}/min`);
    console.log(`  ${n} independent pollers:      ${flat.calls} Describe calls in ${(flat.windowMs / 1000).toFixed(1)} s = ${perMin(flat)}/min`);
    console.log(`  ratio ${(flat.calls / tiered.calls * (tiered.windowMs / flat.windowMs)).toFixed(1)}×`);
    console.log(`  every server answering a move (slowest of ${n}, probed in turn): secondaries ${tiered.followedMs.map(fmtMs).join(', ')}; pollers ${flat.followedMs.map(fmtMs).join(', ')}`);
    console.log(`  RSS: primary ${primaryRss.toFixed(0)} MB, secondary median ${median(secondaryRss).toFixed(0)} MB, poller median ${median(pollerRss).toFixed(0)} MB`);

    // 3. A zone of N names: transfer time and the secondary's memory.
    {
      const names = opts.zoneNames;
      const extra = Array.from({ length: names - 1 }, (_, i) => `host-${i}: { a: ["10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}"] }`);
      const [bigPrimaryPort, bigSecondaryPort] = [await freePort(), await freePort()];
      const primary = startEipdns(writePrimaryConfig(c, 'primary-big.yaml', bigPrimaryPort, [bigSecondaryPort], extra));
      started.push(primary);
      const primaryReady = await probeFor(bigPrimaryPort, currentIp(world), performance.now(), STARTUP_BUDGET_MS * 3, signal);
      if (primaryReady.ms === undefined) throw new BenchError(`the ${names}-name primary never answered:\n${primary.output()}`);
      // The transfer on its own: an AXFR read into zone data by this process.
      const key = tsigKey({ name: KEY_NAME, algorithm: 'hmac-sha256', secret: readFileSync(join(dir, 'transfer.key'), 'utf8').trim() });
      const axfrMs: number[] = [];
      let messages = 0;
      let octets = 0;
      for (let i = 0; i < 5; i++) {
        const t = await timedAxfr(bigPrimaryPort, key);
        axfrMs.push(t.ms);
        messages = t.messages;
        octets = t.octets;
      }
      console.log(`\nzone of ${names} names: AXFR (TSIG, read into zone data) ${messages} messages, ${(octets / 1024).toFixed(0)} KiB: median ${fmtMs(median(axfrMs))} of 5 (${axfrMs.map(fmtMs).join(', ')})`);
      const t0 = performance.now();
      const secondary = startEipdns(writeSecondaryConfig(c, 'secondary-big.yaml', bigSecondaryPort, bigPrimaryPort));
      started.push(secondary);
      const lastName = `host-${names - 2}.internal`;
      const loaded = await probeName(bigSecondaryPort, lastName, t0, STARTUP_BUDGET_MS * 3, signal);
      if (loaded === undefined) throw new BenchError(`the secondary never answered ${lastName}:\n${secondary.output()}`);
      console.log(`  secondary started → answering from its copy: ${fmtMs(loaded)} (process start included)`);
      // One move in the big zone: NOTIFY + IXFR of a 2-record change in a 10,000-name zone.
      const client = clientFor(fake);
      const target = otherInstance(world);
      await client.send(new AssociateAddressCommand({ AllocationId: world.allocationId, InstanceId: target.id, AllowReassociation: true }), { abortSignal: signal });
      client.destroy();
      const flip = await probeFor(bigSecondaryPort, target.ip, performance.now(), MOVE_BUDGET_INTERVALS * opts.pollMs, signal);
      console.log(`  a move in the ${names}-name zone reached the secondary in ${flip.ms === undefined ? 'never' : fmtMs(flip.ms)} (poll + NOTIFY + IXFR)`);
      await sleep(1000, signal);
      console.log(`  RSS with the zone loaded: secondary ${rssMb(secondary.child.pid).toFixed(0)} MB, primary ${rssMb(primary.child.pid).toFixed(0)} MB`);
      await stopAll();
    }
    console.log(`\nload average at end ${loadavg()}`);
    return pass;
  } finally {
    await stopAll();
    await world?.fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One signed AXFR of `internal`, read into zone data; its wall time. */
async function timedAxfr(port: number, key: TsigKey): Promise<{ ms: number; messages: number; octets: number }> {
  const id = 0x5151;
  const unsigned = transferRequest('internal', id, 252, undefined);
  const signed = sign(unsigned, key, { now: Math.floor(Date.now() / 1000) });
  const verifier = new StreamVerifier(key, signed.mac, () => Math.floor(Date.now() / 1000));
  const reader = new TransferReader('internal', id, 252, undefined);
  let messages = 0;
  let octets = 0;
  const t0 = performance.now();
  await tcpExchange({ host: '127.0.0.1', port }, signed.msg, (msg) => {
    messages++;
    octets += msg.length;
    const problem = verifier.next(msg);
    if (problem !== undefined) throw new BenchError(`AXFR: ${problem}`);
    return reader.push(msg);
  });
  reader.result();
  return { ms: performance.now() - t0, messages, octets };
}

/** ms from `since` until `name` A gets an answer with an address. */
async function probeName(port: number, name: string, since: number, budgetMs: number, signal: AbortSignal): Promise<number | undefined> {
  const socket = createSocket('udp4');
  socket.on('error', () => undefined);
  let seenAt: number | undefined;
  socket.on('message', (msg) => {
    try {
      if (seenAt === undefined && decode(msg).addresses.length > 0) seenAt = performance.now();
    } catch {
      // not an answer we can read
    }
  });
  try {
    while (seenAt === undefined && performance.now() - since <= budgetMs) {
      socket.send(buildQuery(name, 'A'), port, '127.0.0.1');
      await sleep(PROBE_EVERY_MS, signal);
    }
  } finally {
    socket.close();
  }
  return seenAt === undefined ? undefined : seenAt - since;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof Interrupted) {
      process.stderr.write(`\n${err.message}\n`);
      process.exitCode = 130;
      return;
    }
    const text = err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`failover bench: ${text}\n`);
    process.exitCode = 1;
  },
);
