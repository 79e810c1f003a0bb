// Walking names on the wire. Bytes from clients and from upstream ports are
// attacker-reachable, so nothing trusts a length without a bounds check, and
// nothing on the query path follows a compression pointer: a question is read
// only when it is uncompressed, other names are skipped, and an upstream
// question is compared byte for byte against the one sent, never decoded.
// Only readName follows pointers, for data that is stored (zone transfers),
// and it allows backward pointers only, MAX_POINTER_HOPS of them, 255 octets.

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

/**
 * A name as a person writes it (a config key, a command-line argument) → the
 * form the config keeps and compares: trimmed, lower-cased, one trailing dot
 * dropped. Not for names off the wire (lowerAscii is): toLowerCase folds a
 * few non-ASCII letters to ASCII ones, which is why config/dns-name.ts checks
 * the name as written too.
 */
export function canonicalName(text: string): string {
  return text.trim().toLowerCase().replace(/\.$/, '');
}

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

/**
 * Pointer hops one name may take. A legitimate name needs at most one per
 * label it shares with an earlier name, and real encoders emit one; dns2 had
 * no cap and a long chain stalled the event loop (docs/dns2-and-speed.md).
 */
export const MAX_POINTER_HOPS = 16;

export interface WireName {
  /** The name uncompressed, as on the wire, letter case as sent. */
  readonly wire: Buffer;
  /** Offset just past the name where it started (past the first pointer, if any). */
  readonly end: number;
}

/**
 * Reads a possibly compressed name, following pointers: for data that is
 * stored (a zone transfer) rather than just routed. Every pointer must go
 * backward, hops are capped and the expanded name must stay within 255
 * octets, so no message can make this loop or run long.
 */
export function readName(msg: Uint8Array, start: number): WireName {
  const parts: Uint8Array[] = [];
  let offset = start;
  let end = -1;
  let octets = 1;
  let hops = 0;
  for (;;) {
    if (offset >= msg.length) throw new Malformed('name runs past the message');
    const len = msg[offset]!;
    if (len === 0) {
      if (end < 0) end = offset + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (offset + 2 > msg.length) throw new Malformed('pointer truncated');
      if (++hops > MAX_POINTER_HOPS) throw new Malformed('too many compression pointers');
      const target = ((len & 0x3f) << 8) | msg[offset + 1]!;
      if (target >= offset) throw new Malformed('forward compression pointer');
      if (end < 0) end = offset + 2;
      offset = target;
      continue;
    }
    if (len > 63) throw new Malformed('bad label length');
    octets += len + 1;
    if (octets > MAX_NAME_OCTETS) throw new Malformed('name longer than 255 octets');
    if (offset + 1 + len > msg.length) throw new Malformed('label runs past the message');
    parts.push(msg.subarray(offset, offset + 1 + len));
    offset += 1 + len;
  }
  const wire = Buffer.allocUnsafe(octets);
  let at = 0;
  for (const p of parts) {
    wire.set(p, at);
    at += p.length;
  }
  wire[at] = 0;
  return { wire, end };
}

/** A copy with ASCII letters lowered (RFC 4343); length octets are < 64, so never letters. */
export function lowerWire(wire: Uint8Array): Buffer {
  const out = Buffer.from(wire);
  for (let i = 0; i < out.length; i++) {
    const c = out[i]!;
    if (c >= 0x41 && c <= 0x5a) out[i] = c | 0x20;
  }
  return out;
}

/**
 * An uncompressed wire name → the text form readQuestionName gives (lower
 * case, no trailing dot, "" for the root, "." and "\" in a label escaped), so
 * transferred names and asked names meet in the same map keys.
 */
export function wireToText(wire: Uint8Array): string {
  let name = '';
  let offset = 0;
  for (;;) {
    const len = wire[offset]!;
    if (len === 0 || len === undefined) return lowerAscii(name);
    let label = Buffer.from(wire.buffer, wire.byteOffset + offset + 1, len).toString('latin1');
    if (label.includes('.') || label.includes('\\')) label = escapeLabel(label);
    name = name === '' ? label : `${name}.${label}`;
    offset += 1 + len;
  }
}

/**
 * The text form (as above, or a configured name) → wire bytes. "\DDD" and
 * "\X" escapes are undone, so an escaped dot stays inside its label.
 * @throws Malformed on an empty label, a name over 255 octets, a \DDD over
 * 255 or a character outside Latin-1.
 */
export function textToWire(name: string): Buffer {
  if (name === '' || name === '.') return Buffer.from([0]);
  const text = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  const out: number[] = [];
  let label: number[] = [];
  const flush = (): void => {
    if (label.length === 0) throw new Malformed(`empty label in "${name}"`);
    if (label.length > 63) throw new Malformed(`label longer than 63 octets in "${name}"`);
    out.push(label.length, ...label);
    label = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      flush();
    } else if (c === 0x5c && i + 1 < text.length) {
      const digits = /^\d{3}/.exec(text.slice(i + 1, i + 4));
      if (digits !== null) {
        label.push(octet(Number(digits[0]), name));
        i += 3;
      } else {
        label.push(octet(text.charCodeAt(i + 1), name));
        i += 1;
      }
    } else {
      label.push(octet(c, name));
    }
  }
  flush();
  out.push(0);
  if (out.length > MAX_NAME_OCTETS) throw new Malformed(`name longer than 255 octets: "${name}"`);
  return Buffer.from(out);
}

/** One octet of a label; anything wider would silently become a different name. */
function octet(code: number, name: string): number {
  if (code > 0xff) throw new Malformed(`not an octet (${code}) in "${name}": use \\DDD escapes, 000-255`);
  return code;
}

/** Parent in text form ("a.b" → "b", "b" → ""), undefined for the root; escaped dots are not separators. */
export function parentName(name: string): string | undefined {
  if (name === '') return undefined;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5c) {
      i += /^\d{3}/.test(name.slice(i + 1, i + 4)) ? 3 : 1;
      continue;
    }
    if (c === 0x2e) return name.slice(i + 1);
  }
  return '';
}

/**
 * True when `name` is `apex` or below it (text forms, lower case). Text forms
 * escape a dot inside a label as "\046", so a "." before the apex is always a
 * label boundary.
 */
export function isInZone(name: string, apex: string): boolean {
  if (apex === '' || name === apex) return true;
  return name.length > apex.length && name.endsWith(apex) && name.charCodeAt(name.length - apex.length - 1) === 0x2e;
}
