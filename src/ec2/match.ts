// Selector matching, shared by every source: the API path and the inventory
// file both reduce to "these EC2 objects + these selectors → these addresses",
// so they cannot drift apart. Pure functions over the SDK's output shapes
// (every field optional, as the SDK types them).

import { isIPv4 } from 'node:net';
import type { ElasticIpSelector } from '../config/types.js';
import { ipv4ToNumber } from '../wire/ipv4.js';

export interface TagLike {
  readonly Key?: string | undefined;
  readonly Value?: string | undefined;
}

/** The fields of an EC2 `Address` (DescribeAddresses / the CLI's JSON) that matching reads. */
export interface AddressLike {
  readonly PublicIp?: string | undefined;
  readonly AllocationId?: string | undefined;
  readonly AssociationId?: string | undefined;
  readonly PrivateIpAddress?: string | undefined;
  /** Who holds the association (read for provenance only, never for matching). */
  readonly InstanceId?: string | undefined;
  readonly NetworkInterfaceId?: string | undefined;
  readonly Tags?: readonly TagLike[] | undefined;
}

export interface InstanceLike {
  readonly InstanceId?: string | undefined;
  readonly PrivateIpAddress?: string | undefined;
  readonly State?: { readonly Name?: string | undefined } | undefined;
  readonly Tags?: readonly TagLike[] | undefined;
}

export interface NetworkInterfaceLike {
  readonly NetworkInterfaceId?: string | undefined;
  readonly PrivateIpAddress?: string | undefined;
  readonly PrivateIpAddresses?:
    | ReadonlyArray<{ readonly PrivateIpAddress?: string | undefined; readonly Primary?: boolean | undefined }>
    | undefined;
  readonly TagSet?: readonly TagLike[] | undefined;
  readonly Attachment?: { readonly InstanceId?: string | undefined } | undefined;
}

/**
 * Where one answered address comes from, read from the same Describe output
 * that produced the address (no extra call): the EIP that maps to it, the
 * instance and/or ENI that holds it. For /status and the `record changed`
 * history: "db.internal moved from i-0aaa to i-0bbb", not just two IPs.
 */
export interface AddressOrigin {
  readonly ip: string;
  /** elastic_ip records: the Elastic IP (allocation id and public IP) that maps to `ip`. */
  readonly allocationId?: string;
  readonly publicIp?: string;
  /** The instance holding `ip` (an EIP associated with an instance, an instances record, an attached ENI). */
  readonly instanceId?: string;
  /** The ENI holding `ip` (EIP associations always name one; network_interface records). */
  readonly networkInterfaceId?: string;
}

export type TagSelector = Readonly<Record<string, string>>;

export interface NetworkInterfaceSelector {
  readonly id?: string;
  readonly tag?: TagSelector;
}

/** Every key/value of the selector is present (exact, case-sensitive, as EC2 tags are). */
export function hasTags(tags: readonly TagLike[] | undefined, want: TagSelector): boolean {
  const have = new Map<string, string | undefined>();
  for (const t of tags ?? []) if (t.Key !== undefined) have.set(t.Key, t.Value);
  return Object.entries(want).every(([k, v]) => have.has(k) && have.get(k) === v);
}

/**
 * Dedupe and sort numerically, so an answer only "changes" when its set of
 * addresses does. Anything that is not an IPv4 literal is dropped: these
 * become A records.
 */
export function sortAddresses(ips: Iterable<string | undefined>): string[] {
  const unique = new Set<string>();
  for (const ip of ips) if (ip !== undefined && isIPv4(ip)) unique.add(ip);
  return [...unique].sort((a, b) => ipv4ToNumber(a) - ipv4ToNumber(b));
}

export function matchesElasticIp(address: AddressLike, selector: ElasticIpSelector): boolean {
  if (selector.allocationId !== undefined) return address.AllocationId === selector.allocationId;
  if (selector.publicIp !== undefined) return address.PublicIp === selector.publicIp;
  if (selector.tag !== undefined) return hasTags(address.Tags, selector.tag);
  return false;
}

/** Drops undefined fields, so an origin compares and serialises by what it has. */
function origin(fields: { ip: string; allocationId?: string | undefined; publicIp?: string | undefined; instanceId?: string | undefined; networkInterfaceId?: string | undefined }): AddressOrigin {
  const out: { -readonly [K in keyof AddressOrigin]?: string } = { ip: fields.ip };
  if (fields.allocationId !== undefined) out.allocationId = fields.allocationId;
  if (fields.publicIp !== undefined) out.publicIp = fields.publicIp;
  if (fields.instanceId !== undefined) out.instanceId = fields.instanceId;
  if (fields.networkInterfaceId !== undefined) out.networkInterfaceId = fields.networkInterfaceId;
  return out as AddressOrigin;
}

