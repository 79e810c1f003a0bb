// Reads and validates an eipdns YAML config (schema v1) into the frozen
// `Config` that everything else consumes. Validation runs to the end and
// reports every problem with its line, so a broken config is fixed in one
// edit cycle; nothing is returned unless the whole file is valid.

import { readFileSync, statSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { isAtOrBelow, parseRecordLabel, parseZoneName } from './dns-name.js';
import { parseCidr, parseHostPort, reachesListener, type HostPortRules } from './net.js';
import type { CacheConfig, Config, ElasticIpSelector, HostPort, RecordSource, SoaTimers } from './types.js';
import {
  entriesOf,
  exactlyOne,
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
/** Under the VPC resolver's 1024 packets/s per ENI, with room for the host's other traffic. */
export const DEFAULT_MAX_QPS = 900;
export const DEFAULT_MAX_IN_FLIGHT = 10_000;
export const DEFAULT_CACHE: CacheConfig = Object.freeze({
  enabled: true,
  maxEntries: 10_000,
  maxBytes: 16 * 1024 * 1024,
  minTtl: 0,
  maxTtl: 86_400,
  maxNegativeTtl: 3600,
  failureTtl: 5,
  prefetch: true,
  stale: Object.freeze({ enabled: true, maxAge: 86_400, clientTimeoutMs: 1800, ttl: 30 }),
});
/**
 * NOTIFY carries changes at once; refresh is the backstop. Expire matches the
 * default max_stale_ms: a secondary cut off from every primary stops
 * answering when a primary would.
 */
export const DEFAULT_SOA: SoaTimers = Object.freeze({ refresh: 60, retry: 10, expire: 3600 });

// Node timers overflow above 2^31-1 ms and fire after 1 ms instead, which
// would turn a long interval into a busy loop.
const MAX_TIMER_MS = 2_147_483_647;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const SOURCE_KINDS = ['elastic_ip', 'instances', 'network_interface', 'a'] as const;

// AWS ids are "prefix-" plus 8 (older resources) or 17 hex digits; checking
// the form catches a missing prefix, a pasted ARN or public IP, and typos.
const ALLOCATION_ID = /^eipalloc-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
const ENI_ID = /^eni-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;

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
  return err instanceof Error ? err.message : String(err);
}

// ---- the document ----------------------------------------------------------

const TOP_KEYS = ['version', 'listen', 'upstream', 'ec2', 'zones', 'acl', 'log'];

function readConfig(r: Reader, file: string): Config | undefined {
  const top = expectFields(r, r.root(), TOP_KEYS, { expected: 'a map of settings', nullIsEmpty: true });
  if (top === undefined) return undefined;

  readVersion(r, top.get('version'));
  const listen = optional(top.get('listen'), (v) => readEndpoints(r, v, 'listen'), defaults(DEFAULT_LISTEN, 'listen', top));
  const upstream = readUpstream(r, section(r, top, 'upstream', ['servers', 'timeout_ms']));
  const ec2 = readEc2(r, section(r, top, 'ec2', EC2_KEYS), file);
  const zones = readZones(r, top.require('zones'));
  const acl = readAcl(r, section(r, top, 'acl', ['allow']));
  const log = readLog(r, section(r, top, 'log', ['level']));

  if (listen && upstream.servers) checkNoSelfForwarding(r, listen, upstream.servers);
  if (ec2.inventory !== undefined && zones) checkInventoryCovers(r, zones.drafts);
  if (r.issues.length > 0 || !listen || !upstream.servers || !zones) return undefined;

  return {
    file,
    listen: listen.map((e) => e.address),
    upstream: {
      servers: upstream.servers.map((e) => e.address),
      timeoutMs: upstream.timeoutMs,
      maxQps: DEFAULT_MAX_QPS,
      maxInFlight: DEFAULT_MAX_IN_FLIGHT,
      rewriteElasticIps: true,
    },
    cache: DEFAULT_CACHE,
    ec2,
    zones: zones.zones,
    acl,
    log,
  };
}

/** `undefined` when the key is absent; `read` reports and returns undefined when it is wrong. */
function optional<T>(v: Value | undefined, read: (v: Value) => T | undefined, fallback: T): T | undefined {
  return v === undefined ? fallback : read(v);
}

/**
 * A top-level settings block. Absent, or present with every line commented
 * out (an empty value), it means "all defaults".
 */
function section(r: Reader, top: Fields, key: string, known: readonly string[]): Fields {
  const v = top.get(key);
  const empty = new Fields(r, { node: top.self.node, path: key, offset: top.self.offset }, []);
  if (v === undefined) return empty;
  return expectFields(r, v, known, { nullIsEmpty: true }) ?? empty;
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

const ADDRESS_RULES: Record<'listen' | 'upstream', HostPortRules> = {
  // Port 0 binds a free port; the server reports which. Tests rely on it.
  listen: {
    defaultPort: DEFAULT_PORT,
    minPort: 0,
    hostnameHint: 'listen on an address of this host, e.g. "127.0.0.1:53" or "0.0.0.0:53"',
  },
  upstream: {
    defaultPort: DEFAULT_PORT,
    minPort: 1,
    hostnameHint: 'eipdns would have to resolve it through itself; use the resolver\'s IP (the VPC resolver is 169.254.169.253)',
  },
};

function readEndpoints(r: Reader, v: Value, role: 'listen' | 'upstream'): Endpoint[] | undefined {
  const items = expectList(r, v, { of: 'addresses ("ip" or "ip:port")', min: 1 });
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

/** Default endpoints, attributed to the enclosing map for any message about them. */
function defaults(addresses: readonly HostPort[], path: string, parent: Fields): Endpoint[] {
  return addresses.map((address) => ({ address: { ...address }, at: { ...parent.self, path: `${path} (default)` } }));
}

function readUpstream(r: Reader, f: Fields) {
  return {
    servers: optional(f.get('servers'), (v) => readEndpoints(r, v, 'upstream'), defaults(DEFAULT_UPSTREAM, 'upstream.servers', f)),
    timeoutMs:
      optional(f.get('timeout_ms'), (v) => expectInt(r, v, { min: 50, max: 60_000 }), DEFAULT_UPSTREAM_TIMEOUT_MS) ??
      DEFAULT_UPSTREAM_TIMEOUT_MS,
  };
}

/** Forwarding to ourselves would bounce every unknown name until it timed out. */
function checkNoSelfForwarding(r: Reader, listen: readonly Endpoint[], servers: readonly Endpoint[]): void {
  for (const server of servers) {
    const hit = listen.find((l) => reachesListener(server.address, l.address));
    if (hit) {
      const self = `${hit.address.host}:${hit.address.port}`;
      r.report(server.at, `is eipdns itself (${hit.at.path} binds ${self}): every forwarded query would loop`);
    }
  }
}

// ---- ec2 -------------------------------------------------------------------

const EC2_KEYS = ['region', 'endpoint', 'poll_interval_ms', 'request_timeout_ms', 'max_stale_ms', 'inventory'];

function readEc2(r: Reader, f: Fields, configFile: string): Config['ec2'] {
  const region = optional(f.get('region'), (v) => readRegion(r, v), undefined);
  const endpoint = optional(f.get('endpoint'), (v) => readEndpointUrl(r, v), undefined);
  const inventory = optional(f.get('inventory'), (v) => readInventory(r, v, configFile), undefined);

  const pollGiven = optional(f.get('poll_interval_ms'), (v) => expectInt(r, v, { min: 250, max: MAX_TIMER_MS }), DEFAULT_POLL_INTERVAL_MS);
  const pollIntervalMs = pollGiven ?? DEFAULT_POLL_INTERVAL_MS;
  // An EC2 call that outlives the poll interval only delays the next poll;
  // capping at 5 s keeps a hung endpoint from stalling discovery for long.
  const defaultRequestTimeout = Math.min(pollIntervalMs, 5000);
  const requestTimeoutMs =
    optional(f.get('request_timeout_ms'), (v) => expectInt(r, v, { min: 50, max: 60_000 }), defaultRequestTimeout) ??
    defaultRequestTimeout;

  const staleValue = f.get('max_stale_ms');
  const maxStaleMs =
    optional(staleValue, (v) => expectInt(r, v, { min: 1, max: MAX_TIMER_MS }), DEFAULT_MAX_STALE_MS) ??
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
  return s;
}

function readInventory(r: Reader, v: Value, configFile: string): string | undefined {
  const s = expectString(r, v, 'a file path');
  if (s === undefined) return undefined;
  if (s === '') {
    r.report(v, 'expected a file path, got an empty string');
    return undefined;
  }
  const path = resolve(dirname(configFile), s);
  let problem: string | undefined;
  try {
    if (!statSync(path).isFile()) problem = 'is not a regular file';
  } catch (err) {
    problem = ioReason(err);
  }
  if (problem !== undefined) {
    r.report(v, `${path}: ${problem} (relative paths are resolved against the config file's directory)`);
    return undefined;
  }
  return path;
}

// ---- zones -----------------------------------------------------------------

interface ZoneDraft {
  readonly name: string | undefined;
  readonly nameAt: Value | undefined;
  readonly ttl: number;
  readonly records: RecordDraft[];
}

interface RecordDraft {
  readonly fqdn: string;
  readonly path: string;
  readonly keyOffset: number;
  readonly source: RecordSource | undefined;
}

function readZones(r: Reader, v: Value | undefined): { zones: Config['zones']; drafts: ZoneDraft[] } | undefined {
  if (v === undefined) return undefined;
  const items = expectList(r, v, { of: 'zones', min: 1 });
  if (items === undefined) return undefined;
  const drafts = items.map((item) => readZone(r, item));
  checkNames(r, drafts);
  const zones = drafts.map((z) => ({
    name: z.name ?? '',
    ttl: z.ttl,
    records: z.records.map((rec) => ({ fqdn: rec.fqdn, source: rec.source! })),
    soa: DEFAULT_SOA,
  }));
  return { zones, drafts };
}

/**
 * The inventory file has the shape of DescribeAddresses output only, and it
 * replaces the API entirely; a record that needs instances or ENIs would
 * never get an answer. Discovery refuses this too, but only at start-up and
 * without a line number.
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

function readZone(r: Reader, v: Value): ZoneDraft {
  const f = expectFields(r, v, ['name', 'ttl', 'records']);
  if (f === undefined) return { name: undefined, nameAt: undefined, ttl: DEFAULT_TTL, records: [] };

  const nameAt = f.require('name');
  let name: string | undefined;
  const raw = nameAt && expectString(r, nameAt, 'a DNS name');
  if (nameAt && raw !== undefined) {
    const parsed = parseZoneName(raw);
    if (parsed.ok) name = parsed.value;
    else r.report(nameAt, parsed.error);
  }

  const ttl = optional(f.get('ttl'), (t) => expectInt(r, t, { min: 0, max: 86_400 }), DEFAULT_TTL) ?? DEFAULT_TTL;
  const recordsAt = f.require('records');
  const records = recordsAt ? readRecords(r, recordsAt, name) : [];
  return { name, nameAt, ttl, records };
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
      const sel = expectFields(r, body, ['tag']);
      const tagAt = sel?.require('tag');
      const tag = tagAt && readTags(r, tagAt);
      return tag && { kind: 'instances', tag };
    }
    case 'network_interface': {
      const sel = expectFields(r, body, ['id', 'tag']);
      const one = sel && exactlyOne(r, sel, ['id', 'tag'], 'selector');
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
  const f = expectFields(r, v, ['tag', 'allocation_id', 'public_ip']);
  const one = f && exactlyOne(r, f, ['tag', 'allocation_id', 'public_ip'], 'selector');
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
