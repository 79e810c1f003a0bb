import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createUpstream, UpstreamError, type Upstream, type UpstreamOptions } from '../../src/forward/upstream.js';
import { startUpstreamStub, type Forgery, type UpstreamStub } from '../helpers/upstream-stub.js';
import { addresses, buildQuery, paddedQuery, parse, request } from './query.js';

// Tests that expect an attempt to time out use SHORT; the rest use a roomier
// timeout so a loaded CI machine cannot turn a slow answer into a failure.
const SHORT = 250;
const ROOMY = 2000;

let stubs: UpstreamStub[] = [];
let upstreams: Upstream[] = [];
let holes: Socket[] = [];

beforeEach(() => {
  stubs = [];
  upstreams = [];
  holes = [];
});

afterEach(async () => {
  await Promise.all(upstreams.map((u) => u.close()));
  await Promise.all(stubs.map((s) => s.close()));
  await Promise.all(holes.map((h) => new Promise<void>((res) => h.close(() => res()))));
});

async function stub(records: Record<string, readonly string[]> = {}): Promise<UpstreamStub> {
  const s = await startUpstreamStub({ records });
  stubs.push(s);
  return s;
}

function upstream(servers: readonly { address: string; port: number }[], extra: Partial<UpstreamOptions> = {}): Upstream {
  const u = createUpstream({
    servers: servers.map((s) => ({ host: s.address, port: s.port })),
    timeoutMs: ROOMY,
    ...extra,
  });
  upstreams.push(u);
  return u;
}

/** A UDP port that receives and never answers (a dead resolver). */
async function blackHole(): Promise<{ address: string; port: number; received: () => number; from: number[] }> {
  const sock = createSocket('udp4');
  let n = 0;
  const from: number[] = [];
  sock.on('message', (_msg, rinfo) => {
    n++;
    from.push(rinfo.port);
  });
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
  holes.push(sock);
  return { address: '127.0.0.1', port: sock.address().port, received: () => n, from };
}

/** Answers every UDP query with its own bytes, QR and TC set; nothing listens on TCP. */
async function tcOnlyServer(): Promise<{ address: string; port: number }> {
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const reply = Buffer.from(msg);
    reply[2] = reply[2]! | 0x80 | 0x02;
    sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
  holes.push(sock);
  return { address: '127.0.0.1', port: sock.address().port };
}

async function rejection(p: Promise<unknown>): Promise<UpstreamError> {
  const err: unknown = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UpstreamError);
  return err as UpstreamError;
}

