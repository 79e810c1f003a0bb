// A secondary zone (`zones[].primaries`): its data comes from the primaries
// by zone transfer, never from EC2.
//
// - At start, then at the SOA refresh interval, and at once on a NOTIFY from a
//   primary: ask for IXFR when we hold a copy (AXFR when not). An IXFR answer
//   that is not incremental, or whose deletions do not match our copy, is
//   taken as a full copy or retried as AXFR at once.
// - Primaries are tried in order, as upstream servers are; after every one
//   failed, again at the SOA retry interval.
// - A failed or refused transfer keeps the old copy. A copy whose serial is
//   not greater than ours is not taken (RFC 1982).
// - Past the SOA expire time with no primary answering, the zone answers
//   SERVFAIL (a ZoneView without data), as a primary does past max_stale_ms.
//   "Answering" means a successful transfer or an up-to-date answer.
//
// One refresh runs at a time; a NOTIFY during one queues exactly one more.
//
// The primary's SOA timers are clamped from below before they are used (see
// SOA_FLOOR): a Knot, BIND or NSD primary sends whatever its zone file says,
// and refresh 0 would be a new IXFR connection every event-loop turn.

import { randomInt } from 'node:crypto';
import { SOA_FLOOR, type HostPort, type SoaTimers, type ZoneConfig } from '../config/types.js';
import { createAdmit, hostCidr, type Admit } from '../dns/admit.js';
import type { Logger } from '../log.js';
import { CLASS, RCODE, rcodeName, TYPE } from '../wire/codes.js';
import { headerRcode, HEADER_SIZE } from '../wire/header.js';
import { textToWire } from '../wire/name.js';
import { MessageWriter } from '../wire/writer.js';
import { soaRr, type ZoneData } from '../zone/data.js';
import type { ZoneView } from '../zone/answers.js';
import { DEFAULT_HISTORY, ZoneVersions, type HistoryLimits } from '../zone/versions.js';
import { showHostPort } from '../config/net.js';
import { DEFAULT_STREAM_TIMEOUTS, tcpExchange, type StreamTimeouts } from './client.js';
import { DEFAULT_TRANSFER_LIMITS, TransferError, TransferReader, type TransferLimits, type TransferResult } from './incoming.js';
import type { TransferStats } from './stats.js';
import { peerTsigError, seconds, sign, StreamVerifier, type TsigKey } from './tsig.js';

/** Node timers overflow past 2^31-1 ms (and then fire at once). */
const MAX_TIMER_MS = 2_147_483_647;

export interface SecondaryOptions {
  readonly logger: Logger;
  readonly stats: TransferStats;
  /** Clock (epoch ms) for expiry and TSIG times; timers stay real. */
  readonly now: () => number;
  /** A new copy landed, or the zone expired or came back: its answers change. */
  readonly onChange?: () => void;
  readonly limits?: TransferLimits;
  readonly history?: HistoryLimits;
  readonly timeouts?: StreamTimeouts;
}

type Outcome = { readonly ok: true; readonly result: TransferResult['kind'] } | { readonly ok: false };

export class SecondaryZone {
  readonly versions: ZoneVersions;
  private lastContact: number | undefined;
  private expired = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private readonly primaryAdmit: Admit;
  private failing = false;
  /** The last clamped timers logged, so a clamp is one line per change, not one per refresh. */
  private clampLogged: string | undefined;

  constructor(
    readonly zone: ZoneConfig,
    private readonly primaries: readonly HostPort[],
    private readonly key: TsigKey | undefined,
    private readonly o: SecondaryOptions,
  ) {
    this.versions = new ZoneVersions(o.history ?? DEFAULT_HISTORY);
    this.log = o.logger.child({ zone: zone.name });
    this.primaryAdmit = createAdmit(primaries.map((p) => hostCidr(p.host)));
  }

  /** What the answer path serves: nothing before the first copy and past expire. */
  view(): ZoneView {
    return { name: this.zone.name, data: this.expired ? undefined : this.versions.current };
  }

  /** The copy we would hand on (undefined when there is none or it expired). */
  transferable(): ZoneData | undefined {
    return this.expired ? undefined : this.versions.current;
  }

