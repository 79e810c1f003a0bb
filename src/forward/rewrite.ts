// Elastic IPs answered private (upstream.rewrite_elastic_ips). Inside a VPC
// the resolver already answers an EIP's own public DNS name with its private
// IP, but a company's name for it (api.example.com A 203.0.113.10) resolves
// to the public address, so traffic hairpins through the internet gateway,
// pays for it, and misses security-group rules. This layer swaps such an
// address for the EIP's current private IP.
//
// It sits on top of the chain, above the cache, and rewrites each reply on
// its way out: the cache keeps what the upstream said, so a cached answer
// follows an EIP move as soon as discovery publishes it.

import type { Logger } from '../log.js';
import { CLASS, TYPE } from '../wire/codes.js';
import { AD } from '../wire/header.js';
import { readRecords, readTtl, SECTION, writeTtl } from '../wire/records.js';
import type { Forwarder, ForwardRequest } from './forwarder.js';

export interface RewriteView {
  /** Public → private IP of associated EIPs; undefined or empty: nothing to do. */
  readonly elasticIps: ReadonlyMap<string, string> | undefined;
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

export function createEipRewrite(next: Forwarder, view: () => RewriteView, logger?: Logger): Forwarder<RewriteStats> {
  let rewritten = 0;
  const logged = new Set<string>();

  function rewrite(req: ForwardRequest, reply: Buffer): Buffer {
    const { elasticIps, ttl } = view();
    if (elasticIps === undefined || elasticIps.size === 0) return reply;
    let records;
    try {
      records = readRecords(reply, req.query.questionEnd);
    } catch {
      return reply; // not ours to judge; the client gets what the upstream sent
    }
    let changed: Array<[string, string]> | undefined;
    let signed = false;
    for (const r of records) {
      if (r.section !== SECTION.ANSWER) continue;
      if (r.type === RRSIG) signed = true;
      if (r.type !== TYPE.A || r.rclass !== CLASS.IN || r.rdlength !== 4) continue;
      const at = r.rdataAt;
      const publicIp = `${reply[at]}.${reply[at + 1]}.${reply[at + 2]}.${reply[at + 3]}`;
      const privateIp = elasticIps.get(publicIp);
      if (privateIp === undefined) continue;
      (changed ??= []).push([publicIp, privateIp]);
    }
    // A validating client (DO) would reject a signed RRset we altered.
    if (changed === undefined || (signed && req.query.edns?.dnssecOk === true)) return reply;
    for (const r of records) {
      if (r.section !== SECTION.ANSWER) continue;
      if (r.type === TYPE.A && r.rclass === CLASS.IN && r.rdlength === 4) {
        const at = r.rdataAt;
        const privateIp = elasticIps.get(`${reply[at]}.${reply[at + 1]}.${reply[at + 2]}.${reply[at + 3]}`);
        if (privateIp !== undefined) {
          const octets = privateIp.split('.');
          for (let i = 0; i < 4; i++) reply[at + i] = Number(octets[i]);
        }
      }
      // The whole answer follows the zone TTL, so the moved address is
      // re-asked as soon as a zone name would be.
      if (readTtl(reply, r) > ttl) writeTtl(reply, r.ttlAt, ttl);
    }
    // We changed data: it is no longer what a validator vouched for.
    reply[3] = reply[3]! & ~AD;
    rewritten++;
    if (!logged.has(req.query.name)) {
      if (logged.size >= MAX_LOGGED) logged.clear();
      logged.add(req.query.name);
      logger?.info(
        { name: req.query.name, addresses: changed.map(([from, to]) => ({ from, to })) },
        "answering an Elastic IP's private address",
      );
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
