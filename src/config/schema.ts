// Builds config/eipdns.schema.json, the JSON Schema (draft 2020-12) that
// editors use to complete and check eipdns.yaml as it is typed. It is built
// from the loader's own tables (KEYS, LIMITS, DEFAULT_*, the id patterns), so
// the numbers are written once; test/config/schema.test.ts proves the schema
// and the loader agree on a generated corpus and lists the checks only the
// loader can make (files, cross-field rules).
//
// Regenerate after changing the loader:  npx tsx src/config/schema.ts

import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ALLOCATION_ID,
  DEFAULT_ACL,
  DEFAULT_ADMIN_ALLOW,
  DEFAULT_ADMIN_ALLOW_REFRESH,
  DEFAULT_CACHE,
  DEFAULT_LISTEN,
  DEFAULT_LOG_LEVEL,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_QPS,
  DEFAULT_MAX_STALE_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_REWRITE_ELASTIC_IPS,
  DEFAULT_SOA,
  DEFAULT_TRANSFER_NOTIFY,
  DEFAULT_TSIG_ALGORITHM,
  DEFAULT_TTL,
  DEFAULT_UPSTREAM,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  ENDPOINT_URL,
  ENI_ID,
  KEYS,
  LIMITS,
  LOG_LEVELS,
  REGION,
  REQUEST_TIMEOUT_CAP_MS,
  TSIG_ALGORITHMS,
} from './load.js';
import { showHostPort } from './net.js';

export type JsonSchema = { readonly [key: string]: unknown };

// ---- string syntax ---------------------------------------------------------
// The loader uses node:net's isIPv4/isIPv6 and its own parsers (net.ts,
// dns-name.ts); these patterns are the same grammar as regular expressions
// (Node's own, for the addresses). They allow the surrounding blanks the
// parsers trim.

const V4SEG = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const V4 = `(?:${V4SEG}\\.){3}${V4SEG}`;
const H = '(?:[0-9a-fA-F]{1,4})';
const V6 = `(?:${[
  `(?:${H}:){7}(?:${H}|:)`,
  `(?:${H}:){6}(?:${V4}|:${H}|:)`,
  `(?:${H}:){5}(?::${V4}|(?::${H}){1,2}|:)`,
  `(?:${H}:){4}(?:(?::${H}){0,1}:${V4}|(?::${H}){1,3}|:)`,
  `(?:${H}:){3}(?:(?::${H}){0,2}:${V4}|(?::${H}){1,4}|:)`,
  `(?:${H}:){2}(?:(?::${H}){0,3}:${V4}|(?::${H}){1,5}|:)`,
  `(?:${H}:){1}(?:(?::${H}){0,4}:${V4}|(?::${H}){1,6}|:)`,
  `(?::(?:(?::${H}){0,5}:${V4}|(?::${H}){1,7}|:))`,
].join('|')})`;
/** An IPv6 literal as a socket address may carry a zone index ("%eth0"). */
const V6_ZONE = `${V6}(?:%[0-9a-zA-Z.:\\-]+)?`;
/** 0..65535 in at most five digits (leading zeros allowed, as the parser allows them). */
const PORT0 = '(?:[0-9]{1,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';
const PORT1 = `(?=0*[1-9])${PORT0}`;
const LEN32 = '(?:[0-9]|[0-2][0-9]|3[0-2]|0[0-2][0-9]|03[0-2])';
const LEN128 = '(?:[0-9]|[0-9]{2}|0[0-9]{2}|1[01][0-9]|12[0-8])';
const LABEL = '[a-zA-Z0-9_-]{1,63}';

const blanks = (body: string): string => `^\\s*(?:${body})\\s*$`;
/** "ip", "ip:port", "[ipv6]", "[ipv6]:port" or a bare IPv6 address. */
const hostPort = (port: string): string => blanks(`${V4}(?::${port})?|\\[${V6_ZONE}\\](?::${port})?|${V6_ZONE}`);

export const PATTERNS = {
  ipv4: `^${V4}$`,
  listen: hostPort(PORT0),
  peer: hostPort(PORT1),
  adminListen: blanks(`${V4}:${PORT0}|\\[${V6_ZONE}\\]:${PORT0}`),
  cidr: blanks(`${V4}(?:/${LEN32})?|${V6}(?:/${LEN128})?`),
  // At most 253 characters without the optional trailing dot.
  dnsName: blanks(`(?=[a-zA-Z0-9_.-]{1,253}\\.?\\s*$)${LABEL}(?:\\.${LABEL})*\\.?`),
  recordName: `^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`,
} as const;

