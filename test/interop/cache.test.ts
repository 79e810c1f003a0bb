// The answer cache end to end (issue 6 §1–§3): the real server on real
// sockets, a real dnsmasq as the VPC resolver, and dnsmasq's query log as the
// witness of what reached the upstream. The cache's clock is injected, so
// TTLs count down without waiting; anything that must be slow (an upstream
// that has not answered yet) is made slow by stopping the dnsmasq process
// (SIGSTOP), so only the mechanism under test can end the wait.

import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CacheStats } from '../../src/cache/stats.js';
import { DEFAULT_CACHE, loadConfig } from '../../src/config/load.js';
import type { CacheConfig, Config } from '../../src/config/types.js';
import { RCODE } from '../../src/wire/codes.js';
import { buildQuery, decode, query, sendTcp, sendUdp, type Answer } from '../helpers/dns-client.js';
import { inventory, inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';
import { dig, dnsmasqQueries, freePort, parseDig, requireTools, run, startDnsmasq, waitFor, type Dnsmasq } from './tools.js';

let tools: Record<'dig' | 'dnsmasq', string>;
/** Answers every name under cache.test with 192.0.2.1, TTL 300; big.cache.test TXT is ~650 octets. */
let upstream: Dnsmasq;

const LOCAL_TTL = 300;
const txt = (c: string): string => c.repeat(200);

async function startUpstream(address = '192.0.2.1', extra: readonly string[] = []): Promise<Dnsmasq> {
  return startDnsmasq(tools.dnsmasq, {
    logQueries: true,
    args: [
      `--address=/cache.test/${address}`,
      `--local-ttl=${LOCAL_TTL}`,
      `--txt-record=big.cache.test,${txt('a')}`,
      `--txt-record=big.cache.test,${txt('b')}`,
      `--txt-record=big.cache.test,${txt('c')}`,
      ...extra,
    ],
  });
}

beforeAll(async () => {
  tools = requireTools('dig', 'dnsmasq');
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.stop();
});

const servers: TestServer[] = [];
const extraUpstreams: Dnsmasq[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of extraUpstreams.splice(0)) await d.stop();
});

function manualClock(): { now: () => number; advance: (s: number) => void } {
  let t = 5_000_000;
  return { now: () => t, advance: (s) => (t += s * 1000) };
}

interface Setup {
  readonly upstream?: number;
  readonly timeoutMs?: number;
  readonly cache?: Partial<CacheConfig>;
  readonly upstreamSettings?: Partial<Config['upstream']>;
}

const DB = inventory([{ publicIp: '198.51.100.10', allocationId: 'eipalloc-0db00000000000001', privateIp: '10.0.1.10', tags: { Role: 'db' } }]);

function withCache(c: Config, s: Setup): Config {
  const cache: CacheConfig = { ...DEFAULT_CACHE, ...s.cache, stale: { ...DEFAULT_CACHE.stale, ...s.cache?.stale } };
  return { ...c, cache, upstream: { ...c.upstream, ...s.upstreamSettings } };
}

async function server(s: Setup = {}, cacheNow?: () => number): Promise<TestServer> {
  const srv = await startTestServer(
    inventoryConfig({ upstream: s.upstream ?? upstream.port, timeoutMs: s.timeoutMs ?? 2000, records: ['db: { elastic_ip: { tag: { Role: db } } }'] }),
    { files: { 'inventory.json': DB }, cacheNow, configure: (c) => withCache(c, s) },
  );
  servers.push(srv);
  await srv.server.discovery().pollNow();
  return srv;
}

function cacheStats(srv: TestServer): CacheStats {
  const layer = srv.server.chain().cache;
  if (layer === undefined) throw new Error('no cache layer');
  return layer.stats();
}

/** How many queries for `name` (any type unless given) the dnsmasq has logged. */
function asked(d: Dnsmasq, name: string, type?: string): number {
  return dnsmasqQueries(d.log()).filter((q) => q.name === name && (type === undefined || q.type === type)).length;
}

