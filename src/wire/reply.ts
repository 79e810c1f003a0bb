// Turning bytes that answer *a* query into the reply to *this* query: the
// client's ID, RD bit and question spelling, its EDNS OPT, and truncation to
// its UDP size. Records are encoded once (per zone snapshot, per upstream
// reply) and then only copied and patched here, which is what keeps the hot
// path near Node's ceiling.

import { EDNS_OPTION, TYPE } from './codes.js';
import { AA, HEADER_SIZE, headerRcode, OPCODE_AND_RD, QR, RA, RCODE_MASK, RD, TC, writeId } from './header.js';
import type { Edns, Query } from './query.js';

/** What we accept and offer over UDP (DNS flag day 2020: avoids fragmentation). */
export const ADVERTISED_UDP_SIZE = 1232;
const CLASSIC_UDP_SIZE = 512;
export const OPT_RR_SIZE = 11;

export type Transport = 'udp' | 'tcp';

/** The largest reply a client can take over UDP (RFC 6891 §6.2.5, clamped to our size). */
export function udpLimit(edns: Edns | null): number {
  if (edns === null) return CLASSIC_UDP_SIZE;
  return Math.min(Math.max(edns.udpSize, CLASSIC_UDP_SIZE), ADVERTISED_UDP_SIZE);
}

/**
 * Makes `out` (a reply whose question equals the client's up to ASCII case)
 * answer this client: its ID, its RD bit, and its question bytes, so its
 * letter case survives (RFC 1035 §7.3 echo; some clients compare
 * case-sensitively). The one place every answer source (zone, cache,
 * upstream) restores the client's view.
 */
export function restoreClient(out: Buffer, query: Buffer, q: Query): void {
  writeId(out, q.id);
  out[2] = (out[2]! & ~RD) | ((q.flags >> 8) & RD);
  query.copy(out, HEADER_SIZE, HEADER_SIZE, q.questionEnd);
}

export interface HeaderOnly {
  readonly id: number;
  /** The query's header flags (opcode and RD are copied from them). */
  readonly queryFlags: number;
  readonly rcode: number;
  /** 0 to leave the question out (it could not be read). */
  readonly questionEnd: number;
  readonly edns: Edns | null;
  readonly ra: boolean;
  readonly aa?: boolean;
  readonly tc?: boolean;
}

/** A reply with no records: errors, refusals and truncated answers. */
export function headerOnlyReply(query: Buffer, h: HeaderOnly): Buffer {
  const qlen = h.questionEnd > HEADER_SIZE ? h.questionEnd - HEADER_SIZE : 0;
  const out = Buffer.alloc(HEADER_SIZE + qlen + (h.edns ? OPT_RR_SIZE : 0));
  writeId(out, h.id);
  out[2] = QR | ((h.queryFlags >> 8) & OPCODE_AND_RD) | (h.aa ? AA : 0) | (h.tc ? TC : 0);
  out[3] = (h.ra ? RA : 0) | (h.rcode & RCODE_MASK);
  if (qlen > 0) {
    out.writeUInt16BE(1, 4);
    query.copy(out, HEADER_SIZE, HEADER_SIZE, h.questionEnd);
  }
  if (h.edns) {
    out.writeUInt16BE(1, 10);
    writeOpt(out, HEADER_SIZE + qlen, h.rcode >> 4, h.edns.dnssecOk);
  }
  return out;
}

/**
 * The bare reply to a parsed query: its ID, opcode, RD, question and (for an
 * EDNS client) our OPT, with this rcode and RA set; no records.
 */
export function rcodeReply(query: Buffer, q: Query, rcode: number, aa = false): Buffer {
  return headerOnlyReply(query, { id: q.id, queryFlags: q.flags, rcode, questionEnd: q.questionEnd, edns: q.edns, ra: true, aa });
}

/**
 * A copy of `template` (a whole reply encoded for the lower-case question,
 * without OPT) made to answer this query. The template's question has the
 * same length as the client's (names match case-insensitively), so the
 * client's question bytes are copied over it and compression pointers stay
 * valid. Returns the copy, to be patched further before fitUdp.
 *
 * A template may also be held as a latin1 string (one octet per character,
 * exact both ways): the answer cache keeps thousands of short-lived replies,
 * and on V8's heap they cost a 16-byte header and are compacted by the GC,
 * where a Buffer each would cost ~200 bytes and fragment malloc's heap.
 */
export function replyFromTemplate(template: Buffer | string, query: Buffer, q: Query): Buffer {
  const extra = q.edns ? OPT_RR_SIZE : 0;
  const out = Buffer.allocUnsafe(template.length + extra);
  if (typeof template === 'string') out.write(template, 0, 'latin1');
  else template.copy(out, 0);
  restoreClient(out, query, q);
  if (q.edns) {
    out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
    writeOpt(out, template.length, 0, q.edns.dnssecOk);
  }
  return out;
}

/** A reply too large for this client's UDP size becomes "ask again over TCP" (RFC 7766 §6.2.1). */
export function fitUdp(reply: Buffer, query: Buffer, q: Query, transport: Transport): Buffer {
  return transport === 'udp' && reply.length > udpLimit(q.edns) ? truncatedReply(reply, query, q) : reply;
}

/** Same header (with TC), the question and our OPT. */
export function truncatedReply(full: Buffer, query: Buffer, q: Query): Buffer {
  return headerOnlyReply(query, {
    id: q.id,
    queryFlags: q.flags,
    rcode: headerRcode(full),
    questionEnd: q.questionEnd,
    edns: q.edns,
    ra: (full[3]! & RA) !== 0,
    aa: (full[2]! & AA) !== 0,
    tc: true,
  });
}

/**
 * `reply` with an Extended DNS Error option (RFC 8914) in its OPT. Only for a
 * reply whose last record is the empty OPT replyFromTemplate wrote; without
 * EDNS in the query there is nowhere to say it, and `reply` comes back as is.
 */
export function withEde(reply: Buffer, q: Query, infoCode: number): Buffer {
  if (q.edns === null) return reply;
  const out = Buffer.allocUnsafe(reply.length + 6);
  reply.copy(out);
  out.writeUInt16BE(6, reply.length - 2); // the OPT's RDLENGTH: one option, 2 + 2 + 2 octets
  out.writeUInt16BE(EDNS_OPTION.EDE, reply.length);
  out.writeUInt16BE(2, reply.length + 2);
  out.writeUInt16BE(infoCode, reply.length + 4);
  return out;
}

export function writeOpt(out: Buffer, at: number, extendedRcode: number, dnssecOk: boolean): void {
  out[at] = 0; // root owner
  out.writeUInt16BE(TYPE.OPT, at + 1);
  out.writeUInt16BE(ADVERTISED_UDP_SIZE, at + 3);
  out[at + 5] = extendedRcode & 0xff;
  out[at + 6] = 0; // version 0
  // RFC 3225: DO is echoed; we never sign, so nothing else changes.
  out[at + 7] = dnssecOk ? 0x80 : 0;
  out[at + 8] = 0;
  out.writeUInt16BE(0, at + 9);
}
