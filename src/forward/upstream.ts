// The upstream leg: forwards a client's query, bytes untouched except the ID,
// to the configured servers only, and accepts a reply only when source, ID and
// question all match what was sent (RFC 5452).
//
// Speed comes from what is *not* done per query: no socket bind, no DNS
// library parse or encode, no crypto call (random IDs come from a block that is
// refilled every 4096 queries). Safety comes from a random 16-bit ID per
// attempt, a random choice among several randomly-bound ports, and ports that
// are retired after a bounded number of queries or seconds. A server that
// timed out or failed is remembered as suspect for a doubling backoff and asked
// after the others, so a dead first server does not cost every query a timeout.

import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { HostPort } from '../config/types.js';
import type { Logger } from '../log.js';
import { UpstreamError, type UpstreamErrorCode } from './errors.js';
import { HEADER_SIZE } from '../dns/message.js';
import { FLAG_QR, FLAG_TC, questionEnd, sameQuestion } from './wire.js';

export interface UpstreamOptions {
  /**
   * A query never goes anywhere else. Tried in this order, except that servers
   * currently suspect (recently timed out or failed) come after the others.
   * May be empty: every resolve() then rejects ALL_FAILED.
   */
  servers: readonly HostPort[];
  /** Per attempt (one attempt per server, plus a TCP retry after TC). */
  timeoutMs: number;
  logger?: Logger;
  /** UDP sockets per address family. Default 8. */
  poolSize?: number;
  /** Outstanding resolve() calls; beyond it, reject at once with OVERLOAD. Default 10 000. */
  maxInFlight?: number;
  /** A socket is retired after sending this many queries. Default 5000. */
  rotateAfterQueries?: number;
  /** A socket is retired once it is this old (checked when it is picked). Default 60 000. */
  rotateAfterMs?: number;
  /**
   * How long a server stays suspect after its first failure; doubled per
   * further failure, up to 30 s (or this value if larger). Default 1000.
   */
  suspectBackoffMs?: number;
}

