// TSIG (RFC 8945): HMAC signatures on transfers, NOTIFYs and the queries that
// go with them, so a secondary takes zone data only from its primary and a
// primary hands it only to holders of the key.
//
// What is signed (§4.3): the message as it was before the TSIG record was
// added (its original ID, ARCOUNT without the TSIG), preceded by the request's
// MAC in a response, followed by the TSIG variables (key name, class, TTL,
// algorithm, time, fudge, error, other data). In a multi-message response
// (§5.3.1) each later message is chained to the previous MAC and covers only
// the timers. We sign every message of a stream; when verifying we accept up
// to 99 unsigned ones in between (§5.3.1), as BIND and Knot may send them.
//
// MACs are compared with crypto.timingSafeEqual, and a signature is checked
// before the time (a bad MAC says nothing about the sender's clock).

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TsigKeyConfig } from '../config/types.js';
import { CLASS, RCODE, TSIG_ERROR, TSIG_HASHES, TYPE, tsigErrorName } from '../wire/codes.js';
import { HEADER_SIZE } from '../wire/header.js';
import { Malformed } from '../wire/malformed.js';
import { lowerWire, readName, skipName, textToWire, wireToText } from '../wire/name.js';

/** RFC 8945 §10: 300 s. */
export const FUDGE = 300;
/** §5.3.1: at most this many unsigned messages between signed ones. */
const MAX_UNSIGNED_RUN = 99;

export interface TsigKey {
  /** Text form, lower case. */
  readonly name: string;
  readonly nameWire: Buffer;
  /** Text form ("hmac-sha256"). */
  readonly algorithm: string;
  readonly algorithmWire: Buffer;
  readonly hash: string;
  readonly secret: Buffer;
  /** Full MAC length of the algorithm. */
  readonly macSize: number;
}

export function tsigKey(config: Pick<TsigKeyConfig, 'name' | 'algorithm' | 'secret'>): TsigKey {
  const algorithm = config.algorithm;
  const hash = TSIG_HASHES[algorithm];
  const secret = Buffer.from(config.secret, 'base64');
  // The config keeps key names canonical (parseKeyName): lower case, no trailing dot.
  const name = config.name;
  return {
    name,
    nameWire: textToWire(name),
    algorithm,
    algorithmWire: textToWire(algorithm),
    hash,
    secret,
    macSize: createHmac(hash, secret).digest().length,
  };
}

/** A TSIG record as read from a message. */
export interface TsigRecord {
  /** Offset of the record's owner name: the message before it is what was signed. */
  readonly start: number;
  readonly keyName: string;
  readonly algorithm: string;
  readonly timeSigned: number;
  readonly fudge: number;
  readonly mac: Buffer;
  readonly originalId: number;
  readonly error: number;
  readonly other: Buffer;
}

/**
 * Reads the TSIG record at `start` (its owner), which must be the last
 * record of the message. @throws Malformed.
 */
export function readTsig(msg: Buffer, start: number): TsigRecord {
  const owner = readName(msg, start);
  let at = owner.end;
  if (at + 10 > msg.length) throw new Malformed('TSIG record truncated');
  if (msg.readUInt16BE(at) !== TYPE.TSIG) throw new Malformed('not a TSIG record');
  if (msg.readUInt16BE(at + 2) !== CLASS.ANY || msg.readUInt32BE(at + 4) !== 0) throw new Malformed('TSIG class must be ANY, TTL 0');
  const rdlength = msg.readUInt16BE(at + 8);
  at += 10;
  const end = at + rdlength;
  if (end !== msg.length) throw new Malformed('TSIG is not the last record');
  const alg = readName(msg, at);
  at = alg.end;
  if (at + 10 > end) throw new Malformed('TSIG RDATA truncated');
  const timeSigned = msg.readUInt16BE(at) * 2 ** 32 + msg.readUInt32BE(at + 2);
  const fudge = msg.readUInt16BE(at + 6);
  const macSize = msg.readUInt16BE(at + 8);
  at += 10;
  if (at + macSize + 6 > end) throw new Malformed('TSIG MAC truncated');
  const mac = Buffer.from(msg.subarray(at, at + macSize));
  at += macSize;
  const originalId = msg.readUInt16BE(at);
  const error = msg.readUInt16BE(at + 2);
  const otherLen = msg.readUInt16BE(at + 4);
  at += 6;
  if (at + otherLen !== end) throw new Malformed('TSIG other data does not fill the RDATA');
  return {
    start,
    keyName: wireToText(owner.wire),
    algorithm: wireToText(alg.wire),
    timeSigned,
    fudge,
    mac,
    originalId,
    error,
    other: Buffer.from(msg.subarray(at, end)),
  };
}

