// The transfer room: everything that moves a zone between servers.
//
// - Keeps each zone's versions (src/zone/versions.ts): a primary zone's from
//   discovery snapshots (update()), a secondary zone's from its primaries
//   (./secondary.ts), and hands the answer path a ZoneView per zone.
// - Answers what the pipeline routes here: AXFR/IXFR requests, NOTIFY, and
//   any query carrying a TSIG record (verified, and its answer signed).
// - Sends NOTIFY on every new version of a zone with transfer.notify.
//
// Authorization for AXFR/IXFR: the client's address must be in the zone's
// transfer.allow AND, when the zone has a tsig key, the request must be
// signed with that key (REFUSED otherwise, logged). A zone whose data is not
// vouched for (a primary past max_stale_ms or without a complete poll yet, a
// secondary past SOA expire or without a copy) is refused with SERVFAIL
// rather than handed out.

import type { Config, ZoneConfig } from '../config/types.js';
import { createAdmit, hostCidr, type Admit } from '../dns/admit.js';
import type { Client, Reply } from '../dns/pipeline.js';
import type { Logger } from '../log.js';
import { CLASS, OPCODE, RCODE, TYPE, tsigErrorName } from '../wire/codes.js';
import { isInZone } from '../wire/name.js';
import type { Query } from '../wire/query.js';
import { readRecords, SECTION } from '../wire/records.js';
import { opcodeOfFlags } from '../wire/header.js';
import { headerOnlyReply, truncatedReply, udpLimit } from '../wire/reply.js';
import { STALE_TTL, type ZoneView } from '../zone/answers.js';
import { decodeSoa, type ZoneData } from '../zone/data.js';
import { primaryData } from '../zone/from-snapshot.js';
import { serialGe } from '../zone/serial.js';
import type { Snapshot } from '../zone/snapshot.js';
import { ZoneVersions, type Offered } from '../zone/versions.js';
import { readRdata } from '../wire/rdata.js';
import { readName, wireToText } from '../wire/name.js';
import { showHostPort } from '../config/net.js';
import { Notifier } from './notify.js';
import { axfrStream, forRequest, ixfrStream } from './outgoing.js';
import { SecondaryZone, type SecondaryOptions } from './secondary.js';
import { TransferStats } from './stats.js';
import { errorAnswer, readTsig, seconds, sign, StreamSigner, tsigKey, verify, type TsigKey, type TsigRecord, type Verdict } from './tsig.js';

export interface TransferRoomOptions {
  readonly logger: Logger;
  /** Clock (epoch ms): serials, TSIG times, secondary expiry. */
  readonly now?: () => number;
  /** Per-attempt waits for NOTIFY retries (tests shorten them). */
  readonly notifyWaitsMs?: readonly number[];
  readonly secondary?: Partial<Pick<SecondaryOptions, 'limits' | 'history' | 'timeouts'>>;
}

/** The plain answer to a query, as the pipeline would give it without the TSIG record. */
export type PlainAnswer = () => Reply | Promise<Reply>;

interface PrimaryState {
  readonly kind: 'primary';
  readonly config: ZoneConfig;
  readonly versions: ZoneVersions;
  offered: Offered | undefined;
  /** The snapshot is past max_stale_ms: not vouched for, whatever the names. */
  expired: boolean;
  stale: boolean;
  notifier: Notifier | undefined;
}

interface SecondaryState {
  readonly kind: 'secondary';
  readonly config: ZoneConfig;
  readonly zone: SecondaryZone;
}

type ZoneState = PrimaryState | SecondaryState;

/** A reloaded config's transfer side, built by TransferRoom.prepare() and not running until commit(). */
export interface TransferPlan {
  /** The answer path's view of the plan's zones for `snapshot`; NOTIFY for new versions waits for commit(). */
  views(snapshot: Snapshot): ZoneView[];
}

class Plan implements TransferPlan {
  /** Primary zones whose views() made a new version: told at commit. */
  readonly announce = new Map<PrimaryState, ZoneData>();

