// A primary zone's data, derived from its config and one discovery snapshot:
// what eipdns answers for the zone, in the form transfers send (./data.ts).
//
// - Apex: SOA and NS naming eipdns.invalid (RFC 6761: plainly synthetic), the
//   zone's SOA timers, MINIMUM = the zone TTL (negative answers are cached as
//   briefly as positive ones).
// - A record name with addresses: its A RRset.
// - A record name known to have no address (an Elastic IP not associated): a
//   TYPE65280 record with empty RDATA (TYPE.EIPDNS_EMPTY). The name exists, so
//   eipdns and every secondary answer NODATA there, not NXDOMAIN.
// - A record name without trustworthy data (no successful poll yet, or older
//   than max_stale_ms): not in the data, but in `withheld`: answered SERVFAIL
//   for A and ANY, and while any name is withheld the zone is not transferred.

import type { ZoneConfig } from '../config/types.js';
import { TYPE } from '../wire/codes.js';
import { textToWire } from '../wire/name.js';
import { encodeSoa, ZoneBuilder, type Soa, type ZoneData } from './data.js';
import type { Snapshot } from './snapshot.js';

/** SOA/NS target: RFC 6761 reserves .invalid, so nobody mistakes it for a host. */
export const SERVER_NAME = 'eipdns.invalid';
const SERVER_WIRE = textToWire(SERVER_NAME);
const ADMIN_WIRE = textToWire(`hostmaster.${SERVER_NAME}`);

export interface PrimaryData {
  /** Serial 0: the caller assigns serials (./versions.ts). */
  readonly data: ZoneData;
  /** Names answered SERVFAIL for A/ANY: no data yet, or expired. */
  readonly withheld: ReadonlySet<string>;
}

export function primarySoa(zone: ZoneConfig, serial: number): Soa {
  return {
    mname: SERVER_WIRE,
    rname: ADMIN_WIRE,
    serial,
    refresh: zone.soa.refresh,
    retry: zone.soa.retry,
    expire: zone.soa.expire,
    minimum: zone.ttl,
  };
}

export function primaryData(zone: ZoneConfig, snapshot: Snapshot): PrimaryData {
  const b = new ZoneBuilder(zone.name);
  b.add(zone.name, TYPE.SOA, zone.ttl, encodeSoa(primarySoa(zone, 0)));
  b.add(zone.name, TYPE.NS, zone.ttl, SERVER_WIRE);
  const withheld = new Set<string>();
  for (const record of zone.records) {
    const addresses = snapshot.expired === true && record.source.kind !== 'static' ? undefined : snapshot.records.get(record.fqdn);
    if (addresses === undefined) {
      withheld.add(record.fqdn);
    } else if (addresses.length === 0) {
      b.add(record.fqdn, TYPE.EIPDNS_EMPTY, zone.ttl, Buffer.alloc(0));
    } else {
      for (const ip of addresses) b.add(record.fqdn, TYPE.A, zone.ttl, Buffer.from(ip.split('.').map(Number)));
    }
  }
  return { data: b.build(), withheld };
}