describe('relaying', () => {
  it('returns the upstream reply with the client ID restored and records intact', async () => {
    const s = await stub({ 'example.com': ['192.0.2.1', '192.0.2.2'] });
    const u = upstream([s]);
    const reply = await u.resolve(request(buildQuery('example.com', { id: 0xbeef }), false));
    const p = parse(reply);
    expect(p.header.id).toBe(0xbeef);
    expect(p.header.qr).toBe(1);
    expect(p.header.rcode).toBe(0);
    expect(p.header.rd).toBe(1);
    expect(p.questions).toEqual([{ name: 'example.com', type: 1, class: 1 }]);
    expect(addresses(reply)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(p.answers[0]!.ttl).toBe(60);
    expect(u.stats()).toMatchObject({
      inFlight: 0,
      sent: 1,
      timeouts: 0,
      mismatched: 0,
      servers: [{ server: `127.0.0.1:${s.port}`, failures: 0, suspectForMs: 0 }],
    });
  });

  it('forwards the client bytes unchanged except the ID (EDNS OPT included)', async () => {
    const s = await stub({ 'example.com': ['192.0.2.1'] });
    const u = upstream([s]);
    const q = buildQuery('example.com', { id: 0x0102, edns: 4096 });
    const reply = await u.resolve(request(q, false));
    expect(s.queries).toHaveLength(1);
    const seen = s.queries[0]!;
    expect(seen.raw.length).toBe(q.length);
    expect(seen.raw.subarray(2).equals(q.subarray(2))).toBe(true);
    expect(seen.edns).toBe(true);
    // The stub's OPT comes back to the client.
    expect(parse(reply).additionals.map((r) => r.type)).toEqual([41]);
    // The caller's buffer is not modified.
    expect(q.readUInt16BE(0)).toBe(0x0102);
  });

  it.each([
    ['NXDOMAIN', 3],
    ['SERVFAIL', 2],
    ['REFUSED', 5],
  ] as const)('relays rcode %s', async (name, code) => {
    const s = await stub({ 'example.com': ['192.0.2.1'] });
    s.setBehaviour('example.com', { rcode: name });
    const u = upstream([s]);
    const p = parse(await u.resolve(request(buildQuery('example.com', { id: 7 }), false)));
    expect(p.header.id).toBe(7);
    expect(p.header.rcode).toBe(code);
    expect(p.answers).toEqual([]);
  });

  it('relays NXDOMAIN for a name the upstream does not know', async () => {
    const s = await stub();
    const u = upstream([s]);
    const p = parse(await u.resolve(request(buildQuery('nowhere.example', { id: 9 }), false)));
    expect(p.header.rcode).toBe(3);
  });

  it('accepts a question echoed in another case and restores the client spelling', async () => {
    const s = await stub({ 'mixed.example': ['192.0.2.7'] });
    s.setBehaviour('mixed.example', { questionCase: 'upper' });
    const u = upstream([s]);
    const reply = await u.resolve(request(buildQuery('MiXeD.ExAmPlE', { id: 11 }), false));
    const p = parse(reply);
    expect(p.questions[0]!.name).toBe('MiXeD.ExAmPlE');
    expect(addresses(reply)).toEqual(['192.0.2.7']);
    expect(u.stats().mismatched).toBe(0);
  });
});

/** Local ports of this process's bound UDP sockets (IPv4), from the kernel's table. */
function boundUdpPorts(): Set<number> {
  return new Set(
    readFileSync('/proc/net/udp', 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/)[1])
      .filter((local): local is string => local !== undefined)
      .map((local) => parseInt(local.split(':')[1]!, 16)),
  );
}

describe('RFC 5452 entropy', () => {
  it('sends each query with a fresh random ID from its own port, ports spread over 10,000+', async () => {
    const s = await stub({ 'example.com': ['192.0.2.1'] });
    const u = upstream([s]);
    const n = 200;
    const replies = await Promise.all(
      Array.from({ length: n }, () => u.resolve(request(buildQuery('example.com', { id: 0x1234 }), false))),
    );
    expect(replies.every((r) => r.readUInt16BE(0) === 0x1234)).toBe(true);
    const ids = s.queries.map((q) => q.id);
    expect(ids).toHaveLength(n);
    // 200 draws from 65536: a handful of collisions at most.
    expect(new Set(ids).size).toBeGreaterThanOrEqual(n - 5);
    expect(ids.filter((id) => id === 0x1234).length).toBeLessThanOrEqual(2);
    // Ports: the kernel's random pick from the ephemeral range (28k ports by
    // default); a closed socket's port may come round again, rarely.
    const ports = s.queries.map((q) => q.port);
    expect(new Set(ports).size).toBeGreaterThanOrEqual(n - 5);
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    expect(high! - low!, 'net.ipv4.ip_local_port_range is too narrow for RFC 5452 port entropy').toBeGreaterThanOrEqual(10_000);
    expect(Math.max(...ports) - Math.min(...ports)).toBeGreaterThanOrEqual(10_000);
  });

  it('closes a query\'s socket as soon as its reply is in, so late datagrams find no listener', async () => {
    const s = await stub({ 'example.com': ['192.0.2.1'] });
    const u = upstream([s]);
    for (let i = 0; i < 5; i++) await u.resolve(request(buildQuery('example.com'), false));
    const bound = boundUdpPorts();
    for (const q of s.queries) expect(bound.has(q.port)).toBe(false);
  });

  it('closes the socket of an attempt that timed out', async () => {
    const hole = await blackHole();
    const u = upstream([hole], { timeoutMs: SHORT });
    const pending = rejection(u.resolve(request(buildQuery('example.com'), false)));
    while (hole.from.length === 0) await new Promise((r) => setTimeout(r, 2));
    const port = hole.from[0]!;
    expect(boundUdpPorts().has(port)).toBe(true);
    expect((await pending).code).toBe('Timeout');
    expect(boundUdpPorts().has(port)).toBe(false);
  });
});

