// The whole query path through real UDP and TCP sockets: private zone answers,
// DNS protocol details (EDNS, truncation, errors) and forwarding.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packet, buildQuery, decode, query, sendTcp, sendUdp } from '../helpers/dns-client.js';
import { inventory, inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';

const T = Packet.TYPE;

const many = Array.from({ length: 40 }, (_, i) => ({
  publicIp: `198.51.100.${100 + i}`,
  allocationId: `eipalloc-0f${i.toString(16).padStart(15, '0')}`,
  privateIp: `10.0.2.${10 + i}`,
  tags: { Role: 'web' },
}));

const INVENTORY = inventory([
  { publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } },
  { publicIp: '198.51.100.11', allocationId: 'eipalloc-0cace000000000001', privateIp: '10.0.1.11', tags: { Role: 'cache' } },
  { publicIp: '203.0.113.25', allocationId: 'eipalloc-0beef000000000001', tags: { Role: 'queue' } },
  { publicIp: '198.51.100.20', allocationId: 'eipalloc-0aa00000000000001', privateIp: '10.0.3.2', tags: { Role: 'pair' } },
  { publicIp: '198.51.100.21', allocationId: 'eipalloc-0aa00000000000002', privateIp: '10.0.3.1', tags: { Role: 'pair' } },
  ...many,
]);

function configYaml(upstreamPort: number): string {
  return inventoryConfig({
    upstream: upstreamPort,
    records: [
      'db:    { elastic_ip: { tag: { Role: db } } }',
      'cache: { elastic_ip: { allocation_id: eipalloc-0cace000000000001 } }',
      'queue: { elastic_ip: { public_ip: 203.0.113.25 } }',
      'pair:  { elastic_ip: { tag: { Role: pair } } }',
      'web:   { elastic_ip: { tag: { Role: web } } }',
      'a.deep: { elastic_ip: { tag: { Role: db } } }',
    ],
  });
}

let upstream: UpstreamStub;
let srv: TestServer;

beforeAll(async () => {
  upstream = await startUpstreamStub({ records: { 'example.com': ['93.184.216.34'] } });
  srv = await startTestServer(configYaml(upstream.port), { files: { 'inventory.json': INVENTORY } });
  await srv.server.discovery().pollNow();
});
afterAll(async () => {
  await srv?.close();
  await upstream?.close();
});

