// The ground floor zone transfer adds: reading compressed names (capped,
// backward only), text ↔ wire names, RDATA expansion, and the message writer.

import { describe, expect, it } from 'vitest';
import { TYPE } from '../../src/wire/codes.js';
import { Malformed } from '../../src/wire/malformed.js';
import { MAX_POINTER_HOPS, readName, textToWire, wireToText } from '../../src/wire/name.js';
import { readRdata, rdataNames } from '../../src/wire/rdata.js';
import { readRecords } from '../../src/wire/records.js';
import { MessageWriter } from '../../src/wire/writer.js';
import { Packet } from '../helpers/dns-client.js';

const HEADER = Buffer.alloc(12);

describe('readName', () => {
  it('follows a backward pointer and keeps the letter case', () => {
    const msg = Buffer.concat([HEADER, textToWire('Internal'), Buffer.from([2, 0x64, 0x62, 0xc0, 12])]);
    const n = readName(msg, 12 + 10);
    expect(wireToText(n.wire)).toBe('db.internal');
    expect(n.wire.toString('latin1')).toContain('Internal');
    expect(n.end).toBe(msg.length);
  });

  it('refuses forward and self pointers, and chains longer than the cap', () => {
    expect(() => readName(Buffer.concat([HEADER, Buffer.from([0xc0, 12])]), 12)).toThrow(/forward/);
    expect(() => readName(Buffer.concat([HEADER, Buffer.from([0xc0, 14, 0])]), 12)).toThrow(/forward/);
    // pointer → pointer → … each one step back: legal one by one, too long as a chain
    const chain: number[] = [0];
    for (let i = 0; i <= MAX_POINTER_HOPS + 1; i++) chain.push(0xc0, 12 + (i === 0 ? 0 : 1 + (i - 1) * 2));
    const msg = Buffer.concat([HEADER, Buffer.from(chain)]);
    expect(() => readName(msg, msg.length - 2)).toThrow(/too many compression pointers/);
  });

  it('refuses names that expand past 255 octets', () => {
    const label = Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)]);
    const msg = Buffer.concat([HEADER, label, label, label, Buffer.from([0]), label, Buffer.from([0xc0, 12])]);
    expect(() => readName(msg, 12 + 64 * 3 + 1)).toThrow(/255/);
  });
});

describe('text and wire names', () => {
  it('round-trips, escaping a dot inside a label', () => {
    const wire = Buffer.from([4, 0x61, 0x2e, 0x62, 0x63, 8, ...Buffer.from('internal'), 0]);
    expect(wireToText(wire)).toBe('a\\046bc.internal');
    expect(textToWire('a\\046bc.internal').equals(wire)).toBe(true);
    expect(textToWire('').equals(Buffer.from([0]))).toBe(true);
  });

  it('refuses what is not an octet rather than masking it into a different name', () => {
    expect(textToWire('a\\255.b').equals(Buffer.from([2, 0x61, 255, 1, 0x62, 0]))).toBe(true);
    // \256 & 0xff would be \000, 'ā' (U+0101) & 0xff would be 0x01.
    expect(() => textToWire('a\\256.b')).toThrow(Malformed);
    expect(() => textToWire('\u0101.b')).toThrow(Malformed);
    expect(() => textToWire('a\\\u0101.b')).toThrow(Malformed);
  });
});

