// The EC2 API calls discovery makes, and the only module discovery reaches
// that loads the EC2 SDK's runtime code. discovery.ts imports it dynamically on
// the first poll that needs the API, so a config served from an inventory file
// or from static records never loads the SDK (tens of MB of RSS: see README,
// "Memory").

import {
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  type EC2Client,
  type Filter,
} from '@aws-sdk/client-ec2';
import type { AddressLike, InstanceLike, NetworkInterfaceLike } from './match.js';
import type { Ec2Calls } from './sources.js';

export { createEc2Client } from './client.js';

export function ec2Calls(client: EC2Client): Ec2Calls {
  return {
    addresses: (signal) => describeAllAddresses(client, signal),
    runningInstances: (signal, tagKeys) => describeRunningInstances(client, signal, tagKeys),
    networkInterfaces: (signal, filters) => describeNetworkInterfaces(client, signal, filters),
  };
}

/** Guards a paginator against an endpoint that never stops handing out tokens. */
const MAX_PAGES = 1_000;
/** The largest page EC2 allows, so large accounts take few calls. */
const PAGE_SIZE = 1_000;

async function paginate<T>(fetchPage: (token: string | undefined) => Promise<{ items: T[]; next?: string | undefined }>): Promise<T[]> {
  const all: T[] = [];
  const seen = new Set<string>();
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const { items, next } = await fetchPage(token);
    all.push(...items);
    if (next === undefined || next === '') return all;
    if (seen.has(next)) throw new Error('EC2 returned the same NextToken twice');
    seen.add(next);
    token = next;
  }
  throw new Error(`EC2 pagination did not end after ${MAX_PAGES} pages`);
}

/** Unfiltered: accounts hold few EIPs, and selectors are matched locally so one call serves every name. */
export async function describeAllAddresses(client: EC2Client, signal: AbortSignal): Promise<AddressLike[]> {
  const out = await client.send(new DescribeAddressesCommand({}), { abortSignal: signal });
  return out.Addresses ?? [];
}

/**
 * Running instances, every page. `tagKeys`, when given, narrows the listing
 * server-side to instances carrying at least one of those keys.
 */
export async function describeRunningInstances(
  client: EC2Client,
  signal: AbortSignal,
  tagKeys?: readonly string[],
): Promise<InstanceLike[]> {
  const filters: Filter[] = [{ Name: 'instance-state-name', Values: ['running'] }];
  if (tagKeys !== undefined && tagKeys.length > 0) filters.push({ Name: 'tag-key', Values: [...tagKeys] });
  return paginate(async (token) => {
    const out = await client.send(
      new DescribeInstancesCommand({ Filters: filters, MaxResults: PAGE_SIZE, ...(token ? { NextToken: token } : {}) }),
      { abortSignal: signal },
    );
    return { items: (out.Reservations ?? []).flatMap((r) => r.Instances ?? []), next: out.NextToken };
  });
}

/**
 * ENIs, every page. Narrowed with filters rather than NetworkInterfaceId.N:
 * one deleted ENI would make the id form fail the whole call (and so every
 * name), while a filter just returns nothing for it.
 */
export async function describeNetworkInterfaces(
  client: EC2Client,
  signal: AbortSignal,
  filters: readonly Filter[],
): Promise<NetworkInterfaceLike[]> {
  return paginate(async (token) => {
    const out = await client.send(
      new DescribeNetworkInterfacesCommand({
        ...(filters.length > 0 ? { Filters: [...filters] } : {}),
        MaxResults: PAGE_SIZE,
        ...(token ? { NextToken: token } : {}),
      }),
      { abortSignal: signal },
    );
    return { items: out.NetworkInterfaces ?? [], next: out.NextToken };
  });
}

