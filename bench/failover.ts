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
//   npm run bench:failover                           20 moves, 1000 ms polls
//   npm run bench:failover -- --poll-ms 2000 --moves 10
//
// Target: max flip time ≤ poll interval + 100 ms. Exit status 0 when met, 1
// when not (or on an error), 130 when interrupted. Everything started here is
// stopped on exit, Ctrl-C included.

import { AssociateAddressCommand } from '@aws-sdk/client-ec2';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startFakeEc2, type FakeEc2 } from '../test/ec2/fake-ec2.js';
import { clientFor } from '../test/ec2/helpers.js';
import { buildQuery, decode } from '../test/helpers/dns-client.js';
import { freePort } from '../test/interop/tools.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NAME = 'db.internal';
const IP_A = '10.0.1.10';
const IP_B = '10.0.1.20';
const PROBE_EVERY_MS = 10;
/** A move not seen within this many poll intervals is a failure. */
const MOVE_BUDGET_INTERVALS = 5;
const TARGET_SLACK_MS = 100;
const STARTUP_BUDGET_MS = 20_000;
const STOP_GRACE_MS = 5_000;
/** A probe reply slower than this is flagged: some process stalled (busy machine). */
const SLOW_REPLY_MS = 20;

// ---- options ------------------------------------------------------------------

interface Options {
  readonly pollMs: number;
  readonly moves: number;
}

const HELP = `Usage: npm run bench:failover -- [--poll-ms MS] [--moves N]
  --poll-ms MS  eipdns ec2.poll_interval_ms (default 1000, at least 250)
  --moves N     Elastic IP moves to time (default 20)
`;

function parseOptions(argv: readonly string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        'poll-ms': { type: 'string' },
        moves: { type: 'string' },
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
  return { pollMs: integer('poll-ms', values['poll-ms'], 1000, 250), moves: integer('moves', values.moves, 20, 1) };
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
let eipdnsChild: ChildProcess | undefined;

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (!run.signal.aborted) {
      run.abort(new Interrupted(signal));
      return;
    }
    // A second signal while cleaning up: stop waiting.
    eipdnsChild?.kill('SIGKILL');
    process.exit(130);
  });
}
// Last resort if the process exits some other way.
process.on('exit', () => eipdnsChild?.kill('SIGKILL'));

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
  eipdnsChild = child;
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

function report(opts: Options, moves: readonly Move[], budgetMs: number): boolean {
  const seen = moves.flatMap((m) => (m.probe.ms === undefined ? [] : [m.probe.ms])).sort((a, b) => a - b);
  const missed = moves.length - seen.length;
  const limit = opts.pollMs + TARGET_SLACK_MS;
  const count = moves.length === opts.moves ? `${moves.length}` : `${moves.length} of ${opts.moves}`;
  console.log(`\nflip time (AssociateAddress response → first answer with the new IP), ${count} moves:`);
  if (seen.length > 0) {
    const max = missed > 0 ? `> ${fmtMs(budgetMs)} (${missed} not seen)` : fmtMs(seen[seen.length - 1]!);
    console.log(`  p50 ${fmtMs(percentile(seen, 50))}   p95 ${fmtMs(percentile(seen, 95))}   max ${max}`);
  } else {
    console.log(`  no move seen within ${fmtMs(budgetMs)}`);
  }
  const pass = moves.length === opts.moves && missed === 0 && seen[seen.length - 1]! <= limit;
  console.log(`target: max ≤ poll interval + ${TARGET_SLACK_MS} ms = ${fmtMs(limit)}: ${pass ? 'PASS' : 'FAIL'}`);
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
      const target = world.instances[n % 2]!;
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
  const { signal } = run;
  ensureBuilt();

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
    return pass ? 0 : 1;
  } finally {
    await eipdns?.stop();
    await world?.fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
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