// ---- building blocks -------------------------------------------------------

const show = showHostPort;

/** A map of settings whose keys are exactly the loader's list for it. */
function fields(
  what: string,
  known: readonly string[],
  properties: Record<string, JsonSchema>,
  extra: Record<string, unknown> = {},
): JsonSchema {
  const given = Object.keys(properties);
  const missing = known.filter((k) => !given.includes(k));
  const unknown = given.filter((k) => !known.includes(k));
  if (missing.length > 0 || unknown.length > 0) {
    throw new Error(`schema for ${what} out of step with the loader: missing ${missing.join(', ')}; unknown ${unknown.join(', ')}`);
  }
  return { type: 'object', additionalProperties: false, properties, ...extra };
}

/** An all-defaults block: absent, empty (every line commented out) or a map. */
function settings(
  what: string,
  known: readonly string[],
  description: string,
  properties: Record<string, JsonSchema>,
): JsonSchema {
  return { ...fields(what, known, properties), type: ['object', 'null'], description, default: {} };
}

function int(path: keyof typeof LIMITS, description: string, def?: number): JsonSchema {
  const { min, max } = LIMITS[path];
  return { type: 'integer', minimum: min, maximum: max, description, ...(def !== undefined && { default: def }) };
}

const bool = (description: string, def: boolean): JsonSchema => ({ type: 'boolean', description, default: def });

const ref = (name: string, description: string, extra: Record<string, unknown> = {}): JsonSchema => ({
  $ref: `#/$defs/${name}`,
  description,
  ...extra,
});

const addresses = (item: string, description: string, extra: Record<string, unknown>): JsonSchema => ({
  type: 'array',
  items: { $ref: `#/$defs/${item}` },
  description,
  ...extra,
});

// ---- the schema ------------------------------------------------------------

