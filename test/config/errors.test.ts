import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, LIMITS, loadConfig, parseConfig } from '../../src/config/load.js';
import { configWith, issuesOf, only, realKeyFile, tempDir, writeFile, yaml, ZONES } from './helpers.js';

/** A zones block with one record whose source is given inline, on line 4. */
const record = (source: string): string[] => ['zones:', '  - name: internal', '    records:', `      db: ${source}`];

describe('YAML syntax', () => {
  it('reports syntax errors with their lines and does not validate the broken tree', () => {
    expect(issuesOf(yaml('listen: ["127.0.0.1:53"]', 'upstream:', '  servers: ["10.0.0.2"', 'zones: oops', '  timeout_ms: 5'))).toEqual([
      { path: '', line: 4, column: 1, message: 'Flow sequence in block collection must be sufficiently indented and end with a ]' },
      { path: '', line: 4, column: 8, message: 'Nested mappings are not allowed in compact mappings' },
      { path: '', line: 4, column: 8, message: 'Implicit keys need to be on a single line' },
    ]);
  });

  it('reports a tab used for indentation', () => {
    const [path, line] = only(yaml('ec2:', '\tpoll_interval_ms: 1000', ...ZONES));
    expect([path, line]).toEqual(['', 2]);
  });

  it('reports more than one document', () => {
    expect(only(yaml(...ZONES, '---', 'log: { level: info }'))).toEqual([
      '',
      5,
      1,
      'Source contains multiple documents; please use YAML.parseAllDocuments()',
    ]);
  });

  it('reports a duplicate key with its path and both lines', () => {
    expect(only(yaml('ec2:', '  poll_interval_ms: 1000', '  poll_interval_ms: 2000', ...ZONES))).toEqual([
      'ec2.poll_interval_ms',
      3,
      3,
      'duplicate key "poll_interval_ms" (first defined on line 2)',
    ]);
  });

  it('treats record names differing only in case as duplicates', () => {
    expect(only(yaml(...record('{ a: ["10.0.0.1"] }'), '      DB: { a: ["10.0.0.2"] }'))).toEqual([
      'zones[0].records.DB',
      5,
      7,
      'duplicate key "DB" (first defined on line 4)',
    ]);
  });

  it('rejects a document that is not a map', () => {
    expect(only(yaml('- zones'))).toEqual(['', 1, 1, 'expected a map of settings, got a list']);
  });
});

describe('unknown keys', () => {
  it('suggests a close key', () => {
    expect(only(yaml('ec2:', '  poll_intreval_ms: 1000', ...ZONES))).toEqual([
      'ec2.poll_intreval_ms',
      2,
      3,
      'unknown key; did you mean "poll_interval_ms"?',
    ]);
  });

  it('suggests the snake_case key for a camelCase one and the suffixed key for a bare one', () => {
    expect(issuesOf(yaml('ec2:', '  maxStaleMs: 1000', 'upstream:', '  timeout: 100', ...ZONES))).toEqual([
      { path: 'ec2.maxStaleMs', line: 2, column: 3, message: 'unknown key; did you mean "max_stale_ms"?' },
      { path: 'upstream.timeout', line: 4, column: 3, message: 'unknown key; did you mean "timeout_ms"?' },
    ]);
  });

  it('lists the allowed keys when nothing is close', () => {
    expect(only(yaml('upstream:', '  forwarders: ["10.0.0.2"]', ...ZONES))).toEqual([
      'upstream.forwarders',
      2,
      3,
      'unknown key; expected one of "servers", "timeout_ms", "max_qps", "max_in_flight", "rewrite_elastic_ips"',
    ]);
  });

  it('reports a misspelt required key once, not also as missing', () => {
    expect(only(yaml(...record('{ instances: { tags: { Role: web } } }')))).toEqual([
      'zones[0].records.db.instances.tags',
      4,
      26,
      'unknown key; did you mean "tag"?',
    ]);
  });

  it('finds unknown keys deep in a record', () => {
    expect(only(yaml(...record('{ elastic-ip: { tag: { Role: db } } }')))).toEqual([
      'zones[0].records.db.elastic-ip',
      4,
      13,
      'unknown key; did you mean "elastic_ip"?',
    ]);
  });

  it('explains that merge keys are not supported', () => {
    expect(only(yaml('base: &b { timeout_ms: 100 }', ...ZONES).replace('base', 'upstream').replace('zones:', 'log: { <<: *b }\nzones:'))).toEqual([
      'log["<<"]',
      2,
      8,
      'merge keys ("<<") are not supported; write the keys out',
    ]);
  });
});

describe('wrong types', () => {
  it('names the expected type and what was found', () => {
    expect(issuesOf(yaml('listen: "127.0.0.1:53"', 'upstream:', '  timeout_ms: "1500"', 'ec2:', '  poll_interval_ms: 1.5', ...ZONES))).toEqual([
      {
        path: 'listen',
        line: 1,
        column: 9,
        message: 'expected a list of addresses ("ip" or "ip:port"), got the string "127.0.0.1:53"',
      },
      { path: 'upstream.timeout_ms', line: 3, column: 15, message: 'expected an integer, got the string "1500"' },
      { path: 'ec2.poll_interval_ms', line: 5, column: 21, message: 'expected an integer, got the number 1.5' },
    ]);
  });

  it('rejects a tag that is not a map', () => {
    expect(only(yaml(...record('{ elastic_ip: { tag: Role=db } }')))).toEqual([
      'zones[0].records.db.elastic_ip.tag',
      4,
      32,
      'expected a map of tag key to string value, got the string "Role=db"',
    ]);
  });

  it('rejects an empty tag map and an empty tag value', () => {
    expect(only(yaml(...record('{ instances: { tag: {} } }')))).toEqual([
      'zones[0].records.db.instances.tag',
      4,
      31,
      'expected a map of tag key to string value, got an empty map (it would match everything)',
    ]);
    expect(only(yaml(...record('{ instances: { tag: { Role: } } }')))).toEqual([
      'zones[0].records.db.instances.tag.Role',
      4,
      39,
      'expected a tag value; write "" to match a tag whose value is empty',
    ]);
  });

  it('checks ranges', () => {
    expect(issuesOf(yaml('upstream:', '  timeout_ms: 10', 'ec2:', '  poll_interval_ms: 100', ...ZONES, '    ttl: 86401'))).toEqual([
      { path: 'upstream.timeout_ms', line: 2, column: 15, message: '10 is out of range: expected 50..60000' },
      { path: 'ec2.poll_interval_ms', line: 4, column: 21, message: '100 is out of range: expected 250..2147483647' },
      { path: 'zones[0].ttl', line: 9, column: 10, message: '86401 is out of range: expected 0..86400' },
    ]);
  });

  it('rejects max_stale_ms below poll_interval_ms', () => {
    expect(only(yaml('ec2:', '  poll_interval_ms: 5000', '  max_stale_ms: 4000', ...ZONES))).toEqual([
      'ec2.max_stale_ms',
      3,
      17,
      'must be at least poll_interval_ms (5000), or answers expire between two polls',
    ]);
  });

  it('suggests a log level', () => {
    expect(only(yaml('log:', '  level: warning', ...ZONES))).toEqual([
      'log.level',
      2,
      10,
      '"warning" is not one of fatal|error|warn|info|debug|trace|silent; did you mean "warn"?',
    ]);
  });

  it('rejects other versions', () => {
    expect(only(yaml('version: 2', ...ZONES))).toEqual([
      'version',
      1,
      10,
      'unsupported config version 2: this eipdns reads version 1',
    ]);
  });
});

