// The answer cache in the real server, over real UDP sockets, against the
// upstream stub: what a cached or coalesced answer carries (TTLs of every
// section, flags, the client's own OPT), which queries the cache keeps out
// of (RD=0), and when a failed refresh stops it asking again. The cache's
// clock is injected, so TTLs count down without waiting.

import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CacheStats } from '../../src/cache/stats.js';
import { buildQuery, decode, query, sendUdp, type Answer } from '../helpers/dns-client.js';
import { inventoryConfig, startTestServer, type TestServer } from '../helpers/server.js';
import { clientCookie, optOptions, startUpstreamStub, type UpstreamStub } from '../helpers/upstream-stub.js';
import { waitFor } from '../interop/tools.js';

let upstream: UpstreamStub;
let srv: TestServer | undefined;
let t = 5_000_000;
const advance = (seconds: number): void => {
  t += seconds * 1000;
};

beforeEach(async () => {
  upstream = await startUpstreamStub({ records: { 'www.example': ['192.0.2.1'] } });
});
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  await upstream.close();
});

async function start(o: { maxQps?: number } = {}): Promise<TestServer> {
  srv = await startTestServer(
    inventoryConfig({ upstream: upstream.port, timeoutMs: 5000, records: ['ops: { a: ["10.0.9.9"] }'], ...o }),
    { files: { 'inventory.json': '{"Addresses": []}' }, cacheNow: () => t },
  );
  return srv;
}

function cacheStats(s: TestServer): CacheStats {
  const layer = s.server.chain().cache;
  if (layer === undefined) throw new Error('no cache layer');
  return layer.stats();
}

const asked = (name: string): number => upstream.queries.filter((q) => q.name === name).length;
const allTtls = (a: Answer): number[] => [...a.packet.answers, ...a.packet.authorities, ...a.packet.additionals].filter((r) => r.type !== 41).map((r) => r.ttl);

