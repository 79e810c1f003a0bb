// Answers for the private zones, derived from each zone's data (./data.ts):
// a primary zone's from the current discovery snapshot, a secondary zone's
// from its last transfer. An instance never changes its mind: when a zone's
// data changes the server builds a new one and swaps it in, so the encoded
// replies cached here are valid for as long as this object is current.
//
// The same code answers primary and secondary zones, which is what makes a
// secondary answer exactly as its primary does: an authoritative server's
// lookup (RFC 1034 §4.3.2) with AA, NXDOMAIN/NODATA with the SOA (RFC 2308),
// CNAME chains followed inside the zone, wildcards (RFC 4592), referrals at
// zone cuts, and minimal ANY (RFC 8482).

import { RCODE, TYPE } from '../wire/codes.js';
import { FLAG } from '../wire/header.js';
import { isInZone, parentName, textToWire, wireToText } from '../wire/name.js';
import { rdataNames } from '../wire/rdata.js';
import { MessageWriter } from '../wire/writer.js';
import type { Rrset, ZoneData, ZoneNode } from './data.js';

/** TTL while discovery is failing: clients come back soon for fresher data. */
export const STALE_TTL = 1;
/** Bounds memory when a client walks random names under a zone. */
const MAX_CACHED = 4096;
/** Names whose answers are encoded ahead of the first query. */
const MAX_WARMED = MAX_CACHED / 2;
/** CNAMEs followed inside the zone for one answer (BIND follows 16, Knot 5). */
const MAX_CNAME_CHAIN = 8;

export interface Template {
  /** A whole reply encoded for the lower-case question; ID 0, RD 0. */
  readonly bytes: Buffer;
  /** Where the A records sit, so they can be rotated per query. */
  readonly rotate?: { readonly start: number; readonly count: number; readonly size: number };
}

export interface ZoneView {
  /** The apex, text form ("internal"). */
  readonly name: string;
  /** undefined: nothing trustworthy to answer from (a secondary without a copy, or past SOA expire): SERVFAIL. */
  readonly data: ZoneData | undefined;
  /**
   * Names without trustworthy data (a primary's discovered names before the
   * first poll or past max_stale): SERVFAIL for A and ANY, NODATA otherwise.
   */
  readonly withheld?: ReadonlySet<string>;
  /** Every TTL at most this (STALE_TTL while discovery is failing). */
  readonly ttlCap?: number;
}

/** A zone as the pipeline holds it between zoneOf() and answer(). */
export interface ZoneHandle {
  readonly view: ZoneView;
  /** Names with records below them but none of their own (RFC 8020: NODATA, not NXDOMAIN). */
  readonly emptyNonTerminals: ReadonlySet<string>;
  /** Owners of NS RRsets below the apex: delegations. */
  readonly cuts: ReadonlySet<string>;
  readonly hasWildcard: boolean;
}

interface Section {
  readonly owner: Buffer;
  readonly set: Rrset;
}

export class ZoneAnswers {
  private readonly zones: readonly ZoneHandle[];
  private readonly cache = new Map<string, Template>();
  /** "10.0.1.10" → [fqdn, TTL] pairs that answer it, for PTR. */
  private readonly reverse = new Map<string, Array<{ name: string; ttl: number }>>();

  constructor(
    views: readonly ZoneView[],
    private readonly recursionAvailable: boolean,
  ) {
    // Longest apex first so nested zones win.
    this.zones = [...views].sort((a, b) => b.name.length - a.name.length).map((view) => handleFor(view));
    for (const { view } of this.zones) {
      if (view.data === undefined) continue;
      for (const [name, node] of view.data.nodes) {
        const set = node.rrsets.get(TYPE.A);
        if (set === undefined) continue;
        const ttl = capped(set.ttl, view);
        for (const rdata of set.rdata) {
          const ip = `${rdata[0]}.${rdata[1]}.${rdata[2]}.${rdata[3]}`;
          const list = this.reverse.get(ip);
          if (list === undefined) this.reverse.set(ip, [{ name, ttl }]);
          else if (!list.some((e) => e.name === name)) list.push({ name, ttl });
        }
      }
    }
  }

  /** The private zone that owns `name` (lower case), if any. */
  zoneOf(name: string): ZoneHandle | undefined {
    for (const zone of this.zones) {
      const apex = zone.view.name;
      if (name === apex || (name.length > apex.length && name.endsWith(apex) && name[name.length - apex.length - 1] === '.')) {
        return zone;
      }
    }
    return undefined;
  }

  /** True when `name` is the reverse name of an address some record answers. */
  ownsReverse(name: string): boolean {
    return this.reverse.has(reverseToIp(name) ?? '');
  }