/** Where the TSIG record starts, if the message's last record is one (for messages we did not parse as queries). */
export function findTsigStart(msg: Buffer): number | undefined {
  if (msg.length < HEADER_SIZE || msg.readUInt16BE(10) === 0) return undefined;
  let at = HEADER_SIZE;
  for (let i = msg.readUInt16BE(4); i > 0; i--) at = skipName(msg, at) + 4;
  const records = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  let last = -1;
  for (let i = 0; i < records; i++) {
    last = at;
    at = skipName(msg, at);
    if (at + 10 > msg.length) throw new Malformed('record header truncated');
    at += 10 + msg.readUInt16BE(at + 8);
  }
  if (at > msg.length) throw new Malformed('record data truncated');
  if (last < 0) return undefined;
  const type = msg.readUInt16BE(skipName(msg, last));
  return type === TYPE.TSIG ? last : undefined;
}

/** The message as signed: without its TSIG record, ARCOUNT one less, the original ID. */
function unsignedPart(msg: Buffer, tsig: TsigRecord): Buffer {
  const out = Buffer.from(msg.subarray(0, tsig.start));
  out.writeUInt16BE(tsig.originalId, 0);
  out.writeUInt16BE(msg.readUInt16BE(10) - 1, 10);
  return out;
}

function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n);
  return b;
}

function time48(t: number): Buffer {
  const b = Buffer.allocUnsafe(6);
  b.writeUInt16BE(Math.floor(t / 2 ** 32) & 0xffff, 0);
  b.writeUInt32BE(t >>> 0, 2);
  return b;
}

interface Vars {
  readonly timeSigned: number;
  readonly fudge: number;
  readonly error: number;
  readonly other: Buffer;
}

/** The TSIG variables (§4.3.3), or only the timers for a later message of a stream. */
function variables(key: TsigKey, v: Vars, timersOnly: boolean): Buffer[] {
  const timers = [time48(v.timeSigned), u16(v.fudge)];
  if (timersOnly) return timers;
  const classTtl = Buffer.from([0, CLASS.ANY, 0, 0, 0, 0]);
  return [lowerWire(key.nameWire), classTtl, lowerWire(key.algorithmWire), ...timers, u16(v.error), u16(v.other.length), v.other];
}

interface MacInput {
  /** The request's MAC (a response's first message) or the previous message's (a later one). */
  readonly prior?: Buffer;
  /** Unsigned messages since the last signed one (later messages of a stream). */
  readonly between?: readonly Buffer[];
  readonly message: Buffer;
  readonly timersOnly: boolean;
}

function computeMac(key: TsigKey, input: MacInput, v: Vars): Buffer {
  const h = createHmac(key.hash, key.secret);
  if (input.prior !== undefined) {
    h.update(u16(input.prior.length));
    h.update(input.prior);
  }
  for (const m of input.between ?? []) h.update(m);
  h.update(input.message);
  for (const part of variables(key, v, input.timersOnly)) h.update(part);
  return h.digest();
}

function tsigRecord(nameWire: Buffer, algorithmWire: Buffer, originalId: number, mac: Buffer, v: Vars): Buffer {
  const rdata = Buffer.concat([algorithmWire, time48(v.timeSigned), u16(v.fudge), u16(mac.length), mac, u16(originalId), u16(v.error), u16(v.other.length), v.other]);
  const head = Buffer.allocUnsafe(10);
  head.writeUInt16BE(TYPE.TSIG, 0);
  head.writeUInt16BE(CLASS.ANY, 2);
  head.writeUInt32BE(0, 4);
  head.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([nameWire, head, rdata]);
}