const ttlsOf = (a: Answer): number[] => a.packet.answers.map((r) => r.ttl);
const addressesOf = (a: Answer): string[] => a.addresses;

/** Stops dnsmasq in its tracks (SIGSTOP) for the duration of `body`: queries to it wait. */
async function withUpstreamStopped<T>(d: Dnsmasq, body: () => Promise<T>): Promise<T> {
  process.kill(d.pid, 'SIGSTOP');
  try {
    return await body();
  } finally {
    process.kill(d.pid, 'SIGCONT');
  }
}

describe('answer cache (dnsmasq upstream)', () => {
  it('asks the upstream once for a name repeated within its TTL, and counts the TTL down', async () => {
    const c = manualClock();
    const srv = await server({}, c.now);
    const first = await query(srv.port, 'www.cache.test');
    expect(addressesOf(first)).toEqual(['192.0.2.1']);
    expect(ttlsOf(first)).toEqual([300]);
    c.advance(100);
    expect(ttlsOf(await query(srv.port, 'WWW.Cache.Test', 'A', { id: 0x0b0b }))).toEqual([200]);
    c.advance(150);
    const viaDig = await dig(tools.dig, 'dig', { port: srv.port, name: 'www.cache.test' });
    expect(viaDig.answer.map((r) => [r.data, r.ttl])).toEqual([['192.0.2.1', 50]]);
    expect(asked(upstream, 'www.cache.test')).toBe(1);
    expect(srv.server.pipeline.stats.responses.cache[RCODE.NOERROR]).toBe(2);
    expect(cacheStats(srv)).toMatchObject({ hits: 2, misses: 1, entries: 1 });
  });

  it('caches NXDOMAIN for the SOA minimum (RFC 2308), then asks again', async () => {
    // dnsmasq as an authoritative server for neg.test: NXDOMAIN with its SOA
    // (TTL and MINIMUM 600) for every unknown name.
    const port = await freePort();
    const auth = await startDnsmasq(tools.dnsmasq, {
      port,
      logQueries: true,
      args: [`--auth-server=ns.neg.test,127.0.0.1`, '--auth-zone=neg.test', '--auth-soa=1,hostmaster.neg.test,1200,120,604800', '--auth-ttl=600'],
    });
    extraUpstreams.push(auth);
    const c = manualClock();
    const srv = await server({ upstream: auth.port }, c.now);
    const first = await query(srv.port, 'nope.neg.test');
    expect(first.rcode).toBe(RCODE.NXDOMAIN);
    expect(first.packet.authorities.map((r) => r.ttl)).toEqual([600]);
    c.advance(500);
    const cached = await query(srv.port, 'nope.neg.test');
    expect(cached.rcode).toBe(RCODE.NXDOMAIN);
    expect(cached.packet.authorities.map((r) => r.ttl)).toEqual([100]);
    expect(asked(auth, 'nope.neg.test')).toBe(1);
    c.advance(101);
    expect((await query(srv.port, 'nope.neg.test')).rcode).toBe(RCODE.NXDOMAIN);
    expect(asked(auth, 'nope.neg.test')).toBe(2);

    // Expired again with the authority gone: the NXDOMAIN is served stale
    // (RFC 8767), and dig is told so (RFC 8914 §4.20: Stale NXDOMAIN Answer).
    c.advance(601);
    await auth.stop();
    const stale = await dig(tools.dig, 'dig', { port: srv.port, name: 'nope.neg.test' });
    expect(stale.status).toBe('NXDOMAIN');
    expect(stale.text).toContain('; EDE: 19 (Stale NXDOMAIN Answer)');
  });

  it('answers stale (TTL 30) when the upstream has died after a name expired; a never-seen name gets SERVFAIL, and that failure is cached', async () => {
    const mortal = await startUpstream();
    extraUpstreams.push(mortal);
    const c = manualClock();
    const srv = await server({ upstream: mortal.port, timeoutMs: 300 }, c.now);
    expect(ttlsOf(await query(srv.port, 'old.cache.test'))).toEqual([300]);
    c.advance(301);
    await mortal.stop();

    const stale = await query(srv.port, 'old.cache.test', 'A', { timeoutMs: 5000 });
    expect(stale.rcode).toBe(RCODE.NOERROR);
    expect(addressesOf(stale)).toEqual(['192.0.2.1']);
    expect(ttlsOf(stale)).toEqual([30]);
    expect(srv.server.pipeline.stats.responses.stale[RCODE.NOERROR]).toBe(1);

    const never = await query(srv.port, 'new.cache.test', 'A', { timeoutMs: 5000 });
    expect(never.rcode).toBe(RCODE.SERVFAIL);
    // RFC 9520: the dead upstream is asked once per name per failure_ttl, not once per client query.
    const sent = srv.server.chain().upstream.stats().sent;
    for (let i = 0; i < 10; i++) expect((await query(srv.port, 'new.cache.test')).rcode).toBe(RCODE.SERVFAIL);
    // RFC 8767 §5: after the failed refresh, stale at once, nothing asked for 30 s.
    expect(ttlsOf(await query(srv.port, 'old.cache.test'))).toEqual([30]);
    // RFC 8914: an EDNS client is told the answer is stale, as dig shows it; no EDNS, no option.
    const viaDig = await dig(tools.dig, 'dig', { port: srv.port, name: 'old.cache.test' });
    expect(viaDig.answer.map((r) => [r.data, r.ttl])).toEqual([['192.0.2.1', 30]]);
    expect(viaDig.text).toContain('; EDE: 3 (Stale Answer)');
    expect((await dig(tools.dig, 'dig', { port: srv.port, name: 'old.cache.test', bufsize: false })).text).not.toContain('EDE');
    expect((await dig(tools.dig, 'dig', { port: srv.port, name: 'old.cache.test', tcp: true })).text).toContain('; EDE: 3 (Stale Answer)');
    expect(srv.server.chain().upstream.stats().sent).toBe(sent);
    expect(srv.server.pipeline.stats.responses.cache[RCODE.SERVFAIL]).toBe(10);
    c.advance(30);
    expect((await query(srv.port, 'new.cache.test', 'A', { timeoutMs: 5000 })).rcode).toBe(RCODE.SERVFAIL);
    expect(srv.server.chain().upstream.stats().sent).toBe(sent + 1);
  });

  it('answers stale within the client timer when the upstream swallows the refresh', async () => {
    // The stub answers once, then drops the name's queries forever; the
    // upstream timeout is a minute, so only the client timer (200 ms) can
    // answer before this test's own timeout.
    const stub: UpstreamStub = await startUpstreamStub({ records: { 'slow.cache.test': ['192.0.2.7'] }, ttl: 60 });
    try {
      const c = manualClock();
      const srv = await server({ upstream: stub.port, timeoutMs: 60_000, cache: { stale: { ...DEFAULT_CACHE.stale, clientTimeoutMs: 200 } } }, c.now);
      expect(addressesOf(await query(srv.port, 'slow.cache.test'))).toEqual(['192.0.2.7']);
      stub.setBehaviour('slow.cache.test', { drop: true });
      c.advance(61);
      const stale = await query(srv.port, 'slow.cache.test', 'A', { timeoutMs: 10_000 });
      expect(addressesOf(stale)).toEqual(['192.0.2.7']);
      expect(ttlsOf(stale)).toEqual([30]);
      expect(stub.queries.length).toBe(2);
      // The refresh is still in flight; another client joins it and gets stale at once.
      expect(cacheStats(srv).inFlight).toBe(1);
      expect(ttlsOf(await query(srv.port, 'slow.cache.test'))).toEqual([30]);
      expect(stub.queries.length).toBe(2);
    } finally {
      for (const s of servers.splice(0)) await s.close();
      await stub.close();
    }
  });

  it('sends one upstream query for 100 identical concurrent queries, and answers each client its own way', async () => {
    const srv = await server({ timeoutMs: 10_000 });
    const name = 'burst.cache.test';
    const replies = await withUpstreamStopped(upstream, async () => {
      const pending = Array.from({ length: 100 }, (_, i) => {
        const spelled = i % 2 === 0 ? name : name.toUpperCase();
        return sendUdp(srv.port, buildQuery(spelled, 'A', { id: 0x1000 + i }), { timeoutMs: 10_000 });
      });
      await waitFor('100 clients waiting on one upstream query', () => (cacheStats(srv).waiting === 100 ? true : undefined));
      expect(cacheStats(srv)).toMatchObject({ inFlight: 1, coalesced: 99 });
      return pending;
    });
    const answers = (await Promise.all(replies)).map((r) => decode(r!));
    answers.forEach((a, i) => {
      expect(a.packet.header.id).toBe(0x1000 + i);
      expect(a.packet.questions[0]!.name).toBe(i % 2 === 0 ? name : name.toUpperCase());
      expect(a.addresses).toEqual(['192.0.2.1']);
    });
    expect(asked(upstream, name)).toBe(1);
  });

  it('coalesces TCP and UDP clients apart: no TCP client gets a TC reply', async () => {
    const srv = await server({ timeoutMs: 10_000 });
    const name = 'big.cache.test';
    const { udp, tcp } = await withUpstreamStopped(upstream, async () => {
      const udp = Array.from({ length: 20 }, (_, i) => sendUdp(srv.port, buildQuery(name, 'TXT', { id: i }), { timeoutMs: 10_000 }));
      const tcp = Array.from({ length: 20 }, (_, i) => sendTcp(srv.port, [buildQuery(name, 'TXT', { id: 100 + i })], { timeoutMs: 10_000 }));
      await waitFor('40 clients waiting', () => (cacheStats(srv).waiting === 40 ? true : undefined));
      expect(cacheStats(srv).inFlight).toBe(2);
      return { udp, tcp };
    });
    for (const r of await Promise.all(udp)) expect(decode(r!).flags.tc).toBe(true);
    for (const [r] of await Promise.all(tcp)) {
      const a = decode(r!);
      expect(a.flags.tc).toBe(false);
      expect(a.packet.answers.length).toBe(3);
    }
    // UDP: one query (TC); TCP: one UDP query (TC), then its TCP retry.
    expect(asked(upstream, name)).toBe(3);
    // The whole answer is cached: an EDNS client over UDP gets it with no upstream query.
    const again = await query(srv.port, name, 'TXT', { edns: 1232 });
    expect(again.packet.answers.length).toBe(3);
    expect(asked(upstream, name)).toBe(3);
  });

  it('goes around the cache for EDNS Client Subnet, and keys on DO and CD', async () => {
    const srv = await server();
    const ask = async (name: string, flags: readonly string[]): Promise<void> => {
      const r = await run(tools.dig, ['@127.0.0.1', '-p', String(srv.port), name, 'A', '+time=2', '+tries=1', ...flags]);
      expect(parseDig(r.stdout).status).toBe('NOERROR');
    };
    for (let i = 0; i < 2; i++) await ask('ecs.cache.test', []);
    for (let i = 0; i < 2; i++) await ask('ecs.cache.test', ['+subnet=192.0.2.0/24']);
    // One plain query (then a hit), and each Client Subnet query.
    expect(asked(upstream, 'ecs.cache.test')).toBe(1 + 2);
    expect(cacheStats(srv).bypassed).toBe(2);

    const combos = [[], ['+dnssec'], ['+cdflag'], ['+dnssec', '+cdflag']];
    for (let round = 0; round < 2; round++) for (const f of combos) await ask('sec.cache.test', f);
    expect(asked(upstream, 'sec.cache.test')).toBe(4);
  });

  it('prefetches a name hit in the last 10 % of its TTL, once (cache.prefetch: true)', async () => {
    const c = manualClock();
    const srv = await server({ cache: { prefetch: true } }, c.now);
    const name = 'pre.cache.test';
    await query(srv.port, name);
    c.advance(250);
    expect(ttlsOf(await query(srv.port, name))).toEqual([50]);
    expect(cacheStats(srv).prefetches).toBe(0);
    c.advance(25); // 25 s of 300 left
    expect(ttlsOf(await query(srv.port, name))).toEqual([25]);
    await waitFor('the prefetch to land', () => (cacheStats(srv).insertions === 2 ? true : undefined));
    expect(asked(upstream, name)).toBe(2);
    c.advance(1);
    for (let i = 0; i < 5; i++) expect(ttlsOf(await query(srv.port, name))).toEqual([299]);
    expect(cacheStats(srv).prefetches).toBe(1);
    expect(asked(upstream, name)).toBe(2);
  });

  it('never lets a private name reach the cache or the upstream', async () => {
    const srv = await server();
    for (let i = 0; i < 3; i++) {
      expect((await query(srv.port, 'db.internal')).addresses).toEqual(['10.0.1.10']);
      expect((await query(srv.port, 'nope.internal')).rcode).toBe(RCODE.NXDOMAIN);
      expect((await query(srv.port, 'DB.Internal', 'AAAA')).rcode).toBe(RCODE.NOERROR);
    }
    expect(dnsmasqQueries(upstream.log()).filter((q) => q.name.endsWith('internal'))).toEqual([]);
    expect(cacheStats(srv)).toMatchObject({ hits: 0, misses: 0, entries: 0 });
    expect(srv.server.pipeline.stats.responses.zone[RCODE.NOERROR]).toBe(6);
  });

  it('takes its settings from the config file', async () => {
    const yaml = `${inventoryConfig({ upstream: upstream.port, records: ['db: { a: ["10.0.1.10"] }'] })}
cache:
  max_entries: 123
  max_bytes: 100000
  max_ttl: 60
  stale:
    ttl: 7
`;
    const c = manualClock();
    const srv = await startTestServer(yaml, { cacheNow: c.now, files: { 'inventory.json': DB } });
    servers.push(srv);
    expect(cacheStats(srv)).toMatchObject({ maxEntries: 123, maxBytes: 100_000 });
    expect(ttlsOf(await query(srv.port, 'yaml.cache.test'))).toEqual([60]);
    const off = await startTestServer(`${inventoryConfig({ upstream: upstream.port, records: ['db: { a: ["10.0.1.10"] }'] })}\ncache: false\n`, {
      files: { 'inventory.json': DB },
    });
    servers.push(off);
    expect(off.server.chain().cache).toBeUndefined();
  });

  it('keeps its entries across a reload that swaps the upstream, and drops the layer when disabled', async () => {
    const other = await startUpstream('192.0.2.99');
    extraUpstreams.push(other);
    const srv = await server();
    expect(addressesOf(await query(srv.port, 'keep.cache.test'))).toEqual(['192.0.2.1']);
    const before = srv.server.chain();

    const reloadTo = async (extraYaml: (c: Config) => Config): Promise<void> => {
      const path = join(srv.dir, 'next.yaml');
      writeFileSync(path, inventoryConfig({ upstream: other.port, timeoutMs: 2000, records: ['db: { elastic_ip: { tag: { Role: db } } }'] }));
      await srv.server.reload(extraYaml({ ...loadConfig(path), file: srv.server.config().file }));
    };
    await reloadTo((c) => withCache(c, {}));
    expect(srv.server.chain()).not.toBe(before);
    expect(addressesOf(await query(srv.port, 'keep.cache.test'))).toEqual(['192.0.2.1']);
    expect(asked(other, 'keep.cache.test')).toBe(0);
    expect(addressesOf(await query(srv.port, 'fresh.cache.test'))).toEqual(['192.0.2.99']);
    expect(cacheStats(srv)).toMatchObject({ insertions: 2, hits: 1 });

    await reloadTo((c) => withCache(c, { cache: { enabled: false } }));
    expect(srv.server.chain().cache).toBeUndefined();
    for (let i = 0; i < 2; i++) expect(addressesOf(await query(srv.port, 'keep.cache.test'))).toEqual(['192.0.2.99']);
    expect(asked(other, 'keep.cache.test')).toBe(2);
  });
});

