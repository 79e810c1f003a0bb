// The zone as data: building, versions and serials, diffs, and the answers
// derived from it for the shapes a BIND or Knot primary transfers (CNAME
// chains, wildcards, delegations, MX/TXT) as well as eipdns's own zones.

import { describe, expect, it } from 'vitest';
import { DEFAULT_SOA } from '../../src/config/load.js';
import type { ZoneConfig } from '../../src/config/types.js';
import { RCODE, TYPE } from '../../src/wire/codes.js';
import { textToWire } from '../../src/wire/name.js';
import { ZoneAnswers, type ZoneView } from '../../src/zone/answers.js';
import { applyDiff, diffZones, encodeSoa, sameContent, ZoneBuilder, type ZoneData } from '../../src/zone/data.js';
import { primaryData } from '../../src/zone/from-snapshot.js';
import { nextSerial, serialGt } from '../../src/zone/serial.js';
import { ZoneVersions } from '../../src/zone/versions.js';
import { Packet } from '../helpers/dns-client.js';

const soa = (serial: number): Buffer =>
  encodeSoa({ mname: textToWire('ns.example'), rname: textToWire('admin.example'), serial, refresh: 60, retry: 10, expire: 600, minimum: 30 });
const ip = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
const mx = (pref: number, name: string): Buffer => Buffer.concat([Buffer.from([pref >> 8, pref & 0xff]), textToWire(name)]);

function example(serial = 1, extra: (b: ZoneBuilder) => void = () => undefined): ZoneData {
  const b = new ZoneBuilder('example');
  b.add('example', TYPE.SOA, 300, soa(serial));
  b.add('example', TYPE.NS, 300, textToWire('ns.example'));
  b.add('example', TYPE.MX, 300, mx(10, 'mail.example'));
  b.add('ns.example', TYPE.A, 300, ip('192.0.2.53'));
  b.add('www.example', TYPE.A, 60, ip('192.0.2.1'));
  b.add('www.example', TYPE.A, 60, ip('192.0.2.2'));
  b.add('alias.example', TYPE.CNAME, 60, textToWire('www.example'));
  b.add('loop1.example', TYPE.CNAME, 60, textToWire('loop2.example'));
  b.add('loop2.example', TYPE.CNAME, 60, textToWire('loop1.example'));
  b.add('out.example', TYPE.CNAME, 60, textToWire('www.elsewhere.test'));
  b.add('*.wild.example', TYPE.TXT, 60, Buffer.from('\x05hello', 'latin1'));
  b.add('a.b.deep.example', TYPE.A, 60, ip('192.0.2.9'));
  b.add('sub.example', TYPE.NS, 300, textToWire('ns.sub.example'));
  b.add('ns.sub.example', TYPE.A, 300, ip('192.0.2.77'));
  extra(b);
  return b.build();
}

function ask(answers: ZoneAnswers, name: string, type: number) {
  const zone = answers.zoneOf(name)!;
  const bytes = answers.answer(zone, name, type).bytes;
  return { bytes, packet: Packet.parse(bytes), rcode: bytes[3]! & 0x0f, aa: (bytes[2]! & 0x04) !== 0 };
}

describe('serials (RFC 1982)', () => {
  it('compares across the wrap', () => {
    expect(serialGt(1, 0xffff_ffff)).toBe(true);
    expect(serialGt(0xffff_ffff, 1)).toBe(false);
    expect(serialGt(5, 5)).toBe(false);
  });

  it('follows the clock, and previous + 1 within a second or when the clock goes back', () => {
    expect(nextSerial(undefined, 1_700_000_000_500)).toBe(1_700_000_000);
    expect(nextSerial(1_700_000_000, 1_700_000_000_900)).toBe(1_700_000_001);
    expect(nextSerial(1_700_000_005, 1_600_000_000_000)).toBe(1_700_000_006);
    expect(nextSerial(1_700_000_000, 1_700_000_010_000)).toBe(1_700_000_010);
  });
});