  /** The encoded answer for a name inside `zone` (see zoneOf). */
  answer(zone: ZoneHandle, name: string, type: number): Template {
    const key = `${type}|${name}`;
    let t = this.cache.get(key);
    if (t === undefined) {
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      t = this.build(zone, name, type);
      this.cache.set(key, t);
    }
    return t;
  }

  /** The encoded PTR answer for a reverse name that ownsReverse() accepted. */
  answerReverse(name: string): Template {
    const key = `ptr|${name}`;
    let t = this.cache.get(key);
    if (t === undefined) {
      const targets = this.reverse.get(reverseToIp(name) ?? '') ?? [];
      const ttl = Math.min(...targets.map((e) => e.ttl));
      const set: Rrset = { type: TYPE.PTR, ttl, rdata: targets.map((e) => textToWire(e.name)) };
      t = this.encode(name, TYPE.PTR, RCODE.NOERROR, [{ owner: textToWire(name), set }], [], [], true, undefined);
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.cache.set(key, t);
    }
    return t;
  }

  /** Encodes A answers for the zones' names now (up to a bound), so first queries pay nothing. */
  warm(): void {
    let n = 0;
    for (const zone of this.zones) {
      for (const name of zone.view.data?.nodes.keys() ?? []) {
        if (n++ >= MAX_WARMED) return;
        this.answer(zone, name, TYPE.A);
      }
    }
  }

  private build(zone: ZoneHandle, qname: string, qtype: number): Template {
    const { view } = zone;
    const data = view.data;
    if (data === undefined) return this.encode(qname, qtype, RCODE.SERVFAIL, [], [], [], false, view);
    if (view.withheld?.has(qname)) {
      // The name exists (it is configured); only its addresses are unknown.
      if (qtype === TYPE.A || qtype === TYPE.ANY) return this.encode(qname, qtype, RCODE.SERVFAIL, [], [], [], false, view);
      return this.encode(qname, qtype, RCODE.NOERROR, [], [negativeSoa(data)], [], true, view);
    }

    const answers: Section[] = [];
    const visited = new Set<string>();
    let name = qname;
    for (;;) {
      visited.add(name);
      const cut = zone.cuts.size > 0 ? cutAbove(zone, name, qtype) : undefined;
      if (cut !== undefined) {
        // Below a delegation: not ours to answer. A referral, or the CNAME
        // chain so far when the chain led here.
        if (answers.length > 0) return this.encode(qname, qtype, RCODE.NOERROR, answers, [], [], true, view);
        const ns = data.nodes.get(cut)!;
        const nsSet = ns.rrsets.get(TYPE.NS)!;
        return this.encode(qname, qtype, RCODE.NOERROR, [], [{ owner: ns.wire, set: nsSet }], glue(data, nsSet), false, view);
      }
      let node = data.nodes.get(name);
      let owner = node?.wire;
      if (node === undefined && !zone.emptyNonTerminals.has(name) && zone.hasWildcard) {
        node = wildcardFor(zone, data, name);
        owner = textToWire(name);
      }
      if (node === undefined) {
        const rcode = zone.emptyNonTerminals.has(name) ? RCODE.NOERROR : RCODE.NXDOMAIN;
        return this.encode(qname, qtype, rcode, answers, [negativeSoa(data)], [], true, view);
      }
      const set = qtype === TYPE.ANY ? minimalAny(node) : node.rrsets.get(qtype);
      if (set !== undefined) {
        answers.push({ owner: owner!, set });
        return this.encode(qname, qtype, RCODE.NOERROR, answers, [], [], true, view);
      }
      const cname = qtype === TYPE.CNAME ? undefined : node.rrsets.get(TYPE.CNAME);
      if (cname === undefined) return this.encode(qname, qtype, RCODE.NOERROR, answers, [negativeSoa(data)], [], true, view);
      answers.push({ owner: owner!, set: cname });
      const target = wireToText(rdataNames(TYPE.CNAME, cname.rdata[0]!)[0]!);
      // Out of the zone, a loop, or too long: the chain so far, as BIND and Knot answer.
      if (!isInZone(target, data.apex) || visited.has(target) || answers.length >= MAX_CNAME_CHAIN) {
        return this.encode(qname, qtype, RCODE.NOERROR, answers, [], [], true, view);
      }
      name = target;
    }
  }

