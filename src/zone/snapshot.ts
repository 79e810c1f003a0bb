// The hand-off between discovery (beside the pipeline) and the query path.
// A snapshot is immutable: discovery builds a new one and swaps it in, the
// query path reads whichever is current and never awaits anything.

export interface Snapshot {
  /** Increases by one for every published snapshot. */
  readonly generation: number;
  /** Epoch ms of the poll that produced this data (0 before the first success). */
  readonly fetchedAt: number;
  /**
   * Record fqdn ("db.internal") → IPv4 addresses in a stable (sorted) order.
   * A name that is absent has no data yet (answer SERVFAIL); a name mapped to
   * [] is known to have no address (answer NODATA).
   */
  readonly records: ReadonlyMap<string, readonly string[]>;
  /**
   * Public → private IP of this account's associated Elastic IPs, for
   * upstream.rewrite_elastic_ips; absent when discovery does not map them.
   * Unchanged polls keep the same Map object.
   */
  readonly elasticIps?: ReadonlyMap<string, string>;
  /** True while the latest poll failed: answers are still served, with a short TTL. */
  readonly stale?: boolean;
  /** True when the data is older than the configured max_stale bound: names answer SERVFAIL. */
  readonly expired?: boolean;
}

export interface SnapshotSource {
  current(): Snapshot;
  /** Called after every swap; used to re-encode cached answers off the hot path. */
  onChange(listener: (next: Snapshot, previous: Snapshot) => void): () => void;
}
