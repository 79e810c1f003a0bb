// A secondary zone against a primary that misbehaves: broken, hostile or
// stalling answers must never crash or wedge eipdns, and a failed transfer
// keeps the copy it had. The "primary" is a real TCP server on loopback that
// answers the first transfer properly (with our own AXFR stream) and then
// whatever each test makes it send.

import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SOA } from '../../src/config/load.js';
import { SOA_FLOOR, type ZoneConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { axfrStream } from '../../src/transfer/outgoing.js';
import { SecondaryZone } from '../../src/transfer/secondary.js';
import { TransferStats } from '../../src/transfer/stats.js';
import { TYPE } from '../../src/wire/codes.js';
import { textToWire } from '../../src/wire/name.js';
import { MessageWriter } from '../../src/wire/writer.js';
import { encodeSoa, ZoneBuilder, type ZoneData } from '../../src/zone/data.js';
import { manualClock } from '../ec2/helpers.js';
import { sleep } from '../interop/tools.js';

type Answer = (request: Buffer, socket: Socket) => void;

function zoneData(serial: number, names = 3, timers = { refresh: 3600, retry: 3600, expire: 7200 }): ZoneData {
  const b = new ZoneBuilder('internal');
  b.add('internal', TYPE.SOA, 60, encodeSoa({ mname: textToWire('ns.internal'), rname: textToWire('h.internal'), serial, ...timers, minimum: 5 }));
  for (let i = 0; i < names; i++) b.add(`n${i}.internal`, TYPE.A, 60, Buffer.from([10, 0, 0, i]));
  return b.build();
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** Our own AXFR stream for `data`, answering `request` (its ID and question). */
function goodAnswer(data: ZoneData): Answer {
  return (request, socket) => {
    for (const m of axfrStream(data)) {
      const out = Buffer.from(m);
      out.writeUInt16BE(request.readUInt16BE(0), 0);
      socket.write(frame(out));
    }
  };
}

/** A response header + question echo + raw bytes after it, with the counts given. */
function crafted(request: Buffer, counts: [number, number, number], tail: Buffer): Buffer {
  const qEnd = 12 + textToWire('internal').length + 4;
  const head = Buffer.from(request.subarray(0, qEnd));
  head[2] = 0x84;
  head[3] = 0;
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(counts[0], 6);
  head.writeUInt16BE(counts[1], 8);
  head.writeUInt16BE(counts[2], 10);
  return Buffer.concat([head, tail]);
}

const SOA_OWNER_PTR = Buffer.from([0xc0, 12]);
function soaRecord(serial: number): Buffer {
  const rdata = encodeSoa({ mname: textToWire('ns.internal'), rname: textToWire('h.internal'), serial, refresh: 3600, retry: 3600, expire: 7200, minimum: 5 });
  const head = Buffer.alloc(10);
  head.writeUInt16BE(TYPE.SOA, 0);
  head.writeUInt16BE(1, 2);
  head.writeUInt32BE(60, 4);
  head.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([SOA_OWNER_PTR, head, rdata]);
}

let server: Server;
let port: number;
/** Connections the primary accepted (each transfer attempt is one). */
let connections = 0;
let answer: Answer;
let stats: TransferStats;
let zone: SecondaryZone;
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) answer(pending.subarray(2, 2 + pending.readUInt16BE(0)), socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function loaded(): Promise<void> {
  stats = new TransferStats();
  const config: ZoneConfig = { name: 'internal', ttl: 5, records: [], primaries: [{ host: '127.0.0.1', port }], soa: DEFAULT_SOA };
  zone = new SecondaryZone(config, config.primaries!, undefined, {
    logger: silentLogger,
    stats,
    now: Date.now,
    limits: { records: 5_000, bytes: 1_000_000 },
    timeouts: { connectMs: 1_000, idleMs: 300, totalMs: 2_000 },
  });
  answer = goodAnswer(zoneData(10));
  await zone.refresh();
  expect(zone.versions.current?.serial).toBe(10);
}

afterEach(async () => {
  await zone?.stop();
});

describe('a misbehaving primary', () => {
  const cases: Array<[string, Answer]> = [
    ['closes the connection without answering', (_r, s) => s.destroy()],
    ['answers REFUSED', (r, s) => s.write(frame(Buffer.from([...r.subarray(0, 2), 0x84, 0x05, 0, 0, 0, 0, 0, 0, 0, 0])))],
    ['sends garbage', (_r, s) => s.write(frame(Buffer.alloc(40, 0xff)))],
    ['uses another message ID', (r, s) => s.write(frame(crafted(Buffer.from([r[0]! ^ 1, ...r.subarray(1)]), [1, 0, 0], soaRecord(11))))],
    ['starts with something other than the SOA', (r, s) => s.write(frame(crafted(r, [1, 0, 0], Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]))))],
    ['never sends the closing SOA (and stalls)', (r, s) => s.write(frame(crafted(r, [1, 0, 0], soaRecord(11))))],
    ['closes before the closing SOA', (r, s) => s.end(frame(crafted(r, [1, 0, 0], soaRecord(11))))],
    ['ends with an SOA of another serial', (r, s) => s.write(frame(crafted(r, [2, 0, 0], Buffer.concat([soaRecord(11), soaRecord(12)]))))],
    ['counts more records than it sends', (r, s) => s.write(frame(crafted(r, [60000, 0, 0], soaRecord(11))))],
    ['points a name at itself', (r, s) => s.write(frame(crafted(r, [2, 0, 0], Buffer.concat([soaRecord(11), Buffer.from([0xc0, 12 + 14 + 57, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4])]))))],
    [
      'sends a long chain of pointers, each one step back',
      (r, s) => {
        const chain: number[] = [];
        const base = 12 + 10 + 4 + soaRecord(11).length;
        chain.push(0);
        for (let i = 0; i < 200; i++) chain.push(0xc0, i === 0 ? base : base + 1 + (i - 1) * 2);
        const owner = Buffer.from([0xc0, 0]);
        owner.writeUInt16BE(0xc000 | (base + 1 + 199 * 2), 0);
        const rr = Buffer.concat([owner, Buffer.from([0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4])]);
        // The chain sits inside a TXT record's RDATA so the message stays well formed around it.
        const txt = Buffer.concat([SOA_OWNER_PTR, Buffer.from([0, 16, 0, 1, 0, 0, 0, 60, (chain.length >> 8) & 0xff, chain.length & 0xff]), Buffer.from(chain)]);
        s.write(frame(crafted(r, [3, 0, 0], Buffer.concat([soaRecord(11), txt, rr]))));
      },
    ],
    ['sends an MX whose RDATA is too short for its name', (r, s) => s.write(frame(crafted(r, [2, 0, 0], Buffer.concat([soaRecord(11), Buffer.from([0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 2, 0, 10, 0])]))))],
    [
      'sends more records than the limit allows',
      (r, s) => {
        const big = zoneData(11, 6_000);
        goodAnswer(big)(r, s);
      },
    ],
    ['trickles one byte at a time and then stalls', (r, s) => s.write(frame(crafted(r, [1, 0, 0], soaRecord(11))).subarray(0, 5))],
    [
      'sends an SOA below the apex',
      (r, s) => {
        const w = new MessageWriter();
        w.question(textToWire('internal'), TYPE.IXFR);
        const soa = zoneData(11).soa;
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, encodeSoa(soa));
        w.record(1, textToWire('x.internal'), TYPE.SOA, 1, 60, encodeSoa(soa));
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, encodeSoa(soa));
        s.write(frame(w.finish(r.readUInt16BE(0), 0x8400)));
      },
    ],
    [
      'sends an IXFR adding a meta-type record (ANY)',
      (r, s) => {
        const w = new MessageWriter();
        w.question(textToWire('internal'), TYPE.IXFR);
        const soa = (n: number) => encodeSoa({ ...zoneData(n).soa });
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, soa(11));
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, soa(10));
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, soa(11));
        w.record(1, textToWire('any.internal'), TYPE.ANY, 1, 60, Buffer.from([1, 2, 3, 4]));
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, soa(11));
        s.write(frame(w.finish(r.readUInt16BE(0), 0x8400)));
      },
    ],
    [
      'sends an IXFR deleting a record we do not have',
      (r, s) => {
        const w = new MessageWriter();
        w.question(textToWire('internal'), TYPE.IXFR);
        const soa = (n: number) => encodeSoa({ ...zoneData(n).soa });
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, soa(11));
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, soa(10));
        w.record(1, textToWire('nope.internal'), TYPE.A, 1, 60, Buffer.from([1, 2, 3, 4]));
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, soa(11));
        w.record(1, textToWire('internal'), TYPE.SOA, 1, 60, soa(11));
        s.write(frame(w.finish(r.readUInt16BE(0), 0x8400)));
      },
    ],
  ];

  it.each(cases)('keeps the old copy when it %s', async (_label, bad) => {
    await loaded();
    const before = zone.versions.current;
    answer = bad;
    await zone.refresh();
    expect(zone.versions.current).toBe(before);
    expect(zone.view().data).toBe(before);
    expect(stats.fetched.failed).toBe(1);
    // And it still takes a good transfer afterwards.
    answer = goodAnswer(zoneData(12));
    await zone.refresh();
    expect(zone.versions.current?.serial).toBe(12);
  });

  it('does not take an older serial', async () => {
    await loaded();
    answer = goodAnswer(zoneData(9));
    await zone.refresh();
    expect(zone.versions.current?.serial).toBe(10);
  });
});

