// `eipdns claim` end to end over real sockets: the real SDK against the fake
// EC2 endpoint, the instance identity from a fake IMDS that enforces IMDSv2,
// and a Config from the real loader.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { claim } from '../../src/ec2/claim.js';
import { startFakeImds, type FakeImds } from '../helpers/fake-imds.js';
import { startFakeEc2, type FakeEc2 } from './fake-ec2.js';
import { clientFor, TEST_CREDENTIALS } from './helpers.js';

const ME = 'i-0aaaaaaaaaaaaaaa1';
const OTHER = 'i-0bbbbbbbbbbbbbbb2';
const THIRD = 'i-0ccccccccccccccc3';
const ALLOC = 'eipalloc-0000000000000000a';
const ALLOC_B = 'eipalloc-0000000000000000b';
const ALLOC_C = 'eipalloc-0000000000000000c';

let fake: FakeEc2;
let imds: FakeImds;
let client: EC2Client;

beforeEach(async () => {
  fake = await startFakeEc2();
  imds = await startFakeImds({ instanceId: ME, region: 'us-east-1' });
  client = clientFor(fake);
  fake.addInstance({ instanceId: ME, privateIps: ['10.0.1.10'] });
  fake.addInstance({ instanceId: OTHER, privateIps: ['10.0.1.20'] });
});

afterEach(async () => {
  vi.unstubAllEnvs();
  client.destroy();
  await Promise.all([fake.close(), imds.close()]);
});

function configText(options: { region?: string | undefined; extraEc2?: string[] } = {}): string {
  const region = 'region' in options ? options.region : 'us-east-1';
  return [
    'ec2:',
    ...(region !== undefined ? [`  region: ${region}`] : []),
    `  endpoint: "${fake.url}"`,
    '  request_timeout_ms: 2000',
    ...(options.extraEc2 ?? []),
    'zones:',
    '  - name: internal',
    '    records:',
    '      db: { elastic_ip: { tag: { Role: db } } }',
    `      cache: { elastic_ip: { allocation_id: ${ALLOC} } }`,
    '      web: { instances: { tag: { Role: web } } }',
    '      ops: { a: ["10.0.9.9"] }',
    '',
  ].join('\n');
}

function makeConfig(options?: Parameters<typeof configText>[0]): Config {
  return parseConfig(configText(options), '/test/eipdns.yaml');
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  return { stream, text: () => chunks.join('') };
}

interface RunOptions {
  force?: boolean;
  config?: Config;
  /** Default: the test client. `null`: claim builds its own from the config. */
  client?: EC2Client | null;
  /** Default: the fake IMDS passed as imdsEndpoint. */
  imdsEndpoint?: string | null;
  env?: NodeJS.ProcessEnv;
}

async function run(name: string, options: RunOptions = {}): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const ownClient = options.client === null ? {} : { client: options.client ?? client };
  const imdsEndpoint = options.imdsEndpoint === null ? {} : { imdsEndpoint: options.imdsEndpoint ?? imds.url };
  const code = await claim(options.config ?? makeConfig(), name, {
    force: options.force ?? false,
    out: out.stream,
    err: err.stream,
    ...ownClient,
    ...imdsEndpoint,
    // Never the real environment: a developer's AWS_EC2_METADATA_SERVICE_ENDPOINT must not leak in.
    env: options.env ?? {},
  });
  return { code, out: out.text(), err: err.text() };
}

const associationOf = (allocationId: string) => fake.addresses.get(allocationId)?.association;
const associateCalls = () => fake.callsFor('AssociateAddress').map((c) => c.params);
/** The InstanceId.N list of each DescribeInstances call, in order. */
const describedInstanceIds = () =>
  fake.callsFor('DescribeInstances').map((c) =>
    Object.keys(c.params)
      .filter((k) => /^InstanceId\.\d+$/.test(k))
      .sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)))
      .map((k) => c.params[k]),
  );