  /** Takes over another instance's copy and contact time (a reload that changed primaries or key). */
  seed(from: SecondaryZone): void {
    this.versions.reset(from.versions.current);
    this.lastContact = from.lastContact;
    this.expired = from.expired;
  }

  start(): void {
    void this.refresh();
  }

  /** A NOTIFY from one of our primaries: refresh now (or right after the one running). */
  notified(): void {
    void this.refresh();
  }

  /** The SOA timers in use: the copy's (or the config's before one), clamped to SOA_FLOOR. */
  timers(): SoaTimers {
    const soa = this.versions.current?.soa ?? this.zone.soa;
    const timers = {
      refresh: Math.max(soa.refresh, SOA_FLOOR.refresh),
      retry: Math.max(soa.retry, SOA_FLOOR.retry),
      expire: Math.max(soa.expire, SOA_FLOOR.expire),
    };
    const clamped = timers.refresh !== soa.refresh || timers.retry !== soa.retry || timers.expire !== soa.expire;
    const key = clamped ? JSON.stringify([soa.refresh, soa.retry, soa.expire]) : undefined;
    if (key !== undefined && key !== this.clampLogged) {
      this.log.warn(
        { serial: this.versions.current?.serial, refresh: soa.refresh, retry: soa.retry, expire: soa.expire, using: timers },
        'the primary\'s SOA timers are below the floor; using the floor',
      );
    }
    this.clampLogged = key;
    return timers;
  }

  /** A NOTIFY's source is one of our primaries (by address, however IPv6 is spelled). */
  isPrimary(address: string): boolean {
    return this.primaryAdmit(address);
  }

