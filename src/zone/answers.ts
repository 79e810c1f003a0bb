// Answers for the private zones, derived from one discovery snapshot. An
// instance of ZoneAnswers never changes its mind: when discovery publishes a
// new snapshot the server builds a new one and swaps it in, so the encoded
// replies cached here are valid for as long as this object is current.

import dns2 from 'dns2';
import type { ZoneConfig } from '../config/types.js';
import { RCODE, TYPE } from '../wire/codes.js';
import type { Snapshot } from './snapshot.js';

const { Packet } = dns2;
type Resource = InstanceType<typeof Packet.Resource>;

/** SOA/NS target: RFC 6761 reserves .invalid, so nobody mistakes it for a host. */
const SERVER_NAME = 'eipdns.invalid';
/** TTL while discovery is failing: clients come back soon for fresher data. */
export const STALE_TTL = 1;
/** Bounds memory when a client walks random names under a zone. */
const MAX_CACHED = 4096;

export interface Template {
  /** A whole reply encoded for the lower-case question; ID 0, RD 0. */
  readonly bytes: Buffer;
  /** Where the A records sit, so they can be rotated per query. */
  readonly rotate?: { readonly start: number; readonly count: number; readonly size: number };
}

interface ZoneView {
  readonly config: ZoneConfig;
  /** Configured fqdns (answers come from the snapshot). */
  readonly names: ReadonlySet<string>;
  /** Names with static addresses: never stale, so never withheld. */
  readonly staticNames: ReadonlySet<string>;
  /** Names with records below them but none of their own (RFC 8020: NODATA, not NXDOMAIN). */
  readonly emptyNonTerminals: ReadonlySet<string>;
}

export class ZoneAnswers {
  private readonly zones: readonly ZoneView[];
  private readonly cache = new Map<string, Template>();
  /** "10.0.1.10" → fqdns that answer it, for PTR. */
  private readonly reverse = new Map<string, string[]>();

  constructor(
    zones: readonly ZoneConfig[],
    readonly snapshot: Snapshot,
    private readonly recursionAvailable: boolean,
  ) {
    // Longest apex first so nested zones win.
    this.zones = [...zones]
      .sort((a, b) => b.name.length - a.name.length)
      .map((config) => {
        const names = new Set(config.records.map((r) => r.fqdn));
        const staticNames = new Set(config.records.filter((r) => r.source.kind === 'static').map((r) => r.fqdn));
        const emptyNonTerminals = new Set<string>();
        for (const fqdn of names) {
          for (let p = parent(fqdn); p !== undefined && p !== config.name; p = parent(p)) {
            if (!names.has(p)) emptyNonTerminals.add(p);
          }
        }
        return { config, names, staticNames, emptyNonTerminals };
      });
    for (const zone of this.zones) {
      for (const fqdn of zone.names) {
        for (const ip of this.addressesOf(zone, fqdn) ?? []) {
          const list = this.reverse.get(ip);
          if (list === undefined) this.reverse.set(ip, [fqdn]);
          else if (!list.includes(fqdn)) list.push(fqdn);
        }
      }
    }
  }

  /** The private zone that owns `name` (lower case), if any. */
  zoneOf(name: string): ZoneConfig | undefined {
    for (const zone of this.zones) {
      const apex = zone.config.name;
      if (name === apex || (name.length > apex.length && name.endsWith(apex) && name[name.length - apex.length - 1] === '.')) {
        return zone.config;
      }
    }
    return undefined;
  }

  /** True when `name` is the reverse name of an address some record answers. */
  ownsReverse(name: string): boolean {
    return this.reverse.has(reverseToIp(name) ?? '');
  }

  /** The encoded answer for a name inside `zone` (see zoneOf). */
  answer(zone: ZoneConfig, name: string, type: number): Template {
    const key = `${type}|${name}`;
    let t = this.cache.get(key);
    if (t === undefined) {
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      t = this.build(zone, name, type);
      this.cache.set(key, t);
    }
    return t;
  }

  /** The encoded PTR answer for a reverse name that ownsReverse() accepted. */
  answerReverse(name: string): Template {
    const key = `ptr|${name}`;
    let t = this.cache.get(key);
    if (t === undefined) {
      const targets = this.reverse.get(reverseToIp(name) ?? '') ?? [];
      const ttl = Math.min(...targets.map((fqdn) => this.ttlOf(fqdn)));
      t = this.encode(name, TYPE.PTR, RCODE.NOERROR, targets.map((domain) => {
        const r = new Packet.Resource(name, TYPE.PTR, 1, ttl);
        r.domain = domain;
        return r;
      }), []);
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.cache.set(key, t);
    }
    return t;
  }

