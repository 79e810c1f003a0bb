// eipdns as a primary, seen from the wire: AXFR of a large zone in several
// messages, IXFR (incremental, up to date, from a serial it no longer knows,
// over UDP), who is refused, no transfers while the data is not vouched for,
// per-zone serials, and NOTIFY retried until acknowledged or given up.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { TransferReader } from '../../src/transfer/incoming.js';
import { RCODE, TYPE } from '../../src/wire/codes.js';
import { sameContent, type ZoneData } from '../../src/zone/data.js';
import { sendUdp } from '../helpers/dns-client.js';
import { inventory, startTestServer, type TestServer } from '../helpers/server.js';
import { captureLogger, LEVEL, manualClock } from '../ec2/helpers.js';
import { waitFor } from '../interop/tools.js';
import { keyOf, newSecret, primaryYaml, rcodeOf, request, tcpMessages } from './helpers.js';

const NAMES = 10_000;
const ipOf = (i: number): string => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;

describe('AXFR of a 10,000-name zone', () => {
  let srv: TestServer;
  beforeAll(async () => {
    const records = Array.from({ length: NAMES }, (_, i) => `host-${i}: { a: ["${ipOf(i + 1)}"] }`);
    srv = await startTestServer(primaryYaml({ records, tsig: false }), { files: { 'inventory.json': inventory([]) } });
  });
  afterAll(async () => srv?.close());

  it('comes in several messages of at most 64 KiB, SOA first and last, and reads back as the same zone', async () => {
    const q = request({ type: TYPE.AXFR, id: 5 });
    const messages = await tcpMessages(srv.port, q.msg);
    expect(messages.length).toBeGreaterThan(3);
    for (const m of messages) expect(m.length).toBeLessThanOrEqual(65_535);
    const reader = new TransferReader('internal', 5, TYPE.AXFR, undefined);
    const done = messages.map((m) => reader.push(m));
    expect(done.at(-1)).toBe(true);
    expect(done.slice(0, -1).every((d) => !d)).toBe(true);
    const result = reader.result();
    expect(result.kind).toBe('full');
    const served = srv.server.transfer.transferable('internal')!;
    expect(result.kind === 'full' && sameContent(result.data, served)).toBe(true);
    expect(served.size).toBe(NAMES + 2);
  });
});

