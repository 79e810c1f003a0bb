// Prefetch (Unbound's `prefetch: yes`, CoreDNS's `prefetch`): a hit in the
// last 10 % of an entry's lifetime refreshes it in the background, once, so a
// popular name never expires in front of a client. The refresh is an ordinary
// upstream query for the key (coalesced with any other for it, charged to the
// query budget like every other), and its answer replaces the entry; when it
// fails, the entry simply runs out and serve-stale takes over.
//
// Off by default (cache.prefetch), as in Unbound and CoreDNS: each refresh
// at 90 % of a TTL costs a query that waiting for expiry would have spent
// later or not at all, about 5 % more upstream traffic on a Zipf workload,
// and the VPC resolver's 1024 packets per second are the scarce resource.

import type { Entry } from './entry.js';

/** The share of a lifetime, at its end, in which a hit triggers a prefetch. */
export const PREFETCH_SHARE = 0.1;

export function wantsPrefetch(e: Entry, now: number): boolean {
  return !e.prefetched && e.kind !== 'failure' && e.expiresAt - now < (e.expiresAt - e.storedAt) * PREFETCH_SHARE;
}