describe('RDATA', () => {
  it('expands and lower-cases names inside MX and SOA, and checks the layout fills the RDATA', () => {
    const msg = Buffer.concat([HEADER, textToWire('Example'), Buffer.from([0, 10, 4, ...Buffer.from('MAIL'), 0xc0, 12])]);
    const rdata = readRdata(msg, TYPE.MX, 12 + 9, 9);
    expect(wireToText(rdataNames(TYPE.MX, rdata)[0]!)).toBe('mail.example');
    expect(rdata.readUInt16BE(0)).toBe(10);
    expect(() => readRdata(msg, TYPE.MX, 12 + 9, 10)).toThrow();
  });

  it('refuses an RDATA name that runs off the end instead of walking forever', () => {
    // CNAME whose target's last label is never terminated.
    expect(() => rdataNames(TYPE.CNAME, Buffer.from([3, 0x77, 0x77, 0x77]))).toThrow(Malformed);
    expect(() => rdataNames(TYPE.CNAME, Buffer.from([3, 0x77, 0x77]))).toThrow(Malformed);
    expect(() => rdataNames(TYPE.CNAME, Buffer.alloc(0))).toThrow(Malformed);
    // MX cut inside its preference.
    expect(() => rdataNames(TYPE.MX, Buffer.from([0]))).toThrow(Malformed);
  });
});

describe('MessageWriter', () => {
  it('compresses owners and RFC 1035 RDATA names; dns2 reads the result', () => {
    const w = new MessageWriter();
    const apex = textToWire('internal');
    w.question(apex, TYPE.SOA);
    w.record(1, apex, TYPE.NS, 1, 60, textToWire('ns.internal'));
    w.record(1, textToWire('db.internal'), TYPE.CNAME, 1, 60, textToWire('web.internal'));
    const msg = w.finish(7, 0x8400);
    const p = Packet.parse(msg);
    expect(p.header.id).toBe(7);
    expect(p.answers.map((r) => [r.name, r.type])).toEqual([['internal', TYPE.NS], ['db.internal', TYPE.CNAME]]);
    expect(p.answers[0]!.ns).toBe('ns.internal');
    expect(p.answers[1]!.domain).toBe('web.internal');
    // 12 + question 14 + NS (2 + 10 + 5) + CNAME owner (3 + 2) + 10 + rdata (4 + 2)
    expect(msg.length).toBe(12 + 14 + 17 + 5 + 10 + 6);
    expect(readRecords(msg, 12 + 14)).toHaveLength(2);
  });

  it('refuses a record that might not fit, writing nothing', () => {
    const w = new MessageWriter(64);
    w.question(textToWire('internal'), TYPE.AXFR);
    expect(w.record(1, textToWire('a.internal'), TYPE.TXT, 1, 60, Buffer.alloc(40))).toBe(false);
    expect(w.recordCount).toBe(0);
    expect(w.record(1, textToWire('a.internal'), TYPE.A, 1, 60, Buffer.alloc(4))).toBe(true);
  });

  it('two writers open at once do not write over each other', () => {
    const first = new MessageWriter();
    first.question(textToWire('first.internal'), TYPE.AXFR);
    first.record(1, textToWire('a.first.internal'), TYPE.A, 1, 60, Buffer.from([10, 0, 0, 1]));
    // A second writer while the first is still open (a transfer stream keeps one across iterations).
    const second = new MessageWriter();
    second.question(textToWire('second.internal'), TYPE.A);
    second.record(1, textToWire('b.second.internal'), TYPE.A, 1, 60, Buffer.from([10, 0, 0, 2]));
    first.record(1, textToWire('c.first.internal'), TYPE.A, 1, 60, Buffer.from([10, 0, 0, 3]));
    const a = Packet.parse(first.finish(1, 0x8400));
    const b = Packet.parse(second.finish(2, 0x8400));
    expect(a.questions[0]!.name).toBe('first.internal');
    expect(a.answers.map((r) => [r.name, r.address])).toEqual([
      ['a.first.internal', '10.0.0.1'],
      ['c.first.internal', '10.0.0.3'],
    ]);
    expect(b.questions[0]!.name).toBe('second.internal');
    expect(b.answers.map((r) => [r.name, r.address])).toEqual([['b.second.internal', '10.0.0.2']]);
    // The scratch came back: a later writer works as before.
    const third = new MessageWriter();
    third.question(textToWire('third.internal'), TYPE.A);
    expect(Packet.parse(third.finish(3, 0x8400)).questions[0]!.name).toBe('third.internal');
  });
});