describe('private zone', () => {
  it.each(['udp', 'tcp'] as const)('answers a configured name with the private IP, authoritative, over %s', async (transport) => {
    const a = await query(srv.port, 'db.internal', 'A', { transport, id: 4242 });
    expect(a.packet.header.id).toBe(4242);
    expect(a.rcode).toBe(0);
    expect(a.flags).toMatchObject({ qr: true, aa: true, rd: true, tc: false });
    expect(a.addresses).toEqual(['10.0.1.10']);
    expect(a.packet.answers[0]!.ttl).toBe(5);
  });

  it('selects by allocation id and matches names case-insensitively, echoing the question as asked', async () => {
    const bytes = buildQuery('CaChE.InTeRnAl', 'A');
    const raw = (await sendUdp(srv.port, bytes))!;
    const a = decode(raw);
    expect(a.addresses).toEqual(['10.0.1.11']);
    expect(a.packet.questions[0]!.name).toBe('CaChE.InTeRnAl');
    expect(raw.subarray(12, bytes.length).equals(bytes.subarray(12))).toBe(true);
  });

  it('copies RD from the query', async () => {
    const a = await query(srv.port, 'db.internal', 'A', { rd: false });
    expect(a.flags.rd).toBe(false);
    expect(a.addresses).toEqual(['10.0.1.10']);
  });

  it('answers NODATA with the SOA for AAAA of an IPv4-only name', async () => {
    const a = await query(srv.port, 'db.internal', 'AAAA');
    expect(a.rcode).toBe(0);
    expect(a.flags.aa).toBe(true);
    expect(a.packet.answers).toHaveLength(0);
    expect(a.packet.authorities.map((r) => [r.type, r.name])).toEqual([[T.SOA, 'internal']]);
  });

  it('answers NODATA for a configured name whose EIP is not associated', async () => {
    const a = await query(srv.port, 'queue.internal');
    expect(a.rcode).toBe(0);
    expect(a.packet.answers).toHaveLength(0);
    expect(a.packet.authorities[0]!.type).toBe(T.SOA);
  });

  it('answers NXDOMAIN with the SOA for unknown names and names below a record', async () => {
    for (const name of ['nope.internal', 'x.db.internal']) {
      const a = await query(srv.port, name);
      expect(a.rcode, name).toBe(3);
      expect(a.flags.aa).toBe(true);
      expect(a.packet.authorities[0]!.type).toBe(T.SOA);
    }
  });

  it('answers NODATA (not NXDOMAIN) for an empty non-terminal', async () => {
    const a = await query(srv.port, 'deep.internal');
    expect(a.rcode).toBe(0);
    expect(a.packet.answers).toHaveLength(0);
    expect((await query(srv.port, 'a.deep.internal')).addresses).toEqual(['10.0.1.10']);
  });

  it('never lets a label containing a dot alias a configured name', async () => {
    // One label "db.internal" followed by "internal": not db.internal.internal, not db.internal.
    const label = Buffer.from('db.internal');
    const qname = Buffer.concat([Buffer.from([label.length]), label, Buffer.from([8]), Buffer.from('internal'), Buffer.from([0])]);
    const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    const bytes = Buffer.concat([header, qname, Buffer.from([0, 1, 0, 1])]);
    const reply = (await sendUdp(srv.port, bytes))!;
    expect(reply[3]! & 0x0f).toBe(3);
    expect(reply.readUInt16BE(6)).toBe(0); // no answer records
    expect(reply.subarray(12).equals(bytes.subarray(12))).toBe(true);
  });

  it('answers SOA and NS at the apex', async () => {
    const soa = await query(srv.port, 'internal', 'SOA');
    expect(soa.rcode).toBe(0);
    expect(soa.packet.answers[0]!.type).toBe(T.SOA);
    expect(soa.packet.answers[0]!.minimum).toBe(5);
    const ns = await query(srv.port, 'internal', 'NS');
    expect(ns.packet.answers[0]!.type).toBe(T.NS);
    const a = await query(srv.port, 'internal', 'A');
    expect(a.rcode).toBe(0);
    expect(a.packet.answers).toHaveLength(0);
  });

  it('answers ANY minimally (RFC 8482) with the A RRset only', async () => {
    const a = await query(srv.port, 'db.internal', 'ANY');
    expect(a.packet.answers.map((r) => r.type)).toEqual([T.A]);
  });

  it('gives several A records for a tag matching several EIPs, in sorted order rotated per query', async () => {
    const orders = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const a = await query(srv.port, 'pair.internal');
      expect([...a.addresses].sort()).toEqual(['10.0.3.1', '10.0.3.2']);
      orders.add(a.addresses.join(','));
    }
    expect(orders).toEqual(new Set(['10.0.3.1,10.0.3.2', '10.0.3.2,10.0.3.1']));
  });

  it('refuses zone transfers and other classes', async () => {
    expect((await query(srv.port, 'internal', 'AXFR', { transport: 'tcp' })).rcode).toBe(5);
    expect((await query(srv.port, 'db.internal', 'A', { qclass: 3 })).rcode).toBe(5);
  });

  it('answers PTR for a private IP it knows, authoritative', async () => {
    const a = await query(srv.port, '10.1.0.10.in-addr.arpa', 'PTR');
    expect(a.rcode).toBe(0);
    expect(a.flags.aa).toBe(true);
    expect(a.packet.answers.map((r) => r.domain).sort()).toEqual(['a.deep.internal', 'db.internal']);
  });

  it('never forwards a private name', async () => {
    const before = upstream.queries.length;
    for (const name of ['db.internal', 'nope.internal', 'INTERNAL', 'x.y.z.internal']) {
      await query(srv.port, name, 'A');
      await query(srv.port, name, 'AAAA');
    }
    expect(upstream.queries.slice(before).filter((q) => q.name.toLowerCase().endsWith('internal'))).toEqual([]);
  });
});

