import { describe, expect, it } from 'vitest';
import { Deframer, frame } from '../../src/wire/framing.js';

const msg = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

describe('TCP framing', () => {
  it('puts the 2-octet length in front', () => {
    expect([...frame(Buffer.from([1, 2, 3]))]).toEqual([0, 3, 1, 2, 3]);
    expect([...frame(Buffer.alloc(0))]).toEqual([0, 0]);
  });

  it('reassembles a message split anywhere, byte by byte included', () => {
    const stream = Buffer.concat([frame(msg(300, 7)), frame(msg(1, 8))]);
    const d = new Deframer();
    const got: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...d.push(stream.subarray(i, i + 1)));
    expect(got.map((m) => [m.length, m[0]])).toEqual([
      [300, 7],
      [1, 8],
    ]);
    expect(d.buffered).toBe(0);
  });

  it('returns every whole message of one chunk in order, holding back the incomplete rest', () => {
    const d = new Deframer();
    const whole = Buffer.concat([frame(msg(3, 1)), frame(msg(0, 0)), frame(msg(2, 2)), frame(msg(5, 3))]);
    const got = d.push(whole.subarray(0, whole.length - 2));
    expect(got.map((m) => m.length)).toEqual([3, 0, 2]);
    expect(d.buffered).toBe(5);
    expect(d.push(whole.subarray(whole.length - 2)).map((m) => [...m])).toEqual([[3, 3, 3, 3, 3]]);
  });
});