describe('a primary whose SOA timers are zero', () => {
  it('is retried at the floor, not in a tight loop, when it starts refusing', async () => {
    stats = new TransferStats();
    const config: ZoneConfig = { name: 'internal', ttl: 5, records: [], primaries: [{ host: '127.0.0.1', port }], soa: DEFAULT_SOA };
    // A clock that stands still: expiry cannot come from a slow machine.
    const clock = manualClock(Date.now());
    zone = new SecondaryZone(config, config.primaries!, undefined, { logger: silentLogger, stats, now: clock.now, timeouts: { connectMs: 1_000, idleMs: 300, totalMs: 2_000 } });
    answer = goodAnswer(zoneData(10, 3, { refresh: 0, retry: 0, expire: 0 }));
    await zone.refresh();
    expect(zone.versions.current?.serial).toBe(10);
    expect(zone.timers()).toEqual(SOA_FLOOR);
    answer = (r, s) => s.write(frame(Buffer.from([...r.subarray(0, 2), 0x84, 0x05, 0, 0, 0, 0, 0, 0, 0, 0])));
    await zone.refresh();
    const after = connections;
    // The retry timer was set (at ≥ 1 s) before this one (at 1/4 of the
    // floor): timers fire in order of expiry, so however slow the machine,
    // a retry at the floor cannot have run yet. With retry 0 and expire 0
    // it would have been hundreds of connections.
    await sleep((SOA_FLOOR.retry * 1000) / 4);
    expect(connections).toBe(after);
    expect(stats.fetched.failed).toBe(1);
    // Expire 0 was clamped too: the copy is still served.
    expect(zone.view().data?.serial).toBe(10);
  });
});