describe('missing required keys', () => {
  it('reports missing zones at the top of the file', () => {
    expect(only(yaml('log: { level: info }'))).toEqual(['zones', 1, 1, 'required key is missing']);
    expect(only('')).toEqual(['zones', 1, 1, 'required key is missing']);
  });

  it('reports a zone without a name at the zone', () => {
    expect(only(yaml('zones:', '  - ttl: 5', '    records: {}'))).toEqual(['zones[0].name', 2, 5, 'required key is missing']);
  });

  it('requires at least one zone, upstream and listen address', () => {
    expect(issuesOf(yaml('listen: []', 'upstream: { servers: [] }', 'zones: []'))).toEqual([
      { path: 'listen', line: 1, column: 9, message: 'must not be empty' },
      { path: 'upstream.servers', line: 2, column: 22, message: 'must not be empty' },
      { path: 'zones', line: 3, column: 8, message: 'must not be empty' },
    ]);
  });
});

describe('record sources', () => {
  it('rejects a record with no source', () => {
    expect(only(yaml(...record('{}')))).toEqual([
      'zones[0].records.db',
      4,
      11,
      'no address source: expected exactly one of "elastic_ip", "instances", "network_interface", "a"',
    ]);
  });

  it('rejects a record with two sources, at the second', () => {
    expect(only(yaml(...record('{ a: ["10.0.0.1"], instances: { tag: { Role: db } } }')))).toEqual([
      'zones[0].records.db',
      4,
      30,
      '"a" and "instances" both given: expected exactly one address source',
    ]);
  });

  it('rejects an elastic_ip with two selectors, at the second', () => {
    expect(
      only(
        yaml(
          'zones:',
          '  - name: internal',
          '    records:',
          '      db:',
          '        elastic_ip:',
          '          tag: { Role: db }',
          '          public_ip: 203.0.113.25',
        ),
      ),
    ).toEqual(['zones[0].records.db.elastic_ip', 7, 11, '"tag" and "public_ip" both given: expected exactly one selector']);
  });

  it('rejects a network_interface with no selector, and bad ids', () => {
    expect(only(yaml(...record('{ network_interface: {} }')))).toEqual([
      'zones[0].records.db.network_interface',
      4,
      32,
      'no selector: expected exactly one of "id", "tag"',
    ]);
    expect(only(yaml(...record('{ network_interface: { id: i-0123456789abcdef0 } }')))).toEqual([
      'zones[0].records.db.network_interface.id',
      4,
      38,
      '"i-0123456789abcdef0" is not an id like "eni-0123456789abcdef0"',
    ]);
    expect(only(yaml(...record('{ elastic_ip: { allocation_id: 203.0.113.25 } }')))).toEqual([
      'zones[0].records.db.elastic_ip.allocation_id',
      4,
      42,
      '"203.0.113.25" is not an id like "eipalloc-0123456789abcdef0"',
    ]);
    // AWS ids are 8 or 17 hex digits: a typo'd letter or a digit too many is caught.
    for (const bad of ['eipalloc-0123456789abcdefg', 'eipalloc-0123456789abcdef01', 'eipalloc-db1']) {
      expect(only(yaml(...record(`{ elastic_ip: { allocation_id: ${bad} } }`)))[3]).toBe(`"${bad}" is not an id like "eipalloc-0123456789abcdef0"`);
    }
    expect(parseConfig(yaml(...record('{ elastic_ip: { allocation_id: eipalloc-1a2b3c4d } }')), '/etc/eipdns/test.yaml').zones[0]!.records[0]!.source).toEqual({
      kind: 'elastic_ip',
      selector: { allocationId: 'eipalloc-1a2b3c4d' },
    });
  });

  it('requires instances to have a tag', () => {
    expect(only(yaml(...record('{ instances: {} }')))).toEqual([
      'zones[0].records.db.instances.tag',
      4,
      24,
      'required key is missing',
    ]);
  });

  it('checks static and public addresses', () => {
    expect(issuesOf(yaml(...record('{ a: ["10.0.0.1", "10.0.0.256", "10.0.0.1"] }'), '      q: { elastic_ip: { public_ip: "2001:db8::1" } }'))).toEqual([
      { path: 'zones[0].records.db.a[1]', line: 4, column: 29, message: '"10.0.0.256" is not an IPv4 address' },
      { path: 'zones[0].records.db.a[2]', line: 4, column: 43, message: 'duplicate address "10.0.0.1"' },
      {
        path: 'zones[0].records.q.elastic_ip.public_ip',
        line: 5,
        column: 37,
        message: '"2001:db8::1" is not an IPv4 address (Elastic IPs are IPv4)',
      },
    ]);
    expect(only(yaml(...record('{ a: [] }')))).toEqual(['zones[0].records.db.a', 4, 16, 'must not be empty']);
  });
});