describe('IXFR, refusals and vouching', () => {
  const secret = newSecret();
  const key = keyOf(secret);
  const clock = manualClock(Date.now());
  const eips = (ip: string) => inventory([{ publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: ip, tags: { Role: 'db' } }]);
  let srv: TestServer;
  let first: number;
  let firstCopy: ZoneData;
  const log = captureLogger();

  beforeAll(async () => {
    const yaml = primaryYaml({ records: ['db: { elastic_ip: { tag: { Role: db } } }'] }).replace('ec2:\n', 'ec2:\n  max_stale_ms: 60000\n');
    srv = await startTestServer(
      yaml.replace('  - name: internal', '  - name: other\n    records:\n      web: { a: ["10.0.5.5"] }\n  - name: internal'),
      // An unreadable inventory: the first poll fails, so the zone starts without data.
      { files: { 'inventory.json': 'not yet', 'transfer.key': secret }, now: clock.now, logger: log.logger },
    );
  });
  afterAll(async () => srv?.close());

  it('refuses to transfer before the first poll: nothing vouched for yet', async () => {
    await srv.server.discovery().pollNow();
    const r = await tcpMessages(srv.port, request({ type: TYPE.AXFR, key }).msg);
    expect(rcodeOf(r[0]!)).toBe(RCODE.SERVFAIL);
    srv.write('inventory.json', eips('10.0.1.10'));
    await srv.server.discovery().pollNow();
    first = srv.server.transfer.transferable('internal')!.serial;
    const axfr = await tcpMessages(srv.port, request({ type: TYPE.AXFR, key, id: 3 }).msg);
    expect(rcodeOf(axfr[0]!)).toBe(RCODE.NOERROR);
    const reader = new TransferReader('internal', 3, TYPE.AXFR, undefined);
    for (const m of axfr) reader.push(m);
    const result = reader.result();
    if (result.kind !== 'full') throw new Error('expected a full copy');
    firstCopy = result.data;
    expect(firstCopy.serial).toBe(first);
  });

  it('answers IXFR incrementally after a change; a change in one zone leaves the other zone\'s serial', async () => {
    const otherSerial = srv.server.transfer.transferable('other')!.serial;
    clock.advance(5_000);
    srv.write('inventory.json', eips('10.0.1.20'));
    await srv.server.discovery().pollNow();
    const now = srv.server.transfer.transferable('internal')!;
    expect(now.serial).toBe(Math.floor(clock.now() / 1000));
    expect(srv.server.transfer.transferable('other')!.serial).toBe(otherSerial);
    const messages = await tcpMessages(srv.port, request({ type: TYPE.IXFR, serial: first, key, id: 9 }).msg);
    const reader = new TransferReader('internal', 9, TYPE.IXFR, firstCopy);
    for (const m of messages) reader.push(m);
    const result = reader.result();
    expect(result.kind).toBe('incremental');
    if (result.kind !== 'incremental') return;
    expect(result.removed.map((r) => r.rdata.join('.'))).toEqual(['10.0.1.10']);
    expect(result.added.map((r) => r.rdata.join('.'))).toEqual(['10.0.1.20']);
    expect(sameContent(result.data, now)).toBe(true);
    expect(result.data.serial).toBe(now.serial);
    expect(srv.server.transfer.stats.served.ixfr).toBe(1);
  });

  it('answers IXFR with the SOA alone when the client is current, or asks over UDP', async () => {
    const serial = srv.server.transfer.transferable('internal')!.serial;
    const tcp = await tcpMessages(srv.port, request({ type: TYPE.IXFR, serial, key }).msg);
    expect(tcp).toHaveLength(1);
    expect(tcp[0]!.readUInt16BE(6)).toBe(1); // ANCOUNT: the SOA
    const udp = await sendUdp(srv.port, request({ type: TYPE.IXFR, serial: first, key }).msg);
    expect(udp!.readUInt16BE(6)).toBe(1);
    expect(srv.server.transfer.stats.served.ixfrUpToDate).toBe(2);
  });

  it('sends the whole zone for a serial it has no history for', async () => {
    const r = await tcpMessages(srv.port, request({ type: TYPE.IXFR, serial: 12345, key }).msg);
    expect(rcodeOf(r[0]!)).toBe(RCODE.NOERROR);
    expect(srv.server.transfer.stats.served.ixfrAsFull).toBe(1);
  });

  it('refuses another address, an unsigned request, and AXFR over UDP', async () => {
    const other = await tcpMessages(srv.port, request({ type: TYPE.AXFR, key }).msg, { localAddress: '127.0.0.2' });
    expect(rcodeOf(other[0]!)).toBe(RCODE.REFUSED);
    const unsigned = await tcpMessages(srv.port, request({ type: TYPE.AXFR }).msg);
    expect(rcodeOf(unsigned[0]!)).toBe(RCODE.REFUSED);
    expect(rcodeOf((await sendUdp(srv.port, request({ type: TYPE.AXFR, key }).msg))!)).toBe(RCODE.FORMERR);
    const lines = log.at(LEVEL.warn).filter((l) => l.msg === 'zone transfer refused').map((l) => l.reason);
    expect(lines).toEqual(expect.arrayContaining(['address not in transfer.allow', 'request not signed (zone requires key transfer-key)']));
  });

  it('stops vouching past max_stale_ms: SERVFAIL for transfers, the serial kept', async () => {
    const before = srv.server.transfer.transferable('internal')!.serial;
    rmSync(join(srv.dir, 'inventory.json'));
    await srv.server.discovery().pollNow(); // fails: stale
    expect(rcodeOf((await tcpMessages(srv.port, request({ type: TYPE.AXFR, key }).msg))[0]!)).toBe(RCODE.NOERROR);
    clock.advance(61_000);
    await srv.server.discovery().pollNow(); // fails again, now past max_stale
    expect(rcodeOf((await tcpMessages(srv.port, request({ type: TYPE.AXFR, key }).msg))[0]!)).toBe(RCODE.SERVFAIL);
    expect(srv.server.transfer.stats.notVouched).toBeGreaterThanOrEqual(1);
    srv.write('inventory.json', eips('10.0.1.20'));
    await srv.server.discovery().pollNow();
    expect(srv.server.transfer.transferable('internal')!.serial).toBe(before);
  });
});

