// /metrics scraped before and after a known set of queries and EC2 polls
// (through the EC2 test server and the real SDK), parsed with a real
// Prometheus text-format parser, checked by exact deltas.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AssociateAddressCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildQuery, decode, query, sendUdp } from '../helpers/dns-client.js';
import { scrape, type Exposition } from '../helpers/prometheus.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';
import { startFakeEc2, type FakeEc2 } from '../ec2/fake-ec2.js';
import { clientFor, manualClock } from '../ec2/helpers.js';
import { keyOf, newSecret, request, tcpMessages } from '../transfer/helpers.js';
import { RCODE, TYPE } from '../../src/wire/codes.js';

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

function yaml(allow = '127.0.0.1/32'): string {
  return `
listen: ["127.0.0.1:0"]
upstream: { servers: ["127.0.0.1:${upstream.port}"], timeout_ms: 2000 }
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
      ops: { a: ["10.0.9.9"] }
acl: { allow: ["${allow}"] }
admin: { listen: "127.0.0.1:0" }
`;
}

/** Every series the test touches, as numbers, so a delta is one subtraction. */
function read(m: Exposition, upstreamLabel: string): Record<string, number> {
  return {
    udp: m.value('eipdns_dns_requests_total', { proto: 'udp' }),
    tcp: m.value('eipdns_dns_requests_total', { proto: 'tcp' }),
    zoneNoerror: m.value('eipdns_dns_responses_total', { rcode: 'NOERROR', source: 'zone' }),
    zoneNxdomain: m.value('eipdns_dns_responses_total', { rcode: 'NXDOMAIN', source: 'zone' }),
    upstreamNoerror: m.value('eipdns_dns_responses_total', { rcode: 'NOERROR', source: 'upstream' }),
    cacheNoerror: m.value('eipdns_dns_responses_total', { rcode: 'NOERROR', source: 'cache' }),
    cacheHits: m.value('eipdns_cache_hits_total'),
    cacheMisses: m.value('eipdns_cache_misses_total'),
    cacheInsertions: m.value('eipdns_cache_insertions_total'),
    cacheEntries: m.value('eipdns_cache_entries'),
    upstreamServfail: m.value('eipdns_dns_responses_total', { rcode: 'SERVFAIL', source: 'upstream' }),
    localRefused: m.value('eipdns_dns_responses_total', { rcode: 'REFUSED', source: 'local' }),
    localFormerr: m.value('eipdns_dns_responses_total', { rcode: 'FORMERR', source: 'local' }),
    aclRefused: m.value('eipdns_dns_acl_refused_total'),
    dropped: m.value('eipdns_dns_dropped_total'),
    timedZone: m.value('eipdns_dns_request_duration_seconds', { source: 'zone' }),
    timedUpstream: m.value('eipdns_dns_request_duration_seconds', { source: 'upstream' }),
    timedCache: m.value('eipdns_dns_request_duration_seconds', { source: 'cache' }),
    timedLocal: m.value('eipdns_dns_request_duration_seconds', { source: 'local' }),
    upstreamSent: m.value('eipdns_upstream_requests_total', { server: upstreamLabel }),
    upstreamTimeouts: m.value('eipdns_upstream_failures_total', { server: upstreamLabel, reason: 'Timeout' }),
    upstreamTimed: m.value('eipdns_upstream_request_duration_seconds', { server: upstreamLabel }),
    forwardTimeout: m.value('eipdns_dns_forward_failures_total', { code: 'Timeout' }),
    budgetRejections: m.value('eipdns_upstream_budget_rejections_total'),
    pollsOk: m.value('eipdns_ec2_polls_total', { kind: 'elastic_ip', result: 'ok' }),
    pollsError: m.value('eipdns_ec2_polls_total', { kind: 'elastic_ip', result: 'error' }),
    pollsInstances: m.value('eipdns_ec2_polls_total', { kind: 'instances', result: 'ok' }),
    throttled: m.value('eipdns_ec2_errors_total', { code: 'RequestLimitExceeded' }),
    pollTimed: m.value('eipdns_ec2_poll_duration_seconds'),
    changed: m.value('eipdns_records_changed_total'),
    reloadsOk: m.value('eipdns_config_reloads_total', { result: 'ok' }),
    reloadsFailed: m.value('eipdns_config_reloads_total', { result: 'failed' }),
  };
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(after)) if (after[k] !== before[k]) out[k] = after[k]! - before[k]!;
  return out;
}

