// Admission (ACL) and how the query path reflects discovery state.

import { afterEach, describe, expect, it } from 'vitest';
import { query } from '../helpers/dns-client.js';
import { inventory, inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';

let upstream: UpstreamStub | undefined;
let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  await upstream?.close();
  srv = undefined;
  upstream = undefined;
});

const DB = { publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } };

function yaml(upstreamPort: number, allow: string, listen = '127.0.0.1:0'): string {
  return inventoryConfig({ upstream: upstreamPort, allow: [allow], listen, records: ['db: { elastic_ip: { tag: { Role: db } } }'] });
}

describe('acl', () => {
  it('refuses clients outside acl.allow and forwards nothing for them', async () => {
    upstream = await startUpstreamStub({ records: { 'example.com': ['93.184.216.34'] } });
    srv = await startTestServer(yaml(upstream.port, '10.0.0.0/8'), { files: { 'inventory.json': inventory([DB]) } });
    await srv.server.discovery().pollNow();
    for (const transport of ['udp', 'tcp'] as const) {
      expect((await query(srv.port, 'db.internal', 'A', { transport })).rcode).toBe(5);
      const fwd = await query(srv.port, 'example.com', 'A', { transport });
      expect(fwd.rcode).toBe(5);
      expect(fwd.addresses).toEqual([]);
    }
    expect(upstream.queries).toEqual([]);
  });

  it('serves IPv6 listeners and matches IPv6 CIDRs', async () => {
    upstream = await startUpstreamStub({ records: {} });
    srv = await startTestServer(yaml(upstream.port, '::1/128', '[::1]:0'), { files: { 'inventory.json': inventory([DB]) } });
    await srv.server.discovery().pollNow();
    const a = await query(srv.port, 'db.internal', 'A', { host: '::1' });
    expect(a.addresses).toEqual(['10.0.1.10']);
    expect((await query(srv.port, 'db.internal', 'A', { host: '::1', transport: 'tcp' })).addresses).toEqual(['10.0.1.10']);
  });
});

describe('discovery state on the query path', () => {
  it('follows an edit of the inventory file after the next poll', async () => {
    upstream = await startUpstreamStub({ records: {} });
    srv = await startTestServer(yaml(upstream.port, '127.0.0.0/8'), { files: { 'inventory.json': inventory([DB]) } });
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
    srv.write('inventory.json', inventory([{ ...DB, privateIp: '10.0.1.99' }]));
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.99']);
  });

  it('keeps the last known answer when the inventory becomes unreadable', async () => {
    upstream = await startUpstreamStub({ records: {} });
    srv = await startTestServer(yaml(upstream.port, '127.0.0.0/8'), { files: { 'inventory.json': inventory([DB]) } });
    await srv.server.discovery().pollNow();
    srv.write('inventory.json', '{ this is not json');
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
  });
});
