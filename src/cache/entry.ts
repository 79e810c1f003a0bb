// What an upstream reply becomes in the cache (CoreDNS's item.go): it is
// classified once, when it arrives (positive, negative, failure, or not to be
// kept), its records located, its lifetime fixed, and its bytes stored without
// the OPT record. A hit then only copies those bytes and patches them (the
// client's ID, RD and question case, our OPT, each record's TTL at a known
// offset), as a private-zone answer is served: no DNS library runs per hit.

import { RCODE, TYPE } from '../wire/codes.js';
import { AD, HEADER_SIZE, TC, headerRcode } from '../wire/header.js';
import type { Query } from '../wire/query.js';
import { MAX_TTL, readRecords, readTtl, SECTION, writeTtl, type RecordRef } from '../wire/records.js';
import { replyFromTemplate } from '../wire/reply.js';

export type EntryKind = 'positive' | 'negative' | 'failure';

/** Seconds; from CacheConfig. */
export interface Lifetimes {
  readonly minTtl: number;
  readonly maxTtl: number;
  readonly maxNegativeTtl: number;
}

/**
 * What an upstream reply is to the cache:
 * - positive / negative: kept for `ttl` seconds (`bytes` without OPT);
 * - failure (SERVFAIL): kept for failure_ttl unless a stale entry answers instead;
 * - refused (REFUSED, NOTIMP, FORMERR, an extended rcode): never kept, but a
 *   stale entry answers instead when there is one (RFC 8767 §4);
 * - pass: relayed as is, never kept (TC, signed with TSIG, OPT not last,
 *   malformed, no SOA to time a negative answer by, TTL 0).
 */
export type Verdict =
  | {
      readonly kind: 'positive' | 'negative';
      readonly bytes: Buffer;
      /** Offsets of every record's TTL in `bytes`. */
      readonly ttlAt: number[];
      readonly ttl: number;
    }
  | { readonly kind: 'failure' }
  | { readonly kind: 'refused' }
  | { readonly kind: 'pass'; readonly reason: string };

/**
 * A cached answer. Its reply is held as a latin1 string (wire/reply.ts
 * replyFromTemplate: compact on V8's heap, compacted by its GC), null for a
 * cached failure, which is answered with a bare SERVFAIL. Times are the cache
 * clock's milliseconds.
 */
export class Entry {
  /** CLOCK reference bit: set by a hit, cleared by the passing hand (store.ts). */
  ref = false;
  /** Index in the store's ring; -1 when not stored. */
  slot = -1;
  /** A prefetch was started for this entry (once per entry). */
  prefetched = false;
  /** RFC 8767 §5 failure recheck: no refresh is tried before this time. */
  retryAfter = 0;
  readonly expiresAt: number;

  constructor(
    readonly key: string,
    readonly kind: EntryKind,
    readonly wire: string | null,
    readonly ttlAt: readonly number[],
    /** Lifetime in whole seconds. */
    readonly ttl: number,
    readonly storedAt: number,
    /** Accounted size (store.ts). */
    readonly cost: number,
  ) {
    this.expiresAt = storedAt + ttl * 1000;
  }

  /**
   * Seconds left, as the TTL a client is sent. Elapsed time is counted in
   * whole seconds, as CoreDNS (`int(now.Sub(stored).Seconds())`) and Unbound
   * (a clock in seconds) do, so an answer relayed at once keeps the TTL the
   * upstream gave it; it is never more than the entry's lifetime.
   */
  secondsLeft(now: number): number {
    return this.ttl - Math.floor((now - this.storedAt) / 1000);
  }
}

const SOA_FIXED = 20; // serial, refresh, retry, expire, minimum

const pass = (reason: string): Verdict => ({ kind: 'pass', reason });

/**
 * Classifies an upstream reply to a query whose question ends at
 * `questionEnd` (the upstream layer checked ID and question, RFC 5452).
 */
