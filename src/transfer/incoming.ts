// Reading a transfer answer from a primary, message by message, into zone
// data. The primary is trusted only as far as its TSIG key: everything here
// assumes bytes may be broken or hostile. Names are read with the capped,
// backward-only pointer reader; every record and message is bounds-checked;
// record count and total size are capped; the stream must open and close
// with the zone's SOA (RFC 5936 §2.2, RFC 1995 §4); IXFR deletions must match
// what we hold. Any failure throws TransferError and the old copy stays.

import { CLASS, OPCODE, RCODE, rcodeName, TYPE } from '../wire/codes.js';
import { headerRcode, HEADER_SIZE, opcodeOf, QR } from '../wire/header.js';
import { Malformed } from '../wire/malformed.js';
import { isInZone, lowerWire, readName, skipName, textToWire, wireToText } from '../wire/name.js';
import { readRdata } from '../wire/rdata.js';
import { applyDiff, decodeSoa, ZoneBuilder, ZoneDataError, type Rr, type ZoneData } from '../zone/data.js';
import { serialGe } from '../zone/serial.js';

export interface TransferLimits {
  /** Records in one answer, SOAs included. */
  readonly records: number;
  /** Octets of all messages of one answer. */
  readonly bytes: number;
}

/** A 10,000-name zone is ~10k records and ~300 KB; these leave room for far larger zones. */
export const DEFAULT_TRANSFER_LIMITS: TransferLimits = { records: 1_000_000, bytes: 128 * 1024 * 1024 };

export class TransferError extends Error {
  override readonly name = 'TransferError';
  constructor(
    message: string,
    /** The primary's RCODE, when it answered with an error. */
    readonly rcode?: number,
    /** The primary could not be reached (refused, unreachable, connect timed out): asking again at once will not help. */
    readonly transport = false,
  ) {
    super(message);
  }
}

export type TransferResult =
  | { readonly kind: 'up-to-date'; readonly serial: number }
  | { readonly kind: 'full'; readonly data: ZoneData }
  | {
      readonly kind: 'incremental';
      readonly data: ZoneData;
      readonly removed: readonly Rr[];
      readonly added: readonly Rr[];
      readonly steps: number;
    };

interface Diff {
  readonly removed: Rr[];
  readonly added: Rr[];
  soa?: { rdata: Buffer; ttl: number };
}

/**
 * Feed it each message of the answer to one AXFR or IXFR request; push()
 * returns true once the closing SOA has been read, then result().
 */
export class TransferReader {
  private readonly apexWire: Buffer;
  private records = 0;
  private bytes = 0;
  private messages = 0;
  private done = false;
  private firstSoa: { serial: number; rdata: Buffer; ttl: number } | undefined;
  /** 'start' → first SOA read; then 'full' or 'ixfr-del' / 'ixfr-add' for IXFR's difference sequences. */
  private mode: 'start' | 'second' | 'full' | 'ixfr-del' | 'ixfr-add' = 'start';
  private builder: ZoneBuilder | undefined;
  private readonly diffs: Diff[] = [];
  /** Out-of-zone records skipped (RFC 5936 §3.2: a client ignores them). */
  ignored = 0;

  constructor(
    private readonly apex: string,
    private readonly id: number,
    private readonly qtype: number,
    /** What we hold: an IXFR answer is read against it. */
    private readonly current: ZoneData | undefined,
    private readonly limits: TransferLimits = DEFAULT_TRANSFER_LIMITS,
  ) {
    this.apexWire = textToWire(apex);
  }

  get messagesRead(): number {
    return this.messages;
  }

  /** Reads one message. @throws TransferError. */
  push(msg: Buffer): boolean {
    if (this.done) throw new TransferError('messages after the closing SOA');
    this.bytes += msg.length;
    if (this.bytes > this.limits.bytes) throw new TransferError(`answer larger than ${this.limits.bytes} octets`);
    try {
      return this.read(msg);
    } catch (err) {
      if (err instanceof Malformed || err instanceof ZoneDataError) throw new TransferError(`malformed answer: ${err.message}`);
      throw err;
    }
  }

  private read(msg: Buffer): boolean {
    if (msg.length < HEADER_SIZE) throw new TransferError('message shorter than a header');
    if (msg.readUInt16BE(0) !== this.id) throw new TransferError(`message ID ${msg.readUInt16BE(0)}, expected ${this.id}`);
    if ((msg[2]! & QR) === 0 || opcodeOf(msg) !== OPCODE.QUERY) throw new TransferError('not a QUERY response');
    const rcode = headerRcode(msg);
    if (rcode !== RCODE.NOERROR) throw new TransferError(`primary answered ${rcodeName(rcode)}`, rcode);
    const first = this.messages++ === 0;
    const qdcount = msg.readUInt16BE(4);
    let at = HEADER_SIZE;
    if (first && qdcount !== 1) throw new TransferError('first message does not echo the question');
    if (qdcount > 1) throw new TransferError(`QDCOUNT ${qdcount}`);
    if (qdcount === 1) {
      const q = readName(msg, at);
      at = q.end;
      if (at + 4 > msg.length) throw new TransferError('question truncated');
      if (!lowerWire(q.wire).equals(this.apexWire) || msg.readUInt16BE(at) !== this.qtype || msg.readUInt16BE(at + 2) !== CLASS.IN) {
        throw new TransferError('question does not match the request');
      }
      at += 4;
    }
    const ancount = msg.readUInt16BE(6);
    if (first && ancount === 0) throw new TransferError('empty answer');
    const lastRecord = ancount - 1;
    for (let i = 0; i < ancount; i++) {
      if (++this.records > this.limits.records) throw new TransferError(`more than ${this.limits.records} records`);
      const owner = readName(msg, at);
      at = owner.end;
      if (at + 10 > msg.length) throw new TransferError('record header truncated');
      const type = msg.readUInt16BE(at);
      const rclass = msg.readUInt16BE(at + 2);
      const rawTtl = msg.readUInt32BE(at + 4);
      const rdlength = msg.readUInt16BE(at + 8);
      at += 10;
      if (at + rdlength > msg.length) throw new TransferError('record data truncated');
      const rdata = readRdata(msg, type, at, rdlength);
      at += rdlength;
      // RFC 2181 §8: a TTL with the top bit set means zero.
      const ttl = rawTtl > 0x7fff_ffff ? 0 : rawTtl;
      if (this.done) throw new TransferError('records after the closing SOA');
      this.record(lowerWire(owner.wire), type, rclass, ttl, rdata, first && i === 0, i === lastRecord);
    }
    // Authority and additional (a TSIG at the end, perhaps an OPT): checked for shape, not used.
    for (let i = msg.readUInt16BE(8) + msg.readUInt16BE(10); i > 0; i--) {
      at = skipName(msg, at);
      if (at + 10 > msg.length) throw new TransferError('record header truncated');
      at += 10 + msg.readUInt16BE(at + 8);
    }
    if (at !== msg.length) throw new TransferError('message length does not match its records');
    return this.done;
  }

