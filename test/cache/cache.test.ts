// The cache layer against a layer below that the test drives by hand: each
// upstream query it receives waits until the test answers or fails it, so
// coalescing, serve-stale and prefetch can be stepped through with an
// injected clock. The end-to-end versions, with a real dnsmasq upstream and
// the real server, are in test/interop/cache.test.ts.

import { describe, expect, it } from 'vitest';
import { createCache } from '../../src/cache/cache.js';
import { CacheStore } from '../../src/cache/store.js';
import { DEFAULT_CACHE } from '../../src/config/load.js';
import type { CacheConfig } from '../../src/config/types.js';
import { UpstreamError, type UpstreamErrorCode } from '../../src/forward/errors.js';
import type { Forwarder, ForwardRequest } from '../../src/forward/forwarder.js';
import { a, name, queryBytes, req, SEC, soa, T, ttls, u32, type QuerySpec, type Rr } from './wire.js';

interface Asked {
  readonly req: ForwardRequest;
  answer(records: readonly Rr[], opts?: { rcode?: number; tc?: boolean }): void;
  fail(code: UpstreamErrorCode): void;
}

/** The layer below: records every request; the test settles each one. */
function below(): Forwarder & { asked: Asked[] } {
  const asked: Asked[] = [];
  return {
    asked,
    resolve(r) {
      return new Promise<Buffer>((resolve, reject) => {
        asked.push({
          req: r,
          answer: (records, o = {}) => resolve(replyTo(r, records, o.rcode ?? 0, o.tc === true)),
          fail: (code) => reject(new UpstreamError(code, code)),
        });
      });
    },
    stats: () => ({}),
    close: async () => undefined,
  };
}

