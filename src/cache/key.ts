// What makes two queries "the same" to the cache, and to coalescing.
//
// The cache key is what the answer depends on (RFC 2181 §5.4.1 ranks data by
// the question, and two flags change what a resolver returns): the name
// (already lower-cased by parseQuery: RFC 4343), QTYPE, QCLASS, DO (RFC 3225:
// a DO answer carries RRSIGs a plain client must not be sent) and CD (RFC
// 4035 §3.2.2: a CD answer may hold data that failed validation). Unbound and
// CoreDNS key on the same bits.

import { CD } from '../wire/header.js';
import type { Query } from '../wire/query.js';
import { udpLimit } from '../wire/reply.js';

export function cacheKey(q: Query): string {
  const bits = (q.edns !== null && q.edns.dnssecOk ? 2 : 0) | ((q.flags & CD) !== 0 ? 1 : 0);
  // The numeric prefix has a fixed shape and no ':' can occur in it, so the
  // name (which may hold any octet) can never make two keys collide.
  return `${q.type}:${q.qclass}:${bits}:${q.name}`;
}

/**
 * Coalescing also keys on how the client can take the reply: a TCP client
 * must never be handed the TC reply a UDP query produced, and a reply relayed
 * uncached (a TC one, say) was sized for the UDP limit of the query that went
 * upstream. Whether the query had EDNS does not matter: every waiter gets its
 * own OPT, or none (cache.ts relay).
 */
export function flightKey(key: string, q: Query, viaTcp: boolean): string {
  return viaTcp ? `T ${key}` : `U${udpLimit(q.edns)} ${key}`;
}