  constructor(
    readonly room: TransferRoom,
    readonly zones: ReadonlyMap<string, ZoneState>,
    readonly access: ReadonlyMap<string, Access>,
    readonly peers: Admit,
    private readonly render: (zones: ReadonlyMap<string, ZoneState>, snapshot: Snapshot, announce: (z: PrimaryState, data: ZoneData) => void) => ZoneView[],
  ) {}

  views(snapshot: Snapshot): ZoneView[] {
    return this.render(this.zones, snapshot, (z, data) => this.announce.set(z, data));
  }
}

interface Access {
  readonly allow: Admit | undefined;
  readonly key: TsigKey | undefined;
}

const LOG_EVERY_MS = 60_000;
const MAX_LOG_KEYS = 1024;

export class TransferRoom {
  readonly stats = new TransferStats();
  private zones: ReadonlyMap<string, ZoneState> = new Map();
  private access: ReadonlyMap<string, Access> = new Map();
  /** Who may have a signature checked at all (see peersOf). */
  private peers: Admit = () => false;
  private readonly listeners = new Set<() => void>();
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly logged = new Map<string, number>();
  private started = false;

  constructor(
    config: Config,
    private readonly o: TransferRoomOptions,
  ) {
    this.log = o.logger.child({ component: 'transfer' });
    this.now = o.now ?? Date.now;
    this.commit(this.prepare(config));
  }

  /** Secondary zones changed (a transfer landed, the zone expired or came back). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts fetching secondary zones. */
  start(): void {
    this.started = true;
    for (const z of this.zones.values()) if (z.kind === 'secondary') z.zone.start();
  }

  /**
   * Builds a (re)loaded config's transfer side without touching the running
   * one: keys, access lists, a copy of each kept primary zone's versions, new
   * secondary zones (not started) and notifiers. Nothing runs until commit();
   * a plan that is never committed is simply dropped. Versions and serials
   * survive for zones that stay primary; a secondary zone keeps its copy
   * while its primaries and key are unchanged (and is seeded with it when
   * they change).
   */
  prepare(config: Config): TransferPlan {
    const zones = new Map<string, ZoneState>();
    const access = new Map<string, Access>();
    for (const zc of config.zones) {
      const key = zc.tsig === undefined ? undefined : tsigKey(zc.tsig);
      access.set(zc.name, { allow: zc.transfer === undefined ? undefined : createAdmit(zc.transfer.allow), key });
      const old = this.zones.get(zc.name);
      if (zc.primaries !== undefined) {
        if (old?.kind === 'secondary' && sameSecondary(old.config, zc)) {
          zones.set(zc.name, { kind: 'secondary', config: zc, zone: old.zone });
          continue;
        }
        const zone = new SecondaryZone(zc, zc.primaries, key, {
          logger: this.log,
          stats: this.stats,
          now: this.now,
          ...this.o.secondary,
          onChange: () => this.emit(),
        });
        // New primaries or key: keep serving the copy we have until they answer.
        if (old?.kind === 'secondary') zone.seed(old.zone);
        zones.set(zc.name, { kind: 'secondary', config: zc, zone });
      } else {
        const versions = old?.kind === 'primary' ? old.versions.copy() : new ZoneVersions();
        const keepNotifier = old?.kind === 'primary' && JSON.stringify([old.config.transfer?.notify, old.config.tsig]) === JSON.stringify([zc.transfer?.notify, zc.tsig]);
        const notifier = keepNotifier
          ? old.notifier
          : zc.transfer !== undefined && zc.transfer.notify.length > 0
            ? new Notifier(zc.name, zc.transfer.notify, key, { logger: this.log, stats: this.stats, now: this.now, ...(this.o.notifyWaitsMs ? { waitsMs: this.o.notifyWaitsMs } : {}) })
            : undefined;
        zones.set(zc.name, { kind: 'primary', config: zc, versions, offered: undefined, expired: false, stale: false, notifier });
      }
    }
    return new Plan(this, zones, access, peersOf(config), (zs, snapshot, announce) => this.viewsOf(zs, snapshot, announce));
  }

