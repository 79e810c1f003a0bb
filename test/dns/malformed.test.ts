// Hostile and broken input over real sockets: each case gets FORMERR or is
// dropped, and the server keeps answering afterwards. Covers the dns2 hazards
// listed in shared/docs/dns2-and-speed.md.

import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildQuery, decode, query, sendTcp, sendUdp } from '../helpers/dns-client.js';
import { inventory, inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';

let upstream: UpstreamStub;
let srv: TestServer;

beforeAll(async () => {
  upstream = await startUpstreamStub({ records: { 'example.com': ['93.184.216.34'] } });
  srv = await startTestServer(
    inventoryConfig({ upstream: upstream.port, records: ['db: { elastic_ip: { tag: { Role: db } } }'] }),
    {
      files: {
        'inventory.json': inventory([{ publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } }]),
      },
    },
  );
  await srv.server.discovery().pollNow();
});
afterAll(async () => {
  await srv?.close();
  await upstream?.close();
});

async function stillServing(): Promise<void> {
  expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
}

function rcodeOf(reply: Buffer | null | undefined): number | null {
  return reply ? reply[3]! & 0x0f : null;
}

/** Header for one question plus `rest` as the body. */
function message(body: Buffer, counts: { qd?: number; an?: number; ns?: number; ar?: number } = {}): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0xbeef, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(counts.qd ?? 1, 4);
  h.writeUInt16BE(counts.an ?? 0, 6);
  h.writeUInt16BE(counts.ns ?? 0, 8);
  h.writeUInt16BE(counts.ar ?? 0, 10);
  return Buffer.concat([h, body]);
}

const question = buildQuery('db.internal', 'A').subarray(12);

describe('malformed queries', () => {
  it('drops packets shorter than a header, over UDP', async () => {
    for (let len = 0; len < 12; len++) {
      expect(await sendUdp(srv.port, Buffer.alloc(len, 0x41), { timeoutMs: 150 })).toBeNull();
    }
    await stillServing();
  });

  it('closes a TCP connection whose message has no header', async () => {
    expect(await sendTcp(srv.port, [Buffer.alloc(5)], { timeoutMs: 500 })).toEqual([]);
    await stillServing();
  });

  it('never answers a response (QR=1), so it cannot be looped or reflected', async () => {
    const bytes = buildQuery('db.internal', 'A');
    bytes[2]! |= 0x80;
    expect(await sendUdp(srv.port, bytes, { timeoutMs: 200 })).toBeNull();
    await stillServing();
  });

  it.each([
    ['a label length with reserved bits', message(Buffer.from([0x41, 0x61, 0, 0, 1, 0, 1]))],
    ['a label running past the end', message(Buffer.from([10, 0x61, 0x62]))],
    ['a compression pointer in the question', message(Buffer.from([0xc0, 12, 0, 1, 0, 1]))],
    ['a missing QTYPE/QCLASS', message(Buffer.from([2, 0x64, 0x62, 0]))],
    ['trailing garbage after the question', Buffer.concat([message(question), Buffer.from([1, 2, 3])])],
    ['an additional record past the end', message(Buffer.concat([question, Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 9, 1])]), { ar: 1 })],
    ['a compression loop in an additional record', message(Buffer.concat([question, Buffer.from([0xc0, 12 + question.length, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])]), { ar: 1 })],
    ['two OPT records', message(Buffer.concat([question, Buffer.from([0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]), Buffer.from([0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0])]), { ar: 2 })],
    ['a name longer than 255 octets', message(Buffer.concat([Buffer.concat(Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x61)]))), Buffer.from([0, 0, 1, 0, 1])]))],
  ])('answers FORMERR to %s and keeps serving', async (_what, bytes) => {
    const reply = await sendUdp(srv.port, bytes);
    expect(rcodeOf(reply)).toBe(1);
    expect(reply!.readUInt16BE(0)).toBe(0xbeef);
    await stillServing();
  });

  it('handles a 64 KB TCP message made of a long compression-pointer chain without stalling', async () => {
    // Each additional record's owner points at the previous one: a chain a
    // naive decoder follows for every record (dns2 took seconds on this).
    const parts: Buffer[] = [question];
    let offset = 12 + question.length;
    const records = 5000;
    for (let i = 0; i < records; i++) {
      const rr = Buffer.alloc(12);
      if (i === 0) rr.writeUInt16BE(0xc000 | 12, 0);
      else rr.writeUInt16BE(0xc000 | (offset - 12), 0);
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      parts.push(rr);
      offset += 12;
    }
    const big = message(Buffer.concat(parts), { ar: records });
    const [reply] = await sendTcp(srv.port, [big]);
    // A well-formed (if odd) message: answered normally.
    expect(decode(reply!).addresses).toEqual(['10.0.1.10']);
    await stillServing();
  });

  it('survives a burst of random and bit-flipped packets', async () => {
    const valid = buildQuery('db.internal', 'A', { edns: 1232 });
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    sock.on('message', () => undefined);
    for (let i = 0; i < 3000; i++) {
      let pkt: Buffer;
      if (i % 2 === 0) pkt = randomBytes(i % 300);
      else {
        pkt = Buffer.from(valid);
        const flips = 1 + (i % 4);
        for (let f = 0; f < flips; f++) {
          const pos = randomBytes(2).readUInt16BE(0) % pkt.length;
          pkt[pos]! ^= 1 << (i % 8);
        }
      }
      sock.send(pkt, srv.port, '127.0.0.1');
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 100));
    sock.close();
    await stillServing();
  });

  it('ignores a datagram from source port 0 instead of crashing on send()', async () => {
    // Only a raw socket can send from port 0 (CI runs as root, like this test).
    const script = fileURLToPath(new URL('../helpers/send-from-port0.py', import.meta.url));
    execFileSync('python3', [script, String(srv.port), buildQuery('db.internal', 'A').toString('hex')]);
    await new Promise((r) => setTimeout(r, 50));
    await stillServing();
  });
});