describe('ZoneData', () => {
  it('drops duplicate records and keeps one TTL per RRset', () => {
    const d = example(1, (b) => b.add('www.example', TYPE.A, 30, ip('192.0.2.1')));
    const www = d.nodes.get('www.example')!.rrsets.get(TYPE.A)!;
    expect(www.rdata).toHaveLength(2);
    expect(www.ttl).toBe(30);
  });

  it('refuses records outside the zone and zones without an SOA', () => {
    const b = new ZoneBuilder('example');
    expect(() => b.add('example.org', TYPE.A, 1, ip('192.0.2.1'))).toThrow(/outside/);
    expect(() => b.add('notexample', TYPE.A, 1, ip('192.0.2.1'))).toThrow(/outside/);
    b.add('x.example', TYPE.A, 1, ip('192.0.2.1'));
    expect(() => b.build()).toThrow(/no SOA/);
  });

  it('diffs two versions and applies the diff back, SOA aside', () => {
    const a = example(1);
    const b = example(2, (x) => x.add('new.example', TYPE.AAAA, 60, Buffer.alloc(16, 1)));
    const withoutWww = new ZoneBuilder('example');
    for (const [name, node] of b.nodes) for (const set of node.rrsets.values()) for (const r of set.rdata) if (name !== 'www.example') withoutWww.add(name, set.type, set.ttl, r);
    const c = withoutWww.build();
    const d = diffZones(a, c);
    expect(d.added.map((r) => r.owner)).toEqual(['new.example']);
    expect(d.removed.map((r) => r.owner).sort()).toEqual(['www.example', 'www.example']);
    const applied = applyDiff(a, d.removed, d.added, soa(2), 300);
    expect(applied.serial).toBe(2);
    expect(sameContent(applied, c)).toBe(true);
    expect(() => applyDiff(c, d.removed, [], soa(3), 300)).toThrow(/does not hold/);
  });

  it('refuses in an IXFR difference what it refuses in a full zone', () => {
    const a = example(1);
    const bad: Array<[string, number, RegExp]> = [
      ['x.example', TYPE.ANY, /meta type/],
      ['x.example', TYPE.OPT, /meta type/],
      ['x.example', TYPE.TSIG, /meta type/],
      ['x.example', TYPE.AXFR, /meta type/],
      ['x.example', TYPE.IXFR, /meta type/],
      ['sub.example', TYPE.SOA, /below the apex/],
      ['example.org', TYPE.A, /outside/],
    ];
    for (const [owner, type, message] of bad) {
      expect(() => new ZoneBuilder('example').add(owner, type, 60, type === TYPE.SOA ? soa(2) : ip('192.0.2.1'))).toThrow(message);
      expect(() => applyDiff(a, [], [{ owner, type, ttl: 60, rdata: type === TYPE.SOA ? soa(2) : ip('192.0.2.1') }], soa(2), 300)).toThrow(message);
    }
  });
});

describe('versions', () => {
  const zone: ZoneConfig = { name: 'internal', ttl: 5, records: [{ fqdn: 'db.internal', source: { kind: 'elastic_ip', selector: { tag: { Role: 'db' } } } }], soa: DEFAULT_SOA };
  const snap = (ips: string[] | undefined, flags: { stale?: boolean; expired?: boolean } = {}) => ({
    generation: 0,
    fetchedAt: 0,
    records: new Map(ips === undefined ? [] : [['db.internal', ips]]),
    ...flags,
  });

  it('moves the serial only when the records change, and keeps history for IXFR', () => {
    const v = new ZoneVersions();
    const first = v.offer(zone, primaryData(zone, snap(['10.0.1.10'])), 1_700_000_000_000);
    expect(first.changed).toBe(true);
    expect(first.serving.serial).toBe(1_700_000_000);
    // A stale flag or an unchanged poll: same version, same serial.
    expect(v.offer(zone, primaryData(zone, snap(['10.0.1.10'], { stale: true })), 1_700_000_009_000).changed).toBe(false);
    const moved = v.offer(zone, primaryData(zone, snap(['10.0.1.20'])), 1_700_000_000_100);
    expect(moved.changed).toBe(true);
    expect(moved.serving.serial).toBe(1_700_000_001);
    const changes = v.changesSince(1_700_000_000)!;
    expect(changes).toHaveLength(1);
    expect(changes[0]!.removed.map((r) => r.rdata.join('.'))).toEqual(['10.0.1.10']);
    expect(changes[0]!.added.map((r) => r.rdata.join('.'))).toEqual(['10.0.1.20']);
    expect(v.changesSince(1_700_000_001)).toEqual([]);
    expect(v.changesSince(42)).toBeUndefined();
  });

  it('versions nothing while names are withheld, and serves them under the last vouched serial', () => {
    const v = new ZoneVersions();
    const before = v.offer(zone, primaryData(zone, snap(undefined)), 1_700_000_000_000);
    expect(before.withheld.has('db.internal')).toBe(true);
    expect(v.current).toBeUndefined();
    const ok = v.offer(zone, primaryData(zone, snap(['10.0.1.10'])), 1_700_000_050_000);
    const expired = v.offer(zone, primaryData(zone, snap(['10.0.1.10'], { expired: true })), 1_700_000_090_000);
    expect(expired.changed).toBe(false);
    expect(expired.serving.serial).toBe(ok.serving.serial);
    // Recovering with the same data does not move the serial either.
    expect(v.offer(zone, primaryData(zone, snap(['10.0.1.10'])), 1_700_000_099_000).serving).toBe(ok.serving);
  });

  it('keeps a name without an address with an existence marker, so it answers NODATA', () => {
    const { data } = primaryData(zone, snap([]));
    expect([...data.nodes.get('db.internal')!.rrsets.keys()]).toEqual([TYPE.EIPDNS_EMPTY]);
  });
});