  /**
   * Makes a prepared plan the running state: starts its new secondary zones,
   * stops the ones it replaced, closes replaced notifiers, and sends the
   * NOTIFYs its views() held back.
   */
  commit(plan: TransferPlan): void {
    if (!(plan instanceof Plan) || plan.room !== this) throw new Error('not a plan of this transfer room');
    const next = plan.zones;
    for (const [name, old] of this.zones) {
      const kept = next.get(name);
      if (old.kind === 'secondary') {
        if (kept?.kind !== 'secondary' || kept.zone !== old.zone) void old.zone.stop();
      } else if (kept?.kind !== 'primary' || kept.notifier !== old.notifier) {
        old.notifier?.close();
      }
    }
    const previous = this.zones;
    this.zones = next;
    this.access = plan.access;
    this.peers = plan.peers;
    for (const [name, z] of next) {
      const was = previous.get(name);
      if (z.kind === 'secondary' && this.started && (was?.kind !== 'secondary' || was.zone !== z.zone)) z.zone.start();
    }
    for (const [z, data] of plan.announce) z.notifier?.notify(data);
    plan.announce.clear();
  }

  /**
   * The answer path's view of every zone, given the latest snapshot. Primary
   * zones are versioned here: a new version (new serial) when their records
   * changed, and a NOTIFY to their secondaries.
   */
  update(snapshot: Snapshot): ZoneView[] {
    return this.viewsOf(this.zones, snapshot, (z, data) => z.notifier?.notify(data));
  }

  /** update() for the running zones or a plan's. */
  private viewsOf(zones: ReadonlyMap<string, ZoneState>, snapshot: Snapshot, announce: (z: PrimaryState, data: ZoneData) => void): ZoneView[] {
    const views: ZoneView[] = [];
    for (const z of zones.values()) {
      if (z.kind === 'secondary') {
        views.push(z.zone.view());
        continue;
      }
      const offered = z.versions.offer(z.config, primaryData(z.config, snapshot), this.now());
      z.offered = offered;
      z.expired = snapshot.expired === true;
      z.stale = snapshot.stale === true;
      if (offered.changed) {
        this.log.info({ zone: z.config.name, serial: offered.serving.serial, records: offered.serving.size }, 'zone version');
        announce(z, offered.serving);
      }
      views.push({
        name: z.config.name,
        data: offered.serving,
        withheld: offered.withheld,
        ...(z.stale ? { ttlCap: STALE_TTL } : {}),
      });
    }
    return views;
  }

  /** The version a zone would be transferred as now, or undefined when it is not vouched for. */
  transferable(name: string): ZoneData | undefined {
    const z = this.zones.get(name);
    if (z === undefined) return undefined;
    if (z.kind === 'secondary') return z.zone.transferable();
    if (z.expired || z.offered === undefined || z.offered.withheld.size > 0) return undefined;
    return z.versions.current;
  }

  /**
   * Each zone's current serial, for /metrics and /status: comparing it across
   * a fleet answers "did the last move reach every host?". Undefined for a
   * primary zone before its first complete poll and a secondary without a copy.
   */
  serials(): Array<{ readonly zone: string; readonly role: 'primary' | 'secondary'; readonly serial: number | undefined }> {
    return [...this.zones.values()].map((z) =>
      z.kind === 'secondary'
        ? { zone: z.config.name, role: 'secondary', serial: z.zone.versions.current?.serial }
        : { zone: z.config.name, role: 'primary', serial: z.versions.current?.serial },
    );
  }

  /** For /ready: secondary zones that hold no copy yet (their names answer SERVFAIL). */
  waiting(): string[] {
    const out: string[] = [];
    for (const z of this.zones.values()) {
      if (z.kind === 'secondary' && z.zone.versions.current === undefined) {
        out.push(`zone ${z.config.name}: waiting for the first transfer from ${z.config.primaries!.map(showHostPort).join(', ')}`);
      }
    }
    return out;
  }

