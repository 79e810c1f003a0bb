// The fake is only useful if the real SDK accepts it as EC2: every check here
// goes through @aws-sdk/client-ec2 (serialisation, signing, XML parsing,
// error mapping, retries).

import {
  AssociateAddressCommand,
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeVpcsCommand,
  DisassociateAddressCommand,
  EC2ServiceException,
  paginateDescribeInstances,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeEc2, type FakeEc2 } from './fake-ec2.js';
import { clientFor } from './helpers.js';

let fake: FakeEc2;
let client: EC2Client;

beforeEach(async () => {
  fake = await startFakeEc2();
  client = clientFor(fake);
});

afterEach(async () => {
  client.destroy();
  await fake.close();
});

async function rejection(p: Promise<unknown>): Promise<EC2ServiceException> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EC2ServiceException) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('DescribeAddresses', () => {
  beforeEach(() => {
    const web = fake.addInstance({ instanceId: 'i-web', privateIps: ['10.0.0.5'], tags: { Role: 'web' } });
    fake.addAddress({ allocationId: 'eipalloc-a', publicIp: '198.51.100.1', tags: { Role: 'db', Name: 'a<&>"' } });
    fake.addAddress({ allocationId: 'eipalloc-b', publicIp: '198.51.100.2', tags: { Role: 'web' } });
    fake.associate('eipalloc-b', { instanceId: web.instanceId });
  });

  it('returns every field the SDK maps, tags escaped and round-tripped', async () => {
    const out = await client.send(new DescribeAddressesCommand({}));
    expect(out.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(out.Addresses).toHaveLength(2);
    const [a, b] = out.Addresses ?? [];
    expect(a).toMatchObject({ AllocationId: 'eipalloc-a', PublicIp: '198.51.100.1', Domain: 'vpc' });
    expect(a?.AssociationId).toBeUndefined();
    expect(a?.Tags).toEqual([
      { Key: 'Role', Value: 'db' },
      { Key: 'Name', Value: 'a<&>"' },
    ]);
    expect(b).toMatchObject({
      AllocationId: 'eipalloc-b',
      InstanceId: 'i-web',
      PrivateIpAddress: '10.0.0.5',
      NetworkInterfaceOwnerId: '123456789012',
    });
    expect(b?.AssociationId).toMatch(/^eipassoc-/);
    expect(b?.NetworkInterfaceId).toMatch(/^eni-/);
  });

  it('applies filters (AND across, OR within, wildcards) and id lists', async () => {
    const byTag = await client.send(
      new DescribeAddressesCommand({ Filters: [{ Name: 'tag:Role', Values: ['db', 'cache'] }] }),
    );
    expect(byTag.Addresses?.map((a) => a.AllocationId)).toEqual(['eipalloc-a']);

    const wild = await client.send(new DescribeAddressesCommand({ Filters: [{ Name: 'public-ip', Values: ['198.51.100.*'] }, { Name: 'instance-id', Values: ['i-web'] }] }));
    expect(wild.Addresses?.map((a) => a.AllocationId)).toEqual(['eipalloc-b']);

    const byId = await client.send(new DescribeAddressesCommand({ AllocationIds: ['eipalloc-b'] }));
    expect(byId.Addresses?.map((a) => a.PublicIp)).toEqual(['198.51.100.2']);

    const byIp = await client.send(new DescribeAddressesCommand({ PublicIps: ['198.51.100.1'] }));
    expect(byIp.Addresses?.map((a) => a.AllocationId)).toEqual(['eipalloc-a']);

    const call = fake.callsFor('DescribeAddresses')[0];
    expect(call?.params).toMatchObject({
      Version: '2016-11-15',
      'Filter.1.Name': 'tag:Role',
      'Filter.1.Value.1': 'db',
      'Filter.1.Value.2': 'cache',
    });
  });

  it('reports unknown ids and filters with EC2 codes', async () => {
    const missing = await rejection(client.send(new DescribeAddressesCommand({ AllocationIds: ['eipalloc-nope'] })));
    expect(missing.name).toBe('InvalidAllocationID.NotFound');
    expect(missing.$metadata.httpStatusCode).toBe(400);
    expect(missing.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);

    const badFilter = await rejection(client.send(new DescribeAddressesCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })));
    expect(badFilter.name).toBe('InvalidParameterValue');
  });
});

