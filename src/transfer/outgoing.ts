// Zone transfer responses, built from the zone's data (src/zone/data.ts):
// AXFR (RFC 5936) and IXFR (RFC 1995). A stream is a list of messages, each
// at most MESSAGE_LIMIT octets so that a TSIG record still fits under the
// 64 KiB TCP frame; the first carries the question. Messages are built with
// ID 0 and the lower-case question: the caller patches in the client's ID
// and question bytes (same length, so compression pointers stay valid) and
// signs each one.
//
// The current version's AXFR stream is built once and kept (one per zone,
// replaced with the version): N secondaries fetching after a change cost one
// encoding, and versions kept for IXFR history keep no streams. Kept weakly,
// by the version itself: a zone removed by a reload (or a room closed) takes
// its stream with it.

import { TYPE } from '../wire/codes.js';
import { FLAG, HEADER_SIZE } from '../wire/header.js';
import { textToWire } from '../wire/name.js';
import { MessageWriter } from '../wire/writer.js';
import { allRecords, ownerWire, soaRr, type Rr, type ZoneData } from '../zone/data.js';
import type { Change } from '../zone/versions.js';

/** Room for the records of one message; a TSIG record fits in what is left of 64 KiB. */
export const MESSAGE_LIMIT = 16 * 1024;

/** Opcode QUERY, NOERROR. */
const FLAGS = FLAG.QR | FLAG.AA;

const axfrCache = new WeakMap<ZoneData, readonly Buffer[]>();
/** The version each apex last cached, so caching a newer one drops the older stream. */
const lastCached = new Map<string, WeakRef<ZoneData>>();

function cache(data: ZoneData, stream: readonly Buffer[]): void {
  const previous = lastCached.get(data.apex)?.deref();
  if (previous !== undefined && previous !== data) axfrCache.delete(previous);
  axfrCache.set(data, stream);
  lastCached.set(data.apex, new WeakRef(data));
  // Apexes whose versions are gone (zones removed, rooms closed): only names are left to drop.
  for (const [apex, ref] of lastCached) if (ref.deref() === undefined) lastCached.delete(apex);
}

/** Accumulates records into messages of at most `limit` octets. */
class Stream {
  readonly messages: Buffer[] = [];
  private w: MessageWriter;

  constructor(
    private readonly data: ZoneData,
    questionType: number,
    private readonly limit: number,
  ) {
    this.w = new MessageWriter(limit);
    this.w.question(textToWire(data.apex), questionType);
  }

  add(rr: Rr, owner?: Buffer): void {
    const wire = owner ?? ownerWire(this.data, rr.owner);
    if (this.w.record(1, wire, rr.type, 1, rr.ttl, rr.rdata)) return;
    if (this.w.recordCount === 0) throw new Error(`record ${rr.owner} type ${rr.type} does not fit in a ${this.limit}-octet message`);
    this.messages.push(this.w.finish(0, FLAGS));
    this.w = new MessageWriter(this.limit);
    if (!this.w.record(1, wire, rr.type, 1, rr.ttl, rr.rdata)) {
      throw new Error(`record ${rr.owner} type ${rr.type} does not fit in a ${this.limit}-octet message`);
    }
  }

  end(): Buffer[] {
    this.messages.push(this.w.finish(0, FLAGS));
    return this.messages;
  }
}

/** RFC 5936 §2.2: SOA, every other record, SOA again. */
export function axfrStream(data: ZoneData, limit = MESSAGE_LIMIT): readonly Buffer[] {
  if (limit !== MESSAGE_LIMIT) return full(data, TYPE.AXFR, limit);
  const cached = axfrCache.get(data);
  if (cached !== undefined) return cached;
  const stream = full(data, TYPE.AXFR, limit);
  cache(data, stream);
  return stream;
}

function full(data: ZoneData, questionType: number, limit: number): Buffer[] {
  const s = new Stream(data, questionType, limit);
  for (const rr of allRecords(data)) s.add(rr);
  s.add(soaRr(data));
  return s.end();
}

/**
 * An IXFR answer (RFC 1995 §4): with `changes` undefined, the whole zone in
 * AXFR form (the history does not reach the client's serial); with [] the
 * current SOA only (the client is up to date); otherwise the condensed
 * differences: new SOA, then per change old SOA, removed, new SOA, added,
 * and the new SOA at the end.
 */
export function ixfrStream(data: ZoneData, changes: readonly Change[] | undefined, limit = MESSAGE_LIMIT): readonly Buffer[] {
  if (changes === undefined) {
    const cached = limit === MESSAGE_LIMIT ? axfrCache.get(data) : undefined;
    return cached ?? full(data, TYPE.IXFR, limit);
  }
  const s = new Stream(data, TYPE.IXFR, limit);
  s.add(soaRr(data));
  for (const c of changes) {
    s.add(soaRr(c.from));
    for (const rr of c.removed) s.add(rr, ownerWire(c.from, rr.owner));
    s.add(soaRr(c.to));
    for (const rr of c.added) s.add(rr, ownerWire(c.to, rr.owner));
  }
  if (changes.length > 0) s.add(soaRr(data));
  return s.end();
}

/**
 * A copy of `message` (from a stream above) answering this request: its ID
 * and, in the first message, its question bytes (letter case and QTYPE as
 * asked; the same length as ours).
 */
export function forRequest(message: Buffer, request: Buffer, id: number, questionEnd: number, first: boolean): Buffer {
  const out = Buffer.from(message);
  out.writeUInt16BE(id, 0);
  if (first) request.copy(out, HEADER_SIZE, HEADER_SIZE, questionEnd);
  return out;
}