describe('names', () => {
  it('rejects a duplicate zone name after normalisation', () => {
    expect(only(yaml(...ZONES, '  - name: Internal.', '    records: {}'))).toEqual([
      'zones[1].name',
      5,
      11,
      'duplicate zone "internal" (first defined on line 2)',
    ]);
  });

  it('rejects a record that is also a zone name', () => {
    expect(
      only(yaml(...record('{ a: ["10.0.0.1"] }'), '  - name: db.internal', '    records:', '      x: { a: ["10.0.0.2"] }')),
    ).toEqual(['zones[0].records.db', 4, 7, '"db.internal" is also a zone (zones[1], line 5); a zone apex cannot have records']);
  });

  it('rejects a record shadowed by a more specific zone', () => {
    expect(only(yaml(...record('{ a: ["10.0.0.1"] }'), '      a.west: { a: ["10.0.0.1"] }', '  - name: west.internal', '    records: {}'))).toEqual([
      'zones[0].records["a.west"]',
      5,
      7,
      '"a.west.internal" lies inside the more specific zone "west.internal" (zones[1], line 6), which would answer for it; define it there',
    ]);
  });

  it('rejects the apex, absolute and invalid record names', () => {
    expect(issuesOf(yaml(...record('{ a: ["10.0.0.1"] }'), '      "@": { a: ["10.0.0.1"] }', '      x.internal.: { a: ["10.0.0.1"] }', '      "bad name": { a: ["10.0.0.1"] }'))).toEqual([
      {
        path: 'zones[0].records["@"]',
        line: 5,
        column: 7,
        message: 'the zone apex cannot have records (it answers SOA and NS); use a name below it',
      },
      {
        path: 'zones[0].records["x.internal."]',
        line: 6,
        column: 7,
        message: '"x.internal.": record names are relative to the zone; drop the trailing dot',
      },
      {
        path: 'zones[0].records["bad name"]',
        line: 7,
        column: 7,
        message: '"bad name": label "bad name" may only contain a-z, 0-9, "-" and "_"',
      },
    ]);
  });

  it('rejects invalid zone names', () => {
    const zone = (name: string) => only(yaml('zones:', `  - name: ${name}`, '    records: {}'));
    expect(zone('"."')).toEqual(['zones[0].name', 2, 11, 'the root zone cannot be served: eipdns forwards everything outside its zones']);
    expect(zone('a..b')).toEqual(['zones[0].name', 2, 11, '"a..b" has an empty label (two dots in a row, or a leading dot)']);
    expect(zone(`${'x'.repeat(64)}.internal`)[3]).toMatch(/label "x{20}…" is longer than 63 characters/);
    expect(zone(`${`${'x'.repeat(63)}.`.repeat(4)}internal`)[3]).toMatch(/is longer than 253 characters$/);
    // "\u212A" (KELVIN SIGN) lower-cases to "k": the name is checked as written.
    expect(zone('\u212Aube.internal')).toEqual([
      'zones[0].name',
      2,
      11,
      '"\u212Aube.internal": "\u212A" is not allowed; names may only contain a-z, 0-9, "-" and "_"',
    ]);
  });
});

describe('addresses', () => {
  it('rejects a hostname as upstream, explaining why', () => {
    expect(only(yaml('upstream:', '  servers: ["10.0.0.2", dns.google]', ...ZONES))).toEqual([
      'upstream.servers[1]',
      2,
      25,
      '"dns.google" is a hostname, not an IP address: eipdns would have to resolve it through itself; use the resolver\'s IP (the VPC resolver is 169.254.169.253)',
    ]);
  });

  it('rejects bad ports; 0 only for a listener', () => {
    expect(
      issuesOf(yaml('listen: ["127.0.0.1:0", "127.0.0.1:65536", "[::1]:x", "127.0.0.1:"]', 'upstream:', '  servers: ["10.0.0.2:0"]', ...ZONES)),
    ).toEqual([
      { path: 'listen[1]', line: 1, column: 25, message: 'port "65536" is not valid: expected an integer 0..65535' },
      { path: 'listen[2]', line: 1, column: 44, message: 'port "x" is not valid: expected an integer 0..65535' },
      { path: 'listen[3]', line: 1, column: 55, message: 'port "" is not valid: expected an integer 0..65535' },
      { path: 'upstream.servers[0]', line: 3, column: 13, message: 'port "0" is not valid: expected an integer 1..65535' },
    ]);
  });

  it('rejects duplicate listen addresses and forwarding to ourselves', () => {
    expect(
      issuesOf(yaml('listen: ["0.0.0.0:5353", "0.0.0.0:5353"]', 'upstream:', '  servers: ["127.0.0.1:5353"]', ...ZONES)),
    ).toEqual([
      { path: 'listen[1]', line: 1, column: 26, message: 'duplicate of listen[0] ([0.0.0.0]:5353)' },
      {
        path: 'upstream.servers[0]',
        line: 3,
        column: 13,
        message: 'is eipdns itself (listen[0] binds 0.0.0.0:5353): every forwarded query would loop',
      },
    ]);
    expect(only(yaml('upstream:', '  servers: ["127.0.0.1"]', ...ZONES))).toEqual([
      'upstream.servers[0]',
      2,
      13,
      'is eipdns itself (listen (default) binds 127.0.0.1:53): every forwarded query would loop',
    ]);
  });

  it('rejects bad CIDRs', () => {
    expect(issuesOf(yaml('acl:', '  allow:', '    - 10.0.0.0/33', '    - 10.1.2.3/16', '    - 10.0.0.0/x', '    - intranet', '    - fe80::1%eth0/64', ...ZONES))).toEqual([
      { path: 'acl.allow[0]', line: 3, column: 7, message: '"10.0.0.0/33": prefix length must be an integer 0..32' },
      {
        path: 'acl.allow[1]',
        line: 4,
        column: 7,
        message: '"10.1.2.3/16" has host bits set; did you mean "10.1.0.0/16" (or "10.1.2.3" for the single host)?',
      },
      { path: 'acl.allow[2]', line: 5, column: 7, message: '"10.0.0.0/x": prefix length must be an integer 0..32' },
      {
        path: 'acl.allow[3]',
        line: 6,
        column: 7,
        message: '"intranet" is not a CIDR prefix: "intranet" is not an IPv4 or IPv6 address',
      },
      { path: 'acl.allow[4]', line: 7, column: 7, message: '"fe80::1%eth0/64": zone indices ("%eth0") are not allowed in an ACL' },
    ]);
    expect(only(yaml('acl: { allow: [] }', ...ZONES))).toEqual(['acl.allow', 1, 15, 'must not be empty']);
  });

  it('checks the ec2 region and endpoint', () => {
    expect(issuesOf(yaml('ec2:', '  region: us-east', '  endpoint: localhost:4566', ...ZONES))).toEqual([
      { path: 'ec2.region', line: 2, column: 11, message: '"us-east" is not an AWS region name like "us-east-1"' },
      { path: 'ec2.endpoint', line: 3, column: 13, message: '"localhost:4566": expected an http:// or https:// URL' },
    ]);
  });
});