describe('AssociateAddress / DisassociateAddress', () => {
  beforeEach(() => {
    fake.addInstance({ instanceId: 'i-1', privateIps: ['10.0.0.1'] });
    fake.addInstance({ instanceId: 'i-2', privateIps: ['10.0.0.2', '10.0.0.22'], networkInterfaceId: 'eni-2' });
    fake.addAddress({ allocationId: 'eipalloc-x', publicIp: '203.0.113.9' });
  });

  it('associates, refuses a reassociation when told to, moves when allowed', async () => {
    const first = await client.send(new AssociateAddressCommand({ AllocationId: 'eipalloc-x', InstanceId: 'i-1' }));
    expect(first.AssociationId).toMatch(/^eipassoc-/);
    expect(fake.addresses.get('eipalloc-x')?.association?.privateIpAddress).toBe('10.0.0.1');

    const refused = await rejection(
      client.send(new AssociateAddressCommand({ AllocationId: 'eipalloc-x', InstanceId: 'i-2', AllowReassociation: false })),
    );
    expect(refused.name).toBe('Resource.AlreadyAssociated');
    expect(refused.$metadata.httpStatusCode).toBe(400);

    const moved = await client.send(
      new AssociateAddressCommand({
        AllocationId: 'eipalloc-x',
        NetworkInterfaceId: 'eni-2',
        PrivateIpAddress: '10.0.0.22',
        AllowReassociation: true,
      }),
    );
    expect(moved.AssociationId).not.toBe(first.AssociationId);
    expect(fake.addresses.get('eipalloc-x')?.association).toMatchObject({
      instanceId: 'i-2',
      networkInterfaceId: 'eni-2',
      privateIpAddress: '10.0.0.22',
    });
    expect(fake.callsFor('AssociateAddress').at(-1)?.params.AllowReassociation).toBe('true');

    await client.send(new DisassociateAddressCommand({ AssociationId: moved.AssociationId }));
    expect(fake.addresses.get('eipalloc-x')?.association).toBeUndefined();
  });

  it('rejects unknown allocations and private IPs the ENI does not own', async () => {
    const noAlloc = await rejection(client.send(new AssociateAddressCommand({ AllocationId: 'eipalloc-zzz', InstanceId: 'i-1' })));
    expect(noAlloc.name).toBe('InvalidAllocationID.NotFound');
    const badIp = await rejection(
      client.send(new AssociateAddressCommand({ AllocationId: 'eipalloc-x', NetworkInterfaceId: 'eni-2', PrivateIpAddress: '10.9.9.9' })),
    );
    expect(badIp.name).toBe('InvalidParameterValue');
    const noAssoc = await rejection(client.send(new DisassociateAddressCommand({ AssociationId: 'eipassoc-none' })));
    expect(noAssoc.name).toBe('InvalidAssociationID.NotFound');
  });
});

describe('DescribeInstances', () => {
  it('pages with NextToken and groups instances by reservation', async () => {
    fake.pageSize = 2;
    for (let n = 1; n <= 5; n++) {
      fake.addInstance({ instanceId: `i-${n}`, reservationId: n <= 3 ? 'r-a' : 'r-b', privateIps: [`10.1.0.${n}`], tags: { Role: 'web' } });
    }
    fake.setInstanceState('i-4', 'stopped');

    const first = await client.send(new DescribeInstancesCommand({ MaxResults: 5 }));
    expect(first.Reservations?.map((r) => r.ReservationId)).toEqual(['r-a']);
    expect(first.Reservations?.[0]?.Instances?.map((i) => i.InstanceId)).toEqual(['i-1', 'i-2']);
    expect(first.NextToken).toBeTruthy();

    const ids: string[] = [];
    const states: string[] = [];
    for await (const page of paginateDescribeInstances({ client, pageSize: 5 }, {})) {
      for (const r of page.Reservations ?? []) {
        for (const i of r.Instances ?? []) {
          ids.push(i.InstanceId ?? '?');
          states.push(i.State?.Name ?? '?');
          expect(i.PrivateIpAddress).toBe(`10.1.0.${(i.InstanceId ?? '').slice(2)}`);
          expect(i.NetworkInterfaces?.[0]?.PrivateIpAddresses?.[0]).toMatchObject({ Primary: true });
        }
      }
    }
    expect(ids).toEqual(['i-1', 'i-2', 'i-3', 'i-4', 'i-5']);
    expect(states).toEqual(['running', 'running', 'running', 'stopped', 'running']);
    expect(fake.callsFor('DescribeInstances').map((c) => c.params.NextToken !== undefined)).toEqual([false, false, true, true]);

    const running = await client.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['running'] }, { Name: 'tag:Role', Values: ['web'] }], MaxResults: 1000 }),
    );
    expect(running.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId)).toEqual(['i-1', 'i-2']);
  });

  it('rejects MaxResults with InstanceIds and a foreign NextToken', async () => {
    fake.addInstance({ instanceId: 'i-1', privateIps: ['10.1.0.1'] });
    const combo = await rejection(client.send(new DescribeInstancesCommand({ InstanceIds: ['i-1'], MaxResults: 5 })));
    expect(combo.name).toBe('InvalidParameterCombination');
    const token = await rejection(client.send(new DescribeInstancesCommand({ NextToken: 'bogus' })));
    expect(token.name).toBe('InvalidPaginationToken');
    const missing = await rejection(client.send(new DescribeInstancesCommand({ InstanceIds: ['i-nope'] })));
    expect(missing.name).toBe('InvalidInstanceID.NotFound');
  });
});

