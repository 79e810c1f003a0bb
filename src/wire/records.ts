// The resource records after the question, located but not decoded: where
// each one's TTL and RDATA sit, so a reply can be checked, re-timed (the
// cache) or have an address swapped (the Elastic IP rewrite) by patching bytes
// in place. Owner names are skipped, never followed.

import { Malformed } from './malformed.js';
import { skipName } from './name.js';

export const SECTION = { ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 2 } as const;
export type Section = (typeof SECTION)[keyof typeof SECTION];
const SECTIONS: readonly Section[] = [SECTION.ANSWER, SECTION.AUTHORITY, SECTION.ADDITIONAL];

export interface RecordRef {
  readonly section: Section;
  /** Offset of the owner name. */
  readonly owner: number;
  readonly type: number;
  readonly rclass: number;
  /** Offset of the 32-bit TTL (for OPT: extended rcode, version, flags). */
  readonly ttlAt: number;
  readonly rdataAt: number;
  readonly rdlength: number;
}

/**
 * Sees one record: its fields as a RecordRef holds them, passed one by one
 * so a walk allocates nothing. Returning true ends the walk there.
 */
export type RecordVisitor = (
  section: Section,
  owner: number,
  type: number,
  rclass: number,
  ttlAt: number,
  rdataAt: number,
  rdlength: number,
) => boolean | void;

/**
 * Walks the records from `start` (just past the question) in order, without
 * allocating. Throws Malformed when a record runs past the message or, when
 * the walk was not ended by `visit`, when anything trails the last one.
 */
export function forEachRecord(msg: Uint8Array, start: number, visit: RecordVisitor): void {
  let offset = start;
  for (const section of SECTIONS) {
    const count = (msg[6 + 2 * section]! << 8) | msg[7 + 2 * section]!;
    for (let i = 0; i < count; i++) {
      const owner = offset;
      offset = skipName(msg, offset);
      if (offset + 10 > msg.length) throw new Malformed('record header truncated');
      const rdlength = (msg[offset + 8]! << 8) | msg[offset + 9]!;
      const rdataAt = offset + 10;
      if (rdataAt + rdlength > msg.length) throw new Malformed('record data truncated');
      const type = (msg[offset]! << 8) | msg[offset + 1]!;
      const rclass = (msg[offset + 2]! << 8) | msg[offset + 3]!;
      if (visit(section, owner, type, rclass, offset + 4, rdataAt, rdlength) === true) return;
      offset = rdataAt + rdlength;
    }
  }
  if (offset !== msg.length) throw new Malformed('trailing bytes after the last record');
}

/**
 * Every record from `start` (just past the question) to the end of the
 * message. Throws Malformed when a record runs past the message or when
 * anything trails the last one.
 */
export function readRecords(msg: Uint8Array, start: number): RecordRef[] {
  const out: RecordRef[] = [];
  forEachRecord(msg, start, (section, owner, type, rclass, ttlAt, rdataAt, rdlength) => {
    out.push({ section, owner, type, rclass, ttlAt, rdataAt, rdlength });
  });
  return out;
}

/** RFC 2181 §8: a TTL is 31 bits; one with the top bit set is treated as zero. */
export const MAX_TTL = 0x7fffffff;

/** The 32-bit TTL at `at` (a RecordRef's ttlAt), 0 when its top bit is set (RFC 2181 §8). */
export function readTtl(msg: Uint8Array, at: number): number {
  const t = ((msg[at]! << 24) >>> 0) + ((msg[at + 1]! << 16) | (msg[at + 2]! << 8) | msg[at + 3]!);
  return t > MAX_TTL ? 0 : t;
}

export function writeTtl(msg: Uint8Array, at: number, ttl: number): void {
  msg[at] = ttl >>> 24;
  msg[at + 1] = (ttl >>> 16) & 0xff;
  msg[at + 2] = (ttl >>> 8) & 0xff;
  msg[at + 3] = ttl & 0xff;
}
