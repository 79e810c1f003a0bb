// The upstream leg: forwards a client's query, bytes untouched except the ID,
// to the configured servers only, and accepts a reply only when source, ID and
// question all match what was sent (RFC 5452).
//
// This file is the attempt state machine: one attempt per server in health
// order (health.ts), each from a fresh random port (ports.ts) with a random ID
// (random.ts), a TCP retry after TC for TCP clients (tcp.ts), a timeout per
// attempt, and SERVFAIL (a rejection) once every server has had its turn.
// Nothing here parses the question: the pipeline did, once.

import type dgram from 'node:dgram';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { HostPort } from '../config/types.js';
import type { Logger } from '../log.js';
import { RCODE } from '../wire/codes.js';
import { HEADER_SIZE, headerRcode, QR, RA, TC, readId, writeId } from '../wire/header.js';
import { sameQuestion } from '../wire/name.js';
import { ADVERTISED_UDP_SIZE, headerOnlyReply, restoreClient } from '../wire/reply.js';
import { UpstreamError, type UpstreamErrorCode } from './errors.js';
import type { Forwarder, ForwardRequest } from './forwarder.js';
import { ServerSet, type Server, type ServerHealth } from './health.js';
import { closeQuiet, sendFromFreshPort } from './ports.js';
import { createRandom16 } from './random.js';
import { sendOverTcp } from './tcp.js';

export interface UpstreamOptions {
  /**
   * A query never goes anywhere else. Tried in this order, except that servers
   * currently suspect (recently timed out or failed) come after the others.
   * May be empty: every resolve() then rejects AllFailed.
   */
  servers: readonly HostPort[];
  /** Per attempt (one attempt per server, plus a TCP retry after TC). */
  timeoutMs: number;
  logger?: Logger;
  /** Outstanding resolve() calls; beyond it, reject at once with Overload. Default 10 000. */
  maxInFlight?: number;
  /**
   * How long a server stays suspect after its first failure; doubled per
   * further failure, up to 30 s (or this value if larger). Default 1000.
   */
  suspectBackoffMs?: number;
  /**
   * Asked before every query written upstream (first tries, retries, the TCP
   * retry). False: the attempt fails at once with OverBudget (budget.ts).
   */
  maySend?: () => boolean;
  /**
   * Latency sinks, asked once per server when the upstream is built (the
   * admin registry returns a prebound histogram child). Every answered
   * attempt is observed: an attempt already costs a socket of its own, so
   * two clock reads and an observe add about 1 % to it.
   */
  latency?: (server: string) => ((seconds: number) => void) | undefined;
}

export interface UpstreamStats {
  /** resolve() calls not yet settled. */
  inFlight: number;
  /** Queries written to an upstream (UDP datagrams + TCP messages). */
  sent: number;
  /** Attempts that timed out. */
  timeouts: number;
  /** Replies dropped: unknown ID, wrong source, QR=0, wrong question, runt. */
  mismatched: number;
  /** One entry per configured server, in configured order. */
  servers: ServerHealth[];
}

export interface Upstream extends Forwarder<UpstreamStats> {
  /**
   * Resolves with the upstream's reply with the client's ID and question
   * spelling restored. A TCP client's query whose UDP reply has TC set is
   * retried over TCP to the same server; a UDP client gets the TC reply as is
   * (it retries over TCP itself). Rejects with an UpstreamError when no
   * server produced an acceptable reply.
   */
  resolve(req: ForwardRequest): Promise<Buffer>;
}

export { UpstreamError, type UpstreamErrorCode };

const DEFAULT_MAX_IN_FLIGHT = 10_000;
/**
 * First suspicion: spares the next ~1000 queries (the VPC resolver's per-second
 * cap) a timeout, yet one lost packet diverts traffic only briefly.
 */
const DEFAULT_SUSPECT_BACKOFF_MS = 1000;
/**
 * A query from a TCP client larger than this goes to the upstream over TCP
 * straight away: over UDP it would be fragmented (DNS flag day 2020 size,
 * the one we advertise).
 */
const MAX_UDP_QUERY = ADVERTISED_UDP_SIZE;
const WARN_INTERVAL_MS = 10_000;

interface Attempt {
  readonly req: ForwardRequest;
  readonly settle: (reply: Buffer | null, err: UpstreamError | null) => void;
  /** Server indexes in the order this query tries them. */
  readonly order: readonly number[];
  /** Position in `order` of the server being tried. */
  step: number;
  server: Server;
  /** The server's `gen` when the current attempt was sent. */
  gen: number;
  /** Bumped per attempt so callbacks of an abandoned attempt are ignored. */
  attempt: number;
  /** performance.now() when the current attempt was sent (0 when nobody measures). */
  sentAt: number;
  id: number;
  udp: dgram.Socket | null;
  tcp: net.Socket | null;
  timer: NodeJS.Timeout | null;
  /** Some attempt failed with an error, not just a timeout. */
  errored: boolean;
  /** Some attempt was refused by the send budget. */
  overBudget: boolean;
  done: boolean;
}