export function configSchema(): JsonSchema {
  const $defs = {
    listenAddress: {
      type: 'string',
      pattern: PATTERNS.listen,
      description: 'An address of this host: "ip", "ip:port" or "[ipv6]:port"; the port defaults to 53, and 0 picks a free port.',
    },
    peerAddress: {
      type: 'string',
      pattern: PATTERNS.peer,
      description:
        'An IP literal, "ip:port" or "[ipv6]:port" (port 1..65535, default 53). Never a hostname: eipdns would have to resolve it through itself.',
    },
    cidr: {
      type: 'string',
      pattern: PATTERNS.cidr,
      description:
        'A CIDR prefix ("10.0.0.0/8", "fd00::/8") or a bare address for one host. Host bits below the prefix must be zero.',
    },
    cidrList: { type: 'array', minItems: 1, items: { $ref: '#/$defs/cidr' } },
    tags: {
      type: 'object',
      minProperties: 1,
      propertyNames: { maxLength: 128 },
      additionalProperties: {
        type: ['string', 'number', 'boolean'],
        maxLength: 256,
        description: 'The tag value to match; an unquoted number or boolean means the text written ("1", "true").',
      },
      description: 'EC2 tags that must ALL match (case-sensitive keys). At least one.',
    },
    recordSource: fields(
      'a record source',
      KEYS.source,
      {
        elastic_ip: fields(
          'elastic_ip',
          KEYS.elasticIp,
          {
            tag: ref('tags', 'Every associated Elastic IP with these tags.'),
            allocation_id: {
              type: 'string',
              pattern: ALLOCATION_ID.source,
              description: 'One Elastic IP by allocation id ("eipalloc-" and 8 or 17 hex digits).',
            },
            public_ip: { type: 'string', pattern: PATTERNS.ipv4, description: 'One Elastic IP by its public IPv4 address.' },
          },
          {
            description:
              'The private IP of whatever an Elastic IP is associated with now. Choose the Elastic IP by exactly one of tag, allocation_id, public_ip.',
            oneOf: [{ required: ['tag'] }, { required: ['allocation_id'] }, { required: ['public_ip'] }],
          },
        ),
        instances: fields(
          'instances',
          KEYS.instances,
          { tag: ref('tags', 'Running instances with all of these tags.') },
          { description: 'The private IPs of running instances with these tags.', required: ['tag'] },
        ),
        network_interface: fields(
          'network_interface',
          KEYS.networkInterface,
          {
            id: { type: 'string', pattern: ENI_ID.source, description: 'One ENI by id ("eni-" and 8 or 17 hex digits).' },
            tag: ref('tags', 'ENIs with all of these tags.'),
          },
          {
            description: "A network interface's primary private IP, chosen by exactly one of id or tag.",
            oneOf: [{ required: ['id'] }, { required: ['tag'] }],
          },
        ),
        a: {
          type: 'array',
          minItems: 1,
          uniqueItems: true,
          items: { type: 'string', pattern: PATTERNS.ipv4 },
          description: 'Fixed IPv4 addresses, for names that never move.',
        },
      },
      {
        description: 'Where the A records of this name come from: exactly one source.',
        oneOf: [{ required: ['elastic_ip'] }, { required: ['instances'] }, { required: ['network_interface'] }, { required: ['a'] }],
      },
    ),
    zone: fields(
      'a zone',
      KEYS.zone,
      {
        name: {
          type: 'string',
          pattern: PATTERNS.dnsName,
          description:
            'The zone\'s DNS name ("internal", "corp.example"), unique among the zones. Everything at or below it is answered here and never forwarded.',
        },
        ttl: int(
          'zones[].ttl',
          'TTL of the answers, in seconds. Keep it short so a moved Elastic IP reaches clients within seconds. Primary zones only: a secondary serves the TTLs its primaries send.',
          DEFAULT_TTL,
        ),
        records: {
          type: ['object', 'null'],
          propertyNames: { pattern: PATTERNS.recordName },
          additionalProperties: { $ref: '#/$defs/recordSource' },
          description:
            'A primary zone: record name (relative to the zone: "db" is db.<zone>; "a.b" is fine; not "@") → where its addresses come from. May be empty: the zone then answers NXDOMAIN for every name.',
        },
        primaries: addresses(
          'peerAddress',
          'A secondary zone: copied by zone transfer (IXFR, else AXFR) from these servers, tried in order; re-fetched on their NOTIFY and at the SOA refresh interval. IP literals only.',
          { minItems: 1, uniqueItems: true },
        ),
        transfer: fields(
          'transfer',
          KEYS.transfer,
          {
            allow: ref('cidrList', 'Who may transfer the zone (AXFR/IXFR over TCP). No default: naming the secondaries is always a decision.'),
            notify: addresses(
              'peerAddress',
              'Secondaries sent a NOTIFY on every change (RFC 1996), so they fetch it at once instead of at the next refresh. IP literals only.',
              { uniqueItems: true, default: DEFAULT_TRANSFER_NOTIFY.map(show) },
            ),
          },
          { required: ['allow'], description: 'Serve this zone to secondaries (BIND, Knot, NSD, Unbound, another eipdns). Off when absent.' },
        ),
        tsig: fields(
          'tsig',
          KEYS.tsig,
          {
            name: {
              type: 'string',
              pattern: PATTERNS.dnsName,
              description: 'The key name, as the peer knows it (it is part of every signature).',
            },
            algorithm: {
              enum: [...TSIG_ALGORITHMS],
              default: DEFAULT_TSIG_ALGORITHM,
              description: 'The HMAC algorithm; must match what the secret file says, if it says.',
            },
            secret_file: {
              type: 'string',
              minLength: 1,
              description:
                "File holding the secret, relative to this config file: one line of base64, the key clause `tsig-keygen NAME` prints, or the key list `keymgr -t NAME` prints. Read when the config is loaded; at least 16 bytes.",
            },
          },
          {
            required: ['name', 'secret_file'],
            description: 'TSIG key (RFC 8945) that signs and verifies this zone\'s transfers and NOTIFYs, both ways. Unsigned or badly signed ones are refused.',
          },
        ),
        soa: settings('soa', KEYS.soa, 'SOA timers this primary zone publishes; secondaries obey them. Primary zones only.', {
          refresh: int('zones[].soa.refresh', 'Seconds between a secondary\'s checks for a new serial. NOTIFY carries changes at once; this is the backstop.', DEFAULT_SOA.refresh),
          retry: int('zones[].soa.retry', 'Seconds before a secondary retries a failed refresh.', DEFAULT_SOA.retry),
          expire: int(
            'zones[].soa.expire',
            'Seconds a secondary keeps answering without reaching a primary; then it answers SERVFAIL. At least refresh + retry.',
            DEFAULT_SOA.expire,
          ),
        }),
      },
      {
        required: ['name'],
        description: 'A zone eipdns answers itself: primary (records) or secondary (primaries), exactly one of the two.',
        oneOf: [
          { title: 'primary zone', required: ['records'], not: { required: ['primaries'] } },
          {
            title: 'secondary zone',
            required: ['primaries'],
            not: { anyOf: [{ required: ['records'] }, { required: ['ttl'] }, { required: ['soa'] }] },
          },
        ],
      },
    ),
  };

  const d = DEFAULT_CACHE;
  const properties = {
    version: {
      type: 'integer',
      const: 1,
      default: 1,
      description: 'Config schema version. A future incompatible layout bumps it, so an old eipdns refuses a new file instead of misreading it.',
    },
    listen: addresses(
      'listenAddress',
      'Addresses to serve DNS on, each with a UDP and a TCP socket. Use the instance\'s private IP or "0.0.0.0:53" to serve other hosts (then narrow acl.allow). Ports below 1024 need root or CAP_NET_BIND_SERVICE.',
      { minItems: 1, default: DEFAULT_LISTEN.map(show) },
    ),
    upstream: settings('upstream', KEYS.upstream, 'Where names outside the zones are forwarded, and how carefully.', {
      servers: addresses(
        'peerAddress',
        'The ONLY servers forwarded queries go to, asked in order. Keep the VPC resolver: it answers Route 53 private zones and EC2 hostnames with private addresses.',
        { minItems: 1, uniqueItems: true, default: DEFAULT_UPSTREAM.map(show) },
      ),
      timeout_ms: int('upstream.timeout_ms', 'How long to wait for each server before the next one (after the last: SERVFAIL or a stale answer), in ms.', DEFAULT_UPSTREAM_TIMEOUT_MS),
      max_qps: int(
        'upstream.max_qps',
        'Datagrams per second sent upstream in all (first tries, retries, prefetches, refreshes). The VPC resolver drops past 1024/s per network interface; past this cap eipdns answers stale or SERVFAIL at once.',
        DEFAULT_MAX_QPS,
      ),
      max_in_flight: int('upstream.max_in_flight', 'Upstream queries outstanding at once; past it a query fails at once (SERVFAIL or stale).', DEFAULT_MAX_IN_FLIGHT),
      rewrite_elastic_ips: bool(
        'In forwarded answers, replace the public IP of an associated Elastic IP of this account with its current private IP, so traffic stays inside the VPC.',
        DEFAULT_REWRITE_ELASTIC_IPS,
      ),
    }),
    cache: {
      ...fields('cache', KEYS.cache, {
        enabled: bool('Cache forwarded answers. Private-zone answers never go through the cache.', d.enabled),
        max_entries: int('cache.max_entries', 'Most answers kept; past it the least recently used is evicted.', d.maxEntries),
        max_bytes: int('cache.max_bytes', 'Most bytes of answers kept; past it the least recently used is evicted.', d.maxBytes),
        min_ttl: int('cache.min_ttl', 'Floor (seconds) for how long a positive answer is kept, whatever its TTL.', d.minTtl),
        max_ttl: int('cache.max_ttl', 'Ceiling (seconds) for how long a positive answer is kept. At least min_ttl.', d.maxTtl),
        max_negative_ttl: int(
          'cache.max_negative_ttl',
          'Ceiling (seconds) for NXDOMAIN and NODATA answers, otherwise kept for min(SOA TTL, SOA MINIMUM) (RFC 2308).',
          d.maxNegativeTtl,
        ),
        failure_ttl: int('cache.failure_ttl', 'How long an upstream failure (SERVFAIL, every server silent) is remembered, in seconds (RFC 9520: 1 s to 5 min).', d.failureTtl),
        prefetch: bool('Refresh an answer in the background when it is asked for in the last 10 % of its TTL.', d.prefetch),
        stale: settings('stale', KEYS.stale, 'Serve-stale (RFC 8767): answer from expired entries when the upstream fails or is slow.', {
          enabled: bool('Serve expired answers when the upstream fails or is slow.', d.stale.enabled),
          max_age: int('cache.stale.max_age', 'How long past expiry an answer may still be served, in seconds (RFC 8767 suggests 1 to 3 days).', d.stale.maxAge),
          client_timeout_ms: int(
            'cache.stale.client_timeout_ms',
            'When no fresh answer has come after this many ms, the stale one goes out while the refresh continues (RFC 8767 suggests 1800).',
            d.stale.clientTimeoutMs,
          ),
          ttl: int('cache.stale.ttl', 'TTL of a stale answer, in seconds (RFC 8767 suggests 30).', d.stale.ttl),
        }),
      }),
      type: ['object', 'boolean', 'null'],
      default: {},
      description: 'Cache for forwarded answers. `cache: false` turns it off; absent or empty means all defaults.',
    },
    ec2: settings('ec2', KEYS.ec2, 'How addresses are discovered from the EC2 API.', {
      region: {
        type: 'string',
        pattern: REGION.source,
        description: "AWS region to query. Default: the SDK's chain (AWS_REGION, the profile, instance metadata).",
      },
      endpoint: {
        type: 'string',
        pattern: ENDPOINT_URL.source,
        description: 'Alternative EC2 API endpoint, an http(s) URL (LocalStack, a VPC interface endpoint). Default: the regional AWS endpoint.',
      },
      poll_interval_ms: int(
        'ec2.poll_interval_ms',
        'How often EC2 is polled, in ms: bounds how long a moved Elastic IP is answered with its old address.',
        DEFAULT_POLL_INTERVAL_MS,
      ),
      request_timeout_ms: int(
        'ec2.request_timeout_ms',
        `Deadline for one EC2 call including the SDK's retries, in ms. Default: the smaller of poll_interval_ms and ${REQUEST_TIMEOUT_CAP_MS}.`,
        Math.min(DEFAULT_POLL_INTERVAL_MS, REQUEST_TIMEOUT_CAP_MS),
      ),
      max_stale_ms: int(
        'ec2.max_stale_ms',
        'How old the last successful poll may get before EC2-backed names answer SERVFAIL, in ms. At least poll_interval_ms.',
        DEFAULT_MAX_STALE_MS,
      ),
      inventory: {
        type: 'string',
        minLength: 1,
        description:
          'Read addresses from this JSON file (`aws ec2 describe-addresses --output json` format, relative to this config) instead of the API. Must exist; only elastic_ip and a records can be answered from it.',
      },
    }),
    zones: {
      type: 'array',
      minItems: 1,
      items: { $ref: '#/$defs/zone' },
      description: 'The names eipdns answers itself. At least one zone; zones may nest (the most specific answers).',
    },
    acl: settings('acl', KEYS.acl, 'Who may query.', {
      allow: ref('cidrList', 'Clients allowed to query; everyone else gets REFUSED. Narrow it to your VPC when listening on 0.0.0.0.', {
        default: [...DEFAULT_ACL],
      }),
    }),
    admin: {
      ...fields(
        'admin',
        KEYS.admin,
        {
          listen: {
            type: 'string',
            pattern: PATTERNS.adminListen,
            description:
              'HTTP listener for /health, /ready, /metrics and /status: "ip:port" or "[ipv6]:port" (no default port). Keep it on loopback or a private address; not a DNS listen address.',
          },
          allow: ref('cidrList', 'Clients allowed to use the admin port at all.', { default: [...DEFAULT_ADMIN_ALLOW] }),
          allow_refresh: bool('Allow POST /refresh, which polls EC2 at once (like SIGUSR2), for failover scripts on other hosts.', DEFAULT_ADMIN_ALLOW_REFRESH),
        },
        { required: ['listen'] },
      ),
      type: ['object', 'null'],
      description: 'The admin HTTP listener. Off when absent (or empty).',
    },
    log: settings('log', KEYS.log, 'What eipdns logs (JSON lines on stdout).', {
      level: {
        enum: [...LOG_LEVELS],
        default: DEFAULT_LOG_LEVEL,
        description: 'debug and trace show every poll and failover step; too chatty for steady state.',
      },
    }),
  };

  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $comment: 'Generated from src/config/load.ts by src/config/schema.ts (npx tsx src/config/schema.ts); do not edit by hand.',
    title: 'eipdns configuration, version 1',
    description:
      'eipdns answers private zones from live EC2 data and forwards everything else to the VPC resolver. Unknown keys are errors; a config is applied whole or not at all.',
    ...fields('the top level', KEYS.top, properties, { required: ['zones'] }),
    $defs,
  };
}

export function schemaText(): string {
  return `${JSON.stringify(configSchema(), null, 2)}\n`;
}

export const SCHEMA_FILE = fileURLToPath(new URL('../../config/eipdns.schema.json', import.meta.url));

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(SCHEMA_FILE, schemaText());
  console.log(`wrote ${SCHEMA_FILE}`);
}
