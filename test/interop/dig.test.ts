// eipdns as the real command-line resolvers see it: BIND's dig and Knot's
// kdig, over UDP and TCP, against the real server started in-process, with a
// real dnsmasq as its upstream for forwarded names.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventory, inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { dig, requireTools, startDnsmasq, type DigTool, type Dnsmasq } from './tools.js';

/** Enough A records (16 bytes each) that the reply exceeds 1232 bytes, the most eipdns sends over UDP. */
const MANY = 100;

const INVENTORY = inventory([
  { publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } },
  { publicIp: '198.51.100.11', allocationId: 'eipalloc-0cace000000000001', privateIp: '10.0.1.11', tags: { Role: 'cache' } },
  ...Array.from({ length: MANY }, (_, i) => ({
    publicIp: `198.51.${100 + Math.floor(i / 200)}.${20 + (i % 200)}`,
    allocationId: `eipalloc-0e${i.toString(16).padStart(15, '0')}`,
    privateIp: `10.0.${4 + Math.floor(i / 200)}.${10 + (i % 200)}`,
    tags: { Role: 'many' },
  })),
]);

let tools: Record<'dig' | 'kdig' | 'dnsmasq', string>;
let upstream: Dnsmasq;
let srv: TestServer;

beforeAll(async () => {
  tools = requireTools('dig', 'kdig', 'dnsmasq');
  upstream = await startDnsmasq(tools.dnsmasq, { args: ['--address=/example.test/192.0.2.7'] });
  srv = await startTestServer(
    inventoryConfig({
      upstream: upstream.port,
      timeoutMs: 1000,
      records: [
        'db:    { elastic_ip: { tag: { Role: db } } }',
        'cache: { elastic_ip: { allocation_id: eipalloc-0cace000000000001 } }',
        'many:  { elastic_ip: { tag: { Role: many } } }',
      ],
    }),
    { files: { 'inventory.json': INVENTORY } },
  );
  await srv.server.discovery().pollNow();
});

afterAll(async () => {
  await srv?.close();
  await upstream?.stop();
});

describe.each(['dig', 'kdig'] as const)('%s', (tool: DigTool) => {
  const ask = (q: Omit<Parameters<typeof dig>[2], 'port'>) => dig(tools[tool], tool, { port: srv.port, ...q });

  describe.each([
    ['UDP', false],
    ['TCP', true],
  ] as const)('over %s', (transport, tcp) => {
    it('answers a private name authoritatively with its private IP', async () => {
      const r = await ask({ name: 'db.internal', tcp });
      expect(r.status).toBe('NOERROR');
      expect(r.transport).toBe(transport);
      expect([...r.flags]).toEqual(expect.arrayContaining(['qr', 'aa', 'rd']));
      expect(r.flags.has('tc')).toBe(false);
      expect(r.answer).toEqual([{ name: 'db.internal.', ttl: 5, type: 'A', data: '10.0.1.10' }]);
    });

    it('answers AAAA for an IPv4-only name with NODATA and the zone SOA', async () => {
      const r = await ask({ name: 'db.internal', type: 'AAAA', tcp });
      expect(r.status).toBe('NOERROR');
      expect(r.flags.has('aa')).toBe(true);
      expect(r.answer).toEqual([]);
      expect(r.authority).toHaveLength(1);
      expect(r.authority[0]).toMatchObject({ name: 'internal.', type: 'SOA' });
    });

    it('answers NXDOMAIN with the SOA for an unknown name in the zone', async () => {
      const r = await ask({ name: 'nope.internal', tcp });
      expect(r.status).toBe('NXDOMAIN');
      expect(r.flags.has('aa')).toBe(true);
      expect(r.answer).toEqual([]);
      expect(r.authority[0]).toMatchObject({ name: 'internal.', type: 'SOA' });
    });

    it('echoes EDNS when asked with a buffer size, and only then', async () => {
      const withEdns = await ask({ name: 'cache.internal', tcp, bufsize: 4096 });
      expect(withEdns.answer.map((a) => a.data)).toEqual(['10.0.1.11']);
      expect(withEdns.ednsUdpSize).toBe(1232);
      const plain = await ask({ name: 'cache.internal', tcp, bufsize: false });
      expect(plain.answer.map((a) => a.data)).toEqual(['10.0.1.11']);
      expect(plain.ednsUdpSize).toBeNull();
    });

    it('forwards a name outside the zones to the upstream (dnsmasq) and relays its answer with RA', async () => {
      const r = await ask({ name: 'www.example.test', tcp });
      expect(r.status).toBe('NOERROR');
      expect(r.flags.has('ra')).toBe(true);
      expect(r.answer.map((a) => `${a.type} ${a.data}`)).toEqual(['A 192.0.2.7']);
    });
  });

  it(`truncates a ${MANY}-record answer over UDP (TC, no records)`, async () => {
    for (const bufsize of [false, 4096] as const) {
      const r = await ask({ name: 'many.internal', bufsize, ignoreTc: true });
      expect(r.transport).toBe('UDP');
      expect(r.flags.has('tc')).toBe(true);
      expect(r.answer).toEqual([]);
    }
  });

  it(`sends the whole ${MANY}-record answer over TCP`, async () => {
    const r = await ask({ name: 'many.internal', tcp: true });
    expect(r.flags.has('tc')).toBe(false);
    expect(r.answer).toHaveLength(MANY);
    expect(new Set(r.answer.map((a) => a.data)).size).toBe(MANY);
  });

  it('is retried over TCP by the tool itself after a truncated UDP reply', async () => {
    const r = await ask({ name: 'many.internal' });
    expect(r.retriedOverTcp).toBe(true);
    expect(r.transport).toBe('TCP');
    expect(r.status).toBe('NOERROR');
    expect(r.answer).toHaveLength(MANY);
  });
});