describe('answers from zone data', () => {
  const answers = new ZoneAnswers([{ name: 'example', data: example() }], false);

  it('answers with AA, NXDOMAIN and NODATA with the SOA', () => {
    const www = ask(answers, 'www.example', TYPE.A);
    expect(www.aa).toBe(true);
    expect(www.packet.answers.map((r) => r.address)).toEqual(['192.0.2.1', '192.0.2.2']);
    const nx = ask(answers, 'nope.example', TYPE.A);
    expect(nx.rcode).toBe(RCODE.NXDOMAIN);
    expect(nx.packet.authorities[0]!.type).toBe(TYPE.SOA);
    expect(nx.packet.authorities[0]!.ttl).toBe(30); // min(SOA TTL, MINIMUM)
    const nodata = ask(answers, 'www.example', TYPE.AAAA);
    expect([nodata.rcode, nodata.packet.answers.length, nodata.packet.authorities[0]!.type]).toEqual([0, 0, TYPE.SOA]);
    expect(ask(answers, 'deep.example', TYPE.A).rcode).toBe(RCODE.NOERROR); // empty non-terminal
    expect(ask(answers, 'example', TYPE.MX).packet.answers[0]!.exchange).toBe('mail.example');
  });

  it('follows CNAME chains inside the zone, stops at loops and at the zone edge', () => {
    const alias = ask(answers, 'alias.example', TYPE.A);
    expect(alias.packet.answers.map((r) => r.type)).toEqual([TYPE.CNAME, TYPE.A, TYPE.A]);
    expect(ask(answers, 'alias.example', TYPE.CNAME).packet.answers.map((r) => r.type)).toEqual([TYPE.CNAME]);
    expect(ask(answers, 'loop1.example', TYPE.A).packet.answers.map((r) => r.type)).toEqual([TYPE.CNAME, TYPE.CNAME]);
    const out = ask(answers, 'out.example', TYPE.A);
    expect([out.rcode, out.packet.answers.length]).toEqual([0, 1]);
  });

  it('synthesizes from a wildcard, refers below a zone cut, answers ANY minimally', () => {
    const wild = ask(answers, 'x.y.wild.example', TYPE.TXT);
    expect(wild.packet.answers[0]!.name).toBe('x.y.wild.example');
    expect(ask(answers, 'x.wild.example', TYPE.A).rcode).toBe(RCODE.NOERROR);
    const referral = ask(answers, 'host.sub.example', TYPE.A);
    expect(referral.aa).toBe(false);
    expect(referral.packet.authorities.map((r) => r.ns)).toEqual(['ns.sub.example']);
    expect(referral.packet.additionals.map((r) => r.address)).toEqual(['192.0.2.77']);
    expect(ask(answers, 'www.example', TYPE.ANY).packet.answers.map((r) => r.type)).toEqual([TYPE.A, TYPE.A]);
    expect(ask(answers, 'example', TYPE.ANY).packet.answers.map((r) => r.type)).toEqual([TYPE.SOA]);
  });

  it('answers SERVFAIL without data, and for withheld names', () => {
    const views: ZoneView[] = [
      { name: 'gone', data: undefined },
      { name: 'example', data: example(), withheld: new Set(['db.example']), ttlCap: 1 },
    ];
    const a = new ZoneAnswers(views, true);
    expect(ask(a, 'x.gone', TYPE.A).rcode).toBe(RCODE.SERVFAIL);
    expect(ask(a, 'db.example', TYPE.A).rcode).toBe(RCODE.SERVFAIL);
    expect(ask(a, 'db.example', TYPE.AAAA).rcode).toBe(RCODE.NOERROR);
    expect(ask(a, 'www.example', TYPE.A).packet.answers[0]!.ttl).toBe(1);
  });
});