describe('claim: a single matching Elastic IP', () => {
  it('associates an unassociated address with this instance, refusing reassociation', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });

    // Case and a trailing dot do not matter, as in DNS.
    const r = await run('DB.Internal.');

    expect(r).toEqual({
      code: 0,
      out: `db.internal: associated ${ALLOC} (198.51.100.10) with ${ME} (was: unassociated)\n`,
      err: '',
    });
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: ME, privateIpAddress: '10.0.1.10' });
    expect(associateCalls()).toEqual([
      expect.objectContaining({ AllocationId: ALLOC, InstanceId: ME, AllowReassociation: 'false' }),
    ]);
    // Nobody held it, so nobody's state needed checking.
    expect(fake.callsFor('DescribeInstances')).toEqual([]);
  });

  it('does nothing when the address is already on this instance', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.associate(ALLOC, { instanceId: ME });
    const before = associationOf(ALLOC);

    const r = await run('db.internal');

    expect(r).toEqual({
      code: 0,
      out: `db.internal: ${ALLOC} (198.51.100.10) already associated with ${ME} (10.0.1.10); nothing to do\n`,
      err: '',
    });
    expect(associateCalls()).toEqual([]);
    expect(associationOf(ALLOC)).toBe(before);
  });

  it('refuses to take the address from another running instance', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.associate(ALLOC, { instanceId: OTHER });
    const before = associationOf(ALLOC);

    const r = await run('db.internal');

    expect(r.code).toBe(3);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      `eipdns claim: db.internal: ${ALLOC} (198.51.100.10) is associated with ${OTHER} (10.0.1.20) running; ` +
        'refusing to take it from a live holder (an instance cloned from its image must not steal the address); ' +
        'use --force to take it anyway\n',
    );
    expect(associateCalls()).toEqual([]);
    expect(associationOf(ALLOC)).toBe(before);
    expect(fake.callsFor('DescribeInstances').map((c) => c.params['InstanceId.1'])).toEqual([OTHER]);
  });

  it('takes it from a running instance with --force', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.associate(ALLOC, { instanceId: OTHER });

    const r = await run('db.internal', { force: true });

    expect(r).toEqual({
      code: 0,
      out: `db.internal: associated ${ALLOC} (198.51.100.10) with ${ME} (was: ${OTHER} (10.0.1.20) running)\n`,
      err: '',
    });
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: ME });
    expect(associateCalls()).toEqual([
      expect.objectContaining({ AllocationId: ALLOC, InstanceId: ME, AllowReassociation: 'true' }),
    ]);
  });

  it('takes it from a stopped instance without --force', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.associate(ALLOC, { instanceId: OTHER });
    fake.setInstanceState(OTHER, 'stopped');

    const r = await run('db.internal');

    expect(r).toEqual({
      code: 0,
      out: `db.internal: associated ${ALLOC} (198.51.100.10) with ${ME} (was: ${OTHER} (10.0.1.20) stopped)\n`,
      err: '',
    });
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: ME });
    expect(associateCalls()).toEqual([expect.objectContaining({ AllowReassociation: 'true' })]);
  });

  it('takes it from an instance EC2 no longer knows', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10' });
    fake.associate(ALLOC, { instanceId: OTHER });
    fake.instances.delete(OTHER); // DescribeInstances now answers InvalidInstanceID.NotFound

    const r = await run('cache.internal');

    expect(r.code).toBe(0);
    expect(r.out).toBe(`cache.internal: associated ${ALLOC} (198.51.100.10) with ${ME} (was: ${OTHER} not found)\n`);
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: ME });
  });

  it('treats a pending holder as live', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.associate(ALLOC, { instanceId: OTHER });
    fake.setInstanceState(OTHER, 'pending');

    const r = await run('db.internal');

    expect(r.code).toBe(3);
    expect(r.err).toContain(`${OTHER} (10.0.1.20) pending`);
    expect(associateCalls()).toEqual([]);
  });

  it('refuses to take it from a network interface no instance owns (a NAT gateway, say)', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    const eni = fake.addNetworkInterface({ privateIps: ['10.0.1.99'] });
    fake.associate(ALLOC, { networkInterfaceId: eni.networkInterfaceId });

    const r = await run('db.internal');

    expect(r.code).toBe(3);
    expect(r.err).toContain(`is associated with network interface ${eni.networkInterfaceId}`);
    expect(associateCalls()).toEqual([]);
  });

  it('fails when no Elastic IP matches, naming the selector and region', async () => {
    fake.addAddress({ allocationId: ALLOC_B, publicIp: '198.51.100.11', tags: { Role: 'cache' } });

    const r = await run('db.internal');

    expect(r).toEqual({
      code: 1,
      out: '',
      err: 'eipdns claim: db.internal: no Elastic IP matches tag Role=db in us-east-1\n',
    });
    expect(associateCalls()).toEqual([]);
  });
});