  private record(ownerWire: Buffer, type: number, rclass: number, ttl: number, rdata: Buffer, veryFirst: boolean, lastInMessage: boolean): void {
    if (rclass !== CLASS.IN) throw new TransferError(`record of class ${rclass}`);
    const isApexSoa = type === TYPE.SOA && ownerWire.equals(this.apexWire);
    if (veryFirst) {
      if (!isApexSoa) throw new TransferError('answer does not start with the zone SOA');
      this.firstSoa = { serial: decodeSoa(rdata).serial, rdata, ttl };
      this.mode = 'second';
      // IXFR: one SOA no newer than ours, alone in its message, says we are up to date (RFC 1995 §4).
      if (this.qtype === TYPE.IXFR && lastInMessage && this.current !== undefined && serialGe(this.current.serial, this.firstSoa.serial)) {
        this.done = true;
      }
      return;
    }
    const owner = wireToText(ownerWire);
    const first = this.firstSoa!;
    if (this.mode === 'second') {
      if (this.qtype === TYPE.IXFR && isApexSoa && this.current !== undefined && decodeSoa(rdata).serial === this.current.serial) {
        this.mode = 'ixfr-del';
        this.diffs.push({ removed: [], added: [] });
        return;
      }
      this.mode = 'full';
      this.builder = new ZoneBuilder(this.apex);
      this.builder.add(this.apex, TYPE.SOA, first.ttl, first.rdata, CLASS.IN, this.apexWire);
      // fall through: this record is zone data (or the closing SOA of an empty zone)
    }
    if (this.mode === 'full') {
      if (isApexSoa) {
        if (decodeSoa(rdata).serial !== first.serial) throw new TransferError('closing SOA serial differs from the opening one');
        if (!lastInMessage) throw new TransferError('records after the closing SOA');
        this.done = true;
        return;
      }
      if (type === TYPE.SOA) throw new TransferError(`SOA at ${owner}, below the apex`);
      if (!isInZone(owner, this.apex)) {
        this.ignored++;
        return;
      }
      this.builder!.add(owner, type, ttl, rdata, CLASS.IN, ownerWire);
      return;
    }
    // IXFR difference sequences: [old SOA, removed..., new SOA, added...]+, then the final SOA.
    const diff = this.diffs[this.diffs.length - 1]!;
    if (isApexSoa) {
      const serial = decodeSoa(rdata).serial;
      if (this.mode === 'ixfr-del') {
        diff.soa = { rdata, ttl };
        this.mode = 'ixfr-add';
        return;
      }
      const reached = decodeSoa(diff.soa!.rdata).serial;
      if (serial !== reached) throw new TransferError(`IXFR sequence jumps from serial ${reached} to ${serial}`);
      if (serial === first.serial) {
        if (!lastInMessage) throw new TransferError('records after the closing SOA');
        this.done = true;
        return;
      }
      this.diffs.push({ removed: [], added: [] });
      this.mode = 'ixfr-del';
      return;
    }
    if (type === TYPE.SOA) throw new TransferError(`SOA at ${owner}, below the apex`);
    if (!isInZone(owner, this.apex)) {
      this.ignored++;
      return;
    }
    (this.mode === 'ixfr-del' ? diff.removed : diff.added).push({ owner, type, ttl, rdata });
  }

  /** After push() returned true. @throws TransferError when the deletions do not match our copy. */
  result(): TransferResult {
    if (!this.done) throw new TransferError('answer ended before the closing SOA');
    const first = this.firstSoa!;
    if (this.mode === 'second') return { kind: 'up-to-date', serial: first.serial };
    if (this.mode === 'full') {
      try {
        return { kind: 'full', data: this.builder!.build() };
      } catch (err) {
        throw new TransferError((err as Error).message);
      }
    }
    let data = this.current!;
    const removed: Rr[] = [];
    const added: Rr[] = [];
    for (const d of this.diffs) {
      try {
        data = applyDiff(data, d.removed, d.added, d.soa!.rdata, d.soa!.ttl);
      } catch (err) {
        throw new TransferError((err as Error).message);
      }
      removed.push(...d.removed);
      added.push(...d.added);
    }
    return { kind: 'incremental', data, removed, added, steps: this.diffs.length };
  }
}
