// The few header/question facts the upstream leg needs, read straight off the
// wire. Upstream bytes are attacker-reachable (anyone can aim a datagram at our
// ephemeral ports), so nothing here follows a compression pointer or trusts a
// length without a bounds check: an upstream question is compared byte for
// byte against the one we sent, never decoded.

import { HEADER_SIZE } from '../dns/message.js';

/** RFC 1035 §3.1: a name is at most 255 octets on the wire. */
const MAX_NAME_WIRE = 255;

export const FLAG_QR = 0x80; // byte 2
export const FLAG_TC = 0x02; // byte 2

/**
 * Offset one past the end of the single question (QNAME + QTYPE + QCLASS), or
 * -1 if the message is not a one-question message with an uncompressed,
 * in-bounds name. Only used on the client's query, which we forward verbatim.
 */
export function questionEnd(msg: Uint8Array): number {
  if (msg.length < HEADER_SIZE) return -1;
  if (msg[4] !== 0 || msg[5] !== 1) return -1; // QDCOUNT must be exactly 1
  let off = HEADER_SIZE;
  for (;;) {
    if (off >= msg.length) return -1;
    const len = msg[off]!;
    if (len === 0) {
      off += 1;
      break;
    }
    // 0xC0 is a pointer, 0x40/0x80 are reserved label types: a question has
    // nothing before it worth pointing at, so either is malformed here.
    if (len & 0xc0) return -1;
    off += 1 + len;
    if (off - HEADER_SIZE > MAX_NAME_WIRE - 1) return -1;
  }
  const end = off + 4;
  return end <= msg.length ? end : -1;
}

/**
 * True when `reply` carries exactly one question equal to `query`'s, which
 * spans [HEADER_SIZE, qEnd) in `query` (qEnd from questionEnd). The name part is
 * compared with ASCII case folding (RFC 4343); QTYPE and QCLASS exactly.
 * Label-length octets are 0..63, outside 'A'..'Z' and 'a'..'z', so folding every
 * name octet can never make a length octet equal a letter.
 */
export function sameQuestion(reply: Uint8Array, query: Uint8Array, qEnd: number): boolean {
  if (reply.length < qEnd) return false;
  if (reply[4] !== 0 || reply[5] !== 1) return false;
  const nameEnd = qEnd - 4;
  for (let i = HEADER_SIZE; i < nameEnd; i++) {
    let a = reply[i]!;
    let b = query[i]!;
    if (a === b) continue;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  for (let i = nameEnd; i < qEnd; i++) {
    if (reply[i] !== query[i]) return false;
  }
  return true;
}
