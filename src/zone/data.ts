// The zone as data: the apex SOA, and per owner name its RRsets. One form for
// every zone eipdns serves, whether its records come from EC2 discovery (a
// primary zone, ./from-snapshot.ts) or from a zone transfer (a secondary
// zone, src/transfer). The answer templates (./answers.ts) and the transfer
// streams (src/transfer) are both derived from it, so what a secondary is
// sent is exactly what the primary answers.
//
// RDATA is kept as wire bytes with names expanded and lower-cased
// (src/wire/rdata.ts): any type a BIND or Knot primary transfers can be held,
// served and passed on, and two copies of a record compare byte for byte.
// A ZoneData never changes; a new version shares the nodes it did not touch.

import { CLASS, TYPE } from '../wire/codes.js';
import { isInZone, textToWire } from '../wire/name.js';
import { rdataFields } from '../wire/rdata.js';

export interface Rrset {
  readonly type: number;
  /** One TTL per RRset (RFC 2181 §5.2). */
  readonly ttl: number;
  /** Expanded RDATA, no duplicates (RFC 2181 §5), in the order first seen. */
  readonly rdata: readonly Buffer[];
}

export interface ZoneNode {
  /** The owner name on the wire, lower case. */
  readonly wire: Buffer;
  readonly rrsets: ReadonlyMap<number, Rrset>;
}

export interface Soa {
  readonly mname: Buffer;
  readonly rname: Buffer;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  readonly minimum: number;
}

export interface ZoneData {
  /** Text form, lower case, no trailing dot ("internal"). */
  readonly apex: string;
  readonly soa: Soa;
  readonly serial: number;
  /** Owner (text form) → node; the apex node holds the SOA. */
  readonly nodes: ReadonlyMap<string, ZoneNode>;
  /** Records, SOA included. */
  readonly size: number;
}

/** One record, for diffs and transfers. */
export interface Rr {
  /** Owner, text form. */
  readonly owner: string;
  readonly type: number;
  readonly ttl: number;
  readonly rdata: Buffer;
}

export class ZoneDataError extends Error {
  override readonly name = 'ZoneDataError';
}

// ---- SOA ----------------------------------------------------------------------

export function encodeSoa(soa: Soa): Buffer {
  const tail = Buffer.allocUnsafe(20);
  tail.writeUInt32BE(soa.serial >>> 0, 0);
  tail.writeUInt32BE(soa.refresh >>> 0, 4);
  tail.writeUInt32BE(soa.retry >>> 0, 8);
  tail.writeUInt32BE(soa.expire >>> 0, 12);
  tail.writeUInt32BE(soa.minimum >>> 0, 16);
  return Buffer.concat([soa.mname, soa.rname, tail]);
}

/** Expanded SOA RDATA → fields. */
export function decodeSoa(rdata: Buffer): Soa {
  const [mname, rname, timers] = [...rdataFields(TYPE.SOA, rdata)];
  if (mname === undefined || rname === undefined || timers === undefined || timers.at + 20 !== rdata.length) {
    throw new ZoneDataError('malformed SOA RDATA');
  }
  const t = timers.at;
  return {
    mname: rdata.subarray(mname.at, mname.at + mname.size),
    rname: rdata.subarray(rname.at, rname.at + rname.size),
    serial: rdata.readUInt32BE(t),
    refresh: rdata.readUInt32BE(t + 4),
    retry: rdata.readUInt32BE(t + 8),
    expire: rdata.readUInt32BE(t + 12),
    minimum: rdata.readUInt32BE(t + 16),
  };
}

// ---- building -----------------------------------------------------------------

const META_TYPES: ReadonlySet<number> = new Set([TYPE.OPT, TYPE.TSIG, TYPE.AXFR, TYPE.IXFR, TYPE.ANY]);

/**
 * What any record must be to be zone data, however it arrived (the config,
 * a full transfer, an IXFR difference).
 * @throws ZoneDataError for a record outside the zone, a class other than
 *   IN, an SOA anywhere but the apex, or a meta type (OPT, TSIG, AXFR, IXFR, ANY).
 */
export function checkRecord(owner: string, type: number, rclass: number, apex: string): void {
  if (rclass !== CLASS.IN) throw new ZoneDataError(`record of class ${rclass} for ${owner || '.'}; only IN is served`);
  if (!isInZone(owner, apex)) throw new ZoneDataError(`${owner || '.'} is outside the zone ${apex || '.'}`);
  if (type === TYPE.SOA && owner !== apex) throw new ZoneDataError(`SOA at ${owner}, below the apex`);
  if (META_TYPES.has(type)) throw new ZoneDataError(`meta type ${type} cannot be zone data`);
}

/** Collects records for one zone; build() checks it has its SOA. */
export class ZoneBuilder {
  private readonly nodes = new Map<string, { wire: Buffer; rrsets: Map<number, { type: number; ttl: number; rdata: Buffer[]; seen: Set<string> }> }>();
  private count = 0;

