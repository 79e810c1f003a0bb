// Which configured server to ask first. A server that timed out or failed is
// suspect for a doubling backoff and asked after the others, so a dead first
// server costs one timeout per backoff window instead of one per query; every
// configured server is still tried before a query fails, and nothing outside
// the list ever is.

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { HostPort } from '../config/types.js';
import type { Logger } from '../log.js';

/** Longest suspicion: a long-dead server is re-probed at least this often, so its return is noticed within ~30 s. */
const MAX_SUSPECT_BACKOFF_MS = 30_000;

export interface ServerHealth {
  /** host:port ([host]:port for IPv6). */
  server: string;
  /** Consecutive failures counted (a burst lost in one outage counts once); 0 once it answers. */
  failures: number;
  /** Time left until it is asked first again; 0 when not suspect. */
  suspectForMs: number;
  /** Queries written to it (UDP datagrams + TCP messages). */
  sent: number;
  /** Attempts that timed out, and that failed otherwise (send error, TCP refused or reset). */
  timeouts: number;
  errors: number;
}

export interface Server {
  readonly host: string; // canonical text, as rinfo.address reports it
  readonly port: number;
  readonly family: 'udp4' | 'udp6';
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
  sent: number;
  timeouts: number;
  errors: number;
}

function canonicalHost(host: string): { host: string; family: 'udp4' | 'udp6' } {
  const family = net.isIP(host);
  if (family === 0) throw new TypeError(`upstream server "${host}" is not an IP address literal`);
  // rinfo.address is inet_ntop's text; SocketAddress runs the same
  // normalisation, so "FD00:ec2:0::253" in the config still matches replies.
  const canon = new net.SocketAddress({ address: host, family: family === 6 ? 'ipv6' : 'ipv4' });
  return { host: canon.address, family: family === 6 ? 'udp6' : 'udp4' };
}

export class ServerSet {
  readonly servers: readonly Server[];
  private readonly configuredOrder: readonly number[];
  private readonly maxBackoffMs: number;
  /** Servers with failures > 0; while 0, every query uses configuredOrder as is. */
  private failing = 0;

  constructor(
    servers: readonly HostPort[],
    private readonly backoffMs: number,
    /** How long a probe keeps a recovering server to itself. */
    private readonly probeMs: number,
    private readonly logger?: Logger,
  ) {
    this.servers = servers.map((s) => {
      if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
        throw new RangeError(`upstream server port must be 1..65535, got ${String(s.port)}`);
      }
      const { host, family } = canonicalHost(s.host);
      const label = family === 'udp6' ? `[${host}]:${s.port}` : `${host}:${s.port}`;
      return { host, port: s.port, family, label, failures: 0, suspectUntil: 0, gen: 0, sent: 0, timeouts: 0, errors: 0 };
    });
    this.configuredOrder = this.servers.map((_, i) => i);
    this.maxBackoffMs = Math.max(backoffMs, MAX_SUSPECT_BACKOFF_MS);
  }

  /**
   * Healthy servers (and those whose suspicion has run out) in configured
   * order, then suspect ones, soonest-to-recover first.
   */
  attemptOrder(): readonly number[] {
    if (this.failing === 0) return this.configuredOrder;
    const servers = this.servers;
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
    if (first.failures > 0 && first.suspectUntil <= now) first.suspectUntil = now + this.probeMs;
    return order;
  }

  markFailed(server: Server, gen: number): void {
    if (gen !== server.gen) return; // already counted for this outage
    if (server.failures++ === 0) this.failing++;
    server.gen++;
    const backoff = Math.min(this.backoffMs * 2 ** Math.min(server.failures - 1, 30), this.maxBackoffMs);
    server.suspectUntil = performance.now() + backoff;
    // One lost datagram is routine; a failed probe after it is an outage worth a line.
    if (server.failures === 2) this.logger?.warn({ server: server.label }, 'upstream server not answering; asking the others first');
  }

  markAnswered(server: Server): void {
    if (server.failures === 0) return;
    if (server.failures >= 2) this.logger?.info({ server: server.label, failures: server.failures }, 'upstream server answering again');
    server.failures = 0;
    server.suspectUntil = 0;
    server.gen++;
    this.failing--;
  }

  health(): ServerHealth[] {
    const now = performance.now();
    return this.servers.map((s) => ({
      server: s.label,
      failures: s.failures,
      suspectForMs: Math.max(0, Math.ceil(s.suspectUntil - now)),
      sent: s.sent,
      timeouts: s.timeouts,
      errors: s.errors,
    }));
  }
}