  /** For tests and the benchmark: a secondary zone by name. */
  secondary(name: string): SecondaryZone | undefined {
    const z = this.zones.get(name);
    return z?.kind === 'secondary' ? z.zone : undefined;
  }

  /** For tests: the notifier of a primary zone. */
  notifier(name: string): Notifier | undefined {
    const z = this.zones.get(name);
    return z?.kind === 'primary' ? z.notifier : undefined;
  }

  /**
   * An SOA query at a zone apex from an address in that zone's transfer.allow
   * may be answered even outside acl.allow: secondaries check the serial
   * before they transfer (BIND and Knot do), and refusing that would stop them.
   */
  admitsSerialCheck(q: Query, address: string): boolean {
    if (q.type !== TYPE.SOA) return false;
    return this.access.get(q.name)?.allow?.(address) === true;
  }

  async close(): Promise<void> {
    for (const z of this.zones.values()) {
      if (z.kind === 'secondary') await z.zone.stop();
      else z.notifier?.close();
    }
  }

  // ---- the pipeline's hook ------------------------------------------------------

  /** AXFR, IXFR, NOTIFY, and signed queries. */
  handle(msg: Buffer, q: Query, client: Client, plain: PlainAnswer): Reply | Promise<Reply> {
    let signed: { key: TsigKey; tsig: TsigRecord } | undefined;
    if (q.tsig !== undefined) {
      // A stranger gets no HMAC over up to 64 KiB and no TSIG error answer
      // to reflect at a spoofed source: plain REFUSED, as for any query
      // from outside acl.allow.
      if (!this.peers(client.address)) {
        this.stats.tsigStrangers++;
        this.warnLimited(`stranger|${client.address}`, { client: client.address, qname: q.name }, 'signed message from outside acl.allow, every transfer.allow and every primary; refused unverified');
        return this.bare(msg, q, RCODE.REFUSED);
      }
      let tsig: TsigRecord;
      try {
        tsig = readTsig(msg, q.tsig);
      } catch (err) {
        return this.bare(msg, q, RCODE.FORMERR);
      }
      const key = this.keyFor(q.name, tsig.keyName);
      const verdict = verify(msg, tsig, key, { now: seconds(this.now()) });
      if (!verdict.ok) return this.tsigError(msg, q, client, verdict, key);
      signed = { key: key!, tsig };
    }
    const opcode = opcodeOfFlags(q.flags);
    if (opcode === OPCODE.NOTIFY) return this.notifyIn(msg, q, client, signed);
    if (q.type === TYPE.AXFR || q.type === TYPE.IXFR) return this.transferOut(msg, q, client, signed);
    // An ordinary query that came signed: answer it as usual, signed.
    if (signed === undefined) return plain();
    if (![...this.zones.keys()].some((apex) => isInZone(q.name, apex))) return this.signedBare(msg, q, RCODE.REFUSED, signed);
    const reply = plain();
    const seal = (r: Reply): Reply => (Buffer.isBuffer(r) ? this.sealFitted(r, msg, q, client, signed) : r);
    return reply instanceof Promise ? reply.then(seal) : seal(reply);
  }

  /**
   * Signs an answer that was sized for the client's UDP size without its
   * TSIG record. When the record does not fit too, RFC 8945 §5.3: truncate,
   * keeping the TSIG (header with TC, the question, signed), so the client
   * asks again over TCP rather than getting a datagram it cannot take.
   */
  private sealFitted(reply: Buffer, msg: Buffer, q: Query, client: Client, signed: { key: TsigKey; tsig: TsigRecord }): Buffer {
    const sealed = this.sealOne(reply, signed);
    if (client.transport !== 'udp' || sealed.length <= udpLimit(q.edns)) return sealed;
    const bare = truncatedReply(reply, msg, q);
    return this.sealOne(bare, signed);
  }