describe('spoofed replies', () => {
  const all: Forgery[] = ['wrongId', 'wrongQuestion', 'wrongType', 'otherPort', 'notResponse'];

  it('ignores every kind of forgery and still accepts the genuine reply', async () => {
    const s = await stub({ 'bank.example': ['192.0.2.10'] });
    s.setBehaviour('bank.example', { forge: all, delayMs: 50 });
    const u = upstream([s]);
    const reply = await u.resolve(request(buildQuery('bank.example', { id: 0x5151 }), false));
    expect(reply.readUInt16BE(0)).toBe(0x5151);
    expect(addresses(reply)).toEqual(['192.0.2.10']);
    expect(u.stats().mismatched).toBe(all.length);
  });

  it.each(all)('a lone %s forgery is never accepted (the query times out)', async (f) => {
    const s = await stub({ 'bank.example': ['192.0.2.10'] });
    s.setBehaviour('bank.example', { forge: [f], drop: true });
    const u = upstream([s], { timeoutMs: SHORT });
    const err = await rejection(u.resolve(request(buildQuery('bank.example'), false)));
    expect(err.code).toBe('Timeout');
    expect(u.stats()).toMatchObject({ mismatched: 1, timeouts: 1, inFlight: 0 });
  });

  it('drops runts and unsolicited datagrams aimed at the query\'s port', async () => {
    const s = await stub({ 'example.com': ['192.0.2.1'] });
    s.setBehaviour('example.com', { delayMs: 150 });
    const u = upstream([s]);
    const pending = u.resolve(request(buildQuery('example.com'), false));
    while (s.queries.length === 0) await new Promise((r) => setTimeout(r, 2));
    const port = s.queries[0]!.port;
    const attacker = createSocket('udp4');
    holes.push(attacker);
    await new Promise<void>((res) => attacker.bind(0, '127.0.0.1', res));
    for (const junk of [Buffer.alloc(3), Buffer.alloc(12, 0xff)]) {
      await new Promise<void>((res) => attacker.send(junk, port, '127.0.0.1', () => res()));
    }
    expect(addresses(await pending)).toEqual(['192.0.2.1']);
    expect(u.stats().mismatched).toBe(2);
  });
});

describe('question-less error replies (RFC 6891 §7)', () => {
  it.each([
    ['FORMERR', 1],
    ['NOTIMP', 4],
  ] as const)('accepts a %s without a question from the server asked, answering the client with its own question', async (name, rcode) => {
    const s = await stub({ 'old.example': ['192.0.2.1'] });
    s.setBehaviour('old.example', { rcode: name, noQuestion: true });
    const u = upstream([s], { timeoutMs: SHORT });
    const reply = await u.resolve(request(buildQuery('Old.Example', { id: 0x4444, edns: 1232 }), false));
    const p = parse(reply);
    expect([p.header.id, p.header.qr, p.header.rcode]).toEqual([0x4444, 1, rcode]);
    expect(p.questions.map((q) => q.name)).toEqual(['Old.Example']);
    // As the server sent it: no OPT, so an EDNS client can tell it to fall back.
    expect(p.additionals).toHaveLength(0);
    expect(u.stats()).toMatchObject({ mismatched: 0, timeouts: 0 });
  });

  it('still ignores a question-less reply with any other rcode (the query times out)', async () => {
    const s = await stub({ 'old.example': ['192.0.2.1'] });
    s.setBehaviour('old.example', { rcode: 'REFUSED', noQuestion: true });
    const u = upstream([s], { timeoutMs: SHORT });
    const err = await rejection(u.resolve(request(buildQuery('old.example'), false)));
    expect(err.code).toBe('Timeout');
    expect(u.stats()).toMatchObject({ mismatched: 1, timeouts: 1 });
  });
});

