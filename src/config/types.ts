// The validated, normalised configuration. Everything downstream reads this
// shape only; the YAML layout and its error reporting live in ./load.ts.

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

export interface ZoneConfig {
  /** Lower case, no trailing dot: "internal". */
  readonly name: string;
  readonly ttl: number;
  readonly records: readonly RecordConfig[];
}

export interface Config {
  /** Absolute path of the file this was loaded from (for messages). */
  readonly file: string;
  readonly listen: readonly HostPort[];
  readonly upstream: {
    readonly servers: readonly HostPort[];
    readonly timeoutMs: number;
  };
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
  readonly log: { readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}
