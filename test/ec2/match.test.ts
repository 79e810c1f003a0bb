import { describe, expect, it } from 'vitest';
import { InventoryError, parseInventory } from '../../src/ec2/inventory.js';
import {
  elasticIpAnswer,
  elasticIpOrigins,
  hasTags,
  instancesAnswer,
  instancesOrigins,
  networkInterfaceAnswer,
  networkInterfaceOrigins,
  sortAddresses,
  type AddressLike,
} from '../../src/ec2/match.js';

describe('sortAddresses', () => {
  it('orders numerically, dedupes and drops what is not IPv4', () => {
    expect(sortAddresses(['10.0.0.10', '10.0.0.9', '9.255.255.255', '10.0.0.9', undefined, 'fd00::1', 'x'])).toEqual([
      '9.255.255.255',
      '10.0.0.9',
      '10.0.0.10',
    ]);
  });
});

describe('hasTags', () => {
  it('needs every pair, exact and case-sensitive', () => {
    const tags = [
      { Key: 'Role', Value: 'db' },
      { Key: 'Env', Value: 'prod' },
    ];
    expect(hasTags(tags, { Role: 'db' })).toBe(true);
    expect(hasTags(tags, { Role: 'db', Env: 'prod' })).toBe(true);
    expect(hasTags(tags, { Role: 'db', Env: 'dev' })).toBe(false);
    expect(hasTags(tags, { role: 'db' })).toBe(false);
    expect(hasTags(undefined, { Role: 'db' })).toBe(false);
  });
});

const ADDRESSES: AddressLike[] = [
  { AllocationId: 'eipalloc-1', PublicIp: '198.51.100.1', PrivateIpAddress: '10.0.0.20', Tags: [{ Key: 'Role', Value: 'db' }] },
  { AllocationId: 'eipalloc-2', PublicIp: '198.51.100.2', PrivateIpAddress: '10.0.0.3', Tags: [{ Key: 'Role', Value: 'db' }] },
  { AllocationId: 'eipalloc-3', PublicIp: '198.51.100.3', Tags: [{ Key: 'Role', Value: 'db' }] },
  { AllocationId: 'eipalloc-4', PublicIp: '198.51.100.4', Tags: [{ Key: 'Role', Value: 'queue' }] },
];

describe('elasticIpAnswer', () => {
  it('maps each selector kind to the associated private IPs', () => {
    expect(elasticIpAnswer(ADDRESSES, { tag: { Role: 'db' } })).toEqual(['10.0.0.3', '10.0.0.20']);
    expect(elasticIpAnswer(ADDRESSES, { allocationId: 'eipalloc-1' })).toEqual(['10.0.0.20']);
    expect(elasticIpAnswer(ADDRESSES, { publicIp: '198.51.100.2' })).toEqual(['10.0.0.3']);
    expect(elasticIpAnswer(ADDRESSES, { publicIp: '198.51.100.4' })).toEqual([]); // unassociated
    expect(elasticIpAnswer(ADDRESSES, { allocationId: 'eipalloc-none' })).toEqual([]);
    expect(elasticIpAnswer(ADDRESSES, {})).toEqual([]);
  });
});

describe('instancesAnswer / networkInterfaceAnswer', () => {
  it('keeps running instances with all tags', () => {
    const instances = [
      { PrivateIpAddress: '10.1.0.2', State: { Name: 'running' }, Tags: [{ Key: 'Role', Value: 'web' }] },
      { PrivateIpAddress: '10.1.0.1', State: { Name: 'stopped' }, Tags: [{ Key: 'Role', Value: 'web' }] },
      { PrivateIpAddress: '10.1.0.3', State: { Name: 'running' }, Tags: [{ Key: 'Role', Value: 'api' }] },
    ];
    expect(instancesAnswer(instances, { Role: 'web' })).toEqual(['10.1.0.2']);
  });

  it('answers an ENI primary IP by id and/or tag, never everything', () => {
    const enis = [
      { NetworkInterfaceId: 'eni-1', PrivateIpAddress: '10.2.0.1', TagSet: [{ Key: 'Role', Value: 'vip' }] },
      {
        NetworkInterfaceId: 'eni-2',
        PrivateIpAddresses: [
          { PrivateIpAddress: '10.2.0.22', Primary: false },
          { PrivateIpAddress: '10.2.0.2', Primary: true },
        ],
        TagSet: [{ Key: 'Role', Value: 'vip' }],
      },
    ];
    expect(networkInterfaceAnswer(enis, { id: 'eni-2' })).toEqual(['10.2.0.2']);
    expect(networkInterfaceAnswer(enis, { tag: { Role: 'vip' } })).toEqual(['10.2.0.1', '10.2.0.2']);
    expect(networkInterfaceAnswer(enis, { id: 'eni-1', tag: { Role: 'other' } })).toEqual([]);
    expect(networkInterfaceAnswer(enis, {})).toEqual([]);
  });
});