describe('several primaries', () => {
  it('tries them in order: a dead first one costs one failed connect, the next one serves', async () => {
    const dead = await (async () => {
      // A port nothing listens on: bind, note it, close.
      const s = createServer();
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      const p = (s.address() as { port: number }).port;
      await new Promise<void>((resolve) => s.close(() => resolve()));
      return p;
    })();
    stats = new TransferStats();
    const config: ZoneConfig = { name: 'internal', ttl: 5, records: [], primaries: [{ host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port }], soa: DEFAULT_SOA };
    zone = new SecondaryZone(config, config.primaries!, undefined, { logger: silentLogger, stats, now: Date.now });
    answer = goodAnswer(zoneData(20));
    await zone.refresh();
    expect(zone.versions.current?.serial).toBe(20);
    expect(stats.fetched).toMatchObject({ axfr: 1, failed: 0 });
  });

  it('knows a primary by address, however it is spelled (IPv4-mapped, IPv6 in full)', () => {
    const primaries = [{ host: '127.0.0.1', port: 53 }, { host: '2001:db8::5', port: 53 }];
    const config: ZoneConfig = { name: 'internal', ttl: 5, records: [], primaries, soa: DEFAULT_SOA };
    const z = new SecondaryZone(config, primaries, undefined, { logger: silentLogger, stats: new TransferStats(), now: Date.now });
    expect(['127.0.0.1', '::ffff:127.0.0.1', '2001:db8::5', '2001:DB8:0:0:0:0:0:5'].map((a) => z.isPrimary(a))).toEqual([true, true, true, true]);
    expect(['127.0.0.2', '2001:db8::6'].map((a) => z.isPrimary(a))).toEqual([false, false]);
  });
});
