// Discovery end to end: the real SDK against the loopback fake, polled with
// pollNow() so no assertion depends on timer timing.

import { AssociateAddressCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RecordSource } from '../../src/config/types.js';
import { createDiscovery, pollDelay, type Discovery } from '../../src/ec2/discovery.js';
import { silentLogger } from '../../src/log.js';
import type { Snapshot } from '../../src/zone/snapshot.js';
import { startFakeEc2, type FakeEc2, type FaultKind } from './fake-ec2.js';
import { LEVEL, captureLogger, clientFor, makeConfig, manualClock } from './helpers.js';

let fake: FakeEc2;
let client: EC2Client;
const running: Discovery[] = [];

function track(d: Discovery): Discovery {
  running.push(d);
  return d;
}

/**
 * db: two EIPs tagged Role=db (instances 10.0.1.10 and 10.0.1.9)
 * cache: by allocation id; queue: by public IP, unassociated
 * vip: EIP on the secondary IP 10.0.3.21 of eni-vip
 * web: 5 running Role=web instances + 1 stopped; worker: 1 running
 * nat (ENI by id), edge (ENIs by tag)
 */
function populate(f: FakeEc2): void {
  f.addInstance({ instanceId: 'i-db1', privateIps: ['10.0.1.10'] });
  f.addInstance({ instanceId: 'i-db2', privateIps: ['10.0.1.9'] });
  f.addInstance({ instanceId: 'i-spare', privateIps: ['10.0.1.50'] });
  f.addAddress({ allocationId: 'eipalloc-db1', publicIp: '198.51.100.10', tags: { Role: 'db' } });
  f.addAddress({ allocationId: 'eipalloc-db2', publicIp: '198.51.100.11', tags: { Role: 'db' } });
  f.associate('eipalloc-db1', { instanceId: 'i-db1' });
  f.associate('eipalloc-db2', { instanceId: 'i-db2' });
  f.addInstance({ instanceId: 'i-cache', privateIps: ['10.0.2.5'] });
  f.addAddress({ allocationId: 'eipalloc-cache', publicIp: '198.51.100.20', tags: { Role: 'cache' } });
  f.associate('eipalloc-cache', { instanceId: 'i-cache' });
  f.addAddress({ allocationId: 'eipalloc-queue', publicIp: '203.0.113.25', tags: { Role: 'queue' } });
  f.addInstance({ instanceId: 'i-vip', privateIps: ['10.0.3.20', '10.0.3.21'], networkInterfaceId: 'eni-vip' });
  f.addAddress({ allocationId: 'eipalloc-vip', publicIp: '198.51.100.30' });
  f.associate('eipalloc-vip', { networkInterfaceId: 'eni-vip', privateIpAddress: '10.0.3.21' });
  for (let n = 1; n <= 5; n++) f.addInstance({ privateIps: [`10.0.4.${n * 10}`], tags: { Role: 'web', Env: 'prod' } });
  f.addInstance({ instanceId: 'i-web-stopped', privateIps: ['10.0.4.99'], tags: { Role: 'web', Env: 'prod' }, state: 'stopped' });
  f.addInstance({ privateIps: ['10.0.5.1'], tags: { Role: 'worker' } });
  f.addNetworkInterface({ networkInterfaceId: 'eni-nat', privateIps: ['10.0.6.1', '10.0.6.2'] });
  f.addNetworkInterface({ networkInterfaceId: 'eni-edge-a', privateIps: ['10.0.7.2'], tags: { Role: 'edge' } });
  f.addNetworkInterface({ networkInterfaceId: 'eni-edge-b', privateIps: ['10.0.7.1'], tags: { Role: 'edge' } });
}

