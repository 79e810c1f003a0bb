// Encoding whole messages: the zone's answer templates (once per name and
// type per zone version) and zone transfer streams. Not on the per-query path,
// which only copies what this produced. Names are compressed (RFC 1035 §4.1.4)
// against every name already written, RDATA names only for the RFC 1035 types
// (RFC 3597 §4); a record that would not fit the size limit is refused whole,
// so a caller can start the next message of a transfer with it.

import { HEADER_SIZE } from './header.js';
import { lowerWire } from './name.js';
import { compressible, rdataFields } from './rdata.js';

/** A message cannot be longer than TCP's 2-octet length field allows. */
export const MAX_MESSAGE = 65_535;

/** Pointers reach 14 bits: names written past this offset cannot be pointed at. */
const MAX_POINTER_TARGET = 0x3fff;

// One shared scratch buffer, so encoding a message allocates only its
// copy-out. Most writers are built and finished in one synchronous run, but
// nothing forces that (a transfer stream keeps one open across the records
// of a message while it iterates), so the scratch is lent to one writer at a
// time: a writer built while it is out gets its own buffer, and finish()
// hands it back. (A writer dropped without finish() keeps it; later writers
// then allocate their own: correct, only slower.)
let scratch = Buffer.allocUnsafe(MAX_MESSAGE);
let scratchBusy = false;

export class MessageWriter {
  private readonly buf: Buffer;
  private at = HEADER_SIZE;
  private readonly counts = [0, 0, 0, 0];
  /** Lower-cased wire suffix (latin1 string) → offset where it was written. */
  private readonly names = new Map<string, number>();

  /** This writer holds the shared scratch (until finish()). */
  private lent = false;

  constructor(private readonly limit = MAX_MESSAGE) {
    if (scratchBusy) {
      this.buf = Buffer.allocUnsafe(limit);
    } else {
      if (scratch.length < limit) scratch = Buffer.allocUnsafe(limit);
      scratchBusy = true;
      this.lent = true;
      this.buf = scratch;
    }
    this.buf.fill(0, 0, HEADER_SIZE);
  }

  get length(): number {
    return this.at;
  }

  get recordCount(): number {
    return this.counts[1]! + this.counts[2]! + this.counts[3]!;
  }

  question(name: Uint8Array, type: number, qclass = 1): void {
    this.name(name);
    this.buf.writeUInt16BE(type, this.at);
    this.buf.writeUInt16BE(qclass, this.at + 2);
    this.at += 4;
    this.counts[0]!++;
  }

  /**
   * Appends one record to `section` (1 answer, 2 authority, 3 additional;
   * sections must be written in order). Returns false, writing nothing, when
   * it might not fit in the limit: sizes are counted uncompressed.
   */
  record(section: 1 | 2 | 3, owner: Uint8Array, type: number, rclass: number, ttl: number, rdata: Uint8Array): boolean {
    if (this.at + owner.length + 10 + rdata.length > this.limit) return false;
    this.name(owner);
    const buf = this.buf;
    buf.writeUInt16BE(type, this.at);
    buf.writeUInt16BE(rclass, this.at + 2);
    buf.writeUInt32BE(ttl >>> 0, this.at + 4);
    const lengthAt = this.at + 8;
    this.at += 10;
    const start = this.at;
    if (compressible(type)) {
      for (const f of rdataFields(type, rdata)) {
        if (f.field === 'name') this.name(rdata.subarray(f.at, f.at + f.size));
        else this.raw(rdata.subarray(f.at, f.at + f.size));
      }
    } else {
      this.raw(rdata);
    }
    buf.writeUInt16BE(this.at - start, lengthAt);
    this.counts[section]!++;
    return true;
  }

  /** Room left under the limit. */
  get remaining(): number {
    return this.limit - this.at;
  }

  /**
   * The message so far, copied out, with this ID, header bytes 2–3 and the
   * section counts. The writer is done after it (the shared scratch goes back).
   */
  finish(id: number, flags: number): Buffer {
    const buf = this.buf;
    buf.writeUInt16BE(id, 0);
    buf.writeUInt16BE(flags, 2);
    for (let i = 0; i < 4; i++) buf.writeUInt16BE(this.counts[i]!, 4 + 2 * i);
    const out = Buffer.from(buf.subarray(0, this.at));
    if (this.lent) {
      this.lent = false;
      scratchBusy = false;
    }
    return out;
  }

  private raw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.at);
    this.at += bytes.length;
  }

  /** Writes a name, pointing at the longest suffix already written. */
  private name(wire: Uint8Array): void {
    let offset = 0;
    const lower = lowerWire(wire).toString('latin1');
    while (wire[offset] !== 0) {
      const key = lower.slice(offset);
      const target = this.names.get(key);
      if (target !== undefined) {
        this.buf.writeUInt16BE(0xc000 | target, this.at);
        this.at += 2;
        return;
      }
      if (this.at <= MAX_POINTER_TARGET) this.names.set(key, this.at);
      const len = wire[offset]!;
      this.raw(wire.subarray(offset, offset + 1 + len));
      offset += 1 + len;
    }
    this.buf[this.at++] = 0;
  }
}
