// The validated, normalised configuration. Everything downstream reads this
// shape only; the YAML layout and its error reporting live in ./load.ts.

import type { TsigAlgorithm } from '../wire/codes.js';

export interface HostPort {
  readonly host: string; // IPv4 or IPv6 literal, no brackets
  readonly port: number;
}

/** Where a record's addresses come from. One discovery call per kind per poll. */
export type RecordSource =
  | { readonly kind: 'elastic_ip'; readonly selector: ElasticIpSelector }
  | { readonly kind: 'instances'; readonly tag: Readonly<Record<string, string>> }
  | {
      readonly kind: 'network_interface';
      readonly id?: string;
      readonly tag?: Readonly<Record<string, string>>;
    }
  | { readonly kind: 'static'; readonly addresses: readonly string[] };

/** Exactly one of the three is set. */
export interface ElasticIpSelector {
  readonly tag?: Readonly<Record<string, string>>;
  readonly allocationId?: string;
  readonly publicIp?: string;
}

export interface RecordConfig {
  /** Fully qualified, lower case, no trailing dot: "db.internal". */
  readonly fqdn: string;
  readonly source: RecordSource;
}

/**
 * A TSIG key (RFC 8945). The secret is read from `secret_file` when the config
 * is loaded (bare base64, or the key clause tsig-keygen / keymgr print), so a
 * missing or malformed secret is a config error with a line number.
 */
export interface TsigKeyConfig {
  /** Key name, lower case, no trailing dot ("transfer-key"). */
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  /** Absolute path the secret was read from (for messages). */
  readonly secretFile: string;
  /** The secret, base64 (a string so the config can stay deep-frozen). */
  readonly secret: string;
}

/** Serving this zone to secondaries (AXFR/IXFR out, NOTIFY). */
export interface ZoneTransferConfig {
  /** Normalised CIDRs allowed to transfer the zone. */
  readonly allow: readonly string[];
  /** Secondaries told of every change (RFC 1996). */
  readonly notify: readonly HostPort[];
}

/** SOA timers (seconds) this zone publishes; secondaries obey them. */
export interface SoaTimers {
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
}

/**
 * The least SOA timers eipdns accepts for its own zones (the loader's LIMITS
 * minimums; expire is at least refresh + retry, checked too) and the least a
 * secondary acts on (src/transfer/secondary.ts), so an eipdns primary is
 * never clamped. Knot's defaults are within a second of it
 * (refresh-min-interval 2, retry-min-interval 1, expire-min-interval 3).
 * BIND's min-refresh-time 300 and min-retry-time 500 are made for Internet
 * zones: here NOTIFY carries changes within seconds and refresh is the
 * backstop for a lost NOTIFY, so five minutes would be five minutes of
 * serving an old address.
 */
export const SOA_FLOOR: SoaTimers = Object.freeze({ refresh: 1, retry: 1, expire: 2 });

export interface ZoneConfig {
  /** Lower case, no trailing dot: "internal". */
  readonly name: string;
  /**
   * TTL of the answers. For a secondary zone (where the config refuses
   * `ttl`) it is DEFAULT_TTL and unused: the transferred records carry theirs.
   */
  readonly ttl: number;
  /** Empty for a secondary zone (its data comes from `primaries`). */
  readonly records: readonly RecordConfig[];
  /** Set for a secondary zone: fetched by AXFR/IXFR from these, in order. */
  readonly primaries?: readonly HostPort[];
  /** Set when this zone may be transferred out. */
  readonly transfer?: ZoneTransferConfig;
  /** Signs and verifies transfers and NOTIFYs for this zone, both ways. */
  readonly tsig?: TsigKeyConfig;
  /**
   * The timers a primary zone publishes. For a secondary zone (where the
   * config refuses `soa`) it is DEFAULT_SOA, a stand-in until the first
   * transfer brings the primary's SOA, whose timers then apply.
   */
  readonly soa: SoaTimers;
}

/** Forwarded-answer cache (src/cache). */
export interface CacheConfig {
  readonly enabled: boolean;
  /** Bounds: whichever is reached first evicts the least recently used entry. */
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** Positive answers live for their smallest TTL clamped to [minTtl, maxTtl] (seconds). */
  readonly minTtl: number;
  readonly maxTtl: number;
  /** RFC 2308 negative answers: min(SOA TTL, SOA MINIMUM), capped by this (seconds). */
  readonly maxNegativeTtl: number;
  /** RFC 9520: how long an upstream failure (SERVFAIL, every server silent) is remembered (seconds). */
  readonly failureTtl: number;
  /** Refresh an entry in the background when a hit lands in the last 10 % of its TTL. */
  readonly prefetch: boolean;
  /** RFC 8767 serve-stale. */
  readonly stale: {
    readonly enabled: boolean;
    /** How long an expired entry is kept for serving stale (seconds). */
    readonly maxAge: number;
    /** Client response timer: past it, a stale answer goes out while the refresh continues. */
    readonly clientTimeoutMs: number;
    /** TTL of a stale answer (RFC 8767 suggests 30 s). */
    readonly ttl: number;
  };
}

/** The admin HTTP listener (src/admin); absent from Config when off. */
export interface AdminConfig {
  readonly listen: HostPort;
  /** Normalised CIDRs that may use the admin port at all. */
  readonly allow: readonly string[];
  /** POST /refresh polls EC2 at once (like SIGUSR2). */
  readonly allowRefresh: boolean;
}

export interface Config {
  /** Absolute path of the file this was loaded from (for messages). */
  readonly file: string;
  readonly listen: readonly HostPort[];
  readonly upstream: {
    readonly servers: readonly HostPort[];
    readonly timeoutMs: number;
    /**
     * Datagrams per second sent to the upstream set as a whole (first tries,
     * retries, prefetches, refreshes): the VPC resolver drops past 1024/s per ENI.
     */
    readonly maxQps: number;
    /** Outstanding upstream queries; past it a query fails at once. */
    readonly maxInFlight: number;
    /** Answer the current private IP for public IPs of this account's associated Elastic IPs. */
    readonly rewriteElasticIps: boolean;
  };
  readonly cache: CacheConfig;
  readonly ec2: {
    readonly region?: string;
    readonly endpoint?: string;
    readonly pollIntervalMs: number;
    /** Hard deadline for one EC2 API call, including the SDK's retries. */
    readonly requestTimeoutMs: number;
    /** Absolute path; when set, addresses come from this file instead of the API. */
    readonly inventory?: string;
    /** Past this age, last known answers are withheld (SERVFAIL). */
    readonly maxStaleMs: number;
  };
  readonly zones: readonly ZoneConfig[];
  readonly acl: { readonly allow: readonly string[] };
  readonly admin?: AdminConfig;
  readonly log: { readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}