const ALL_KINDS: Array<readonly [string, RecordSource]> = [
  ['db', { kind: 'elastic_ip', selector: { tag: { Role: 'db' } } }],
  ['cache', { kind: 'elastic_ip', selector: { allocationId: 'eipalloc-cache' } }],
  ['queue', { kind: 'elastic_ip', selector: { publicIp: '203.0.113.25' } }],
  ['vip', { kind: 'elastic_ip', selector: { allocationId: 'eipalloc-vip' } }],
  ['web', { kind: 'instances', tag: { Role: 'web', Env: 'prod' } }],
  ['worker', { kind: 'instances', tag: { Role: 'worker' } }],
  ['nat', { kind: 'network_interface', id: 'eni-nat' }],
  ['edge', { kind: 'network_interface', tag: { Role: 'edge' } }],
  ['static', { kind: 'static', addresses: ['192.0.2.2', '192.0.2.1'] }],
];

const EIP_ONLY = ALL_KINDS.filter(([, s]) => s.kind === 'elastic_ip');

function records(s: Snapshot): Record<string, readonly string[]> {
  return Object.fromEntries(s.records);
}

beforeEach(async () => {
  fake = await startFakeEc2({ pageSize: 2 });
  populate(fake);
  client = clientFor(fake, { maxAttempts: 1 });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
  client.destroy();
  await fake.close();
  vi.unstubAllEnvs();
});

describe('answers', () => {
  it('publishes the right addresses for every selector kind', async () => {
    const d = track(createDiscovery(makeConfig(ALL_KINDS), silentLogger, { client }));
    // Before the first poll only the static name is known; the rest are absent (SERVFAIL).
    expect(records(d.current())).toEqual({ 'static.internal': ['192.0.2.1', '192.0.2.2'] });
    expect(d.current().generation).toBe(0);

    await d.pollNow();
    const snap = d.current();
    expect(records(snap)).toEqual({
      'db.internal': ['10.0.1.9', '10.0.1.10'],
      'cache.internal': ['10.0.2.5'],
      'queue.internal': [],
      'vip.internal': ['10.0.3.21'],
      'web.internal': ['10.0.4.10', '10.0.4.20', '10.0.4.30', '10.0.4.40', '10.0.4.50'],
      'worker.internal': ['10.0.5.1'],
      'nat.internal': ['10.0.6.1'],
      'edge.internal': ['10.0.7.1', '10.0.7.2'],
      'static.internal': ['192.0.2.1', '192.0.2.2'],
    });
    expect(snap.generation).toBe(1);
    expect(snap.stale).toBeUndefined();
    expect(snap.expired).toBeUndefined();
    expect(Object.isFrozen(snap)).toBe(true);
    expect(Object.isFrozen(snap.records.get('db.internal'))).toBe(true);
  });

  it('makes one call per kind per poll, paging DescribeInstances to the end', async () => {
    const d = track(createDiscovery(makeConfig(ALL_KINDS), silentLogger, { client }));
    await d.pollNow();
    expect(fake.callsFor('DescribeAddresses')).toHaveLength(1);
    // 6 running instances carry Role (5 web + worker) → 3 pages of 2.
    const instanceCalls = fake.callsFor('DescribeInstances');
    expect(instanceCalls).toHaveLength(3);
    expect(instanceCalls[0]?.params).toMatchObject({
      'Filter.1.Name': 'instance-state-name',
      'Filter.1.Value.1': 'running',
      'Filter.2.Name': 'tag-key',
      'Filter.2.Value.1': 'Env',
      'Filter.2.Value.2': 'Role',
      MaxResults: '1000',
    });
    expect(instanceCalls[0]?.params.NextToken).toBeUndefined();
    expect(instanceCalls[1]?.params.NextToken).toBeDefined();
    // Mixed id/tag ENI selectors: one unfiltered listing (4 ENIs of other instances + 3) paged by 2.
    const eniCalls = fake.callsFor('DescribeNetworkInterfaces');
    expect(eniCalls.length).toBeGreaterThan(1);
    expect(eniCalls.every((c, i) => (i === 0) === (c.params.NextToken === undefined))).toBe(true);

    fake.clearCalls();
    await d.pollNow();
    expect(fake.callsFor('DescribeAddresses')).toHaveLength(1);
    expect(fake.callsFor('DescribeInstances')).toHaveLength(3);
  });

  it('uses one DescribeAddresses for many names and calls no other kind', async () => {
    const many: Array<readonly [string, RecordSource]> = [...EIP_ONLY];
    for (let n = 0; n < 30; n++) many.push([`db${n}`, { kind: 'elastic_ip', selector: { tag: { Role: 'db' } } }]);
    const d = track(createDiscovery(makeConfig(many), silentLogger, { client }));
    await d.pollNow();
    await d.pollNow();
    expect(fake.calls.map((c) => c.action)).toEqual(['DescribeAddresses', 'DescribeAddresses']);
    expect(d.current().records.get('db29.internal')).toEqual(['10.0.1.9', '10.0.1.10']);
  });

  it('narrows ENI listing to the ids when every selector has one', async () => {
    const d = track(
      createDiscovery(makeConfig([['nat', { kind: 'network_interface', id: 'eni-nat' }], ['gone', { kind: 'network_interface', id: 'eni-deleted' }]]), silentLogger, { client }),
    );
    await d.pollNow();
    expect(fake.calls.map((c) => c.action)).toEqual(['DescribeNetworkInterfaces']);
    expect(fake.calls[0]?.params).toMatchObject({
      'Filter.1.Name': 'network-interface-id',
      'Filter.1.Value.1': 'eni-deleted',
      'Filter.1.Value.2': 'eni-nat',
    });
    // A deleted ENI does not fail the poll for everyone else.
    expect(records(d.current())).toEqual({ 'nat.internal': ['10.0.6.1'], 'gone.internal': [] });
  });

  it('makes no call at all for static records', async () => {
    const d = track(createDiscovery(makeConfig([['s', { kind: 'static', addresses: ['192.0.2.9'] }]]), silentLogger));
    await d.pollNow();
    expect(fake.calls).toEqual([]);
    expect(records(d.current())).toEqual({ 's.internal': ['192.0.2.9'] });
  });
});