describe('claim: a tag matching several Elastic IPs', () => {
  beforeEach(() => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.addAddress({ allocationId: ALLOC_B, publicIp: '198.51.100.11', tags: { Role: 'db' } });
  });

  const RULE =
    '(rule: one already on this instance, else an unassociated one, else one whose instance is stopped or gone, ' +
    'else with --force the first by allocation id)';

  it('prefers the one already on this instance: nothing to do', async () => {
    fake.associate(ALLOC_B, { instanceId: ME });

    const r = await run('db.internal');

    expect(r.code).toBe(0);
    expect(r.out).toBe(
      `db.internal: 2 Elastic IPs match tag Role=db; chose ${ALLOC_B} (198.51.100.11), already on this instance ${RULE}\n` +
        `db.internal: ${ALLOC_B} (198.51.100.11) already associated with ${ME} (10.0.1.10); nothing to do\n`,
    );
    expect(associateCalls()).toEqual([]);
  });

  it('else takes an unassociated one, leaving the others alone', async () => {
    fake.associate(ALLOC, { instanceId: OTHER });

    const r = await run('db.internal');

    expect(r.code).toBe(0);
    expect(r.out).toBe(
      `db.internal: 2 Elastic IPs match tag Role=db; chose ${ALLOC_B} (198.51.100.11), unassociated ${RULE}\n` +
        `db.internal: associated ${ALLOC_B} (198.51.100.11) with ${ME} (was: unassociated)\n`,
    );
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: OTHER });
    expect(associationOf(ALLOC_B)).toMatchObject({ instanceId: ME });
  });

  it('refuses to pick when all are held by live holders: a running instance, an ENI with no instance', async () => {
    fake.associate(ALLOC, { instanceId: OTHER });
    const eni = fake.addNetworkInterface({ privateIps: ['10.0.1.99'] });
    fake.associate(ALLOC_B, { networkInterfaceId: eni.networkInterfaceId });

    const r = await run('db.internal');

    expect(r.code).toBe(3);
    expect(r.err).toBe(
      `eipdns claim: db.internal: 2 Elastic IPs match tag Role=db and all are associated with live holders ` +
        `(${ALLOC} on ${OTHER} (10.0.1.20) running, ${ALLOC_B} on network interface ${eni.networkInterfaceId}); ` +
        `refusing to pick one ${RULE}; use --force to take ${ALLOC}\n`,
    );
    expect(associateCalls()).toEqual([]);
    // Only the instance is looked up; an ENI without one has no state to read.
    expect(describedInstanceIds()).toEqual([[OTHER]]);
  });

  it('with --force takes the first by allocation id', async () => {
    fake.associate(ALLOC_B, { instanceId: OTHER });
    const eni = fake.addNetworkInterface({ privateIps: ['10.0.1.99'] });
    fake.associate(ALLOC, { networkInterfaceId: eni.networkInterfaceId });

    const r = await run('db.internal', { force: true });

    expect(r).toEqual({
      code: 0,
      out:
        `db.internal: 2 Elastic IPs match tag Role=db; chose ${ALLOC} (198.51.100.10), ` +
        `every holder live; first by allocation id (--force) ${RULE}\n` +
        `db.internal: associated ${ALLOC} (198.51.100.10) with ${ME} (was: network interface ${eni.networkInterfaceId})\n`,
      err: '',
    });
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: ME });
    expect(associationOf(ALLOC_B)).toMatchObject({ instanceId: OTHER });
  });
});