  constructor(readonly apex: string) {}

  get size(): number {
    return this.count;
  }

  /**
   * Adds a record; `owner` is the text form (lower case) or wire bytes. A
   * duplicate is dropped; an RRset keeps the smallest TTL it was given.
   * @throws ZoneDataError as checkRecord() does.
   */
  add(owner: string, type: number, ttl: number, rdata: Buffer, rclass: number = CLASS.IN, ownerWire?: Buffer): void {
    checkRecord(owner, type, rclass, this.apex);
    let node = this.nodes.get(owner);
    if (node === undefined) {
      node = { wire: ownerWire ?? textToWire(owner), rrsets: new Map() };
      this.nodes.set(owner, node);
    }
    let set = node.rrsets.get(type);
    if (set === undefined) {
      set = { type, ttl, rdata: [], seen: new Set() };
      node.rrsets.set(type, set);
    }
    // An SOA RRset holds one record: a later one replaces it.
    if (type === TYPE.SOA && set.rdata.length > 0) {
      set.rdata.length = 0;
      set.seen.clear();
      this.count--;
    }
    set.ttl = Math.min(set.ttl, ttl);
    const key = rdata.toString('latin1');
    if (set.seen.has(key)) return;
    set.seen.add(key);
    set.rdata.push(rdata);
    this.count++;
  }

  build(): ZoneData {
    const apexNode = this.nodes.get(this.apex);
    const soaRdata = apexNode?.rrsets.get(TYPE.SOA)?.rdata[0];
    if (apexNode === undefined || soaRdata === undefined) throw new ZoneDataError(`zone ${this.apex || '.'} has no SOA at its apex`);
    const soa = decodeSoa(soaRdata);
    const nodes = new Map<string, ZoneNode>();
    for (const [name, node] of this.nodes) {
      const rrsets = new Map<number, Rrset>();
      for (const [type, set] of node.rrsets) rrsets.set(type, Object.freeze({ type, ttl: set.ttl, rdata: Object.freeze(set.rdata) }));
      nodes.set(name, Object.freeze({ wire: node.wire, rrsets }));
    }
    return Object.freeze({ apex: this.apex, soa, serial: soa.serial, nodes, size: this.count });
  }
}

// ---- versions -----------------------------------------------------------------

/** The same data under another SOA (a new serial, new timers). */
export function withSoa(data: ZoneData, soa: Soa, soaTtl?: number): ZoneData {
  const apexNode = data.nodes.get(data.apex)!;
  const previous = apexNode.rrsets.get(TYPE.SOA)!;
  const rrsets = new Map(apexNode.rrsets);
  rrsets.set(TYPE.SOA, Object.freeze({ type: TYPE.SOA, ttl: soaTtl ?? previous.ttl, rdata: Object.freeze([encodeSoa(soa)]) }));
  const nodes = new Map(data.nodes);
  nodes.set(data.apex, Object.freeze({ wire: apexNode.wire, rrsets }));
  return Object.freeze({ ...data, soa, serial: soa.serial, nodes });
}

function sameRrset(a: Rrset, b: Rrset): boolean {
  if (a.ttl !== b.ttl || a.rdata.length !== b.rdata.length) return false;
  // Order does not matter: a set is a set.
  const seen = new Set(a.rdata.map((r) => r.toString('latin1')));
  return b.rdata.every((r) => seen.has(r.toString('latin1')));
}

/** Equal records, SOA serial aside (the SOA's other fields and TTL count). */
export function sameContent(a: ZoneData, b: ZoneData): boolean {
  if (a.apex !== b.apex || a.size !== b.size || a.nodes.size !== b.nodes.size) return false;
  const sa = a.soa;
  const sb = b.soa;
  if (
    !sa.mname.equals(sb.mname) || !sa.rname.equals(sb.rname) || sa.refresh !== sb.refresh || sa.retry !== sb.retry ||
    sa.expire !== sb.expire || sa.minimum !== sb.minimum
  ) {
    return false;
  }
  for (const [name, na] of a.nodes) {
    const nb = b.nodes.get(name);
    if (nb === undefined || na.rrsets.size !== nb.rrsets.size) return false;
    if (na === nb) continue;
    for (const [type, set] of na.rrsets) {
      if (type === TYPE.SOA) {
        if (set.ttl !== nb.rrsets.get(type)?.ttl) return false;
        continue;
      }
      const other = nb.rrsets.get(type);
      if (other === undefined || !sameRrset(set, other)) return false;
    }
  }
  return true;
}

/** The apex SOA as a record (every version has exactly one: build() checks). */
export function soaRr(data: ZoneData): Rr {
  const set = data.nodes.get(data.apex)!.rrsets.get(TYPE.SOA)!;
  return { owner: data.apex, type: TYPE.SOA, ttl: set.ttl, rdata: set.rdata[0]! };
}