describe('failover', () => {
  it('moves to the next server when the first times out', async () => {
    const dead = await blackHole();
    const s = await stub({ 'example.com': ['192.0.2.1'] });
    const u = upstream([dead, s], { timeoutMs: SHORT });
    const reply = await u.resolve(request(buildQuery('example.com', { id: 0x0a0a }), false));
    expect(reply.readUInt16BE(0)).toBe(0x0a0a);
    expect(addresses(reply)).toEqual(['192.0.2.1']);
    expect(dead.received()).toBe(1);
    expect(s.queries).toHaveLength(1);
    expect(u.stats()).toMatchObject({ inFlight: 0, sent: 2, timeouts: 1, mismatched: 0 });
    expect(u.stats().servers.map((h) => h.failures)).toEqual([1, 0]);
  });

  it('moves on when the first server never answers this name', async () => {
    const s1 = await stub({ 'example.com': ['192.0.2.1'] });
    const s2 = await stub({ 'example.com': ['192.0.2.2'] });
    s1.setBehaviour('example.com', { drop: true });
    const u = upstream([s1, s2], { timeoutMs: SHORT });
    expect(addresses(await u.resolve(request(buildQuery('example.com'), false)))).toEqual(['192.0.2.2']);
    // A fresh ID for the second attempt, too.
    expect(s1.queries).toHaveLength(1);
    expect(s2.queries).toHaveLength(1);
  });

  it('rejects with TIMEOUT when every server is silent', async () => {
    const a = await blackHole();
    const b = await blackHole();
    const u = upstream([a, b], { timeoutMs: SHORT });
    const err = await rejection(u.resolve(request(buildQuery('example.com'), false)));
    expect(err.code).toBe('Timeout');
    expect(a.received()).toBe(1);
    expect(b.received()).toBe(1);
    expect(u.stats()).toMatchObject({ inFlight: 0, sent: 2, timeouts: 2, mismatched: 0 });
  });

  it('rejects with ALL_FAILED when the TCP retry is refused', async () => {
    const tc = await tcOnlyServer();
    const u = upstream([tc]);
    const err = await rejection(u.resolve(request(buildQuery('example.com'), true)));
    expect(err.code).toBe('AllFailed');
    expect(u.stats().inFlight).toBe(0);
    // A refused TCP retry counts against the server like a timeout does.
    expect(u.stats().servers[0]!.failures).toBe(1);
  });

  it('rejects with ALL_FAILED when no server is configured', async () => {
    const u = upstream([]);
    expect((await rejection(u.resolve(request(buildQuery('example.com'), false)))).code).toBe('AllFailed');
  });
});