describe('changes', () => {
  it('shows an AssociateAddress move after the next poll and logs it once', async () => {
    const { logger, at } = captureLogger();
    const d = track(createDiscovery(makeConfig(EIP_ONLY), logger, { client }));
    const seen: Array<[number, number]> = [];
    d.onChange((next, previous) => seen.push([previous.generation, next.generation]));
    await d.pollNow();
    expect(at(LEVEL.info).filter((l) => l.msg === 'record data')).toHaveLength(4);

    await client.send(
      new AssociateAddressCommand({ AllocationId: 'eipalloc-cache', InstanceId: 'i-spare', AllowReassociation: true }),
    );
    expect(d.current().records.get('cache.internal')).toEqual(['10.0.2.5']); // not before a poll
    const dbBefore = d.current().records.get('db.internal');

    await d.pollNow();
    expect(d.current().records.get('cache.internal')).toEqual(['10.0.1.50']);
    expect(d.current().generation).toBe(2);
    // Unchanged names keep their array, so consumers can skip them.
    expect(d.current().records.get('db.internal')).toBe(dbBefore);
    const changes = at(LEVEL.info).filter((l) => l.msg === 'record changed');
    expect(changes).toEqual([expect.objectContaining({ record: 'cache.internal', from: ['10.0.2.5'], to: ['10.0.1.50'] })]);
    expect(seen).toEqual([
      [0, 1],
      [1, 2],
    ]);

    // Nothing changed: no publish, no info line.
    const infoLines = at(LEVEL.info).length;
    await d.pollNow();
    expect(d.current().generation).toBe(2);
    expect(at(LEVEL.info)).toHaveLength(infoLines);
    expect(seen).toHaveLength(2);
  });

  it('drops a stopped instance and answers NODATA after a disassociation', async () => {
    const d = track(createDiscovery(makeConfig(ALL_KINDS), silentLogger, { client }));
    await d.pollNow();
    const web = d.current().records.get('web.internal') ?? [];
    const victim = [...fake.instances.values()].find((i) => i.tags.Role === 'web' && i.state === 'running');
    fake.setInstanceState(victim?.instanceId ?? '', 'stopped');
    fake.disassociate('eipalloc-cache');
    await d.pollNow();
    expect(d.current().records.get('web.internal')).toHaveLength(web.length - 1);
    expect(d.current().records.get('cache.internal')).toEqual([]);
  });
});