  private encode(
    name: string,
    type: number,
    rcode: number,
    answers: readonly Section[],
    authority: readonly Section[],
    additional: readonly Section[],
    authoritative: boolean,
    view: ZoneView | undefined,
  ): Template {
    const w = new MessageWriter();
    w.question(textToWire(name), type);
    const cap = view === undefined ? Infinity : (view.ttlCap ?? Infinity);
    let truncated = false;
    const write = (section: 1 | 2 | 3, list: readonly Section[]): void => {
      for (const { owner, set } of list) {
        const ttl = Math.min(set.ttl, cap);
        for (const rdata of set.rdata) {
          if (!w.record(section, owner, set.type, 1, ttl, rdata)) truncated = true;
        }
      }
    };
    write(1, answers);
    write(2, authority);
    write(3, additional);
    const flags = FLAG.QR | (authoritative ? FLAG.AA : 0) | (this.recursionAvailable ? FLAG.RA : 0) | (truncated ? FLAG.TC : 0) | rcode;
    const bytes = w.finish(0, flags);
    // Every A record is a compressed owner (2) + type/class/ttl/rdlength (10) + 4 bytes.
    const size = 16;
    const count = answers.length === 1 && answers[0]!.set.type === TYPE.A && authority.length === 0 && additional.length === 0 ? answers[0]!.set.rdata.length : 0;
    if (count > 1 && !truncated) return { bytes, rotate: { start: bytes.length - count * size, count, size } };
    return { bytes };
  }
}

function handleFor(view: ZoneView): ZoneHandle {
  const emptyNonTerminals = new Set<string>();
  const cuts = new Set<string>();
  let hasWildcard = false;
  const data = view.data;
  const names: Iterable<string> = data === undefined ? [] : data.nodes.keys();
  for (const name of names) {
    if (name !== view.name && data!.nodes.get(name)!.rrsets.has(TYPE.NS)) cuts.add(name);
    if (name.startsWith('*.')) hasWildcard = true;
    for (let p = parentName(name); p !== undefined && p !== view.name && isInZone(p, view.name); p = parentName(p)) {
      if (data!.nodes.has(p) || emptyNonTerminals.has(p)) break;
      emptyNonTerminals.add(p);
    }
  }
  // Withheld names exist too (they are configured), and so do their parents.
  for (const name of view.withheld ?? []) {
    for (let p = parentName(name); p !== undefined && p !== view.name && isInZone(p, view.name); p = parentName(p)) {
      if (data?.nodes.has(p) === true) break;
      emptyNonTerminals.add(p);
    }
  }
  return { view, emptyNonTerminals, cuts, hasWildcard };
}

/** The delegation point at or above `name` (below the apex), if any. DS at the cut belongs to the parent. */
function cutAbove(zone: ZoneHandle, name: string, qtype: number): string | undefined {
  const apex = zone.view.name;
  let found: string | undefined;
  for (let p: string | undefined = name; p !== undefined && p !== apex && isInZone(p, apex); p = parentName(p)) {
    if (zone.cuts.has(p) && !(p === name && qtype === 43)) found = p;
  }
  return found;
}

/** RFC 4592: `*.<closest encloser>` answers for a name that does not exist. */
function wildcardFor(zone: ZoneHandle, data: ZoneData, name: string): ZoneNode | undefined {
  for (let p = parentName(name); p !== undefined && isInZone(p, data.apex); p = parentName(p)) {
    if (data.nodes.has(p) || zone.emptyNonTerminals.has(p)) return data.nodes.get(p === '' ? '*' : `*.${p}`);
  }
  return undefined;
}

/** RFC 8482: one RRset for ANY, the addresses when there are any. The existence marker is never one. */
function minimalAny(node: ZoneNode): Rrset | undefined {
  const a = node.rrsets.get(TYPE.A) ?? node.rrsets.get(TYPE.AAAA);
  if (a !== undefined) return a;
  for (const set of node.rrsets.values()) if (set.type !== TYPE.EIPDNS_EMPTY) return set;
  return undefined;
}

/** RFC 2308 §3: the SOA in a negative answer lives min(its TTL, MINIMUM). */
function negativeSoa(data: ZoneData): Section {
  const node = data.nodes.get(data.apex)!;
  const set = node.rrsets.get(TYPE.SOA)!;
  return { owner: node.wire, set: { ...set, ttl: Math.min(set.ttl, data.soa.minimum) } };
}

/** Addresses of a referral's name servers that are in this zone (RFC 1034 §4.3.2 step 3b). */
function glue(data: ZoneData, ns: Rrset): Section[] {
  const out: Section[] = [];
  for (const rdata of ns.rdata) {
    const target = data.nodes.get(wireToText(rdata));
    if (target === undefined) continue;
    for (const type of [TYPE.A, TYPE.AAAA]) {
      const set = target.rrsets.get(type);
      if (set !== undefined) out.push({ owner: target.wire, set });
    }
  }
  return out;
}

function capped(ttl: number, view: ZoneView): number {
  return view.ttlCap === undefined ? ttl : Math.min(ttl, view.ttlCap);
}

/** "10.1.0.10.in-addr.arpa" → "10.0.1.10"; undefined for anything else. */
export function reverseToIp(name: string): string | undefined {
  if (!name.endsWith('.in-addr.arpa')) return undefined;
  const parts = name.slice(0, -'.in-addr.arpa'.length).split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) < 256)) return undefined;
  return parts.reverse().join('.');
}