  private transferOut(msg: Buffer, q: Query, client: Client, signed: { key: TsigKey; tsig: TsigRecord } | undefined): Reply {
    const kind = q.type === TYPE.AXFR ? 'AXFR' : 'IXFR';
    const zone = this.zones.get(q.name);
    const access = this.access.get(q.name);
    const fields = { zone: q.name, client: client.address, kind };
    const refuse = (reason: string): Reply => {
      this.stats.refused++;
      this.warnLimited(`refused|${q.name}|${client.address}|${reason}`, { ...fields, reason }, 'zone transfer refused');
      return this.signedBare(msg, q, RCODE.REFUSED, signed);
    };
    if (q.qclass !== CLASS.IN) return refuse('class is not IN');
    if (zone === undefined || access?.allow === undefined) return refuse('zone has no transfer.allow');
    if (!access.allow(client.address)) return refuse('address not in transfer.allow');
    if (access.key !== undefined && signed === undefined) return refuse(`request not signed (zone requires key ${access.key.name})`);
    if (access.key !== undefined && signed!.key !== access.key) return refuse(`signed with key ${signed!.key.name}, zone requires ${access.key.name}`);
    const data = this.transferable(q.name);
    if (data === undefined) {
      this.stats.notVouched++;
      this.warnLimited(`unvouched|${q.name}`, fields, 'zone transfer answered SERVFAIL: the zone data is not vouched for (expired or incomplete)');
      return this.signedBare(msg, q, RCODE.SERVFAIL, signed);
    }
    let stream: readonly Buffer[];
    if (kind === 'AXFR') {
      // RFC 5936 §4.2: AXFR is a TCP exchange.
      if (client.transport === 'udp') return this.signedBare(msg, q, RCODE.FORMERR, signed);
      stream = axfrStream(data);
      this.stats.served.axfr++;
      this.log.debug({ ...fields, serial: data.serial, messages: stream.length }, 'AXFR');
    } else {
      const theirs = clientSerial(msg, q);
      if (theirs === undefined) return this.signedBare(msg, q, RCODE.FORMERR, signed);
      const versions = this.versionsOf(q.name)!;
      const changes = serialGe(theirs, data.serial) ? [] : versions.changesSince(theirs);
      if (client.transport === 'udp' || (changes !== undefined && changes.length === 0)) {
        // Up to date, or over UDP (RFC 1995 §2: the SOA alone says "use TCP").
        stream = ixfrStream(data, []);
        this.stats.served.ixfrUpToDate++;
      } else {
        stream = ixfrStream(data, changes);
        if (changes === undefined) this.stats.served.ixfrAsFull++;
        else this.stats.served.ixfr++;
      }
      this.log.debug({ ...fields, theirs, serial: data.serial, incremental: changes !== undefined }, 'IXFR');
    }
    const out = stream.map((m, i) => forRequest(m, msg, q.id, q.questionEnd, i === 0));
    if (signed === undefined) return out;
    const signer = new StreamSigner(signed.key, signed.tsig.mac, () => seconds(this.now()));
    return out.map((m) => signer.sign(m));
  }

  private notifyIn(msg: Buffer, q: Query, client: Client, signed: { key: TsigKey; tsig: TsigRecord } | undefined): Reply {
    const zone = this.zones.get(q.name);
    const access = this.access.get(q.name);
    const fields = { zone: q.name, client: client.address };
    const refuse = (reason: string, rcode: number = RCODE.REFUSED): Reply => {
      this.stats.notify.refused++;
      this.warnLimited(`notify|${q.name}|${client.address}|${reason}`, { ...fields, reason }, 'NOTIFY refused');
      return this.signedBare(msg, q, rcode, signed, true);
    };
    if (q.type !== TYPE.SOA) return refuse(`QTYPE ${q.type}, not SOA`, RCODE.FORMERR);
    if (zone?.kind !== 'secondary') return refuse('not a secondary zone here', RCODE.NOTAUTH);
    if (!zone.zone.isPrimary(client.address)) return refuse('sender is not one of the zone\'s primaries');
    if (access?.key !== undefined && signed === undefined) return refuse(`not signed (zone requires key ${access.key.name})`);
    if (access?.key !== undefined && signed!.key !== access.key) return refuse(`signed with key ${signed!.key.name}, zone requires ${access.key.name}`);
    this.stats.notify.received++;
    this.log.debug(fields, 'NOTIFY received');
    zone.zone.notified();
    return this.signedBare(msg, q, RCODE.NOERROR, signed, true);
  }