describe('claim: several matching Elastic IPs, all held by other instances', () => {
  beforeEach(() => {
    fake.addInstance({ instanceId: THIRD, privateIps: ['10.0.1.30'] });
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.addAddress({ allocationId: ALLOC_B, publicIp: '198.51.100.11', tags: { Role: 'db' } });
    fake.associate(ALLOC, { instanceId: OTHER });
    fake.associate(ALLOC_B, { instanceId: THIRD });
  });

  const RULE =
    '(rule: one already on this instance, else an unassociated one, else one whose instance is stopped or gone, ' +
    'else with --force the first by allocation id)';

  it('takes the one whose holder is stopped, without --force, asking about all holders at once', async () => {
    fake.setInstanceState(THIRD, 'stopped');

    const r = await run('db.internal');

    expect(r).toEqual({
      code: 0,
      out:
        `db.internal: 2 Elastic IPs match tag Role=db; chose ${ALLOC_B} (198.51.100.11), ` +
        `its holder ${THIRD} (10.0.1.30) stopped ${RULE}\n` +
        `db.internal: associated ${ALLOC_B} (198.51.100.11) with ${ME} (was: ${THIRD} (10.0.1.30) stopped)\n`,
      err: '',
    });
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: OTHER });
    expect(associationOf(ALLOC_B)).toMatchObject({ instanceId: ME });
    expect(associateCalls()).toEqual([
      expect.objectContaining({ AllocationId: ALLOC_B, InstanceId: ME, AllowReassociation: 'true' }),
    ]);
    // One DescribeInstances for every holder; the chosen holder is not asked about again.
    expect(describedInstanceIds()).toEqual([[OTHER, THIRD]]);
  });

  it('with --force still takes the stopped holder\'s address, not the first by allocation id', async () => {
    fake.setInstanceState(THIRD, 'stopped');

    const r = await run('db.internal', { force: true });

    expect(r.code).toBe(0);
    expect(r.out).toContain(`chose ${ALLOC_B} (198.51.100.11), its holder ${THIRD} (10.0.1.30) stopped`);
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: OTHER });
    expect(associationOf(ALLOC_B)).toMatchObject({ instanceId: ME });
  });

  it.each(['stopping', 'shutting-down', 'terminated'] as const)('counts a %s holder as gone', async (state) => {
    fake.setInstanceState(OTHER, state);

    const r = await run('db.internal');

    expect(r.code).toBe(0);
    expect(r.out).toContain(`chose ${ALLOC} (198.51.100.10), its holder ${OTHER} (10.0.1.20) ${state}`);
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: ME });
    expect(associationOf(ALLOC_B)).toMatchObject({ instanceId: THIRD });
  });

  it('refuses when every holder is running, naming each with its state', async () => {
    const r = await run('db.internal');

    expect(r).toEqual({
      code: 3,
      out: '',
      err:
        `eipdns claim: db.internal: 2 Elastic IPs match tag Role=db and all are associated with live holders ` +
        `(${ALLOC} on ${OTHER} (10.0.1.20) running, ${ALLOC_B} on ${THIRD} (10.0.1.30) running); ` +
        `refusing to pick one ${RULE}; use --force to take ${ALLOC}\n`,
    });
    expect(associateCalls()).toEqual([]);
    expect(describedInstanceIds()).toEqual([[OTHER, THIRD]]);
  });

  it('treats a pending holder as live', async () => {
    fake.setInstanceState(THIRD, 'pending');

    const r = await run('db.internal');

    expect(r.code).toBe(3);
    expect(r.err).toContain(`${ALLOC_B} on ${THIRD} (10.0.1.30) pending`);
    expect(associateCalls()).toEqual([]);
  });

  it('with --force, every holder running, takes the first by allocation id', async () => {
    const r = await run('db.internal', { force: true });

    expect(r).toEqual({
      code: 0,
      out:
        `db.internal: 2 Elastic IPs match tag Role=db; chose ${ALLOC} (198.51.100.10), ` +
        `every holder live; first by allocation id (--force) ${RULE}\n` +
        `db.internal: associated ${ALLOC} (198.51.100.10) with ${ME} (was: ${OTHER} (10.0.1.20) running)\n`,
      err: '',
    });
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: ME });
    expect(associationOf(ALLOC_B)).toMatchObject({ instanceId: THIRD });
    expect(describedInstanceIds()).toEqual([[OTHER, THIRD]]);
  });

  it('takes the one whose holder EC2 no longer knows, among running ones', async () => {
    const GONE = 'i-0ddddddddddddddd4';
    fake.addInstance({ instanceId: GONE, privateIps: ['10.0.1.40'] });
    fake.addAddress({ allocationId: ALLOC_C, publicIp: '198.51.100.12', tags: { Role: 'db' } });
    fake.associate(ALLOC_C, { instanceId: GONE });
    fake.setInstanceState(GONE, 'terminated');
    fake.instances.delete(GONE); // terminated long enough ago that EC2 forgot it

    const r = await run('db.internal');

    expect(r).toEqual({
      code: 0,
      out:
        `db.internal: 3 Elastic IPs match tag Role=db; chose ${ALLOC_C} (198.51.100.12), ` +
        `its holder ${GONE} not found ${RULE}\n` +
        `db.internal: associated ${ALLOC_C} (198.51.100.12) with ${ME} (was: ${GONE} not found)\n`,
      err: '',
    });
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: OTHER });
    expect(associationOf(ALLOC_B)).toMatchObject({ instanceId: THIRD });
    expect(associationOf(ALLOC_C)).toMatchObject({ instanceId: ME });
    // The unknown id fails the whole call, as on EC2; then each id is asked about alone.
    expect(describedInstanceIds()).toEqual([[OTHER, THIRD, GONE], [OTHER], [THIRD], [GONE]]);
    await expect(client.send(new DescribeInstancesCommand({ InstanceIds: [OTHER, GONE] }))).rejects.toMatchObject({
      name: 'InvalidInstanceID.NotFound',
      $metadata: { httpStatusCode: 400 },
    });
  });

  it('asks about an instance holding two of the addresses once', async () => {
    const TWO_IPS = 'i-0eeeeeeeeeeeeeee5';
    fake.addInstance({ instanceId: TWO_IPS, privateIps: ['10.0.1.50', '10.0.1.51'], state: 'stopped' });
    fake.associate(ALLOC, { instanceId: TWO_IPS, privateIpAddress: '10.0.1.50' });
    fake.associate(ALLOC_B, { instanceId: TWO_IPS, privateIpAddress: '10.0.1.51' });

    const r = await run('db.internal');

    expect(r.code).toBe(0);
    expect(r.out).toContain(`chose ${ALLOC} (198.51.100.10), its holder ${TWO_IPS} (10.0.1.50) stopped`);
    expect(describedInstanceIds()).toEqual([[TWO_IPS]]);
  });

  it('takes nothing when the holders\' states cannot be read, even with --force', async () => {
    fake.setInstanceState(THIRD, 'stopped');
    fake.inject({ action: 'DescribeInstances', fault: 'forbidden' });

    const r = await run('db.internal', { force: true });

    expect(r).toEqual({
      code: 1,
      out: '',
      err:
        `eipdns claim: db.internal: DescribeInstances ${OTHER}, ${THIRD} failed: ` +
        'UnauthorizedOperation: You are not authorized to perform this operation.\n',
    });
    expect(associateCalls()).toEqual([]);
    expect(associationOf(ALLOC_B)).toMatchObject({ instanceId: THIRD });
  });
});