  /** Encodes answers for every configured name now, so the first query pays nothing. */
  warm(): void {
    for (const zone of this.zones) {
      for (const fqdn of zone.names) this.answer(zone.config, fqdn, TYPE.A);
    }
  }

  private build(zone: ZoneConfig, name: string, type: number): Template {
    const view = this.zones.find((z) => z.config === zone)!;
    const ttl = this.snapshot.stale ? Math.min(zone.ttl, STALE_TTL) : zone.ttl;
    const soa = () => [this.soa(zone, ttl)];

    if (name === zone.name) {
      if (type === TYPE.SOA || type === TYPE.ANY) return this.encode(name, type, RCODE.NOERROR, soa(), []);
      if (type === TYPE.NS) {
        const ns = new Packet.Resource(name, TYPE.NS, 1, ttl);
        ns.ns = SERVER_NAME;
        return this.encode(name, type, RCODE.NOERROR, [ns], []);
      }
      return this.encode(name, type, RCODE.NOERROR, [], soa());
    }
    if (view.names.has(name)) {
      // AAAA and other types have no data whatever EC2 says: NODATA even before discovery.
      if (type !== TYPE.A && type !== TYPE.ANY) return this.encode(name, type, RCODE.NOERROR, [], soa());
      const addresses = this.addressesOf(view, name);
      if (addresses === undefined) return this.encode(name, type, RCODE.SERVFAIL, [], [], false);
      if (addresses.length === 0) return this.encode(name, type, RCODE.NOERROR, [], soa());
      const answers = addresses.map((address) => {
        const r = new Packet.Resource(name, TYPE.A, 1, ttl);
        r.address = address;
        return r;
      });
      return this.encode(name, type, RCODE.NOERROR, answers, []);
    }
    if (view.emptyNonTerminals.has(name)) return this.encode(name, type, RCODE.NOERROR, [], soa());
    return this.encode(name, type, RCODE.NXDOMAIN, [], soa());
  }

  /** undefined: no trustworthy data (none yet, or older than max_stale). */
  private addressesOf(zone: ZoneView, fqdn: string): readonly string[] | undefined {
    if (this.snapshot.expired && !zone.staticNames.has(fqdn)) return undefined;
    return this.snapshot.records.get(fqdn);
  }

  private ttlOf(fqdn: string): number {
    const zone = this.zoneOf(fqdn);
    const ttl = zone?.ttl ?? STALE_TTL;
    return this.snapshot.stale ? Math.min(ttl, STALE_TTL) : ttl;
  }

  private soa(zone: ZoneConfig, ttl: number): Resource {
    const r = new Packet.Resource(zone.name, TYPE.SOA, 1, ttl);
    r.primary = SERVER_NAME;
    r.admin = `hostmaster.${SERVER_NAME}`;
    // The serial moves with the data so a secondary (or a curious operator) can tell.
    r.serial = this.snapshot.generation >>> 0;
    r.refresh = 3600;
    r.retry = 600;
    r.expiration = 86400;
    // RFC 2308: negative answers are cached for min(SOA TTL, MINIMUM); keep both short.
    r.minimum = ttl;
    return r;
  }

  private encode(
    name: string,
    type: number,
    rcode: number,
    answers: Resource[],
    authorities: Resource[],
    authoritative = true,
  ): Template {
    const packet = new Packet({
      id: 0,
      qr: 1,
      opcode: 0,
      aa: authoritative ? 1 : 0,
      tc: 0,
      rd: 0,
      ra: this.recursionAvailable ? 1 : 0,
      z: 0,
      rcode,
    } as unknown as InstanceType<typeof Packet.Header>);
    packet.questions.push(new Packet.Question(name, type, 1));
    packet.answers.push(...answers);
    packet.authorities.push(...authorities);
    const bytes = packet.toBuffer();
    // Every A record is a compressed owner (2) + type/class/ttl/rdlength (10) + 4 bytes.
    const size = 16;
    const count = answers.filter((r) => r.type === TYPE.A).length;
    if (count > 1 && count === answers.length) {
      const start = bytes.length - count * size;
      return { bytes, rotate: { start, count, size } };
    }
    return { bytes };
  }
}

function parent(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot < 0 ? undefined : name.slice(dot + 1);
}

/** "10.1.0.10.in-addr.arpa" → "10.0.1.10"; undefined for anything else. */
export function reverseToIp(name: string): string | undefined {
  if (!name.endsWith('.in-addr.arpa')) return undefined;
  const parts = name.slice(0, -'.in-addr.arpa'.length).split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) < 256)) return undefined;
  return parts.reverse().join('.');
}