  private tsigError(msg: Buffer, q: Query, client: Client, verdict: Extract<Verdict, { ok: false }>, key: TsigKey | undefined): Reply {
    this.stats.tsigFailures++;
    const t = verdict.tsig;
    this.warnLimited(
      `tsig|${client.address}|${verdict.error}`,
      { client: client.address, qname: q.name, key: t.keyName, error: tsigErrorName(verdict.error), reason: verdict.reason },
      'TSIG verification failed; refused',
    );
    if (verdict.rcode === RCODE.FORMERR) return this.bare(msg, q, RCODE.FORMERR);
    return errorAnswer(this.header(msg, q, RCODE.NOTAUTH, false), t, verdict.error, key, seconds(this.now()));
  }

  private sealOne(reply: Buffer, signed: { key: TsigKey; tsig: TsigRecord }): Buffer {
    return sign(reply, signed.key, { now: seconds(this.now()), prior: signed.tsig.mac }).msg;
  }

  private signedBare(msg: Buffer, q: Query, rcode: number, signed: { key: TsigKey; tsig: TsigRecord } | undefined, aa = false): Buffer {
    const reply = this.header(msg, q, rcode, aa);
    return signed === undefined ? reply : this.sealOne(reply, signed);
  }

  private bare(msg: Buffer, q: Query, rcode: number): Buffer {
    return this.header(msg, q, rcode, false);
  }

  private header(msg: Buffer, q: Query, rcode: number, aa: boolean): Buffer {
    return headerOnlyReply(msg, { id: q.id, queryFlags: q.flags, rcode, questionEnd: q.questionEnd, edns: q.edns, ra: true, aa });
  }

  private keyFor(name: string, keyName: string): TsigKey | undefined {
    let fallback: TsigKey | undefined;
    for (const [apex, a] of this.access) {
      if (a.key?.name !== keyName) continue;
      if (isInZone(name, apex)) return a.key;
      fallback ??= a.key;
    }
    return fallback;
  }

  private versionsOf(name: string): ZoneVersions | undefined {
    const z = this.zones.get(name);
    return z === undefined ? undefined : z.kind === 'primary' ? z.versions : z.zone.versions;
  }

  private emit(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err }, 'zone change listener threw');
      }
    }
  }

  /** One line per key per minute: a client retrying every second must not flood the log. */
  private warnLimited(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const last = this.logged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    if (this.logged.size >= MAX_LOG_KEYS) this.logged.clear();
    this.logged.set(key, now);
    this.log.warn(fields, message);
  }
}

/**
 * The addresses whose signed messages are verified: acl.allow (signed
 * queries), every zone's transfer.allow (signed transfers), every secondary
 * zone's primaries (signed NOTIFY).
 */
function peersOf(config: Config): Admit {
  const cidrs = [...config.acl.allow];
  for (const z of config.zones) {
    if (z.transfer !== undefined) cidrs.push(...z.transfer.allow);
    for (const p of z.primaries ?? []) cidrs.push(hostCidr(p.host));
  }
  return createAdmit(cidrs);
}

function sameSecondary(a: ZoneConfig, b: ZoneConfig): boolean {
  return JSON.stringify([a.primaries, a.tsig, a.soa]) === JSON.stringify([b.primaries, b.tsig, b.soa]);
}

/** The serial in an IXFR request's authority SOA (RFC 1995 §3), undefined when there is none. */
function clientSerial(msg: Buffer, q: Query): number | undefined {
  try {
    for (const r of readRecords(msg, q.questionEnd)) {
      if (r.section !== SECTION.AUTHORITY || r.type !== TYPE.SOA) continue;
      if (wireToText(readName(msg, r.owner).wire) !== q.name) continue;
      return decodeSoa(readRdata(msg, TYPE.SOA, r.rdataAt, r.rdlength)).serial;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