describe('files', () => {
  it('rejects a missing inventory file, naming the resolved path', () => {
    const dir = tempDir();
    const file = writeFile(dir, 'eipdns.yaml', yaml('ec2:', '  inventory: missing.json', ...ZONES));
    expect(() => loadConfig(file)).toThrow(ConfigError);
    const [issue] = issuesOf(yaml('ec2:', '  inventory: missing.json', ...ZONES), file);
    expect(issue).toEqual({
      path: 'ec2.inventory',
      line: 2,
      column: 14,
      message: `${join(dir, 'missing.json')}: no such file (relative paths are resolved against the config file's directory)`,
    });
  });

  it('rejects records the inventory cannot answer', () => {
    const dir = tempDir();
    writeFile(dir, 'inv.json', '{"Addresses": []}');
    const text = yaml(
      'ec2: { inventory: inv.json }',
      'zones:',
      '  - name: internal',
      '    records:',
      '      db: { elastic_ip: { tag: { Role: db } } }',
      '      web: { instances: { tag: { Role: web } } }',
      '      nic: { network_interface: { id: eni-0123456789abcdef0 } }',
      '      ops: { a: ["10.0.9.9"] }',
    );
    const tail = 'needs the EC2 API, but ec2.inventory is set and only describes Elastic IPs; use elastic_ip or a, or drop ec2.inventory';
    expect(issuesOf(text, join(dir, 'eipdns.yaml'))).toEqual([
      { path: 'zones[0].records.web', line: 6, column: 7, message: `"instances" ${tail}` },
      { path: 'zones[0].records.nic', line: 7, column: 7, message: `"network_interface" ${tail}` },
    ]);
  });

  it('rejects an inventory that is a directory', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'inv'));
    const [issue] = issuesOf(yaml('ec2:', '  inventory: inv', ...ZONES), join(dir, 'eipdns.yaml'));
    expect(issue!.message).toBe(`${join(dir, 'inv')}: is not a regular file (relative paths are resolved against the config file's directory)`);
  });

  it('reports an unreadable config file by name', () => {
    const dir = tempDir();
    const file = join(dir, 'nope.yaml');
    let error: unknown;
    try {
      loadConfig(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.file).toBe(file);
    expect(e.issues).toEqual([{ path: '', line: 0, column: 0, message: 'cannot read config file: no such file' }]);
    expect(e.message).toBe(`${file}: cannot read config file: no such file`);
  });

  it.skipIf(process.getuid?.() === 0)('reports a permission problem', () => {
    const dir = tempDir();
    const file = writeFile(dir, 'secret.yaml', yaml(...ZONES));
    chmodSync(file, 0o000);
    expect(() => loadConfig(file)).toThrow(`${file}: cannot read config file: permission denied`);
  });
});

describe('reporting', () => {
  it('reports every problem at once, in file order, as FILE:LINE:COL: path: message', () => {
    const text = yaml(
      'listen: ["localhost:53"]',
      'upstream:',
      '  timeout_ms: 0',
      'ec2:',
      '  poll_interval: 1000',
      'zones:',
      '  - name: internal',
      '    ttl: -1',
      '    records:',
      '      db: { elastic_ip: { tag: { Role: db }, allocation_id: eipalloc-0123456789abcdef0 } }',
      '      web: {}',
      'acl:',
      '  allow: ["10.0.0.0/40"]',
    );
    let error: ConfigError | undefined;
    try {
      parseConfig(text, 'config/x.yaml');
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.file).toBe('config/x.yaml');
    expect(error!.message.split('\n')).toEqual([
      'config/x.yaml:1:10: listen[0]: "localhost" is a hostname, not an IP address: listen on an address of this host, e.g. "127.0.0.1:53" or "0.0.0.0:53"',
      'config/x.yaml:3:15: upstream.timeout_ms: 0 is out of range: expected 50..60000',
      'config/x.yaml:5:3: ec2.poll_interval: unknown key; did you mean "poll_interval_ms"?',
      'config/x.yaml:8:10: zones[0].ttl: -1 is out of range: expected 0..86400',
      'config/x.yaml:10:46: zones[0].records.db.elastic_ip: "tag" and "allocation_id" both given: expected exactly one selector',
      'config/x.yaml:11:12: zones[0].records.web: no address source: expected exactly one of "elastic_ip", "instances", "network_interface", "a"',
      'config/x.yaml:13:11: acl.allow[0]: "10.0.0.0/40": prefix length must be an integer 0..32',
    ]);
    expect(Object.isFrozen(error!.issues)).toBe(true);
  });
});

// ---- the keys for the cache, the upstream budget, admin and zone transfer ----

/**
 * The documented range of every integer key (config/example.yaml says the
 * same). Written out here, not read from LIMITS, so a changed limit is a
 * deliberate edit in two places.
 */
const RANGES: Record<keyof typeof LIMITS, readonly [number, number]> = {
  'upstream.timeout_ms': [50, 60_000],
  'upstream.max_qps': [1, 1_000_000],
  'upstream.max_in_flight': [1, 1_000_000],
  'cache.max_entries': [1, 10_000_000],
  'cache.max_bytes': [65_536, 1_073_741_824],
  'cache.min_ttl': [0, 3600],
  'cache.max_ttl': [0, 604_800],
  'cache.max_negative_ttl': [0, 86_400],
  'cache.failure_ttl': [1, 300],
  'cache.stale.max_age': [1, 604_800],
  'cache.stale.client_timeout_ms': [50, 60_000],
  'cache.stale.ttl': [1, 3600],
  'ec2.poll_interval_ms': [250, 2_147_483_647],
  'ec2.request_timeout_ms': [50, 60_000],
  'ec2.max_stale_ms': [250, 2_147_483_647],
  'zones[].ttl': [0, 86_400],
  'zones[].soa.refresh': [1, 86_400],
  'zones[].soa.retry': [1, 86_400],
  'zones[].soa.expire': [2, 2_419_200],
};