export function classify(reply: Buffer, questionEnd: number, l: Lifetimes): Verdict {
  if (reply.length < questionEnd || reply.length < HEADER_SIZE) return pass('runt');
  // RFC 2181 §9: a truncated reply is not a whole answer; never cached.
  if ((reply[2]! & TC) !== 0) return pass('truncated');
  const rcode = headerRcode(reply);
  // RFC 9520 §3: a resolution failure is cached (briefly) as such.
  if (rcode === RCODE.SERVFAIL) return { kind: 'failure' };
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) return { kind: 'refused' };

  let records: RecordRef[];
  try {
    records = readRecords(reply, questionEnd);
  } catch {
    return pass('malformed');
  }
  let opt: RecordRef | undefined;
  let soa: RecordRef | undefined;
  let answers = 0;
  // RFC 2181 §8, RFC 1035 §3.2.1: no record may be served past its own TTL,
  // and a hit lowers TTLs only to the time the entry has left, so the entry
  // lives no longer than its shortest record in any section (CoreDNS's
  // dnsutil.MinimalTTL takes the same minimum, OPT aside).
  let minAll = MAX_TTL;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.type !== TYPE.OPT) {
      const t = readTtl(reply, r.ttlAt);
      if (t < minAll) minAll = t;
    }
    if (r.type === TYPE.OPT) {
      // Stored bytes are the reply cut just before its OPT: only safe when the
      // OPT is the single, last record (nothing after it can point into it).
      if (opt !== undefined || r.section !== SECTION.ADDITIONAL || i !== records.length - 1) return pass('OPT not last');
      opt = r;
    } else if (r.type === TYPE.TSIG || (r.type === TYPE.SIG && r.section === SECTION.ADDITIONAL)) {
      // RFC 8945 / RFC 2931: signed for one transaction; replaying it to
      // another client would be a lie (and its MAC would not verify).
      return pass('signed message');
    } else if (r.section === SECTION.ANSWER) {
      answers++;
    } else if (r.section === SECTION.AUTHORITY && r.type === TYPE.SOA && soa === undefined) {
      soa = r;
    }
  }
  // RFC 6891 §6.1.3: the OPT's TTL field starts with the upper 8 bits of the
  // rcode; BADVERS and BADCOOKIE arrive this way with a NOERROR-looking header.
  if (opt !== undefined && reply[opt.ttlAt] !== 0) return { kind: 'refused' };

  // RFC 2308 §5: a negative answer lives for min(SOA TTL, SOA MINIMUM).
  let negative = -1;
  if (soa !== undefined) {
    if (soa.rdlength < SOA_FIXED + 2) return pass('malformed SOA');
    const minimum = readTtl(reply, soa.rdataAt + soa.rdlength - 4);
    negative = Math.min(readTtl(reply, soa.ttlAt), minimum, l.maxNegativeTtl);
  }
  let kind: 'positive' | 'negative';
  let ttl: number;
  if (rcode === RCODE.NOERROR && answers > 0) {
    kind = 'positive';
    ttl = Math.min(Math.max(minAll, l.minTtl), l.maxTtl);
    // A CNAME whose target has no data of this type (RFC 2308 §2.2): the
    // negative half of the answer is timed by the SOA too.
    if (negative >= 0 && negative < ttl) ttl = negative;
  } else {
    // NXDOMAIN, or NODATA (NOERROR, no answer). Without an SOA there is
    // nothing to time it by (RFC 2308 §5: SHOULD NOT cache); a referral
    // (NS in authority, no SOA) lands here too.
    if (negative < 0) return pass('negative answer without SOA');
    kind = 'negative';
    // The SOA's TTL and MINIMUM time it (RFC 2308 §5); any record (a CNAME
    // in the answer, NS or glue beside the SOA) with a shorter TTL caps it.
    ttl = Math.min(negative, minAll);
  }
  if (ttl <= 0) return pass('TTL 0');

  const end = opt === undefined ? reply.length : opt.owner;
  const bytes = Buffer.allocUnsafe(end);
  reply.copy(bytes, 0, 0, end);
  if (opt !== undefined) bytes.writeUInt16BE(bytes.readUInt16BE(10) - 1, 10);
  const ttlAt: number[] = [];
  for (const r of records) {
    if (r === opt) continue;
    ttlAt.push(r.ttlAt);
    if (reply[r.ttlAt]! & 0x80) writeTtl(bytes, r.ttlAt, 0);
  }
  return { kind, bytes, ttlAt, ttl };
}

