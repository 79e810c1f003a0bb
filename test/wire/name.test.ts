import { describe, expect, it } from 'vitest';
import { questionEnd, sameQuestion } from '../../src/wire/name.js';
import { buildQuery } from '../forward/query.js';

function raw(...parts: (number[] | string)[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

const HEADER_1Q = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];

describe('questionEnd', () => {
  it('finds the end of QNAME + QTYPE + QCLASS', () => {
    const q = buildQuery('example.com');
    // 12 header + 13 name (7example3com0) + 4
    expect(questionEnd(q)).toBe(29);
  });

  it('handles the root name', () => {
    expect(questionEnd(raw(HEADER_1Q, [0, 0, 2, 0, 1]))).toBe(17);
  });

  it.each([
    ['a runt header', raw([0, 1, 2])],
    ['QDCOUNT 0', raw([0x12, 0x34, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 1])],
    ['QDCOUNT 2', raw([0x12, 0x34, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 1])],
    ['QDCOUNT 257', raw([0x12, 0x34, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 1])],
    ['a compression pointer', raw(HEADER_1Q, [0xc0, 0x0c, 0, 1, 0, 1])],
    ['a reserved label type', raw(HEADER_1Q, [0x41], 'a', [0, 0, 1, 0, 1])],
    ['a label running past the end', raw(HEADER_1Q, [10], 'abc')],
    ['no terminating zero', raw(HEADER_1Q, [3], 'abc')],
    ['QTYPE/QCLASS cut short', raw(HEADER_1Q, [3], 'abc', [0, 0, 1, 0])],
    ['a name over 255 octets', raw(HEADER_1Q, ...Array.from({ length: 5 }, () => [[63], 'x'.repeat(63)]).flat(), [0, 0, 1, 0, 1])],
  ])('rejects %s', (_label, msg) => {
    expect(questionEnd(msg)).toBe(-1);
  });

  it('accepts a name of exactly 255 octets', () => {
    // 3 × (1+63) + (1+61) + root = 255
    const labels = [[[63], 'a'.repeat(63)], [[63], 'b'.repeat(63)], [[63], 'c'.repeat(63)], [[61], 'd'.repeat(61)]].flat();
    const msg = raw(HEADER_1Q, ...labels, [0, 0, 1, 0, 1]);
    expect(questionEnd(msg)).toBe(12 + 255 + 4);
  });
});

describe('sameQuestion', () => {
  const q = buildQuery('Example.COM', { type: 1 });
  const end = questionEnd(q);

  function reply(name: string, type = 1): Buffer {
    const r = buildQuery(name, { type, id: 0x9999 });
    r[2] = 0x81;
    return r;
  }

  it('matches the same question in any letter case', () => {
    expect(sameQuestion(reply('example.com'), q, end)).toBe(true);
    expect(sameQuestion(reply('EXAMPLE.COM'), q, end)).toBe(true);
  });

  it('rejects another name, type, or class', () => {
    expect(sameQuestion(reply('example.org'), q, end)).toBe(false);
    expect(sameQuestion(reply('xexample.com'), q, end)).toBe(false);
    expect(sameQuestion(reply('example.com', 28), q, end)).toBe(false);
    const cls = reply('example.com');
    cls.writeUInt16BE(3, end - 2);
    expect(sameQuestion(cls, q, end)).toBe(false);
  });

  it('does not case-fold QTYPE/QCLASS octets', () => {
    // QTYPE 0x0041 ('A') vs 0x0061 ('a') must differ.
    const a = buildQuery('example.com', { type: 0x41 });
    const b = buildQuery('example.com', { type: 0x61 });
    b[2] = 0x81;
    expect(sameQuestion(b, a, questionEnd(a))).toBe(false);
  });

  it('rejects a reply without exactly one question, or cut short', () => {
    const none = reply('example.com');
    none.writeUInt16BE(0, 4);
    expect(sameQuestion(none, q, end)).toBe(false);
    expect(sameQuestion(reply('example.com').subarray(0, end - 1), q, end)).toBe(false);
  });

  it('rejects a reply whose question is a compression pointer', () => {
    const r = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 0x0c]), Buffer.alloc(end - 14)]);
    expect(sameQuestion(r, q, end)).toBe(false);
  });
});
