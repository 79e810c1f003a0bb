// Replies built byte by byte, so the cache's classification and TTL patching
// are tested against exactly the layout RFC 1035 §4.1 describes (and against
// layouts a library would refuse to build: OPT not last, TTLs with the top bit
// set, an extended rcode).

import type { ForwardRequest } from '../../src/forward/forwarder.js';
import { parseQuery, type Query } from '../../src/wire/query.js';

export const T = { A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, OPT: 41, TSIG: 250 } as const;
export const SEC = { AN: 0, NS: 1, AR: 2 } as const;

export function name(n: string): number[] {
  const out: number[] = [];
  if (n !== '') for (const label of n.split('.')) out.push(label.length, ...Buffer.from(label, 'latin1'));
  out.push(0);
  return out;
}

/** A pointer to the question name (offset 12). */
export const QNAME_PTR = [0xc0, 0x0c];

export interface Rr {
  readonly section: 0 | 1 | 2;
  readonly owner?: readonly number[];
  readonly type: number;
  readonly ttl: number;
  readonly rdata: readonly number[];
  readonly rclass?: number;
}

export const a = (section: 0 | 1 | 2, ttl: number, ip: readonly number[] = [192, 0, 2, 1], owner: readonly number[] = QNAME_PTR): Rr => ({ section, owner, type: T.A, ttl, rdata: ip });

/** SOA with the given TTL and MINIMUM (the last RDATA field). */
export const soa = (ttl: number, minimum: number): Rr => ({
  section: SEC.NS,
  owner: name('example'),
  type: T.SOA,
  ttl,
  rdata: [...name('ns.example'), ...name('host.example'), ...u32(2024010101), ...u32(7200), ...u32(900), ...u32(1209600), ...u32(minimum)],
});

/** OPT (RFC 6891): class = UDP size, TTL = ext rcode | version | flags. */
export const opt = (extRcode = 0, doBit = false, options: number[] = []): Rr => ({
  section: SEC.AR,
  owner: [0],
  type: T.OPT,
  rclass: 1232,
  ttl: ((extRcode << 24) | (doBit ? 0x8000 : 0)) >>> 0,
  rdata: options,
});

export function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

export interface MsgSpec {
  readonly id?: number;
  /** Header bytes 2 and 3. Default: QR RD | RA (a recursive reply, NOERROR). */
  readonly flags?: [number, number];
  readonly qname: string;
  readonly qtype?: number;
  readonly records?: readonly Rr[];
}

export function message(m: MsgSpec): Buffer {
  const records = m.records ?? [];
  const count = (s: number): number => records.filter((r) => r.section === s).length;
  const [f2, f3] = m.flags ?? [0x81, 0x80];
  const id = m.id ?? 0x1234;
  const bytes: number[] = [id >> 8, id & 0xff, f2, f3, 0, 1, 0, count(0), 0, count(1), 0, count(2)];
  bytes.push(...name(m.qname), 0, m.qtype ?? T.A, 0, 1);
  // Sections in order, whatever order the spec listed them in.
  for (const s of [0, 1, 2]) {
    for (const r of records) {
      if (r.section !== s) continue;
      const rclass = r.rclass ?? 1;
      bytes.push(...(r.owner ?? QNAME_PTR), r.type >> 8, r.type & 0xff, rclass >> 8, rclass & 0xff, ...u32(r.ttl));
      bytes.push(r.rdata.length >> 8, r.rdata.length & 0xff, ...r.rdata);
    }
  }
  return Buffer.from(bytes);
}

/** Records appended in the order given, ignoring sections (to build a malformed order). */
export function rawAppend(msg: Buffer, r: Rr, counts: { an?: number; ns?: number; ar?: number }): Buffer {
  const rclass = r.rclass ?? 1;
  const rr = Buffer.from([...(r.owner ?? QNAME_PTR), r.type >> 8, r.type & 0xff, rclass >> 8, rclass & 0xff, ...u32(r.ttl), r.rdata.length >> 8, r.rdata.length & 0xff, ...r.rdata]);
  const out = Buffer.concat([msg, rr]);
  if (counts.an !== undefined) out.writeUInt16BE(counts.an, 6);
  if (counts.ns !== undefined) out.writeUInt16BE(counts.ns, 8);
  if (counts.ar !== undefined) out.writeUInt16BE(counts.ar, 10);
  return out;
}

export interface QuerySpec {
  readonly id?: number;
  readonly qtype?: number;
  readonly rd?: boolean;
  readonly cd?: boolean;
  readonly ad?: boolean;
  /** An OPT with this UDP size; undefined: no OPT. */
  readonly edns?: number;
  readonly dnssecOk?: boolean;
  /** Add an EDNS Client Subnet option (RFC 7871) for 192.0.2.0/24. */
  readonly clientSubnet?: boolean;
}

export function queryBytes(qname: string, s: QuerySpec = {}): Buffer {
  const id = s.id ?? 0x4242;
  const f2 = s.rd === false ? 0 : 0x01;
  const f3 = (s.cd ? 0x10 : 0) | (s.ad ? 0x20 : 0);
  const hasOpt = s.edns !== undefined || s.dnssecOk === true || s.clientSubnet === true;
  const bytes: number[] = [id >> 8, id & 0xff, f2, f3, 0, 1, 0, 0, 0, 0, 0, hasOpt ? 1 : 0];
  bytes.push(...name(qname), 0, s.qtype ?? T.A, 0, 1);
  if (hasOpt) {
    const ecs = s.clientSubnet ? [0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2] : [];
    const size = s.edns ?? 1232;
    bytes.push(0, 0, 41, size >> 8, size & 0xff, 0, 0, s.dnssecOk ? 0x80 : 0, 0, 0, ecs.length, ...ecs);
  }
  return Buffer.from(bytes);
}

export function parsed(msg: Buffer): Query {
  const p = parseQuery(msg);
  if (p.kind !== 'query') throw new Error(`test query does not parse: ${p.kind}`);
  return p.query;
}

export function req(msg: Buffer, viaTcp = false): ForwardRequest {
  return { msg, query: parsed(msg), viaTcp, source: 'upstream' };
}

/** TTLs of every record after the question, in wire order, OPT included (read by walking, not by a library). */
export function ttls(msg: Buffer, questionEnd: number): Array<{ type: number; ttl: number }> {
  const out: Array<{ type: number; ttl: number }> = [];
  const total = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  let at = questionEnd;
  for (let i = 0; i < total; i++) {
    while (msg[at] !== 0 && (msg[at]! & 0xc0) !== 0xc0) at += msg[at]! + 1;
    at += msg[at] === 0 ? 1 : 2;
    const type = msg.readUInt16BE(at);
    out.push({ type, ttl: msg.readUInt32BE(at + 4) });
    at += 10 + msg.readUInt16BE(at + 8);
  }
  return out;
}