describe('failures', () => {
  const CASES: Array<[FaultKind, string]> = [
    ['throttle', 'RequestLimitExceeded'],
    ['500', 'InternalError'],
    ['auth', 'AuthFailure'],
    ['forbidden', 'UnauthorizedOperation'],
    ['reset', 'ECONNRESET'],
  ];

  it.each(CASES)('%s keeps the last answers, marks them stale, logs one line, recovers', async (fault, code) => {
    const { logger, at } = captureLogger();
    const d = track(createDiscovery(makeConfig(EIP_ONLY), logger, { client }));
    await d.pollNow();
    const good = d.current();
    expect(good.generation).toBe(1);

    // Meanwhile the EIP moves, but no poll can see it.
    fake.associate('eipalloc-cache', { instanceId: 'i-spare' });
    fake.inject({ fault, action: 'DescribeAddresses' });
    await d.pollNow();
    const stale = d.current();
    expect(stale.records).toBe(good.records);
    expect(stale.stale).toBe(true);
    expect(stale.expired).toBeUndefined();
    expect(stale.generation).toBe(2);

    await d.pollNow();
    await d.pollNow();
    expect(d.current()).toBe(stale); // further failures publish nothing
    expect(fake.callsFor('DescribeAddresses').filter((c) => c.fault === fault)).toHaveLength(3);
    const warns = at(LEVEL.warn);
    expect(warns).toHaveLength(1);
    expect(warns[0]?.msg).toMatch(/degraded/);
    expect(warns[0]?.error).toMatchObject({ code });

    fake.clearFaults();
    await d.pollNow();
    expect(d.current().records.get('cache.internal')).toEqual(['10.0.1.50']);
    expect(d.current().stale).toBeUndefined();
    expect(d.current().generation).toBe(3);
    expect(at(LEVEL.info).filter((l) => l.msg === 'EC2 discovery recovered')).toEqual([
      expect.objectContaining({ failures: 3 }),
    ]);
  });

  it('before any success, names stay absent and one line says so', async () => {
    const { logger, at } = captureLogger();
    fake.inject({ fault: 'throttle' });
    const d = track(createDiscovery(makeConfig(EIP_ONLY), logger, { client }));
    await d.pollNow();
    await d.pollNow();
    expect(d.current().records.size).toBe(0);
    expect(at(LEVEL.warn).map((l) => l.msg)).toEqual([expect.stringMatching(/no data yet/)]);
  });

  it('a partial poll (one kind failing) changes nothing, even names whose call succeeded', async () => {
    const d = track(createDiscovery(makeConfig(ALL_KINDS), silentLogger, { client }));
    await d.pollNow();
    const before = d.current().records;
    fake.associate('eipalloc-cache', { instanceId: 'i-spare' });
    fake.inject({ fault: '500', action: 'DescribeNetworkInterfaces' });
    await d.pollNow();
    expect(d.current().records).toBe(before);
    expect(d.current().records.get('cache.internal')).toEqual(['10.0.2.5']);
    fake.clearFaults();
    await d.pollNow();
    expect(d.current().records.get('cache.internal')).toEqual(['10.0.1.50']);
  });

  it('a single 500 is absorbed by the SDK retry without degrading', async () => {
    const retrying = clientFor(fake, { maxAttempts: 2 });
    const { logger, at } = captureLogger();
    try {
      const d = track(createDiscovery(makeConfig(EIP_ONLY), logger, { client: retrying }));
      fake.inject({ fault: '500', times: 1 });
      await d.pollNow();
      expect(d.current().records.get('db.internal')).toEqual(['10.0.1.9', '10.0.1.10']);
      expect(fake.calls.map((c) => c.attempt?.split(';')[0])).toEqual(['attempt=1', 'attempt=2']);
      expect(at(LEVEL.warn)).toEqual([]);
    } finally {
      retrying.destroy();
    }
  });

  it('a hung call is bounded by the poll deadline (client built from the config)', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    const { logger, at } = captureLogger();
    const config = makeConfig(EIP_ONLY, { endpoint: fake.url, requestTimeoutMs: 300 });
    const d = track(createDiscovery(config, logger));
    await d.pollNow();
    const good = d.current();

    // The fake never answers a hung call: only the deadline can settle the poll.
    fake.inject({ fault: 'hang' });
    await d.pollNow();
    expect(d.current().records).toBe(good.records);
    expect(d.current().stale).toBe(true);
    // The per-attempt timeout (half the budget) let the SDK retry once inside the deadline.
    expect(fake.callsFor('DescribeAddresses').filter((c) => c.fault === 'hang').map((c) => c.attempt)).toEqual([
      'attempt=1; max=2',
      'attempt=2; max=2',
    ]);
    expect(at(LEVEL.warn)[0]?.error).toMatchObject({ code: expect.stringMatching(/^(PollTimeout|TimeoutError)$/) });

    fake.clearFaults();
    await d.pollNow();
    expect(d.current().stale).toBeUndefined();
  });

  it('a hang in one kind fails the whole poll within the deadline', async () => {
    const d = track(createDiscovery(makeConfig(ALL_KINDS, { requestTimeoutMs: 300 }), silentLogger, { client }));
    await d.pollNow();
    const before = d.current().records;
    fake.inject({ fault: 'hang', action: 'DescribeInstances' });
    fake.associate('eipalloc-cache', { instanceId: 'i-spare' });
    await d.pollNow(); // settles only through the deadline
    expect(d.current().records).toBe(before);
  });
});

