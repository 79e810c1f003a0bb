// Elastic IPs answered private, end to end: a real dnsmasq stands in for the
// VPC resolver and answers a company's public name with an EIP's public
// address; eipdns, reading the account's addresses (the inventory file, the
// same code path as DescribeAddresses), answers the EIP's private address
// instead, and follows it when the EIP moves.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventory, inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { dig, dnsmasqQueries, requireTools, startDnsmasq, type Dnsmasq } from './tools.js';

const addresses = (apiPrivate: string | undefined): string =>
  inventory([
    { publicIp: '203.0.113.10', allocationId: 'eipalloc-0a0000000000000a1', tags: { Role: 'api' }, ...(apiPrivate ? { privateIp: apiPrivate } : {}) },
    { publicIp: '203.0.113.11', allocationId: 'eipalloc-0a0000000000000a2', privateIp: '10.0.1.11', tags: { Role: 'db' } },
    // Allocated, not associated: left as the public address.
    { publicIp: '203.0.113.12', allocationId: 'eipalloc-0a0000000000000a3' },
  ]);

let tools: Record<'dig' | 'dnsmasq', string>;
let dnsmasq: Dnsmasq;
let srv: TestServer;

beforeAll(async () => {
  tools = requireTools('dig', 'dnsmasq');
  dnsmasq = await startDnsmasq(tools.dnsmasq, {
    logQueries: true,
    args: [
      '--address=/api.example.test/203.0.113.10',
      '--address=/spare.example.test/203.0.113.12',
      '--address=/www.example.test/198.51.100.80',
      '--local-ttl=300',
    ],
  });
  srv = await startTestServer(
    inventoryConfig({ upstream: dnsmasq.port, ttl: 5, records: ['db: { elastic_ip: { tag: { Role: db } } }'] }),
    { files: { 'inventory.json': addresses('10.0.1.10') } },
  );
  await srv.server.discovery().pollNow();
});

afterAll(async () => {
  await srv?.close();
  await dnsmasq?.stop();
});

const ask = (name: string) => dig(tools.dig, 'dig', { port: srv.port, name });

describe('upstream.rewrite_elastic_ips (default on)', () => {
  it("answers an associated EIP's private address for a public name, with the zone TTL", async () => {
    const r = await ask('api.example.test');
    expect(r.answer.map((a) => [a.data, a.ttl])).toEqual([['10.0.1.10', 5]]);
    expect(r.flags.has('ad')).toBe(false);
  });

  it('leaves an unassociated EIP and every other address untouched', async () => {
    expect((await ask('spare.example.test')).answer.map((a) => a.data)).toEqual(['203.0.113.12']);
    const www = await ask('www.example.test');
    expect(www.answer.map((a) => [a.data, a.ttl])).toEqual([['198.51.100.80', 300]]);
  });

  it('follows the EIP when it moves (one poll), and stops when it is disassociated, with the answer cached all along', async () => {
    srv.write('inventory.json', addresses('10.0.2.20'));
    await srv.server.discovery().pollNow();
    expect((await ask('api.example.test')).answer.map((a) => a.data)).toEqual(['10.0.2.20']);
    srv.write('inventory.json', addresses(undefined));
    await srv.server.discovery().pollNow();
    expect((await ask('api.example.test')).answer.map((a) => a.data)).toEqual(['203.0.113.10']);
    // The rewrite sits above the cache: the upstream was asked once, in the
    // first test, and every answer since (three EIP states) came from the cache.
    expect(dnsmasqQueries(dnsmasq.log()).filter((q) => q.name === 'api.example.test')).toHaveLength(1);
    expect(srv.server.chain().cache?.stats().hits).toBeGreaterThanOrEqual(2);
  });
});
