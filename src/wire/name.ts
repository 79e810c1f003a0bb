// Walking names on the wire. Bytes from clients and from upstream ports are
// attacker-reachable, so nothing here follows a compression pointer or trusts
// a length without a bounds check: a question is read only when it is
// uncompressed, other names are skipped, and an upstream question is compared
// byte for byte against the one sent, never decoded.

import { HEADER_SIZE } from './header.js';
import { Malformed } from './malformed.js';

/** RFC 1035 §3.1: a name is at most 255 octets on the wire. */
export const MAX_NAME_OCTETS = 255;

/**
 * Reads an uncompressed name (a pointer in a query's question is refused).
 * Returns the lower-case presentation name without the trailing dot ("" for
 * the root), with "." and "\" inside a label escaped so it can never alias a
 * different name, and the offset just past the name.
 */
export function readQuestionName(msg: Buffer, start: number): [string, number] {
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
 * Skips a possibly compressed name without following the pointer; `floor` is
 * where the records being walked begin: a pointer must refer to something
 * before it, since forward and self references are how loops are built.
 */
export function skipName(msg: Uint8Array, start: number, floor = start): number {
  let offset = start;
  let octets = 1;
  for (;;) {
    if (offset >= msg.length) throw new Malformed('name runs past the message');
    const len = msg[offset]!;
    if (len === 0) return offset + 1;
    if ((len & 0xc0) === 0xc0) {
      if (offset + 2 > msg.length) throw new Malformed('pointer truncated');
      const target = ((len & 0x3f) << 8) | msg[offset + 1]!;
      if (target >= floor) throw new Malformed('forward compression pointer');
      return offset + 2;
    }
    if (len > 63) throw new Malformed('bad label length');
    octets += len + 1;
    if (octets > MAX_NAME_OCTETS) throw new Malformed('name longer than 255 octets');
    offset += len + 1;
  }
}

/**
 * Offset one past the end of the single question (QNAME + QTYPE + QCLASS), or
 * -1 if the message is not a one-question message with an uncompressed,
 * in-bounds name.
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
    if (off - HEADER_SIZE > MAX_NAME_OCTETS - 1) return -1;
  }
  const end = off + 4;
  return end <= msg.length ? end : -1;
}

/**
 * True when `reply` carries exactly one question equal to `query`'s, which
 * spans [HEADER_SIZE, qEnd) in `query`. The name part is compared with ASCII
 * case folding (RFC 4343); QTYPE and QCLASS exactly. Label-length octets are
 * 0..63, outside 'A'..'Z' and 'a'..'z', so folding every name octet can never
 * make a length octet equal a letter.
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