describe('ranges', () => {
  it('are the documented ones', () => {
    expect(Object.fromEntries(Object.entries(LIMITS).map(([k, { min, max }]) => [k, [min, max]]))).toEqual(RANGES);
  });

  const outside = Object.entries(RANGES).flatMap(([path, [min, max]]) => [
    [path, min - 1, min, max] as const,
    [path, max + 1, min, max] as const,
  ]);
  it.each(outside)('rejects %s = %d, at the value', (path, value, min, max) => {
    const { text, line, column } = configWith({ [path]: String(value) }, path);
    const shown = path.replace('zones[]', 'zones[0]');
    expect(only(text)).toEqual([shown, line, column, `${value} is out of range: expected ${min}..${max}`]);
  });

  it('rejects values that are not integers, and booleans that are not true or false', () => {
    expect(
      issuesOf(yaml('upstream:', '  max_qps: 1.5', '  max_in_flight: "64"', '  rewrite_elastic_ips: "yes"', 'cache:', '  prefetch: 1', '  stale: { enabled: on }', ...ZONES)),
    ).toEqual([
      { path: 'upstream.max_qps', line: 2, column: 12, message: 'expected an integer, got the number 1.5' },
      { path: 'upstream.max_in_flight', line: 3, column: 18, message: 'expected an integer, got the string "64"' },
      { path: 'upstream.rewrite_elastic_ips', line: 4, column: 24, message: 'expected true or false, got the string "yes"' },
      { path: 'cache.prefetch', line: 6, column: 13, message: 'expected true or false, got the number 1' },
      { path: 'cache.stale.enabled', line: 7, column: 21, message: 'expected true or false, got the string "on"' },
    ]);
  });
});

describe('cache', () => {
  it('suggests keys at both levels', () => {
    expect(issuesOf(yaml('cache:', '  max-ttl: 10', '  stale:', '    maxAge: 10', '    timeout_ms: 5', ...ZONES))).toEqual([
      { path: 'cache.max-ttl', line: 2, column: 3, message: 'unknown key; did you mean "max_ttl"?' },
      { path: 'cache.stale.maxAge', line: 4, column: 5, message: 'unknown key; did you mean "max_age"?' },
      {
        path: 'cache.stale.timeout_ms',
        line: 5,
        column: 5,
        message: 'unknown key; expected one of "enabled", "max_age", "client_timeout_ms", "ttl"',
      },
    ]);
  });

  it('accepts only a map or false', () => {
    expect(only(yaml('cache: off', ...ZONES))).toEqual(['cache', 1, 8, 'expected a map of cache settings, or false, got the string "off"']);
    expect(only(yaml('cache: { stale: false }', ...ZONES))).toEqual([
      'cache.stale',
      1,
      17,
      'expected a map of serve-stale settings, got the boolean false',
    ]);
  });

  it('rejects max_ttl below min_ttl', () => {
    expect(only(yaml('cache:', '  min_ttl: 600', '  max_ttl: 300', ...ZONES))).toEqual([
      'cache.max_ttl',
      3,
      12,
      'must be at least min_ttl (600): TTLs are clamped to [min_ttl, max_ttl]',
    ]);
  });
});

describe('admin', () => {
  it('requires listen when the block is there', () => {
    expect(only(yaml('admin:', '  allow_refresh: true', ...ZONES))).toEqual(['admin.listen', 2, 3, 'required key is missing']);
  });

  it('requires a port, an IP and a string', () => {
    expect(
      issuesOf(yaml('admin:', '  listen: "127.0.0.1"', ...ZONES)).concat(
        issuesOf(yaml('admin:', '  listen: "::1"', ...ZONES)),
        issuesOf(yaml('admin:', '  listen: localhost:8053', ...ZONES)),
        issuesOf(yaml('admin:', '  listen: 8053', ...ZONES)),
      ),
    ).toEqual([
      {
        path: 'admin.listen',
        line: 2,
        column: 11,
        message: '"127.0.0.1" has no port: write "127.0.0.1:PORT" (the admin listener has no default port)',
      },
      { path: 'admin.listen', line: 2, column: 11, message: '"::1" has no port: write "[::1]:PORT" (the admin listener has no default port)' },
      {
        path: 'admin.listen',
        line: 2,
        column: 11,
        message: '"localhost" is a hostname, not an IP address: listen on an address of this host, e.g. "127.0.0.1:8053"',
      },
      { path: 'admin.listen', line: 2, column: 11, message: 'expected an address with a port, like "127.0.0.1:8053", got the number 8053' },
    ]);
  });

  it('rejects a DNS listen address, naming both, wildcards included', () => {
    expect(only(yaml('listen: ["127.0.0.1:5353"]', 'upstream: { servers: ["10.0.0.2"] }', 'admin:', '  listen: "127.0.0.1:5353"', ...ZONES))).toEqual([
      'admin.listen',
      4,
      11,
      "127.0.0.1:5353 collides with listen[0] (127.0.0.1:5353): that DNS listener's TCP socket holds the port",
    ]);
    expect(only(yaml('admin: { listen: "127.0.0.1:53" }', ...ZONES))).toEqual([
      'admin.listen',
      1,
      18,
      "127.0.0.1:53 collides with listen (default) (127.0.0.1:53): that DNS listener's TCP socket holds the port",
    ]);
    const clash = (listen: string, admin: string) =>
      only(yaml(`listen: ["10.9.9.9:1", "${listen}"]`, `admin: { listen: "${admin}" }`, ...ZONES))[3];
    expect(clash('0.0.0.0:5353', '127.0.0.1:5353')).toBe(
      "127.0.0.1:5353 collides with listen[1] (0.0.0.0:5353): that DNS listener's TCP socket holds the port",
    );
    expect(clash('127.0.0.1:5353', '0.0.0.0:5353')).toMatch(/^0\.0\.0\.0:5353 collides with listen\[1\]/);
    expect(clash('[::]:5353', '127.0.0.1:5353')).toMatch(/^127\.0\.0\.1:5353 collides with listen\[1\] \(\[::\]:5353\)/);
    expect(clash('[::1]:5353', '[::]:5353')).toMatch(/^\[::\]:5353 collides with listen\[1\] \(\[::1\]:5353\)/);
  });

  it('checks allow and suggests keys', () => {
    expect(only(yaml('admin: { listen: "127.0.0.1:8053", allow: [] }', ...ZONES))).toEqual(['admin.allow', 1, 43, 'must not be empty']);
    expect(only(yaml('admin: { listen: "127.0.0.1:8053", allow: ["10.0.0.1/8"] }', ...ZONES))[3]).toMatch(/has host bits set/);
    expect(only(yaml('admin: { listen: "127.0.0.1:8053", allowRefresh: true }', ...ZONES))).toEqual([
      'admin.allowRefresh',
      1,
      36,
      'unknown key; did you mean "allow_refresh"?',
    ]);
  });
});