export interface ServerHealth {
  /** host:port ([host]:port for IPv6). */
  server: string;
  /** Consecutive failures counted (a burst lost in one outage counts once); 0 once it answers. */
  failures: number;
  /** Time left until it is asked first again; 0 when not suspect. */
  suspectForMs: number;
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

export interface Upstream {
  /**
   * `query` is the client's message as received (its ID, question and EDNS
   * OPT); it is not modified. Resolves with the upstream's reply with the ID
   * set back to the client's and the question bytes set back to the client's
   * (so its letter case survives). `viaTcp`: the client came over TCP, so a
   * UDP reply with TC set is retried over TCP to the same server; for a UDP
   * client a TC reply is relayed as is (the client retries over TCP itself).
   * Rejects with an UpstreamError when no server produced an acceptable reply;
   * the caller then answers SERVFAIL.
   */
  resolve(query: Buffer, viaTcp: boolean): Promise<Buffer>;
  close(): Promise<void>;
  stats(): UpstreamStats;
}

export { UpstreamError, type UpstreamErrorCode };

const DEFAULT_POOL_SIZE = 8;
const DEFAULT_MAX_IN_FLIGHT = 10_000;
const DEFAULT_ROTATE_QUERIES = 5000;
const DEFAULT_ROTATE_MS = 60_000;
/**
 * First suspicion: spares the next ~1000 queries (the VPC resolver's per-second
 * cap) a timeout, yet one lost packet diverts traffic only briefly.
 */
const DEFAULT_SUSPECT_BACKOFF_MS = 1000;
/** Longest suspicion: a long-dead server is re-probed at least this often, so its return is noticed within ~30 s. */
const MAX_SUSPECT_BACKOFF_MS = 30_000;
/**
 * A query from a TCP client larger than this goes to the upstream over TCP
 * straight away: over UDP it would be fragmented (DNS flag day 2020 size).
 */
const MAX_UDP_QUERY = 1232;
/** Draws of a fresh ID before a socket is considered too full to use. */
const ID_TRIES = 32;
const RANDOM_BLOCK = 8192;
const WARN_INTERVAL_MS = 10_000;
const RECV_BUFFER = 1 << 20;

interface Server {
  readonly host: string; // canonical text, as rinfo.address reports it
  readonly port: number;
  readonly pool: Pool;
  readonly label: string;
  /** Consecutive failures counted; 0: healthy. */
  failures: number;
  /** performance.now() until which it is asked after the others. */
  suspectUntil: number;
  /**
   * Bumped whenever `failures` changes. An attempt's failure counts only if
   * the attempt was sent at the current value, so the queries lost in one
   * outage (all in flight at once) count as one failure, not one each.
   */
  gen: number;
}

interface Pool {
  readonly type: 'udp4' | 'udp6';
  /** null: never opened, or retired and not yet replaced. */
  readonly slots: (PoolSocket | null)[];
}

interface PoolSocket {
  readonly sock: dgram.Socket;
  readonly pool: Pool;
  readonly slot: number;
  readonly born: number;
  /** Upstream ID → the query waiting for that reply on this socket. */
  readonly pending: Map<number, Query>;
  sends: number;
  retired: boolean;
  closed: boolean;
}

interface Query {
  readonly query: Buffer;
  readonly clientId: number;
  readonly qEnd: number;
  readonly viaTcp: boolean;
  readonly settle: (reply: Buffer | null, err: UpstreamError | null) => void;
  /** Server indexes in the order this query tries them. */
  readonly order: readonly number[];
  /** Position in `order` of the server being tried. */
  step: number;
  serverIdx: number;
  /** The server's `gen` when the current attempt was sent. */
  gen: number;
  /** Bumped per attempt so callbacks of an abandoned attempt are ignored. */
  attempt: number;
  id: number;
  sock: PoolSocket | null;
  tcp: net.Socket | null;
  timer: NodeJS.Timeout | null;
  /** Some attempt failed with an error, not just a timeout. */
  errored: boolean;
  done: boolean;
}

function canonicalHost(host: string): { host: string; type: 'udp4' | 'udp6' } {
  const family = net.isIP(host);
  if (family === 0) throw new TypeError(`upstream server "${host}" is not an IP address literal`);
  // rinfo.address is inet_ntop's text; SocketAddress runs the same
  // normalisation, so "FD00:ec2:0::253" in the config still matches replies.
  const canon = new net.SocketAddress({ address: host, family: family === 6 ? 'ipv6' : 'ipv4' });
  return { host: canon.address, type: family === 6 ? 'udp6' : 'udp4' };
}

function positiveInt(name: string, value: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return dflt;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`upstream option ${name} must be an integer in 1..${max}, got ${String(value)}`);
  }
  return value;
}

