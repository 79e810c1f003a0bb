import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ACL, loadConfig, parseConfig } from '../../src/config/load.js';
import { tempDir, writeFile, yaml, ZONES } from './helpers.js';

const configDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../config');

describe('shipped configs', () => {
  it('loads config/demo.yaml with its inventory resolved next to it', () => {
    const c = loadConfig(join(configDir, 'demo.yaml'));
    expect(c.file).toBe(join(configDir, 'demo.yaml'));
    expect(c.listen).toEqual([{ host: '127.0.0.1', port: 5353 }]);
    expect(c.upstream).toEqual({ servers: [{ host: '127.0.0.1', port: 5354 }], timeoutMs: 1000 });
    expect(c.ec2).toEqual({
      region: 'us-east-1',
      pollIntervalMs: 1000,
      requestTimeoutMs: 1000,
      maxStaleMs: 3_600_000,
      inventory: join(configDir, 'demo-inventory.json'),
    });
    expect(c.zones).toEqual([
      {
        name: 'internal',
        ttl: 5,
        records: [
          { fqdn: 'db.internal', source: { kind: 'elastic_ip', selector: { tag: { Role: 'db' } } } },
          {
            fqdn: 'cache.internal',
            source: { kind: 'elastic_ip', selector: { allocationId: 'eipalloc-0cace000000000001' } },
          },
          { fqdn: 'queue.internal', source: { kind: 'elastic_ip', selector: { publicIp: '203.0.113.25' } } },
        ],
      },
    ]);
    expect(c.acl.allow).toEqual(['127.0.0.0/8', '::1/128']);
    expect(c.log.level).toBe('info');
  });

  it('loads config/example.yaml with every source kind', () => {
    const c = loadConfig(join(configDir, 'example.yaml'));
    expect(c.listen).toEqual([{ host: '127.0.0.1', port: 53 }]);
    expect(c.upstream.servers).toEqual([{ host: '169.254.169.253', port: 53 }]);
    expect(c.ec2.inventory).toBeUndefined();
    expect(c.zones[0]!.records.map((r) => [r.fqdn, r.source.kind])).toEqual([
      ['db.internal', 'elastic_ip'],
      ['cache.internal', 'elastic_ip'],
      ['queue.internal', 'elastic_ip'],
      ['web.internal', 'instances'],
      ['nic.internal', 'network_interface'],
      ['nat.internal', 'network_interface'],
      ['ops.internal', 'static'],
    ]);
    expect(c.zones[0]!.records[4]!.source).toEqual({ kind: 'network_interface', id: 'eni-0123456789abcdef0' });
    expect(c.zones[0]!.records[6]!.source).toEqual({ kind: 'static', addresses: ['10.0.9.9'] });
  });

  it('example.yaml states the defaults: the same file with its settings removed loads identically', () => {
    const example = loadConfig(join(configDir, 'example.yaml'));
    const bare = parseConfig(
      yaml(
        'zones:',
        '  - name: internal',
        '    records:',
        ...example.zones[0]!.records.map((r) => `      ${r.fqdn.split('.')[0]}: ${sourceYaml(r.source)}`),
      ),
      join(configDir, 'example.yaml'),
    );
    expect(bare).toEqual(example);
  });

  it("example.yaml's commented-out keys are valid when uncommented", () => {
    const text = readFileSync(join(configDir, 'example.yaml'), 'utf8')
      .replace(/^(\s*)#   (\w+: )/gm, '$1$2')
      // An inventory only describes Elastic IPs (see the example's comment).
      .replace(/^.*\{ (instances|network_interface): .*\n/gm, '');
    expect(text).toMatch(/^ {2}inventory: /m);
    const c = parseConfig(text, join(configDir, 'example.yaml'));
    expect(c.ec2.region).toBe('us-east-1');
    expect(c.ec2.endpoint).toBe('http://127.0.0.1:4566');
    expect(c.ec2.inventory).toBe(join(configDir, 'demo-inventory.json'));
  });
});

function sourceYaml(source: import('../../src/config/types.js').RecordSource): string {
  switch (source.kind) {
    case 'elastic_ip': {
      const s = source.selector;
      if (s.tag) return `{ elastic_ip: { tag: ${JSON.stringify(s.tag)} } }`;
      if (s.allocationId) return `{ elastic_ip: { allocation_id: ${s.allocationId} } }`;
      return `{ elastic_ip: { public_ip: ${s.publicIp} } }`;
    }
    case 'instances':
      return `{ instances: { tag: ${JSON.stringify(source.tag)} } }`;
    case 'network_interface':
      return source.id ? `{ network_interface: { id: ${source.id} } }` : `{ network_interface: { tag: ${JSON.stringify(source.tag)} } }`;
    case 'static':
      return `{ a: ${JSON.stringify(source.addresses)} }`;
  }
}

describe('defaults', () => {
  it('fills every optional setting', () => {
    const c = parseConfig(yaml(...ZONES), '/etc/eipdns/min.yaml');
    expect(c).toEqual({
      file: '/etc/eipdns/min.yaml',
      listen: [{ host: '127.0.0.1', port: 53 }],
      upstream: { servers: [{ host: '169.254.169.253', port: 53 }], timeoutMs: 1500 },
      ec2: { pollIntervalMs: 2000, requestTimeoutMs: 2000, maxStaleMs: 3_600_000 },
      zones: [{ name: 'internal', ttl: 5, records: [{ fqdn: 'ops.internal', source: { kind: 'static', addresses: ['10.0.9.9'] } }] }],
      acl: { allow: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] },
      log: { level: 'info' },
    });
    expect(c.acl.allow).toEqual(DEFAULT_ACL);
    expect('region' in c.ec2).toBe(false);
  });

  it('treats a section whose keys are all commented out as all defaults', () => {
    const c = parseConfig(yaml('upstream:', '  # servers: []', 'ec2:', 'acl:', 'log:', ...ZONES), 'x.yaml');
    expect(c.upstream.timeoutMs).toBe(1500);
    expect(c.ec2.pollIntervalMs).toBe(2000);
    expect(c.log.level).toBe('info');
  });

  it('derives request_timeout_ms from poll_interval_ms, capped at 5 s', () => {
    const at = (poll: number) =>
      parseConfig(yaml('ec2:', `  poll_interval_ms: ${poll}`, ...ZONES), 'x.yaml').ec2.requestTimeoutMs;
    expect(at(250)).toBe(250);
    expect(at(3000)).toBe(3000);
    expect(at(60_000)).toBe(5000);
  });

  it('makes Config.file absolute', () => {
    expect(parseConfig(yaml(...ZONES), 'rel/x.yaml').file).toBe(resolve('rel/x.yaml'));
  });

  it('resolves a relative inventory against the config file directory, not the cwd', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'conf'));
    mkdirSync(join(dir, 'data'));
    writeFile(dir, 'data/inv.json', '{"Addresses": []}');
    const file = writeFile(dir, 'conf/eipdns.yaml', yaml('ec2:', '  inventory: ../data/inv.json', ...ZONES));
    expect(loadConfig(file).ec2.inventory).toBe(join(dir, 'data', 'inv.json'));
  });
});