describe('primary or secondary', () => {
  it('rejects a zone with both records and primaries, at the second', () => {
    const both = 'a zone is either primary (records) or secondary (primaries), not both';
    expect(only(yaml('zones:', '  - name: internal', '    records: {}', '    primaries: ["10.0.0.1"]'))).toEqual([
      'zones[0]',
      4,
      5,
      `"records" and "primaries" both given: ${both}`,
    ]);
    expect(only(yaml('zones:', '  - name: internal', '    primaries: ["10.0.0.1"]', '    records: {}'))[3]).toBe(
      `"records" and "primaries" both given: ${both}`,
    );
  });

  it('rejects a zone with neither, saying what each means', () => {
    expect(only(yaml('zones:', '  - name: internal', '    ttl: 5'))).toEqual([
      'zones[0]',
      2,
      5,
      'needs "records" (a primary zone, answered from EC2) or "primaries" (a secondary zone, copied from them by zone transfer)',
    ]);
  });

  it('reports a misspelt records or primaries once, with a hint', () => {
    expect(only(yaml('zones:', '  - name: internal', '    primary: ["10.0.0.1"]'))).toEqual([
      'zones[0].primary',
      3,
      5,
      'unknown key; did you mean "primaries"?',
    ]);
    expect(only(yaml('zones:', '  - name: internal', '    record: {}'))).toEqual(['zones[0].record', 3, 5, 'unknown key; did you mean "records"?']);
  });

  it('refuses ttl and soa on a secondary zone', () => {
    expect(issuesOf(yaml('zones:', '  - name: internal', '    primaries: ["10.0.0.1"]', '    ttl: 5', '    soa: { refresh: 5 }'))).toEqual([
      { path: 'zones[0].ttl', line: 4, column: 10, message: 'a secondary zone serves the TTLs its primaries send; drop ttl' },
      { path: 'zones[0].soa', line: 5, column: 10, message: "a secondary zone obeys its primaries' SOA timers; drop soa" },
    ]);
  });

  it('checks primaries: IP literals, ports, duplicates, not empty, not eipdns itself', () => {
    expect(
      issuesOf(yaml('zones:', '  - name: internal', '    primaries: ["ns1.example", "10.0.0.1:0", "10.0.0.1", "10.0.0.1:53", "127.0.0.1"]')),
    ).toEqual([
      {
        path: 'zones[0].primaries[0]',
        line: 3,
        column: 17,
        message: '"ns1.example" is a hostname, not an IP address: eipdns would have to resolve it through itself; use the primary\'s IP',
      },
      { path: 'zones[0].primaries[1]', line: 3, column: 32, message: 'port "0" is not valid: expected an integer 1..65535' },
      { path: 'zones[0].primaries[3]', line: 3, column: 58, message: 'duplicate of zones[0].primaries[2] ([10.0.0.1]:53)' },
      {
        path: 'zones[0].primaries[4]',
        line: 3,
        column: 73,
        message: 'is eipdns itself (listen (default) binds 127.0.0.1:53): the zone would be transferred from itself',
      },
    ]);
    expect(only(yaml('zones:', '  - name: internal', '    primaries: []'))).toEqual(['zones[0].primaries', 3, 16, 'must not be empty']);
    expect(only(yaml('listen: ["0.0.0.0:5353"]', 'upstream: { servers: ["10.0.0.2"] }', 'zones:', '  - name: internal', '    primaries: ["127.0.0.1:5353"]'))).toEqual([
      'zones[0].primaries[0]',
      5,
      17,
      'is eipdns itself (listen[0] binds 0.0.0.0:5353): the zone would be transferred from itself',
    ]);
  });
});

describe('transfer and soa', () => {
  it('requires a non-empty allow list and a map', () => {
    expect(only(yaml(...ZONES, '    transfer: { notify: ["10.0.0.9"] }'))).toEqual(['zones[0].transfer.allow', 5, 15, 'required key is missing']);
    expect(only(yaml(...ZONES, '    transfer: { allow: [] }'))).toEqual(['zones[0].transfer.allow', 5, 24, 'must not be empty']);
    expect(only(yaml(...ZONES, '    transfer: ["10.0.0.0/8"]'))).toEqual([
      'zones[0].transfer',
      5,
      15,
      'expected a map with allow (CIDRs) and optionally notify, got a list',
    ]);
  });

  it('checks notify like an upstream, and never eipdns itself', () => {
    expect(issuesOf(yaml(...ZONES, '    transfer: { allow: ["10.0.0.0/8"], notify: ["ns2", "10.0.0.9:0", "127.0.0.1:53"] }'))).toEqual([
      {
        path: 'zones[0].transfer.notify[0]',
        line: 5,
        column: 49,
        message: '"ns2" is a hostname, not an IP address: eipdns would have to resolve it through itself; use the secondary\'s IP',
      },
      { path: 'zones[0].transfer.notify[1]', line: 5, column: 56, message: 'port "0" is not valid: expected an integer 1..65535' },
      {
        path: 'zones[0].transfer.notify[2]',
        line: 5,
        column: 70,
        message: 'is eipdns itself (listen (default) binds 127.0.0.1:53): it would notify itself',
      },
    ]);
  });

  it('requires expire to be at least refresh + retry, given or by default', () => {
    expect(only(yaml(...ZONES, '    soa: { refresh: 100, retry: 100, expire: 150 }'))).toEqual([
      'zones[0].soa.expire',
      5,
      46,
      'must be at least refresh + retry (200), or secondaries drop the zone before they retry',
    ]);
    expect(only(yaml(...ZONES, '    soa: { refresh: 86400 }'))).toEqual([
      'zones[0].soa.expire',
      5,
      10,
      'the default, 3600, is less than refresh + retry (86410): set expire to at least 86410, or secondaries drop the zone before they retry',
    ]);
  });

  it('suggests soa and zone keys', () => {
    expect(only(yaml(...ZONES, '    soa: { refesh: 100 }'))).toEqual(['zones[0].soa.refesh', 5, 12, 'unknown key; did you mean "refresh"?']);
    expect(only(yaml(...ZONES, '    transfers: { allow: ["10.0.0.0/8"] }'))).toEqual([
      'zones[0].transfers',
      5,
      5,
      'unknown key; did you mean "transfer"?',
    ]);
  });
});

