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
 * must never be handed the TC reply a UDP query produced, and an upstream
 * reply that is passed through as is (not cacheable) carries an OPT only when
 * the query did (RFC 6891 §7) and is sized for the client's UDP limit.
 */
export function flightKey(key: string, q: Query, viaTcp: boolean): string {
  if (viaTcp) return `T ${key}`;
  return q.edns === null ? `U ${key}` : `E${udpLimit(q.edns)} ${key}`;
}
