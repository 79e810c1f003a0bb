// Prefetch (Unbound's `prefetch: yes`, CoreDNS's `prefetch`): a hit in the
// last 10 % of an entry's lifetime refreshes it in the background, once, so a
// popular name never expires in front of a client. The refresh is an ordinary
// upstream query for the key (coalesced with any other for it, charged to the
// query budget like every other), and its answer replaces the entry; when it
// fails, the entry simply runs out and serve-stale takes over.

import type { Entry } from './entry.js';

/** The share of a lifetime, at its end, in which a hit triggers a prefetch. */
export const PREFETCH_SHARE = 0.1;

export function wantsPrefetch(e: Entry, now: number): boolean {
  return !e.prefetched && e.kind !== 'failure' && e.expiresAt - now < (e.expiresAt - e.storedAt) * PREFETCH_SHARE;
}
