// The last stage before a reply leaves: fix up bytes that depend on this one
// query (ID, RD, the question's letter case, EDNS, truncation). Records are
// encoded by dns2 only when an answer changes (zone) or arrive already encoded
// (upstream); here we only copy and patch, which is what keeps the hot path
// near Node's ceiling.

import { HEADER_SIZE, type Edns, type Query } from './message.js';

/** What we accept and offer over UDP (DNS flag day 2020: avoids fragmentation). */
export const ADVERTISED_UDP_SIZE = 1232;
const CLASSIC_UDP_SIZE = 512;
const OPT_RR_SIZE = 11;

const QR = 0x80; // in header byte 2
const AA = 0x04; // byte 2
const TC = 0x02; // byte 2
const RD = 0x01; // byte 2
const RA = 0x80; // byte 3

export type Transport = 'udp' | 'tcp';

/** The largest reply a client can take over UDP (RFC 6891 §6.2.5, clamped to our size). */
export function udpLimit(edns: Edns | null): number {
  if (edns === null) return CLASSIC_UDP_SIZE;
  return Math.min(Math.max(edns.udpSize, CLASSIC_UDP_SIZE), ADVERTISED_UDP_SIZE);
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
  out.writeUInt16BE(h.id, 0);
  const opcodeAndRd = (h.queryFlags >> 8) & 0x79; // opcode bits + RD
  out[2] = QR | opcodeAndRd | (h.aa ? AA : 0) | (h.tc ? TC : 0);
  out[3] = (h.ra ? RA : 0) | (h.rcode & 0x0f);
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
 * Turns a cached answer (a whole message encoded for the lower-case question)
 * into the reply to this query. The cached question has the same length as
 * the client's (names match case-insensitively), so the client's question
 * bytes are copied over it and compression pointers stay valid.
 */
export function replyFromTemplate(template: Buffer, query: Buffer, q: Query, transport: Transport): Buffer {
  const extra = q.edns ? OPT_RR_SIZE : 0;
  const out = Buffer.allocUnsafe(template.length + extra);
  template.copy(out, 0);
  out.writeUInt16BE(q.id, 0);
  out[2] = (template[2]! & ~RD) | ((q.flags >> 8) & RD);
  query.copy(out, HEADER_SIZE, HEADER_SIZE, q.questionEnd);
  if (q.edns) {
    out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
    writeOpt(out, template.length, 0, q.edns.dnssecOk);
  }
  return transport === 'udp' && out.length > udpLimit(q.edns) ? truncated(out, query, q) : out;
}

/**
 * An upstream reply on its way to the client. The forwarder already restored
 * the client's ID and the upstream echoed the client's question and OPT, so
 * only a reply too large for this client's UDP size needs work.
 */
export function relayUpstreamReply(reply: Buffer, query: Buffer, q: Query, transport: Transport): Buffer {
  return transport === 'udp' && reply.length > udpLimit(q.edns) ? truncated(reply, query, q) : reply;
}

/** Same header (with TC), the question and our OPT: "ask again over TCP" (RFC 7766 §6.2.1). */
function truncated(full: Buffer, query: Buffer, q: Query): Buffer {
  return headerOnlyReply(query, {
    id: q.id,
    queryFlags: q.flags,
    rcode: full[3]! & 0x0f,
    questionEnd: q.questionEnd,
    edns: q.edns,
    ra: (full[3]! & RA) !== 0,
    aa: (full[2]! & AA) !== 0,
    tc: true,
  });
}

function writeOpt(out: Buffer, at: number, extendedRcode: number, dnssecOk: boolean): void {
  out[at] = 0; // root owner
  out.writeUInt16BE(41, at + 1);
  out.writeUInt16BE(ADVERTISED_UDP_SIZE, at + 3);
  out[at + 5] = extendedRcode & 0xff;
  out[at + 6] = 0; // version 0
  // RFC 3225: DO is echoed; we never sign, so nothing else changes.
  out[at + 7] = dnssecOk ? 0x80 : 0;
  out[at + 8] = 0;
  out.writeUInt16BE(0, at + 9);
}
