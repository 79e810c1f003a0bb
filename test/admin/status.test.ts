// /status and /ready against a running server: an Elastic IP moved through
// the EC2 test server (AssociateAddress via the real SDK) shows up with
// where it moved from and to; /ready waits for the first snapshot and turns
// 503 the moment a graceful stop begins.

import { AssociateAddressCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderStatus, type StatusModel } from '../../src/admin/status.js';
import { buildQuery, decode, query, sendUdp } from '../helpers/dns-client.js';
import { get } from '../helpers/http-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';
import { startFakeEc2, type FakeEc2 } from '../ec2/fake-ec2.js';
import { clientFor, manualClock } from '../ec2/helpers.js';
import { waitFor } from '../interop/tools.js';

let fake: FakeEc2;
let upstream: UpstreamStub;
let srv: TestServer | undefined;

beforeEach(async () => {
  fake = await startFakeEc2();
  upstream = await startUpstreamStub({ records: { 'slow.example': ['192.0.2.7'] } });
});
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  await upstream.close();
  await fake.close();
});

function yaml(): string {
  return `
listen: ["127.0.0.1:0"]
upstream: { servers: ["127.0.0.1:${upstream.port}"], timeout_ms: 30000 }
ec2:
  region: us-east-1
  endpoint: "${fake.url}"
  poll_interval_ms: 60000
  request_timeout_ms: 2000
zones:
  - name: internal
    ttl: 5
    records:
      db:  { elastic_ip: { tag: { Role: db } } }
      web: { instances: { tag: { Role: web } } }
      ops: { a: ["10.0.9.9"] }
acl: { allow: ["127.0.0.0/8"] }
`;
}

const eniOf = (instanceId: string): string =>
  [...fake.networkInterfaces.values()].find((e) => e.instanceId === instanceId)!.networkInterfaceId;

describe('GET /status', () => {
  it('shows each name with where its address comes from, and a move made through the EC2 API: when, from where, to where', async () => {
    const a = fake.addInstance({ privateIps: ['10.0.1.10'], tags: { Role: 'web' } }).instanceId;
    const b = fake.addInstance({ privateIps: ['10.0.1.20'] }).instanceId;
    const alloc = fake.addAddress({ publicIp: '198.51.100.10', tags: { Role: 'db' } }).allocationId;
    fake.associate(alloc, { instanceId: a });
    const clock = manualClock(Date.parse('2026-12-01T12:00:00Z'));
    const client = clientFor(fake);
    srv = await startTestServer(yaml(), { ec2Client: client, now: clock.now, admin: true, server: { version: 'test-9' } });
    await srv.server.discovery().pollNow();

    clock.set(Date.parse('2026-12-01T12:03:12Z'));
    await client.send(new AssociateAddressCommand({ AllocationId: alloc, InstanceId: b, AllowReassociation: true }));
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.20']);
    clock.set(Date.parse('2026-12-01T12:05:00Z'));

    const r = await get(srv.adminPort, '/status');
    expect(r.status).toBe(200);
    const status = JSON.parse(r.body) as StatusModel;
    const db = status.records.find((x) => x.name === 'db.internal')!;
    const eip = { allocationId: alloc, publicIp: '198.51.100.10' };
    expect(db).toEqual({
      name: 'db.internal',
      zone: 'internal',
      kind: 'elastic_ip',
      selector: 'tag Role=db',
      addresses: ['10.0.1.20'],
      origins: [{ ip: '10.0.1.20', ...eip, instanceId: b, networkInterfaceId: eniOf(b) }],
      since: '2026-12-01T12:03:12.000Z',
      lastChange: {
        at: '2026-12-01T12:03:12.000Z',
        from: [{ ip: '10.0.1.10', ...eip, instanceId: a, networkInterfaceId: eniOf(a) }],
        to: [{ ip: '10.0.1.20', ...eip, instanceId: b, networkInterfaceId: eniOf(b) }],
      },
    });
    expect(status.records.find((x) => x.name === 'web.internal')).toMatchObject({
      kind: 'instances',
      addresses: ['10.0.1.10'],
      origins: [{ ip: '10.0.1.10', instanceId: a }],
      since: '2026-12-01T12:00:00.000Z',
      lastChange: null,
    });
    expect(status.records.find((x) => x.name === 'ops.internal')).toMatchObject({ kind: 'static', addresses: ['10.0.9.9'], origins: [] });
    expect(status).toMatchObject({
      version: 'test-9',
      ready: true,
      waiting: [],
      config: { file: `${srv.dir}/eipdns.yaml`, reloads: { ok: 0, failed: 0 }, lastReloadFailure: null },
      discovery: {
        state: 'ok',
        backend: 'api',
        kinds: ['elastic_ip', 'instances'],
        lastSuccessAt: '2026-12-01T12:03:12.000Z',
        ageSeconds: 108,
        consecutiveFailures: 0,
        lastError: null,
      },
      upstream: {
        servers: [{ server: `127.0.0.1:${upstream.port}`, suspect: false, failures: 0, sent: 0, timeouts: 0, errors: 0 }],
        maxQps: 900,
      },
    });

    // The table `eipdns status` prints answers "when did db.internal last move, and where".
    const table = renderStatus(status);
    const line = table.split('\n').find((l) => l.startsWith('db.internal'))!;
    expect(line).toContain(`198.51.100.10 ${alloc} → ${b}`);
    expect(line).toContain(`12:03:12Z (1m ago): 10.0.1.10 (${a}) → 10.0.1.20 (${b})`);
    expect(table).toMatch(/^ops\.internal +10\.0\.9\.9 +static /m);

    // The zone's serial, as DNS answers it: what a fleet compares to see a move everywhere.
    const soa = await query(srv.port, 'internal', 'SOA');
    const serial = (soa.packet.answers[0] as unknown as { serial: number }).serial;
    expect(serial).toBeGreaterThan(0);
    expect(status.zones).toEqual([{ zone: 'internal', role: 'primary', serial }]);
    expect(table).toContain(`zones internal (primary) serial ${serial}`);
    const metrics = (await get(srv.adminPort, '/metrics')).body;
    expect(metrics).toContain(`eipdns_zone_serial{zone="internal",role="primary"} ${serial}`);
  });

  it('shows the last EC2 error and keeps the record history across a reload', async () => {
    const a = fake.addInstance({ privateIps: ['10.0.1.10'] }).instanceId;
    const b = fake.addInstance({ privateIps: ['10.0.1.20'] }).instanceId;
    const alloc = fake.addAddress({ publicIp: '198.51.100.10', tags: { Role: 'db' } }).allocationId;
    fake.associate(alloc, { instanceId: a });
    const client = clientFor(fake);
    srv = await startTestServer(yaml(), { ec2Client: client, admin: true });
    await srv.server.discovery().pollNow();
    fake.associate(alloc, { instanceId: b });
    await srv.server.discovery().pollNow();
    // A reload that changes discovery's settings builds a new discovery.
    await srv.server.reload({ ...srv.server.config(), ec2: { ...srv.server.config().ec2, pollIntervalMs: 30_000 } });
    await srv.server.discovery().pollNow(); // the new discovery's first poll, and one more
    fake.inject({ fault: 'throttle' });
    await srv.server.discovery().pollNow();

    const status = JSON.parse((await get(srv.adminPort, '/status')).body) as StatusModel;
    expect(status.config.reloads).toEqual({ ok: 1, failed: 0 });
    expect(status.discovery).toMatchObject({
      state: 'degraded',
      consecutiveFailures: 1,
      lastError: { code: 'RequestLimitExceeded', status: 503 },
      snapshot: { stale: true, expired: false },
    });
    const db = status.records.find((x) => x.name === 'db.internal')!;
    expect(db.addresses).toEqual(['10.0.1.20']);
    expect(db.lastChange?.from.map((o) => o.instanceId)).toEqual([a]);
    expect(db.lastChange?.to.map((o) => o.instanceId)).toEqual([b]);
    expect(renderStatus(status)).toContain('last error RequestLimitExceeded: Request limit exceeded.');
  });
});