  /** Runs one refresh now, or queues one after the refresh in flight; resolves when it is done. */
  refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = this.cycle().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.refresh();
      }
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.abort.abort();
    await this.running;
  }

  private async cycle(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const primary of this.primaries) {
      if (this.stopped) return;
      const outcome = await this.fromPrimary(primary);
      if (outcome.ok) {
        this.contact();
        this.schedule(this.timers().refresh);
        return;
      }
    }
    if (this.stopped) return;
    this.o.stats.fetched.failed++;
    this.checkExpiry();
    this.schedule(this.timers().retry);
  }

  /** One primary: IXFR (or AXFR without a copy); AXFR again at once when an IXFR cannot be used. */
  private async fromPrimary(primary: HostPort): Promise<Outcome> {
    const current = this.versions.current;
    const kinds = current === undefined ? [TYPE.AXFR] : [TYPE.IXFR, TYPE.AXFR];
    for (const qtype of kinds) {
      try {
        const result = await this.transfer(primary, qtype, current);
        this.take(result, primary);
        if (this.failing) this.log.info({ primary: showHostPort(primary), serial: this.versions.current?.serial }, 'zone transfers working again');
        this.failing = false;
        return { ok: true, result: result.kind };
      } catch (err) {
        if (this.stopped) return { ok: false };
        const message = (err as Error).message;
        const last = qtype === kinds[kinds.length - 1];
        // Logged once per failing spell (then at debug), so a dead primary is one line, not one per retry.
        const giveUp = last || !(err instanceof TransferError) || err.transport;
        this.log[giveUp && this.failing ? 'debug' : 'warn'](
          { primary: showHostPort(primary), kind: qtype === TYPE.IXFR ? 'IXFR' : 'AXFR', err: message },
          giveUp ? 'zone transfer failed' : 'IXFR failed; trying AXFR',
        );
        if (giveUp) this.failing = true;
        // A primary that cannot be reached will not serve AXFR either: on to the next one.
        if (!(err instanceof TransferError) || err.transport) return { ok: false };
      }
    }
    return { ok: false };
  }

  private take(result: TransferResult, primary: HostPort): void {
    const current = this.versions.current;
    const from = showHostPort(primary);
    if (result.kind === 'up-to-date') {
      this.o.stats.fetched.upToDate++;
      this.log.debug({ primary: from, serial: result.serial }, 'zone up to date');
      return;
    }
    const next = result.data;
    if (current !== undefined && next.serial === current.serial) return;
    const taken = result.kind === 'incremental' ? this.versions.push(next, result.steps === 1 ? result : undefined) : this.versions.push(next);
    if (!taken) {
      this.log.warn({ primary: from, serial: next.serial, ours: current?.serial }, 'primary sent an older serial; keeping our copy');
      return;
    }
    if (result.kind === 'incremental') this.o.stats.fetched.ixfr++;
    else this.o.stats.fetched.axfr++;
    this.log.info(
      { primary: from, serial: next.serial, previous: current?.serial ?? null, kind: result.kind === 'incremental' ? 'IXFR' : 'AXFR', records: next.size },
      'zone transferred',
    );
    this.emit();
  }

  private contact(): void {
    this.lastContact = this.o.now();
    if (this.expired) {
      this.expired = false;
      this.log.info({ serial: this.versions.current?.serial }, 'zone answered again after expiring');
      this.emit();
    }
  }

  private checkExpiry(): void {
    const data = this.versions.current;
    if (data === undefined || this.expired || this.lastContact === undefined) return;
    const age = this.o.now() - this.lastContact;
    const expire = this.timers().expire;
    if (age <= expire * 1000) return;
    this.expired = true;
    this.log.error({ serial: data.serial, ageMs: age, expireS: expire }, 'no primary answered within the SOA expire time: answering SERVFAIL for the zone');
    this.emit();
  }

  private schedule(intervalS: number): void {
    if (this.stopped) return;
    let wait = intervalS * 1000;
    // Wake up in time to expire the zone, not a refresh interval late.
    const data = this.versions.current;
    if (data !== undefined && this.lastContact !== undefined && !this.expired) {
      wait = Math.min(wait, Math.max(1, this.lastContact + this.timers().expire * 1000 - this.o.now() + 1));
    }
    this.timer = setTimeout(() => void this.refresh(), Math.min(wait, MAX_TIMER_MS));
    this.timer.unref();
  }

  private emit(): void {
    this.o.onChange?.();
  }

  private async transfer(primary: HostPort, qtype: number, current: ZoneData | undefined): Promise<TransferResult> {
    const id = randomInt(0, 0x10000);
    let request = transferRequest(this.zone.name, id, qtype, current);
    let verifier: StreamVerifier | undefined;
    if (this.key !== undefined) {
      const signed = sign(request, this.key, { now: seconds(this.o.now()) });
      request = signed.msg;
      verifier = new StreamVerifier(this.key, signed.mac, () => seconds(this.o.now()));
    }
    const reader = new TransferReader(this.zone.name, id, qtype, qtype === TYPE.IXFR ? current : undefined, this.o.limits ?? DEFAULT_TRANSFER_LIMITS);
    await tcpExchange(
      primary,
      request,
      (msg) => {
        if (reader.messagesRead === 0 && msg.length >= HEADER_SIZE && headerRcode(msg) !== RCODE.NOERROR) {
          // Error answers (REFUSED, NOTAUTH for a key problem) may come unsigned: say what was said.
          const rcode = headerRcode(msg);
          throw new TransferError(`primary answered ${rcodeName(rcode)}${peerTsigError(msg)}`, rcode);
        }
        // The signature first: unsigned or forged bytes are not even parsed as zone data.
        const problem = verifier?.next(msg);
        if (problem !== undefined) throw new TransferError(problem);
        const done = reader.push(msg);
        if (done && verifier !== undefined) {
          const end = verifier.finish();
          if (end !== undefined) throw new TransferError(end);
        }
        return done;
      },
      this.o.timeouts ?? DEFAULT_STREAM_TIMEOUTS,
      this.abort.signal,
    );
    if (reader.ignored > 0) this.log.warn({ primary: showHostPort(primary), ignored: reader.ignored }, 'ignored records outside the zone');
    return reader.result();
  }
}

/** An AXFR or IXFR request; IXFR carries our SOA in the authority section (RFC 1995 §3). */
export function transferRequest(apex: string, id: number, qtype: number, current: ZoneData | undefined): Buffer {
  const w = new MessageWriter(1024);
  const name = textToWire(apex);
  w.question(name, qtype, CLASS.IN);
  if (qtype === TYPE.IXFR && current !== undefined) {
    const soa = soaRr(current);
    w.record(2, name, TYPE.SOA, CLASS.IN, soa.ttl, soa.rdata);
  }
  return w.finish(id, 0);
}