describe('claim: instance metadata', () => {
  it('finds IMDS through AWS_EC2_METADATA_SERVICE_ENDPOINT and uses a session token', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });

    const r = await run('db.internal', {
      imdsEndpoint: null,
      env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url },
      config: makeConfig({ region: undefined }),
    });

    expect(r.code).toBe(0);
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: ME });
    const [tokenRequest, ...gets] = imds.requests;
    expect(tokenRequest).toEqual({ method: 'PUT', path: '/latest/api/token', ttl: '21600', token: undefined, status: 200 });
    expect(gets.map((g) => [g.method, g.path, g.status])).toEqual([
      ['GET', '/latest/meta-data/instance-id', 200],
      ['GET', '/latest/meta-data/placement/region', 200],
    ]);
    for (const g of gets) expect(g.token).toMatch(/^\S{20,}$/);
  });

  it('the fake really enforces IMDSv2: GETs without a valid token are refused', async () => {
    const plain = await fetch(new URL('/latest/meta-data/instance-id', imds.url));
    const forged = await fetch(new URL('/latest/meta-data/instance-id', imds.url), {
      headers: { 'x-aws-ec2-metadata-token': 'forged' },
    });
    const noTtl = await fetch(new URL('/latest/api/token', imds.url), { method: 'PUT' });
    expect([plain.status, forged.status, noTtl.status]).toEqual([401, 401, 400]);
  });

  it('reads only the instance id when the config names the region', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });

    const r = await run('db.internal');

    expect(r.code).toBe(0);
    expect(imds.requests.map((q) => q.path)).toEqual(['/latest/api/token', '/latest/meta-data/instance-id']);
  });

  it('fails with a clear message when IMDS is unreachable', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    const url = imds.url;
    await imds.close();

    const r = await run('db.internal', { imdsEndpoint: null, env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: url } });

    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(
      /^eipdns claim: cannot reach the instance metadata service at http:\/\/127\.0\.0\.1:\d+ \(PUT \/latest\/api\/token: ECONNREFUSED\b.*\): not on EC2\? set AWS_EC2_METADATA_SERVICE_ENDPOINT to its base URL\n$/,
    );
    expect(fake.calls).toEqual([]);
  });

  it('gives up on a silent IMDS after three attempts, hinting at the hop limit', async () => {
    const silent = await startFakeImds({ instanceId: ME, hangTokenRequests: true });
    try {
      const r = await run('db.internal', { imdsEndpoint: silent.url });
      expect(r.code).toBe(1);
      expect(r.err).toContain('(PUT /latest/api/token: no answer within 1000 ms, 3 attempts)');
      expect(silent.requestsFor('/latest/api/token')).toHaveLength(3);
      expect(r.err).toContain('PUT response hop limit must be at least 2');
      expect(fake.calls).toEqual([]);
    } finally {
      await silent.close();
    }
  });

  it('retries an IMDS that is not ready yet (503) and then claims', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    const booting = await startFakeImds({ instanceId: ME, unavailableFirst: 2 });
    try {
      const r = await run('db.internal', { imdsEndpoint: booting.url });
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(booting.requests.map((q) => q.status)).toEqual([503, 503, 200, 200]);
      expect(fake.addresses.get(ALLOC)!.association?.instanceId).toBe(ME);
    } finally {
      await booting.close();
    }
  });

  it('rejects a bad endpoint mode as a usage error', async () => {
    const r = await run('db.internal', { imdsEndpoint: null, env: { AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: 'ipv5' } });
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      'eipdns claim: AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is "ipv5"; expected IPv4 or IPv6\n',
    );
  });
});

