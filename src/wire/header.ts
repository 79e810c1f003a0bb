// The 12-byte header (RFC 1035 §4.1.1), read and patched in place by byte.
// Flags are named per byte so a test of `msg[2] & QR` cannot be written
// against the wrong half of the 16-bit word.

export const HEADER_SIZE = 12;

/** Byte 2: QR | OPCODE(4) | AA | TC | RD. */
export const QR = 0x80;
export const AA = 0x04;
export const TC = 0x02;
export const RD = 0x01;
/** Opcode and RD: what a reply copies from the query. */
export const OPCODE_AND_RD = 0x79;

/** Byte 3: RA | Z | AD | CD | RCODE(4). */
export const RA = 0x80;
export const AD = 0x20;
export const CD = 0x10;
export const RCODE_MASK = 0x0f;

export function readId(msg: Uint8Array): number {
  return (msg[0]! << 8) | msg[1]!;
}

export function writeId(msg: Uint8Array, id: number): void {
  msg[0] = id >>> 8;
  msg[1] = id & 0xff;
}

/** The 4 header bits of the rcode (the OPT record carries the upper 8). */
export function headerRcode(msg: Uint8Array): number {
  return msg[3]! & RCODE_MASK;
}

export function opcodeOf(msg: Uint8Array): number {
  return (msg[2]! >> 3) & 0x0f;
}

/**
 * The same flags as bits of the 16-bit flags word (bytes 2–3 read as one
 * number, as Query.flags holds them): `q.flags & FLAG.RD`, never `& RD`.
 */
export const FLAG = {
  QR: QR << 8,
  AA: AA << 8,
  TC: TC << 8,
  RD: RD << 8,
  RA,
  AD,
  CD,
} as const;

/** The opcode from a 16-bit flags word (Query.flags). */
export function opcodeOfFlags(flags: number): number {
  return (flags >> 11) & 0x0f;
}