/**
 * This client's reply from a cached answer, every record's TTL patched to at
 * most `ttl`; with `exact` (stale answers, RFC 8767 §4) set to `ttl`.
 */
export function answerFrom(e: Entry, msg: Buffer, q: Query, ttl: number, exact: boolean): Buffer {
  const out = clientCopy(e.wire!, msg, q);
  const at = e.ttlAt;
  for (let i = 0; i < at.length; i++) {
    const o = at[i]!;
    // `out` still holds the stored TTL here (normalised by classify).
    if (exact || readTtl(out, o) > ttl) writeTtl(out, o, ttl);
  }
  return out;
}

/**
 * An upstream reply that is relayed, not kept (TC, TTL 0, SERVFAIL, REFUSED,
 * ...), cut like a cached answer so each coalesced client gets its own OPT:
 * the upstream's OPT answers the one client whose query went out, and may
 * echo its DNS COOKIE, which no other client may see (RFC 7873 §5.3).
 */
export interface RelayTemplate {
  /** The reply without its OPT. */
  readonly bytes: Buffer;
  /** The upper 8 bits of the rcode the OPT carried (RFC 6891 §6.1.3), 0 without one. */
  readonly extendedRcode: number;
}

/** Null when the OPT cannot be cut out safely (malformed, or OPT not the single last record). */
export function relayTemplate(reply: Buffer, questionEnd: number): RelayTemplate | null {
  if (reply.length < questionEnd || reply.length < HEADER_SIZE) return null;
  let records: RecordRef[];
  try {
    records = readRecords(reply, questionEnd);
  } catch {
    return null;
  }
  const at = records.findIndex((r) => r.type === TYPE.OPT);
  if (at < 0) return { bytes: reply, extendedRcode: 0 };
  const opt = records[at]!;
  if (at !== records.length - 1 || opt.section !== SECTION.ADDITIONAL) return null;
  const bytes = Buffer.from(reply.subarray(0, opt.owner));
  bytes.writeUInt16BE(bytes.readUInt16BE(10) - 1, 10);
  return { bytes, extendedRcode: reply[opt.ttlAt]! };
}

/**
 * This client's copy of a relayed reply: its ID, RD and question, its own OPT
 * (carrying the upstream's extended rcode), the AD rule. Null when the client
 * cannot be told that rcode (no EDNS in its query).
 */
export function relayFrom(t: RelayTemplate, msg: Buffer, q: Query): Buffer | null {
  if (t.extendedRcode !== 0 && q.edns === null) return null;
  const out = clientCopy(t.bytes, msg, q);
  if (q.edns !== null) out[t.bytes.length + 5] = t.extendedRcode;
  return out;
}

/** replyFromTemplate plus the AD rule, for cached and relayed replies alike. */
function clientCopy(template: Buffer | string, msg: Buffer, q: Query): Buffer {
  const out = replyFromTemplate(template, msg, q);
  // RFC 6840 §5.8: AD goes only to a client that showed it understands it
  // (AD or DO in its query); the answer may have been fetched for one that did.
  if ((out[3]! & AD) !== 0 && (q.flags & AD) === 0 && (q.edns === null || !q.edns.dnssecOk)) out[3] = out[3]! & ~AD;
  return out;
}