describe('claim: its own EC2 client', () => {
  beforeEach(() => {
    // The SDK's default chain reads these first; nothing here reaches AWS.
    vi.stubEnv('AWS_ACCESS_KEY_ID', TEST_CREDENTIALS.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', TEST_CREDENTIALS.secretAccessKey);
    vi.stubEnv('AWS_SESSION_TOKEN', undefined);
  });

  it('is built from the config endpoint and the IMDS region', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });

    const r = await run('db.internal', { client: null, config: makeConfig({ region: undefined }) });

    expect(r.code).toBe(0);
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: ME });
  });

  it('names the region it looked in: the IMDS one unless the config sets one', async () => {
    const elsewhere = await startFakeImds({ instanceId: ME, region: 'eu-west-3' });
    try {
      const fromImds = await run('db.internal', {
        client: null,
        imdsEndpoint: elsewhere.url,
        config: makeConfig({ region: undefined }),
      });
      expect(fromImds.err).toBe('eipdns claim: db.internal: no Elastic IP matches tag Role=db in eu-west-3\n');

      const fromConfig = await run('db.internal', {
        client: null,
        imdsEndpoint: elsewhere.url,
        config: makeConfig({ region: 'ap-south-1' }),
      });
      expect(fromConfig.err).toBe('eipdns claim: db.internal: no Elastic IP matches tag Role=db in ap-south-1\n');
    } finally {
      await elsewhere.close();
    }
  });
});

