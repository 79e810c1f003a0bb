// RDATA layouts, for the types whose RDATA holds domain names. A received
// record's names may be compressed (RFC 1035 types always could be, and
// RFC 3597 §4 asks receivers to expand a few later ones too), so stored RDATA
// is always expanded first; when we send, only the RFC 1035 types get their
// names compressed again (RFC 3597 §4: never for any other type). Every other
// type is opaque bytes, copied as received (RFC 3597 unknown-type handling).

import { TYPE } from './codes.js';
import { Malformed } from './malformed.js';
import { lowerWire, readName } from './name.js';

/** A name, a fixed number of octets, or a <character-string>. */
type Field = 'name' | number | 'string';

const LAYOUTS = new Map<number, readonly Field[]>([
  [TYPE.NS, ['name']],
  [3, ['name']], // MD
  [4, ['name']], // MF
  [TYPE.CNAME, ['name']],
  [TYPE.SOA, ['name', 'name', 20]],
  [7, ['name']], // MB
  [8, ['name']], // MG
  [9, ['name']], // MR
  [TYPE.PTR, ['name']],
  [14, ['name', 'name']], // MINFO
  [TYPE.MX, [2, 'name']],
  [17, ['name', 'name']], // RP
  [18, [2, 'name']], // AFSDB
  [21, [2, 'name']], // RT
  [26, [2, 'name', 'name']], // PX
  [TYPE.SRV, [6, 'name']],
  [35, [2, 2, 'string', 'string', 'string', 'name']], // NAPTR
  [39, ['name']], // DNAME
]);

/** RFC 3597 §4: the only types whose RDATA names a sender may compress. */
const COMPRESSIBLE = new Set<number>([TYPE.NS, 3, 4, TYPE.CNAME, TYPE.SOA, 7, 8, 9, TYPE.PTR, 14, TYPE.MX]);

export function rdataLayout(type: number): readonly Field[] | undefined {
  return LAYOUTS.get(type);
}

export function compressible(type: number): boolean {
  return COMPRESSIBLE.has(type);
}

/**
 * The RDATA at msg[at, at+len) in canonical stored form: names expanded and
 * lower-cased (RFC 4034 §6.2 does the same for these types, so two copies of a
 * record compare byte for byte), everything else as sent. Checks that the
 * layout fills the RDATA exactly.
 */
export function readRdata(msg: Uint8Array, type: number, at: number, len: number): Buffer {
  const layout = LAYOUTS.get(type);
  if (layout === undefined) return Buffer.from(msg.subarray(at, at + len));
  const end = at + len;
  const parts: Uint8Array[] = [];
  let offset = at;
  for (const field of layout) {
    if (field === 'name') {
      const n = readName(msg, offset);
      if (n.end > end) throw new Malformed(`RDATA name of type ${type} runs past its record`);
      parts.push(lowerWire(n.wire));
      offset = n.end;
    } else {
      const size = field === 'string' ? 1 + (msg[offset] ?? 0) : field;
      if (offset + size > end) throw new Malformed(`RDATA of type ${type} truncated`);
      parts.push(msg.subarray(offset, offset + size));
      offset += size;
    }
  }
  if (offset !== end) throw new Malformed(`RDATA of type ${type} has ${end - offset} trailing octets`);
  return Buffer.concat(parts);
}

/** Where each field of an expanded RDATA starts, for writers that compress or read names. */
export function* rdataFields(type: number, rdata: Uint8Array): Generator<{ field: Field; at: number; size: number }> {
  const layout = LAYOUTS.get(type);
  if (layout === undefined) {
    yield { field: rdata.length, at: 0, size: rdata.length };
    return;
  }
  let offset = 0;
  for (const field of layout) {
    let size: number;
    if (field === 'name') {
      size = 0;
      // Bounds first: past the end rdata[i] is undefined, the size NaN, and
      // the walk would never end.
      while (offset + size < rdata.length && rdata[offset + size] !== 0) size += 1 + rdata[offset + size]!;
      if (offset + size >= rdata.length) throw new Malformed(`RDATA name of type ${type} is not terminated`);
      size += 1;
    } else {
      size = field === 'string' ? 1 + (rdata[offset] ?? 0) : field;
      if (offset + size > rdata.length) throw new Malformed(`RDATA of type ${type} truncated`);
    }
    yield { field, at: offset, size };
    offset += size;
  }
}

/** The names an expanded RDATA points at (CNAME target, MX exchange, NS host...). */
export function rdataNames(type: number, rdata: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (const f of rdataFields(type, rdata)) {
    if (f.field === 'name') out.push(Buffer.from(rdata.subarray(f.at, f.at + f.size)));
  }
  return out;
}
