// A reload that fails after the transfer room's part was built keeps the
// running transfer config entirely: the same secondary zones (still
// polling their old primaries), no new ones started, the same access
// lists, and primary zones' versions (and serials) as they were.

import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SOA } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { RCODE, TYPE } from '../../src/wire/codes.js';
import { inventory, startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../interop/tools.js';
import { primaryYaml, rcodeOf, request, tcpMessages } from './helpers.js';

let primary: TestServer;
let server: TestServer;
/** A would-be new primary: it only counts the connections it gets. */
let other: Server;
let otherPort: number;
let otherConnections = 0;
const sockets = new Set<Socket>();

const yaml = (primaryPort: number): string => `
listen: ["127.0.0.1:0"]
upstream:
  servers: ["127.0.0.1:9"]
  timeout_ms: 300
zones:
  - name: internal
    primaries: ["127.0.0.1:${primaryPort}"]
    transfer: { allow: ["127.0.0.1/32"] }
  - name: local
    records:
      app: { a: ["10.0.5.5"] }
    transfer: { allow: ["127.0.0.1/32"] }
acl:
  allow: ["127.0.0.0/8"]
log:
  level: silent
`;

beforeAll(async () => {
  other = createServer((s) => {
    otherConnections++;
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  otherPort = (other.address() as { port: number }).port;
  primary = await startTestServer(primaryYaml({ records: ['db: { a: ["10.0.1.10"] }'], tsig: false }), { files: { 'inventory.json': inventory([]) } });
  server = await startTestServer(yaml(primary.port));
  await waitFor('the first transfer', () => server.server.transfer.secondary('internal')?.versions.current);
});

afterAll(async () => {
  await server?.close();
  await primary?.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => other?.close(() => resolve()));
});

describe('a reload that fails after the transfer part', () => {
  it('keeps the old transfer config entirely', async () => {
    const room = server.server.transfer;
    const running = room.secondary('internal')!;
    const localBefore = room.transferable('local')!;
    const serialsBefore = room.serials();
    const config = server.server.config();
    const [internal, local] = config.zones as [Config['zones'][number], Config['zones'][number]];
    const next: Config = {
      ...config,
      zones: [
        { ...internal, primaries: [{ host: '127.0.0.1', port: otherPort }], transfer: { allow: ['10.9.9.9/32'], notify: [] } },
        { ...local, records: [...local.records, { fqdn: 'new.local', source: { kind: 'static', addresses: ['10.0.5.6'] } }], transfer: { allow: ['10.9.9.9/32'], notify: [] } },
        { name: 'extra', ttl: 5, records: [], primaries: [{ host: '127.0.0.1', port: otherPort }], soa: DEFAULT_SOA },
      ],
      // Fails after the transfer room's part is built (the ACL is built after it).
      acl: { allow: ['not-an-address/99'] },
    };
    await expect(server.server.reload(next)).rejects.toThrow();
    expect(server.server.config()).toBe(config);
    // The same zones, the same secondary (not stopped: it still asks its primary), nothing new.
    expect(room.serials()).toEqual(serialsBefore);
    expect(room.secondary('internal')).toBe(running);
    expect(room.secondary('extra')).toBeUndefined();
    const upToDate = room.stats.fetched.upToDate;
    await running.refresh();
    expect(room.stats.fetched.upToDate).toBe(upToDate + 1);
    // The primary zone's version did not move with the records that never took effect.
    expect(room.transferable('local')).toBe(localBefore);
    // The old transfer.allow still applies.
    for (const zone of ['internal', 'local']) {
      const axfr = await tcpMessages(server.port, request({ zone, type: TYPE.AXFR }).msg);
      expect(rcodeOf(axfr[0]!)).toBe(RCODE.NOERROR);
    }
    // Nothing ever asked the would-be primary.
    expect(otherConnections).toBe(0);
  });
});