describe('claim: EC2 API errors', () => {
  it('reports a throttled AssociateAddress by its error code', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.inject({ action: 'AssociateAddress', fault: 'throttle' });

    const r = await run('db.internal');

    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe('eipdns claim: db.internal: AssociateAddress failed: RequestLimitExceeded: Request limit exceeded.\n');
    expect(associationOf(ALLOC)).toBeUndefined();
  });

  it('does not take the address when the holder\'s state cannot be read', async () => {
    fake.addAddress({ allocationId: ALLOC, publicIp: '198.51.100.10', tags: { Role: 'db' } });
    fake.associate(ALLOC, { instanceId: OTHER });
    fake.setInstanceState(OTHER, 'stopped');
    fake.inject({ action: 'DescribeInstances', fault: 'forbidden' });

    const r = await run('db.internal');

    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `eipdns claim: db.internal: DescribeInstances ${OTHER} failed: UnauthorizedOperation: You are not authorized to perform this operation.\n`,
    );
    expect(associationOf(ALLOC)).toMatchObject({ instanceId: OTHER });
    expect(associateCalls()).toEqual([]);
  });

  it('reports a failing DescribeAddresses', async () => {
    fake.inject({ action: 'DescribeAddresses', fault: '500' });

    const r = await run('db.internal');

    expect(r.code).toBe(1);
    expect(r.err).toBe('eipdns claim: db.internal: DescribeAddresses failed: InternalError: An internal error has occurred\n');
  });
});

describe('claim: the record', () => {
  it('rejects a name the config does not have, listing the claimable ones', async () => {
    const r = await run('dbx.internal');
    expect(r).toEqual({
      code: 2,
      out: '',
      err: 'eipdns claim: no record "dbx.internal" in /test/eipdns.yaml (elastic_ip records: db.internal, cache.internal)\n',
    });
    expect(imds.requests).toEqual([]);
  });

  it('rejects records that are not elastic_ip', async () => {
    const web = await run('web.internal');
    const ops = await run('ops.internal');
    expect([web.code, ops.code]).toEqual([2, 2]);
    expect(web.err).toBe(
      'eipdns claim: web.internal is an "instances" record; only elastic_ip records have an address to claim\n',
    );
    expect(ops.err).toBe('eipdns claim: ops.internal is an "a" record; only elastic_ip records have an address to claim\n');
    expect(imds.requests).toEqual([]);
    expect(fake.calls).toEqual([]);
  });

  it('refuses a config that reads an inventory file instead of the API', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eipdns-claim-'));
    writeFileSync(join(dir, 'inventory.json'), JSON.stringify({ Addresses: [] }));
    const text = configText({ extraEc2: ['  inventory: inventory.json'] }).replace(
      /\n {6}web: .*\n {6}ops: .*\n/,
      '\n',
    );
    const config = parseConfig(text, join(dir, 'eipdns.yaml'));

    const r = await run('db.internal', { config });

    expect(r.code).toBe(2);
    expect(r.err).toContain(`sets ec2.inventory (${join(dir, 'inventory.json')}); claim changes associations through the EC2 API`);
    expect(imds.requests).toEqual([]);
    expect(fake.calls).toEqual([]);
  });
});
