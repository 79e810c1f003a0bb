// Turns the configured records into the fewest EC2 calls: one batched call
// per source kind per poll however many names use it (Describe* calls share a
// per-account token bucket), and none for kinds the config does not use.

//
// Nothing here loads the EC2 SDK's runtime code: the calls live in api.ts,
// which the backend loads on first use (see discovery.ts).

import type { Filter } from '@aws-sdk/client-ec2';
import type { RecordConfig, RecordSource } from '../config/types.js';
import { readInventory } from './inventory.js';
import {
  elasticIpMap,
  elasticIpOrigins,
  instancesOrigins,
  networkInterfaceOrigins,
  sortAddresses,
  type AddressLike,
  type AddressOrigin,
  type InstanceLike,
  type NetworkInterfaceLike,
} from './match.js';

export type DiscoveredKind = Exclude<RecordSource['kind'], 'static'>;

/** The three Describe calls, every page, bound to one client (api.ts). */
export interface Ec2Calls {
  /** Unfiltered: accounts hold few EIPs, and selectors are matched locally so one call serves every name. */
  addresses(signal: AbortSignal): Promise<AddressLike[]>;
  /** Running instances; `tagKeys` narrows the listing to instances carrying at least one of those keys. */
  runningInstances(signal: AbortSignal, tagKeys?: readonly string[]): Promise<InstanceLike[]>;
  networkInterfaces(signal: AbortSignal, filters: readonly Filter[]): Promise<NetworkInterfaceLike[]>;
}

/** Where discovered data comes from: the EC2 API, or an inventory file in place of DescribeAddresses. */
export type Backend =
  /** `calls` loads the SDK on first use; later calls return the same promise. */
  | { readonly kind: 'api'; readonly calls: () => Promise<Ec2Calls> }
  | { readonly kind: 'inventory'; readonly file: string }
  /** Static records only: nothing to call. */
  | { readonly kind: 'none' };

export interface PollResult {
  /** Addresses for every non-static record. */
  readonly answers: Map<string, string[]>;
  /** Where each of those addresses comes from, in the same order (for /status; never for answers). */
  readonly origins: Map<string, AddressOrigin[]>;
  /** Public → private IP of associated Elastic IPs; only when the plan was asked for it. */
  readonly elasticIps?: Map<string, string>;
}

export interface SourcePlan {
  /** Kinds fetched on every poll, one call (plus pages) each. */
  readonly kinds: readonly DiscoveredKind[];
  /** True when each poll also yields the Elastic IP map. */
  readonly mapsElasticIps: boolean;
  /**
   * Answers for every non-static record. All or nothing: rejects when any
   * kind fails, so a partial poll can never remove a name. `report` hears how
   * each kind's call ended (for metrics).
   */
  fetch(signal: AbortSignal, report?: (kind: DiscoveredKind, outcome: CallOutcome) => void): Promise<PollResult>;
}

/**
 * How one kind's call (with its pages) ended: answered; failed (including the
 * poll's deadline passing under it); or abandoned because another kind of the
 * same poll failed first.
 */
export type CallOutcome = 'ok' | 'error' | 'cancelled';

export interface PlanOptions {
  /**
   * Also map every associated Elastic IP (upstream.rewrite_elastic_ips). It
   * rides on the poll this config makes anyway: one DescribeAddresses, shared
   * with elastic_ip records. A plan that calls nothing (static records only)
   * does not start calling EC2 for it.
   */
  readonly elasticIpMap?: boolean;
}

export class DiscoveryConfigError extends Error {
  readonly code = 'DiscoveryConfig';
  constructor(message: string) {
    super(message);
    this.name = 'DiscoveryConfigError';
  }
}

type Narrowed<K extends RecordSource['kind']> = RecordConfig & { readonly source: Extract<RecordSource, { kind: K }> };

function ofKind<K extends RecordSource['kind']>(records: readonly RecordConfig[], kind: K): Narrowed<K>[] {
  return records.filter((r): r is Narrowed<K> => r.source.kind === kind);
}

/** One key per selector is enough for a tag-key pre-filter: a match must carry all of them. */
function tagKeyFilter(selectors: ReadonlyArray<Readonly<Record<string, string>> | undefined>): string[] | undefined {
  const keys = new Set<string>();
  for (const tags of selectors) {
    const first = Object.keys(tags ?? {}).sort()[0];
    if (first === undefined) return undefined; // some selector needs the unfiltered list
    keys.add(first);
  }
  return [...keys].sort();
}

function networkInterfaceFilters(records: ReadonlyArray<Narrowed<'network_interface'>>): Filter[] {
  const ids = records.map((r) => r.source.id);
  if (ids.every((id): id is string => id !== undefined)) {
    return [{ Name: 'network-interface-id', Values: [...new Set(ids)].sort() }];
  }
  const keys = tagKeyFilter(records.map((r) => r.source.tag));
  return keys === undefined ? [] : [{ Name: 'tag-key', Values: keys }];
}