describe('answer cache through the server', () => {
  it('keeps an answer no longer than its shortest TTL in any section, not only the answer section', async () => {
    const s = await start();
    upstream.setBehaviour('www.example', { ttl: 3600, additional: [{ name: 'glue.example', address: '192.0.2.53', ttl: 10 }] });
    await query(s.port, 'www.example');

    advance(5);
    const hit = await query(s.port, 'www.example');
    expect(asked('www.example')).toBe(1);
    // RFC 2181 §8 / RFC 1035 §3.2.1: no record is handed out past its own TTL.
    expect(allTtls(hit)).toHaveLength(2);
    for (const ttl of allTtls(hit)) expect(ttl).toBeLessThanOrEqual(5);

    // Long before the answer's 3600 s, the glue's 10 s are over: asked again.
    advance(3000);
    await query(s.port, 'www.example');
    expect(asked('www.example')).toBe(2);
  });

  it('does not answer or store RD=0 queries from the cache (no snooping, no shared upstream refusals)', async () => {
    const s = await start();
    // The resolver refuses to recurse for a non-recursive query, as the VPC resolver may.
    upstream.setBehaviour('www.example', { norecRcode: 'SERVFAIL' });
    const norec = await query(s.port, 'www.example', 'A', { rd: false });
    expect(norec.rcode).toBe(2);
    const rec = await query(s.port, 'www.example');
    expect(rec.rcode).toBe(0);
    expect(rec.addresses).toEqual(['192.0.2.1']);
    expect(asked('www.example')).toBe(2);

    // Cached now for RD=1; an RD=0 query still goes upstream rather than reveal it.
    const again = await query(s.port, 'www.example', 'A', { rd: false });
    expect(again.rcode).toBe(2);
    expect(again.flags.rd).toBe(false);
    expect(asked('www.example')).toBe(3);
    expect(upstream.queries.filter((q) => q.name === 'www.example').map((q) => q.raw[2]! & 1)).toEqual([0, 1, 0]);
    expect(cacheStats(s).failuresCached).toBe(0);
  });

  it('gives each coalesced client its own OPT: no other client cookie, and AD only to those who asked for it', async () => {
    const s = await start();
    // TTL 0: not cacheable, so the one upstream reply is relayed to every waiter.
    upstream.setBehaviour('www.example', { ttl: 0, hold: true, cookie: true, ad: true });
    const cookieA = randomBytes(8);
    const cookieB = randomBytes(8);
    // Client A shows it understands AD by setting it in its query (RFC 6840 §5.7); B does not.
    const queryA = buildQuery('www.example', 'A', { cookie: cookieA, id: 0x0a0a });
    queryA[3] = queryA[3]! | 0x20;
    const a = sendUdp(s.port, queryA, { timeoutMs: 10_000 });
    await waitFor('the upstream to get the query', () => (asked('www.example') === 1 ? true : undefined));
    const b = sendUdp(s.port, buildQuery('www.example', 'A', { cookie: cookieB, id: 0x0b0b }), { timeoutMs: 10_000 });
    await waitFor('the second client to join the flight', () => (cacheStats(s).coalesced === 1 ? true : undefined));
    expect(upstream.release('www.example')).toBe(1);
    const [ra, rb] = await Promise.all([a, b]);
    expect(asked('www.example')).toBe(1);
    expect(clientCookie(upstream.queries[0]!.raw)).toEqual(cookieA);

    for (const [raw, id] of [
      [ra!, 0x0a0a],
      [rb!, 0x0b0b],
    ] as const) {
      const d = decode(raw);
      expect(d.packet.header.id).toBe(id);
      expect(d.addresses).toEqual(['192.0.2.1']);
    }
    // RFC 7873 §5.3: a cookie echoes one client's; no other client may see it.
    const cookiesB = optOptions(rb!).filter((o) => o.code === 10);
    expect(cookiesB.every((o) => !o.data.subarray(0, 8).equals(cookieA))).toBe(true);
    expect(rb!.includes(cookieA)).toBe(false);
    // RFC 6840 §5.8: AD for the client that asked with AD, not for the one that did not.
    expect(ra![3]! & 0x20).toBe(0x20);
    expect(rb![3]! & 0x20).toBe(0);
  });

  it('does not hold back refreshes for 30 s after a refusal of its own (budget), only after the upstream failed', async () => {
    const s = await start({ maxQps: 1 });
    upstream.setBehaviour('www.example', { ttl: 10 });
    upstream.setRecords('other.example', ['192.0.2.2']);
    expect((await query(s.port, 'www.example')).addresses).toEqual(['192.0.2.1']);
    advance(20); // expired: a refresh is due; the entry can answer stale meanwhile

    // The one query a second the budget allows is spent elsewhere...
    await waitFor('the budget window to free up', () => (s.server.chain().budget.stats().currentQps === 0 ? true : undefined));
    expect((await query(s.port, 'other.example')).addresses).toEqual(['192.0.2.2']);
    // ...so the refresh is refused locally and the stale answer goes out.
    const stale = await query(s.port, 'www.example');
    expect(stale.packet.answers.map((r) => r.ttl)).toEqual([30]);
    expect(asked('www.example')).toBe(1);
    expect(s.server.chain().budget.stats().rejected).toBeGreaterThan(0);

    // Once the budget frees up the name is asked again at once (same cache clock).
    await waitFor('the budget window to free up', () => (s.server.chain().budget.stats().currentQps === 0 ? true : undefined));
    const fresh = await query(s.port, 'www.example');
    expect(asked('www.example')).toBe(2);
    expect(fresh.packet.answers.map((r) => r.ttl)).toEqual([10]);
  });

  it('after the upstream itself failed a refresh, answers stale for the recheck period without asking again', async () => {
    const s = await start();
    upstream.setBehaviour('www.example', { ttl: 10 });
    await query(s.port, 'www.example');
    advance(20);
    upstream.setBehaviour('www.example', { ttl: 10, rcode: 'SERVFAIL' });
    expect((await query(s.port, 'www.example')).packet.answers.map((r) => r.ttl)).toEqual([30]);
    expect(asked('www.example')).toBe(2);
    upstream.setBehaviour('www.example', { ttl: 10 });
    expect((await query(s.port, 'www.example')).packet.answers.map((r) => r.ttl)).toEqual([30]);
    expect(asked('www.example')).toBe(2);
    advance(31);
    expect((await query(s.port, 'www.example')).packet.answers.map((r) => r.ttl)).toEqual([10]);
    expect(asked('www.example')).toBe(3);
  });
});
