// A light, allocation-poor reader for incoming queries. dns2's Packet.parse
// reads bit by bit and follows compression chains without a hop limit, so the
// hot path reads only what routing needs (ID, flags, question, OPT) straight
// from the bytes, and validates the rest of the message by walking it without
// ever following a compression pointer.

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended rcode 16; needs an OPT record to carry its upper bits. */
  BADVERS: 16,
} as const;

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  AAAA: 28,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const HEADER_SIZE = 12;
const FLAG_QR = 0x8000;
const MAX_NAME_OCTETS = 255;

export interface Edns {
  /** The requestor's UDP payload size, as sent (may be below 512). */
  readonly udpSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
}

export interface Query {
  readonly id: number;
  /** Header bytes 2–3 as sent; the opcode and RD bit are copied from here. */
  readonly flags: number;
  /**
   * Lower-case presentation name without the trailing dot ("" for the root).
   * A label containing "." or "\" is escaped so it can never alias a
   * different name (dns2 would re-encode such a label as two labels).
   */
  readonly name: string;
  readonly type: number;
  readonly qclass: number;
  /** Offset just past QCLASS: bytes 12..questionEnd are the question as asked. */
  readonly questionEnd: number;
  readonly edns: Edns | null;
}

export type ParseResult =
  | { readonly kind: 'query'; readonly query: Query }
  /** Not worth an answer: no readable header, or a response (QR=1). */
  | { readonly kind: 'drop'; readonly reason: string }
  | {
      readonly kind: 'error';
      readonly rcode: number;
      readonly id: number;
      readonly flags: number;
      /** 0 when the question cannot be echoed. */
      readonly questionEnd: number;
      readonly edns: Edns | null;
      readonly reason: string;
    };

class Malformed extends Error {}

export function parseQuery(msg: Buffer): ParseResult {
  if (msg.length < HEADER_SIZE) return { kind: 'drop', reason: 'short header' };
  const flags = msg.readUInt16BE(2);
  // A response sent to us is either a reflection attempt or a loop (dns2
  // happily answers them, including its own replies): never reply.
  if (flags & FLAG_QR) return { kind: 'drop', reason: 'QR set' };
  const id = msg.readUInt16BE(0);
  const opcode = (flags >> 11) & 0x0f;
  const fail = (rcode: number, reason: string, questionEnd = 0, edns: Edns | null = null): ParseResult => ({
    kind: 'error',
    rcode,
    id,
    flags,
    questionEnd,
    edns,
    reason,
  });
  if (opcode !== 0) return fail(RCODE.NOTIMP, `opcode ${opcode}`);
  const qdcount = msg.readUInt16BE(4);
  if (qdcount !== 1) return fail(RCODE.FORMERR, `QDCOUNT ${qdcount}`);

  let name: string;
  let offset: number;
  try {
    [name, offset] = readQuestionName(msg, HEADER_SIZE);
  } catch (e) {
    return fail(RCODE.FORMERR, (e as Error).message);
  }
  if (offset + 4 > msg.length) return fail(RCODE.FORMERR, 'question truncated');
  const type = msg.readUInt16BE(offset);
  const qclass = msg.readUInt16BE(offset + 2);
  const questionEnd = offset + 4;

  let edns: Edns | null = null;
  try {
    edns = walkRecords(msg, questionEnd);
  } catch (e) {
    return fail(RCODE.FORMERR, (e as Error).message, questionEnd);
  }
  if (edns !== null && edns.version !== 0) {
    return fail(RCODE.BADVERS, `EDNS version ${edns.version}`, questionEnd, edns);
  }
  return { kind: 'query', query: { id, flags, name, type, qclass, questionEnd, edns } };
}

/** Reads an uncompressed name; a pointer in a query's question is refused. */
function readQuestionName(msg: Buffer, start: number): [string, number] {
  let offset = start;
  let octets = 1;
  let name = '';
  for (;;) {
    if (offset >= msg.length) throw new Malformed('name runs past the message');
    const len = msg[offset]!;
    if (len === 0) return [lowerAscii(name), offset + 1];
    if (len > 63) throw new Malformed(len >= 0xc0 ? 'compression pointer in question' : 'bad label length');
    octets += len + 1;
    if (octets > MAX_NAME_OCTETS) throw new Malformed('name longer than 255 octets');
    const end = offset + 1 + len;
    if (end > msg.length) throw new Malformed('label runs past the message');
    let label = msg.toString('latin1', offset + 1, end);
    if (label.includes('.') || label.includes('\\')) label = escapeLabel(label);
    name = name === '' ? label : `${name}.${label}`;
    offset = end;
  }
}

const UPPER = /[A-Z]/;
const UPPER_ALL = /[A-Z]+/g;

/** DNS compares names ASCII-case-insensitively only (RFC 4343). */
export function lowerAscii(s: string): string {
  return UPPER.test(s) ? s.replace(UPPER_ALL, (m) => m.toLowerCase()) : s;
}

function escapeLabel(label: string): string {
  return label.replace(/[.\\]/g, (c) => `\\${c.charCodeAt(0).toString().padStart(3, '0')}`);
}

/**
 * Checks that every record after the question lies inside the message and
 * that nothing trails it; returns the OPT record's fields if there is one.
 */
function walkRecords(msg: Buffer, start: number): Edns | null {
  const total = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  const firstAdditional = msg.readUInt16BE(6) + msg.readUInt16BE(8);
  let offset = start;
  let edns: Edns | null = null;
  for (let i = 0; i < total; i++) {
    const nameStart = offset;
    offset = skipName(msg, offset);
    if (offset + 10 > msg.length) throw new Malformed('record header truncated');
    const type = msg.readUInt16BE(offset);
    const rdlength = msg.readUInt16BE(offset + 8);
    const rdataEnd = offset + 10 + rdlength;
    if (rdataEnd > msg.length) throw new Malformed('record data truncated');
    if (type === TYPE.OPT) {
      // RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
      if (i < firstAdditional) throw new Malformed('OPT outside the additional section');
      if (edns !== null) throw new Malformed('more than one OPT record');
      if (offset !== nameStart + 1) throw new Malformed('OPT owner is not the root');
      edns = {
        udpSize: msg.readUInt16BE(offset + 2),
        version: msg[offset + 5]!,
        dnssecOk: (msg[offset + 6]! & 0x80) !== 0,
      };
    }
    offset = rdataEnd;
  }
  if (offset !== msg.length) throw new Malformed('trailing bytes after the last record');
  return edns;
}

/** Skips a possibly compressed name without following the pointer. */
function skipName(msg: Buffer, start: number): number {
  let offset = start;
  let octets = 1;
  for (;;) {
    if (offset >= msg.length) throw new Malformed('name runs past the message');
    const len = msg[offset]!;
    if (len === 0) return offset + 1;
    if ((len & 0xc0) === 0xc0) {
      if (offset + 2 > msg.length) throw new Malformed('pointer truncated');
      // A pointer must refer to something already seen; forward and self
      // references are how loops are built.
      const target = ((len & 0x3f) << 8) | msg[offset + 1]!;
      if (target >= start) throw new Malformed('forward compression pointer');
      return offset + 2;
    }
    if (len > 63) throw new Malformed('bad label length');
    octets += len + 1;
    if (octets > MAX_NAME_OCTETS) throw new Malformed('name longer than 255 octets');
    offset += len + 1;
  }
}