/** Fixed answers; known from the start, no call needed. */
export function staticAnswers(records: readonly RecordConfig[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of ofKind(records, 'static')) out.set(r.fqdn, sortAddresses(r.source.addresses));
  return out;
}

/**
 * @throws DiscoveryConfigError when an inventory file is the backend and a
 *   record needs instances or ENIs: the file only describes Elastic IPs, and
 *   silently answering nothing for those names would hide the mistake.
 */
export function createSourcePlan(records: readonly RecordConfig[], backend: Backend, options: PlanOptions = {}): SourcePlan {
  const eips = ofKind(records, 'elastic_ip');
  const instances = ofKind(records, 'instances');
  const enis = ofKind(records, 'network_interface');

  if (backend.kind === 'none' && eips.length + instances.length + enis.length > 0) {
    throw new DiscoveryConfigError('records need EC2 data but no EC2 client or inventory was given');
  }
  if (backend.kind === 'inventory' && instances.length + enis.length > 0) {
    const names = [...instances, ...enis].map((r) => `${r.fqdn} (${r.source.kind})`).join(', ');
    throw new DiscoveryConfigError(
      `ec2.inventory only describes Elastic IPs; these records need the EC2 API: ${names}`,
    );
  }

  interface Sink {
    readonly answers: Map<string, string[]>;
    readonly origins: Map<string, AddressOrigin[]>;
    elasticIps?: Map<string, string>;
  }
  const put = (sink: Sink, fqdn: string, origins: AddressOrigin[]): void => {
    sink.answers.set(fqdn, origins.map((o) => o.ip));
    sink.origins.set(fqdn, origins);
  };
  type Task = (signal: AbortSignal, sink: Sink) => Promise<void>;
  const tasks: Task[] = [];
  const kinds: DiscoveredKind[] = [];
  const polls = eips.length + instances.length + enis.length > 0;
  const mapsElasticIps = options.elasticIpMap === true && polls && backend.kind !== 'none';

  if ((eips.length > 0 || mapsElasticIps) && backend.kind !== 'none') {
    kinds.push('elastic_ip');
    const load: (signal: AbortSignal) => Promise<AddressLike[]> =
      backend.kind === 'api'
        ? async (signal) => (await backend.calls()).addresses(signal)
        : () => readInventory(backend.file);
    tasks.push(async (signal, sink) => {
      const addresses = await load(signal);
      for (const r of eips) put(sink, r.fqdn, elasticIpOrigins(addresses, r.source.selector));
      if (mapsElasticIps) sink.elasticIps = elasticIpMap(addresses);
    });
  }
  if (backend.kind === 'api' && instances.length > 0) {
    kinds.push('instances');
    const tagKeys = tagKeyFilter(instances.map((r) => r.source.tag));
    tasks.push(async (signal, sink) => {
      const found = await (await backend.calls()).runningInstances(signal, tagKeys);
      for (const r of instances) put(sink, r.fqdn, instancesOrigins(found, r.source.tag));
    });
  }
  if (backend.kind === 'api' && enis.length > 0) {
    kinds.push('network_interface');
    const filters = networkInterfaceFilters(enis);
    tasks.push(async (signal, sink) => {
      const found = await (await backend.calls()).networkInterfaces(signal, filters);
      for (const r of enis) {
        put(
          sink,
          r.fqdn,
          networkInterfaceOrigins(found, {
            ...(r.source.id !== undefined ? { id: r.source.id } : {}),
            ...(r.source.tag !== undefined ? { tag: r.source.tag } : {}),
          }),
        );
      }
    });
  }

  return {
    kinds,
    mapsElasticIps,
    async fetch(signal, report) {
      signal.throwIfAborted();
      // The first failure aborts the sibling calls: the poll has failed anyway.
      const local = new AbortController();
      const forward = (): void => local.abort(signal.reason);
      signal.addEventListener('abort', forward, { once: true });
      const sink: Sink = { answers: new Map<string, string[]>(), origins: new Map<string, AddressOrigin[]>() };
      try {
        await Promise.all(
          tasks.map((task, i) =>
            task(local.signal, sink).then(
              () => report?.(kinds[i]!, 'ok'),
              (err: unknown) => {
                // Aborted here but not from outside: a sibling failed first.
                report?.(kinds[i]!, local.signal.aborted && !signal.aborted ? 'cancelled' : 'error');
                local.abort(err);
                throw err;
              },
            ),
          ),
        );
        return sink;
      } finally {
        signal.removeEventListener('abort', forward);
      }
    },
  };
}
