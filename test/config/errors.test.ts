import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { issuesOf, only, tempDir, writeFile, yaml, ZONES } from './helpers.js';

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
      'unknown key; expected one of "servers", "timeout_ms"',
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