describe('GET /ready', () => {
  it('is 503, saying what it waits for, until the first snapshot; then 200', async () => {
    fake.addAddress({ publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.inject({ fault: 'throttle' });
    srv = await startTestServer(yaml(), { ec2Client: clientFor(fake), admin: true });
    await srv.server.discovery().pollNow();
    const waiting = await get(srv.adminPort, '/ready');
    expect(waiting.status).toBe(503);
    expect(waiting.body).toBe('not ready:\n- zone internal: waiting for the first EC2 snapshot (2 names without data; last poll failed: RequestLimitExceeded)\n');
    // Health is not readiness: the process serves (static names, forwarding).
    expect((await get(srv.adminPort, '/health')).status).toBe(200);

    fake.clearFaults();
    await srv.server.discovery().pollNow();
    const ready = await get(srv.adminPort, '/ready');
    expect(ready.status).toBe(200);

    // Later EC2 trouble does not make it unready (the whole fleet shares the API).
    fake.inject({ fault: 'throttle' });
    await srv.server.discovery().pollNow();
    expect((await get(srv.adminPort, '/ready')).status).toBe(200);
  });

  it('turns 503 as soon as a graceful stop begins, while a forwarded query is still answered', async () => {
    srv = await startTestServer(yaml(), { ec2Client: clientFor(fake), admin: true });
    await srv.server.discovery().pollNow();
    expect((await get(srv.adminPort, '/ready')).status).toBe(200);
    upstream.setBehaviour('slow.example', { hold: true });
    const reply = sendUdp(srv.port, buildQuery('slow.example', 'A'), { timeoutMs: 30_000 });
    await waitFor('the upstream to receive the query', () => (upstream.queries.length > 0 ? true : undefined));

    // A bound the test never reaches: only the held answer ends the drain.
    const stopped = srv.server.shutdown({ graceMs: 60_000 });
    const lameDuck = await get(srv.adminPort, '/ready');
    expect(lameDuck.status).toBe(503);
    expect(lameDuck.body).toBe('not ready:\n- shutting down\n');
    expect((await get(srv.adminPort, '/health')).status).toBe(200);

    expect(upstream.release('slow.example')).toBe(1);
    const answer = decode((await reply)!);
    expect(answer.addresses).toEqual(['192.0.2.7']);
    expect(await stopped).toEqual({ drained: true });
    await expect(get(srv.adminPort, '/health')).rejects.toThrow(/ECONNREFUSED/);
  });
});
