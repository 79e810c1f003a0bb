// What the cache counts. The counters live with the store (store.ts), which
// the server keeps across reloads, so a reload that rebuilds the forward chain
// does not reset a Prometheus counter. Plain numbers bumped on the query path
// and read by whoever asks (the metrics registry, when scraped).

export interface CacheStats {
  /** Entries held now (fresh, stale and cached failures). */
  readonly entries: number;
  /** Accounted bytes held now: reply bytes plus per-entry overhead (store.ts). */
  readonly bytes: number;
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** Queries answered from a fresh entry (cached failures included). */
  readonly hits: number;
  /** Queries that found no fresh entry (absent, stale, or expired). */
  readonly misses: number;
  /** Stale answers sent (RFC 8767). */
  readonly staleServed: number;
  /** Background refreshes started by a hit in the last 10 % of a TTL. */
  readonly prefetches: number;
  /** Upstream queries started for a key whose entry had expired (stale refreshes). */
  readonly refreshes: number;
  /** Queries that joined an upstream query already in flight for their key. */
  readonly coalesced: number;
  /** Entries removed to stay within max_entries / max_bytes. */
  readonly evictions: number;
  /** Entries stored (new or replacing one). */
  readonly insertions: number;
  /** Upstream failures stored for failure_ttl (RFC 9520). */
  readonly failuresCached: number;
  /** Entries dropped when found past their stale window. */
  readonly expired: number;
  /** Queries that went around the cache (EDNS Client Subnet, RD=0). */
  readonly bypassed: number;
  /** Upstream queries the cache has in flight (each may have many waiting clients). */
  readonly inFlight: number;
  /** Clients waiting on an in-flight query. */
  readonly waiting: number;
}

/** The counters the cache layer bumps; the store adds its own size and bounds. */
export class CacheCounters {
  hits = 0;
  misses = 0;
  staleServed = 0;
  prefetches = 0;
  refreshes = 0;
  coalesced = 0;
  evictions = 0;
  insertions = 0;
  failuresCached = 0;
  expired = 0;
  bypassed = 0;
}