describe('server health', () => {
  // Far longer than any test: suspicion cannot run out mid-test.
  const LONG_BACKOFF = 600_000;

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  /** Waits until server i's suspicion (meant to be tiny) has run out. */
  async function untilNotSuspect(u: Upstream, i: number): Promise<void> {
    while (u.stats().servers[i]!.suspectForMs > 0) await sleep(2);
  }

  it('asks a dead first server once, then goes straight to the live one', async () => {
    const dead = await stub({ 'example.com': ['192.0.2.1'] });
    const live = await stub({ 'example.com': ['192.0.2.2'] });
    dead.setBehaviour('example.com', { drop: true });
    const u = upstream([dead, live], { timeoutMs: SHORT, suspectBackoffMs: LONG_BACKOFF });
    expect(addresses(await u.resolve(request(buildQuery('example.com'), false)))).toEqual(['192.0.2.2']);
    expect(dead.queries).toHaveLength(1);
    for (let i = 0; i < 10; i++) {
      const reply = await u.resolve(request(buildQuery('example.com', { id: i }), false));
      expect(reply.readUInt16BE(0)).toBe(i);
      expect(addresses(reply)).toEqual(['192.0.2.2']);
    }
    expect(dead.queries).toHaveLength(1);
    expect(live.queries).toHaveLength(11);
    const [d, l] = u.stats().servers;
    expect(d).toMatchObject({ server: `127.0.0.1:${dead.port}`, failures: 1 });
    expect(d!.suspectForMs).toBeGreaterThan(0);
    expect(l).toEqual({ server: `127.0.0.1:${live.port}`, failures: 0, suspectForMs: 0, sent: 11, timeouts: 0, errors: 0 });
    expect(d).toMatchObject({ sent: 1, timeouts: 1, errors: 0 });
    expect(u.stats().timeouts).toBe(1);
  });

  it('counts a burst of queries lost in one outage as one failure', async () => {
    const dead = await stub({ 'example.com': ['192.0.2.1'] });
    const live = await stub({ 'example.com': ['192.0.2.2'] });
    dead.setBehaviour('example.com', { drop: true });
    const u = upstream([dead, live], { timeoutMs: SHORT, suspectBackoffMs: LONG_BACKOFF });
    const n = 20;
    await Promise.all(Array.from({ length: n }, () => u.resolve(request(buildQuery('example.com'), false))));
    expect(dead.queries).toHaveLength(n);
    expect(u.stats()).toMatchObject({ timeouts: n });
    expect(u.stats().servers[0]!.failures).toBe(1);
    await u.resolve(request(buildQuery('example.com'), false));
    expect(dead.queries).toHaveLength(n);
    expect(live.queries).toHaveLength(n + 1);
  });

  it('a reply resets a revived server, which is then asked first again', async () => {
    const first = await stub({ 'example.com': ['192.0.2.1'] });
    const second = await stub({ 'example.com': ['192.0.2.2'] });
    first.setBehaviour('example.com', { drop: true });
    const u = upstream([first, second], { timeoutMs: SHORT, suspectBackoffMs: 1 });
    expect(addresses(await u.resolve(request(buildQuery('example.com'), false)))).toEqual(['192.0.2.2']);
    expect(u.stats().servers[0]!.failures).toBe(1);

    first.setBehaviour('example.com', undefined);
    await untilNotSuspect(u, 0);
    // Its suspicion over, it is asked first; it answers, so it is healthy again.
    expect(addresses(await u.resolve(request(buildQuery('example.com'), false)))).toEqual(['192.0.2.1']);
    expect(u.stats().servers[0]).toMatchObject({ failures: 0, suspectForMs: 0 });
    expect(addresses(await u.resolve(request(buildQuery('example.com'), false)))).toEqual(['192.0.2.1']);
    expect(first.queries).toHaveLength(3);
    expect(second.queries).toHaveLength(1);
  });

  it('probes a server whose suspicion ran out with one query, not every query meanwhile', async () => {
    const dead = await stub({ 'example.com': ['192.0.2.1'] });
    const live = await stub({ 'example.com': ['192.0.2.2'] });
    dead.setBehaviour('example.com', { drop: true });
    const u = upstream([dead, live], { timeoutMs: SHORT, suspectBackoffMs: 1 });
    await u.resolve(request(buildQuery('example.com'), false));
    await untilNotSuspect(u, 0);
    const n = 5;
    const replies = await Promise.all(Array.from({ length: n }, () => u.resolve(request(buildQuery('example.com'), false))));
    expect(replies.map(addresses)).toEqual(Array.from({ length: n }, () => ['192.0.2.2']));
    // One probe among the five; it failed, so the backoff doubled.
    expect(dead.queries).toHaveLength(2);
    expect(live.queries).toHaveLength(1 + n);
    expect(u.stats().servers[0]!.failures).toBe(2);
  });

  it('still tries every server, suspect ones last and soonest-to-recover first', async () => {
    const a = await stub({ 'example.com': ['192.0.2.1'] });
    const b = await stub({ 'example.com': ['192.0.2.2'] });
    const u = upstream([a, b], { timeoutMs: SHORT, suspectBackoffMs: LONG_BACKOFF });

    a.setBehaviour('example.com', { drop: true });
    await u.resolve(request(buildQuery('example.com'), false)); // a: 1 failure
    b.setBehaviour('example.com', { drop: true });
    // b first (a is suspect), then a anyway: nobody answers.
    expect((await rejection(u.resolve(request(buildQuery('example.com'), false)))).code).toBe('Timeout');
    expect([a.queries.length, b.queries.length]).toEqual([2, 2]);
    expect(u.stats().servers.map((h) => h.failures)).toEqual([2, 1]);
    // Both suspect: still both asked.
    expect((await rejection(u.resolve(request(buildQuery('example.com'), false)))).code).toBe('Timeout');
    expect([a.queries.length, b.queries.length]).toEqual([3, 3]);

    // b's suspicion (one failure fewer) ends first, so b is asked first: once
    // it answers, a is not asked at all.
    b.setBehaviour('example.com', undefined);
    expect(addresses(await u.resolve(request(buildQuery('example.com'), false)))).toEqual(['192.0.2.2']);
    expect([a.queries.length, b.queries.length]).toEqual([3, 4]);
    expect(u.stats().servers.map((h) => h.failures)).toEqual([3, 0]);
  });
});