/** Room a TSIG record takes, for writers that must leave space for it. */
export function tsigSize(key: TsigKey): number {
  return key.nameWire.length + 10 + key.algorithmWire.length + 16 + key.macSize + 6;
}

export interface SignOptions {
  /** Seconds since the epoch. */
  readonly now: number;
  readonly prior?: Buffer;
  readonly between?: readonly Buffer[];
  /** A later message of a stream: prior is the previous MAC, only timers are covered. */
  readonly timersOnly?: boolean;
  readonly error?: number;
  readonly other?: Buffer;
  /** Time Signed to put in, when not now (a BADTIME answer repeats the request's). */
  readonly timeSigned?: number;
}

/** Appends a TSIG record to a complete unsigned message. Returns the signed message and its MAC. */
export function sign(msg: Buffer, key: TsigKey, o: SignOptions): { msg: Buffer; mac: Buffer } {
  const v: Vars = { timeSigned: o.timeSigned ?? o.now, fudge: FUDGE, error: o.error ?? 0, other: o.other ?? Buffer.alloc(0) };
  const mac = computeMac(key, { prior: o.prior, between: o.between, message: msg, timersOnly: o.timersOnly === true }, v);
  const out = Buffer.concat([msg, tsigRecord(key.nameWire, key.algorithmWire, msg.readUInt16BE(0), mac, v)]);
  out.writeUInt16BE(msg.readUInt16BE(10) + 1, 10);
  return { msg: out, mac };
}

/**
 * `reply` (a complete unsigned error answer) with the TSIG record that tells
 * the client why its request failed verification. BADTIME and BADTRUNC are
 * signed with the key (§5.2.3: BADTIME with the request's time, and ours in
 * Other Data so the client can see the skew); BADKEY and BADSIG are not
 * (§5.3.2: no MAC).
 */
export function errorAnswer(reply: Buffer, request: TsigRecord, error: number, key: TsigKey | undefined, now: number): Buffer {
  if ((error === TSIG_ERROR.BADTIME || error === TSIG_ERROR.BADTRUNC) && key !== undefined) {
    return sign(reply, key, {
      now,
      prior: request.mac,
      error,
      ...(error === TSIG_ERROR.BADTIME ? { other: time48(now), timeSigned: request.timeSigned } : {}),
    }).msg;
  }
  const v: Vars = { timeSigned: now, fudge: FUDGE, error, other: Buffer.alloc(0) };
  const record = tsigRecord(textToWire(request.keyName), textToWire(request.algorithm), reply.readUInt16BE(0), Buffer.alloc(0), v);
  const out = Buffer.concat([reply, record]);
  out.writeUInt16BE(reply.readUInt16BE(10) + 1, 10);
  return out;
}

export type Verdict =
  | { readonly ok: true; readonly tsig: TsigRecord; readonly mac: Buffer }
  | {
      readonly ok: false;
      /** TSIG_ERROR value; FORMERR for a MAC of impossible length. */
      readonly error: number;
      readonly rcode: number;
      readonly reason: string;
      readonly tsig: TsigRecord;
    };

export interface VerifyOptions {
  /** Seconds since the epoch. */
  readonly now: number;
  readonly prior?: Buffer;
  readonly between?: readonly Buffer[];
  readonly timersOnly?: boolean;
}