describe('NOTIFY out', () => {
  let quiet: Socket;
  let flaky: Socket;
  const seen = { quiet: 0, flaky: 0 };
  const log = captureLogger();
  let srv: TestServer;

  beforeAll(async () => {
    const bind = (s: Socket) => new Promise<number>((resolve) => s.bind(0, '127.0.0.1', () => resolve(s.address().port)));
    quiet = createSocket('udp4');
    quiet.on('message', () => seen.quiet++);
    flaky = createSocket('udp4');
    // Drops the first two NOTIFYs, acknowledges the third.
    flaky.on('message', (msg, rinfo) => {
      if (++seen.flaky < 3) return;
      const reply = Buffer.from(msg);
      reply[2]! |= 0x80;
      flaky.send(reply, rinfo.port, rinfo.address);
    });
    const [qp, fp] = [await bind(quiet), await bind(flaky)];
    srv = await startTestServer(primaryYaml({ records: ['db: { a: ["10.0.1.10"] }'], tsig: false, notify: [`127.0.0.1:${qp}`, `127.0.0.1:${fp}`] }), {
      files: { 'inventory.json': inventory([]) },
      logger: log.logger,
      server: { transfer: { notifyWaitsMs: [50, 100, 200, 400] } },
    });
  });
  afterAll(async () => {
    await srv?.close();
    quiet?.close();
    flaky?.close();
  });

  it('retries with growing waits until acknowledged, gives up after the last, and logs the version once', async () => {
    await waitFor('the NOTIFY round to settle', () => (log.lines.some((l) => /NOTIFY/.test(l.msg)) ? true : undefined), 10_000);
    expect(seen.flaky).toBe(3);
    expect(seen.quiet).toBe(4);
    const lines = log.lines.filter((l) => /NOTIFY/.test(l.msg));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: LEVEL.warn, zone: 'internal', acked: [expect.stringMatching(/^127\.0\.0\.1:/)] });
    expect((lines[0] as unknown as { failed: Array<{ attempts: number; reason: string }> }).failed).toEqual([expect.objectContaining({ attempts: 4, reason: 'no answer' })]);
  });
});

describe('reload', () => {
  let srv: TestServer;
  const yaml = (records: string[]) => primaryYaml({ records, tsig: false });
  beforeAll(async () => {
    srv = await startTestServer(yaml(['db: { a: ["10.0.1.10"] }']), { files: { 'inventory.json': inventory([]) } });
  });
  afterAll(async () => srv?.close());

  it('keeps the serial when the records are the same, and moves it (with history) when they change', async () => {
    const before = srv.server.transfer.transferable('internal')!;
    await srv.server.reload(loadConfig(srv.write('eipdns.yaml', yaml(['db: { a: ["10.0.1.10"] }']))));
    expect(srv.server.transfer.transferable('internal')).toBe(before);
    await srv.server.reload(loadConfig(srv.write('eipdns.yaml', yaml(['db: { a: ["10.0.1.10"] }', 'new: { a: ["10.0.1.11"] }']))));
    const after = srv.server.transfer.transferable('internal')!;
    expect(after.serial).toBeGreaterThan(before.serial);
    expect(after.nodes.has('new.internal')).toBe(true);
    const ixfr = await tcpMessages(srv.port, request({ type: TYPE.IXFR, serial: before.serial }).msg);
    expect(srv.server.transfer.stats.served.ixfr).toBe(1);
    expect(rcodeOf(ixfr[0]!)).toBe(RCODE.NOERROR);
  });
});
