import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ACL,
  DEFAULT_ADMIN_ALLOW,
  DEFAULT_CACHE,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_QPS,
  DEFAULT_SOA,
  LIMITS,
  loadConfig,
  parseConfig,
} from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { configWith, realKeyFile, secretOf, tempDir, writeFile, yaml, ZONES } from './helpers.js';

const configDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../config');

describe('shipped configs', () => {
  it('loads config/demo.yaml with its inventory resolved next to it', () => {
    const c = loadConfig(join(configDir, 'demo.yaml'));
    expect(c.file).toBe(join(configDir, 'demo.yaml'));
    expect(c.listen).toEqual([{ host: '127.0.0.1', port: 5353 }]);
    expect(c.upstream).toEqual({
      servers: [{ host: '127.0.0.1', port: 5354 }],
      timeoutMs: 1000,
      maxQps: DEFAULT_MAX_QPS,
      maxInFlight: DEFAULT_MAX_IN_FLIGHT,
      rewriteElasticIps: true,
    });
    expect(c.cache).toEqual(DEFAULT_CACHE);
    expect(c.admin).toEqual({ listen: { host: '127.0.0.1', port: 9153 }, allow: ['127.0.0.0/8', '::1/128'], allowRefresh: false });
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
        soa: DEFAULT_SOA,
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
    // Commented-out settings are written "#   key: value" (prose is "# ");
    // nested blocks and list items keep their indentation after the marker.
    const text = readFileSync(join(configDir, 'example.yaml'), 'utf8')
      .replace(/^(\s*)#   ( *(?:\w+:(?: |$)|- ))/gm, '$1$2')
      // An inventory only describes Elastic IPs (see the example's comment).
      .replace(/^.*\{ (instances|network_interface): .*\n/gm, '');
    expect(text).toMatch(/^ {2}inventory: /m);
    expect(text).toMatch(/^admin:\n {2}listen: /m);
    expect(text).toMatch(/^ {4}transfer:\n {6}allow: /m);
    expect(text).toMatch(/^ {2}- name: vpc2\.internal\n {4}primaries: /m);
    // Its files, next to it as the example says: the demo inventory and a
    // key made by the real tsig-keygen.
    const dir = tempDir();
    copyFileSync(join(configDir, 'demo-inventory.json'), join(dir, 'demo-inventory.json'));
    const key = realKeyFile('tsig-keygen', 'transfer-key');
    writeFile(dir, 'transfer.key', key);
    const c = loadConfig(writeFile(dir, 'example.yaml', text));
    expect(c.ec2.region).toBe('us-east-1');
    expect(c.ec2.endpoint).toBe('http://127.0.0.1:4566');
    expect(c.ec2.inventory).toBe(join(dir, 'demo-inventory.json'));
    expect(c.admin).toEqual({ listen: { host: '127.0.0.1', port: 8053 }, allow: [...DEFAULT_ADMIN_ALLOW], allowRefresh: false });
    const tsig = { name: 'transfer-key', algorithm: 'hmac-sha256', secretFile: join(dir, 'transfer.key'), secret: secretOf(key) };
    expect(c.zones.map((z) => [z.name, z.primaries, z.transfer, z.tsig])).toEqual([
      [
        'internal',
        undefined,
        {
          allow: ['10.0.0.0/16'],
          notify: [
            { host: '10.0.1.53', port: 53 },
            { host: '10.0.2.53', port: 5300 },
          ],
        },
        tsig,
      ],
      [
        'vpc2.internal',
        [
          { host: '10.0.1.10', port: 53 },
          { host: '10.0.2.10', port: 5300 },
        ],
        undefined,
        tsig,
      ],
    ]);
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
      upstream: {
        servers: [{ host: '169.254.169.253', port: 53 }],
        timeoutMs: 1500,
        maxQps: 900,
        maxInFlight: 10_000,
        rewriteElasticIps: true,
      },
      cache: {
        enabled: true,
        maxEntries: 10_000,
        maxBytes: 16 * 1024 * 1024,
        minTtl: 0,
        maxTtl: 86_400,
        maxNegativeTtl: 3600,
        failureTtl: 5,
        prefetch: false,
        stale: { enabled: true, maxAge: 86_400, clientTimeoutMs: 1800, ttl: 30 },
      },
      ec2: { pollIntervalMs: 2000, requestTimeoutMs: 2000, maxStaleMs: 3_600_000 },
      zones: [
        {
          name: 'internal',
          ttl: 5,
          records: [{ fqdn: 'ops.internal', source: { kind: 'static', addresses: ['10.0.9.9'] } }],
          soa: { refresh: 60, retry: 10, expire: 3600 },
        },
      ],
      acl: { allow: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] },
      log: { level: 'info' },
    });
    expect(c.acl.allow).toEqual(DEFAULT_ACL);
    expect(c.cache).toEqual(DEFAULT_CACHE);
    expect(c.zones[0]!.soa).toEqual(DEFAULT_SOA);
    expect('region' in c.ec2).toBe(false);
    // Off unless configured; no zone is a secondary or transfers by default.
    expect('admin' in c).toBe(false);
    expect(['primaries', 'transfer', 'tsig'].filter((k) => k in c.zones[0]!)).toEqual([]);
  });

  it('treats a section whose keys are all commented out as all defaults', () => {
    const c = parseConfig(yaml('upstream:', '  # servers: []', 'cache:', 'ec2:', 'acl:', 'admin:', 'log:', ...ZONES, '    soa:'), 'x.yaml');
    expect(c.upstream.timeoutMs).toBe(1500);
    expect(c.cache).toEqual(DEFAULT_CACHE);
    expect(c.zones[0]!.soa).toEqual(DEFAULT_SOA);
    // For admin, "all defaults" is off: it has no default listen address.
    expect(c.admin).toBeUndefined();
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

// ---- the keys for the cache, the upstream budget, admin and zone transfer ----

/** Where each ranged key lands in Config. Typed over LIMITS, so a new limit needs a line here. */
const FIELD: Record<keyof typeof LIMITS, (c: Config) => number> = {
  'upstream.timeout_ms': (c) => c.upstream.timeoutMs,
  'upstream.max_qps': (c) => c.upstream.maxQps,
  'upstream.max_in_flight': (c) => c.upstream.maxInFlight,
  'cache.max_entries': (c) => c.cache.maxEntries,
  'cache.max_bytes': (c) => c.cache.maxBytes,
  'cache.min_ttl': (c) => c.cache.minTtl,
  'cache.max_ttl': (c) => c.cache.maxTtl,
  'cache.max_negative_ttl': (c) => c.cache.maxNegativeTtl,
  'cache.failure_ttl': (c) => c.cache.failureTtl,
  'cache.stale.max_age': (c) => c.cache.stale.maxAge,
  'cache.stale.client_timeout_ms': (c) => c.cache.stale.clientTimeoutMs,
  'cache.stale.ttl': (c) => c.cache.stale.ttl,
  'ec2.poll_interval_ms': (c) => c.ec2.pollIntervalMs,
  'ec2.request_timeout_ms': (c) => c.ec2.requestTimeoutMs,
  'ec2.max_stale_ms': (c) => c.ec2.maxStaleMs,
  'zones[].ttl': (c) => c.zones[0]!.ttl,
  'zones[].soa.refresh': (c) => c.zones[0]!.soa.refresh,
  'zones[].soa.retry': (c) => c.zones[0]!.soa.retry,
  'zones[].soa.expire': (c) => c.zones[0]!.soa.expire,
};

/** Siblings a bound needs to pass the cross-field rules (max_stale_ms ≥ poll_interval_ms, expire ≥ refresh + retry). */
const NEEDS: Partial<Record<keyof typeof LIMITS, Partial<Record<'min' | 'max', Record<string, string>>>>> = {
  'ec2.poll_interval_ms': { max: { 'ec2.max_stale_ms': String(LIMITS['ec2.max_stale_ms'].max) } },
  'ec2.max_stale_ms': { min: { 'ec2.poll_interval_ms': String(LIMITS['ec2.poll_interval_ms'].min) } },
  'zones[].soa.refresh': { max: { 'zones[].soa.expire': String(LIMITS['zones[].soa.expire'].max) } },
  'zones[].soa.retry': { max: { 'zones[].soa.expire': String(LIMITS['zones[].soa.expire'].max) } },
  'zones[].soa.expire': { min: { 'zones[].soa.refresh': '1', 'zones[].soa.retry': '1' } },
};

describe('ranges', () => {
  const bounds = Object.entries(LIMITS).flatMap(([path, range]) =>
    (['min', 'max'] as const).map((end) => [path as keyof typeof LIMITS, end, range[end]] as const),
  );
  it.each(bounds)('accepts %s at its %s, %d', (path, end, value) => {
    const { text } = configWith({ ...NEEDS[path]?.[end], [path]: String(value) });
    expect(FIELD[path](parseConfig(text, 'x.yaml'))).toBe(value);
  });
});

describe('upstream budget and Elastic IP rewrite', () => {
  it('reads max_qps, max_in_flight and rewrite_elastic_ips', () => {
    const c = parseConfig(yaml('upstream:', '  max_qps: 500', '  max_in_flight: 64', '  rewrite_elastic_ips: false', ...ZONES), 'x.yaml');
    expect(c.upstream).toEqual({
      servers: [{ host: '169.254.169.253', port: 53 }],
      timeoutMs: 1500,
      maxQps: 500,
      maxInFlight: 64,
      rewriteElasticIps: false,
    });
  });
});

describe('cache', () => {
  it('reads every key', () => {
    const c = parseConfig(
      yaml(
        'cache:',
        '  enabled: false',
        '  max_entries: 500',
        '  max_bytes: 1048576',
        '  min_ttl: 10',
        '  max_ttl: 600',
        '  max_negative_ttl: 60',
        '  failure_ttl: 2',
        '  prefetch: false',
        '  stale:',
        '    enabled: false',
        '    max_age: 3600',
        '    client_timeout_ms: 500',
        '    ttl: 10',
        ...ZONES,
      ),
      'x.yaml',
    );
    expect(c.cache).toEqual({
      enabled: false,
      maxEntries: 500,
      maxBytes: 1_048_576,
      minTtl: 10,
      maxTtl: 600,
      maxNegativeTtl: 60,
      failureTtl: 2,
      prefetch: false,
      stale: { enabled: false, maxAge: 3600, clientTimeoutMs: 500, ttl: 10 },
    });
  });

  it('fills what is not given from the defaults, stale keys one by one too', () => {
    const c = parseConfig(yaml('cache:', '  max_ttl: 300', '  stale:', '    ttl: 5', ...ZONES), 'x.yaml');
    expect(c.cache).toEqual({ ...DEFAULT_CACHE, maxTtl: 300, stale: { ...DEFAULT_CACHE.stale, ttl: 5 } });
  });

  it('takes cache: false as { enabled: false } and cache: true as the defaults', () => {
    expect(parseConfig(yaml('cache: false', ...ZONES), 'x.yaml').cache).toEqual({ ...DEFAULT_CACHE, enabled: false });
    expect(parseConfig(yaml('cache: true', ...ZONES), 'x.yaml').cache).toEqual(DEFAULT_CACHE);
  });

  it('allows min_ttl equal to max_ttl', () => {
    const c = parseConfig(yaml('cache: { min_ttl: 60, max_ttl: 60 }', ...ZONES), 'x.yaml');
    expect([c.cache.minTtl, c.cache.maxTtl]).toEqual([60, 60]);
  });
});

describe('admin', () => {
  it('reads listen, and fills allow and allow_refresh', () => {
    const c = parseConfig(yaml('admin:', '  listen: "127.0.0.1:8053"', ...ZONES), 'x.yaml');
    expect(c.admin).toEqual({ listen: { host: '127.0.0.1', port: 8053 }, allow: ['127.0.0.0/8', '::1/128'], allowRefresh: false });
    expect(c.admin!.allow).toEqual(DEFAULT_ADMIN_ALLOW);
  });

  it('reads IPv6, port 0 (a free port), allow and allow_refresh', () => {
    const c = parseConfig(yaml('admin:', '  listen: "[::1]:0"', '  allow: ["10.0.0.0/8", "fd00::1"]', '  allow_refresh: true', ...ZONES), 'x.yaml');
    expect(c.admin).toEqual({ listen: { host: '::1', port: 0 }, allow: ['10.0.0.0/8', 'fd00::1/128'], allowRefresh: true });
  });

  it('may share a port with a DNS listener on another address, or any port with a free-port listener', () => {
    const ok = (listen: string, admin: string) =>
      parseConfig(yaml(`listen: ["${listen}"]`, `admin: { listen: "${admin}" }`, ...ZONES), 'x.yaml').admin!.listen;
    expect(ok('127.0.0.1:5353', '127.0.0.2:5353')).toEqual({ host: '127.0.0.2', port: 5353 });
    expect(ok('[::1]:5353', '127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353 });
    expect(ok('0.0.0.0:5353', '[::1]:5353')).toEqual({ host: '::1', port: 5353 });
    expect(ok('127.0.0.1:0', '127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
  });
});

describe('secondary zones and zone transfer', () => {
  it('reads a secondary zone: primaries in order, port 53 by default, no records', () => {
    const c = parseConfig(
      yaml(...ZONES, '  - name: Replica.Example.', '    primaries: ["10.0.1.10", "10.0.2.10:5300", "[fd00::10]:53", "fd00::11"]'),
      'x.yaml',
    );
    expect(c.zones[1]).toEqual({
      name: 'replica.example',
      // Placeholders of the type: a secondary serves its primaries' TTLs and SOA.
      ttl: 5,
      records: [],
      primaries: [
        { host: '10.0.1.10', port: 53 },
        { host: '10.0.2.10', port: 5300 },
        { host: 'fd00::10', port: 53 },
        { host: 'fd00::11', port: 53 },
      ],
      soa: DEFAULT_SOA,
    });
  });

  it('reads transfer with notify defaulting to none, and soa timers', () => {
    const c = parseConfig(
      yaml(
        ...ZONES,
        '    transfer:',
        '      allow: ["10.0.0.0/16", "10.1.0.5"]',
        '    soa: { refresh: 300, retry: 30, expire: 86400 }',
        '  - name: other',
        '    records: {}',
        '    transfer: { allow: ["10.0.0.0/16"], notify: ["10.0.1.53", "[fd00::53]:5300"] }',
      ),
      'x.yaml',
    );
    expect(c.zones.map((z) => [z.transfer, z.soa])).toEqual([
      [{ allow: ['10.0.0.0/16', '10.1.0.5/32'], notify: [] }, { refresh: 300, retry: 30, expire: 86_400 }],
      [
        {
          allow: ['10.0.0.0/16'],
          notify: [
            { host: '10.0.1.53', port: 53 },
            { host: 'fd00::53', port: 5300 },
          ],
        },
        DEFAULT_SOA,
      ],
    ]);
  });

  it('allows transfer out of a secondary zone (a tier of secondaries)', () => {
    const c = parseConfig(yaml(...ZONES, '  - name: replica', '    primaries: ["10.0.1.10"]', '    transfer: { allow: ["10.2.0.0/16"] }'), 'x.yaml');
    expect(c.zones[1]!.transfer).toEqual({ allow: ['10.2.0.0/16'], notify: [] });
  });

  it('soa expire may equal refresh + retry', () => {
    const c = parseConfig(yaml(...ZONES, '    soa: { refresh: 100, retry: 20, expire: 120 }'), 'x.yaml');
    expect(c.zones[0]!.soa).toEqual({ refresh: 100, retry: 20, expire: 120 });
  });
});

describe('tsig keys', () => {
  const zoneWithKey = (tsig: string): string => yaml(...ZONES, '    transfer: { allow: ["10.0.0.0/16"] }', `    tsig: ${tsig}`);

  it.each([
    ['tsig-keygen', 'hmac-sha256'],
    ['tsig-keygen', 'hmac-sha384'],
    ['tsig-keygen', 'hmac-sha512'],
    ['tsig-keygen', 'hmac-sha1'],
    ['keymgr', 'hmac-sha256'],
    ['keymgr', 'hmac-sha384'],
    ['keymgr', 'hmac-sha512'],
    ['keymgr', 'hmac-sha1'],
  ] as const)('reads the key file %s prints, %s', (tool, algorithm) => {
    const dir = tempDir();
    const keyFile = realKeyFile(tool, 'transfer-key', algorithm);
    writeFile(dir, 'transfer.key', keyFile);
    const file = writeFile(dir, 'eipdns.yaml', zoneWithKey(`{ name: transfer-key, algorithm: ${algorithm}, secret_file: transfer.key }`));
    expect(loadConfig(file).zones[0]!.tsig).toEqual({
      name: 'transfer-key',
      algorithm,
      secretFile: join(dir, 'transfer.key'),
      secret: secretOf(keyFile),
    });
  });

  it('reads one line of bare base64, with hmac-sha256 as the default algorithm', () => {
    const dir = tempDir();
    const secret = secretOf(realKeyFile('tsig-keygen', 'k'));
    writeFile(dir, 'k.b64', `${secret}\n`);
    const file = writeFile(dir, 'eipdns.yaml', zoneWithKey('{ name: k, secret_file: k.b64 }'));
    expect(loadConfig(file).zones[0]!.tsig).toEqual({ name: 'k', algorithm: 'hmac-sha256', secretFile: join(dir, 'k.b64'), secret });
  });

  it('resolves secret_file against the config file directory and normalises the key name', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'conf'));
    mkdirSync(join(dir, 'keys'));
    const keyFile = realKeyFile('keymgr', 'xfr.example.', 'hmac-sha512');
    writeFile(dir, 'keys/xfr.yaml', keyFile);
    const file = writeFile(dir, 'conf/eipdns.yaml', zoneWithKey('{ name: XFR.Example., algorithm: hmac-sha512, secret_file: ../keys/xfr.yaml }'));
    expect(loadConfig(file).zones[0]!.tsig).toMatchObject({ name: 'xfr.example', secretFile: join(dir, 'keys', 'xfr.yaml') });
  });

  it('picks the key named in the config from a file holding several, comments and all', () => {
    const dir = tempDir();
    const a = realKeyFile('tsig-keygen', 'a-key');
    const b = realKeyFile('tsig-keygen', 'b-key');
    // named.conf comments, including a "//" that is not one (base64 may contain it).
    writeFile(dir, 'keys.conf', `# keys for the secondaries\n${a}/* the second */\n// b-key follows\n${b}`);
    const knot = `${realKeyFile('keymgr', 'a-key')}${realKeyFile('keymgr', 'b-key').replace(/^(#.*\n)?key:\n/, '')}`;
    writeFile(dir, 'keys.yaml', knot);
    const bind = loadConfig(writeFile(dir, 'bind.yaml', zoneWithKey('{ name: b-key, secret_file: keys.conf }')));
    expect(bind.zones[0]!.tsig!.secret).toBe(secretOf(b));
    const knotConfig = loadConfig(writeFile(dir, 'knot.yaml', zoneWithKey('{ name: b-key, secret_file: keys.yaml }')));
    expect(knotConfig.zones[0]!.tsig!.secret).toBe(secretOf(knot.slice(knot.indexOf('id: b-key'))));
    expect(knotConfig.zones[0]!.tsig!.secret).not.toBe(secretOf(knot));
  });

  it('puts the key on secondary zones too, and the frozen config carries the secret', () => {
    const dir = tempDir();
    const keyFile = realKeyFile('tsig-keygen', 'transfer-key');
    writeFile(dir, 'transfer.key', keyFile);
    const file = writeFile(dir, 'eipdns.yaml', yaml(...ZONES, '  - name: replica', '    primaries: ["10.0.1.10"]', '    tsig: { name: transfer-key, secret_file: transfer.key }'));
    const c = loadConfig(file);
    expect(c.zones[1]!.tsig!.secret).toBe(secretOf(keyFile));
    expect(Object.isFrozen(c.zones[1]!.tsig)).toBe(true);
  });
});

describe('immutability of the new sections', () => {
  it('freezes cache, admin, primaries, transfer and soa', () => {
    const c = parseConfig(
      yaml(
        'cache: { stale: { ttl: 5 } }',
        'admin: { listen: "127.0.0.1:8053" }',
        ...ZONES,
        '    transfer: { allow: ["10.0.0.0/8"], notify: ["10.0.0.9"] }',
        '    soa: { refresh: 100 }',
        '  - name: replica',
        '    primaries: ["10.0.1.10"]',
      ),
      'x.yaml',
    );
    const z = c.zones[0]!;
    for (const o of [c.cache, c.cache.stale, c.admin, c.admin!.listen, c.admin!.allow, z.transfer, z.transfer!.notify, z.transfer!.notify[0], z.soa, c.zones[1]!.primaries, c.zones[1]!.primaries![0]]) {
      expect(Object.isFrozen(o)).toBe(true);
    }
  });
});