/** Origins in the answer's order (the sortAddresses order), one per address; the first origin of a duplicate wins. */
function byAnswer(origins: readonly AddressOrigin[]): AddressOrigin[] {
  const first = new Map<string, AddressOrigin>();
  for (const o of origins) if (!first.has(o.ip)) first.set(o.ip, o);
  return sortAddresses(first.keys()).map((ip) => first.get(ip)!);
}

/**
 * The private IPs the matching EIPs are associated with (possibly an ENI's
 * secondary IP). An unassociated EIP contributes nothing, so a name whose
 * EIPs are all unassociated answers [] (NODATA).
 */
export function elasticIpAnswer(addresses: readonly AddressLike[], selector: ElasticIpSelector): string[] {
  return elasticIpOrigins(addresses, selector).map((o) => o.ip);
}

/** elasticIpAnswer with where each address comes from. */
export function elasticIpOrigins(addresses: readonly AddressLike[], selector: ElasticIpSelector): AddressOrigin[] {
  return byAnswer(
    addresses
      .filter((a) => matchesElasticIp(a, selector) && a.PrivateIpAddress !== undefined)
      .map((a) =>
        origin({
          ip: a.PrivateIpAddress!,
          allocationId: a.AllocationId,
          publicIp: a.PublicIp,
          instanceId: a.InstanceId,
          networkInterfaceId: a.NetworkInterfaceId,
        }),
      ),
  );
}

/**
 * Public IP → private IP of every associated Elastic IP: what
 * upstream.rewrite_elastic_ips answers in place of a public address.
 */
export function elasticIpMap(addresses: readonly AddressLike[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const a of addresses) {
    if (a.AssociationId === undefined || a.PublicIp === undefined || a.PrivateIpAddress === undefined) continue;
    if (isIPv4(a.PublicIp) && isIPv4(a.PrivateIpAddress)) map.set(a.PublicIp, a.PrivateIpAddress);
  }
  return map;
}

/** Primary private IPs of running instances carrying all the tags. */
export function instancesAnswer(instances: readonly InstanceLike[], tag: TagSelector): string[] {
  return instancesOrigins(instances, tag).map((o) => o.ip);
}

/** instancesAnswer with the instance behind each address. */
export function instancesOrigins(instances: readonly InstanceLike[], tag: TagSelector): AddressOrigin[] {
  return byAnswer(
    instances
      .filter((i) => i.State?.Name === 'running' && hasTags(i.Tags, tag) && i.PrivateIpAddress !== undefined)
      .map((i) => origin({ ip: i.PrivateIpAddress!, instanceId: i.InstanceId })),
  );
}

export function primaryPrivateIp(eni: NetworkInterfaceLike): string | undefined {
  return eni.PrivateIpAddress ?? eni.PrivateIpAddresses?.find((p) => p.Primary === true)?.PrivateIpAddress;
}

/** Primary private IP of each ENI matching the id and/or the tags. */
export function networkInterfaceAnswer(
  enis: readonly NetworkInterfaceLike[],
  selector: NetworkInterfaceSelector,
): string[] {
  return networkInterfaceOrigins(enis, selector).map((o) => o.ip);
}

/** networkInterfaceAnswer with the ENI (and the instance it is attached to) behind each address. */
export function networkInterfaceOrigins(
  enis: readonly NetworkInterfaceLike[],
  selector: NetworkInterfaceSelector,
): AddressOrigin[] {
  // A selector with neither would match every ENI in the account: never useful.
  if (selector.id === undefined && selector.tag === undefined) return [];
  const out: AddressOrigin[] = [];
  for (const e of enis) {
    if (selector.id !== undefined && e.NetworkInterfaceId !== selector.id) continue;
    if (selector.tag !== undefined && !hasTags(e.TagSet, selector.tag)) continue;
    const ip = primaryPrivateIp(e);
    if (ip === undefined) continue;
    out.push(origin({ ip, networkInterfaceId: e.NetworkInterfaceId, instanceId: e.Attachment?.InstanceId }));
  }
  return byAnswer(out);
}