describe('DescribeNetworkInterfaces', () => {
  it('returns primary and secondary IPs, the attachment and EIP associations', async () => {
    fake.addInstance({ instanceId: 'i-1', privateIps: ['10.2.0.1', '10.2.0.11'], networkInterfaceId: 'eni-1', tags: {} });
    fake.addNetworkInterface({ networkInterfaceId: 'eni-free', privateIps: ['10.2.0.50'], tags: { Role: 'vip' } });
    fake.addAddress({ allocationId: 'eipalloc-s', publicIp: '198.51.100.50' });
    fake.associate('eipalloc-s', { networkInterfaceId: 'eni-1', privateIpAddress: '10.2.0.11' });

    const out = await client.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: ['eni-1'] }));
    const eni = out.NetworkInterfaces?.[0];
    expect(eni?.PrivateIpAddress).toBe('10.2.0.1');
    expect(eni?.Attachment).toMatchObject({ InstanceId: 'i-1', DeviceIndex: 0, Status: 'attached' });
    expect(eni?.PrivateIpAddresses?.map((p) => [p.PrivateIpAddress, p.Primary, p.Association?.PublicIp])).toEqual([
      ['10.2.0.1', true, undefined],
      ['10.2.0.11', false, '198.51.100.50'],
    ]);

    const tagged = await client.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'tag:Role', Values: ['vip'] }] }));
    expect(tagged.NetworkInterfaces?.map((e) => [e.NetworkInterfaceId, e.Status, e.TagSet])).toEqual([
      ['eni-free', 'available', [{ Key: 'Role', Value: 'vip' }]],
    ]);

    const missing = await rejection(client.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: ['eni-nope'] })));
    expect(missing.name).toBe('InvalidNetworkInterfaceID.NotFound');
  });
});

describe('errors and faults', () => {
  it('answers an action it does not implement with InvalidAction', async () => {
    const err = await rejection(client.send(new DescribeVpcsCommand({})));
    expect(err.name).toBe('InvalidAction');
    expect(err.$metadata.httpStatusCode).toBe(400);
  });

  it.each([
    ['throttle', 'RequestLimitExceeded', 503],
    ['500', 'InternalError', 500],
    ['auth', 'AuthFailure', 401],
    ['forbidden', 'UnauthorizedOperation', 403],
  ] as const)('%s → %s %i', async (fault, code, status) => {
    fake.inject({ fault, action: 'DescribeAddresses', times: 1 });
    const err = await rejection(client.send(new DescribeAddressesCommand({})));
    expect(err.name).toBe(code);
    expect(err.$metadata.httpStatusCode).toBe(status);
    // Used up: the next call succeeds.
    await expect(client.send(new DescribeAddressesCommand({}))).resolves.toBeDefined();
    expect(fake.calls.map((c) => c.fault)).toEqual([fault, undefined]);
  });

  it('only faults the named action', async () => {
    fake.inject({ fault: 'throttle', action: 'DescribeInstances' });
    await expect(client.send(new DescribeAddressesCommand({}))).resolves.toBeDefined();
    expect((await rejection(client.send(new DescribeInstancesCommand({})))).name).toBe('RequestLimitExceeded');
    fake.clearFaults();
    await expect(client.send(new DescribeInstancesCommand({}))).resolves.toBeDefined();
  });

  it('logs each SDK attempt, so retries are visible', async () => {
    const retrying = clientFor(fake, { maxAttempts: 3 });
    try {
      fake.inject({ fault: '500', times: 2 });
      await retrying.send(new DescribeAddressesCommand({}));
      expect(fake.calls.map((c) => [c.attempt?.replace(/;.*$/, ''), c.fault])).toEqual([
        ['attempt=1', '500'],
        ['attempt=2', '500'],
        ['attempt=3', undefined],
      ]);
      expect(fake.calls[0]?.attempt).toMatch(/max=3/);
    } finally {
      retrying.destroy();
    }
  });

  it('reset destroys the connection; close() ends a hanging request', async () => {
    fake.inject({ fault: 'reset', times: 1 });
    await expect(client.send(new DescribeAddressesCommand({}))).rejects.toMatchObject({ code: 'ECONNRESET' });

    fake.inject({ fault: 'hang' });
    const hanging = client.send(new DescribeAddressesCommand({})).then(
      () => 'resolved',
      () => 'rejected',
    );
    await expect.poll(() => fake.calls.length).toBe(2);
    await fake.close();
    expect(await hanging).toBe('rejected');
    fake = await startFakeEc2(); // afterEach closes it
  });
});
