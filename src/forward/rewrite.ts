// Elastic IPs answered private (upstream.rewrite_elastic_ips). Inside a VPC
// the resolver already answers an EIP's own public DNS name with its private
// IP, but a company's name for it (api.example.com A 203.0.113.10) resolves
// to the public address, so traffic hairpins through the internet gateway,
// pays for it, and misses security-group rules. This layer swaps such an
// address for the EIP's current private IP.
//
// It sits on top of the chain, above the cache, and rewrites each reply on
// its way out: the cache keeps what the upstream said, so a cached answer
// follows an EIP move as soon as discovery publishes it. Every forwarded
// reply passes through here, cache hits included, so the scan reads the
// answer section in place (no allocation) against a map keyed by the
// address as a 32-bit number, built once per snapshot.

import type { Logger } from '../log.js';
import { CLASS, TYPE } from '../wire/codes.js';
import { AD } from '../wire/header.js';
import { ipv4ToNumber, numberToIpv4 } from '../wire/ipv4.js';
import { forEachRecord, readTtl, writeTtl } from '../wire/records.js';
import type { Forwarder, ForwardRequest } from './forwarder.js';

export interface RewriteView {
  /** Public → private IPv4 of associated EIPs, as 32-bit numbers; undefined or empty: nothing to do. */
  readonly elasticIps: ReadonlyMap<number, number> | undefined;
  /** TTL cap for a rewritten answer (the zone TTL, so a move is followed). */
  readonly ttl: number;
}

export interface RewriteStats {
  /** Replies in which at least one address was rewritten. */
  readonly rewritten: number;
}

/** Names logged as "first rewritten"; beyond it the set starts over. */
const MAX_LOGGED = 10_000;

// Offsets noted by one rewrite() walk; reused (rewrite is synchronous), so a
// reply with nothing to rewrite, cache hits included, allocates nothing.
const mappedAt: number[] = [];
const ttlsAt: number[] = [];

/** The view for one snapshot's map (callers build it once per snapshot). */
export function rewriteViewOf(elasticIps: ReadonlyMap<string, string> | undefined, ttl: number): RewriteView {
  if (elasticIps === undefined) return { elasticIps: undefined, ttl };
  const byNumber = new Map<number, number>();
  for (const [from, to] of elasticIps) byNumber.set(ipv4ToNumber(from), ipv4ToNumber(to));
  return { elasticIps: byNumber, ttl };
}

export function createEipRewrite(next: Forwarder, view: () => RewriteView, logger?: Logger): Forwarder<RewriteStats> {
  let rewritten = 0;
  const logged = new Set<string>();

  function rewrite(req: ForwardRequest, reply: Buffer): Buffer {
    const { elasticIps: map, ttl } = view();
    const answers = reply.length < 12 ? 0 : reply.readUInt16BE(6);
    if (map === undefined || map.size === 0 || answers === 0) return reply;
    // One walk of the answer section (it stops after the last answer, so the
    // other sections are not read) notes where mapped addresses and TTLs sit;
    // nothing is changed until the whole section has been read.
    mappedAt.length = 0;
    ttlsAt.length = 0;
    let signed = false;
    try {
      forEachRecord(reply, req.query.questionEnd, (_section, _owner, type, rclass, ttlAt, rdataAt, rdlength) => {
        if (type === TYPE.RRSIG) signed = true;
        if (type === TYPE.A && rclass === CLASS.IN && rdlength === 4 && map.has(reply.readUInt32BE(rdataAt))) mappedAt.push(rdataAt);
        return ttlsAt.push(ttlAt) === answers;
      });
    } catch {
      return reply; // not ours to judge; the client gets what the upstream sent
    }
    // A validating client (DO) would reject a signed RRset we altered.
    if (mappedAt.length === 0 || (signed && req.query.edns?.dnssecOk === true)) return reply;
    const changed: Array<{ from: string; to: string }> = [];
    for (const at of mappedAt) {
      const from = reply.readUInt32BE(at);
      const to = map.get(from)!;
      changed.push({ from: numberToIpv4(from), to: numberToIpv4(to) });
      reply.writeUInt32BE(to, at);
    }
    // The whole answer follows the zone TTL, so the moved address is
    // re-asked as soon as a zone name would be (a TTL with its top bit set
    // counts as 0, RFC 2181 §8, and is written so).
    for (const at of ttlsAt) writeTtl(reply, at, Math.min(readTtl(reply, at), ttl));
    // We changed data: it is no longer what a validator vouched for.
    reply[3] = reply[3]! & ~AD;
    rewritten++;
    if (!logged.has(req.query.name)) {
      if (logged.size >= MAX_LOGGED) logged.clear();
      logged.add(req.query.name);
      logger?.info({ name: req.query.name, addresses: changed }, "answering an Elastic IP's private address");
    }
    return reply;
  }

  return {
    resolve(req) {
      const out = next.resolve(req);
      return Buffer.isBuffer(out) ? rewrite(req, out) : out.then((reply) => rewrite(req, reply));
    },
    stats: () => ({ rewritten }),
    close: () => next.close(),
  };
}
