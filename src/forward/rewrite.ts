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
import { skipName } from '../wire/name.js';
import { writeTtl } from '../wire/records.js';
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

const RRSIG = 46;
/** Names logged as "first rewritten"; beyond it the set starts over. */
const MAX_LOGGED = 10_000;

export function ipv4ToNumber(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function numberToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

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

  /**
   * Walks the answer section in place; `visit` sees each record's type,
   * class, RDATA offset and length, and TTL offset, and may stop the walk by
   * returning true. Throws Malformed on a bad name; false when a record runs
   * past the message.
   */
  function walkAnswers(
    reply: Buffer,
    start: number,
    visit: (type: number, rclass: number, rdataAt: number, rdlength: number, ttlAt: number) => boolean | void,
  ): boolean {
    const count = reply.readUInt16BE(6);
    let offset = start;
    for (let i = 0; i < count; i++) {
      offset = skipName(reply, offset);
      if (offset + 10 > reply.length) return false;
      const rdlength = reply.readUInt16BE(offset + 8);
      const rdataAt = offset + 10;
      if (rdataAt + rdlength > reply.length) return false;
      if (visit(reply.readUInt16BE(offset), reply.readUInt16BE(offset + 2), rdataAt, rdlength, offset + 4) === true) return true;
      offset = rdataAt + rdlength;
    }
    return true;
  }

  const isMappedA = (reply: Buffer, map: ReadonlyMap<number, number>, type: number, rclass: number, rdataAt: number, rdlength: number): boolean =>
    type === TYPE.A && rclass === CLASS.IN && rdlength === 4 && map.has(reply.readUInt32BE(rdataAt));

  function rewrite(req: ForwardRequest, reply: Buffer): Buffer {
    const { elasticIps: map, ttl } = view();
    if (map === undefined || map.size === 0 || reply.length < 12 || reply.readUInt16BE(6) === 0) return reply;
    let hit = false;
    let signed = false;
    try {
      const complete = walkAnswers(reply, req.query.questionEnd, (type, rclass, rdataAt, rdlength) => {
        if (type === RRSIG) signed = true;
        if (isMappedA(reply, map, type, rclass, rdataAt, rdlength)) hit = true;
      });
      if (!complete) return reply;
    } catch {
      return reply; // not ours to judge; the client gets what the upstream sent
    }
    // A validating client (DO) would reject a signed RRset we altered.
    if (!hit || (signed && req.query.edns?.dnssecOk === true)) return reply;
    const changed: Array<{ from: string; to: string }> = [];
    walkAnswers(reply, req.query.questionEnd, (type, rclass, rdataAt, rdlength, ttlAt) => {
      if (isMappedA(reply, map, type, rclass, rdataAt, rdlength)) {
        const from = reply.readUInt32BE(rdataAt);
        const to = map.get(from)!;
        changed.push({ from: numberToIpv4(from), to: numberToIpv4(to) });
        reply.writeUInt32BE(to, rdataAt);
      }
      // The whole answer follows the zone TTL, so the moved address is
      // re-asked as soon as a zone name would be.
      if (reply.readUInt32BE(ttlAt) > ttl) writeTtl(reply, ttlAt, ttl);
    });
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