/** What the upstream layer hands back: the client's ID and question, an OPT if it sent one. */
function replyTo(r: ForwardRequest, records: readonly Rr[], rcode: number, tc: boolean): Buffer {
  const q = r.query;
  const withOpt = q.edns !== null;
  const count = (s: number): number => records.filter((x) => x.section === s).length + (s === SEC.AR && withOpt ? 1 : 0);
  const head = [q.id >> 8, q.id & 0xff, 0x81 | (tc ? 0x02 : 0), 0x80 | rcode, 0, 1, 0, count(0), 0, count(1), 0, count(2)];
  const body: number[] = [];
  for (const s of [0, 1, 2]) {
    for (const x of records.filter((y) => y.section === s)) {
      body.push(...(x.owner ?? [0xc0, 0x0c]), x.type >> 8, x.type & 0xff, 0, 1, ...u32(x.ttl), x.rdata.length >> 8, x.rdata.length & 0xff, ...x.rdata);
    }
  }
  if (withOpt) body.push(0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0);
  return Buffer.concat([Buffer.from(head), r.msg.subarray(12, q.questionEnd), Buffer.from(body)]);
}

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function setup(cfg: Partial<CacheConfig> = {}, limits: { maxEntries?: number; maxBytes?: number; maxWaiting?: number } = {}) {
  const config: CacheConfig = { ...DEFAULT_CACHE, ...cfg, stale: { ...DEFAULT_CACHE.stale, ...cfg.stale } };
  const store = new CacheStore({ maxEntries: limits.maxEntries ?? config.maxEntries, maxBytes: limits.maxBytes ?? config.maxBytes });
  const c = clock();
  const down = below();
  const cache = createCache(down, { store, config, maxWaiting: limits.maxWaiting ?? 10_000, now: c.now });
  return { cache, store, clock: c, down };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function ask(cache: Forwarder, qname: string, spec: QuerySpec = {}, viaTcp = false): { r: ForwardRequest; out: Buffer | Promise<Buffer> } {
  const r = req(queryBytes(qname, spec), viaTcp);
  return { r, out: cache.resolve(r) };
}

/** For a reply the test does not wait for (its rejection is expected or irrelevant). */
function quiet(out: Buffer | Promise<Buffer>): void {
  Promise.resolve(out).catch(() => undefined);
}

function rcodeOf(b: Buffer): number {
  return b[3]! & 0x0f;
}

function answerTtls(b: Buffer, qname: string): number[] {
  return ttls(b, 12 + name(qname).length + 4)
    .filter((x) => x.type !== T.OPT)
    .map((x) => x.ttl);
}

describe('cache layer', () => {
  it('answers a repeated name from the store, synchronously, with TTLs counting down', async () => {
    const { cache, down, clock: c } = setup({ prefetch: true });
    const first = ask(cache, 'www.example.com');
    await flush();
    expect(down.asked.length).toBe(1);
    down.asked[0]!.answer([a(SEC.AN, 300)]);
    const r1 = await first.out;
    expect(answerTtls(r1, 'www.example.com')).toEqual([300]);
    expect(first.r.source).toBe('upstream');

    c.advance(10_000);
    const second = ask(cache, 'WWW.example.COM', { id: 0x0777 });
    expect(Buffer.isBuffer(second.out)).toBe(true);
    const r2 = second.out as Buffer;
    expect(second.r.source).toBe('cache');
    expect(r2.readUInt16BE(0)).toBe(0x0777);
    expect(r2.subarray(12, 12 + name('www.example.com').length).toString('latin1')).toContain('WWW');
    expect(answerTtls(r2, 'www.example.com')).toEqual([290]);
    c.advance(289_500);
    expect(answerTtls(ask(cache, 'www.example.com').out as Buffer, 'www.example.com')).toEqual([1]);
    // That hit, in the last 10 % of the TTL, started the one prefetch.
    await flush();
    expect(down.asked.length).toBe(2);
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 1, insertions: 1, entries: 1, prefetches: 1 });
  });

  it('coalesces 100 identical queries into one upstream query; each client gets its own ID and letter case', async () => {
    const { cache, down } = setup();
    const spellings = ['a.example.org', 'A.EXAMPLE.ORG', 'a.ExAmple.org'];
    const asks = Array.from({ length: 100 }, (_, i) => ask(cache, spellings[i % 3]!, { id: 1000 + i }));
    await flush();
    expect(down.asked.length).toBe(1);
    down.asked[0]!.answer([a(SEC.AN, 60)]);
    const replies = await Promise.all(asks.map((x) => x.out));
    replies.forEach((r, i) => {
      expect(r.readUInt16BE(0)).toBe(1000 + i);
      expect(r.subarray(13, 14).toString()).toBe(spellings[i % 3]![0]);
      expect(answerTtls(r, 'a.example.org')).toEqual([60]);
    });
    expect(cache.stats()).toMatchObject({ coalesced: 99, misses: 100, inFlight: 0, waiting: 0 });
  });

  it('never hands a TCP client the TC reply a UDP query got: the transports query apart', async () => {
    const { cache, down } = setup();
    const udp = ask(cache, 'big.example', {}, false);
    const tcp = ask(cache, 'big.example', {}, true);
    await flush();
    expect(down.asked.map((x) => x.req.viaTcp)).toEqual([false, true]);
    down.asked[0]!.answer([], { tc: true });
    expect((await udp.out)[2]! & 0x02).toBe(0x02);
    // The TC reply was not kept: the TCP client still waits for its own query.
    down.asked[1]!.answer([a(SEC.AN, 60), a(SEC.AN, 60, [192, 0, 2, 2])]);
    const full = await tcp.out;
    expect(full[2]! & 0x02).toBe(0);
    expect(answerTtls(full, 'big.example')).toEqual([60, 60]);
    // ... and the full answer now serves UDP clients too (the pipeline truncates it if it must).
    expect(Buffer.isBuffer(ask(cache, 'big.example').out)).toBe(true);
  });

  it('relays a reply it cannot keep to every waiter, each with its own ID', async () => {
    const { cache, down, store } = setup();
    const x = ask(cache, 'zero.example', { id: 1 });
    const y = ask(cache, 'zero.example', { id: 2 });
    await flush();
    down.asked[0]!.answer([a(SEC.AN, 0)]);
    expect([(await x.out).readUInt16BE(0), (await y.out).readUInt16BE(0)]).toEqual([1, 2]);
    expect(store.size).toBe(0);
  });

  it('goes around the cache (and coalescing) for a query with EDNS Client Subnet', async () => {
    const { cache, down, store } = setup();
    const x = ask(cache, 'ecs.example', { clientSubnet: true });
    const y = ask(cache, 'ecs.example', { clientSubnet: true });
    await flush();
    expect(down.asked.length).toBe(2);
    for (const q of down.asked) q.answer([a(SEC.AN, 300)]);
    await Promise.all([x.out, y.out]);
    expect(store.size).toBe(0);
    expect(cache.stats().bypassed).toBe(2);
  });

  it('keys on DO and CD: each combination is its own entry', async () => {
    const { cache, down } = setup();
    const specs: QuerySpec[] = [{}, { dnssecOk: true }, { cd: true }, { dnssecOk: true, cd: true }];
    const outs = specs.map((s) => ask(cache, 'sec.example', s).out);
    await flush();
    expect(down.asked.length).toBe(4);
    down.asked.forEach((q, i) => q.answer([a(SEC.AN, 300, [192, 0, 2, i])]));
    await Promise.all(outs);
    specs.forEach((s, i) => {
      const hit = ask(cache, 'sec.example', s).out as Buffer;
      expect(hit[hit.length - (s.dnssecOk ? 11 : 0) - 1]).toBe(i);
    });
    // EDNS presence and UDP size are not part of the key.
    expect(Buffer.isBuffer(ask(cache, 'sec.example', { edns: 512 }).out)).toBe(true);
    expect(down.asked.length).toBe(4);
  });

  it('caches an upstream failure (every server silent) for failure_ttl, then asks again', async () => {
    const { cache, down, clock: c } = setup({ failureTtl: 5 });
    const first = ask(cache, 'dead.example');
    await flush();
    down.asked[0]!.fail('Timeout');
    await expect(first.out).rejects.toMatchObject({ code: 'Timeout' });
    const again = ask(cache, 'dead.example', { id: 0x99 });
    expect(Buffer.isBuffer(again.out)).toBe(true);
    expect(rcodeOf(again.out as Buffer)).toBe(2);
    expect((again.out as Buffer).readUInt16BE(0)).toBe(0x99);
    expect(again.r.source).toBe('cache');
    c.advance(5_000);
    quiet(ask(cache, 'dead.example').out);
    await flush();
    expect(down.asked.length).toBe(2);
    expect(cache.stats().failuresCached).toBe(1);
  });

  it('caches a SERVFAIL reply as a failure, but never a local refusal (budget, overload)', async () => {
    const { cache, down } = setup();
    const sf = ask(cache, 'sf.example');
    await flush();
    down.asked[0]!.answer([], { rcode: 2 });
    expect(rcodeOf(await sf.out)).toBe(2);
    expect(rcodeOf(ask(cache, 'sf.example').out as Buffer)).toBe(2);
    expect(down.asked.length).toBe(1);

    for (const code of ['OverBudget', 'Overload', 'Closed'] as const) {
      const x = ask(cache, `${code}.example`);
      await flush();
      down.asked.at(-1)!.fail(code);
      await expect(x.out).rejects.toMatchObject({ code });
      const before = down.asked.length;
      quiet(ask(cache, `${code}.example`).out);
      await flush();
      expect(down.asked.length).toBe(before + 1);
    }
    expect(cache.stats().failuresCached).toBe(1);
  });

  it('serves stale (TTL 30) when the refresh fails, then asks for the name at most once per 30 s', async () => {
    const { cache, down, clock: c } = setup();
    const seed = ask(cache, 'www.example.net');
    await flush();
    down.asked[0]!.answer([a(SEC.AN, 60)]);
    await seed.out;
    c.advance(61_000);
    const x = ask(cache, 'www.example.net');
    await flush();
    expect(down.asked.length).toBe(2);
    down.asked[1]!.fail('Timeout');
    const stale = await x.out;
    expect(x.r.source).toBe('stale');
    expect(answerTtls(stale, 'www.example.net')).toEqual([30]);
    // Within the recheck window: stale at once, nothing asked.
    c.advance(29_000);
    const y = ask(cache, 'www.example.net');
    expect(Buffer.isBuffer(y.out)).toBe(true);
    expect(y.r.source).toBe('stale');
    expect(down.asked.length).toBe(2);
    // Past it: asked again; a REFUSED reply is a failed refresh too.
    c.advance(1_000);
    const z = ask(cache, 'www.example.net');
    await flush();
    expect(down.asked.length).toBe(3);
    down.asked[2]!.answer([], { rcode: 5 });
    expect(rcodeOf(await z.out)).toBe(0);
    expect(z.r.source).toBe('stale');
    // OverBudget too.
    c.advance(30_000);
    const w = ask(cache, 'www.example.net');
    await flush();
    down.asked[3]!.fail('OverBudget');
    expect(answerTtls(await w.out, 'www.example.net')).toEqual([30]);
    expect(cache.stats()).toMatchObject({ staleServed: 4, refreshes: 3, failuresCached: 0 });
  });

  it('serves stale when no answer comes within the client timer, and stores the answer when it comes', async () => {
    const { cache, down, clock: c } = setup({ stale: { ...DEFAULT_CACHE.stale, clientTimeoutMs: 30 } });
    const seed = ask(cache, 'slow.example');
    await flush();
    down.asked[0]!.answer([a(SEC.AN, 60, [192, 0, 2, 1])]);
    await seed.out;
    c.advance(60_000);
    // The layer below never answers on its own: only the client timer can end this wait.
    const x = ask(cache, 'slow.example');
    const stale = await x.out;
    expect(x.r.source).toBe('stale');
    expect(answerTtls(stale, 'slow.example')).toEqual([30]);
    // A client that joins the late refresh gets stale at once.
    const y = ask(cache, 'slow.example');
    expect(Buffer.isBuffer(y.out)).toBe(true);
    expect(cache.stats().coalesced).toBe(1);
    // The refresh goes on; its answer is stored and served fresh.
    down.asked[1]!.answer([a(SEC.AN, 120, [192, 0, 2, 2])]);
    await flush();
    const z = ask(cache, 'slow.example').out as Buffer;
    expect([...z.subarray(z.length - 4)]).toEqual([192, 0, 2, 2]);
    expect(answerTtls(z, 'slow.example')).toEqual([120]);
  });

  it('lets a fresh NXDOMAIN replace a stale answer', async () => {
    const { cache, down, clock: c } = setup();
    const seed = ask(cache, 'gone.example');
    await flush();
    down.asked[0]!.answer([a(SEC.AN, 60)]);
    await seed.out;
    c.advance(120_000);
    const x = ask(cache, 'gone.example');
    await flush();
    down.asked[1]!.answer([soa(3600, 300)], { rcode: 3 });
    expect(rcodeOf(await x.out)).toBe(3);
    const hit = ask(cache, 'gone.example');
    expect(rcodeOf(hit.out as Buffer)).toBe(3);
    expect(hit.r.source).toBe('cache');
    c.advance(299_000);
    expect(answerTtls(ask(cache, 'gone.example').out as Buffer, 'gone.example')).toEqual([1]);
  });

  it('prefetches once, on a hit in the last 10 % of the TTL, and the refreshed entry takes over', async () => {
    const { cache, down, clock: c } = setup({ prefetch: true });
    const seed = ask(cache, 'pop.example');
    await flush();
    down.asked[0]!.answer([a(SEC.AN, 100, [192, 0, 2, 1])]);
    await seed.out;
    c.advance(89_000);
    ask(cache, 'pop.example');
    await flush();
    expect(down.asked.length).toBe(1);
    c.advance(2_000); // 9 s of 100 left
    const hit = ask(cache, 'pop.example');
    expect(Buffer.isBuffer(hit.out)).toBe(true);
    ask(cache, 'pop.example');
    await flush();
    expect(down.asked.length).toBe(2);
    expect(cache.stats().prefetches).toBe(1);
    down.asked[1]!.answer([a(SEC.AN, 100, [192, 0, 2, 9])]);
    await flush();
    c.advance(20_000); // past the first entry's expiry
    const after = ask(cache, 'pop.example');
    expect(Buffer.isBuffer(after.out)).toBe(true);
    expect(after.r.source).toBe('cache');
    expect(answerTtls(after.out as Buffer, 'pop.example')).toEqual([80]);
    expect(down.asked.length).toBe(2);
  });

  it('drops an expired entry when serve-stale is off', async () => {
    const { cache, down, clock: c } = setup({ stale: { ...DEFAULT_CACHE.stale, enabled: false } });
    const seed = ask(cache, 'www.example');
    await flush();
    down.asked[0]!.answer([a(SEC.AN, 60)]);
    await seed.out;
    c.advance(60_000);
    const x = ask(cache, 'www.example');
    await flush();
    down.asked[1]!.fail('Timeout');
    await expect(x.out).rejects.toMatchObject({ code: 'Timeout' });
    expect(cache.stats()).toMatchObject({ expired: 1, staleServed: 0 });
  });

  it('bounds the clients waiting on upstream queries: past it, SERVFAIL at once (or stale)', async () => {
    const { cache, down } = setup({}, { maxWaiting: 3 });
    const outs = ['w1', 'w2', 'w3'].map((n) => ask(cache, `${n}.example`).out);
    const over = ask(cache, 'w1.example').out;
    await expect(over).rejects.toMatchObject({ code: 'Overload' });
    await flush();
    for (const q of down.asked) q.answer([a(SEC.AN, 60)]);
    await Promise.all(outs);
    expect(cache.stats().waiting).toBe(0);
  });

  it('stays within its bounds under 100 000 random names through the layer', async () => {
    const { cache, down, store } = setup({}, { maxEntries: 1_000, maxBytes: 400_000 });
    let worst = 0;
    let worstBytes = 0;
    for (let batch = 0; batch < 100; batch++) {
      const outs: Array<Buffer | Promise<Buffer>> = [];
      for (let i = 0; i < 1_000; i++) outs.push(ask(cache, `n${batch}-${i}-${Math.random().toString(36).slice(2)}.flood.example`).out);
      await flush();
      for (const q of down.asked.splice(0)) q.answer([a(SEC.AN, 3600), a(SEC.AN, 3600, [192, 0, 2, 2])]);
      await Promise.all(outs);
      worst = Math.max(worst, store.size);
      worstBytes = Math.max(worstBytes, store.bytes);
    }
    expect(worst).toBeLessThanOrEqual(1_000);
    expect(worstBytes).toBeLessThanOrEqual(400_000);
    expect(cache.stats()).toMatchObject({ insertions: 100_000, misses: 100_000 });
    expect(cache.stats().evictions).toBe(100_000 - store.size);
  });
});

describe('prefetch is off by default', () => {
  it('lets an entry run out instead of refreshing it early (no upstream query spent ahead of need)', async () => {
    const { cache, down, clock: c } = setup();
    const seed = ask(cache, 'quiet.example');
    await flush();
    down.asked[0]!.answer([a(SEC.AN, 100)]);
    await seed.out;
    c.advance(95_000); // 5 s of 100 left: inside the last 10 %
    expect(Buffer.isBuffer(ask(cache, 'quiet.example').out)).toBe(true);
    await flush();
    expect(down.asked.length).toBe(1);
    expect(cache.stats().prefetches).toBe(0);
  });
});