/** Checks a signed message against `key` (§5.2 order: key, MAC, time, truncation). */
export function verify(msg: Buffer, tsig: TsigRecord, key: TsigKey | undefined, o: VerifyOptions): Verdict {
  const fail = (error: number, reason: string, rcode: number = RCODE.NOTAUTH): Verdict => ({ ok: false, error, rcode, reason, tsig });
  if (key === undefined || tsig.keyName !== key.name) return fail(TSIG_ERROR.BADKEY, `unknown key "${tsig.keyName}"`);
  if (tsig.algorithm !== key.algorithm) return fail(TSIG_ERROR.BADKEY, `key "${key.name}" is ${key.algorithm}, message used ${tsig.algorithm}`);
  const size = tsig.mac.length;
  if (size > key.macSize || size < Math.max(10, key.macSize / 2)) {
    // A zero-length MAC is an error answer (BADSIG/BADKEY from the other side), not a signature.
    if (size === 0 && tsig.error !== 0) return fail(tsig.error, `peer reported TSIG error ${tsig.error}`);
    return fail(RCODE.FORMERR, `MAC of ${size} octets`, RCODE.FORMERR);
  }
  const v: Vars = { timeSigned: tsig.timeSigned, fudge: tsig.fudge, error: tsig.error, other: tsig.other };
  const expected = computeMac(key, { prior: o.prior, between: o.between, message: unsignedPart(msg, tsig), timersOnly: o.timersOnly === true }, v);
  if (!timingSafeEqual(expected.subarray(0, size), tsig.mac)) return fail(TSIG_ERROR.BADSIG, 'MAC does not match');
  if (Math.abs(o.now - tsig.timeSigned) > tsig.fudge) {
    return fail(TSIG_ERROR.BADTIME, `signed at ${tsig.timeSigned}, now ${o.now} (fudge ${tsig.fudge} s)`);
  }
  // Local policy: every truncated MAC gets BADTRUNC. RFC 8945 §5.2.4 lets a
  // server accept one down to half the hash (and at least 10 octets) but
  // does not require it; BIND and Knot send full MACs by default, so a
  // truncated one is a misconfigured or downgrading peer.
  if (size < key.macSize) return fail(TSIG_ERROR.BADTRUNC, `MAC truncated to ${size} octets`);
  return { ok: true, tsig, mac: tsig.mac };
}

/** Signs each message of a response stream (AXFR/IXFR), chaining MACs (§5.3.1). */
export class StreamSigner {
  private prior: Buffer;
  private first = true;

  constructor(
    private readonly key: TsigKey,
    requestMac: Buffer,
    private readonly now: () => number,
  ) {
    this.prior = requestMac;
  }

  sign(msg: Buffer): Buffer {
    const signed = sign(msg, this.key, { now: this.now(), prior: this.prior, timersOnly: !this.first });
    this.first = false;
    this.prior = signed.mac;
    return signed.msg;
  }
}

/** Verifies the messages of a response stream in order; the last one must be signed (finish()). */
export class StreamVerifier {
  private prior: Buffer;
  private first = true;
  private between: Buffer[] = [];

  constructor(
    private readonly key: TsigKey,
    requestMac: Buffer,
    private readonly now: () => number,
  ) {
    this.prior = requestMac;
  }

  /** Returns an error text, or undefined when the message is acceptable so far. */
  next(msg: Buffer): string | undefined {
    let start: number | undefined;
    try {
      start = findTsigStart(msg);
    } catch (err) {
      return `unreadable message: ${(err as Error).message}`;
    }
    if (start === undefined) {
      if (this.first) return 'first message of the answer is not signed';
      this.between.push(Buffer.from(msg));
      return this.between.length > MAX_UNSIGNED_RUN ? `more than ${MAX_UNSIGNED_RUN} unsigned messages in a row` : undefined;
    }
    let tsig: TsigRecord;
    try {
      tsig = readTsig(msg, start);
    } catch (err) {
      return `unreadable TSIG: ${(err as Error).message}`;
    }
    const verdict = verify(msg, tsig, this.key, { now: this.now(), prior: this.prior, between: this.between, timersOnly: !this.first });
    if (!verdict.ok) return `TSIG ${tsigErrorName(verdict.error)}: ${verdict.reason}`;
    this.first = false;
    this.between = [];
    this.prior = verdict.mac;
    return undefined;
  }

  /** The stream ended: anything unsigned at its end is not covered. */
  finish(): string | undefined {
    if (this.first) return 'answer not signed';
    return this.between.length > 0 ? 'the last messages of the answer are not signed' : undefined;
  }
}


/** " (TSIG BADKEY)" when an answer carries a TSIG error, for log lines; "" otherwise. */
export function peerTsigError(msg: Buffer): string {
  try {
    const start = findTsigStart(msg);
    if (start === undefined) return '';
    const error = readTsig(msg, start).error;
    return error === 0 ? '' : ` (TSIG ${tsigErrorName(error)})`;
  } catch {
    return '';
  }
}

/** Seconds since the epoch from a millisecond clock. */
export function seconds(nowMs: number): number {
  return Math.floor(nowMs / 1000);
}