describe('staleness', () => {
  it('expires after maxStaleMs without a success, then recovers', async () => {
    const clock = manualClock(1_000_000);
    const { logger, at } = captureLogger();
    const d = track(createDiscovery(makeConfig(EIP_ONLY, { maxStaleMs: 10_000 }), logger, { client, now: clock.now }));
    await d.pollNow();
    expect(d.current().fetchedAt).toBe(1_000_000);

    fake.inject({ fault: 'throttle' });
    clock.advance(5_000);
    await d.pollNow();
    expect(d.current().stale).toBe(true);
    expect(d.current().expired).toBeUndefined();

    clock.advance(5_001);
    await d.pollNow();
    const expired = d.current();
    expect(expired.expired).toBe(true);
    expect(expired.records.get('db.internal')).toEqual(['10.0.1.9', '10.0.1.10']); // kept, only withheld
    expect(expired.fetchedAt).toBe(1_000_000);
    expect(at(LEVEL.error)).toEqual([expect.objectContaining({ ageMs: 10_001, maxStaleMs: 10_000 })]);

    clock.advance(60_000);
    await d.pollNow();
    expect(d.current()).toBe(expired);
    expect(at(LEVEL.error)).toHaveLength(1);

    fake.clearFaults();
    await d.pollNow();
    expect(d.current().expired).toBeUndefined();
    expect(d.current().stale).toBeUndefined();
    expect(d.current().fetchedAt).toBe(1_070_001);
    expect(d.current().generation).toBe(expired.generation + 1);
  });
});