describe('EDNS and truncation', () => {
  it('echoes OPT advertising 1232 and the DO bit', async () => {
    const a = await query(srv.port, 'db.internal', 'A', { edns: 4096, dnssecOk: true });
    const opt = a.packet.additionals.find((r) => r.type === T.EDNS)!;
    expect(opt.class).toBe(1232);
    expect(opt.doFlag).toBe(true);
    const plain = await query(srv.port, 'db.internal', 'A');
    expect(plain.packet.additionals).toHaveLength(0);
  });

  it('truncates a UDP answer larger than 512 without EDNS, and gives it whole over TCP', async () => {
    const udp = await query(srv.port, 'web.internal');
    expect(udp.flags.tc).toBe(true);
    expect(udp.packet.answers).toHaveLength(0);
    expect(udp.raw.length).toBeLessThanOrEqual(512);
    const tcp = await query(srv.port, 'web.internal', 'A', { transport: 'tcp' });
    expect(tcp.flags.tc).toBe(false);
    expect(tcp.addresses).toHaveLength(40);
    const edns = await query(srv.port, 'web.internal', 'A', { edns: 1232 });
    expect(edns.flags.tc).toBe(false);
    expect(edns.addresses).toHaveLength(40);
  });

  it('answers BADVERS to an unknown EDNS version', async () => {
    const bytes = buildQuery('db.internal', 'A', { edns: 1232 });
    bytes[bytes.length - 11 + 6] = 1; // OPT TTL byte 2 = version
    const a = decode((await sendUdp(srv.port, bytes))!);
    const opt = a.packet.additionals.find((r) => r.type === T.EDNS)!;
    expect(opt.extendedRcode).toBe(1); // (1 << 4) | 0 = 16 = BADVERS
    expect(a.packet.answers).toHaveLength(0);
  });
});

describe('TCP (RFC 7766)', () => {
  it('answers several queries on one connection', async () => {
    const msgs = ['db.internal', 'cache.internal', 'nope.internal'].map((n, i) => buildQuery(n, 'A', { id: 100 + i }));
    const replies = (await sendTcp(srv.port, msgs)).map(decode);
    expect(replies.map((r) => r.packet.header.id).sort()).toEqual([100, 101, 102]);
    const byId = new Map(replies.map((r) => [r.packet.header.id, r]));
    expect(byId.get(100)!.addresses).toEqual(['10.0.1.10']);
    expect(byId.get(102)!.rcode).toBe(3);
  });

  it('handles a query split across several TCP segments', async () => {
    const q = buildQuery('db.internal', 'A');
    const framed = Buffer.concat([Buffer.from([0, q.length]), q]);
    const replies = await sendTcp(srv.port, [framed.subarray(0, 1), framed.subarray(1, 7), framed.subarray(7)], { raw: true, expect: 1 });
    expect(decode(replies[0]!).addresses).toEqual(['10.0.1.10']);
  });
});

describe('forwarding', () => {
  it('forwards other names to the upstream only, relaying its answer with RA', async () => {
    const a = await query(srv.port, 'example.com', 'A', { id: 777 });
    expect(a.packet.header.id).toBe(777);
    expect(a.addresses).toEqual(['93.184.216.34']);
    expect(a.flags.ra).toBe(true);
    expect(upstream.queries.some((q) => q.name === 'example.com')).toBe(true);
  });

  it('relays the upstream rcode', async () => {
    upstream.setBehaviour('gone.example', { rcode: 3 });
    expect((await query(srv.port, 'gone.example')).rcode).toBe(3);
  });

  it('forwards reverse names it does not own', async () => {
    upstream.setBehaviour('4.3.2.1.in-addr.arpa', { rcode: 3 });
    expect((await query(srv.port, '4.3.2.1.in-addr.arpa', 'PTR')).rcode).toBe(3);
    expect(upstream.queries.some((q) => q.name === '4.3.2.1.in-addr.arpa')).toBe(true);
  });

  it('answers SERVFAIL when the upstream does not answer', async () => {
    upstream.setBehaviour('slow.example', { drop: true });
    const a = await query(srv.port, 'slow.example');
    expect(a.rcode).toBe(2);
    // and it is still serving
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
  });
});

describe('errors', () => {
  it('answers NOTIMP to opcodes other than QUERY and NOTIFY', async () => {
    const bytes = buildQuery('db.internal', 'A');
    bytes[2] = (bytes[2]! & 0x87) | (5 << 3); // UPDATE
    const a = decode((await sendUdp(srv.port, bytes))!);
    expect(a.rcode).toBe(4);
    expect(a.packet.header.opcode).toBe(5);
  });

  it('answers NOTIFY for a zone it is not a secondary of with NOTAUTH (src/transfer)', async () => {
    const bytes = buildQuery('internal', 'SOA');
    bytes[2] = (bytes[2]! & 0x87) | (4 << 3); // NOTIFY
    const a = decode((await sendUdp(srv.port, bytes))!);
    expect(a.rcode).toBe(9);
    expect(a.packet.header.opcode).toBe(4);
  });

  it.each([0, 2])('answers FORMERR to QDCOUNT %i', async (count) => {
    const bytes = buildQuery('db.internal', 'A', { id: 9 });
    bytes.writeUInt16BE(count, 4);
    const reply = (await sendUdp(srv.port, bytes))!;
    expect(reply.readUInt16BE(0)).toBe(9);
    expect(reply[3]! & 0x0f).toBe(1);
  });
});