describe('the cache under load', () => {
  /** Sends every query over one UDP socket, at most `window` outstanding; resolves with the replies by ID. */
  function blast(port: number, queries: readonly Buffer[], window = 100, timeoutMs = 15_000): Promise<Map<number, Buffer>> {
    const socket = createSocket('udp4');
    const replies = new Map<number, Buffer>();
    let next = 0;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        socket.close();
        resolve(replies);
      };
      const timer = setTimeout(done, timeoutMs);
      const send = (): void => {
        while (next < queries.length && next - replies.size < window) socket.send(queries[next++]!, port, '127.0.0.1');
      };
      socket.on('message', (msg) => {
        replies.set(msg.readUInt16BE(0), msg);
        if (replies.size === queries.length) done();
        else send();
      });
      socket.bind(0, '127.0.0.1', send);
    });
  }

  it('never sends more than max_qps upstream in any second of a burst of distinct names, and answers every client', async () => {
    const cap = 20;
    const c = manualClock();
    const srv = await server({ timeoutMs: 2000, upstreamSettings: { maxQps: cap } }, c.now);
    // Ten names cached, then expired: they have stale answers to fall back on.
    const staleNames = Array.from({ length: 10 }, (_, i) => `s${i}.load.cache.test`);
    for (const n of staleNames) await query(srv.port, n);
    c.advance(LOCAL_TTL + 1);
    await waitFor('an empty budget window', () => (srv.server.chain().budget.stats().currentQps === 0 ? true : undefined), 5000, 50);
    // Start at the top of a wall-clock second (dnsmasq logs whole seconds), so
    // the budget's one-second windows line up with the log's.
    await waitFor('the top of a second', () => (Date.now() % 1000 < 50 ? true : undefined), 3000, 5);

    const names = [...Array.from({ length: 2000 }, (_, i) => `b${i}.load.cache.test`), ...staleNames];
    const queries = names.map((n, i) => buildQuery(n, 'A', { id: i }));
    const replies = await blast(srv.port, queries);

    expect(replies.size).toBe(names.length);
    const rcodes = new Map<number, number>();
    for (const [id, r] of replies) {
      const rcode = r[3]! & 0x0f;
      rcodes.set(rcode, (rcodes.get(rcode) ?? 0) + 1);
      if (id >= 2000) expect(rcode).toBe(RCODE.NOERROR); // stale or refreshed, never SERVFAIL
      else expect([RCODE.NOERROR, RCODE.SERVFAIL]).toContain(rcode);
    }
    expect(rcodes.get(RCODE.SERVFAIL)).toBeGreaterThan(0);
    const perSecond = new Map<string, number>();
    for (const q of dnsmasqQueries(upstream.log()).filter((x) => x.name.endsWith('.load.cache.test') && /^b\d|^s\d/.test(x.name))) {
      perSecond.set(q.second, (perSecond.get(q.second) ?? 0) + 1);
    }
    // The ten seeding queries went out before the burst, in their own second(s).
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(cap);
    expect(srv.server.chain().budget.stats().rejected).toBeGreaterThan(0);
  });

  it('stays within max_entries and max_bytes under a flood of distinct names through the server', async () => {
    const maxEntries = 300;
    // Small enough that the byte bound bites before the entry count does.
    const maxBytes = 150_000;
    const srv = await server({ cache: { maxEntries, maxBytes }, upstreamSettings: { maxQps: 1_000_000 } });
    let worst = { entries: 0, bytes: 0 };
    for (let round = 0; round < 6; round++) {
      const queries = Array.from({ length: 500 }, (_, i) => buildQuery(`f${round}-${i}.flood.cache.test`, 'A', { id: i }));
      const replies = await blast(srv.port, queries, 50);
      expect(replies.size).toBe(500);
      const s = cacheStats(srv);
      worst = { entries: Math.max(worst.entries, s.entries), bytes: Math.max(worst.bytes, s.bytes) };
    }
    expect(worst.entries).toBeLessThanOrEqual(maxEntries);
    expect(worst.bytes).toBeLessThanOrEqual(maxBytes);
    expect(cacheStats(srv)).toMatchObject({ maxEntries, maxBytes, insertions: 3000 });
  });
});