describe('origins: where each answered address comes from', () => {
  it('names the Elastic IP and its holder, in the answer order, for the addresses answered only', () => {
    const addresses: AddressLike[] = [
      { AllocationId: 'eipalloc-1', PublicIp: '198.51.100.1', PrivateIpAddress: '10.0.0.20', InstanceId: 'i-1', NetworkInterfaceId: 'eni-1', Tags: [{ Key: 'Role', Value: 'db' }] },
      // Associated with a bare ENI (no instance), e.g. a secondary IP of a NAT appliance.
      { AllocationId: 'eipalloc-2', PublicIp: '198.51.100.2', PrivateIpAddress: '10.0.0.3', NetworkInterfaceId: 'eni-2', Tags: [{ Key: 'Role', Value: 'db' }] },
      { AllocationId: 'eipalloc-3', PublicIp: '198.51.100.3', Tags: [{ Key: 'Role', Value: 'db' }] },
      { AllocationId: 'eipalloc-4', PublicIp: '198.51.100.4', PrivateIpAddress: 'fd00::1', Tags: [{ Key: 'Role', Value: 'db' }] },
    ];
    expect(elasticIpOrigins(addresses, { tag: { Role: 'db' } })).toEqual([
      { ip: '10.0.0.3', allocationId: 'eipalloc-2', publicIp: '198.51.100.2', networkInterfaceId: 'eni-2' },
      { ip: '10.0.0.20', allocationId: 'eipalloc-1', publicIp: '198.51.100.1', instanceId: 'i-1', networkInterfaceId: 'eni-1' },
    ]);
    expect(elasticIpOrigins(addresses, { tag: { Role: 'db' } }).map((o) => o.ip)).toEqual(elasticIpAnswer(addresses, { tag: { Role: 'db' } }));
  });

  it('names the instance of an instances record and the ENI (and its instance) of a network_interface record', () => {
    const instances = [
      { InstanceId: 'i-b', PrivateIpAddress: '10.1.0.2', State: { Name: 'running' }, Tags: [{ Key: 'Role', Value: 'web' }] },
      { InstanceId: 'i-a', PrivateIpAddress: '10.1.0.10', State: { Name: 'running' }, Tags: [{ Key: 'Role', Value: 'web' }] },
    ];
    expect(instancesOrigins(instances, { Role: 'web' })).toEqual([
      { ip: '10.1.0.2', instanceId: 'i-b' },
      { ip: '10.1.0.10', instanceId: 'i-a' },
    ]);
    const enis = [
      { NetworkInterfaceId: 'eni-1', PrivateIpAddress: '10.2.0.1', Attachment: { InstanceId: 'i-x' } },
      { NetworkInterfaceId: 'eni-2', PrivateIpAddress: '10.2.0.2' },
    ];
    expect(networkInterfaceOrigins(enis, { id: 'eni-1' })).toEqual([{ ip: '10.2.0.1', networkInterfaceId: 'eni-1', instanceId: 'i-x' }]);
    expect(networkInterfaceOrigins(enis, { id: 'eni-2' })).toEqual([{ ip: '10.2.0.2', networkInterfaceId: 'eni-2' }]);
  });
});

describe('parseInventory', () => {
  it('reads the CLI output shape', () => {
    const text = JSON.stringify({
      Addresses: [
        { PublicIp: '198.51.100.1', AllocationId: 'eipalloc-1', PrivateIpAddress: '10.0.0.1', Domain: 'vpc', Tags: [{ Key: 'Role', Value: 'db' }] },
        { PublicIp: '198.51.100.2', AllocationId: 'eipalloc-2' },
      ],
    });
    expect(parseInventory(text, '/x.json')).toEqual([
      { PublicIp: '198.51.100.1', AllocationId: 'eipalloc-1', PrivateIpAddress: '10.0.0.1', Tags: [{ Key: 'Role', Value: 'db' }] },
      { PublicIp: '198.51.100.2', AllocationId: 'eipalloc-2' },
    ]);
  });

  it.each([
    ['not JSON', '{"Addresses": ['],
    ['wrong top level', '[]'],
    ['no Addresses', '{"addresses": []}'],
    ['entry not an object', '{"Addresses": [1]}'],
    ['field of the wrong type', '{"Addresses": [{"PrivateIpAddress": 10}]}'],
    ['Tags not a list', '{"Addresses": [{"Tags": {"Role": "db"}}]}'],
    ['tag without Value', '{"Addresses": [{"Tags": [{"Key": "Role"}]}]}'],
  ])('rejects %s', (_, text) => {
    expect(() => parseInventory(text, '/x.json')).toThrow(InventoryError);
    try {
      parseInventory(text, '/x.json');
    } catch (err) {
      expect((err as InventoryError).code).toBe('InventoryMalformed');
      expect((err as InventoryError).message).toContain('/x.json');
    }
  });
});
