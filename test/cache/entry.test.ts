import { describe, expect, it } from 'vitest';
import { answerFrom, classify, Entry, type Verdict } from '../../src/cache/entry.js';
import { a, message, name, opt, parsed, queryBytes, rawAppend, SEC, soa, T, ttls, u32 } from './wire.js';

const L = { minTtl: 0, maxTtl: 86_400, maxNegativeTtl: 3600 };
const QNAME = 'www.example.com';
/** 12-byte header + name + QTYPE + QCLASS. */
const QEND = 12 + name(QNAME).length + 4;

function kept(v: Verdict): Extract<Verdict, { bytes: Buffer }> {
  if (v.kind !== 'positive' && v.kind !== 'negative') throw new Error(`not kept: ${JSON.stringify(v)}`);
  return v;
}

function entryOf(v: Verdict, storedAt = 0): Entry {
  const k = kept(v);
  return new Entry('k', k.kind, k.bytes.toString('latin1'), k.ttlAt, k.ttl, storedAt, 0);
}

describe('classify: what an upstream reply becomes', () => {
  it('positive: lives for the smallest TTL in any section (RFC 2181 §8); stored without its OPT; every TTL located', () => {
    const reply = message({ qname: QNAME, records: [a(SEC.AN, 300), a(SEC.AN, 60, [192, 0, 2, 2]), a(SEC.AR, 5, [192, 0, 2, 9], name('ns.example')), opt()] });
    const v = kept(classify(reply, QEND, L));
    expect(v.kind).toBe('positive');
    expect(v.ttl).toBe(5); // the glue's 5 counts: it must not be served past it
    expect(v.bytes.length).toBe(reply.length - 11);
    expect(v.bytes.readUInt16BE(10)).toBe(1); // ARCOUNT: the OPT is gone, the glue stays
    expect([...v.bytes.subarray(0, 10)]).toEqual([...reply.subarray(0, 10)]);
    expect([...v.bytes.subarray(12, v.bytes.length)]).toEqual([...reply.subarray(12, reply.length - 11)]);
    expect(v.ttlAt.map((at) => v.bytes.readUInt32BE(at))).toEqual([300, 60, 5]);
  });

  it('clamps a positive lifetime to [min_ttl, max_ttl]', () => {
    const reply = message({ qname: QNAME, records: [a(SEC.AN, 10)] });
    expect(kept(classify(reply, QEND, { ...L, minTtl: 30 })).ttl).toBe(30);
    expect(kept(classify(message({ qname: QNAME, records: [a(SEC.AN, 999_999)] }), QEND, { ...L, maxTtl: 3600 })).ttl).toBe(3600);
  });

  it('NXDOMAIN (RFC 2308 §5): min(SOA TTL, SOA MINIMUM), capped by max_negative_ttl', () => {
    const nx = (soaTtl: number, minimum: number): Buffer => message({ qname: QNAME, flags: [0x81, 0x83], records: [soa(soaTtl, minimum)] });
    expect(kept(classify(nx(900, 300), QEND, L))).toMatchObject({ kind: 'negative', ttl: 300 });
    expect(kept(classify(nx(120, 300), QEND, L)).ttl).toBe(120);
    expect(kept(classify(nx(90_000, 86_400), QEND, L)).ttl).toBe(3600);
    // min_ttl does not stretch a negative answer.
    expect(kept(classify(nx(900, 10), QEND, { ...L, minTtl: 60 })).ttl).toBe(10);
  });

  it('NODATA (NOERROR, no answer, SOA) is negative too; a CNAME to NODATA takes the smaller of both', () => {
    expect(kept(classify(message({ qname: QNAME, records: [soa(600, 60)] }), QEND, L))).toMatchObject({ kind: 'negative', ttl: 60 });
    const cname: ReturnType<typeof a> = { section: SEC.AN, type: T.CNAME, ttl: 30, rdata: name('target.example.com') };
    expect(kept(classify(message({ qname: QNAME, records: [cname, soa(600, 60)] }), QEND, L))).toMatchObject({ kind: 'positive', ttl: 30 });
    expect(kept(classify(message({ qname: QNAME, records: [{ ...cname, ttl: 600 }, soa(600, 60)] }), QEND, L)).ttl).toBe(60);
  });

  it('a negative answer without an SOA, or a referral, is relayed and never kept', () => {
    expect(classify(message({ qname: QNAME, flags: [0x81, 0x83] }), QEND, L)).toEqual({ kind: 'pass', reason: 'negative answer without SOA' });
    const ns = { section: SEC.NS, owner: name('example.com'), type: T.NS, ttl: 3600, rdata: name('ns1.example.com') } as const;
    expect(classify(message({ qname: QNAME, flags: [0x81, 0x00], records: [ns] }), QEND, L).kind).toBe('pass');
  });

  it('SERVFAIL is a failure; REFUSED and other rcodes are refusals; an extended rcode in the OPT too', () => {
    expect(classify(message({ qname: QNAME, flags: [0x81, 0x82] }), QEND, L)).toEqual({ kind: 'failure' });
    expect(classify(message({ qname: QNAME, flags: [0x81, 0x85] }), QEND, L)).toEqual({ kind: 'refused' });
    expect(classify(message({ qname: QNAME, flags: [0x81, 0x84] }), QEND, L)).toEqual({ kind: 'refused' });
    // BADVERS (16): header rcode 0, the upper bits in the OPT.
    expect(classify(message({ qname: QNAME, records: [a(SEC.AN, 300), opt(1)] }), QEND, L)).toEqual({ kind: 'refused' });
  });

  it('never keeps TC replies, TSIG-signed replies, an OPT that is not last, or malformed records', () => {
    expect(classify(message({ qname: QNAME, flags: [0x83, 0x80] }), QEND, L)).toEqual({ kind: 'pass', reason: 'truncated' });
    const tsig = { section: SEC.AR, owner: name('key.example'), type: T.TSIG, ttl: 0, rdata: [1, 2, 3] } as const;
    expect(classify(message({ qname: QNAME, records: [a(SEC.AN, 300), tsig] }), QEND, L)).toMatchObject({ kind: 'pass', reason: 'signed message' });
    const optFirst = rawAppend(message({ qname: QNAME, records: [a(SEC.AN, 300), opt()] }), a(SEC.AR, 60, [192, 0, 2, 3], name('x.example')), { ar: 2 });
    expect(classify(optFirst, QEND, L)).toEqual({ kind: 'pass', reason: 'OPT not last' });
    const cut = message({ qname: QNAME, records: [a(SEC.AN, 300)] });
    expect(classify(cut.subarray(0, cut.length - 2), QEND, L)).toEqual({ kind: 'pass', reason: 'malformed' });
  });

  it('treats a TTL with the top bit set as 0 (RFC 2181 §8), and a lifetime of 0 is not kept', () => {
    expect(classify(message({ qname: QNAME, records: [a(SEC.AN, 0x80000010)] }), QEND, L)).toEqual({ kind: 'pass', reason: 'TTL 0' });
    const v = kept(classify(message({ qname: QNAME, records: [a(SEC.AN, 300), a(SEC.AN, 0xfffffff0)] }), QEND, { ...L, minTtl: 5 }));
    expect(v.ttl).toBe(5);
    expect(v.ttlAt.map((at) => v.bytes.readUInt32BE(at))).toEqual([300, 0]);
  });
});