describe('normalisation', () => {
  it('parses listen and upstream address forms', () => {
    const c = parseConfig(
      yaml(
        'listen: ["127.0.0.1", "10.0.0.2:5353", "[::1]:5353", "::1", "[0:0::0:1]:54"]',
        'upstream:',
        '  servers: ["169.254.169.253", "10.0.0.2:5300", "[fd00::2]", "FD00::3"]',
        ...ZONES,
      ),
      'x.yaml',
    );
    expect(c.listen).toEqual([
      { host: '127.0.0.1', port: 53 },
      { host: '10.0.0.2', port: 5353 },
      { host: '::1', port: 5353 },
      { host: '::1', port: 53 },
      { host: '::1', port: 54 },
    ]);
    expect(c.upstream.servers).toEqual([
      { host: '169.254.169.253', port: 53 },
      { host: '10.0.0.2', port: 5300 },
      { host: 'fd00::2', port: 53 },
      { host: 'fd00::3', port: 53 },
    ]);
  });

  it('allows port 0 (any free port) for listeners, each its own socket', () => {
    const c = parseConfig(yaml('listen: ["127.0.0.1:0", "127.0.0.1:0", "[::1]:0"]', ...ZONES), 'x.yaml');
    expect(c.listen).toEqual([
      { host: '127.0.0.1', port: 0 },
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 0 },
    ]);
  });

  it('normalises ACL entries to addr/len', () => {
    const c = parseConfig(
      yaml('acl:', '  allow: ["10.0.0.0/8", "10.1.2.3", "FD00:0:0::/8", "2001:db8::1", "0.0.0.0/0", "::ffff:10.0.0.0/104"]', ...ZONES),
      'x.yaml',
    );
    expect(c.acl.allow).toEqual(['10.0.0.0/8', '10.1.2.3/32', 'fd00::/8', '2001:db8::1/128', '0.0.0.0/0', '::ffff:a00:0/104']);
  });

  it('lower-cases zone and record names and drops the trailing dot', () => {
    const c = parseConfig(
      yaml('zones:', '  - name: Corp.Example.', '    records:', '      DB.West: { a: ["10.0.0.1"] }', '      _svc: { a: ["10.0.0.2"] }'),
      'x.yaml',
    );
    expect(c.zones[0]!.name).toBe('corp.example');
    expect(c.zones[0]!.records.map((r) => r.fqdn)).toEqual(['db.west.corp.example', '_svc.corp.example']);
  });

  it('takes unquoted numeric and boolean tag values as the text written', () => {
    const c = parseConfig(
      yaml('zones:', '  - name: internal', '    records:', '      db: { instances: { tag: { Tier: 1.0, Primary: true, Name: "db" } } }'),
      'x.yaml',
    );
    expect(c.zones[0]!.records[0]!.source).toEqual({ kind: 'instances', tag: { Tier: '1.0', Primary: 'true', Name: 'db' } });
  });

  it('allows nested zones, an empty zone, and version: 1', () => {
    const c = parseConfig(
      yaml(
        'version: 1',
        'zones:',
        '  - name: internal',
        '    records:',
        '      db: { a: ["10.0.0.1"] }',
        '  - name: west.internal',
        '    records:',
        '      db: { a: ["10.0.1.1"] }',
        '  - name: sink.internal',
        '    records: {}',
      ),
      'x.yaml',
    );
    expect(c.zones.map((z) => [z.name, z.records.map((r) => r.fqdn)])).toEqual([
      ['internal', ['db.internal']],
      ['west.internal', ['db.west.internal']],
      ['sink.internal', []],
    ]);
  });

  it('follows YAML anchors and aliases', () => {
    const c = parseConfig(
      yaml(
        'zones:',
        '  - name: internal',
        '    records:',
        '      db: { elastic_ip: { tag: &dbtag { Role: db } } }',
        '      db2: { instances: { tag: *dbtag } }',
      ),
      'x.yaml',
    );
    expect(c.zones[0]!.records[1]!.source).toEqual({ kind: 'instances', tag: { Role: 'db' } });
  });
});

describe('immutability', () => {
  it('returns a deeply frozen config', () => {
    const c = parseConfig(
      yaml('zones:', '  - name: internal', '    records:', '      db: { elastic_ip: { tag: { Role: db } } }', '      ops: { a: ["10.0.9.9"] }'),
      'x.yaml',
    );
    const rec = c.zones[0]!.records[0]!;
    const tag = rec.source.kind === 'elastic_ip' ? rec.source.selector.tag : undefined;
    for (const o of [c, c.listen, c.listen[0], c.upstream, c.upstream.servers, c.ec2, c.zones, c.zones[0], c.zones[0]!.records, rec, rec.source, tag, c.acl, c.acl.allow, c.log]) {
      expect(Object.isFrozen(o)).toBe(true);
    }
    expect(() => {
      (c.zones as unknown as unknown[]).push({});
    }).toThrow(TypeError);
  });

  it('does not share mutable state between loads', () => {
    const a = parseConfig(yaml(...ZONES), 'x.yaml');
    const b = parseConfig(yaml(...ZONES), 'x.yaml');
    expect(a).toEqual(b);
    expect(a.zones).not.toBe(b.zones);
  });
});