export function createUpstream(opts: UpstreamOptions): Upstream {
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    throw new RangeError(`upstream timeoutMs must be > 0, got ${String(opts.timeoutMs)}`);
  }
  const timeoutMs = opts.timeoutMs;
  const poolSize = positiveInt('poolSize', opts.poolSize, DEFAULT_POOL_SIZE, 256);
  const maxInFlight = positiveInt('maxInFlight', opts.maxInFlight, DEFAULT_MAX_IN_FLIGHT);
  const rotateQueries = positiveInt('rotateAfterQueries', opts.rotateAfterQueries, DEFAULT_ROTATE_QUERIES);
  const rotateMs = positiveInt('rotateAfterMs', opts.rotateAfterMs, DEFAULT_ROTATE_MS);
  const backoffMs = positiveInt('suspectBackoffMs', opts.suspectBackoffMs, DEFAULT_SUSPECT_BACKOFF_MS);
  const maxBackoffMs = Math.max(backoffMs, MAX_SUSPECT_BACKOFF_MS);
  const logger = opts.logger;

  const pools = new Map<'udp4' | 'udp6', Pool>();
  const servers: Server[] = opts.servers.map((s) => {
    if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
      throw new RangeError(`upstream server port must be 1..65535, got ${String(s.port)}`);
    }
    const { host, type } = canonicalHost(s.host);
    let pool = pools.get(type);
    if (!pool) {
      pool = { type, slots: new Array<PoolSocket | null>(poolSize).fill(null) };
      pools.set(type, pool);
    }
    const label = type === 'udp6' ? `[${host}]:${s.port}` : `${host}:${s.port}`;
    return { host, port: s.port, pool, label, failures: 0, suspectUntil: 0, gen: 0 };
  });
  const configuredOrder: readonly number[] = servers.map((_, i) => i);
  /** Servers with failures > 0; while 0, every query uses configuredOrder as is. */
  let failing = 0;

  /** Every UDP socket not yet closed, active or retired. */
  const live = new Set<PoolSocket>();
  const tcpLive = new Map<net.Socket, Query>();
  let closed = false;
  let closing: Promise<void> | null = null;
  let inFlight = 0;
  let sent = 0;
  let timeouts = 0;
  let mismatched = 0;

  const random = Buffer.alloc(RANDOM_BLOCK);
  let randomPos = RANDOM_BLOCK;
  function random16(): number {
    if (randomPos >= RANDOM_BLOCK) {
      randomFillSync(random);
      randomPos = 0;
    }
    const v = (random[randomPos]! << 8) | random[randomPos + 1]!;
    randomPos += 2;
    return v;
  }

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

  // ── UDP socket pool ──────────────────────────────────────────────────────

  function openSocket(pool: Pool, slot: number): PoolSocket {
    const sock = dgram.createSocket({ type: pool.type, ipv6Only: pool.type === 'udp6' });
    const ps: PoolSocket = {
      sock,
      pool,
      slot,
      born: Date.now(),
      pending: new Map(),
      sends: 0,
      retired: false,
      closed: false,
    };
    sock.on('message', (msg, rinfo) => onUdpReply(ps, msg, rinfo));
    sock.on('error', (err) => {
      // Unconnected sockets see no ICMP errors, so this is a bind failure or
      // worse; a fresh socket replaces it on next use and its pending queries
      // time out onto the next server.
      warn(`udp-${pool.type}`, err, 'upstream UDP socket error; replacing it');
      retire(ps);
    });
    // Port 0: the kernel picks a random ephemeral port (Linux randomises the
    // starting point of its search), which is the port half of RFC 5452's
    // entropy. exclusive: cluster workers must not share one port.
    sock.bind({ port: 0, address: pool.type === 'udp6' ? '::' : '0.0.0.0', exclusive: true });
    sock.once('listening', () => {
      // Replies to a burst of forwarded queries arrive as a burst; the default
      // buffer (~256 small datagrams) drops the rest, and a dropped reply costs
      // a full timeout. The kernel silently caps this at net.core.rmem_max.
      try {
        sock.setRecvBufferSize(RECV_BUFFER);
      } catch {
        // Not fatal: the default buffer still works, only less burst-tolerant.
      }
    });
    // Only pending queries (whose timers are ref'd) should hold the process.
    sock.unref();
    live.add(ps);
    pool.slots[slot] = ps;
    return ps;
  }

  function retire(ps: PoolSocket): void {
    if (ps.retired) return;
    ps.retired = true;
    if (ps.pool.slots[ps.slot] === ps) ps.pool.slots[ps.slot] = null;
    closeIfDrained(ps);
  }

  function closeIfDrained(ps: PoolSocket): void {
    if (!ps.retired || ps.closed || ps.pending.size > 0) return;
    ps.closed = true;
    live.delete(ps);
    try {
      ps.sock.close();
    } catch {
      // Already closed by a failed bind; nothing left to release.
    }
  }

  function pick(pool: Pool): PoolSocket {
    const slot = random16() % pool.slots.length;
    let ps = pool.slots[slot] ?? null;
    // Age is checked here rather than with a timer per socket: an idle socket
    // has nothing pending, so there is nothing on it for a spoofer to hit.
    if (ps && Date.now() - ps.born >= rotateMs) {
      retire(ps);
      ps = null;
    }
    return ps ?? openSocket(pool, slot);
  }

  // ── server health ────────────────────────────────────────────────────────

  /**
   * Healthy servers (and those whose suspicion has run out) in configured
   * order, then suspect ones, soonest-to-recover first: every server is still
   * tried before a query fails, only a dead one is no longer asked first.
   */
  function attemptOrder(): readonly number[] {
    if (failing === 0) return configuredOrder;
    const now = performance.now();
    const ok: number[] = [];
    const suspect: number[] = [];
    for (let i = 0; i < servers.length; i++) (servers[i]!.suspectUntil > now ? suspect : ok).push(i);
    // Array sort is stable: equal deadlines keep configured order.
    suspect.sort((a, b) => servers[a]!.suspectUntil - servers[b]!.suspectUntil);
    const order = ok.concat(suspect);
    // A failing server whose suspicion has run out is asked first by this
    // query alone (the probe): others arriving while it is out ask the rest
    // first, so a still-dead server costs one timeout per backoff, not one
    // per query in the probe's timeout window.
    const first = servers[order[0]!]!;
    if (first.failures > 0 && first.suspectUntil <= now) first.suspectUntil = now + timeoutMs;
    return order;
  }

  function markFailed(server: Server, gen: number): void {
    if (gen !== server.gen) return; // already counted for this outage
    if (server.failures++ === 0) failing++;
    server.gen++;
    const backoff = Math.min(backoffMs * 2 ** Math.min(server.failures - 1, 30), maxBackoffMs);
    server.suspectUntil = performance.now() + backoff;
    // One lost datagram is routine; a failed probe after it is an outage worth a line.
    if (server.failures === 2) logger?.warn({ server: server.label }, 'upstream server not answering; asking the others first');
  }

  function markAnswered(server: Server): void {
    if (server.failures === 0) return;
    if (server.failures >= 2) logger?.info({ server: server.label, failures: server.failures }, 'upstream server answering again');
    server.failures = 0;
    server.suspectUntil = 0;
    server.gen++;
    failing--;
  }

  // ── attempts ─────────────────────────────────────────────────────────────

  function sendUdp(q: Query): void {
    const server = servers[q.serverIdx]!;
    q.gen = server.gen;
    let ps = pick(server.pool);
    let id = random16();
    let tries = 1;
    while (ps.pending.has(id)) {
      if (tries++ >= ID_TRIES) {
        // Tens of thousands in flight on one port: move to a fresh one rather
        // than spin looking for a free ID.
        retire(ps);
        ps = openSocket(server.pool, ps.slot);
        tries = 1;
      }
      id = random16();
    }
    const attempt = ++q.attempt;
    const buf = Buffer.allocUnsafe(q.query.length);
    q.query.copy(buf);
    buf[0] = id >>> 8;
    buf[1] = id & 0xff;
    q.id = id;
    q.sock = ps;
    ps.pending.set(id, q);
    q.timer = setTimeout(onTimeout, timeoutMs, q, attempt);
    sent++;
    if (++ps.sends >= rotateQueries) retire(ps);
    try {
      ps.sock.send(buf, server.port, server.host, (err) => {
        if (err) onAttemptError(q, attempt, err, 'udp-send', 'upstream UDP send failed');
      });
    } catch (err) {
      // send() throws synchronously on a socket that is no longer running.
      onAttemptError(q, attempt, err as Error, 'udp-send', 'upstream UDP send failed');
    }
  }

  function sendTcp(q: Query): void {
    const server = servers[q.serverIdx]!;
    q.gen = server.gen;
    const attempt = ++q.attempt;
    // Its own connection, so no other query can share the ID; still random so
    // the question is not linkable to the client's ID.
    const id = random16();
    const len = q.query.length;
    const frame = Buffer.allocUnsafe(2 + len);
    frame.writeUInt16BE(len, 0);
    q.query.copy(frame, 2);
    frame[2] = id >>> 8;
    frame[3] = id & 0xff;
    q.id = id;

    const sock = net.connect({ host: server.host, port: server.port });
    q.tcp = sock;
    tcpLive.set(sock, q);
    q.timer = setTimeout(onTimeout, timeoutMs, q, attempt);
    sent++;
    sock.setNoDelay(true);

    let buffered: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      if (q.done || q.attempt !== attempt) return;
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      // A reply that does not match is skipped and the stream read on, the
      // same policy as UDP: only a timeout ends the attempt.
      while (buffered.length >= 2) {
        const mlen = buffered.readUInt16BE(0);
        if (buffered.length < 2 + mlen) break;
        const msg = buffered.subarray(2, 2 + mlen);
        buffered = buffered.subarray(2 + mlen);
        if (!acceptable(msg, q, id)) {
          mismatched++;
          continue;
        }
        clearAttempt(q);
        markAnswered(server);
        // Copied: `msg` is a view into socket read buffers.
        finish(q, Buffer.from(msg));
        return;
      }
    });
    sock.on('error', (err) => {
      onAttemptError(q, attempt, err, 'tcp', 'upstream TCP query failed');
    });
    sock.on('close', () => {
      tcpLive.delete(sock);
      onAttemptError(q, attempt, new Error('connection closed before a reply'), 'tcp', 'upstream TCP query failed');
    });
    sock.write(frame);
  }

  function acceptable(msg: Buffer, q: Query, id: number): boolean {
    return (
      msg.length >= HEADER_SIZE &&
      ((msg[0]! << 8) | msg[1]!) === id &&
      (msg[2]! & FLAG_QR) !== 0 &&
      sameQuestion(msg, q.query, q.qEnd)
    );
  }

  function onUdpReply(ps: PoolSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < HEADER_SIZE) {
      mismatched++;
      return;
    }
    const id = (msg[0]! << 8) | msg[1]!;
    const q = ps.pending.get(id);
    if (q === undefined) {
      mismatched++;
      return;
    }
    const server = servers[q.serverIdx]!;
    if (rinfo.port !== server.port || rinfo.address !== server.host || !acceptable(msg, q, id)) {
      mismatched++;
      return;
    }
    clearAttempt(q);
    markAnswered(server);
    if ((msg[2]! & FLAG_TC) !== 0 && q.viaTcp) {
      sendTcp(q);
      return;
    }
    finish(q, msg);
  }

  function clearAttempt(q: Query): void {
    if (q.timer !== null) {
      clearTimeout(q.timer);
      q.timer = null;
    }
    const ps = q.sock;
    if (ps !== null) {
      q.sock = null;
      ps.pending.delete(q.id);
      closeIfDrained(ps);
    }
    const tcp = q.tcp;
    if (tcp !== null) {
      q.tcp = null;
      tcpLive.delete(tcp);
      tcp.destroy();
    }
  }

  function onTimeout(q: Query, attempt: number): void {
    if (q.done || q.attempt !== attempt) return;
    q.timer = null;
    timeouts++;
    markFailed(servers[q.serverIdx]!, q.gen);
    clearAttempt(q);
    nextServer(q);
  }

  function onAttemptError(q: Query, attempt: number, err: Error, kind: string, msg: string): void {
    if (q.done || q.attempt !== attempt) return;
    const server = servers[q.serverIdx]!;
    warn(`${kind} ${server.label}`, err, msg, server.label);
    q.errored = true;
    markFailed(server, q.gen);
    clearAttempt(q);
    nextServer(q);
  }

  function nextServer(q: Query): void {
    if (++q.step >= q.order.length) {
      const code: UpstreamErrorCode = q.errored ? 'ALL_FAILED' : 'TIMEOUT';
      fail(q, new UpstreamError(code, code === 'TIMEOUT' ? 'every upstream server timed out' : 'every upstream server failed'));
      return;
    }
    q.serverIdx = q.order[q.step]!;
    startAttempt(q);
  }

  function startAttempt(q: Query): void {
    if (q.viaTcp && q.query.length > MAX_UDP_QUERY) sendTcp(q);
    else sendUdp(q);
  }

  function finish(q: Query, reply: Buffer): void {
    reply[0] = q.clientId >>> 8;
    reply[1] = q.clientId & 0xff;
    // Equal up to ASCII case (checked), so this only restores the client's
    // spelling (RFC 1035 §7.3 echo; some clients compare case-sensitively).
    q.query.copy(reply, HEADER_SIZE, HEADER_SIZE, q.qEnd);
    q.done = true;
    inFlight--;
    q.settle(reply, null);
  }

  function fail(q: Query, err: UpstreamError): void {
    if (q.done) return;
    clearAttempt(q);
    q.done = true;
    inFlight--;
    q.settle(null, err);
  }

  // ── public surface ───────────────────────────────────────────────────────

  function resolve(query: Buffer, viaTcp: boolean): Promise<Buffer> {
    if (closed) return Promise.reject(new UpstreamError('CLOSED', 'upstream is closed'));
    // A config with no servers is legal (private zones only): nothing to ask.
    if (servers.length === 0) return Promise.reject(new UpstreamError('ALL_FAILED', 'no upstream servers configured'));
    if (inFlight >= maxInFlight) {
      return Promise.reject(new UpstreamError('OVERLOAD', `${maxInFlight} upstream queries already in flight`));
    }
    const qEnd = questionEnd(query);
    if (qEnd < 0) {
      return Promise.reject(new UpstreamError('BAD_QUERY', 'not a one-question query with an uncompressed name'));
    }
    return new Promise<Buffer>((res, rej) => {
      const order = attemptOrder();
      const q: Query = {
        query,
        clientId: (query[0]! << 8) | query[1]!,
        qEnd,
        viaTcp,
        settle: (reply, err) => (reply !== null ? res(reply) : rej(err)),
        order,
        step: 0,
        serverIdx: order[0]!,
        gen: 0,
        attempt: 0,
        id: 0,
        sock: null,
        tcp: null,
        timer: null,
        errored: false,
        done: false,
      };
      inFlight++;
      startAttempt(q);
    });
  }

  function close(): Promise<void> {
    if (closing) return closing;
    closed = true;
    const sockets = [...live];
    live.clear();
    // Marked closed first so failing their queries below does not close them
    // through closeIfDrained without a callback we can wait on.
    for (const ps of sockets) {
      ps.retired = true;
      ps.closed = true;
    }
    for (const pool of pools.values()) pool.slots.fill(null);
    const err = new UpstreamError('CLOSED', 'upstream closed while the query was pending');
    for (const ps of sockets) for (const q of [...ps.pending.values()]) fail(q, err);
    for (const q of [...tcpLive.values()]) fail(q, err);
    closing = Promise.all(
      sockets.map(
        (ps) =>
          new Promise<void>((done) => {
            try {
              ps.sock.close(() => done());
            } catch {
              done(); // a socket whose bind failed is already closed
            }
          }),
      ),
    ).then(() => undefined);
    return closing;
  }

  function stats(): UpstreamStats {
    const now = performance.now();
    return {
      inFlight,
      sent,
      timeouts,
      mismatched,
      servers: servers.map((s) => ({
        server: s.label,
        failures: s.failures,
        suspectForMs: Math.max(0, Math.ceil(s.suspectUntil - now)),
      })),
    };
  }

  return { resolve, close, stats };
}