describe('answerFrom: a cached answer made into this client\'s reply', () => {
  const reply = message({ id: 0xbeef, flags: [0x81, 0xa0], qname: QNAME, records: [a(SEC.AN, 300), a(SEC.AN, 60, [192, 0, 2, 2]), soa(7200, 900), opt()] });
  const e = entryOf(classify(reply, QEND, L), 1_000);

  it('restores the client\'s ID, RD and question case; patches TTLs to at most what the entry has left', () => {
    const msg = queryBytes('WwW.ExAmPlE.CoM', { id: 0x0102, rd: false });
    const out = answerFrom(e, msg, parsed(msg), e.secondsLeft(1_000 + 20_500), false);
    expect(out.readUInt16BE(0)).toBe(0x0102);
    expect(out[2]! & 0x01).toBe(0); // RD as the client sent it
    expect(out.subarray(12, QEND).toString('latin1')).toBe(msg.subarray(12, QEND).toString('latin1'));
    // 60 s lifetime, 20.5 s elapsed: 40 s left; records below that keep their own TTL.
    expect(ttls(out, QEND).map((r) => r.ttl)).toEqual([40, 40, 40]);
    expect(e.secondsLeft(1_000)).toBe(60);
    expect(e.secondsLeft(1_000 + 59_999)).toBe(1);
    // The stored bytes are untouched.
    expect(ttls(Buffer.from(e.wire!, 'latin1'), QEND).map((r) => r.ttl)).toEqual([300, 60, 7200]);
  });

  it('never serves a record past its own TTL: an additional record\'s shorter TTL bounds the entry', () => {
    const mixed = entryOf(classify(message({ qname: QNAME, records: [a(SEC.AN, 600), { ...a(SEC.AR, 30, [192, 0, 2, 7], name('glue.example')) }] }), QEND, L), 0);
    expect(mixed.ttl).toBe(30);
    const msg = queryBytes(QNAME);
    expect(ttls(answerFrom(mixed, msg, parsed(msg), mixed.secondsLeft(10_000), false), QEND).map((r) => r.ttl)).toEqual([20, 20]);
  });

  it('caps a negative lifetime by any shorter record beside the SOA', () => {
    const nx = message({ qname: QNAME, flags: [0x81, 0x83], records: [soa(900, 300), { ...a(SEC.AR, 40, [192, 0, 2, 7], name('ns.example')) }] });
    expect(kept(classify(nx, QEND, L))).toMatchObject({ kind: 'negative', ttl: 40 });
  });

  it('appends our OPT for an EDNS client (DO echoed), none for a client without EDNS', () => {
    const plain = queryBytes(QNAME);
    expect(answerFrom(e, plain, parsed(plain), 10, false).length).toBe(e.wire!.length);
    const withDo = queryBytes(QNAME, { edns: 4096, dnssecOk: true });
    const out = answerFrom(e, withDo, parsed(withDo), 10, false);
    expect(out.length).toBe(e.wire!.length + 11);
    expect(out.readUInt16BE(10)).toBe(1);
    const tail = ttls(out, QEND).at(-1)!;
    expect(tail).toEqual({ type: T.OPT, ttl: 0x8000 });
  });

  it('sets every TTL to exactly the stale TTL for a stale answer (RFC 8767 §4)', () => {
    const msg = queryBytes(QNAME);
    expect(ttls(answerFrom(e, msg, parsed(msg), 30, true), QEND).map((r) => r.ttl)).toEqual([30, 30, 30]);
  });

  it('clears AD unless the client set AD or DO (RFC 6840 §5.8)', () => {
    const plain = queryBytes(QNAME);
    expect(answerFrom(e, plain, parsed(plain), 10, false)[3]! & 0x20).toBe(0);
    const ad = queryBytes(QNAME, { ad: true });
    expect(answerFrom(e, ad, parsed(ad), 10, false)[3]! & 0x20).toBe(0x20);
    const dnssec = queryBytes(QNAME, { dnssecOk: true });
    expect(answerFrom(e, dnssec, parsed(dnssec), 10, false)[3]! & 0x20).toBe(0x20);
  });

  it('reads a SOA MINIMUM from the last four RDATA octets, whatever the names before it', () => {
    const long = { ...soa(7200, 0), rdata: [...name('a.very.long.primary.example'), 0xc0, 0x0c, ...u32(1), ...u32(2), ...u32(3), ...u32(4), ...u32(45)] };
    expect(kept(classify(message({ qname: QNAME, flags: [0x81, 0x83], records: [long] }), QEND, L)).ttl).toBe(45);
  });
});