describe('seed', () => {
  it('carries over answers whose name and source are unchanged, and nothing else', async () => {
    const clock = manualClock(2_000_000);
    const a = track(createDiscovery(makeConfig(EIP_ONLY, { maxStaleMs: 10_000 }), silentLogger, { client, now: clock.now }));
    await a.pollNow();
    // An unchanged poll much later does not republish; the seed must still know the data is fresh.
    clock.advance(50_000);
    await a.pollNow();
    expect(a.current().fetchedAt).toBe(2_000_000);

    const reloaded = makeConfig(
      [
        ['db', { kind: 'elastic_ip', selector: { tag: { Role: 'db' } } }], // same
        ['cache', { kind: 'elastic_ip', selector: { publicIp: '198.51.100.20' } }], // new source
        ['vip', { kind: 'elastic_ip', selector: { allocationId: 'eipalloc-vip' } }], // same
        ['extra', { kind: 'elastic_ip', selector: { allocationId: 'eipalloc-db1' } }], // new name
        ['s', { kind: 'static', addresses: ['192.0.2.7'] }],
      ],
      { maxStaleMs: 10_000 },
    );
    clock.advance(5_000);
    fake.inject({ fault: 'throttle' });
    const b = track(createDiscovery(reloaded, silentLogger, { client, now: clock.now, seed: a.current() }));
    expect(records(b.current())).toEqual({
      'db.internal': ['10.0.1.9', '10.0.1.10'],
      'vip.internal': ['10.0.3.21'],
      's.internal': ['192.0.2.7'],
    });
    expect(b.current().generation).toBe(a.current().generation + 1);
    expect(b.current().expired).toBeUndefined();

    // First poll fails: carried answers stay, served stale; still within max_stale of A's last success.
    await b.pollNow();
    expect(b.current().records.get('db.internal')).toEqual(['10.0.1.9', '10.0.1.10']);
    expect(b.current().stale).toBe(true);
    expect(b.current().expired).toBeUndefined();

    clock.advance(6_000); // 11 s after A's last confirmation
    await b.pollNow();
    expect(b.current().expired).toBe(true);

    fake.clearFaults();
    await b.pollNow();
    expect(records(b.current())).toEqual({
      'db.internal': ['10.0.1.9', '10.0.1.10'],
      'cache.internal': ['10.0.2.5'],
      'vip.internal': ['10.0.3.21'],
      'extra.internal': ['10.0.1.10'],
      's.internal': ['192.0.2.7'],
    });
  });

  it('trusts a hand-built seed for names the config still has', () => {
    const seed: Snapshot = {
      generation: 41,
      fetchedAt: Date.now(),
      records: new Map([
        ['db.internal', ['10.9.9.9']],
        ['gone.internal', ['10.9.9.8']],
      ]),
    };
    const d = track(createDiscovery(makeConfig(EIP_ONLY), silentLogger, { client, seed }));
    expect(records(d.current())).toEqual({ 'db.internal': ['10.9.9.9'] });
    expect(d.current().generation).toBe(42);
  });
});

