// The whole server against the EC2 test server through the real SDK: what a
// DNS client sees while EIPs move and while the EC2 API misbehaves.

import { AssociateAddressCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { query } from '../helpers/dns-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';
import { startFakeEc2, type FakeEc2 } from './fake-ec2.js';
import { clientFor, manualClock } from './helpers.js';

let fake: FakeEc2;
let upstream: UpstreamStub;
let srv: TestServer | undefined;

beforeEach(async () => {
  fake = await startFakeEc2();
  upstream = await startUpstreamStub({ records: { 'example.com': ['93.184.216.34'] } });
});
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  await upstream.close();
  await fake.close();
});

function yaml(extraRecords = '', ec2 = ''): string {
  return `
listen: ["127.0.0.1:0"]
upstream: { servers: ["127.0.0.1:${upstream.port}"], timeout_ms: 300 }
ec2:
  region: us-east-1
  endpoint: "${fake.url}"
  poll_interval_ms: 60000
  request_timeout_ms: 500
${ec2}
zones:
  - name: internal
    ttl: 5
    records:
      db:    { elastic_ip: { tag: { Role: db } } }
      cache: { elastic_ip: { public_ip: 198.51.100.11 } }
      ops:   { a: ["10.0.9.9"] }
${extraRecords}
acl: { allow: ["127.0.0.0/8"] }
`;
}

function twoInstances(): { a: string; b: string; alloc: string } {
  const a = fake.addInstance({ privateIps: ['10.0.1.10'], tags: { Name: 'db-a' } }).instanceId;
  const b = fake.addInstance({ privateIps: ['10.0.1.20'], tags: { Name: 'db-b' } }).instanceId;
  const alloc = fake.addAddress({ publicIp: '198.51.100.10', tags: { Role: 'db' } }).allocationId;
  fake.associate(alloc, { instanceId: a });
  const cache = fake.addAddress({ publicIp: '198.51.100.11' }).allocationId;
  fake.associate(cache, { instanceId: fake.addInstance({ privateIps: ['10.0.1.11'] }).instanceId });
  return { a, b, alloc };
}

describe('with the EC2 API', () => {
  it('answers from DescribeAddresses and follows an AssociateAddress move after one poll', async () => {
    const { b, alloc } = twoInstances();
    const client = clientFor(fake);
    srv = await startTestServer(yaml(), { ec2Client: client });
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
    expect((await query(srv.port, 'cache.internal')).addresses).toEqual(['10.0.1.11']);
    expect((await query(srv.port, 'ops.internal')).addresses).toEqual(['10.0.9.9']);

    await client.send(new AssociateAddressCommand({ AllocationId: alloc, InstanceId: b, AllowReassociation: true }));
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.20']);
  });

  it('makes exactly one DescribeAddresses per poll however many names', async () => {
    twoInstances();
    const many = Array.from({ length: 30 }, (_, i) => `      r${i}: { elastic_ip: { tag: { Role: r${i} } } }`).join('\n');
    srv = await startTestServer(yaml(many), { ec2Client: clientFor(fake) });
    await srv.server.discovery().pollNow();
    fake.clearCalls();
    for (let i = 0; i < 3; i++) await srv.server.discovery().pollNow();
    expect(fake.calls.map((c) => c.action)).toEqual(['DescribeAddresses', 'DescribeAddresses', 'DescribeAddresses']);
  });

  it('answers instances and network_interface records with one call per kind', async () => {
    twoInstances();
    fake.addInstance({ privateIps: ['10.0.5.2'], tags: { Role: 'web' } });
    fake.addInstance({ privateIps: ['10.0.5.1'], tags: { Role: 'web' } });
    fake.addInstance({ privateIps: ['10.0.5.3'], tags: { Role: 'web' }, state: 'stopped' });
    fake.addNetworkInterface({ privateIps: ['10.0.7.7', '10.0.7.8'], networkInterfaceId: 'eni-0123456789abcdef0' });
    srv = await startTestServer(
      yaml(`      web: { instances: { tag: { Role: web } } }\n      nic: { network_interface: { id: eni-0123456789abcdef0 } }`),
      { ec2Client: clientFor(fake) },
    );
    await srv.server.discovery().pollNow();
    fake.clearCalls();
    await srv.server.discovery().pollNow();
    expect(fake.calls.map((c) => c.action).sort()).toEqual(['DescribeAddresses', 'DescribeInstances', 'DescribeNetworkInterfaces']);
    expect([...(await query(srv.port, 'web.internal')).addresses].sort()).toEqual(['10.0.5.1', '10.0.5.2']);
    expect((await query(srv.port, 'nic.internal')).addresses).toEqual(['10.0.7.7']);
  });
});

describe('when the EC2 API fails', () => {
  it('starts, forwards, and answers SERVFAIL for EC2 names until the first successful poll', async () => {
    twoInstances();
    fake.inject({ fault: 'throttle' });
    srv = await startTestServer(yaml(), { ec2Client: clientFor(fake) });
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).rcode).toBe(2);
    expect((await query(srv.port, 'ops.internal')).addresses).toEqual(['10.0.9.9']);
    expect((await query(srv.port, 'example.com')).addresses).toEqual(['93.184.216.34']);
    // AAAA has no data whatever EC2 says.
    expect((await query(srv.port, 'db.internal', 'AAAA')).rcode).toBe(0);
    fake.clearFaults();
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
  });

  it.each(['throttle', '500', 'auth', 'hang', 'reset'] as const)(
    'keeps the last known answers through a %s fault, with a short TTL while stale',
    async (fault) => {
      twoInstances();
      srv = await startTestServer(yaml(), { ec2Client: clientFor(fake, { requestTimeoutMs: 400 }) });
      await srv.server.discovery().pollNow();
      expect((await query(srv.port, 'db.internal')).packet.answers[0]!.ttl).toBe(5);
      fake.inject({ fault });
      await srv.server.discovery().pollNow();
      const a = await query(srv.port, 'db.internal');
      expect(a.addresses).toEqual(['10.0.1.10']);
      expect(a.packet.answers[0]!.ttl).toBe(1);
      fake.clearFaults();
      await srv.server.discovery().pollNow();
      expect((await query(srv.port, 'db.internal')).packet.answers[0]!.ttl).toBe(5);
    },
  );

  it('withholds EC2 answers once they are older than max_stale_ms, but not static ones', async () => {
    twoInstances();
    const clock = manualClock();
    srv = await startTestServer(yaml('', '  max_stale_ms: 60000'), { ec2Client: clientFor(fake), now: clock.now });
    await srv.server.discovery().pollNow();
    fake.inject({ fault: 'throttle' });
    clock.advance(59_000);
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
    clock.advance(2_000);
    await srv.server.discovery().pollNow();
    expect((await query(srv.port, 'db.internal')).rcode).toBe(2);
    expect((await query(srv.port, 'ops.internal')).addresses).toEqual(['10.0.9.9']);
  });
});