/** Every record, SOA first (as a transfer sends them), then the apex's, then the rest. */
export function* allRecords(data: ZoneData, includeSoa = true): Generator<Rr> {
  if (includeSoa) yield soaRr(data);
  for (const [name, node] of data.nodes) {
    for (const set of node.rrsets.values()) {
      if (set.type === TYPE.SOA && name === data.apex) continue;
      for (const rdata of set.rdata) yield { owner: name, type: set.type, ttl: set.ttl, rdata };
    }
  }
}

/** What changed from `from` to `to`, SOA aside: a TTL change is the RRset removed and added. */
export function diffZones(from: ZoneData, to: ZoneData): { removed: Rr[]; added: Rr[] } {
  const removed: Rr[] = [];
  const added: Rr[] = [];
  const side = (a: ZoneData, b: ZoneData, out: Rr[]): void => {
    for (const [name, node] of a.nodes) {
      const other = b.nodes.get(name);
      if (other === node) continue;
      for (const [type, set] of node.rrsets) {
        if (type === TYPE.SOA) continue;
        const o = other?.rrsets.get(type);
        if (o !== undefined && o.ttl === set.ttl) {
          const keep = new Set(o.rdata.map((r) => r.toString('latin1')));
          for (const rdata of set.rdata) if (!keep.has(rdata.toString('latin1'))) out.push({ owner: name, type, ttl: set.ttl, rdata });
        } else {
          for (const rdata of set.rdata) out.push({ owner: name, type, ttl: set.ttl, rdata });
        }
      }
    }
  };
  side(from, to, removed);
  side(to, from, added);
  return { removed, added };
}

/**
 * Applies one IXFR difference sequence (RFC 1995 §4): `removed` must each be
 * present (a primary that disagrees about what we hold needs a full transfer),
 * then `added`; `soa` becomes the zone's SOA.
 * @throws ZoneDataError when a removed record is absent or an added one is
 *   not zone data (checkRecord()).
 */
export function applyDiff(data: ZoneData, removed: readonly Rr[], added: readonly Rr[], soaRdata: Buffer, soaTtl: number): ZoneData {
  const nodes = new Map(data.nodes);
  const touched = new Map<string, Map<number, { type: number; ttl: number; rdata: Buffer[] }>>();
  const editable = (owner: string): Map<number, { type: number; ttl: number; rdata: Buffer[] }> => {
    let sets = touched.get(owner);
    if (sets === undefined) {
      sets = new Map();
      for (const [type, set] of nodes.get(owner)?.rrsets ?? []) sets.set(type, { type, ttl: set.ttl, rdata: [...set.rdata] });
      touched.set(owner, sets);
    }
    return sets;
  };
  let size = data.size;
  for (const rr of removed) {
    if (rr.type === TYPE.SOA) continue;
    const set = editable(rr.owner).get(rr.type);
    const i = set === undefined ? -1 : set.rdata.findIndex((r) => r.equals(rr.rdata));
    if (set === undefined || i < 0) throw new ZoneDataError(`IXFR deletes ${rr.owner || '.'} type ${rr.type}, which this copy does not hold`);
    set.rdata.splice(i, 1);
    size--;
  }
  for (const rr of added) {
    try {
      // Rr has no class: the transfer reader refuses anything but IN.
      checkRecord(rr.owner, rr.type, CLASS.IN, data.apex);
    } catch (err) {
      throw new ZoneDataError(`IXFR adds a record that cannot be zone data: ${(err as Error).message}`);
    }
    if (rr.type === TYPE.SOA) continue;
    const sets = editable(rr.owner);
    let set = sets.get(rr.type);
    if (set === undefined) {
      set = { type: rr.type, ttl: rr.ttl, rdata: [] };
      sets.set(rr.type, set);
    }
    // RFC 2181 §5.2: the RRset takes the TTL of the records being added.
    set.ttl = rr.ttl;
    if (set.rdata.some((r) => r.equals(rr.rdata))) continue;
    set.rdata.push(rr.rdata);
    size++;
  }
  for (const [owner, sets] of touched) {
    const rrsets = new Map<number, Rrset>();
    for (const [type, set] of sets) if (set.rdata.length > 0) rrsets.set(type, Object.freeze({ type, ttl: set.ttl, rdata: Object.freeze(set.rdata) }));
    if (rrsets.size === 0) nodes.delete(owner);
    else nodes.set(owner, Object.freeze({ wire: nodes.get(owner)?.wire ?? textToWire(owner), rrsets }));
  }
  const next: ZoneData = Object.freeze({ ...data, nodes, size });
  return withSoa(next, decodeSoa(soaRdata), soaTtl);
}

/** The owner's wire form, for a name in text form (nodes keep theirs). */
export function ownerWire(data: ZoneData, owner: string): Buffer {
  return data.nodes.get(owner)?.wire ?? textToWire(owner);
}

