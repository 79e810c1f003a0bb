// A light, allocation-poor reader for incoming queries. dns2's Packet.parse
// reads bit by bit and follows compression chains without a hop limit, so the
// hot path reads only what routing needs (ID, flags, question, OPT) straight
// from the bytes, and validates the rest of the message by walking it without
// ever following a compression pointer.

import { EDNS_OPTION, OPCODE, RCODE, TYPE } from './codes.js';
import { HEADER_SIZE, opcodeOfFlags, QR } from './header.js';
import { Malformed } from './malformed.js';
import { readQuestionName } from './name.js';
import { readRecords, SECTION, type RecordRef } from './records.js';

export interface Edns {
  /** The requestor's UDP payload size, as sent (may be below 512). */
  readonly udpSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
  /** RFC 7871: the answer may depend on the client's subnet, so it is never cached. */
  readonly clientSubnet: boolean;
}

export interface Query {
  readonly id: number;
  /** Header bytes 2–3 as sent; the opcode, RD and CD bits are copied from here. */
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
  /**
   * Offset of a TSIG record (RFC 8945), when the query carries one: it is
   * always the last record, and such a query goes to src/transfer to be
   * verified and its answer signed.
   */
  readonly tsig?: number;
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

export function parseQuery(msg: Buffer): ParseResult {
  if (msg.length < HEADER_SIZE) return { kind: 'drop', reason: 'short header' };
  // A response sent to us is either a reflection attempt or a loop (dns2
  // happily answers them, including its own replies): never reply.
  if (msg[2]! & QR) return { kind: 'drop', reason: 'QR set' };
  const flags = msg.readUInt16BE(2);
  const id = msg.readUInt16BE(0);
  const opcode = opcodeOfFlags(flags);
  const fail = (rcode: number, reason: string, questionEnd = 0, edns: Edns | null = null): ParseResult => ({
    kind: 'error',
    rcode,
    id,
    flags,
    questionEnd,
    edns,
    reason,
  });
  // NOTIFY (RFC 1996) has a question like a query; src/transfer answers it.
  if (opcode !== OPCODE.QUERY && opcode !== OPCODE.NOTIFY) return fail(RCODE.NOTIMP, `opcode ${opcode}`);
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
  let tsig: number | undefined;
  try {
    // Most queries carry nothing after the question, or only an OPT.
    if (questionEnd !== msg.length || msg[6]! | msg[7]! | msg[8]! | msg[9]! | msg[10]! | msg[11]!) {
      const records = readRecords(msg, questionEnd);
      edns = findEdns(msg, records);
      tsig = findTsig(records);
    }
  } catch (e) {
    return fail(RCODE.FORMERR, (e as Error).message, questionEnd);
  }
  if (edns !== null && edns.version !== 0) {
    return fail(RCODE.BADVERS, `EDNS version ${edns.version}`, questionEnd, edns);
  }
  return { kind: 'query', query: { id, flags, name, type, qclass, questionEnd, edns, tsig } };
}

/** RFC 8945 §5.1: a TSIG record must be the last record of the message. */
function findTsig(records: readonly RecordRef[]): number | undefined {
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.type !== TYPE.TSIG) continue;
    if (i !== records.length - 1 || r.section !== SECTION.ADDITIONAL) throw new Malformed('TSIG is not the last record');
    return r.owner;
  }
  return undefined;
}

/** RFC 6891 §6.1.1: at most one OPT, in the additional section, owned by the root. */
function findEdns(msg: Buffer, records: readonly RecordRef[]): Edns | null {
  let edns: Edns | null = null;
  for (const r of records) {
    if (r.type !== TYPE.OPT) continue;
    if (r.section !== SECTION.ADDITIONAL) throw new Malformed('OPT outside the additional section');
    if (edns !== null) throw new Malformed('more than one OPT record');
    if (msg[r.owner] !== 0) throw new Malformed('OPT owner is not the root');
    edns = {
      udpSize: r.rclass,
      version: msg[r.ttlAt + 1]!,
      dnssecOk: (msg[r.ttlAt + 2]! & 0x80) !== 0,
      clientSubnet: hasOption(msg, r, EDNS_OPTION.CLIENT_SUBNET),
    };
  }
  return edns;
}

function hasOption(msg: Buffer, opt: RecordRef, code: number): boolean {
  const end = opt.rdataAt + opt.rdlength;
  for (let at = opt.rdataAt; at + 4 <= end; ) {
    if (msg.readUInt16BE(at) === code) return true;
    at += 4 + msg.readUInt16BE(at + 2);
  }
  return false;
}