describe('GET /metrics', () => {
  it('counts a known set of queries and polls exactly', async () => {
    const a = fake.addInstance({ privateIps: ['10.0.1.10'] }).instanceId;
    const b = fake.addInstance({ privateIps: ['10.0.1.20'] }).instanceId;
    const alloc = fake.addAddress({ publicIp: '198.51.100.10', tags: { Role: 'db' } }).allocationId;
    fake.associate(alloc, { instanceId: a });
    const clock = manualClock(Date.parse('2026-12-01T12:00:00Z'));
    const client = clientFor(fake);
    srv = await startTestServer(yaml(), {
      ec2Client: client,
      now: clock.now,
      // Every query timed, so the histogram counts are exact too.
      server: { admin: { sampleEvery: 1 }, version: 'test-1.2.3' },
    });
    await srv.server.discovery().pollNow();
    const label = `127.0.0.1:${upstream.port}`;
    const before = read(await scrape(srv.adminPort), label);

    // Queries: two zone answers (one over TCP), an NXDOMAIN, a forward and its cache hit, an ACL refusal, a FORMERR.
    expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
    expect((await query(srv.port, 'ops.internal', 'A', { transport: 'tcp' })).addresses).toEqual(['10.0.9.9']);
    expect((await query(srv.port, 'nope.internal')).rcode).toBe(3);
    expect((await query(srv.port, 'example.com')).addresses).toEqual(['93.184.216.34']);
    expect((await query(srv.port, 'example.com')).addresses).toEqual(['93.184.216.34']); // from the cache
    expect((await query(srv.port, 'db.internal', 'A', { from: '127.0.0.2' })).rcode).toBe(5);
    const twoQuestions = buildQuery('db.internal', 'A');
    twoQuestions.writeUInt16BE(2, 4);
    expect(decode((await sendUdp(srv.port, twoQuestions))!).rcode).toBe(1);

    // Polls: the EIP moves (a success that changes a record), then a throttled one.
    await client.send(new AssociateAddressCommand({ AllocationId: alloc, InstanceId: b, AllowReassociation: true }));
    await srv.server.discovery().pollNow();
    fake.inject({ fault: 'throttle', times: 1 });
    await srv.server.discovery().pollNow();

    // Reloads (SIGHUP's path): a broken file, then a good one.
    const file = join(srv.dir, 'eipdns.yaml');
    writeFileSync(file, `${yaml()}\nbogus: 1\n`);
    await expect(srv.server.reloadFromFile()).rejects.toThrow(/bogus/);
    writeFileSync(file, yaml());
    await srv.server.reloadFromFile();

    clock.advance(5_000);
    const after = await scrape(srv.adminPort);
    expect(delta(before, read(after, label))).toEqual({
      udp: 6,
      tcp: 1,
      zoneNoerror: 2,
      zoneNxdomain: 1,
      upstreamNoerror: 1,
      cacheNoerror: 1,
      cacheHits: 1,
      cacheMisses: 1,
      cacheInsertions: 1,
      cacheEntries: 1,
      localRefused: 1,
      localFormerr: 1,
      aclRefused: 1,
      timedZone: 3,
      timedUpstream: 1,
      timedCache: 1,
      timedLocal: 2,
      upstreamSent: 1,
      upstreamTimed: 1,
      pollsOk: 1,
      pollsError: 1,
      throttled: 1,
      pollTimed: 2,
      changed: 1,
      reloadsOk: 1,
      reloadsFailed: 1,
    });
    // Gauges: the state after the throttled poll, and the age of the data by the injected clock.
    expect(after.value('eipdns_discovery_state', { state: 'degraded' })).toBe(1);
    expect(after.value('eipdns_discovery_state', { state: 'ok' })).toBe(0);
    expect(after.value('eipdns_ec2_snapshot_age_seconds')).toBe(5);
    expect(after.value('eipdns_build_info', { version: 'test-1.2.3', node: process.version })).toBe(1);
    expect(after.value('eipdns_upstream_max_qps')).toBe(900);
    expect(after.value('eipdns_ready')).toBe(1);
    expect(after.value('eipdns_upstream_suspect', { server: label })).toBe(0);
    // Only these transports, sources and kinds ever appear as label values: no
    // client address, no query name. (The zone label names a configured zone.)
    expect(after.value('eipdns_zone_serial', { zone: 'internal', role: 'primary' })).toBeGreaterThan(0);
    const labelValues = new Set(
      after.text
        .split('\n')
        .filter((l) => l.startsWith('eipdns_'))
        .flatMap((l) => [...l.matchAll(/(\w+)="([^"]*)"/g)].filter((m) => m[1] !== 'zone').map((m) => m[2]!)),
    );
    for (const value of labelValues) {
      expect(value, 'a label value').not.toMatch(/internal|example\.com|^127\.0\.0\.2$/);
    }
  });

  it('counts upstream timeouts by server and forward failures by reason', async () => {
    srv = await startTestServer(yaml('127.0.0.0/8').replace('timeout_ms: 2000', 'timeout_ms: 200'), { ec2Client: clientFor(fake) });
    const label = `127.0.0.1:${upstream.port}`;
    const before = read(await scrape(srv.adminPort), label);
    upstream.setBehaviour('silent.example', { drop: true });
    expect((await query(srv.port, 'silent.example')).rcode).toBe(2);
    const after = read(await scrape(srv.adminPort), label);
    expect(delta(before, after)).toMatchObject({ udp: 1, upstreamServfail: 1, upstreamSent: 1, upstreamTimeouts: 1, forwardTimeout: 1 });
    expect(after.upstreamTimed).toBe(before.upstreamTimed);
  });

  it('samples 1 query in 16 for the request-duration histogram by default', async () => {
    srv = await startTestServer(yaml('127.0.0.0/8'), { ec2Client: clientFor(fake) });
    const before = await scrape(srv.adminPort);
    for (let i = 0; i < 32; i++) expect((await query(srv.port, 'ops.internal')).rcode).toBe(0);
    const after = await scrape(srv.adminPort);
    expect(after.value('eipdns_dns_request_duration_seconds', { source: 'zone' }) - before.value('eipdns_dns_request_duration_seconds', { source: 'zone' })).toBe(2);
    expect(after.value('eipdns_dns_responses_total', { rcode: 'NOERROR', source: 'zone' }) - before.value('eipdns_dns_responses_total', { rcode: 'NOERROR', source: 'zone' })).toBe(32);
  });

  it('reports the snapshot age as +Inf before the first successful poll, and prom-client default metrics', async () => {
    fake.inject({ fault: 'throttle' });
    srv = await startTestServer(yaml('127.0.0.0/8'), { ec2Client: clientFor(fake) });
    await srv.server.discovery().pollNow();
    const m = await scrape(srv.adminPort);
    expect(m.value('eipdns_ec2_snapshot_age_seconds')).toBe(Number.POSITIVE_INFINITY);
    expect(m.value('eipdns_discovery_state', { state: 'degraded' })).toBe(1);
    expect(m.value('eipdns_ready')).toBe(0);
    expect(m.family('process_cpu_user_seconds_total').type).toBe('COUNTER');
    expect(m.family('nodejs_eventloop_lag_seconds').type).toBe('GAUGE');
  });

  it('counts zone transfers served and refused', async () => {
    const withTransfer = yaml('127.0.0.0/8').replace('      ops: { a: ["10.0.9.9"] }', '      ops: { a: ["10.0.9.9"] }\n    transfer: { allow: ["127.0.0.1/32"] }');
    srv = await startTestServer(withTransfer, { ec2Client: clientFor(fake) });
    await srv.server.discovery().pollNow();
    const before = await scrape(srv.adminPort);
    const served = await tcpMessages(srv.port, request({ type: TYPE.AXFR }).msg);
    expect(served[0]![3]! & 0x0f).toBe(RCODE.NOERROR);
    const refused = await tcpMessages(srv.port, request({ type: TYPE.AXFR }).msg, { localAddress: '127.0.0.2' });
    expect(refused[0]![3]! & 0x0f).toBe(RCODE.REFUSED);
    const after = await scrape(srv.adminPort);
    const d = (name: string, labels: Record<string, string>): number => after.value(name, labels) - before.value(name, labels);
    expect(d('eipdns_transfer_served_total', { kind: 'axfr' })).toBe(1);
    expect(d('eipdns_transfer_refused_total', { reason: 'acl' })).toBe(1);
    expect(d('eipdns_transfer_served_total', { kind: 'ixfr' })).toBe(0);
  });

  it('counts signed messages from strangers apart from TSIG failures', async () => {
    // 127.0.0.1 is the only client and transfer peer; 127.0.0.2 is neither.
    const withTransfer = yaml().replace('      ops: { a: ["10.0.9.9"] }', '      ops: { a: ["10.0.9.9"] }\n    transfer: { allow: ["127.0.0.1/32"] }');
    srv = await startTestServer(withTransfer, { ec2Client: clientFor(fake) });
    const before = await scrape(srv.adminPort);
    const signed = request({ zone: 'ops.internal', type: TYPE.A, key: keyOf(newSecret()) }).msg;
    expect((await sendUdp(srv.port, signed, { from: '127.0.0.2' }))![3]! & 0x0f).toBe(RCODE.REFUSED);
    expect((await sendUdp(srv.port, signed, { from: '127.0.0.2' }))![3]! & 0x0f).toBe(RCODE.REFUSED);
    // From a client the same message is verified, and fails (no such key here).
    expect((await sendUdp(srv.port, signed, { from: '127.0.0.1' }))![3]! & 0x0f).toBe(RCODE.NOTAUTH);
    const after = await scrape(srv.adminPort);
    const d = (name: string): number => after.value(name) - before.value(name);
    expect(d('eipdns_tsig_strangers_total')).toBe(2);
    expect(d('eipdns_tsig_failures_total')).toBe(1);
    expect(d('eipdns_dns_acl_refused_total')).toBe(0);
  });
});