function positiveInt(name: string, value: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return dflt;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`upstream option ${name} must be an integer in 1..${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * FORMERR or NOTIMP with no question at all: how a server that does not
 * speak EDNS (RFC 6891 §7) or this opcode answers. With the attempt's ID,
 * from the server asked (UDP: checked by the caller) and QR set, it is that
 * server's answer; any other reply without our question is not.
 */
function questionlessError(msg: Buffer): boolean {
  if (msg.length < HEADER_SIZE || msg[4] !== 0 || msg[5] !== 0) return false;
  const rcode = headerRcode(msg);
  return rcode === RCODE.FORMERR || rcode === RCODE.NOTIMP;
}

export function createUpstream(opts: UpstreamOptions): Upstream {
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    throw new RangeError(`upstream timeoutMs must be > 0, got ${String(opts.timeoutMs)}`);
  }
  const timeoutMs = opts.timeoutMs;
  const maxInFlight = positiveInt('maxInFlight', opts.maxInFlight, DEFAULT_MAX_IN_FLIGHT);
  const backoffMs = positiveInt('suspectBackoffMs', opts.suspectBackoffMs, DEFAULT_SUSPECT_BACKOFF_MS);
  const maySend = opts.maySend ?? (() => true);
  const logger = opts.logger;
  const set = new ServerSet(opts.servers, backoffMs, timeoutMs, logger);
  const servers = set.servers;
  const latency = new Map<Server, (seconds: number) => void>();
  for (const server of servers) {
    const sink = opts.latency?.(server.label);
    if (sink !== undefined) latency.set(server, sink);
  }
  const timed = latency.size > 0;
  const random16 = createRandom16();

  const pending = new Set<Attempt>();
  let closed = false;
  let inFlight = 0;
  let sent = 0;
  let timeouts = 0;
  let mismatched = 0;

  const lastWarn = new Map<string, { at: number; suppressed: number }>();
  function warn(key: string, err: Error, msg: string, server?: string): void {
    if (!logger) return;
    const now = Date.now();
    const seen = lastWarn.get(key);
    if (seen && now - seen.at < WARN_INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    logger.warn({ err, server, suppressed: seen?.suppressed ?? 0 }, msg);
    lastWarn.set(key, { at: now, suppressed: 0 });
  }

  /**
   * Charges one query to the budget and counts it; false when the budget says
   * no. Every packet is charged, retries too, though the budget guard above
   * already admitted the request: each one counts against the resolver's quota.
   */
  function charge(a: Attempt): boolean {
    if (!maySend()) {
      a.overBudget = true;
      return false;
    }
    sent++;
    a.server.sent++;
    a.gen = a.server.gen;
    return true;
  }

  function sendUdp(a: Attempt): void {
    const server = a.server;
    const attempt = ++a.attempt;
    const id = random16();
    const msg = a.req.msg;
    const buf = Buffer.allocUnsafe(msg.length);
    msg.copy(buf);
    writeId(buf, id);
    a.id = id;
    a.timer = setTimeout(onTimeout, timeoutMs, a, attempt);
    if (timed) a.sentAt = performance.now();
    a.udp = sendFromFreshPort(server.family, buf, server.port, server.host, {
      onMessage: (reply, rinfo) => onUdpReply(a, attempt, reply, rinfo),
      onError: (err) => onAttemptError(a, attempt, err, 'udp', 'upstream UDP query failed'),
    });
  }

  function sendTcp(a: Attempt): void {
    const attempt = ++a.attempt;
    // Its own connection, so no other query can share the ID; still random so
    // the question is not linkable to the client's ID.
    const id = random16();
    a.id = id;
    a.timer = setTimeout(onTimeout, timeoutMs, a, attempt);
    if (timed) a.sentAt = performance.now();
    a.tcp = sendOverTcp(a.server, a.req.msg, id, {
      accept: (reply) => {
        if (a.done || a.attempt !== attempt) return false;
        if (acceptable(reply, a)) return true;
        mismatched++;
        return false;
      },
      onReply: (reply) => {
        answered(a);
        clearAttempt(a);
        set.markAnswered(a.server);
        finish(a, reply);
      },
      onError: (err) => onAttemptError(a, attempt, err, 'tcp', 'upstream TCP query failed'),
    });
  }

  function acceptable(msg: Buffer, a: Attempt): boolean {
    return (
      msg.length >= HEADER_SIZE &&
      readId(msg) === a.id &&
      (msg[2]! & QR) !== 0 &&
      (sameQuestion(msg, a.req.msg, a.req.query.questionEnd) || questionlessError(msg))
    );
  }

  function onUdpReply(a: Attempt, attempt: number, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (a.done || a.attempt !== attempt) return;
    const server = a.server;
    if (rinfo.port !== server.port || rinfo.address !== server.host || !acceptable(msg, a)) {
      mismatched++;
      return;
    }
    answered(a);
    clearAttempt(a);
    set.markAnswered(server);
    if ((msg[2]! & TC) !== 0 && a.req.viaTcp) {
      if (charge(a)) sendTcp(a);
      else fail(a, exhausted(a));
      return;
    }
    finish(a, msg);
  }

  function answered(a: Attempt): void {
    if (a.sentAt !== 0) latency.get(a.server)?.((performance.now() - a.sentAt) / 1000);
  }

  function clearAttempt(a: Attempt): void {
    if (a.timer !== null) {
      clearTimeout(a.timer);
      a.timer = null;
    }
    if (a.udp !== null) {
      closeQuiet(a.udp);
      a.udp = null;
    }
    if (a.tcp !== null) {
      a.tcp.destroy();
      a.tcp = null;
    }
  }

  function onTimeout(a: Attempt, attempt: number): void {
    if (a.done || a.attempt !== attempt) return;
    a.timer = null;
    timeouts++;
    a.server.timeouts++;
    set.markFailed(a.server, a.gen);
    clearAttempt(a);
    nextServer(a);
  }

  function onAttemptError(a: Attempt, attempt: number, err: Error, kind: string, msg: string): void {
    if (a.done || a.attempt !== attempt) return;
    const server = a.server;
    warn(`${kind} ${server.label}`, err, msg, server.label);
    a.errored = true;
    server.errors++;
    set.markFailed(server, a.gen);
    clearAttempt(a);
    nextServer(a);
  }

  function nextServer(a: Attempt): void {
    if (++a.step >= a.order.length) {
      fail(a, exhausted(a));
      return;
    }
    a.server = servers[a.order[a.step]!]!;
    startAttempt(a);
  }

  function exhausted(a: Attempt): UpstreamError {
    if (a.errored) return new UpstreamError('AllFailed', 'every upstream server failed');
    if (a.overBudget) return new UpstreamError('OverBudget', 'upstream query budget (max_qps) exhausted');
    return new UpstreamError('Timeout', 'every upstream server timed out');
  }

  function startAttempt(a: Attempt): void {
    if (!charge(a)) {
      // Over budget: no other server is worth a try either (they share it).
      fail(a, exhausted(a));
      return;
    }
    if (a.req.viaTcp && a.req.msg.length > MAX_UDP_QUERY) sendTcp(a);
    else sendUdp(a);
  }

  function finish(a: Attempt, answer: Buffer): void {
    let reply = answer;
    if (questionlessError(reply)) {
      // The client is told the rcode with its own question, and without an
      // OPT, as the server sent it: an EDNS client can then fall back.
      const q = a.req.query;
      reply = headerOnlyReply(a.req.msg, { id: q.id, queryFlags: q.flags, rcode: headerRcode(reply), questionEnd: q.questionEnd, edns: null, ra: (reply[3]! & RA) !== 0 });
    } else {
      // Equal up to ASCII case (checked), so this only restores the client's spelling.
      restoreClient(reply, a.req.msg, a.req.query);
    }
    a.done = true;
    pending.delete(a);
    inFlight--;
    a.settle(reply, null);
  }

  function fail(a: Attempt, err: UpstreamError): void {
    if (a.done) return;
    clearAttempt(a);
    a.done = true;
    pending.delete(a);
    inFlight--;
    a.settle(null, err);
  }

  function resolve(req: ForwardRequest): Promise<Buffer> {
    if (closed) return Promise.reject(new UpstreamError('Closed', 'upstream is closed'));
    // A config with no servers is legal (private zones only): nothing to ask.
    if (servers.length === 0) return Promise.reject(new UpstreamError('AllFailed', 'no upstream servers configured'));
    if (inFlight >= maxInFlight) {
      return Promise.reject(new UpstreamError('Overload', `${maxInFlight} upstream queries already in flight`));
    }
    return new Promise<Buffer>((res, rej) => {
      const order = set.attemptOrder();
      const a: Attempt = {
        req,
        settle: (reply, err) => (reply !== null ? res(reply) : rej(err)),
        order,
        step: 0,
        server: servers[order[0]!]!,
        gen: 0,
        attempt: 0,
        sentAt: 0,
        id: 0,
        udp: null,
        tcp: null,
        timer: null,
        errored: false,
        overBudget: false,
        done: false,
      };
      inFlight++;
      pending.add(a);
      startAttempt(a);
    });
  }

  async function close(): Promise<void> {
    closed = true;
    const err = new UpstreamError('Closed', 'upstream closed while the query was pending');
    for (const a of [...pending]) fail(a, err);
  }

  function stats(): UpstreamStats {
    return { inFlight, sent, timeouts, mismatched, servers: set.health() };
  }

  return { resolve, close, stats };
}
