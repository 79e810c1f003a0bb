// eipdns next to dnsmasq, in both of the places dnsmasq sits in real
// deployments:
// - as a CLIENT: a host's local dnsmasq sends the private zone to eipdns
//   (`server=/internal/127.0.0.1#PORT`) and everything else elsewhere;
// - as the UPSTREAM: dnsmasq stands in for the VPC resolver, and must see
//   forwarded names only, never a name of a private zone.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventory, inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';
import { dig, requireTools, startDnsmasq, waitFor, type Dnsmasq } from './tools.js';

const inventoryWithDbAt = (dbIp: string): string =>
  inventory([
    { publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: dbIp, tags: { Role: 'db' } },
    { publicIp: '198.51.100.11', allocationId: 'eipalloc-0cace000000000001', privateIp: '10.0.1.11', tags: { Role: 'cache' } },
  ]);

const configYaml = (upstreamPort: number): string =>
  inventoryConfig({
    upstream: upstreamPort,
    timeoutMs: 1000,
    records: ['db:    { elastic_ip: { tag: { Role: db } } }', 'cache: { elastic_ip: { allocation_id: eipalloc-0cace000000000001 } }'],
  });

let tools: Record<'dig' | 'dnsmasq', string>;

beforeAll(() => {
  tools = requireTools('dig', 'dnsmasq');
});

describe('dnsmasq as a client of eipdns (server=/internal/127.0.0.1#PORT)', () => {
  let stub: UpstreamStub;
  let srv: TestServer;
  let dnsmasq: Dnsmasq;

  beforeAll(async () => {
    // The stub is both eipdns's upstream and dnsmasq's default server.
    stub = await startUpstreamStub({ records: { 'www.example.com': ['192.0.2.80'] } });
    srv = await startTestServer(configYaml(stub.port), { files: { 'inventory.json': inventoryWithDbAt('10.0.1.10') } });
    await srv.server.discovery().pollNow();
    dnsmasq = await startDnsmasq(tools.dnsmasq, {
      args: [
        // No cache: every query reaches eipdns, so a changed answer shows at
        // once instead of after the 5 s TTL.
        '--cache-size=0',
        `--server=/internal/127.0.0.1#${srv.port}`,
        `--server=127.0.0.1#${stub.port}`,
      ],
    });
  });

  afterAll(async () => {
    await dnsmasq?.stop();
    await srv?.close();
    await stub?.close();
  });

  const viaDnsmasq = (name: string, type = 'A') => dig(tools.dig, 'dig', { port: dnsmasq.port, name, type });

  it("returns eipdns's private IP for a name in the private zone", async () => {
    const r = await viaDnsmasq('db.internal');
    expect(r.status).toBe('NOERROR');
    expect(r.answer.map((a) => a.data)).toEqual(['10.0.1.10']);
    expect(r.answer[0]!.ttl).toBeLessThanOrEqual(5);
  });

  it('relays NXDOMAIN and NODATA from the private zone', async () => {
    expect((await viaDnsmasq('nope.internal')).status).toBe('NXDOMAIN');
    const aaaa = await viaDnsmasq('db.internal', 'AAAA');
    expect(aaaa.status).toBe('NOERROR');
    expect(aaaa.answer).toEqual([]);
  });

  it('sends other names to its other server, and private names never there', async () => {
    const r = await viaDnsmasq('www.example.com');
    expect(r.answer.map((a) => a.data)).toEqual(['192.0.2.80']);
    expect(stub.queries.map((q) => q.name.toLowerCase())).toContain('www.example.com');
    expect(stub.queries.filter((q) => /(^|\.)internal\.?$/i.test(q.name))).toEqual([]);
  });

  it('returns the new IP after the Elastic IP moves and eipdns polls', async () => {
    srv.write('inventory.json', inventoryWithDbAt('10.0.1.20'));
    await srv.server.discovery().pollNow();
    const r = await viaDnsmasq('db.internal');
    expect(r.answer.map((a) => a.data)).toEqual(['10.0.1.20']);
    // The other record is untouched.
    expect((await viaDnsmasq('cache.internal')).answer.map((a) => a.data)).toEqual(['10.0.1.11']);
  });
});

describe('dnsmasq as the upstream (stand-in for the VPC resolver)', () => {
  let upstream: Dnsmasq;
  let srv: TestServer;

  beforeAll(async () => {
    upstream = await startDnsmasq(tools.dnsmasq, { args: ['--address=/example.test/192.0.2.7'], logQueries: true });
    srv = await startTestServer(configYaml(upstream.port), { files: { 'inventory.json': inventoryWithDbAt('10.0.1.10') } });
    await srv.server.discovery().pollNow();
  });

  afterAll(async () => {
    await srv?.close();
    await upstream?.stop();
  });

  const viaEipdns = (name: string, type = 'A', tcp = false) => dig(tools.dig, 'dig', { port: srv.port, name, type, tcp });

  it("forwards a name outside the zones and relays dnsmasq's answer with RA", async () => {
    for (const tcp of [false, true]) {
      const r = await viaEipdns('www.example.test', 'A', tcp);
      expect(r.status).toBe('NOERROR');
      expect(r.flags.has('ra')).toBe(true);
      expect(r.answer.map((a) => `${a.name} ${a.type} ${a.data}`)).toEqual(['www.example.test. A 192.0.2.7']);
    }
  });

  it('never lets a private name reach the upstream', async () => {
    // Every shape of private query: answers, NODATA, NXDOMAIN, the apex, and
    // the reverse name of a private address eipdns serves.
    const asked = [
      await viaEipdns('db.internal'),
      await viaEipdns('DB.Internal', 'A', true),
      await viaEipdns('db.internal', 'AAAA'),
      await viaEipdns('nope.internal'),
      await viaEipdns('deep.nope.internal', 'TXT'),
      await viaEipdns('internal', 'SOA'),
      await viaEipdns('internal', 'NS'),
      await viaEipdns('10.1.0.10.in-addr.arpa', 'PTR'),
    ];
    expect(asked.map((r) => r.status)).toEqual(['NOERROR', 'NOERROR', 'NOERROR', 'NXDOMAIN', 'NXDOMAIN', 'NOERROR', 'NOERROR', 'NOERROR']);
    expect(asked[0]!.answer.map((a) => a.data)).toEqual(['10.0.1.10']);
    expect(asked[7]!.answer.map((a) => a.data)).toEqual(['db.internal.']);

    // A forwarded name last, as a marker: dnsmasq logs in arrival order, so
    // once the marker is in its log, anything sent before it would be too.
    const marker = await viaEipdns('marker.example.test');
    expect(marker.answer.map((a) => a.data)).toEqual(['192.0.2.7']);
    const log = await waitFor('the marker query in the dnsmasq log', () => {
      const text = upstream.log();
      return text.includes('marker.example.test') ? text : undefined;
    });
    expect(log).toMatch(/query\[A\] www\.example\.test from 127\.0\.0\.1/);
    expect(log).not.toMatch(/internal/i);
    expect(log).not.toMatch(/in-addr\.arpa/i);
  });
});
