// NOTIFY out (RFC 1996): on every new version of a zone, each configured
// secondary is told, so it fetches at once instead of at its refresh timer.
// Over UDP from a fresh socket per attempt; an attempt waits for the answer
// with the same ID, opcode and question from that very address and port.
// Retried with doubling waits (§3.6 asks for retries "with back-off") until
// acknowledged, and given up after the last wait. An error answer (REFUSED,
// NOTAUTH) ends the retries for that secondary at once: it answered. A
// newer version supersedes the one being announced. One log line per
// version, when every secondary has settled.

import { randomInt } from 'node:crypto';
import type { HostPort } from '../config/types.js';
import type { Logger } from '../log.js';
import { CLASS, OPCODE, RCODE, rcodeName, TYPE, tsigErrorName } from '../wire/codes.js';
import { FLAG, headerRcode, HEADER_SIZE, opcodeOf, QR } from '../wire/header.js';
import { MessageWriter } from '../wire/writer.js';
import { questionEnd, sameQuestion, textToWire } from '../wire/name.js';
import { soaRr, type ZoneData } from '../zone/data.js';
import { showHostPort } from '../config/net.js';
import { udpExchange } from './client.js';
import type { TransferStats } from './stats.js';
import { findTsigStart, readTsig, seconds, sign, verify, type TsigKey } from './tsig.js';

/** Waits per attempt: 5 tries over ~31 s. */
export const DEFAULT_NOTIFY_WAITS_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000, 16_000];

const NOTIFY_FLAGS = (OPCODE.NOTIFY << 11) | FLAG.AA;

export interface NotifierOptions {
  readonly logger: Logger;
  readonly stats: TransferStats;
  /** Clock for TSIG times (ms). */
  readonly now: () => number;
  readonly waitsMs?: readonly number[];
}

interface Outcome {
  readonly target: string;
  readonly acked: boolean;
  readonly attempts: number;
  readonly reason?: string;
}

export class Notifier {
  private round: AbortController | undefined;
  private readonly waits: readonly number[];
  private closed = false;
  /** Settles when the current round has logged (tests wait on it). */
  settled: Promise<void> = Promise.resolve();

  constructor(
    private readonly apex: string,
    private readonly targets: readonly HostPort[],
    private readonly key: TsigKey | undefined,
    private readonly o: NotifierOptions,
  ) {
    this.waits = o.waitsMs ?? DEFAULT_NOTIFY_WAITS_MS;
  }

  /** Announces `data`'s serial to every target; an announcement still running is superseded. */
  notify(data: ZoneData): void {
    if (this.closed || this.targets.length === 0) return;
    this.round?.abort();
    const round = new AbortController();
    this.round = round;
    this.settled = Promise.all(this.targets.map((t) => this.tell(t, data, round.signal))).then((outcomes) => {
      const acked = outcomes.filter((r) => r.acked).map((r) => r.target);
      const failed = outcomes.filter((r) => !r.acked).map((r) => ({ target: r.target, attempts: r.attempts, reason: r.reason }));
      const fields = { zone: this.apex, serial: data.serial, acked, failed };
      if (round.signal.aborted) this.o.logger.info({ ...fields, superseded: true }, 'NOTIFY superseded by a newer version');
      else if (failed.length > 0) this.o.logger.warn(fields, 'NOTIFY not acknowledged by every secondary');
      else this.o.logger.info(fields, 'NOTIFY acknowledged');
    });
  }

  close(): void {
    this.closed = true;
    this.round?.abort();
  }

  private async tell(target: HostPort, data: ZoneData, signal: AbortSignal): Promise<Outcome> {
    const name = showHostPort(target);
    let attempts = 0;
    for (const wait of this.waits) {
      if (signal.aborted) return { target: name, acked: false, attempts, reason: 'superseded' };
      attempts++;
      const id = randomInt(0, 0x10000);
      const unsigned = notifyMessage(data, id);
      let request = unsigned;
      let requestMac: Buffer | undefined;
      if (this.key !== undefined) {
        const signed = sign(unsigned, this.key, { now: seconds(this.o.now()) });
        request = signed.msg;
        requestMac = signed.mac;
      }
      this.o.stats.notify.sent++;
      const reply = await udpExchange(target, request, (msg) => isNotifyReply(msg, request), wait, signal);
      if (reply === undefined) continue;
      const problem = this.checkReply(reply, requestMac);
      if (problem === undefined) {
        this.o.stats.notify.acked++;
        return { target: name, acked: true, attempts };
      }
      this.o.stats.notify.failed++;
      return { target: name, acked: false, attempts, reason: problem };
    }
    if (!signal.aborted) this.o.stats.notify.failed++;
    return { target: name, acked: false, attempts, reason: signal.aborted ? 'superseded' : 'no answer' };
  }

  /** undefined for a good acknowledgement, else why not. */
  private checkReply(reply: Buffer, requestMac: Buffer | undefined): string | undefined {
    const rcode = headerRcode(reply);
    let start: number | undefined;
    try {
      start = findTsigStart(reply);
    } catch {
      return 'malformed answer';
    }
    if (this.key !== undefined) {
      if (start === undefined) return rcode === RCODE.NOERROR ? 'answer not signed' : `answered ${rcodeName(rcode)} (unsigned)`;
      try {
        const tsig = readTsig(reply, start);
        const verdict = verify(reply, tsig, this.key, { now: seconds(this.o.now()), prior: requestMac });
        if (!verdict.ok) return `answered ${rcodeName(rcode)}, TSIG ${tsigErrorName(verdict.error)}: ${verdict.reason}`;
      } catch (err) {
        return `unreadable TSIG: ${(err as Error).message}`;
      }
    }
    return rcode === RCODE.NOERROR ? undefined : `answered ${rcodeName(rcode)}`;
  }
}

/** NOTIFY for the zone's SOA, with the new SOA in the answer section (§3.7: a hint the secondary may use). */
export function notifyMessage(data: ZoneData, id: number): Buffer {
  const w = new MessageWriter(512);
  const apex = textToWire(data.apex);
  w.question(apex, TYPE.SOA, CLASS.IN);
  const soa = soaRr(data);
  w.record(1, apex, TYPE.SOA, CLASS.IN, soa.ttl, soa.rdata);
  return w.finish(id, NOTIFY_FLAGS);
}

/** The answer to `request`: same ID, QR, opcode NOTIFY, the same question. */
function isNotifyReply(msg: Buffer, request: Buffer): boolean {
  if (msg.length < HEADER_SIZE || msg.readUInt16BE(0) !== request.readUInt16BE(0)) return false;
  if ((msg[2]! & QR) === 0 || opcodeOf(msg) !== OPCODE.NOTIFY) return false;
  // An error answer may leave the question out; one that has it must match.
  if (msg.readUInt16BE(4) === 0) return true;
  return sameQuestion(msg, request, questionEnd(request));
}
