import { describe, expect, it } from 'vitest';
import { InventoryError, parseInventory } from '../../src/ec2/inventory.js';
import {
  elasticIpAnswer,
  hasTags,
  instancesAnswer,
  networkInterfaceAnswer,
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
