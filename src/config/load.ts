// Reads and validates an eipdns YAML config (schema v1) into the frozen
// `Config` that everything else consumes. Validation runs to the end and
// reports every problem with its line, so a broken config is fixed in one
// edit cycle; nothing is returned unless the whole file is valid.

import { readFileSync, statSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { dirname, resolve } from 'node:path';
import { isScalar, LineCounter, parseDocument } from 'yaml';
import { TSIG_HASHES, type TsigAlgorithm } from '../wire/codes.js';
import { isAtOrBelow, parseKeyName, parseRecordLabel, parseZoneName } from './dns-name.js';
import { bindsOverlap, parseCidr, parseHostPort, reachesListener, showHost, showHostPort, type HostPortRules } from './net.js';
import { checkSecret, parseTsigFile } from './tsig-file.js';
import {
  SOA_FLOOR,
  type CacheConfig,
  type Config,
  type ElasticIpSelector,
  type HostPort,
  type RecordSource,
  type SoaTimers,
  type TsigKeyConfig,
} from './types.js';
import {
  entriesOf,
  exactlyOne,
  expectBool,
  expectEnum,
  expectFields,
  expectInt,
  expectList,
  expectString,
  expectText,
  Fields,
  isEmpty,
  Reader,
  type RawIssue,
  type Value,
} from './yaml-read.js';

export interface ConfigIssue {
  /** Dotted key path ("zones[0].records.db"); "" for file-level problems. */
  readonly path: string;
  /** 1-based; 0 when the problem has no position (unreadable file). */
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly file: string;
  readonly issues: ConfigIssue[];

  constructor(file: string, issues: ConfigIssue[]) {
    super(issues.map((issue) => formatIssue(file, issue)).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${file}:${issue.line}:${issue.column}` : file;
  return issue.path ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

// ---- defaults and limits ---------------------------------------------------

export const DEFAULT_PORT = 53;
export const DEFAULT_LISTEN: readonly HostPort[] = Object.freeze([Object.freeze({ host: '127.0.0.1', port: 53 })]);
/** The Amazon-provided VPC resolver ("AmazonProvidedDNS"), reachable from every VPC instance. */
export const DEFAULT_UPSTREAM: readonly HostPort[] = Object.freeze([Object.freeze({ host: '169.254.169.253', port: 53 })]);
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 1500;
export const DEFAULT_POLL_INTERVAL_MS = 2000;
export const DEFAULT_MAX_STALE_MS = 3_600_000;
export const DEFAULT_TTL = 5;
export const DEFAULT_ACL: readonly string[] = Object.freeze([
  '127.0.0.0/8',
  '::1/128',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
]);
export const DEFAULT_LOG_LEVEL = 'info';
/**
 * request_timeout_ms defaults to the poll interval, capped here: an EC2 call
 * that outlives the interval only delays the next poll, and the cap keeps a
 * hung endpoint from stalling discovery for long.
 */
export const REQUEST_TIMEOUT_CAP_MS = 5000;
/** Under the VPC resolver's 1024 packets/s per ENI, with room for the host's other traffic. */
export const DEFAULT_MAX_QPS = 900;
export const DEFAULT_MAX_IN_FLIGHT = 10_000;
export const DEFAULT_REWRITE_ELASTIC_IPS = true;
export const DEFAULT_CACHE: CacheConfig = Object.freeze({
  enabled: true,
  maxEntries: 10_000,
  maxBytes: 16 * 1024 * 1024,
  minTtl: 0,
  maxTtl: 86_400,
  maxNegativeTtl: 3600,
  failureTtl: 5,
  // Off, as in Unbound and CoreDNS: it trades upstream queries (the VPC
  // resolver's scarce 1024 pps) for latency; see src/cache/prefetch.ts.
  prefetch: false,
  stale: Object.freeze({ enabled: true, maxAge: 86_400, clientTimeoutMs: 1800, ttl: 30 }),
});
/**
 * NOTIFY carries changes at once; refresh is the backstop. Expire matches the
 * default max_stale_ms: a secondary cut off from every primary stops
 * answering when a primary would.
 */
export const DEFAULT_SOA: SoaTimers = Object.freeze({ refresh: 60, retry: 10, expire: 3600 });
/** The admin port tells what the server knows and can trigger a poll: this host only unless widened. */
export const DEFAULT_ADMIN_ALLOW: readonly string[] = Object.freeze(['127.0.0.0/8', '::1/128']);
export const DEFAULT_ADMIN_ALLOW_REFRESH = false;
export const TSIG_ALGORITHMS = Object.keys(TSIG_HASHES) as readonly TsigAlgorithm[];
/** What tsig-keygen and keymgr make when not told otherwise. */
export const DEFAULT_TSIG_ALGORITHM: TsigKeyConfig['algorithm'] = 'hmac-sha256';
export const DEFAULT_TRANSFER_NOTIFY: readonly HostPort[] = Object.freeze([]);

// Node timers overflow above 2^31-1 ms and fire after 1 ms instead, which
// would turn a long interval into a busy loop.
const MAX_TIMER_MS = 2_147_483_647;
const ONE_DAY = 86_400;
const ONE_WEEK = 7 * ONE_DAY;

export interface Range {
  readonly min: number;
  readonly max: number;
}

/**
 * Every integer key's accepted range, by YAML key path (zones[] and stale as
 * written). One table so the loader and config/eipdns.schema.json (built by
 * ./schema.ts) cannot disagree.
 */
export const LIMITS = {
  'upstream.timeout_ms': { min: 50, max: 60_000 },
  // Above a million datagrams a second the cap no longer protects anything.
  'upstream.max_qps': { min: 1, max: 1_000_000 },
  'upstream.max_in_flight': { min: 1, max: 1_000_000 },
  // Each entry costs a few hundred bytes of bookkeeping besides its answer:
  // ten million of them already outgrow Node's default heap.
  'cache.max_entries': { min: 1, max: 10_000_000 },
  // 64 KiB holds one largest DNS message (TCP); 1 GiB is far past any
  // resolver cache's working set and keeps a typo from exhausting the host.
  'cache.max_bytes': { min: 65_536, max: 1024 * 1024 * 1024 },
  // Unbound's doc warns that a floor above an hour "can easily give trouble
  // due to stale data": a record that moves would be pinned for that long.
  'cache.min_ttl': { min: 0, max: 3600 },
  // 7 days: the cap RFC 8767 §4 recommends for TTLs (and BIND's
  // max-cache-ttl default); RFC 2181's 2^31-1 s (68 years) is never meant.
  // TTL keys without such a reason to stop earlier follow the same cap.
  'cache.max_ttl': { min: 0, max: ONE_WEEK },
  // RFC 2308 §5: negative caching "exceeding one day" has been problematic.
  'cache.max_negative_ttl': { min: 0, max: ONE_DAY },
  // RFC 9520 §3.2: at least 1 second, at most 5 minutes.
  'cache.failure_ttl': { min: 1, max: 300 },
  // RFC 8767 §5 suggests 1 to 3 days; a week is the outer bound of "stale
  // but still useful". Zero would be serve-stale off: say enabled: false.
  'cache.stale.max_age': { min: 1, max: ONE_WEEK },
  // RFC 8767's client response timer (1.8 s suggested): below 50 ms the
  // upstream never gets a chance; past a minute the client has given up.
  'cache.stale.client_timeout_ms': { min: 50, max: 60_000 },
  // RFC 8767 §4: stale answers go out with a short TTL (30 s suggested), so
  // clients come back soon for the fresh answer.
  'cache.stale.ttl': { min: 1, max: 3600 },
  'ec2.poll_interval_ms': { min: 250, max: MAX_TIMER_MS },
  'ec2.request_timeout_ms': { min: 50, max: 60_000 },
  // At least poll_interval_ms (checked too), so never below its minimum.
  'ec2.max_stale_ms': { min: 250, max: MAX_TIMER_MS },
  'zones[].ttl': { min: 0, max: ONE_DAY },
  // RFC 1912 §2.2 recommends refresh 20 min..12 h, retry below refresh and
  // expire of 2..4 weeks for Internet zones. eipdns zones change within
  // seconds and NOTIFY carries the changes, so short timers are normal here;
  // refresh and retry are capped at a day, expire at RFC 1912's 4 weeks.
  'zones[].soa.refresh': { min: SOA_FLOOR.refresh, max: ONE_DAY },
  'zones[].soa.retry': { min: SOA_FLOOR.retry, max: ONE_DAY },
  'zones[].soa.expire': { min: SOA_FLOOR.expire, max: 4 * ONE_WEEK },
} as const satisfies Record<string, Range>;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const SOURCE_KINDS = ['elastic_ip', 'instances', 'network_interface', 'a'] as const;

// AWS ids are "prefix-" plus 8 (older resources) or 17 hex digits; checking
// the form catches a missing prefix, a pasted ARN or public IP, and typos.
export const ALLOCATION_ID = /^eipalloc-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
export const ENI_ID = /^eni-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
export const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
export const ENDPOINT_URL = /^[hH][tT][tT][pP][sS]?:\/\/[^\s/?#]+(?:[/?#]\S*)?$/;

/** The keys each map accepts; anything else is an "unknown key". */
export const KEYS = {
  top: ['version', 'listen', 'upstream', 'cache', 'ec2', 'zones', 'acl', 'admin', 'log'],
  upstream: ['servers', 'timeout_ms', 'max_qps', 'max_in_flight', 'rewrite_elastic_ips'],
  cache: ['enabled', 'max_entries', 'max_bytes', 'min_ttl', 'max_ttl', 'max_negative_ttl', 'failure_ttl', 'prefetch', 'stale'],
  stale: ['enabled', 'max_age', 'client_timeout_ms', 'ttl'],
  ec2: ['region', 'endpoint', 'poll_interval_ms', 'request_timeout_ms', 'max_stale_ms', 'inventory'],
  zone: ['name', 'ttl', 'records', 'primaries', 'transfer', 'tsig', 'soa'],
  transfer: ['allow', 'notify'],
  tsig: ['name', 'algorithm', 'secret_file'],
  soa: ['refresh', 'retry', 'expire'],
  source: SOURCE_KINDS,
  elasticIp: ['tag', 'allocation_id', 'public_ip'],
  instances: ['tag'],
  networkInterface: ['id', 'tag'],
  acl: ['allow'],
  admin: ['listen', 'allow', 'allow_refresh'],
  log: ['level'],
} as const satisfies Record<string, readonly string[]>;

// ---- entry points ----------------------------------------------------------

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', line: 0, column: 0, message: `cannot read config file: ${ioReason(err)}` }]);
  }
  return parseConfig(text, file);
}

/** `file` is used for messages and to resolve relative paths (ec2.inventory). */
export function parseConfig(text: string, file: string): Config {
  const lines = new LineCounter();
  // Duplicate keys are detected by the reader, which knows their key path.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const r = new Reader(doc, lines);

  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0) {
    // The tree of a document with syntax errors is a guess; validating it
    // would bury the real problem under follow-on noise.
    for (const e of syntax) r.report(e.pos[0], e.message.replace(/\s+/g, ' ').trim(), '');
    throw toError(file, r.issues, lines);
  }

  const config = readConfig(r, resolve(file));
  if (r.issues.length > 0 || config === undefined) throw toError(file, r.issues, lines);
  return deepFreeze(config);
}

function toError(file: string, raw: readonly RawIssue[], lines: LineCounter): ConfigError {
  const issues = [...raw]
    .sort((a, b) => a.offset - b.offset)
    .map(({ offset, path, message }) => {
      const { line, col } = lines.linePos(offset);
      return Object.freeze({ path, line, column: col, message });
    });
  return new ConfigError(file, Object.freeze(issues) as ConfigIssue[]);
}

function ioReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'ENOTDIR') return 'a part of the path is not a directory';
  return err instanceof Error ? err.message : String(err);
}

// ---- the document ----------------------------------------------------------

function readConfig(r: Reader, file: string): Config | undefined {
  const top = expectFields(r, r.root(), KEYS.top, { expected: 'a map of settings', nullIsEmpty: true });
  if (top === undefined) return undefined;

  readVersion(r, top.get('version'));
  const listen = optional(top.get('listen'), (v) => readEndpoints(r, v, 'listen'), defaults(DEFAULT_LISTEN, 'listen', top));
  const upstream = readUpstream(r, section(r, top, 'upstream', KEYS.upstream));
  const cache = readCache(r, top.get('cache'));
  const ec2 = readEc2(r, section(r, top, 'ec2', KEYS.ec2), file);
  const zones = readZones(r, top.require('zones'), file);
  const acl = readAcl(r, section(r, top, 'acl', KEYS.acl));
  const admin = readAdmin(r, top.get('admin'));
  const log = readLog(r, section(r, top, 'log', KEYS.log));

  if (listen) {
    if (upstream.servers) checkNotSelf(r, listen, upstream.servers, 'every forwarded query would loop');
    for (const z of zones?.drafts ?? []) {
      checkNotSelf(r, listen, z.primaries ?? [], 'the zone would be transferred from itself');
      checkNotSelf(r, listen, z.transfer?.notify ?? [], 'it would notify itself');
    }
    if (admin?.listen) checkAdminListen(r, listen, admin.listen);
  }
  if (ec2.inventory !== undefined && zones) checkInventoryCovers(r, zones.drafts);
  if (r.issues.length > 0 || !listen || !upstream.servers || !zones) return undefined;

  return {
    file,
    listen: listen.map((e) => e.address),
    upstream: {
      servers: upstream.servers.map((e) => e.address),
      timeoutMs: upstream.timeoutMs,
      maxQps: upstream.maxQps,
      maxInFlight: upstream.maxInFlight,
      rewriteElasticIps: upstream.rewriteElasticIps,
    },
    cache,
    ec2,
    zones: zones.zones,
    acl,
    ...(admin?.listen && { admin: { listen: admin.listen.address, allow: admin.allow, allowRefresh: admin.allowRefresh } }),
    log,
  };
}

/** `undefined` when the key is absent; `read` reports and returns undefined when it is wrong. */
function optional<T>(v: Value | undefined, read: (v: Value) => T | undefined, fallback: T): T | undefined {
  return v === undefined ? fallback : read(v);
}

/** An optional integer key of `f`: its value, or `fallback` when absent or wrong (wrong is reported). */
function intKey(r: Reader, f: Fields, key: string, limit: Range, fallback: number): number {
  return optional(f.get(key), (v) => expectInt(r, v, limit), fallback) ?? fallback;
}

function boolKey(r: Reader, f: Fields, key: string, fallback: boolean): boolean {
  return optional(f.get(key), (v) => expectBool(r, v), fallback) ?? fallback;
}

/**
 * A top-level settings block. Absent, or present with every line commented
 * out (an empty value), it means "all defaults".
 */
function section(r: Reader, top: Fields, key: string, known: readonly string[]): Fields {
  return block(r, top.get(key), top, key, known);
}

/** A settings map under `parent` at `key`, where absent or empty means all defaults. */
function block(r: Reader, v: Value | undefined, parent: Fields, key: string, known: readonly string[], expected?: string): Fields {
  const path = parent.self.path === '' ? key : `${parent.self.path}.${key}`;
  const empty = new Fields(r, { node: parent.self.node, path, offset: parent.self.offset }, []);
  if (v === undefined) return empty;
  return expectFields(r, v, known, { nullIsEmpty: true, ...(expected !== undefined && { expected }) }) ?? empty;
}

function readVersion(r: Reader, v: Value | undefined): void {
  if (v === undefined) return;
  const n = expectInt(r, v, { min: -Infinity, max: Infinity });
  if (n !== undefined && n !== 1) r.report(v, `unsupported config version ${n}: this eipdns reads version 1`);
}

// ---- listen / upstream -----------------------------------------------------

interface Endpoint {
  readonly address: HostPort;
  readonly at: Value;
}

type Role = 'listen' | 'upstream' | 'primary' | 'notify';

const NO_NAMES = 'eipdns would have to resolve it through itself';
const ADDRESS_RULES: Record<Role, HostPortRules> = {
  // Port 0 binds a free port; the server reports which. Tests rely on it.
  listen: {
    defaultPort: DEFAULT_PORT,
    minPort: 0,
    hostnameHint: 'listen on an address of this host, e.g. "127.0.0.1:53" or "0.0.0.0:53"',
  },
  upstream: {
    defaultPort: DEFAULT_PORT,
    minPort: 1,
    hostnameHint: `${NO_NAMES}; use the resolver's IP (the VPC resolver is 169.254.169.253)`,
  },
  primary: { defaultPort: DEFAULT_PORT, minPort: 1, hostnameHint: `${NO_NAMES}; use the primary's IP` },
  notify: { defaultPort: DEFAULT_PORT, minPort: 1, hostnameHint: `${NO_NAMES}; use the secondary's IP` },
};

function readEndpoints(r: Reader, v: Value, role: Role, min = 1): Endpoint[] | undefined {
  const items = expectList(r, v, { of: 'addresses ("ip" or "ip:port")', min });
  if (items === undefined) return undefined;
  const out: Endpoint[] = [];
  const seen = new Map<string, Value>();
  for (const item of items) {
    const text = expectString(r, item, 'an address string like "10.0.0.2" or "127.0.0.1:53"');
    if (text === undefined) continue;
    const parsed = parseHostPort(text, ADDRESS_RULES[role]);
    if (!parsed.ok) {
      r.report(item, parsed.error);
      continue;
    }
    const key = `[${parsed.value.host}]:${parsed.value.port}`;
    const first = seen.get(key);
    // Every ":0" listener gets its own free port, so those never collide.
    if (first && parsed.value.port !== 0) {
      r.report(item, `duplicate of ${first.path} (${key})`);
      continue;
    }
    seen.set(key, item);
    out.push({ address: parsed.value, at: item });
  }
  return out;
}

/** Defaults carry the parent's position, so a conflict with them still gets a line number and a clear message about them. */
function defaults(addresses: readonly HostPort[], path: string, parent: Fields): Endpoint[] {
  return addresses.map((address) => ({ address: { ...address }, at: { ...parent.self, path: `${path} (default)` } }));
}

function readUpstream(r: Reader, f: Fields) {
  return {
    servers: optional(f.get('servers'), (v) => readEndpoints(r, v, 'upstream'), defaults(DEFAULT_UPSTREAM, 'upstream.servers', f)),
    timeoutMs: intKey(r, f, 'timeout_ms', LIMITS['upstream.timeout_ms'], DEFAULT_UPSTREAM_TIMEOUT_MS),
    maxQps: intKey(r, f, 'max_qps', LIMITS['upstream.max_qps'], DEFAULT_MAX_QPS),
    maxInFlight: intKey(r, f, 'max_in_flight', LIMITS['upstream.max_in_flight'], DEFAULT_MAX_IN_FLIGHT),
    rewriteElasticIps: boolKey(r, f, 'rewrite_elastic_ips', DEFAULT_REWRITE_ELASTIC_IPS),
  };
}

/**
 * Forwarding to ourselves would bounce every unknown name until it timed
 * out; a zone transferred from, or NOTIFY sent to, ourselves is the same
 * mistake in the transfer path.
 */
function checkNotSelf(r: Reader, listen: readonly Endpoint[], peers: readonly Endpoint[], consequence: string): void {
  for (const peer of peers) {
    const hit = listen.find((l) => reachesListener(peer.address, l.address));
    if (hit) {
      const self = `${hit.address.host}:${hit.address.port}`;
      r.report(peer.at, `is eipdns itself (${hit.at.path} binds ${self}): ${consequence}`);
    }
  }
}

// ---- cache -----------------------------------------------------------------

function readCache(r: Reader, v: Value | undefined): CacheConfig {
  if (v === undefined) return DEFAULT_CACHE;
  // `cache: false` is the one-word way to turn it off; `true` is all defaults.
  if (isScalar(v.node) && typeof v.node.value === 'boolean') return { ...DEFAULT_CACHE, enabled: v.node.value };
  const f = expectFields(r, v, KEYS.cache, { expected: 'a map of cache settings, or false', nullIsEmpty: true });
  if (f === undefined) return DEFAULT_CACHE;
  const d = DEFAULT_CACHE;

  const minTtl = optional(f.get('min_ttl'), (t) => expectInt(r, t, LIMITS['cache.min_ttl']), d.minTtl);
  const maxTtlAt = f.get('max_ttl');
  const maxTtl = optional(maxTtlAt, (t) => expectInt(r, t, LIMITS['cache.max_ttl']), d.maxTtl);
  if (minTtl !== undefined && maxTtl !== undefined && maxTtl < minTtl) {
    // min_ttl is at most an hour and max_ttl defaults to a day, so max_ttl was given.
    r.report(maxTtlAt ?? f.self, `must be at least min_ttl (${minTtl}): TTLs are clamped to [min_ttl, max_ttl]`, 'cache.max_ttl');
  }

  const sf = block(r, f.get('stale'), f, 'stale', KEYS.stale, 'a map of serve-stale settings');
  return {
    enabled: boolKey(r, f, 'enabled', d.enabled),
    maxEntries: intKey(r, f, 'max_entries', LIMITS['cache.max_entries'], d.maxEntries),
    maxBytes: intKey(r, f, 'max_bytes', LIMITS['cache.max_bytes'], d.maxBytes),
    minTtl: minTtl ?? d.minTtl,
    maxTtl: maxTtl ?? d.maxTtl,
    maxNegativeTtl: intKey(r, f, 'max_negative_ttl', LIMITS['cache.max_negative_ttl'], d.maxNegativeTtl),
    failureTtl: intKey(r, f, 'failure_ttl', LIMITS['cache.failure_ttl'], d.failureTtl),
    prefetch: boolKey(r, f, 'prefetch', d.prefetch),
    stale: {
      enabled: boolKey(r, sf, 'enabled', d.stale.enabled),
      maxAge: intKey(r, sf, 'max_age', LIMITS['cache.stale.max_age'], d.stale.maxAge),
      clientTimeoutMs: intKey(r, sf, 'client_timeout_ms', LIMITS['cache.stale.client_timeout_ms'], d.stale.clientTimeoutMs),
      ttl: intKey(r, sf, 'ttl', LIMITS['cache.stale.ttl'], d.stale.ttl),
    },
  };
}

// ---- ec2 -------------------------------------------------------------------

function readEc2(r: Reader, f: Fields, configFile: string): Config['ec2'] {
  const region = optional(f.get('region'), (v) => readRegion(r, v), undefined);
  const endpoint = optional(f.get('endpoint'), (v) => readEndpointUrl(r, v), undefined);
  const inventory = optional(f.get('inventory'), (v) => readInventory(r, v, configFile), undefined);

  const pollGiven = optional(f.get('poll_interval_ms'), (v) => expectInt(r, v, LIMITS['ec2.poll_interval_ms']), DEFAULT_POLL_INTERVAL_MS);
  const pollIntervalMs = pollGiven ?? DEFAULT_POLL_INTERVAL_MS;
  const defaultRequestTimeout = Math.min(pollIntervalMs, REQUEST_TIMEOUT_CAP_MS);
  const requestTimeoutMs =
    optional(f.get('request_timeout_ms'), (v) => expectInt(r, v, LIMITS['ec2.request_timeout_ms']), defaultRequestTimeout) ??
    defaultRequestTimeout;

  const staleValue = f.get('max_stale_ms');
  const maxStaleMs =
    optional(staleValue, (v) => expectInt(r, v, LIMITS['ec2.max_stale_ms']), DEFAULT_MAX_STALE_MS) ??
    DEFAULT_MAX_STALE_MS;
  if (pollGiven !== undefined && maxStaleMs < pollIntervalMs) {
    // Data would expire before the next poll could refresh it.
    r.report(
      staleValue ?? f.self,
      `must be at least poll_interval_ms (${pollIntervalMs}), or answers expire between two polls`,
      staleValue ? undefined : 'ec2.max_stale_ms',
    );
  }

  return {
    ...(region !== undefined && { region }),
    ...(endpoint !== undefined && { endpoint }),
    pollIntervalMs,
    requestTimeoutMs,
    ...(inventory !== undefined && { inventory }),
    maxStaleMs,
  };
}

function readRegion(r: Reader, v: Value): string | undefined {
  const s = expectString(r, v, 'an AWS region name');
  if (s === undefined) return undefined;
  if (!REGION.test(s)) {
    r.report(v, `"${s}" is not an AWS region name like "us-east-1"`);
    return undefined;
  }
  return s;
}

function readEndpointUrl(r: Reader, v: Value): string | undefined {
  const s = expectString(r, v, 'an http(s) URL');
  if (s === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    r.report(v, `"${s}" is not a URL; expected e.g. "http://127.0.0.1:4566"`);
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    r.report(v, `"${s}": expected an http:// or https:// URL`);
    return undefined;
  }
  // The URL parser also takes "http:host" and surrounding blanks; those are
  // typos far more often than intent.
  if (!ENDPOINT_URL.test(s)) {
    r.report(v, `"${s}" is not written as a URL like "http://127.0.0.1:4566"`);
    return undefined;
  }
  return s;
}

function readInventory(r: Reader, v: Value, configFile: string): string | undefined {
  return readPath(r, v, configFile)?.path;
}

/** Files named in the config must exist when it is loaded, so a typo is a config error with a line. */
function readPath(r: Reader, v: Value, configFile: string): { path: string; size: number } | undefined {
  const s = expectString(r, v, 'a file path');
  if (s === undefined) return undefined;
  if (s === '') {
    r.report(v, 'expected a file path, got an empty string');
    return undefined;
  }
  const path = resolve(dirname(configFile), s);
  let problem: string | undefined;
  let size = 0;
  try {
    const st = statSync(path);
    if (!st.isFile()) problem = 'is not a regular file';
    size = st.size;
  } catch (err) {
    problem = ioReason(err);
  }
  if (problem !== undefined) {
    r.report(v, `${path}: ${problem} (relative paths are resolved against the config file's directory)`);
    return undefined;
  }
  return { path, size };
}

// ---- zones -----------------------------------------------------------------

interface ZoneDraft {
  readonly name: string | undefined;
  readonly nameAt: Value | undefined;
  readonly ttl: number;
  readonly records: RecordDraft[];
  readonly primaries?: Endpoint[];
  readonly transfer?: { allow: string[]; notify: Endpoint[] };
  readonly tsig?: TsigKeyConfig;
  readonly tsigAt?: Value;
  readonly soa: SoaTimers;
}

interface RecordDraft {
  readonly fqdn: string;
  readonly path: string;
  readonly keyOffset: number;
  readonly source: RecordSource | undefined;
}

function readZones(r: Reader, v: Value | undefined, configFile: string): { zones: Config['zones']; drafts: ZoneDraft[] } | undefined {
  if (v === undefined) return undefined;
  const items = expectList(r, v, { of: 'zones', min: 1 });
  if (items === undefined) return undefined;
  const drafts = items.map((item) => readZone(r, item, configFile));
  checkNames(r, drafts);
  checkTsigKeys(r, drafts);
  const zones = drafts.map((z) => ({
    name: z.name ?? '',
    ttl: z.ttl,
    records: z.records.map((rec) => ({ fqdn: rec.fqdn, source: rec.source! })),
    ...(z.primaries && { primaries: z.primaries.map((e) => e.address) }),
    ...(z.transfer && { transfer: { allow: z.transfer.allow, notify: z.transfer.notify.map((e) => e.address) } }),
    ...(z.tsig && { tsig: z.tsig }),
    soa: z.soa,
  }));
  return { zones, drafts };
}

/**
 * The inventory file has the shape of DescribeAddresses output only, and it
 * replaces the API entirely; a record that needs instances or ENIs would
 * never get an answer. Discovery refuses this too, but only at start-up and
 * without a line number. Secondary zones have no records of their own.
 */
function checkInventoryCovers(r: Reader, zones: readonly ZoneDraft[]): void {
  for (const rec of zones.flatMap((z) => z.records)) {
    const kind = rec.source?.kind;
    if (kind === 'instances' || kind === 'network_interface') {
      r.report(
        rec.keyOffset,
        `"${kind}" needs the EC2 API, but ec2.inventory is set and only describes Elastic IPs; use elastic_ip or a, or drop ec2.inventory`,
        rec.path,
      );
    }
  }
}

/**
 * A zone is primary (its `records` come from EC2 and the config) or
 * secondary (copied by zone transfer from its `primaries`), never both. A
 * secondary takes its TTLs and SOA timers from what the primary sends, so
 * `ttl` and `soa` would be silently ignored there: they are refused instead.
 */
function readZone(r: Reader, v: Value, configFile: string): ZoneDraft {
  const f = expectFields(r, v, KEYS.zone);
  if (f === undefined) return { name: undefined, nameAt: undefined, ttl: DEFAULT_TTL, records: [], soa: DEFAULT_SOA };

  const nameAt = f.require('name');
  let name: string | undefined;
  const raw = nameAt && expectString(r, nameAt, 'a DNS name');
  if (nameAt && raw !== undefined) {
    const parsed = parseZoneName(raw);
    if (parsed.ok) name = parsed.value;
    else r.report(nameAt, parsed.error);
  }

  const kinds = f.present(['records', 'primaries']);
  if (kinds.length === 2) {
    r.report(
      kinds[1]!.keyOffset,
      '"records" and "primaries" both given: a zone is either primary (records) or secondary (primaries), not both',
      f.self.path,
    );
  } else if (kinds.length === 0 && f.unknown === 0) {
    // An unknown key was most likely meant as one of the two, and has been reported.
    r.report(f.self, 'needs "records" (a primary zone, answered from EC2) or "primaries" (a secondary zone, copied from them by zone transfer)');
  }
  const secondary = kinds.length === 1 && kinds[0]!.key === 'primaries';

  const ttlAt = f.get('ttl');
  const soaAt = f.get('soa');
  if (secondary) {
    if (ttlAt) r.report(ttlAt, "a secondary zone serves the TTLs its primaries send; drop ttl");
    if (soaAt) r.report(soaAt, "a secondary zone obeys its primaries' SOA timers; drop soa");
  }
  const ttl = optional(ttlAt, (t) => expectInt(r, t, LIMITS['zones[].ttl']), DEFAULT_TTL) ?? DEFAULT_TTL;
  const recordsAt = f.get('records');
  const records = recordsAt ? readRecords(r, recordsAt, name) : [];
  const primariesAt = f.get('primaries');
  const primaries = primariesAt && readEndpoints(r, primariesAt, 'primary');
  const transferAt = f.get('transfer');
  const transfer = transferAt && readTransfer(r, transferAt);
  const tsigAt = f.get('tsig');
  const tsig = tsigAt && readTsig(r, tsigAt, configFile);
  const soa = soaAt && !secondary ? readSoa(r, soaAt) : DEFAULT_SOA;

  return {
    name,
    nameAt,
    ttl,
    records,
    ...(primaries && { primaries }),
    ...(transfer && { transfer }),
    ...(tsig && tsigAt && { tsig, tsigAt }),
    soa,
  };
}

function readRecords(r: Reader, v: Value, zone: string | undefined): RecordDraft[] {
  // An empty map is allowed: a zone with no records still answers
  // authoritatively (NXDOMAIN), keeping those names away from the upstream.
  const entries = entriesOf(r, v, { expected: 'a map of record name to source', nullIsEmpty: true, caseInsensitive: true });
  const out: RecordDraft[] = [];
  for (const e of entries ?? []) {
    const source = readSource(r, e.value);
    const label = parseRecordLabel(e.key);
    if (!label.ok) {
      r.report(e.keyOffset, label.error, e.value.path);
      continue;
    }
    if (zone === undefined) continue;
    const fqdn = `${label.value}.${zone}`;
    if (fqdn.length > 253) {
      r.report(e.keyOffset, `"${fqdn}" is longer than 253 characters`, e.value.path);
      continue;
    }
    out.push({ fqdn, path: e.value.path, keyOffset: e.keyOffset, source });
  }
  return out;
}

function readTransfer(r: Reader, v: Value): ZoneDraft['transfer'] {
  const f = expectFields(r, v, KEYS.transfer, { expected: 'a map with allow (CIDRs) and optionally notify' });
  if (f === undefined) return undefined;
  // No default for allow: who may copy the whole zone is always a decision.
  const allowAt = f.require('allow');
  const allow = allowAt && readCidrs(r, allowAt);
  const notify = optional(f.get('notify'), (n) => readEndpoints(r, n, 'notify', 0), []);
  return allow && notify && { allow, notify };
}

function readSoa(r: Reader, v: Value): SoaTimers {
  const f = expectFields(r, v, KEYS.soa, { expected: 'a map of SOA timers (refresh, retry, expire)', nullIsEmpty: true });
  if (f === undefined) return DEFAULT_SOA;
  const get = (key: keyof SoaTimers): number | undefined =>
    optional(f.get(key), (t) => expectInt(r, t, LIMITS[`zones[].soa.${key}`]), DEFAULT_SOA[key]);
  const refresh = get('refresh');
  const retry = get('retry');
  const expireAt = f.get('expire');
  const expire = get('expire');
  if (refresh !== undefined && retry !== undefined && expire !== undefined && expire < refresh + retry) {
    // RFC 1912 §2.2: a secondary keeps retrying until expire; below
    // refresh + retry it would drop the zone before its first retry.
    const need = refresh + retry;
    const tail = 'or secondaries drop the zone before they retry';
    r.report(
      expireAt ?? f.self,
      expireAt
        ? `must be at least refresh + retry (${need}), ${tail}`
        : `the default, ${DEFAULT_SOA.expire}, is less than refresh + retry (${need}): set expire to at least ${need}, ${tail}`,
      `${f.self.path}.expire`,
    );
  }
  return { refresh: refresh ?? DEFAULT_SOA.refresh, retry: retry ?? DEFAULT_SOA.retry, expire: expire ?? DEFAULT_SOA.expire };
}

// ---- tsig ------------------------------------------------------------------

/** The secret file is read here, so a missing or malformed key fails the config, with its line. */
const MAX_SECRET_FILE = 64 * 1024;

function readTsig(r: Reader, v: Value, configFile: string): TsigKeyConfig | undefined {
  const f = expectFields(r, v, KEYS.tsig, { expected: 'a map with name, algorithm and secret_file' });
  if (f === undefined) return undefined;

  const nameAt = f.require('name');
  const rawName = nameAt && expectString(r, nameAt, 'a key name');
  let name: string | undefined;
  if (nameAt && rawName !== undefined) {
    const parsed = parseKeyName(rawName);
    if (parsed.ok) name = parsed.value;
    else r.report(nameAt, parsed.error);
  }
  const algorithmAt = f.get('algorithm');
  const algorithm = optional(algorithmAt, (a) => expectEnum(r, a, TSIG_ALGORITHMS), DEFAULT_TSIG_ALGORITHM);

  const fileAt = f.require('secret_file');
  const file = fileAt && readPath(r, fileAt, configFile);
  if (!fileAt || !file) return undefined;
  const fail = (problem: string): undefined => {
    r.report(fileAt, `${file.path}: ${problem}`);
    return undefined;
  };
  if (file.size > MAX_SECRET_FILE) return fail(`is ${file.size} bytes; a TSIG key file is a few lines`);
  let text: string;
  try {
    text = readFileSync(file.path, 'utf8');
  } catch (err) {
    return fail(ioReason(err));
  }
  const parsed = parseTsigFile(text);
  if (!parsed.ok) return fail(parsed.error);

  const { keys, format } = parsed.value;
  let key = keys[0]!;
  if (format !== 'base64') {
    if (name === undefined) {
      // The name is wrong or missing (reported); with one key, still check the secret.
      if (keys.length > 1) return undefined;
    } else {
      const named = keys.filter((k) => k.name === name);
      if (named.length === 0) {
        const held = keys.map((k) => `"${k.name}"`).join(', ');
        return fail(
          `holds key ${held}, not "${name}" (${f.self.path}.name); the key name is part of every signature, so both sides must use the same one`,
        );
      }
      if (named.length > 1) return fail(`holds key "${name}" more than once`);
      key = named[0]!;
    }
  }
  if (algorithm !== undefined && key.algorithm !== undefined && key.algorithm !== algorithm) {
    const given = algorithmAt ? '' : ' (the default)';
    return fail(`key "${key.name}" is ${key.algorithm}, but ${f.self.path}.algorithm is ${algorithm}${given}`);
  }
  const problem = checkSecret(key.secret);
  if (problem !== undefined) return fail(problem);
  if (name === undefined || algorithm === undefined) return undefined;
  return { name, algorithm, secretFile: file.path, secret: key.secret };
}

/**
 * A TSIG key is known by its name: a request signed "xfr" is checked with
 * the one "xfr" secret, whichever zone it asks for. Two zones naming the
 * same key with different secrets or algorithms would leave one of them
 * unable to verify anything, so the same name must mean the same key.
 */
function checkTsigKeys(r: Reader, zones: readonly ZoneDraft[]): void {
  const byName = new Map<string, { tsig: TsigKeyConfig; at: Value }>();
  for (const z of zones) {
    if (z.tsig === undefined || z.tsigAt === undefined) continue;
    const first = byName.get(z.tsig.name);
    if (first === undefined) {
      byName.set(z.tsig.name, { tsig: z.tsig, at: z.tsigAt });
      continue;
    }
    const differs = [first.tsig.secret !== z.tsig.secret && 'secret', first.tsig.algorithm !== z.tsig.algorithm && 'algorithm'].filter(Boolean).join(' and ');
    if (differs !== '') {
      r.report(
        z.tsigAt,
        `key "${z.tsig.name}" is defined twice with different ${differs} (${first.at.path}, line ${r.lineOf(first.at.offset)}); one key name must mean one key`,
      );
    }
  }
}

/**
 * Zones may nest; the most specific zone answers a query. So a zone name
 * must be unique, and a record must not sit at or below a more specific
 * zone than its own: that zone would answer for it and the record would be
 * silently dead.
 */
function checkNames(r: Reader, zones: readonly ZoneDraft[]): void {
  const byName = new Map<string, ZoneDraft>();
  for (const z of zones) {
    if (z.name === undefined || z.nameAt === undefined) continue;
    const first = byName.get(z.name);
    if (first?.nameAt) {
      r.report(z.nameAt, `duplicate zone "${z.name}" (first defined on line ${r.lineOf(first.nameAt.offset)})`);
    } else {
      byName.set(z.name, z);
    }
  }

  for (const z of zones) {
    for (const rec of z.records) {
      const owner = [...byName.values()]
        .filter((other) => isAtOrBelow(rec.fqdn, other.name!))
        .reduce<ZoneDraft | undefined>((best, o) => (!best || o.name!.length > best.name!.length ? o : best), undefined);
      if (!owner || owner === z || owner.name === z.name) continue;
      const where = `${owner.nameAt!.path.replace(/\.name$/, '')}, line ${r.lineOf(owner.nameAt!.offset)}`;
      const message =
        rec.fqdn === owner.name
          ? `"${rec.fqdn}" is also a zone (${where}); a zone apex cannot have records`
          : `"${rec.fqdn}" lies inside the more specific zone "${owner.name}" (${where}), which would answer for it; define it there`;
      r.report(rec.keyOffset, message, rec.path);
    }
  }
}

// ---- record sources --------------------------------------------------------

function readSource(r: Reader, v: Value): RecordSource | undefined {
  const f = expectFields(r, v, SOURCE_KINDS, {
    expected: 'a map with one address source (elastic_ip, instances, network_interface or a)',
  });
  if (f === undefined) return undefined;
  const chosen = exactlyOne(r, f, SOURCE_KINDS, 'address source');
  if (chosen === undefined) return undefined;
  const body = chosen.value;
  switch (chosen.key as (typeof SOURCE_KINDS)[number]) {
    case 'elastic_ip': {
      const selector = readElasticIp(r, body);
      return selector && { kind: 'elastic_ip', selector };
    }
    case 'instances': {
      const sel = expectFields(r, body, KEYS.instances);
      const tagAt = sel?.require('tag');
      const tag = tagAt && readTags(r, tagAt);
      return tag && { kind: 'instances', tag };
    }
    case 'network_interface': {
      const sel = expectFields(r, body, KEYS.networkInterface);
      const one = sel && exactlyOne(r, sel, KEYS.networkInterface, 'selector');
      if (one?.key === 'id') {
        const id = readId(r, one.value, ENI_ID, 'eni-0123456789abcdef0');
        return id === undefined ? undefined : { kind: 'network_interface', id };
      }
      const tag = one && readTags(r, one.value);
      return tag && { kind: 'network_interface', tag };
    }
    case 'a': {
      const addresses = readStaticAddresses(r, body);
      return addresses && { kind: 'static', addresses };
    }
  }
}

function readElasticIp(r: Reader, v: Value): ElasticIpSelector | undefined {
  const f = expectFields(r, v, KEYS.elasticIp);
  const one = f && exactlyOne(r, f, KEYS.elasticIp, 'selector');
  if (one === undefined) return undefined;
  if (one.key === 'tag') {
    const tag = readTags(r, one.value);
    return tag && { tag };
  }
  if (one.key === 'allocation_id') {
    const allocationId = readId(r, one.value, ALLOCATION_ID, 'eipalloc-0123456789abcdef0');
    return allocationId === undefined ? undefined : { allocationId };
  }
  const ip = expectString(r, one.value, 'an IPv4 address');
  if (ip === undefined) return undefined;
  if (!isIPv4(ip)) {
    r.report(one.value, `"${ip}" is not an IPv4 address (Elastic IPs are IPv4)`);
    return undefined;
  }
  return { publicIp: ip };
}

function readId(r: Reader, v: Value, pattern: RegExp, example: string): string | undefined {
  const s = expectString(r, v, `an id like "${example}"`);
  if (s === undefined) return undefined;
  if (!pattern.test(s)) {
    r.report(v, `"${s}" is not an id like "${example}"`);
    return undefined;
  }
  return s;
}

/**
 * EC2 tags to match, all of them (AND). Keys are case-sensitive, as in EC2.
 * Unquoted numbers and booleans are taken as the text written (see expectText).
 */
function readTags(r: Reader, v: Value): Record<string, string> | undefined {
  const entries = entriesOf(r, v, { expected: 'a map of tag key to string value' });
  if (entries === undefined) return undefined;
  if (entries.length === 0) {
    r.report(v, 'expected a map of tag key to string value, got an empty map (it would match everything)');
    return undefined;
  }
  const tags: Record<string, string> = {};
  for (const e of entries) {
    if (e.key.length > 128) r.report(e.keyOffset, 'tag keys are at most 128 characters', e.value.path);
    if (isEmpty(e.value)) {
      r.report(e.value, 'expected a tag value; write "" to match a tag whose value is empty');
      continue;
    }
    const value = expectText(r, e.value, 'a string tag value');
    if (value === undefined) continue;
    if (value.length > 256) r.report(e.value, 'tag values are at most 256 characters');
    tags[e.key] = value;
  }
  return tags;
}

function readStaticAddresses(r: Reader, v: Value): string[] | undefined {
  const items = expectList(r, v, { of: 'IPv4 addresses', min: 1 });
  if (items === undefined) return undefined;
  const out: string[] = [];
  for (const item of items) {
    const s = expectString(r, item, 'an IPv4 address');
    if (s === undefined) continue;
    if (!isIPv4(s)) r.report(item, `"${s}" is not an IPv4 address`);
    else if (out.includes(s)) r.report(item, `duplicate address "${s}"`);
    else out.push(s);
  }
  return out;
}

// ---- acl / log -------------------------------------------------------------

function readAcl(r: Reader, f: Fields): Config['acl'] {
  const allow = optional(f.get('allow'), (v) => readCidrs(r, v), [...DEFAULT_ACL]) ?? [];
  return { allow };
}

function readCidrs(r: Reader, v: Value): string[] | undefined {
  // An empty allow list would refuse every client; that is never the intent.
  const items = expectList(r, v, { of: 'CIDR prefixes like "10.0.0.0/8"', min: 1 });
  if (items === undefined) return undefined;
  const out: string[] = [];
  for (const item of items) {
    const s = expectString(r, item, 'a CIDR prefix like "10.0.0.0/8"');
    if (s === undefined) continue;
    const parsed = parseCidr(s);
    if (parsed.ok) out.push(parsed.value);
    else r.report(item, parsed.error);
  }
  return out;
}

// ---- admin -----------------------------------------------------------------

interface AdminDraft {
  /** Undefined when `listen` was wrong (reported). */
  readonly listen: Endpoint | undefined;
  readonly allow: string[];
  readonly allowRefresh: boolean;
}

/**
 * The admin listener is off unless asked for: absent, or present with every
 * line commented out. It has no default port, since any choice could clash
 * with something else on the host.
 */
function readAdmin(r: Reader, v: Value | undefined): AdminDraft | undefined {
  if (v === undefined || isEmpty(v)) return undefined;
  const f = expectFields(r, v, KEYS.admin, { expected: 'a map of admin listener settings' });
  if (f === undefined) return undefined;
  const listenAt = f.require('listen');
  const listen = listenAt && readAdminListen(r, listenAt);
  const allow = optional(f.get('allow'), (a) => readCidrs(r, a), [...DEFAULT_ADMIN_ALLOW]) ?? [];
  const allowRefresh = boolKey(r, f, 'allow_refresh', DEFAULT_ADMIN_ALLOW_REFRESH);
  return { listen, allow, allowRefresh };
}

const NO_PORT = -1;

function readAdminListen(r: Reader, v: Value): Endpoint | undefined {
  const text = expectString(r, v, 'an address with a port, like "127.0.0.1:8053"');
  if (text === undefined) return undefined;
  const parsed = parseHostPort(text, {
    defaultPort: NO_PORT,
    minPort: 0,
    hostnameHint: 'listen on an address of this host, e.g. "127.0.0.1:8053"',
  });
  if (!parsed.ok) {
    r.report(v, parsed.error);
    return undefined;
  }
  if (parsed.value.port === NO_PORT) {
    const host = showHost(parsed.value.host);
    r.report(v, `"${text}" has no port: write "${host}:PORT" (the admin listener has no default port)`);
    return undefined;
  }
  return { address: parsed.value, at: v };
}

/** Each DNS listener also holds a TCP socket; the admin HTTP server cannot bind over it. */
function checkAdminListen(r: Reader, listen: readonly Endpoint[], admin: Endpoint): void {
  const show = showHostPort;
  for (const l of listen) {
    if (bindsOverlap(admin.address, l.address)) {
      r.report(admin.at, `${show(admin.address)} collides with ${l.at.path} (${show(l.address)}): that DNS listener's TCP socket holds the port`);
    }
  }
}

function readLog(r: Reader, f: Fields): Config['log'] {
  const level = optional(f.get('level'), (v) => expectEnum(r, v, LOG_LEVELS), DEFAULT_LOG_LEVEL) ?? DEFAULT_LOG_LEVEL;
  return { level };
}

// ---- freezing --------------------------------------------------------------

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
