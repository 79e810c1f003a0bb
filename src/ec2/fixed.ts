// Discovery for a config that needs no EC2 data: static records only, or no
// primary zones at all (a secondary-only eipdns, whose zones come by zone
// transfer). It polls nothing, builds no client and never loads the AWS SDK,
// so such a process needs no credentials and starts at a fraction of the
// memory (the SDK is most of an idle eipdns's RSS).

import type { Config } from '../config/types.js';
import type { Snapshot } from '../zone/snapshot.js';
import type { Discovery } from './discovery.js';
import { sortAddresses } from './match.js';

/** True when some record's addresses come from EC2 (the API or an inventory file). */
export function needsEc2(config: Config): boolean {
  return config.zones.some((z) => z.records.some((r) => r.source.kind !== 'static'));
}

export function fixedDiscovery(config: Config, seed?: Snapshot): Discovery {
  const records = new Map<string, readonly string[]>();
  for (const r of config.zones.flatMap((z) => z.records)) {
    if (r.source.kind === 'static') records.set(r.fqdn, Object.freeze(sortAddresses(r.source.addresses)));
  }
  const snapshot: Snapshot = Object.freeze({ generation: seed === undefined ? 0 : seed.generation + 1, fetchedAt: 0, records });
  return {
    current: () => snapshot,
    onChange: () => () => undefined,
    start: () => undefined,
    stop: async () => undefined,
    pollNow: async () => undefined,
  };
}