describe('truncation and TCP', () => {
  const many = Array.from({ length: 60 }, (_, i) => `198.51.100.${i + 1}`);

  it('retries a TC reply over TCP for a TCP client and returns the full answer', async () => {
    const s = await stub({ 'big.example': many });
    s.setBehaviour('big.example', { truncateUdp: true });
    const u = upstream([s]);
    const reply = await u.resolve(request(buildQuery('big.example', { id: 0x7777 }), true));
    const p = parse(reply);
    expect(p.header.id).toBe(0x7777);
    expect(p.header.tc).toBe(0);
    expect(addresses(reply)).toEqual(many);
    expect(s.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
    expect(u.stats()).toMatchObject({ sent: 2, inFlight: 0 });
  });

  it('relays a TC reply as is to a UDP client', async () => {
    const s = await stub({ 'big.example': many });
    const u = upstream([s]);
    // No truncateUdp: the stub truncates on its own, as the answer exceeds 512.
    const reply = await u.resolve(request(buildQuery('big.example', { id: 0x6666 }), false));
    const p = parse(reply);
    expect(p.header.id).toBe(0x6666);
    expect(p.header.tc).toBe(1);
    expect(p.answers).toEqual([]);
    expect(s.queries.map((q) => q.transport)).toEqual(['udp']);
  });

  it('does not use TCP for a TCP client when the UDP reply fits', async () => {
    const s = await stub({ 'example.com': ['192.0.2.1'] });
    const u = upstream([s]);
    expect(addresses(await u.resolve(request(buildQuery('example.com'), true)))).toEqual(['192.0.2.1']);
    expect(s.queries.map((q) => q.transport)).toEqual(['udp']);
  });

  it('checks ID and question over TCP too', async () => {
    const s = await stub({ 'big.example': many });
    s.setBehaviour('big.example', { truncateUdp: true, forge: ['wrongId', 'wrongQuestion'], delayMs: 30 });
    const u = upstream([s]);
    const reply = await u.resolve(request(buildQuery('big.example'), true));
    expect(addresses(reply)).toEqual(many);
    // Two forgeries on UDP, two on the TCP stream.
    expect(u.stats().mismatched).toBe(4);
  });

  it('sends a TCP client query too large for UDP straight over TCP', async () => {
    const s = await stub({ 'example.com': ['192.0.2.1'] });
    const u = upstream([s]);
    const q = paddedQuery('example.com', 1400, 0x3131);
    const reply = await u.resolve(request(q, true));
    expect(reply.readUInt16BE(0)).toBe(0x3131);
    expect(addresses(reply)).toEqual(['192.0.2.1']);
    expect(s.queries.map((x) => x.transport)).toEqual(['tcp']);
    expect(s.queries[0]!.raw.subarray(2).equals(q.subarray(2))).toBe(true);
  });

  it('times out a TCP attempt that gets no answer and moves on', async () => {
    const s1 = await stub({ 'big.example': many });
    const s2 = await stub({ 'big.example': many.slice(0, 40) });
    s1.setBehaviour('big.example', { truncateUdp: true, drop: 'tcp' });
    s2.setBehaviour('big.example', { truncateUdp: true });
    const u = upstream([s1, s2], { timeoutMs: SHORT });
    const reply = await u.resolve(request(buildQuery('big.example'), true));
    expect(addresses(reply)).toEqual(many.slice(0, 40));
    expect(s1.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
    expect(s2.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
    expect(u.stats().timeouts).toBe(1);
  });
});

describe('limits and lifecycle', () => {
  it('charges every query written (retries too) and fails with OverBudget, not a send, when refused', async () => {
    const hole = await blackHole();
    const live = await stub({ 'example.com': ['192.0.2.1'] });
    let allowance = 1;
    const u = upstream([hole, live], { timeoutMs: SHORT, maySend: () => allowance-- > 0 });
    const err = await rejection(u.resolve(request(buildQuery('example.com'), false)));
    expect(err.code).toBe('OverBudget');
    expect(hole.received()).toBe(1);
    expect(live.queries).toHaveLength(0);
    expect(u.stats()).toMatchObject({ sent: 1, timeouts: 1, inFlight: 0 });
  });

  it('rejects with OVERLOAD beyond maxInFlight and recovers after', async () => {
    const s = await stub({ 'slow.example': ['192.0.2.1'] });
    s.setBehaviour('slow.example', { delayMs: 50 });
    const u = upstream([s], { maxInFlight: 3 });
    const first = [1, 2, 3].map(() => u.resolve(request(buildQuery('slow.example'), false)));
    const err = await rejection(u.resolve(request(buildQuery('slow.example'), false)));
    expect(err.code).toBe('Overload');
    expect(u.stats().inFlight).toBe(3);
    await Promise.all(first);
    expect(s.queries).toHaveLength(3);
    expect(addresses(await u.resolve(request(buildQuery('slow.example'), false)))).toEqual(['192.0.2.1']);
  });

  it('close() rejects pending queries with CLOSED, and later ones too', async () => {
    const s = await stub({ 'example.com': ['192.0.2.1'] });
    s.setBehaviour('example.com', { drop: true });
    const u = upstream([s], { timeoutMs: 5000 });
    const a = u.resolve(request(buildQuery('example.com'), false));
    const b = u.resolve(request(buildQuery('example.com'), true));
    const errs = Promise.all([rejection(a), rejection(b)]);
    await u.close();
    expect((await errs).map((e) => e.code)).toEqual(['Closed', 'Closed']);
    expect(u.stats().inFlight).toBe(0);
    expect((await rejection(u.resolve(request(buildQuery('example.com'), false)))).code).toBe('Closed');
  });

  it('close() also rejects a query waiting on a TCP retry', async () => {
    const s = await stub({ 'big.example': ['192.0.2.1'] });
    s.setBehaviour('big.example', { truncateUdp: true, drop: 'tcp' });
    const u = upstream([s], { timeoutMs: 5000 });
    const a = rejection(u.resolve(request(buildQuery('big.example'), true)));
    while (s.queries.length < 2) await new Promise((r) => setTimeout(r, 5));
    await u.close();
    expect((await a).code).toBe('Closed');
  });

  it('refuses a server that is not an address literal', () => {
    expect(() => createUpstream({ servers: [{ host: 'resolver.local', port: 53 }], timeoutMs: 100 })).toThrow(TypeError);
  });
});

describe('IPv6', () => {
  it('forwards over udp6 and matches a non-canonical server spelling', async (ctx) => {
    let s: UpstreamStub;
    try {
      s = await startUpstreamStub({ address: '::1', records: { 'v6.example': ['2001:db8::1', '192.0.2.1'] } });
    } catch {
      ctx.skip();
      return;
    }
    stubs.push(s);
    const u = upstream([{ address: '0:0:0::1', port: s.port }]);
    const reply = await u.resolve(request(buildQuery('v6.example', { type: 28, id: 0x6006 }), false));
    expect(reply.readUInt16BE(0)).toBe(0x6006);
    expect(addresses(reply)).toEqual(['2001:db8::1']);
    expect(s.queries[0]!.address).toBe('::1');
  });
});