describe('timer', () => {
  it('start() polls at once without waiting, keeps polling, and stop() ends it', async () => {
    const d = track(createDiscovery(makeConfig(EIP_ONLY, { pollIntervalMs: 20 }), silentLogger, { client }));
    d.start();
    expect(d.current().generation).toBe(0); // start() returned before the poll finished
    await vi.waitFor(() => expect(fake.calls.length).toBeGreaterThanOrEqual(3), { timeout: 2_000, interval: 10 });
    expect(d.current().records.get('db.internal')).toEqual(['10.0.1.9', '10.0.1.10']);
    await d.stop();
    const n = fake.calls.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.calls.length).toBe(n);
  });

  it('backs off exponentially with jitter while failing, capped at 60 s, and returns to the interval', () => {
    const top = () => 0.999999;
    const bottom = () => 0;
    expect(pollDelay(2_000, 0, top)).toBeCloseTo(1_800, 0);
    expect(pollDelay(2_000, 0, bottom)).toBe(2_000);
    expect([1, 2, 3, 4, 5].map((n) => Math.round(pollDelay(2_000, n, top)))).toEqual([4_000, 8_000, 16_000, 32_000, 60_000]);
    expect(pollDelay(2_000, 30, top)).toBeLessThanOrEqual(60_000);
    expect(pollDelay(2_000, 3, bottom)).toBe(2_000);
  });

  it('keeps retrying on its own timer while failing and recovers once the API answers', async () => {
    const d = track(createDiscovery(makeConfig(EIP_ONLY, { pollIntervalMs: 20 }), silentLogger, { client, random: () => 0.999 }));
    fake.inject({ fault: 'throttle' });
    d.start();
    await vi.waitFor(() => expect(fake.calls.length).toBeGreaterThanOrEqual(4), { timeout: 5_000, interval: 5 });
    fake.clearFaults();
    await vi.waitFor(() => expect(d.current().stale).toBeFalsy(), { timeout: 5_000, interval: 5 });
  });

  it('never runs two polls at once: pollNow() queues behind the one in flight', async () => {
    const d = track(createDiscovery(makeConfig(EIP_ONLY, { requestTimeoutMs: 300 }), silentLogger, { client }));
    fake.inject({ fault: 'hang' });
    const both = Promise.all([d.pollNow(), d.pollNow()]);
    await new Promise((r) => setTimeout(r, 150));
    expect(fake.calls).toHaveLength(1);
    await both;
    expect(fake.calls).toHaveLength(2);
  });

  it('stop() aborts a hung poll at once', async () => {
    fake.inject({ fault: 'hang' });
    // A deadline far beyond the test's timeout: only stop()'s abort can end this poll.
    const d = createDiscovery(makeConfig(EIP_ONLY, { requestTimeoutMs: 600_000 }), silentLogger, { client });
    d.start();
    await vi.waitFor(() => expect(fake.calls.length).toBe(1), { timeout: 2_000, interval: 5 });
    await d.stop();
    expect(fake.calls).toHaveLength(1);
  });
});

describe('the Elastic IP map (upstream.rewrite_elastic_ips)', () => {
  const withRewrite = (recs: Array<readonly [string, RecordSource]>) => {
    const base = makeConfig(recs);
    return { ...base, upstream: { ...base.upstream, rewriteElasticIps: true } };
  };

  it('maps every associated EIP, from the one DescribeAddresses the poll makes anyway', async () => {
    const d = track(createDiscovery(withRewrite(EIP_ONLY), silentLogger, { client }));
    await d.pollNow();
    expect(Object.fromEntries(d.current().elasticIps!)).toEqual({
      '198.51.100.10': '10.0.1.10',
      '198.51.100.11': '10.0.1.9',
      '198.51.100.20': '10.0.2.5',
      '198.51.100.30': '10.0.3.21',
    });
    expect(fake.calls.map((c) => c.action)).toEqual(['DescribeAddresses']);
  });

  it('adds DescribeAddresses to a poll that only needed instances, and publishes when an EIP moves', async () => {
    const d = track(createDiscovery(withRewrite([['web', { kind: 'instances', tag: { Role: 'web', Env: 'prod' } }]]), silentLogger, { client }));
    await d.pollNow();
    expect(new Set(fake.calls.map((c) => c.action))).toEqual(new Set(['DescribeInstances', 'DescribeAddresses']));
    const before = d.current();
    await d.pollNow();
    expect(d.current()).toBe(before); // nothing changed: no new snapshot
    fake.associate('eipalloc-queue', { instanceId: 'i-spare' });
    await d.pollNow();
    expect(d.current().generation).toBe(before.generation + 1);
    expect(d.current().elasticIps!.get('203.0.113.25')).toBe('10.0.1.50');
  });

  it('never starts calling EC2 for a config that polls nothing (static records only)', async () => {
    const d = track(createDiscovery(withRewrite([['static', { kind: 'static', addresses: ['192.0.2.1'] }]]), silentLogger, { client }));
    await d.pollNow();
    expect(d.current().elasticIps).toBeUndefined();
    expect(fake.calls).toHaveLength(0);
  });
});