describe('tsig', () => {
  /** A config in `dir` whose one zone has `tsig: { ... }` on line 6; `secret_file` is the last key. */
  const withKey = (dir: string, tsig: string) =>
    writeFile(dir, 'eipdns.yaml', yaml(...ZONES, '    transfer: { allow: ["10.0.0.0/16"] }', `    tsig: { ${tsig} }`));
  const col = (tsig: string, key: string) => 4 + '    tsig: { '.length - 4 + tsig.indexOf(`${key}: `) + key.length + 3;
  const issue = (dir: string, tsig: string) => {
    try {
      loadConfig(withKey(dir, tsig));
    } catch (err) {
      if (err instanceof ConfigError) return err.issues;
      throw err;
    }
    throw new Error('expected a ConfigError');
  };

  it('requires name and secret_file, checks the algorithm and suggests keys', () => {
    expect(issuesOf(yaml(...ZONES, '    tsig: { algorithm: hmac-sha265, secret: x.key }'))).toEqual([
      { path: 'zones[0].tsig.name', line: 5, column: 11, message: 'required key is missing' },
      { path: 'zones[0].tsig.algorithm', line: 5, column: 24, message: '"hmac-sha265" is not one of hmac-sha256|hmac-sha384|hmac-sha512|hmac-sha1; did you mean "hmac-sha256"?' },
      { path: 'zones[0].tsig.secret', line: 5, column: 37, message: 'unknown key; did you mean "secret_file"?' },
    ]);
    // HMAC-MD5 is what old BIND setups use; RFC 8945 §6 marks it deprecated.
    const dir = tempDir();
    writeFile(dir, 'k.key', realKeyFile('tsig-keygen', 'k'));
    const md5 = 'name: k, algorithm: hmac-md5, secret_file: k.key';
    expect(issue(dir, md5)).toEqual([
      {
        path: 'zones[0].tsig.algorithm',
        line: 6,
        column: col(md5, 'algorithm'),
        message: '"hmac-md5" is not one of hmac-sha256|hmac-sha384|hmac-sha512|hmac-sha1',
      },
    ]);
  });

  it('rejects a bad key name', () => {
    const dir = tempDir();
    writeFile(dir, 'k.key', realKeyFile('tsig-keygen', 'k'));
    expect(issue(dir, 'name: "", secret_file: k.key')).toEqual([
      { path: 'zones[0].tsig.name', line: 6, column: 19, message: 'expected a key name like "transfer-key", got an empty name' },
    ]);
    expect(issue(dir, 'name: "bad key", secret_file: k.key')[0]!.message).toBe('"bad key": label "bad key" may only contain a-z, 0-9, "-" and "_"');
  });

  it('names the file when it is missing, a directory, empty, too big or holds no secret', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'keys'));
    writeFile(dir, 'empty.key', '\n');
    writeFile(dir, 'junk.key', 'this is not a key\n');
    writeFile(dir, 'big.key', 'x'.repeat(70_000));
    writeFile(dir, 'clause.key', 'key "k" { algorithm hmac-sha256; };\n');
    writeFile(dir, 'knot.key', 'key:\n  - id: k\n    algorithm: hmac-sha256\n');
    const formats =
      'expected one line of base64, the key clause `tsig-keygen` prints (BIND) or the key list `keymgr -t` prints (Knot)';
    const cases: [string, string][] = [
      ['missing.key', `${join(dir, 'missing.key')}: no such file (relative paths are resolved against the config file's directory)`],
      ['keys', `${join(dir, 'keys')}: is not a regular file (relative paths are resolved against the config file's directory)`],
      [
        'empty.key/k',
        `${join(dir, 'empty.key', 'k')}: a part of the path is not a directory (relative paths are resolved against the config file's directory)`,
      ],
      ['empty.key', `${join(dir, 'empty.key')}: is empty: ${formats}`],
      ['junk.key', `${join(dir, 'junk.key')}: holds no TSIG secret: ${formats}`],
      ['big.key', `${join(dir, 'big.key')}: is 70000 bytes; a TSIG key file is a few lines`],
      ['clause.key', `${join(dir, 'clause.key')}: key "k" has no secret statement: ${formats}`],
      ['knot.key', `${join(dir, 'knot.key')}: has a "key:" section that is not a Knot key list: ${formats}`],
    ];
    for (const [file, message] of cases) {
      const tsig = `name: k, secret_file: ${file}`;
      expect(issue(dir, tsig)).toEqual([{ path: 'zones[0].tsig.secret_file', line: 6, column: col(tsig, 'secret_file'), message }]);
    }
  });

  it('rejects invalid base64 and secrets shorter than 16 bytes', () => {
    const dir = tempDir();
    writeFile(dir, 'bad.b64', 'not*base64==\n');
    writeFile(dir, 'pad.b64', 'YWJjZA\n');
    writeFile(dir, 'short.b64', `${Buffer.alloc(15, 7).toString('base64')}\n`);
    writeFile(dir, 'short.conf', `key "k" {\n\talgorithm hmac-sha256;\n\tsecret "${Buffer.alloc(8, 1).toString('base64')}";\n};\n`);
    writeFile(dir, 'sixteen.b64', `${Buffer.alloc(16, 7).toString('base64')}\n`);
    const short = (n: number) =>
      `the secret is ${n} bytes; a TSIG key must be at least 16 (tsig-keygen and keymgr make keys as long as the hash)`;
    expect(issue(dir, 'name: k, secret_file: bad.b64')[0]!.message).toBe(`${join(dir, 'bad.b64')}: the secret is not valid base64`);
    expect(issue(dir, 'name: k, secret_file: pad.b64')[0]!.message).toBe(`${join(dir, 'pad.b64')}: the secret is not valid base64`);
    expect(issue(dir, 'name: k, secret_file: short.b64')[0]!.message).toBe(`${join(dir, 'short.b64')}: ${short(15)}`);
    expect(issue(dir, 'name: k, secret_file: short.conf')[0]!.message).toBe(`${join(dir, 'short.conf')}: ${short(8)}`);
    expect(loadConfig(withKey(dir, 'name: k, secret_file: sixteen.b64')).zones[0]!.tsig!.secret).toBe(Buffer.alloc(16, 7).toString('base64'));
  });

  it('rejects a file whose algorithm differs from the config, default or given', () => {
    const dir = tempDir();
    writeFile(dir, 'sha512.conf', realKeyFile('tsig-keygen', 'k', 'hmac-sha512'));
    writeFile(dir, 'sha1.yaml', realKeyFile('keymgr', 'k', 'hmac-sha1'));
    const a = 'name: k, secret_file: sha512.conf';
    expect(issue(dir, a)).toEqual([
      {
        path: 'zones[0].tsig.secret_file',
        line: 6,
        column: col(a, 'secret_file'),
        message: `${join(dir, 'sha512.conf')}: key "k" is hmac-sha512, but zones[0].tsig.algorithm is hmac-sha256 (the default)`,
      },
    ]);
    expect(issue(dir, 'name: k, algorithm: hmac-sha256, secret_file: sha1.yaml')[0]!.message).toBe(
      `${join(dir, 'sha1.yaml')}: key "k" is hmac-sha1, but zones[0].tsig.algorithm is hmac-sha256`,
    );
  });

  it('rejects one key name with two different secrets or algorithms, naming where it was first defined', () => {
    const dir = tempDir();
    writeFile(dir, 'a.key', realKeyFile('tsig-keygen', 'xfr'));
    writeFile(dir, 'b.key', realKeyFile('tsig-keygen', 'xfr'));
    writeFile(dir, 'c.key', realKeyFile('tsig-keygen', 'xfr', 'hmac-sha512'));
    const twoZones = (second: string, algorithm = '') =>
      yaml(
        'zones:',
        '  - name: one.internal',
        '    primaries: ["127.0.0.1:5300"]',
        '    tsig: { name: xfr, secret_file: a.key }',
        '  - name: two.internal',
        '    primaries: ["127.0.0.1:5300"]',
        `    tsig: { name: xfr, ${algorithm}secret_file: ${second} }`,
      );
    const issues = (text: string) => {
      try {
        loadConfig(writeFile(dir, 'eipdns.yaml', text));
      } catch (err) {
        if (err instanceof ConfigError) return err.issues;
        throw err;
      }
      return [];
    };
    expect(issues(twoZones('b.key'))).toEqual([
      {
        path: 'zones[1].tsig',
        line: 7,
        column: 11,
        message: 'key "xfr" is defined twice with different secret (zones[0].tsig, line 4); one key name must mean one key',
      },
    ]);
    expect(issues(twoZones('c.key', 'algorithm: hmac-sha512, '))[0]!.message).toBe(
      'key "xfr" is defined twice with different secret and algorithm (zones[0].tsig, line 4); one key name must mean one key',
    );
    // The same key file twice is the same key.
    expect(issues(twoZones('a.key'))).toEqual([]);
  });

  it('rejects a file that does not hold the key named in the config', () => {
    const dir = tempDir();
    writeFile(dir, 'other.conf', realKeyFile('tsig-keygen', 'other-key'));
    writeFile(dir, 'two.yaml', `${realKeyFile('keymgr', 'a')}${realKeyFile('keymgr', 'b').replace(/^(#.*\n)?key:\n/, '')}`);
    const tail = 'the key name is part of every signature, so both sides must use the same one';
    expect(issue(dir, 'name: transfer-key, secret_file: other.conf')[0]!.message).toBe(
      `${join(dir, 'other.conf')}: holds key "other-key", not "transfer-key" (zones[0].tsig.name); ${tail}`,
    );
    expect(issue(dir, 'name: c, secret_file: two.yaml')[0]!.message).toBe(
      `${join(dir, 'two.yaml')}: holds key "a", "b", not "c" (zones[0].tsig.name); ${tail}`,
    );
  });
});

describe('ec2 endpoint spelling', () => {
  it('refuses what the URL parser would take but nobody means', () => {
    expect(only(yaml('ec2:', '  endpoint: "http:foo"', ...ZONES))).toEqual([
      'ec2.endpoint',
      2,
      13,
      '"http:foo" is not written as a URL like "http://127.0.0.1:4566"',
    ]);
  });
});

describe('reporting across the new sections', () => {
  it('reports every problem at once, in file order', () => {
    const text = yaml(
      'upstream: { max_qps: 0 }',
      'cache: { min_ttl: 7200, stale: { ttl: 0 } }',
      'admin: { listen: "127.0.0.1" }',
      'zones:',
      '  - name: internal',
      '    records: {}',
      '    primaries: ["10.0.0.1"]',
      '  - name: replica',
      '    primaries: ["10.0.0.1"]',
      '    soa: {}',
    );
    expect(issuesOf(text).map((i) => `${i.line}:${i.column}: ${i.path}`)).toEqual([
      '1:22: upstream.max_qps',
      '2:19: cache.min_ttl',
      '2:39: cache.stale.ttl',
      '3:18: admin.listen',
      '7:5: zones[0]',
      '10:10: zones[1].soa',
    ]);
  });
});
