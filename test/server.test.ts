// Reload: a new config is applied whole, or not at all.

import { afterEach, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { query } from './helpers/dns-client.js';
import { inventory, inventoryConfig, startTestServer, type TestServer } from './helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from './helpers/upstream-stub.js';

let upstream: UpstreamStub | undefined;
let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  await upstream?.close();
  srv = upstream = undefined;
});

const INVENTORY = inventory([
  { publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } },
  { publicIp: '198.51.100.11', allocationId: 'eipalloc-0cace000000000001', privateIp: '10.0.1.11', tags: { Role: 'cache' } },
]);

function yaml(opts: { records: string[]; allow?: string; listen?: string; upstreamPort: number }): string {
  return inventoryConfig({ upstream: opts.upstreamPort, records: opts.records, listen: opts.listen, allow: opts.allow ? [opts.allow] : undefined });
}

it('applies a reloaded config: new records answer, unchanged ones keep answering without a gap', async () => {
  upstream = await startUpstreamStub();
  const db = 'db: { elastic_ip: { tag: { Role: db } } }';
  srv = await startTestServer(yaml({ records: [db], upstreamPort: upstream.port }), { files: { 'inventory.json': INVENTORY } });
  await srv.server.discovery().pollNow();
  expect((await query(srv.port, 'cache.internal')).rcode).toBe(3);

  const next = parseConfig(
    yaml({ records: [db, 'cache: { elastic_ip: { tag: { Role: cache } } }'], upstreamPort: upstream.port }),
    `${srv.dir}/eipdns.yaml`,
  );
  await srv.server.reload(next);
  // db keeps answering across the swap (the new discovery is seeded with the old snapshot).
  expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
  await srv.server.discovery().pollNow();
  expect((await query(srv.port, 'cache.internal')).addresses).toEqual(['10.0.1.11']);
});

it('applies a new ACL on reload', async () => {
  upstream = await startUpstreamStub();
  const records = ['db: { elastic_ip: { tag: { Role: db } } }'];
  srv = await startTestServer(yaml({ records, upstreamPort: upstream.port }), { files: { 'inventory.json': INVENTORY } });
  await srv.server.discovery().pollNow();
  await srv.server.reload(parseConfig(yaml({ records, allow: '10.0.0.0/8', upstreamPort: upstream.port }), `${srv.dir}/eipdns.yaml`));
  expect((await query(srv.port, 'db.internal')).rcode).toBe(5);
});

it('refuses a reload that would need a rebind and keeps serving the old config', async () => {
  upstream = await startUpstreamStub();
  const records = ['db: { elastic_ip: { tag: { Role: db } } }'];
  srv = await startTestServer(yaml({ records, upstreamPort: upstream.port }), { files: { 'inventory.json': INVENTORY } });
  await srv.server.discovery().pollNow();
  const moved = parseConfig(
    yaml({ records: ['other: { a: ["10.9.9.9"] }'], listen: '127.0.0.1:1', upstreamPort: upstream.port }),
    `${srv.dir}/eipdns.yaml`,
  );
  await expect(srv.server.reload(moved)).rejects.toThrow(/listen/);
  expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
  expect((await query(srv.port, 'other.internal')).rcode).toBe(3);
});
